/**
 * The state of one replica, shared by the modules that work on it: the participant table, the
 * infimum, the outstanding events, each participant's log, what others acknowledged, and the
 * projection cache. {@link EventFold} is the public face; projection.ts, folding.ts,
 * acknowledgements.ts, merge.ts and settled.ts each own one concern over this state. Nothing
 * here is exported from the package.
 *
 * Representation (chosen so the common operations cost O(1) amortised):
 * - Outstanding events live in one array sorted by id, with a moving head index: a new local
 *   event appends, folding pops from the front, a late remote event is spliced in.
 * - Each participant's log is a count of its events (`seq`) and the hash chain after the last
 *   one; its outstanding events are the last ones of its log, without a gap (events leave the
 *   outstanding array only from the front, in id order, which is each log's order too).
 * - Acknowledgements arrive as version vectors and are kept as a mark per log and
 *   acknowledger (`LogState.ackedBy`); an entry reads the marks covering it into its bitmask
 *   over the participant table (`acksOf`), which is what folding reads.
 *
 * @module
 */
import { admissionsOf } from './admissions.js'
import type { GuardedSpec } from './hooks.js'
import { LogPositions } from './log-positions.js'
import type { LogVector } from './log-vector.js'
import { MaskBuilder, ParticipantTable } from './participants.js'
import {
  BOTTOM,
  compareEventIds,
  type Admission,
  type Delta,
  type EventId,
  type EventSignatures,
  type FailureReport,
  type InfimumDigest,
  type Participant,
  type SignedDelta,
  type ThrownHook
} from './types.js'

/** A failure's payload: a returned failure's output, or a description of what was thrown. */
export type Failure<O> =
  | { readonly output: O, readonly thrown?: undefined }
  | { readonly thrown: string, readonly output?: undefined }

/** A delta as the fold holds it: participants by index; an error keeps the event that failed. */
export type InternalDelta<E, O> =
  | { readonly kind: 'event', readonly event: E }
  | { readonly kind: 'join', readonly peer: number }
  | { readonly kind: 'unjoin', readonly peer: number, readonly quorum?: true }
  | {
    readonly kind: 'error'
    failure: Failure<O>
    errorAcks: bigint
    /** The event: its log holds it, and `apply` runs again on the state it folds on (`foldedFailure`). */
    readonly source: { readonly event: E }
  }

/** An outstanding event as the fold holds it: the id is flattened and acks are a bitmask. */
export interface Entry<E, O> {
  readonly counter: number
  /** Interned participant id of the event's creator. */
  readonly participant: Participant
  /** Index of `participant` in the replica's participant table. */
  readonly creator: number
  /** The creator's log it belongs to (the counter of that log's first event). */
  readonly since: number
  /**
   * That log's state in this fold (`FoldCore.log(creator, since)`, which never replaces one):
   * held on the entry because folding asks it of every event, and two map lookups per question
   * cost a tenth of the write rate.
   */
  readonly log: LogState
  /** Position in that log (its first event is 1). */
  seq: number
  /** The creator's chain hash after this event (empty when the fold does not hash). */
  hash: Uint8Array
  delta: InternalDelta<E, O>
  /**
   * Who acknowledged it, as far as set here: read it through `FoldCore.acksOf`, which adds
   * the acknowledgers whose marks cover it (see `LogState.ackedBy`).
   */
  acks: bigint
  /** The `FoldCore.ackVersion` at which `acks` last took in the marks (-1: never). */
  ackSeen: number
  /** An UnJoin only: how much of each of the leaver's logs its acknowledgers held (see `standInMask`). */
  standIn: Map<number, number> | undefined
  /**
   * An UnJoin only: the acknowledgers whose holdings of the leaver's logs `standIn` includes.
   * An acknowledgement can arrive without them (the creator's, implied by a body it relays;
   * a whole fold's mask): it counts for folding the UnJoin, not for letting it stand in.
   */
  positioned: bigint
  /**
   * How the projection last found this entry, if not a plain success: for a user event, the
   * failure `apply` returned or threw; for a Join or UnJoin, that its hook threw. Folding
   * takes the same steps as the projection, so while the projection is valid this says how
   * the entry will fold here, before the fold reaches it (see `simulateDigest`).
   */
  projectedFailure: Failure<O> | undefined
  /** Whether a hook that threw for this entry has been reported (each is reported once). */
  reported: boolean
}

/**
 * The entries folded since a store last took them (settled.ts), in fold order, and the digest
 * count of the infimum they fold onto: every fold extends the digest by one, so an infimum
 * moved in any other way shows in the count.
 */
export interface SettledRecord<E, O> {
  readonly from: number
  readonly entries: Array<Entry<E, O>>
}

/** One of a participant's logs as this replica holds it. */
export interface LogState {
  /** Which of the participant's logs (the counter of its first event). */
  readonly since: number
  /** How many of its events this replica holds, from the first. */
  seq: number
  /** The chain hash after event `seq`. */
  hash: Uint8Array
  /** The participant's signature of that head, if this replica has it. */
  signature: Uint8Array | undefined
  /** Whether `signature` was checked (one taken from a snapshot is checked before it is relayed). */
  verified: boolean
  /** The Join that admitted its creator where it writes the log (`CreatorLog.admittedBy`); `undefined`: not known. */
  admittedBy: EventId | undefined
  /** Events up to here have left the outstanding array (folded or dropped)... */
  baseSeq: number
  /** ...and this is the chain hash after the last of them... */
  baseHash: Uint8Array
  /** ...and its counter (0 before the first). */
  baseCounter: number
  /**
   * The position of the last event of this log that folded here (0: none; not those a taken
   * infimum passed): what this replica held of a leaver's log before its UnJoin although no
   * longer outstanding (see `heldBefore`).
   */
  foldedSeq: number
  /** Its outstanding entries by position (`FoldCore.positions` gives them typed). */
  readonly outstanding: LogPositions<unknown>
  /**
   * Per acknowledger (by index), how many of this log's events the last acknowledgement of it
   * taken here says it holds: its mark. Every entry of the log at or below the mark that is
   * not ordered before the acknowledger's `FoldCore.ackBefore` is acknowledged by it, without
   * its bit being set (`FoldCore.acksOf` adds it when the entry is read).
   */
  readonly ackedBy: Map<number, number>
  /**
   * The marks taken together, as of `FoldCore.ackVersion` `version`: the acknowledgers whose
   * marks count for every entry of the log (none before an `ackBefore`), as a mask, and the
   * lowest of their marks, at or below which an entry takes them all in one step
   * (`FoldCore.acksOf`); `conditional`: whether any other acknowledger has a mark here. A fold
   * reads thousands of a log's entries between two moves of a mark, and reading each mark for
   * each of them was a tenth of a 64-peer burst.
   */
  readonly together: { version: number, mask: bigint, upTo: number, conditional: boolean }
}

/** An acknowledgement of another participant, with participants by index. */
export interface Ack<O> {
  readonly p: number
  readonly infId: EventId
  readonly infDigest: InfimumDigest
  readonly joined: boolean
  /** The log its sender writes now (0: none yet). */
  readonly log: number
  /** The position there of its sender's last own event not folded there (0: none). */
  readonly unsettled: number
  /** How many events of each log its sender holds, by creator index and log. */
  readonly holds: LogVector
  readonly failures: ReadonlyArray<FailureReport<O>>
  /** `"counter:participant"` of an UnJoin to each of the leaver's logs and the position held of it before the UnJoin. */
  readonly departing: ReadonlyMap<string, ReadonlyMap<number, number>>
  /** The sum of `holds`: newer acknowledgements of a participant never hold less. */
  readonly total: number
}

const EMPTY_HASH: Uint8Array = new Uint8Array(0)

/** Compacting the outstanding array only past this many popped slots keeps pops O(1) amortised. */
const COMPACT_AFTER = 1024

/** The state of one replica; see the module comment. */
export class FoldCore<E, S, O> {
  readonly selfIndex: number
  readonly self: Participant
  readonly table = new ParticipantTable()
  /** Hooks that threw since the last update returned, reported by the next one. */
  thrownSince: ThrownHook[] = []
  /** How many events became failures while folding here (each changes this replica's acknowledgement). */
  failuresFound = 0

  // The infimum.
  infId: EventId
  infDigest: InfimumDigest
  infMask: bigint
  /** The Join that admitted each infimum participant, by index (see admissions.ts); absent: not known. */
  admitted: Map<number, EventId>
  infState: S

  // Outstanding events, sorted by id, live in entries[head..].
  entries: Array<Entry<E, O>> = []
  head = 0
  maxCounter: number

  // Pending UnJoins: the outstanding UnJoin entries, and the mask of the peers they name.
  readonly unjoins = new Set<Entry<E, O>>()
  unjoinMask = 0n
  /** The outstanding Joins and UnJoins, in no order (who takes part changes only with them). */
  readonly memberships = new Set<Entry<E, O>>()
  /**
   * The acknowledgers with marks (`LogState.ackedBy`), each with the event before which its
   * marks do not count: the UnJoin of its pending readmission when they were taken (see
   * acknowledgements.ts, `newIncarnationBefore`), or `undefined`.
   *
   * Why marks rather than bits: in a burst, thousands of events are outstanding and each of n
   * acknowledgers covers each of them, at every replica; setting a bit allocates a `bigint`,
   * and those n bits per event at each of n replicas were most of a 64-peer burst's garbage.
   * A mark moves in O(1) per log, and an entry takes in the marks only when it is read: mostly
   * once, at the head, when it folds.
   */
  readonly ackBefore = new Map<number, Entry<E, O> | undefined>()
  /** Moves whenever a mark does: an entry whose `ackSeen` is older takes the marks in again. */
  ackVersion = 0
  /** Builds the masks of acknowledgers (`acksOf`, acknowledgements.ts `initialAcks`); empty between uses. */
  readonly covered = new MaskBuilder()
  /**
   * Outstanding entries that may lack this replica's own acknowledgement (entries taken from
   * others, events that became failures since the last merge ended): every other outstanding
   * entry got it when the last merge ended (folding.ts, `acknowledgeOwn`).
   */
  ownAckDue: Array<Entry<E, O>> = []

  /**
   * Renegades set aside, by creator, in id order, each with its log's base before it was
   * dropped: kept until the infimum passes them, so that a Join of their creator ordered before
   * them that arrives late puts them back (see `parkHead`).
   */
  readonly parked = new Map<number, Array<{ readonly entry: Entry<E, O>, readonly baseSeq: number, readonly baseHash: Uint8Array, readonly baseCounter: number }>>()
  /** Heads of others' logs, taken unchecked, whose signature failed when checked before they were handed on. */
  lateForged = 0

  /** Each participant's logs, by index, then log (a log none of whose events are held is absent). */
  readonly logs = new Map<number, Map<number, LogState>>()
  /** The log this replica writes now; `undefined`: its next event starts a new one. */
  ownLog: LogState | undefined
  /** The newest acknowledgement of each other participant that this replica could take. */
  readonly latest = new Map<number, Ack<O>>()
  /** A newer one it could not take yet: it holds events of its sender not held here. */
  readonly pending = new Map<number, Ack<O>>()
  /** What folded since a store last took the settled record (settled.ts); `undefined`: nothing is recorded. */
  settled: SettledRecord<E, O> | undefined

  // Projection cache.
  projValid = true
  projState: S
  projMask: bigint
  /** `admitted` as the projection has it. */
  projAdmitted: Map<number, EventId>
  /**
   * The last outstanding entry, if it is a user event the projection applied last, and its
   * output when that succeeded (its failure is the entry's `projectedFailure`).
   */
  tailEntry: Entry<E, O> | undefined
  tailApplied: { readonly output: O } | undefined

  constructor (
    readonly origin: string,
    self: Participant,
    readonly hooks: GuardedSpec<E, S, O>,
    readonly signatures: EventSignatures<E, O> | undefined,
    infId: EventId,
    infDigest: InfimumDigest,
    participants: Iterable<Participant>,
    infState: S,
    admissions: Iterable<Admission> = []
  ) {
    this.selfIndex = this.table.intern(self)
    this.self = this.table.name(this.selfIndex)
    this.infId = infId.counter === 0 ? BOTTOM : { counter: infId.counter, participant: this.table.name(this.table.intern(infId.participant)) }
    this.infDigest = infDigest
    let mask = 0n
    for (const p of participants) mask |= this.table.bit(this.table.intern(p))
    this.infMask = mask
    this.admitted = admissionsOf(this.table, admissions)
    this.infState = hooks.frozen(infState)
    this.maxCounter = infId.counter
    this.projState = this.infState
    this.projMask = mask
    this.projAdmitted = new Map(this.admitted)
  }

  get selfBit (): bigint {
    return this.table.bit(this.selfIndex)
  }

  observe (counter: number): void {
    if (counter > this.maxCounter) this.maxCounter = counter
  }

  /** Log `since` of participant `i`, created empty if this replica holds none of its events. */
  log (i: number, since: number): LogState {
    let logs = this.logs.get(i)
    if (logs === undefined) { logs = new Map(); this.logs.set(i, logs) }
    let log = logs.get(since)
    if (log === undefined) {
      log = { since, seq: 0, hash: EMPTY_HASH, signature: undefined, verified: true, admittedBy: undefined, baseSeq: 0, baseHash: EMPTY_HASH, baseCounter: 0, foldedSeq: 0, outstanding: new LogPositions(), ackedBy: new Map(), together: { version: -1, mask: 0n, upTo: 0, conditional: false } }
      logs.set(since, log)
    }
    return log
  }

  /** How many of the events of participant `i`'s log `since` this replica holds. */
  held (i: number, since: number): number {
    return this.logs.get(i)?.get(since)?.seq ?? 0
  }

  /** Extends participant `i`'s chain by one event; the empty hash when the fold does not hash. */
  chain (previous: Uint8Array, id: EventId, delta: SignedDelta<E, O>): Uint8Array {
    return this.signatures === undefined ? EMPTY_HASH : this.signatures.chain(previous, id, delta)
  }

  /** Binary search in the outstanding events: the index of the id, or -(insertion point) - 1. */
  find (counter: number, participant: Participant): number {
    let lo = this.head
    let hi = this.entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const e = this.entries[mid]!
      const c = e.counter !== counter ? (e.counter < counter ? -1 : 1) : (e.participant === participant ? 0 : (e.participant < participant ? -1 : 1))
      if (c === 0) return mid
      if (c < 0) lo = mid + 1
      else hi = mid - 1
    }
    return -lo - 1
  }

  /**
   * Keeps the indexes of the outstanding entries true as `entry` becomes outstanding (`by` 1)
   * or leaves (`by` -1): its log's entries by position, the pending Joins and UnJoins (not
   * `ownAckDue`: what is taken from others goes there, logs.ts `insertEntry`). Leaving
   * is a no-op for an entry that was never tracked (settled.ts folds settled entries again
   * alone, through `popHead`).
   */
  track (entry: Entry<E, O>, by: 1 | -1): void {
    if (by > 0) this.positions(entry.log).set(entry.seq, entry)
    else this.positions(entry.log).delete(entry.seq, entry)
    const kind = entry.delta.kind
    if (kind !== 'join' && kind !== 'unjoin') return
    if (by > 0) this.memberships.add(entry)
    else this.memberships.delete(entry)
    // The peer's pending readmission, which says from where its acknowledgements count, may
    // have changed: what its marks cover becomes bits, as it was counted so far, and events
    // that arrive from now on count its acknowledgements as they do now (`initialAcks`).
    this.dropMarks(entry.delta.peer)
    if (kind !== 'unjoin') return
    if (by > 0) this.unjoins.add(entry)
    else this.unjoins.delete(entry)
    let mask = 0n
    for (const u of this.unjoins) mask |= this.table.bit((u.delta as { peer: number }).peer)
    this.unjoinMask = mask
  }

  /** Whether `e` is outstanding here (not folded, dropped or never taken). */
  isOutstanding (e: Entry<E, O>): boolean {
    return e.log.outstanding.get(e.seq) === e
  }

  /**
   * A log's outstanding entries by position, so that an acknowledgement visits only what it
   * covers anew (acknowledgements.ts, `applyAck`). Kept on the log, untyped there, because
   * `LogState` is not generic; only `track` puts entries in, all of this fold's.
   */
  positions (log: LogState): LogPositions<Entry<E, O>> {
    return log.outstanding as LogPositions<Entry<E, O>>
  }

  /**
   * Who acknowledged `e`: its bits, and the acknowledgers whose marks cover it (see
   * `ackBefore`), which are added to its bits here once per `ackVersion`.
   */
  acksOf (e: Entry<E, O>): bigint {
    if (e.ackSeen === this.ackVersion) return e.acks
    e.ackSeen = this.ackVersion
    if (this.ackBefore.size === 0) return e.acks
    const log = e.log
    if (log.ackedBy.size === 0) return e.acks
    const together = this.marksTogether(log)
    const all = e.seq <= together.upTo
    if (all) e.acks |= together.mask
    if (all && !together.conditional) return e.acks
    const covered = this.covered
    for (const [p, upTo] of log.ackedBy) {
      if (upTo < e.seq) continue
      const before = this.ackBefore.get(p)
      if (before === undefined ? !all : compareEventIds(e, before) >= 0) covered.add(p)
    }
    if (!covered.empty) e.acks |= covered.take()
    return e.acks
  }

  /** `log.together`, brought up to `ackVersion`. */
  private marksTogether (log: LogState): LogState['together'] {
    const together = log.together
    if (together.version === this.ackVersion) return together
    let upTo = Infinity
    let conditional = false
    for (const [p, mark] of log.ackedBy) {
      if (this.ackBefore.get(p) !== undefined) { conditional = true; continue }
      this.covered.add(p)
      if (mark < upTo) upTo = mark
    }
    together.version = this.ackVersion
    together.mask = this.covered.empty ? 0n : this.covered.take()
    together.upTo = upTo === Infinity ? 0 : upTo
    together.conditional = conditional
    return together
  }

  /**
   * Whether participant `p` acknowledged `e`: {@link acksOf} for one participant, without
   * taking in everyone's marks (a walk over many entries asks this of one acknowledger).
   */
  acknowledgedBy (e: Entry<E, O>, p: number): boolean {
    const upTo = e.log.ackedBy.get(p)
    if (upTo !== undefined && upTo >= e.seq) {
      const before = this.ackBefore.get(p)
      if (before === undefined || compareEventIds(e, before) >= 0) return true
    }
    return (e.acks & this.table.bit(p)) !== 0n
  }

  /**
   * Acknowledger `p`'s acknowledgement about to be taken counts from `before` on (see
   * `ackBefore`). A different `before` drops `p`'s marks first: the entries take them in as
   * bits, so nothing already acknowledged is lost.
   */
  ackFrom (p: number, before: Entry<E, O> | undefined): void {
    if (this.ackBefore.has(p) && this.ackBefore.get(p) !== before) this.dropMarks(p)
    this.ackBefore.set(p, before)
  }

  /**
   * Moves acknowledger `p`'s mark on `log` up to `upTo` (after `ackFrom`); returns whether it
   * moved over outstanding positions.
   */
  markAck (p: number, log: LogState, upTo: number): boolean {
    const from = log.ackedBy.get(p) ?? 0
    if (upTo <= from) return false
    log.ackedBy.set(p, upTo)
    this.ackVersion++
    const byPosition = this.positions(log)
    return byPosition.size > 0 && Math.max(from + 1, byPosition.first) <= Math.min(upTo, byPosition.last)
  }

  /** Turns acknowledger `p`'s marks into bits on every entry they cover, then drops them. */
  private dropMarks (p: number): void {
    if (!this.ackBefore.has(p)) return
    for (let i = this.head; i < this.entries.length; i++) this.acksOf(this.entries[i]!)
    for (const list of this.parked.values()) for (const { entry } of list) this.acksOf(entry)
    for (const logs of this.logs.values()) for (const log of logs.values()) log.ackedBy.delete(p)
    this.ackBefore.delete(p)
    this.ackVersion++
  }

  /**
   * Removes the front entry (`folded`: into the infimum, and into the settled record if one is
   * kept; otherwise dropped); its log's base moves past it.
   */
  popHead (folded: boolean): void {
    const e = this.entries[this.head]!
    const log = e.log
    this.track(e, -1)
    if (this.tailEntry === e) { this.tailEntry = undefined; this.tailApplied = undefined }
    if (e.seq > log.baseSeq) { log.baseSeq = e.seq; log.baseHash = e.hash; log.baseCounter = e.counter }
    if (folded && this.settled !== undefined) this.settled.entries.push(e)
    if (folded && e.seq > log.foldedSeq) log.foldedSeq = e.seq
    this.head++
    if (this.head === this.entries.length) {
      this.entries = []
      this.head = 0
    } else if (this.head > COMPACT_AFTER && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  /**
   * Drops the front entry, a renegade, keeping it aside. Its creator is not a participant at
   * this point *as far as this replica holds*: a Join of it ordered before the event may
   * still be on its way (a joiner's first events, relayed in its own log, can arrive before
   * the sponsor's log brings its Join). Dropping it for good would lose it here while this
   * replica's vector still covers it, so every replica that folds it would count this one's
   * acknowledgement of an event it no longer holds (the 2000-run search, seed 55). Folding
   * anything past it needs acknowledgements that bring such a Join first (acknowledgements.ts),
   * so until the infimum passes it, the Join can only arrive above the infimum.
   */
  parkHead (): void {
    const e = this.entries[this.head]!
    const log = e.log
    let list = this.parked.get(e.creator)
    if (list === undefined) { list = []; this.parked.set(e.creator, list) }
    list.push({ entry: e, baseSeq: log.baseSeq, baseHash: log.baseHash, baseCounter: log.baseCounter })
    this.popHead(false)
  }

  /** Forgets the renegades the infimum has passed. */
  pruneParked (): void {
    for (const [creator, list] of this.parked) {
      let keep = 0
      while (keep < list.length && compareEventIds(list[keep]!.entry, this.infId) <= 0) keep++
      if (keep === list.length) this.parked.delete(creator)
      else if (keep > 0) list.splice(0, keep)
    }
  }

  /** Reports, once per entry, that one of its hooks threw. */
  reportThrow (e: Entry<E, O>, hook: ThrownHook['hook'], r: { readonly error: unknown, readonly message: string }): void {
    if (e.reported) return
    e.reported = true
    this.thrownSince.push({ id: { counter: e.counter, participant: e.participant }, hook, error: r.error, message: r.message })
  }

  /** The hooks that threw since the last update, handed to the caller once. */
  takeThrown (): ThrownHook[] {
    if (this.thrownSince.length === 0) return []
    const thrown = this.thrownSince
    this.thrownSince = []
    return thrown
  }

  externalDelta (d: InternalDelta<E, O>, cache: Map<bigint, Participant[]>): Delta<E, O> {
    switch (d.kind) {
      case 'event': return d
      case 'join': return { kind: 'join', participant: this.table.name(d.peer) }
      case 'unjoin': return d.quorum === true ? { kind: 'unjoin', participant: this.table.name(d.peer), quorum: true } : { kind: 'unjoin', participant: this.table.name(d.peer) }
      case 'error': {
        const errorAcks = this.table.cachedList(d.errorAcks, cache)
        const event = d.source.event
        return d.failure.thrown !== undefined ? { kind: 'error', event, thrown: d.failure.thrown, errorAcks } : { kind: 'error', event, output: d.failure.output, errorAcks }
      }
    }
  }

  /** The body a log holds for an entry: the event itself, also when it became an error here. */
  loggedDelta (d: InternalDelta<E, O>): SignedDelta<E, O> {
    switch (d.kind) {
      case 'event': return d
      case 'join': return { kind: 'join', participant: this.table.name(d.peer) }
      case 'unjoin': return d.quorum === true ? { kind: 'unjoin', participant: this.table.name(d.peer), quorum: true } : { kind: 'unjoin', participant: this.table.name(d.peer) }
      case 'error': return { kind: 'event', event: d.source.event }
    }
  }

  internalDelta (d: Delta<E, O>): InternalDelta<E, O> {
    switch (d.kind) {
      case 'event': return d
      case 'join': return { kind: 'join', peer: this.table.intern(d.participant) }
      case 'unjoin': return d.quorum === true ? { kind: 'unjoin', peer: this.table.intern(d.participant), quorum: true } : { kind: 'unjoin', peer: this.table.intern(d.participant) }
      case 'error': return { kind: 'error', failure: failureOfReport(d), errorAcks: this.table.mask(d.errorAcks), source: { event: d.event } }
    }
  }
}

/**
 * The acknowledgement an UnJoin counts from the start, on its departing participant's behalf:
 * none for one with `quorum`, which without a majority must wait for that participant's own
 * (else a side of a split folded its ejection of the other side on its own word).
 */
export function onBehalf<E, S, O> (core: FoldCore<E, S, O>, d: { readonly peer: number, readonly quorum?: true }): bigint {
  return d.quorum === true ? 0n : core.table.bit(d.peer)
}

/** Whether `holds` (an acknowledgement's vector) covers event `e`. */
export function covers<E, O> (holds: LogVector, e: Entry<E, O>): boolean {
  return holds.get(e.creator, e.since) >= e.seq
}

/** The failure an error delta or a failure report carries. */
export function failureOfReport<O> (d: { readonly output?: O, readonly thrown?: string }): Failure<O> {
  return d.thrown !== undefined ? { thrown: d.thrown } : { output: d.output as O }
}

/** The empty hash: before a log's first event, or of a fold that does not hash. */
export const NO_HASH = EMPTY_HASH
