/**
 * What a keyspace shows operators (the admin endpoint's views `<service>/partitions`,
 * `<service>/table` and `<service>/handoffs`, and the status page): plain JSON read from the
 * settled table and this peer's handoff progress, rows of flat objects so that the page shows
 * them as tables. Pure functions; the keyspace decides when to call them.
 *
 * @module
 */
import type { Participant } from '../eventfold/types.js'
import type { HandoffProgress } from './handoff-progress.js'
import { awaitsLastOwner, type KeyspaceTable } from './table.js'

/** One partition this peer is a replica of. */
export interface PartitionRow {
  /** The partition. */
  readonly partition: number
  /** Its current generation. */
  readonly generation: number
  /** `owner` (serves and stays), `outgoing` (serves until its replacement is promoted), `incoming` (being handed the state). */
  readonly role: 'owner' | 'outgoing' | 'incoming'
  /** Its serving owners, this peer included if it serves. */
  readonly owners: number
  /** Its incoming replicas. */
  readonly incoming: number
  /** Whether this peer holds the partition's state. */
  readonly held: boolean
  /** Keys not in their default state in this peer's projection (`null` when not held). */
  readonly keys: number | null
}

/**
 * `<service>/partitions`: every partition this peer serves or receives, ascending.
 * `local(p, generation)` says what this peer holds of it.
 */
export function partitionsView (table: KeyspaceTable | undefined, self: Participant, local: (partition: number, generation: number) => { held: boolean, keys: number | null }): PartitionRow[] {
  if (table === undefined) return []
  const rows: PartitionRow[] = []
  table.assignments.forEach((a, partition) => {
    const role = a.owners.includes(self) ? (a.outgoing.includes(self) ? 'outgoing' : 'owner') : a.incoming.includes(self) ? 'incoming' : undefined
    if (role === undefined) return
    rows.push({ partition, generation: a.generation, role, owners: a.owners.length, incoming: a.incoming.length, ...local(partition, a.generation) })
  })
  return rows
}

/** How a table stands, cluster-wide: what the `table` view and the gauges report. */
export interface TableHealth {
  /** Partitions with an incoming replica not promoted yet. */
  readonly movesInFlight: number
  /** Partitions with no serving owner: their requests fail until one is promoted or the partition is refounded. */
  readonly unowned: number
  /** Partitions served by fewer owners than wanted (the replication factor, capped by the members that are not draining). */
  readonly underReplicated: number
  /** Partitions nobody holds that wait for their last owner to be admitted again (among `unowned`). */
  readonly awaitingLastOwner: number
}

/** See {@link TableHealth}. */
export function tableHealth (table: KeyspaceTable): TableHealth {
  const wanted = Math.min(table.replication, table.members.filter(m => !table.draining.includes(m)).length)
  let movesInFlight = 0
  let unowned = 0
  let underReplicated = 0
  let awaitingLastOwner = 0
  for (const a of table.assignments) {
    if (a.incoming.length > 0) movesInFlight++
    if (a.owners.length === 0) unowned++
    if (a.owners.length < wanted) underReplicated++
    if (awaitsLastOwner(table, a)) awaitingLastOwner++
  }
  return { movesInFlight, unowned, underReplicated, awaitingLastOwner }
}

/** `<service>/table`: the settled table in summary, and each member's share of it. */
export function tableView (table: KeyspaceTable | undefined, lost: number): unknown {
  if (table === undefined) return { held: false }
  const share = new Map(table.members.map(m => [m, { peer: m, owner: 0, outgoing: 0, incoming: 0, draining: table.draining.includes(m) }]))
  for (const a of table.assignments) {
    for (const o of a.owners) { const s = share.get(o); if (s !== undefined) { if (a.outgoing.includes(o)) s.outgoing++; else s.owner++ } }
    for (const i of a.incoming) { const s = share.get(i); if (s !== undefined) s.incoming++ }
  }
  return {
    version: table.version,
    partitions: table.partitions,
    replication: table.replication,
    members: table.members.length,
    draining: table.draining.length,
    ...tableHealth(table),
    lostSinceStart: lost,
    byMember: [...share.values()]
  }
}

/** One handoff under way on this peer. */
export interface HandoffRow {
  /** `receiving`, `sending` (a transfer it runs as the partition's coordinator) or `releasing`. */
  readonly direction: 'receiving' | 'sending' | 'releasing'
  /** The partition. */
  readonly partition: number
  /** The receiving replica (sending only), else `null`. */
  readonly to: Participant | null
  /** Where it is (see `HandoffProgress`). */
  readonly phase: string
  /** Transfer attempts so far (sending only), else `null`. */
  readonly attempts: number | null
  /** Requests still in flight (releasing only), else `null`. */
  readonly inFlight: number | null
  /** Milliseconds since it began. */
  readonly sinceMs: number
}

/** `<service>/handoffs`: the handoffs under way on this peer, and its totals since it started. */
export function handoffsView (progress: HandoffProgress): { inProgress: HandoffRow[], completed: HandoffProgress['completed'] } {
  const ms = Math.round
  return {
    inProgress: [
      ...progress.receiving.map((r): HandoffRow => ({ direction: 'receiving', partition: r.partition, to: null, phase: r.phase, attempts: null, inFlight: null, sinceMs: ms(r.sinceMs) })),
      ...progress.sending.map((s): HandoffRow => ({ direction: 'sending', partition: s.partition, to: s.to, phase: s.phase, attempts: s.attempts, inFlight: null, sinceMs: ms(s.sinceMs) })),
      ...progress.releasing.map((r): HandoffRow => ({ direction: 'releasing', partition: r.partition, to: null, phase: r.phase, attempts: null, inFlight: r.inFlight, sinceMs: ms(r.sinceMs) }))
    ],
    completed: progress.completed
  }
}
