/**
 * Plans of the keyspace's layout for operators: which partitions' replica sets a membership
 * change (a peer leaving, or a peer joining) would change, computed by running the ownership
 * table's own `join` or `unjoin` (the very spec object the table's group folds with, so the
 * rebalancing planned is the rebalancing that runs) on the table as this peer sees it. Pure:
 * no peer, no I/O.
 *
 * A partition's *replica set* is where it is heading: its serving owners, minus the outgoing
 * ones, plus the incoming ones. A plan compares the sets before and after the change, so a move
 * already in flight is not counted again. There is no commit: the keyspace rebalances by itself
 * when membership changes, and its table has no event that moves a replica by hand (see
 * docs/ADMIN.md, "The keyspace's layout").
 *
 * @module
 */
import type { EventSpec, Participant } from '../eventfold/types.js'
import { awaitsLastOwner, wasLost, type KeyspaceTable, type PartitionAssignment, type TableEvent, type TableOutput } from './table.js'

/** A change of the cluster's membership to plan for. */
export interface MembershipChange {
  /** `leave`: the peer leaves or is ejected (its UnJoin); `join`: a new peer joins (its Join). */
  readonly type: 'join' | 'leave'
  /** The peer. */
  readonly peer: Participant
}

/** One partition whose replica set a change would change. */
export interface ReplicaMove {
  /** The partition. */
  readonly partition: number
  /** Its generation after the change (one more than before when it would be lost). */
  readonly generation: number
  /** The replica set before (owners minus outgoing, plus incoming), sorted. */
  readonly before: readonly Participant[]
  /** The replica set after, sorted. */
  readonly after: readonly Participant[]
  /** Peers that would receive it (the transfers the change starts). */
  readonly adding: readonly Participant[]
  /** Peers that would release it. */
  readonly removing: readonly Participant[]
}

/** What a membership change would do to a keyspace's layout. */
export interface KeyspacePlan {
  /** The change planned. */
  readonly change: MembershipChange
  /** The version of the (projected) table the plan was computed on. */
  readonly version: number
  /** Every partition whose replica set changes, ascending. */
  readonly moves: readonly ReplicaMove[]
  /** Replicas the change would transfer (the sum of `adding` over `moves`). */
  readonly transfers: number
  /**
   * Partitions whose data the change would lose: no replica left that holds the state, so the
   * table starts a new generation from the default state.
   */
  readonly lost: readonly number[]
  /**
   * Partitions no replica would hold afterwards (a leave of their only replica): they wait,
   * unavailable, for the peer leaving, their last owner, to be admitted again (it restores
   * them from its copy), and are lost if it does not come back within the keyspace's
   * `lostAfterMs`, or comes back without that copy.
   */
  readonly unavailable: readonly number[]
  /** The layout afterwards. */
  readonly after: {
    /** The table's members. */
    readonly members: readonly Participant[]
    /** Replicas per member (partitions it would serve or receive). */
    readonly replicas: Readonly<Record<Participant, number>>
    /** Whether every member that is not draining holds its fair share (floor or ceil). */
    readonly balanced: boolean
  }
}

/** A change that cannot be planned, and why. */
export interface RefusedPlan {
  /** Why. */
  readonly refused: string
}

/**
 * What `change` would do to `table`, computed by `spec`'s own `join` or `unjoin`.
 * `spec` must be the spec the keyspace's table group folds with.
 */
export function planMembershipChange (spec: EventSpec<TableEvent, KeyspaceTable, TableOutput>, table: KeyspaceTable, change: MembershipChange): KeyspacePlan | RefusedPlan {
  const member = table.members.includes(change.peer)
  let after: KeyspaceTable
  if (change.type === 'join') {
    if (member) return { refused: `${change.peer} is a member already` }
    after = spec.join!(change.peer, table)
  } else {
    if (!member) return { refused: `${change.peer} is not a member of the keyspace's table` }
    after = spec.unjoin!(change.peer, table)
  }
  const moves: ReplicaMove[] = []
  const lost: number[] = []
  const unavailable: number[] = []
  for (let p = 0; p < after.partitions; p++) {
    const a = table.assignments[p]!
    const b = after.assignments[p]!
    if (wasLost(a, b)) lost.push(p)
    if (awaitsLastOwner(after, b) && !awaitsLastOwner(table, a)) unavailable.push(p)
    const before = replicaSet(a)
    const next = replicaSet(b)
    if (b.generation === a.generation && sameSet(before, next)) continue
    // A new generation starts empty: every replica of it receives (or founds) from nothing.
    const fresh = b.generation !== a.generation
    moves.push({
      partition: p,
      generation: b.generation,
      before,
      after: next,
      adding: fresh ? next : next.filter(x => !before.includes(x)),
      removing: fresh ? before : before.filter(x => !next.includes(x))
    })
  }
  const replicas = Object.create(null) as Record<Participant, number>
  for (const m of after.members) replicas[m] = 0
  for (const a of after.assignments) for (const m of replicaSet(a)) replicas[m] = (replicas[m] ?? 0) + 1
  return {
    change,
    version: table.version,
    moves,
    transfers: moves.reduce((n, m) => n + m.adding.length, 0),
    lost,
    unavailable,
    after: { members: after.members, replicas, balanced: isBalanced(after, replicas) }
  }
}

/** Where a partition is heading: serving owners that stay, and incoming replicas; sorted. */
export function replicaSet (a: PartitionAssignment): Participant[] {
  return [...new Set([...a.owners.filter(o => !a.outgoing.includes(o)), ...a.incoming])].sort()
}

function sameSet (a: readonly Participant[], b: readonly Participant[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

/** Every eligible member holds floor or ceil of the slots (as `rebalance` aims for). */
function isBalanced (table: KeyspaceTable, replicas: Readonly<Record<Participant, number>>): boolean {
  const eligible = table.members.filter(m => !table.draining.includes(m))
  if (eligible.length === 0) return true
  const slots = table.partitions * Math.min(table.replication, eligible.length)
  const low = Math.floor(slots / eligible.length)
  const high = Math.ceil(slots / eligible.length)
  return eligible.every(m => (replicas[m] ?? 0) >= low && (replicas[m] ?? 0) <= high)
}
