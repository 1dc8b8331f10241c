/**
 * Plan-then-commit for changes of the partition layout, in the style of riak-admin's staged
 * changes: {@link planLayoutChange} says exactly which partitions a join, a leave (or
 * ejection), a move, a rebalance or a resize would move, by running the cluster's own spec
 * function that will run when the change folds (`join`, `unjoin` or `apply` of the very spec
 * object the peer was started with) on the table as this peer sees it now; and
 * {@link committedEvent} turns a change into what the commit does. Pure: no peer, no I/O.
 *
 * A plan is computed on the projected table (the state the event will be ordered after, as far
 * as this peer knows) and carries its version; a commit with another version is refused, since
 * the table moved in between. Between the check and the fold, another peer's concurrent event
 * can still be ordered first: the commit then reports what the event actually did.
 *
 * @module
 */
import type { EventSpec, Participant } from '../eventfold/types.js'
import { isBalanced, type PartitionTable, type PartitionTableEvent, type PartitionTableOutput } from '../partitions/partition-table.js'

/** A change of the partition layout, as `POST /plan` and `POST /commit` take it. */
export type LayoutChange =
  | {
    /** A new peer joins (plan only: a join happens when that peer starts). */
    readonly type: 'join'
    /** The joining peer's id. */
    readonly peer: Participant
  }
  | {
    /** A member leaves (this peer) or is ejected (another). */
    readonly type: 'leave'
    /** The member. */
    readonly peer: Participant
  }
  | {
    /** One partition changes owner. */
    readonly type: 'move'
    /** The partition. */
    readonly partition: number
    /** Its new owner, a member. */
    readonly to: Participant
  }
  | {
    /** Balance restored with the fewest moves. */
    readonly type: 'rebalance'
  }
  | {
    /** The table resized. */
    readonly type: 'configure'
    /** The new partition count. */
    readonly partitions: number
  }

/** One partition whose owner a change moves. */
export interface PartitionMove {
  /** The partition. */
  readonly partition: number
  /** Its owner before (`null`: none). */
  readonly from: Participant | null
  /** Its owner after (`null`: none). */
  readonly to: Participant | null
}

/** What a change would do to the table. */
export interface LayoutPlan {
  /** The change planned. */
  readonly change: LayoutChange
  /** The version of the table the plan was computed on: a commit must name it. */
  readonly version: number
  /** Every partition that changes owner, ascending. */
  readonly moves: readonly PartitionMove[]
  /** The table afterwards: its partition count, whether it is balanced, partitions per owner. */
  readonly after: {
    /** The partition count. */
    readonly partitions: number
    /** Whether every owner has its fair share. */
    readonly balanced: boolean
    /** Partitions per owner. */
    readonly owned: Readonly<Record<Participant, number>>
  }
}

/** A change the table refuses, with the spec's own reason (a system error of the event). */
export interface RefusedChange {
  /** Why. */
  readonly refused: string
}

/**
 * Checks a change that came as JSON.
 * @returns the change, or a message saying what is wrong with it
 */
export function parseLayoutChange (value: unknown): LayoutChange | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'a change is an object with a "type"'
  const v = value as Record<string, unknown>
  const peer = (): string | undefined => typeof v.peer === 'string' && v.peer !== '' ? v.peer : undefined
  switch (v.type) {
    case 'join':
    case 'leave': {
      const p = peer()
      return p === undefined ? `a ${v.type} needs "peer", a peer id` : { type: v.type, peer: p }
    }
    case 'move':
      if (!Number.isSafeInteger(v.partition) || (v.partition as number) < 0) return 'a move needs "partition", an integer >= 0'
      if (typeof v.to !== 'string' || v.to === '') return 'a move needs "to", a peer id'
      return { type: 'move', partition: v.partition as number, to: v.to }
    case 'rebalance':
      return { type: 'rebalance' }
    case 'configure':
      if (!Number.isSafeInteger(v.partitions)) return 'a configure needs "partitions", an integer'
      return { type: 'configure', partitions: v.partitions as number }
    default:
      return `unknown change type ${JSON.stringify(v.type)}: join, leave, move, rebalance or configure`
  }
}

/** The user event a move, rebalance or configure commits (a join or leave is not an event). */
export function committedEvent (change: LayoutChange): PartitionTableEvent | undefined {
  switch (change.type) {
    case 'move': return { type: 'move', partition: change.partition, to: change.to }
    case 'rebalance': return { type: 'rebalance' }
    case 'configure': return { type: 'configure', partitions: change.partitions }
    default: return undefined
  }
}

/**
 * What `change` would do to `table`, computed by `spec`'s own `join`, `unjoin` or `apply`.
 * `spec` must be the partition table spec the cluster runs (see `isPartitionTableSpec`).
 */
export function planLayoutChange (
  spec: EventSpec<PartitionTableEvent, PartitionTable, PartitionTableOutput>,
  table: PartitionTable,
  change: LayoutChange
): LayoutPlan | RefusedChange {
  let after: PartitionTable
  if (change.type === 'join') {
    if (table.participants.includes(change.peer)) return { refused: `${change.peer} is a member already` }
    after = spec.join!(change.peer, table)
  } else if (change.type === 'leave') {
    if (!table.participants.includes(change.peer)) return { refused: `${change.peer} is not a member` }
    after = spec.unjoin!(change.peer, table)
  } else {
    const result = spec.apply(committedEvent(change)!, table)
    if (!result.ok) return { refused: result.output.type === 'error' ? result.output.message : 'refused' }
    after = result.state
  }
  const moves: PartitionMove[] = []
  const width = Math.max(table.partitions, after.partitions)
  for (let p = 0; p < width; p++) {
    const from = p < table.partitions ? table.owners[p] ?? null : null
    const to = p < after.partitions ? after.owners[p] ?? null : null
    if (from !== to) moves.push({ partition: p, from, to })
  }
  const owned = Object.create(null) as Record<Participant, number>
  for (const peer of after.participants) owned[peer] = 0
  for (const owner of after.owners) if (owner !== null) owned[owner] = (owned[owner] ?? 0) + 1
  return { change, version: table.version, moves, after: { partitions: after.partitions, balanced: isBalanced(after), owned } }
}
