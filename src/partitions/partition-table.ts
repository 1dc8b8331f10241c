/**
 * A built-in example event type: a shared **partition table**.
 *
 * `P` partitions, numbered `0..P-1`, are assigned to the cluster's current participants. The
 * table is an ordinary {@link EventSpec}: the fold's `join` and `unjoin` hooks add or remove a
 * participant and rebalance, and three user events let an application resize the table
 * (`configure`), reassign one partition by hand (`move`) or restore balance after manual moves
 * (`rebalance`).
 *
 * Every rebalance is *balanced* and *minimal*:
 * - afterwards each participant owns `floor(P/n)` or `ceil(P/n)` partitions;
 * - the number of partitions whose owner changes is the fewest with which any balanced
 *   assignment can be reached from the previous one. Partitions of a departed participant (or
 *   without an owner) always move; otherwise partitions only move from over-full owners to
 *   under-full ones.
 *
 * Everything is deterministic (it depends only on the data in the state and the event, never on
 * randomness, clocks or object insertion history), total (invalid events become system errors,
 * nothing throws) and immutable (a new state is returned; the input is never mutated). States
 * and outputs are plain JSON-like data, so the default codec can carry them.
 *
 * @example
 * ```ts
 * import { partitionTableSpec, partitionForKey, ownerOf } from './partitions/partition-table.js'
 *
 * const spec = partitionTableSpec(16)
 * let table = spec.init()
 * table = spec.join!('peer-a', table)          // peer-a owns all 16
 * table = spec.join!('peer-b', table)          // 8 of them move to peer-b
 * const owner = ownerOf(table, partitionForKey(table, 'user:42'))
 * ```
 *
 * @module
 */

import type { ApplyResult, EventSpec, Participant } from '../eventfold/types.js'

/** The largest partition count a table accepts (`65536`). */
export const MAX_PARTITIONS = 1 << 16

/**
 * The replicated state: which participant owns each partition.
 *
 * Plain immutable data (objects, arrays, strings, numbers and `null`).
 *
 * @example
 * ```ts
 * const table: PartitionTable = {
 *   partitions: 4,
 *   owners: ['a', 'a', 'b', 'b'],
 *   participants: ['a', 'b'],
 *   version: 3
 * }
 * ```
 */
export interface PartitionTable {
  /** The number of partitions `P`, an integer in `[1, MAX_PARTITIONS]`. */
  readonly partitions: number
  /**
   * `owners[i]` is the owner of partition `i` (length `P`). `null` only when there are no
   * participants; otherwise every owner is one of {@link PartitionTable.participants}.
   */
  readonly owners: ReadonlyArray<Participant | null>
  /** The current participants, sorted by string (UTF-16 code unit) order, without duplicates. */
  readonly participants: readonly Participant[]
  /** Starts at 0 and increases by one on every change of the table; unchanged otherwise. */
  readonly version: number
}

/**
 * The user events of a partition table.
 *
 * - `configure`: sets the number of partitions to `partitions` (an integer in
 *   `[1, MAX_PARTITIONS]`). Allowed at any time: partitions below the new count keep their
 *   owners wherever balance allows, removed partitions disappear, added ones are assigned, and
 *   the result is rebalanced with the fewest moves. System error if the count is invalid.
 * - `move`: manually reassigns `partition` to `to`. System error if `partition` is not an
 *   integer in `[0, P)` or `to` is not a participant. A move may leave the table unbalanced; the
 *   next join, leave, `configure` or `rebalance` restores balance.
 * - `rebalance`: restores balance with the fewest moves (a no-op on a balanced table).
 *
 * @example
 * ```ts
 * const events: PartitionTableEvent[] = [
 *   { type: 'configure', partitions: 64 },
 *   { type: 'move', partition: 3, to: 'peer-b' },
 *   { type: 'rebalance' }
 * ]
 * ```
 */
export type PartitionTableEvent =
  | {
    /** Resize the table. */
    readonly type: 'configure'
    /** The new partition count. */
    readonly partitions: number
  }
  | {
    /** Reassign one partition by hand. */
    readonly type: 'move'
    /** The partition to reassign. */
    readonly partition: number
    /** Its new owner, a current participant. */
    readonly to: Participant
  }
  | {
    /** Restore balance after manual moves. */
    readonly type: 'rebalance'
  }

/**
 * What a partition table event did. `moved` counts partitions whose owner changed (including
 * from or to `null`). `error` is the output of every system error.
 *
 * @example
 * ```ts
 * const out: PartitionTableOutput = { type: 'rebalanced', moved: 2 }
 * if (out.type === 'error') console.error(out.message)
 * ```
 */
export type PartitionTableOutput =
  | {
    /** A `configure` event applied. */
    readonly type: 'configured'
    /** The partition count now. */
    readonly partitions: number
    /** Partitions whose owner changed. */
    readonly moved: number
  }
  | {
    /** A `move` event applied. */
    readonly type: 'moved'
    /** The partition moved. */
    readonly partition: number
    /** Its previous owner (`null` if it had none). */
    readonly from: Participant | null
    /** Its new owner. */
    readonly to: Participant
  }
  | {
    /** A `rebalance` event applied. */
    readonly type: 'rebalanced'
    /** Partitions whose owner changed. */
    readonly moved: number
  }
  | {
    /** The event was invalid: a system error. */
    readonly type: 'error'
    /** Why, for humans. */
    readonly message: string
  }

/**
 * The event specification of a partition table with `partitions` partitions initially.
 *
 * - `init()` gives a table with no participants and every partition unowned (version 0).
 * - `join(p, s)` adds `p` and rebalances; `unjoin(p, s)` removes `p` and reassigns its
 *   partitions. Both are balanced and minimal (see the module documentation); joining a present
 *   participant or removing an absent one returns `s` unchanged.
 * - `apply` handles {@link PartitionTableEvent}s; invalid events (including malformed values
 *   that do not match the type at all) give `{ ok: false, output: { type: 'error', ... } }`.
 *
 * @param partitions - initial partition count, an integer in `[1, MAX_PARTITIONS]`
 * @throws RangeError if `partitions` is not such an integer (the returned spec never throws)
 *
 * @example
 * ```ts
 * const spec = partitionTableSpec(8)
 * let t = spec.init()
 * t = spec.join!('a', t)
 * t = spec.join!('b', t)
 * const r = spec.apply({ type: 'move', partition: 0, to: 'b' }, t)
 * // r.ok === true, r.output = { type: 'moved', partition: 0, from: 'a', to: 'b' }
 * ```
 */
export function partitionTableSpec (
  partitions: number
): EventSpec<PartitionTableEvent, PartitionTable, PartitionTableOutput> {
  if (!validPartitionCount(partitions)) {
    throw new RangeError(`partition count must be an integer in [1, ${MAX_PARTITIONS}], got ${String(partitions)}`)
  }
  return {
    init: () => ({
      partitions,
      owners: new Array<Participant | null>(partitions).fill(null),
      participants: [],
      version: 0
    }),
    apply: applyEvent,
    join: joinParticipant,
    unjoin: unjoinParticipant
  }
}

/**
 * Whether `spec` is a partition table's (made by {@link partitionTableSpec}, whatever its
 * initial count): its `apply`, `join` and `unjoin` are this module's own functions. The admin
 * layer uses it to show the table and to plan changes with the very functions the fold runs.
 *
 * @example
 * ```ts
 * isPartitionTableSpec(partitionTableSpec(8)) // true
 * ```
 */
export function isPartitionTableSpec (spec: unknown): spec is EventSpec<PartitionTableEvent, PartitionTable, PartitionTableOutput> {
  if (typeof spec !== 'object' || spec === null) return false
  const s = spec as Partial<EventSpec<PartitionTableEvent, PartitionTable, PartitionTableOutput>>
  return s.apply === applyEvent && s.join === joinParticipant && s.unjoin === unjoinParticipant
}

/**
 * The owner of `partition`, or `null` if it is unowned or not a partition of the table.
 *
 * @example
 * ```ts
 * ownerOf({ partitions: 2, owners: ['a', 'b'], participants: ['a', 'b'], version: 2 }, 1) // 'b'
 * ```
 */
export function ownerOf (table: PartitionTable, partition: number): Participant | null {
  if (!Number.isInteger(partition) || partition < 0 || partition >= table.partitions) return null
  return table.owners[partition] ?? null
}

/**
 * The partitions owned by `participant`, ascending (empty if it owns none).
 *
 * @example
 * ```ts
 * partitionsOf({ partitions: 3, owners: ['a', 'b', 'a'], participants: ['a', 'b'], version: 2 }, 'a') // [0, 2]
 * ```
 */
export function partitionsOf (table: PartitionTable, participant: Participant): number[] {
  const result: number[] = []
  for (let i = 0; i < table.partitions; i++) {
    if (table.owners[i] === participant) result.push(i)
  }
  return result
}

/**
 * The partition a key belongs to: FNV-1a (32-bit) of the key's bytes, modulo the partition
 * count. A string is hashed as its UTF-8 encoding, so a string and its UTF-8 bytes map to the
 * same partition. Stable across machines, processes and versions of this library.
 *
 * @example
 * ```ts
 * const p = partitionForKey(table, 'user:42')          // in [0, table.partitions)
 * partitionForKey(table, new TextEncoder().encode('user:42')) === p // true
 * ```
 */
export function partitionForKey (table: PartitionTable, key: string | Uint8Array): number {
  return fnv1a32(typeof key === 'string' ? utf8.encode(key) : key) % Math.max(1, table.partitions)
}

/**
 * FNV-1a 32-bit hash of `bytes`, an unsigned integer in `[0, 2^32)`.
 *
 * @example
 * ```ts
 * fnv1a32(new Uint8Array()) // 0x811c9dc5
 * fnv1a32(new TextEncoder().encode('a')) // 0xe40c292c
 * ```
 */
export function fnv1a32 (bytes: Uint8Array): number {
  let hash = 0x811c9dc5
  for (const byte of bytes) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/**
 * Whether every participant owns `floor(P/n)` or `ceil(P/n)` partitions and every partition
 * is owned by a participant (or, with no participants, every partition is unowned).
 *
 * @example
 * ```ts
 * isBalanced({ partitions: 3, owners: ['a', 'a', 'b'], participants: ['a', 'b'], version: 2 }) // true
 * ```
 */
export function isBalanced (table: PartitionTable): boolean {
  const n = table.participants.length
  if (n === 0) return table.owners.every((o) => o === null)
  const counts = ownedCounts(table.owners, table.participants, table.partitions)
  if (counts === undefined) return false
  const q = Math.floor(table.partitions / n)
  return counts.every((c) => c === q || c === q + 1)
}

/**
 * A compact human-readable view for demos and logs: a header line, then one line per
 * participant (in sorted order) with the last 6 characters of its id, its partition count and
 * its partitions as ranges, plus an `(unowned)` line if any partition has no owner.
 *
 * @example
 * ```ts
 * formatPartitionTable(table)
 * // partition table v5: 8 partitions, 3 participants
 * //   …Qm3xYz  3  0-2
 * //   …Ab12cd  3  3-5
 * //   …Zz9w8e  2  6-7
 * ```
 */
export function formatPartitionTable (table: PartitionTable): string {
  const n = table.participants.length
  const lines = [
    `partition table v${table.version}: ${table.partitions} partition${table.partitions === 1 ? '' : 's'}, ` +
    `${n} participant${n === 1 ? '' : 's'}`
  ]
  const rows: Array<[string, number[]]> = table.participants.map((p) => [shortId(p), partitionsOf(table, p)])
  const unowned: number[] = []
  for (let i = 0; i < table.partitions; i++) {
    const owner = table.owners[i] ?? null
    if (owner === null || !table.participants.includes(owner)) unowned.push(i)
  }
  if (unowned.length > 0) rows.push(['(unowned)', unowned])
  const width = Math.max(0, ...rows.map(([label]) => label.length))
  const countWidth = String(table.partitions).length
  for (const [label, owned] of rows) {
    lines.push(`  ${label.padEnd(width)}  ${String(owned.length).padStart(countWidth)}  ${formatRanges(owned)}`)
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------

const utf8 = new TextEncoder()

function validPartitionCount (p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= MAX_PARTITIONS
}

function error (message: string): ApplyResult<PartitionTable, PartitionTableOutput> {
  return { ok: false, output: { type: 'error', message } }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

/** `apply` of the spec: validates the event (which may be any value off the wire) and runs it. */
function applyEvent (
  event: PartitionTableEvent,
  state: PartitionTable
): ApplyResult<PartitionTable, PartitionTableOutput> {
  const e: unknown = event
  if (!isRecord(e)) return error('event must be an object')
  switch (e.type) {
    case 'configure': {
      const partitions = e.partitions
      if (!validPartitionCount(partitions)) {
        return error(`configure: partitions must be an integer in [1, ${MAX_PARTITIONS}]`)
      }
      const resized: Array<Participant | null> = []
      for (let i = 0; i < partitions; i++) resized.push(i < state.partitions ? (state.owners[i] ?? null) : null)
      const owners = rebalanceOwners(resized, state.participants)
      const moved = countChanges(state.owners, owners, partitions)
      const changed = moved > 0 || partitions !== state.partitions
      return {
        ok: true,
        output: { type: 'configured', partitions, moved },
        state: changed ? { partitions, owners, participants: state.participants, version: state.version + 1 } : state
      }
    }
    case 'move': {
      const { partition, to } = e
      if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0 || partition >= state.partitions) {
        return error(`move: partition must be an integer in [0, ${state.partitions})`)
      }
      if (typeof to !== 'string' || !state.participants.includes(to)) {
        return error('move: target is not a participant')
      }
      const from = state.owners[partition] ?? null
      if (from === to) return { ok: true, output: { type: 'moved', partition, from, to }, state }
      const owners = normalizedOwners(state)
      owners[partition] = to
      return {
        ok: true,
        output: { type: 'moved', partition, from, to },
        state: { ...state, owners, version: state.version + 1 }
      }
    }
    case 'rebalance': {
      const owners = rebalanceOwners(state.owners, state.participants, state.partitions)
      const moved = countChanges(state.owners, owners, state.partitions)
      return {
        ok: true,
        output: { type: 'rebalanced', moved },
        state: moved > 0 ? { ...state, owners, version: state.version + 1 } : state
      }
    }
    default:
      return error(`unknown partition table event type: ${typeof e.type === 'string' ? JSON.stringify(e.type) : typeof e.type}`)
  }
}

/** `join` of the spec. */
function joinParticipant (participant: Participant, state: PartitionTable): PartitionTable {
  if (typeof participant !== 'string' || state.participants.includes(participant)) return state
  const participants = [...state.participants, participant].sort(compareStrings)
  return {
    ...state,
    owners: rebalanceOwners(state.owners, participants, state.partitions),
    participants,
    version: state.version + 1
  }
}

/** `unjoin` of the spec. */
function unjoinParticipant (participant: Participant, state: PartitionTable): PartitionTable {
  if (!state.participants.includes(participant)) return state
  const participants = state.participants.filter((p) => p !== participant)
  return {
    ...state,
    owners: rebalanceOwners(state.owners, participants, state.partitions),
    participants,
    version: state.version + 1
  }
}

/** Code-unit string order, identical on every machine (unlike `localeCompare`). */
function compareStrings (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** A fresh, mutable copy of the owners array with exactly `partitions` entries. */
function normalizedOwners (state: PartitionTable): Array<Participant | null> {
  const owners: Array<Participant | null> = []
  for (let i = 0; i < state.partitions; i++) owners.push(state.owners[i] ?? null)
  return owners
}

/** Number of partitions `i < partitions` whose owner differs between `a` and `b`. */
function countChanges (
  a: ReadonlyArray<Participant | null>,
  b: ReadonlyArray<Participant | null>,
  partitions: number
): number {
  let changes = 0
  for (let i = 0; i < partitions; i++) if ((a[i] ?? null) !== (b[i] ?? null)) changes++
  return changes
}

/**
 * How many partitions each participant (by index in the sorted `participants`) owns, or
 * `undefined` if some partition is owned by a non-participant or unowned.
 */
function ownedCounts (
  owners: ReadonlyArray<Participant | null>,
  participants: readonly Participant[],
  partitions: number
): number[] | undefined {
  const index = new Map(participants.map((p, i) => [p, i]))
  const counts = new Array<number>(participants.length).fill(0)
  for (let i = 0; i < partitions; i++) {
    const owner = owners[i] ?? null
    const at = owner === null ? undefined : index.get(owner)
    if (at === undefined) return undefined
    counts[at] = (counts[at] ?? 0) + 1
  }
  return counts
}

/**
 * The balanced assignment reachable from `owners` with the fewest moves.
 *
 * With `n` participants, `q = floor(P/n)` and `r = P mod n`, exactly `r` participants get
 * target `q + 1` and the rest `q`. A participant currently holding `c` partitions keeps
 * `min(c, target)` of them, so the moves are `P - Σ min(c, target)`; that sum is largest when
 * the `q + 1` targets go to the participants holding the most (ties: smaller id first). Each
 * participant keeps its lowest-numbered partitions up to its target; the freed partitions (and
 * any owned by a non-participant or nobody), in ascending order, fill the deficits of the
 * participants in sorted order.
 *
 * @param participants - sorted, without duplicates
 */
function rebalanceOwners (
  owners: ReadonlyArray<Participant | null>,
  participants: readonly Participant[],
  partitions: number = owners.length
): Array<Participant | null> {
  const n = participants.length
  if (n === 0) return new Array<Participant | null>(partitions).fill(null)

  const index = new Map(participants.map((p, i) => [p, i]))
  const ownerIndex = new Array<number>(partitions).fill(-1)
  const counts = new Array<number>(n).fill(0)
  for (let i = 0; i < partitions; i++) {
    const owner = owners[i] ?? null
    const at = owner === null ? undefined : index.get(owner)
    if (at !== undefined) {
      ownerIndex[i] = at
      counts[at] = (counts[at] ?? 0) + 1
    }
  }

  const q = Math.floor(partitions / n)
  const r = partitions % n
  const byHolding = participants.map((_, i) => i)
    .sort((a, b) => ((counts[b] ?? 0) - (counts[a] ?? 0)) || a - b)
  const targets = new Array<number>(n).fill(q)
  for (let k = 0; k < r; k++) {
    const at = byHolding[k]
    if (at !== undefined) targets[at] = q + 1
  }

  const result: Array<Participant | null> = new Array<Participant | null>(partitions).fill(null)
  const kept = new Array<number>(n).fill(0)
  const free: number[] = []
  for (let i = 0; i < partitions; i++) {
    const at = ownerIndex[i] ?? -1
    if (at >= 0 && (kept[at] ?? 0) < (targets[at] ?? 0)) {
      kept[at] = (kept[at] ?? 0) + 1
      result[i] = participants[at] ?? null
    } else {
      free.push(i)
    }
  }

  let next = 0
  for (let at = 0; at < n; at++) {
    const participant = participants[at] ?? null
    for (let d = (targets[at] ?? 0) - (kept[at] ?? 0); d > 0; d--) {
      const partition = free[next++]
      if (partition !== undefined) result[partition] = participant
    }
  }
  return result
}

/** The last 6 characters of an id, prefixed with `…` when shortened. */
function shortId (participant: Participant): string {
  return participant.length <= 6 ? participant : `…${participant.slice(-6)}`
}

/** `[0,1,2,5,7,8]` → `"0-2,5,7-8"`; `"-"` when empty. */
function formatRanges (sorted: readonly number[]): string {
  if (sorted.length === 0) return '-'
  const parts: string[] = []
  let start = sorted[0] ?? 0
  let prev = start
  for (let k = 1; k <= sorted.length; k++) {
    const value = sorted[k]
    if (value !== undefined && value === prev + 1) {
      prev = value
      continue
    }
    parts.push(start === prev ? String(start) : `${start}-${prev}`)
    if (value !== undefined) start = prev = value
  }
  return parts.join(',')
}
