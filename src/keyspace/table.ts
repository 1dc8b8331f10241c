/**
 * The keyspace's **ownership table**: which peers own each partition, as the event spec of a
 * cluster-wide group, so every change of ownership is a folded, totally ordered event and the
 * table's `version` in the infimum is an epoch every peer agrees on. Pure: no I/O, no clock,
 * no randomness; everything is decided from the state and the event.
 *
 * Each partition has an assignment:
 * - `generation`: which incarnation of the partition's data group is current (a partition
 *   whose every replica is lost starts a new generation, a new group, from the default state);
 * - `owners`: the replicas that *serve* it (hold its state through everything acknowledged);
 * - `incoming`: replicas being handed the state; each is promoted to `owners` by its own
 *   `ready` event once it holds the state through everything the owners acknowledged;
 * - `outgoing`: owners that serve until every incoming replica is promoted, then leave;
 * - `abandoned`: incoming replicas that said they cannot get the state (all owners gone);
 * - `founder`: the owner granted the right to found a new generation's group (once);
 * - `lastOwner`: the serving owner whose departure from the cluster left the partition with no
 *   serving replica, with the generation it served. It holds everything acknowledged there (an
 *   input is acknowledged once every replica holds it, and nobody serves after it), so the
 *   partition is not refounded empty: it waits, unavailable, for that peer to be admitted
 *   again, which founds the next generation from its copy (`dataSince` carries over: nothing
 *   was lost), or for a member to declare it lost (`lost`, after the keyspace's
 *   `lostAfterMs`), or for the peer itself to say it has no copy (`abandon`);
 * - `dataSince`: the first generation whose data this one continues.
 *
 * Events: `found` (a founder asks for its grants; only the granted found, so a peer that
 * restarted and rejoined can never found a generation twice: its grant is ordered after its
 * re-admission, which cleared it), `ready`, `abandon` (a peer does not hold a partition's
 * state: an owner that lost it, or an incoming replica that cannot get it), `resign` (an
 * owner that no longer holds the partition's group but kept a copy of its state from before it
 * was admitted again stops serving, and becomes the last owner if it was the last to serve),
 * `lost` (a member stops waiting for a partition's last owner) and `drain` (a peer about to
 * stop hands everything off). Joins and unjoins of the cluster rebalance.
 *
 * Rebalancing keeps `min(replication, eligible peers)` replicas per partition, each eligible
 * peer holding `floor` or `ceil` of the slots (except where a partition's replicas constrain
 * it), moving as few replicas as it can: departed and draining peers' replicas move, then
 * over-full peers shed to under-full ones. A move never removes a serving replica until its
 * replacement is promoted.
 *
 * @module
 */
import { sameParticipants, type EventSpec, type Participant } from '../eventfold/types.js'

/** The largest partition count a keyspace accepts. */
export const MAX_KEYSPACE_PARTITIONS = 1 << 14
/** The largest replication factor a keyspace accepts. */
export const MAX_REPLICATION = 16

/** One partition's ownership; see the module comment. */
export interface PartitionAssignment {
  /** The current generation of the partition's data (1 for the first). */
  readonly generation: number
  /** Replicas that serve the partition, in the order they came. */
  readonly owners: readonly Participant[]
  /** Replicas receiving the state, promoted to `owners` once ready. */
  readonly incoming: readonly Participant[]
  /** Owners that leave once every incoming replica is promoted (a subset of `owners`). */
  readonly outgoing: readonly Participant[]
  /** Incoming replicas that reported they cannot get the state (only while `owners` is empty). */
  readonly abandoned: readonly Participant[]
  /** The owner allowed to found this generation's group, until it asks (`found`). */
  readonly founder: Participant | null
  /**
   * The owner whose departure left the partition with no serving replica, and the generation
   * it served: it holds everything acknowledged there (see the module comment). Set only
   * while nobody serves, or while it is the founder of the generation that restores its copy.
   */
  readonly lastOwner: LastOwner | null
  /**
   * The first generation whose data this one continues: its own number when it was founded
   * empty, the previous one's `dataSince` when it was founded from its last owner's copy.
   */
  readonly dataSince: number
}

/** A partition's last owner: see {@link PartitionAssignment.lastOwner}. */
export interface LastOwner {
  /** The peer (not necessarily a member). */
  readonly peer: Participant
  /** The generation it served, whose state it holds. */
  readonly generation: number
}

/** The replicated ownership table of a keyspace. */
export interface KeyspaceTable {
  /** The number of partitions. */
  readonly partitions: number
  /** Replicas per partition wanted (capped by the number of eligible peers). */
  readonly replication: number
  /** Increases by one on every change: the epoch requests are fenced by. */
  readonly version: number
  /** The cluster's members, sorted. */
  readonly members: readonly Participant[]
  /** Members handing everything off before they stop, sorted. */
  readonly draining: readonly Participant[]
  /** One assignment per partition. */
  readonly assignments: readonly PartitionAssignment[]
}

/** A partition and the generation an event is about. */
export type PartitionRef = readonly [partition: number, generation: number]

/** The events of the table; see the module comment. */
export type TableEvent =
  | { readonly type: 'found', readonly peer: Participant, readonly partitions: readonly PartitionRef[] }
  | { readonly type: 'ready', readonly peer: Participant, readonly partitions: readonly PartitionRef[] }
  | { readonly type: 'abandon', readonly peer: Participant, readonly partitions: readonly PartitionRef[] }
  | { readonly type: 'resign', readonly peer: Participant, readonly partitions: readonly PartitionRef[] }
  | { readonly type: 'lost', readonly peer: Participant, readonly partitions: readonly PartitionRef[] }
  | { readonly type: 'drain', readonly peer: Participant }

/** What a table event did: the partitions it affected (for `found`: the grants), or why it did nothing. */
export interface TableOutput {
  /** Partitions the event changed. */
  readonly partitions: readonly number[]
  /** Set when the event was malformed (it then changed nothing). */
  readonly error?: string
}

/** The spec of a table of `partitions` partitions and `replication` replicas each. */
export function tableSpec (partitions: number, replication: number): EventSpec<TableEvent, KeyspaceTable, TableOutput> {
  checkTableShape(partitions, replication)
  return {
    init: () => ({
      partitions,
      replication,
      version: 0,
      members: [],
      draining: [],
      assignments: Array.from({ length: partitions }, () => EMPTY_ASSIGNMENT)
    }),
    apply: (event, table) => {
      const r = applyTableEvent(event, table)
      return { ok: true, output: r.output, state: r.table }
    },
    join: (peer, table) => {
      if (table.members.includes(peer)) return table
      return finish(table, rebalance({ ...table, members: insertSorted(table.members, peer) }))
    },
    unjoin: (peer, table) => {
      if (!table.members.includes(peer)) return table
      const members = table.members.filter(m => m !== peer)
      const draining = table.draining.filter(m => m !== peer)
      const assignments = table.assignments.map(a => withoutPeer(a, peer))
      return finish(table, rebalance({ ...table, members, draining, assignments }))
    }
  }
}

/**
 * @throws RangeError when `partitions` or `replication` is out of range
 */
export function checkTableShape (partitions: unknown, replication: unknown): void {
  if (typeof partitions !== 'number' || !Number.isInteger(partitions) || partitions < 1 || partitions > MAX_KEYSPACE_PARTITIONS) {
    throw new RangeError(`partitions must be an integer in [1, ${MAX_KEYSPACE_PARTITIONS}], got ${String(partitions)}`)
  }
  if (typeof replication !== 'number' || !Number.isInteger(replication) || replication < 1 || replication > MAX_REPLICATION) {
    throw new RangeError(`replication must be an integer in [1, ${MAX_REPLICATION}], got ${String(replication)}`)
  }
}

const EMPTY_ASSIGNMENT: PartitionAssignment = Object.freeze({ generation: 0, owners: [], incoming: [], outgoing: [], abandoned: [], founder: null, lastOwner: null, dataSince: 0 })

// ---------------------------------------------------------------------------------------------
// Reading a table

/** The serving owners of `partition` (empty when it has none right now). */
export function ownersOf (table: KeyspaceTable, partition: number): readonly Participant[] {
  return table.assignments[partition]?.owners ?? []
}

/** What `peer` is to one partition. */
export type PartitionRole = 'owner' | 'incoming' | 'none'

/** What `peer` is to `partition` in `table`. */
export function roleOf (table: KeyspaceTable, partition: number, peer: Participant): PartitionRole {
  const a = table.assignments[partition]
  if (a === undefined) return 'none'
  if (a.owners.includes(peer)) return 'owner'
  return a.incoming.includes(peer) ? 'incoming' : 'none'
}

/** Partitions with a move in flight (an incoming replica not promoted yet). */
export function movesInFlight (table: KeyspaceTable): number {
  return table.assignments.reduce((n, a) => n + (a.incoming.length > 0 ? 1 : 0), 0)
}

/** What changed for applications between two tables: partitions that moved, and partitions lost. */
export type TableChange =
  | {
    /** A partition's serving owners changed. */
    readonly type: 'moved'
    /** The partition. */
    readonly partition: number
    /** Its owners before. */
    readonly from: readonly Participant[]
    /** Its owners now. */
    readonly to: readonly Participant[]
    /** The table version of the change. */
    readonly version: number
  }
  | {
    /** Every replica of the partition was lost (or declared lost): it starts again from the default state. */
    readonly type: 'lost'
    /** The partition. */
    readonly partition: number
    /** The new generation. */
    readonly generation: number
    /** The table version of the change. */
    readonly version: number
  }

/** The changes from `before` to `after`, by partition. */
export function tableChanges (before: KeyspaceTable, after: KeyspaceTable): TableChange[] {
  const out: TableChange[] = []
  if (before === after) return out
  for (let p = 0; p < after.partitions; p++) {
    const a = before.assignments[p] ?? EMPTY_ASSIGNMENT
    const b = after.assignments[p]!
    if (wasLost(a, b)) out.push({ type: 'lost', partition: p, generation: b.generation, version: after.version })
    else if (!sameParticipants(a.owners, b.owners)) {
      out.push({ type: 'moved', partition: p, from: a.owners, to: b.owners, version: after.version })
    }
  }
  return out
}

/** How many partitions were lost from `before` to `after` (the `lost` changes, without building the others). */
export function lostBetween (before: KeyspaceTable, after: KeyspaceTable): number {
  if (before === after) return 0
  let n = 0
  for (let p = 0; p < after.partitions; p++) if (wasLost(before.assignments[p] ?? EMPTY_ASSIGNMENT, after.assignments[p]!)) n++
  return n
}

/**
 * A partition that had data (a generation) goes on in one that does not continue it: every
 * replica of it was lost. A generation founded from the last owner's copy continues it.
 */
export function wasLost (before: PartitionAssignment, after: PartitionAssignment): boolean {
  return before.generation > 0 && after.dataSince > before.generation
}

/**
 * Whether `peer`'s copy of generation `generation` is one a restore of the partition may take:
 * `peer` is its last owner, and the generation lies between the partition's `dataSince` and
 * the last owner's generation. Such a copy is all the data there is, so it is kept.
 */
export function restoresFrom (a: PartitionAssignment, peer: Participant, generation: number): boolean {
  return a.lastOwner?.peer === peer && generation >= a.dataSince && generation <= a.lastOwner.generation
}

/**
 * The owner that sends a partition to its incoming replicas: one of its owners, picked by the
 * partition's number, so that the transfers of a rebalance spread over every owner.
 */
export function coordinatorOf (owners: readonly Participant[], partition: number): Participant | undefined {
  return owners[partition % Math.max(1, owners.length)]
}

/** Whether the partition waits for its last owner, which is not a member (see the module comment). */
export function awaitsLastOwner (table: KeyspaceTable, a: PartitionAssignment): boolean {
  return a.lastOwner !== null && a.owners.length === 0 && a.incoming.length === 0 && !table.members.includes(a.lastOwner.peer)
}

// ---------------------------------------------------------------------------------------------
// Events

function applyTableEvent (event: TableEvent, table: KeyspaceTable): { output: TableOutput, table: KeyspaceTable } {
  const e = event as Partial<Record<string, unknown>> | null
  if (typeof e !== 'object' || e === null || typeof e.peer !== 'string') return { output: { partitions: [], error: 'a table event needs a type and a peer' }, table }
  const peer = e.peer
  if (!table.members.includes(peer)) return { output: { partitions: [] }, table }
  if (e.type === 'drain') {
    if (table.draining.includes(peer)) return { output: { partitions: [] }, table }
    const next = finish(table, rebalance({ ...table, draining: insertSorted(table.draining, peer) }))
    return { output: { partitions: changedPartitions(table, next) }, table: next }
  }
  const refs = readRefs(e.partitions, table.partitions)
  if (refs === undefined) return { output: { partitions: [], error: 'partitions must be a list of [partition, generation] pairs' }, table }
  const assignments = [...table.assignments]
  const touched: number[] = []
  for (const [p, generation] of refs) {
    const a = assignments[p]!
    if (a.generation !== generation) continue
    let next: PartitionAssignment | undefined
    switch (e.type) {
      case 'found': next = a.founder === peer ? { ...a, founder: null, lastOwner: null } : undefined; break
      case 'ready': next = promote(a, peer); break
      case 'abandon': next = abandon(a, peer); break
      case 'resign': next = resign(a, peer); break
      case 'lost': next = awaitsLastOwner(table, a) ? { ...a, lastOwner: null } : undefined; break
      default: return { output: { partitions: [], error: `unknown table event type ${JSON.stringify(e.type)}` }, table }
    }
    if (next === undefined) continue
    assignments[p] = next
    touched.push(p)
  }
  if (touched.length === 0) return { output: { partitions: [] }, table }
  // An abandonment can leave a partition with no replica at all, and a declared loss leaves
  // one waiting for nobody: a rebalance refounds it.
  const shaped = e.type === 'abandon' || e.type === 'resign' || e.type === 'lost' ? rebalance({ ...table, assignments }) : { ...table, assignments }
  return { output: { partitions: touched }, table: finish(table, shaped) }
}

function readRefs (value: unknown, partitions: number): PartitionRef[] | undefined {
  if (!Array.isArray(value) || value.length > partitions * 2) return undefined
  const out: PartitionRef[] = []
  for (const ref of value as unknown[]) {
    if (!Array.isArray(ref) || ref.length !== 2) return undefined
    const [p, g] = ref as unknown[]
    if (!Number.isInteger(p) || !Number.isInteger(g) || (p as number) < 0 || (p as number) >= partitions) return undefined
    out.push([p as number, g as number])
  }
  return out
}

/** `peer`, incoming, holds the state: it serves; the move completes once nobody is incoming. */
function promote (a: PartitionAssignment, peer: Participant): PartitionAssignment | undefined {
  // Before its founder founded the generation nobody can hold it: a claim to is refused.
  if (!a.incoming.includes(peer) || a.founder !== null) return undefined
  const incoming = a.incoming.filter(p => p !== peer)
  const owners = [...a.owners, peer]
  const abandoned = a.abandoned.filter(p => p !== peer)
  // Someone serves again, holding everything acknowledged: the last owner is not waited for.
  if (incoming.length > 0) return { ...a, owners, incoming, abandoned, lastOwner: null }
  return { ...a, owners: owners.filter(p => !a.outgoing.includes(p)), incoming, outgoing: [], abandoned, lastOwner: null }
}

/** `peer` does not hold the partition's state (see the module comment). */
function abandon (a: PartitionAssignment, peer: Participant): PartitionAssignment | undefined {
  if (a.owners.includes(peer)) {
    // The last owner, granted the generation that restores its copy, has none (it restarted
    // without its storage): nobody holds the partition.
    if (a.founder === peer && a.lastOwner?.peer === peer) return { ...a, owners: [], incoming: [], outgoing: [], abandoned: [], founder: null, lastOwner: null }
    // An owner that lost its copy: it stops counting as a replica (the rebalance that follows
    // refills the partition, or refounds it if nobody is left).
    return { ...a, owners: a.owners.filter(p => p !== peer), outgoing: a.outgoing.filter(p => p !== peer), founder: a.founder === peer ? null : a.founder }
  }
  if (a.owners.length > 0 || !a.incoming.includes(peer) || a.abandoned.includes(peer)) return undefined
  const abandoned = [...a.abandoned, peer]
  // Every incoming replica lacks the state and no owner is left: nobody holds it.
  if (a.incoming.every(p => abandoned.includes(p))) return { ...a, incoming: [], abandoned: [] }
  return { ...a, abandoned }
}

/**
 * `peer`, an owner, no longer holds the partition's group but has a copy of its state (it was
 * admitted again while the table kept it as an owner): it stops serving, and if nobody else
 * serves, it is the last owner, which restores the partition from that copy.
 */
function resign (a: PartitionAssignment, peer: Participant): PartitionAssignment | undefined {
  // A founder has founded nothing it could hold a copy of.
  if (!a.owners.includes(peer) || a.founder === peer) return undefined
  const owners = a.owners.filter(p => p !== peer)
  return { ...a, owners, outgoing: a.outgoing.filter(p => p !== peer), lastOwner: owners.length === 0 ? { peer, generation: a.generation } : a.lastOwner }
}

/** `a` without `peer` anywhere (it left the cluster). */
function withoutPeer (a: PartitionAssignment, peer: Participant): PartitionAssignment {
  if (!a.owners.includes(peer) && !a.incoming.includes(peer) && a.founder !== peer) return a
  const owners = a.owners.filter(p => p !== peer)
  const incoming = a.incoming.filter(p => p !== peer)
  const outgoing = a.outgoing.filter(p => p !== peer)
  const abandoned = a.abandoned.filter(p => p !== peer)
  const founder = a.founder === peer ? null : a.founder
  // The last serving owner left: it holds everything acknowledged, so the partition waits for
  // it rather than starting empty. One that never founded its generation holds nothing of it
  // (unless that generation restores its own copy of an older one: it still holds that).
  const lastOwner = owners.length > 0 || !a.owners.includes(peer) || a.founder === peer ? a.lastOwner : { peer, generation: a.generation }
  // The last incoming replica left: the outgoing owners stay (they hold the state), the move is off.
  if (incoming.length === 0) return { ...a, owners, incoming, outgoing: [], abandoned: [], founder, lastOwner }
  // Owners gone and every remaining incoming replica had given up: nobody holds the state.
  if (owners.length === 0 && incoming.every(p => abandoned.includes(p))) return { ...a, owners: [], incoming: [], outgoing: [], abandoned: [], founder: null, lastOwner }
  return { ...a, owners, incoming, outgoing, abandoned, founder, lastOwner }
}

/** `next` with its version bumped if anything changed, else `before` itself. */
function finish (before: KeyspaceTable, next: KeyspaceTable): KeyspaceTable {
  if (sameTable(before, next)) return before
  return { ...next, version: before.version + 1 }
}

function changedPartitions (a: KeyspaceTable, b: KeyspaceTable): number[] {
  const out: number[] = []
  for (let p = 0; p < b.partitions; p++) if (!sameAssignment(a.assignments[p]!, b.assignments[p]!)) out.push(p)
  return out
}

// ---------------------------------------------------------------------------------------------
// Rebalancing

/**
 * The assignments rebalanced over the eligible members (see the module comment). Partitions
 * with neither owners nor incoming replicas are (re)founded in a new generation.
 */
export function rebalance (table: KeyspaceTable): KeyspaceTable {
  const eligible = table.members.filter(m => !table.draining.includes(m))
  const n = eligible.length
  if (n === 0) return table
  const r = Math.min(table.replication, n)
  const isEligible = new Set(eligible)
  const P = table.partitions
  // A partition nobody holds whose last owner is a member is refounded from its copy, by it;
  // one whose last owner is away waits for it, and takes no replicas meanwhile.
  const restoring = table.assignments.map(a => a.owners.length === 0 && a.incoming.length === 0 && a.lastOwner !== null && table.members.includes(a.lastOwner.peer))
  const waiting = table.assignments.map(a => awaitsLastOwner(table, a))
  // The replica set each partition is heading for; serving owners first.
  const sets: Participant[][] = table.assignments.map((a, p) => restoring[p]! ? [a.lastOwner!.peer] : waiting[p]! ? [] : unique([...a.owners.filter(o => !a.outgoing.includes(o)), ...a.incoming]).filter(m => isEligible.has(m)))
  // A partition with no owner left can only get its state from its incoming replicas (or its
  // last owner): keep them.
  const pinned = table.assignments.map((a, p) => (a.owners.length === 0 && a.incoming.length > 0) || restoring[p]!)
  const load = new Map<Participant, number>(eligible.map(m => [m, 0]))
  for (const s of sets) for (const m of s) if (load.has(m)) load.set(m, load.get(m)! + 1)

  // Each member's target: floor(P r / n), plus one for the r' most loaded (ties: smaller id).
  const total = P * r
  const base = Math.floor(total / n)
  const target = new Map<Participant, number>(eligible.map(m => [m, base]))
  const byLoad = [...eligible].sort((a, b) => (load.get(b)! - load.get(a)!) || compare(a, b))
  for (let i = 0; i < total % n; i++) target.set(byLoad[i]!, base + 1)
  const excess = (m: Participant): number => load.get(m)! - target.get(m)!

  for (let p = 0; p < P; p++) {
    const set = sets[p]!
    // 1. Too many replicas: drop the most over-full (incoming before owners: cancelling is cheaper).
    while (set.length > r && !pinned[p]) {
      const owners = table.assignments[p]!.owners
      const victim = [...set].sort((a, b) => (excess(b) - excess(a)) || (Number(owners.includes(a)) - Number(owners.includes(b))) || compare(a, b))[0]!
      set.splice(set.indexOf(victim), 1)
      load.set(victim, load.get(victim)! - 1)
    }
  }
  for (let p = 0; p < P; p++) {
    const set = sets[p]!
    // 2. Too few replicas: add the most under-full members that lack it.
    while (set.length < r && !waiting[p]) {
      const u = eligible.filter(c => !set.includes(c)).sort((a, b) => (excess(a) - excess(b)) || compare(a, b))[0]
      if (u === undefined) break
      set.push(u)
      load.set(u, load.get(u)! + 1)
    }
  }
  for (let p = 0; p < P; p++) {
    const set = sets[p]!
    if (pinned[p]) continue
    // 3. Over-full members hand this partition to an under-full one that lacks it.
    for (let i = 0; i < set.length; i++) {
      const m = set[i]!
      if (excess(m) <= 0) continue
      const u = eligible.filter(c => excess(c) < 0 && !set.includes(c)).sort((a, b) => (excess(a) - excess(b)) || compare(a, b))[0]
      if (u === undefined) continue
      set[i] = u
      load.set(m, load.get(m)! - 1)
      load.set(u, load.get(u)! + 1)
    }
  }
  const assignments = table.assignments.map((a, p) => reassign(a, sets[p]!))
  return { ...table, assignments }
}

/** The assignment heading for `set`, from `a`. */
function reassign (a: PartitionAssignment, set: readonly Participant[]): PartitionAssignment {
  if (a.owners.length === 0 && a.incoming.length === 0) {
    // No replica holds anything: a new generation, founded by the first of the set (the last
    // owner, restoring its copy, when the partition has one: `rebalance` put it first).
    if (set.length === 0) return a
    const founder = set[0]!
    const restores = a.lastOwner?.peer === founder
    const generation = a.generation + 1
    return { generation, owners: [founder], incoming: set.slice(1), outgoing: [], abandoned: [], founder, lastOwner: restores ? a.lastOwner : null, dataSince: restores ? a.dataSince : generation }
  }
  const incoming = set.filter(p => !a.owners.includes(p))
  const outgoing = a.owners.filter(p => !set.includes(p))
  if (incoming.length === 0) {
    const owners = a.owners.filter(p => set.includes(p))
    // Keep at least one serving owner: an over-full set that shed everything it serves keeps its first.
    return { ...a, owners: owners.length > 0 ? owners : a.owners.slice(0, 1), incoming, outgoing: [], abandoned: [] }
  }
  return { ...a, incoming, outgoing, abandoned: a.abandoned.filter(p => incoming.includes(p)) }
}

// ---------------------------------------------------------------------------------------------
// Small helpers on sorted lists and equality

function compare (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function insertSorted (list: readonly Participant[], peer: Participant): Participant[] {
  return [...list, peer].sort(compare)
}

function unique (list: readonly Participant[]): Participant[] {
  return [...new Set(list)]
}

function sameAssignment (a: PartitionAssignment, b: PartitionAssignment): boolean {
  return a === b || (a.generation === b.generation && a.founder === b.founder && sameParticipants(a.owners, b.owners) &&
    sameParticipants(a.incoming, b.incoming) && sameParticipants(a.outgoing, b.outgoing) && sameParticipants(a.abandoned, b.abandoned) &&
    a.lastOwner?.peer === b.lastOwner?.peer && a.lastOwner?.generation === b.lastOwner?.generation && a.dataSince === b.dataSince)
}

function sameTable (a: KeyspaceTable, b: KeyspaceTable): boolean {
  return a === b || (sameParticipants(a.members, b.members) && sameParticipants(a.draining, b.draining) &&
    a.assignments.every((x, i) => sameAssignment(x, b.assignments[i]!)))
}
