/**
 * The EventFold: an event-sourced CRDT whose events are totally ordered and folded into a
 * settled base value (the infimum) once every participant has acknowledged them. Semantics
 * follow the Haskell crdt-event-fold library, with one deliberate fix: an infimum digest that
 * keeps a late joiner from folding on a peer's word without holding the same events.
 *
 * Pure: no I/O, no timers, no clocks, no randomness. One instance is one participant's replica
 * and is updated in place; a merge that fails changes nothing. Total with respect to the
 * user's spec: every hook call goes through hooks.ts, so a hook that throws becomes data (a
 * failure, a digest mark, a {@link ThrownHook} report) and never escapes a method.
 *
 * Representation (chosen so the common operations cost O(1) amortised):
 * - Participants are interned into a per-replica table; acknowledgement sets are bigint
 *   bitmasks over that table.
 * - Outstanding events live in one array sorted by id, with a moving head index: a new local
 *   event appends, folding pops from the front, a late remote event is spliced in.
 * - The projected value is cached. An event appended after every other one is applied to the
 *   cache; anything else (an event inserted in the middle, an adopted remote infimum, an event
 *   turned into an error) marks the cache stale and it is recomputed on the next read.
 *
 * @module
 */
import { EMPTY_DIGEST, ERROR_MARK, HOOK_THREW_MARK, extendDigest, participantHash, relateHistories, type HistoryRelation } from './digest.js'
import { DiffTooNewError, DiffTooSparseError, DifferentOriginsError, ForgedEventError, type MergeError } from './errors.js'
import { GuardedSpec, type ApplyOutcome } from './hooks.js'
import type { EventResult, MembershipResult, MergeResult, ProjectedOutcome } from './results.js'
import {
  BOTTOM,
  compareEventIds,
  type ConsistentOutput,
  type Delta,
  type Diff,
  type DiffEvent,
  type EventFoldOptions,
  type EventFoldSnapshot,
  type EventId,
  type EventSignatures,
  type EventSpec,
  type HookName,
  type InfimumDigest,
  type SettledInfimum,
  type MergeOptions,
  type OutstandingEvent,
  type Participant,
  type SignedDelta,
  type ThrownHook,
  type UpdateResult
} from './types.js'

/** An outstanding event as the fold holds it: the id is flattened and acks are a bitmask. */
interface Entry<E, O> {
  readonly counter: number
  /** Interned participant id of the event's creator. */
  readonly participant: Participant
  /** Index of `participant` in the replica's participant table. */
  readonly creator: number
  delta: InternalDelta<E, O>
  acks: bigint
  /** The creator's signature of the body; meaningless once the event became an error. */
  readonly signature: Uint8Array | undefined
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

/** A failure's payload: a returned failure's output, or a description of what was thrown. */
type Failure<O> =
  | { readonly output: O, readonly thrown?: undefined }
  | { readonly thrown: string, readonly output?: undefined }

type InternalDelta<E, O> =
  | { readonly kind: 'event', readonly event: E }
  | { readonly kind: 'join', readonly peer: number }
  | { readonly kind: 'unjoin', readonly peer: number }
  | {
    readonly kind: 'error'
    failure: Failure<O>
    errorAcks: bigint
    /**
     * The event, when this replica held it before it became an error. Never sent: it lets the
     * fold compute the failure's output again on the state it folds on (`foldedFailure`).
     */
    readonly source?: { readonly event: E }
  }

/** The failure an `apply` outcome that did not succeed stands for. */
function failureOf<S, O> (r: Exclude<ApplyOutcome<S, O>, { kind: 'applied' }>): Failure<O> {
  return r.kind === 'failed' ? { output: r.output } : { thrown: r.message }
}

/** The consistent output of an event that folded as a failure. */
function failedOutput<O> (id: EventId, f: Failure<O>): ConsistentOutput<O> {
  return f.thrown !== undefined ? { id, thrown: f.thrown } : { id, output: f.output }
}

/** Compacting the outstanding array only past this many popped slots keeps pops O(1) amortised. */
const COMPACT_AFTER = 1024

/**
 * One participant's replica of an EventFold.
 *
 * @typeParam E - the user's event type
 * @typeParam S - the state events fold into
 * @typeParam O - the output of an event
 *
 * @example
 * ```ts
 * const counter: EventSpec<number, number, number> = {
 *   init: () => 0,
 *   apply: (n, s) => ({ ok: true, output: s + n, state: s + n })
 * }
 * const a = EventFold.create('my-cluster', 'peer-a', counter)
 * a.event(5).outcome  // { status: 'applied', output: 5 }, folded at once: a is the only participant
 * a.infimumValue()    // 5
 * ```
 */
export class EventFold<E, S, O> {
  /** The cluster's name; folds of different origins never merge. */
  readonly origin: string
  /** The participant this replica belongs to. */
  readonly self: Participant
  private readonly hooks: GuardedSpec<E, S, O>
  private readonly signatures: EventSignatures<E, O> | undefined
  /** Hooks that threw since the last update returned, reported by the next one. */
  private thrownSince: ThrownHook[] = []

  // Participant table: index -> id, id -> index, index -> single-bit mask, index -> hash.
  private readonly peers: Participant[] = []
  private readonly peerIndex = new Map<Participant, number>()
  private readonly peerBits: bigint[] = []
  private readonly peerHashes: number[] = []
  private readonly selfIndex: number

  // The infimum.
  private infId: EventId
  private infDigest: InfimumDigest
  private infMask: bigint
  private infState: S

  // Outstanding events, sorted by id, live in entries[head..].
  private entries: Array<Entry<E, O>> = []
  private head = 0
  private maxCounter: number

  // Pending UnJoins: the outstanding UnJoin entries, and the mask of the peers they name.
  private readonly unjoins = new Set<Entry<E, O>>()
  private unjoinMask = 0n
  /** Masks of participant lists already converted (see `listToMask`). */
  private readonly masks = new WeakMap<readonly Participant[], bigint>()

  // Projection cache.
  private projValid = true
  /** Events folded since {@link takeSettled} was last called; `undefined` until it first is. */
  private settledLog: Array<OutstandingEvent<E, O>> | undefined
  private projState: S
  private projMask: bigint
  /**
   * The last outstanding entry, if it is a user event the projection applied last, and its
   * output when that succeeded (its failure is the entry's `projectedFailure`).
   */
  private tailEntry: Entry<E, O> | undefined
  private tailApplied: { readonly output: O } | undefined

  private constructor (origin: string, self: Participant, hooks: GuardedSpec<E, S, O>, options: EventFoldOptions<E, O>,
    infId: EventId, infDigest: InfimumDigest, participants: Iterable<Participant>, infState: S) {
    this.origin = origin
    this.hooks = hooks
    this.signatures = options.signatures
    this.selfIndex = this.intern(self)
    this.self = this.peers[this.selfIndex]!
    this.infId = infId.counter === 0 ? BOTTOM : { counter: infId.counter, participant: this.peers[this.intern(infId.participant)]! }
    this.infDigest = infDigest
    let mask = 0n
    for (const p of participants) mask |= this.peerBits[this.intern(p)]!
    this.infMask = mask
    this.infState = hooks.frozen(infState)
    this.maxCounter = infId.counter
    this.projState = this.infState
    this.projMask = mask
  }

  /**
   * Creates the fold of a new cluster whose only participant is `self`. The `join` hook runs
   * once for `self`, so the first participant is in the state like every later one; if it
   * throws, the state is `init()`'s and the first update reports the throw (with id
   * {@link BOTTOM}). A throw from `init` propagates: there is no state to start from.
   */
  static create<E, S, O> (origin: string, self: Participant, spec: EventSpec<E, S, O>, options: EventFoldOptions<E, O> = {}): EventFold<E, S, O> {
    const hooks = new GuardedSpec(spec, options.freezeStates === true)
    const joined = hooks.membership('join', self, spec.init(), BOTTOM)
    const fold = new EventFold(origin, self, hooks, options, BOTTOM, EMPTY_DIGEST, [self], joined.state)
    if (joined.kind === 'threw') fold.thrownSince.push({ id: BOTTOM, hook: 'join', error: joined.error, message: joined.message })
    return fold
  }

  /**
   * Rebuilds a replica from a snapshot (a persisted fold, or the full state received when
   * joining). Does not acknowledge anything: a joining peer calls {@link acknowledge} (or
   * merges) once it has persisted the result.
   */
  static fromSnapshot<E, S, O> (snapshot: EventFoldSnapshot<E, S, O>, self: Participant, spec: EventSpec<E, S, O>, options: EventFoldOptions<E, O> = {}): EventFold<E, S, O> {
    const inf = snapshot.infimum
    const fold = new EventFold(snapshot.origin, self, new GuardedSpec(spec, options.freezeStates === true), options, inf.id, inf.digest, inf.participants, inf.state)
    for (const e of snapshot.events) {
      if (compareEventIds(e.id, inf.id) <= 0) continue
      fold.insertEntry(fold.entryFrom(e.id, e.delta, e.acks, e.signature))
    }
    fold.projValid = false
    return fold
  }

  // ---------------------------------------------------------------------------------------
  // Reading

  /** The projected value: the infimum with every outstanding event applied in id order. */
  projectedValue (): S {
    this.ensureProjection()
    return this.projState
  }

  /** The settled value, identical on every replica at the same infimum id. */
  infimumValue (): S {
    return this.infState
  }

  /** The id of the last event folded into the infimum ({@link BOTTOM} if none). */
  infimumId (): EventId {
    return this.infId
  }

  /** The digest of every event folded into the infimum. */
  infimumDigest (): InfimumDigest {
    return this.infDigest
  }

  /**
   * Every participant this replica has seen (creators, acknowledgers, joined and departed
   * members), in the order it first saw them. The array only grows, and is shared: do not
   * modify it.
   */
  knownParticipants (): readonly Participant[] {
    return this.peers
  }

  /** The participants as of the infimum, sorted. */
  infimumParticipants (): Participant[] {
    return this.maskToList(this.infMask)
  }

  /**
   * Whether this replica's own Join has folded (it is a participant of its infimum). From then
   * on every event that can fold needs its acknowledgement, so it holds every one of them and
   * never needs another replica's settled state: it can merge first-hand
   * ({@link MergeOptions.from}).
   */
  hasJoined (): boolean {
    return (this.infMask & this.peerBits[this.selfIndex]!) !== 0n
  }

  /** The participants once every outstanding Join and UnJoin has taken effect, sorted. */
  projectedParticipants (): Participant[] {
    this.ensureProjection()
    return this.maskToList(this.projMask)
  }

  /**
   * Everyone who is, was during an outstanding event, or is about to become a participant:
   * the infimum participants plus every outstanding Join, sorted.
   */
  allParticipants (): Participant[] {
    let mask = this.infMask
    for (let i = this.head; i < this.entries.length; i++) {
      const d = this.entries[i]!.delta
      if (d.kind === 'join') mask |= this.peerBits[d.peer]!
    }
    return this.maskToList(mask)
  }

  /**
   * Participants that have not acknowledged the newest outstanding event, each with the
   * newest event it has acknowledged (the infimum id if none). Empty when nothing is
   * outstanding.
   */
  divergent (): Map<Participant, EventId> {
    const result = new Map<Participant, EventId>()
    const n = this.entries.length
    if (n === this.head) return result
    const newest = this.entries[n - 1]!
    for (const p of this.allParticipants()) {
      const bit = this.peerBits[this.peerIndex.get(p)!]!
      if ((newest.acks & bit) !== 0n) continue
      let latest = this.infId
      for (let i = n - 2; i >= this.head; i--) {
        const e = this.entries[i]!
        if ((e.acks & bit) !== 0n) { latest = { counter: e.counter, participant: e.participant }; break }
      }
      result.set(p, latest)
    }
    return result
  }

  /** The origin (cluster name). Same as {@link origin}. */
  getOrigin (): string {
    return this.origin
  }

  /**
   * Whether folding is stopped at an event whose `apply` failed, waiting for every
   * participant to acknowledge the failure, or for a full merge from a peer that folded it.
   */
  isBlockedOnError (): boolean {
    return this.head < this.entries.length && this.entries[this.head]!.delta.kind === 'error'
  }

  /** Number of outstanding (not yet folded) events. */
  get outstandingCount (): number {
    return this.entries.length - this.head
  }

  /** The largest event id counter this replica has seen. */
  get maxKnownCounter (): number {
    return this.maxCounter
  }

  /**
   * Raises this replica's Lamport counter to at least `counter`, so its next events take
   * larger ids. A participant that replaces its fold (a rejoin) calls it with the counter of
   * the fold it had, so it never reuses an id it already gave an event that may still be
   * travelling.
   */
  observeCounter (counter: number): void {
    this.observe(counter)
  }

  /** The outstanding events in ascending id order, as plain data. */
  outstandingEvents (): Array<OutstandingEvent<E, O>> {
    const cache = new Map<bigint, Participant[]>()
    const out: Array<OutstandingEvent<E, O>> = []
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!
      out.push(this.withSignature(e, { id: { counter: e.counter, participant: e.participant }, delta: this.externalDelta(e.delta, cache), acks: this.cachedList(e.acks, cache) }))
    }
    return out
  }

  /**
   * The events folded since the previous call, in fold order, each with the outcome it folded
   * with (an event whose `apply` failed is its Error), for a store that saves the settled
   * state as the events that moved it rather than whole. The first call starts the record and
   * returns `undefined`, as does the first call after this replica took another's infimum
   * whole (a merge that adopts a settled state it did not fold): the caller cannot know what
   * moved the infimum, and saves it whole.
   */
  takeSettled (): Array<OutstandingEvent<E, O>> | undefined {
    const log = this.settledLog
    this.settledLog = []
    return log
  }

  /**
   * Folds the outstanding events up to `upTo` as acknowledged by everyone: a store's record of
   * events this replica folded before (see {@link takeSettled}), put back as outstanding
   * events of a snapshot whose infimum is older. Returns the infimum id and digest it reached,
   * for the caller to check against what it saved.
   */
  refoldSettled (upTo: EventId): SettledInfimum {
    this.reduce(upTo, [])
    this.projValid = false
    return { id: this.infId, digest: this.infDigest }
  }

  /** The whole fold as plain data, for a full merge or for storage. Shares state objects. */
  snapshot (): EventFoldSnapshot<E, S, O> {
    return {
      origin: this.origin,
      infimum: { id: this.infId, digest: this.infDigest, participants: this.infimumParticipants(), state: this.infState },
      events: this.outstandingEvents()
    }
  }

  // ---------------------------------------------------------------------------------------
  // Local updates

  /**
   * Adds a user event created by this replica, with the next id, acknowledged by this
   * replica. Returns the event's projected output at once, and the consistent outputs of
   * anything that folded (with a single participant, the event itself).
   */
  event (event: E): EventResult<O> {
    const entry = this.newEntry({ kind: 'event', event })
    // A new local event always has the largest id, so it extends the projection.
    this.ensureProjection()
    const r = this.hooks.apply(event, this.projState, entry)
    this.projectApplied(entry, r)
    this.entries.push(entry)
    const outputs: Array<ConsistentOutput<O>> = []
    this.reduce(undefined, outputs)
    const outcome: ProjectedOutcome<O> = r.kind === 'threw'
      ? { status: 'threw', error: r.error, message: r.message }
      : { status: r.kind, output: r.output }
    return { id: { counter: entry.counter, participant: entry.participant }, outcome, outputs, propagate: true, thrown: this.takeThrown() }
  }

  /** Adds a Join for `peer`, acknowledged by this replica. */
  participate (peer: Participant): MembershipResult<O> {
    return this.membership({ kind: 'join', peer: this.intern(peer) })
  }

  /**
   * Adds an UnJoin for `peer`, acknowledged by this replica and on `peer`'s behalf: this is
   * how an unreachable peer is ejected. Until it folds, the pending UnJoin stands in for the
   * peer's acknowledgements, so the peer cannot block the fold.
   */
  disassociate (peer: Participant): MembershipResult<O> {
    return this.membership({ kind: 'unjoin', peer: this.intern(peer) })
  }

  /**
   * Records that `participant` (by default this replica) has seen every outstanding event,
   * and every outstanding failure, then folds what it can.
   *
   * The caller must have persisted the fold before anyone learns of this acknowledgement: a
   * participant may never roll back what it acknowledged.
   */
  acknowledge (participant: Participant = this.self): UpdateResult<O> {
    let changed = this.addAcks(participant)
    const outputs: Array<ConsistentOutput<O>> = []
    if (this.reduce(undefined, outputs)) changed = true
    return { outputs, propagate: changed, thrown: this.takeThrown() }
  }

  /** Adds `participant` to every outstanding ack and error-ack set; returns whether any grew. */
  private addAcks (participant: Participant): boolean {
    const bit = this.peerBits[this.intern(participant)]!
    let changed = false
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!
      if ((e.acks & bit) === 0n) { e.acks |= bit; changed = true }
      const d = e.delta
      if (d.kind === 'error' && (d.errorAcks & bit) === 0n) { d.errorAcks |= bit; changed = true }
    }
    return changed
  }

  /** The end of every merge: this replica acknowledges, then folds what it can. */
  private finishMerge (changed: boolean, outputs: Array<ConsistentOutput<O>>, diverged = false, threwHere = false): MergeResult<O> {
    const acknowledged = this.addAcks(this.self)
    if (this.reduce(undefined, outputs)) changed = true
    return { ok: true, outputs, propagate: changed || acknowledged, acknowledged, diverged, threwHere, thrown: this.takeThrown() }
  }

  /** The hooks that threw since the last update, handed to the caller once. */
  private takeThrown (): ThrownHook[] {
    if (this.thrownSince.length === 0) return []
    const thrown = this.thrownSince
    this.thrownSince = []
    return thrown
  }

  /** Reports, once per entry, that one of its hooks threw. */
  private reportThrow (e: Entry<E, O>, hook: HookName, r: { readonly error: unknown, readonly message: string }): void {
    if (e.reported) return
    e.reported = true
    this.thrownSince.push({ id: { counter: e.counter, participant: e.participant }, hook, error: r.error, message: r.message })
  }

  // ---------------------------------------------------------------------------------------
  // Exchange

  /**
   * The diff to send `peer`, or `undefined` when `peer` needs the full fold instead: its Join
   * has not yet folded into the infimum, or an UnJoin for it is pending.
   */
  diffFor (peer: Participant): Diff<E, O> | undefined {
    const index = this.peerIndex.get(peer)
    if (index === undefined) return undefined
    const bit = this.peerBits[index]!
    if ((this.infMask & bit) === 0n || (this.unjoinMask & bit) !== 0n) return undefined
    const cache = new Map<bigint, Participant[]>()
    const events: Array<DiffEvent<E, O>> = []
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!
      // Errors always travel: their acknowledgement sets are news even to a peer that has the event.
      const omit = (e.acks & bit) !== 0n && e.delta.kind !== 'error'
      const id = { counter: e.counter, participant: e.participant }
      const acks = this.cachedList(e.acks, cache)
      events.push(omit ? { id, delta: undefined, acks } : this.withSignature(e, { id, delta: this.externalDelta(e.delta, cache), acks }))
    }
    return { origin: this.origin, infimumId: this.infId, infimumDigest: this.infDigest, events }
  }

  /**
   * Merges a diff from another replica, then acknowledges. Refused, with nothing changed,
   * when the origins differ, when a body unknown here is left out (or, first-hand, is an
   * error), when a body's signature does not check, when its infimum is an event not held
   * here, or when folding up to its infimum would not reproduce its digest. Refusals other
   * than the origin and a forgery call for a full merge.
   *
   * Events at or below the diff's infimum fold without waiting for acknowledgements: the
   * sender's infimum proves everyone acknowledged them. If one of them fails to apply here
   * although the sender applied it, the fold blocks ({@link isBlockedOnError}) until a full
   * merge from a peer that folded it. A first-hand merge ({@link MergeOptions.from}) takes
   * the sender's infimum as the sender's acknowledgement only.
   */
  mergeDiff (diff: Diff<E, O>, options: MergeOptions = {}): MergeResult<O> {
    if (diff.origin !== this.origin) return { ok: false, error: new DifferentOriginsError(this.origin, diff.origin) }
    const believed = this.believed(options.from)
    // Validate everything before the first change, so a refused diff changes nothing.
    const events = diff.events
    const bodies = new Array<Delta<E, O> | undefined>(events.length)
    for (let i = 0; i < events.length; i++) {
      const de = events[i]!
      if (compareEventIds(de.id, this.infId) <= 0 || compareEventIds(de.id, diff.infimumId) <= 0) continue
      // Of an event held here, only an error's acknowledgements matter, and they are news.
      if (this.find(de.id.counter, de.id.participant) >= 0) { bodies[i] = de.delta; continue }
      const body = this.acceptBody(de, believed)
      if (body instanceof ForgedEventError) return { ok: false, error: body }
      if (body === undefined) return { ok: false, error: new DiffTooSparseError('missing-body', de.id) }
      bodies[i] = body
    }
    const remoteInf = diff.infimumId
    const infOrder = compareEventIds(remoteInf, this.infId)
    const relation = this.relationTo(remoteInf, diff.infimumDigest)
    if (relation === 'missing') return { ok: false, error: new DiffTooNewError(remoteInf, this.infId) }
    // The sender's infimum is as good as a matching one when it differs only by the sender's
    // own hooks that threw: it still folded exactly these events, so everyone acknowledged them.
    if (relation === 'different' || relation === 'threw-here') return { ok: false, error: new DiffTooSparseError('digest', remoteInf) }

    let changed = false
    this.observe(remoteInf.counter)
    for (let i = 0; i < events.length; i++) {
      const de = events[i]!
      // Events at or below either infimum are settled; the digest check covered the rest.
      if (compareEventIds(de.id, this.infId) <= 0 || compareEventIds(de.id, remoteInf) <= 0) continue
      if (this.mergeEvent(de, bodies[i], believed)) changed = true
    }
    const outputs: Array<ConsistentOutput<O>> = []
    let universal = infOrder > 0 ? remoteInf : undefined
    if (believed !== undefined && universal !== undefined) {
      // First-hand: the sender folded these, so it acknowledged them; that is all it proves.
      if (this.acknowledgeUpTo(universal, believed)) changed = true
      universal = undefined
    }
    if (this.reduce(universal, outputs)) changed = true
    return this.finishMerge(changed, outputs)
  }

  /**
   * Merges another replica's whole fold, then acknowledges. Takes the greater infimum (by id,
   * then by digest, so replicas that somehow diverged at the same id still converge on one),
   * drops local events it covers, and merges the outstanding events. Refused only when the
   * origins differ or a body's signature does not check. Hooks that threw settle which
   * infimum is greater ({@link InfimumDigest.throws}): one whose history differs from this
   * replica's because the sender's hooks threw is never taken (its events fold here instead,
   * acknowledged by everyone as it proves), and one that differs because this replica's own
   * hooks threw always is.
   *
   * A first-hand merge ({@link MergeOptions.from}) never takes the other infimum: it only
   * counts it as the sender's acknowledgement of the events up to it, when this replica holds
   * the same history (but for the sender's throws), and reports `diverged` otherwise.
   */
  mergeFull (other: EventFoldSnapshot<E, S, O>, options: MergeOptions = {}): MergeResult<O> {
    if (other.origin !== this.origin) return { ok: false, error: new DifferentOriginsError(this.origin, other.origin) }
    const believed = this.believed(options.from)
    const inf = other.infimum
    const relation = this.relationTo(inf.id, inf.digest)
    const adopt = believed === undefined && (relation === 'missing' || relation === 'threw-here' ||
      (compareEventIds(inf.id, this.infId) > 0 ? relation === 'same' || relation === 'different' : relation === 'different' && this.remoteDigestWins(inf.digest)))
    const floor = adopt ? inf.id : this.infId
    // Validate before the first change. A body unknown here that cannot be believed (a
    // first-hand error) is skipped rather than refused: the rest of the fold is still news.
    const events = other.events
    const bodies = new Array<Delta<E, O> | undefined>(events.length)
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!
      if (compareEventIds(e.id, floor) <= 0) continue
      if (this.find(e.id.counter, e.id.participant) >= 0) { bodies[i] = e.delta; continue }
      const body = this.acceptBody(e, believed)
      if (body instanceof ForgedEventError) return { ok: false, error: body }
      bodies[i] = body
    }
    let changed = false
    let universal: EventId | undefined
    if (adopt) {
      this.adoptInfimum(inf.id, inf.digest, inf.participants, inf.state)
      changed = true
    } else if (compareEventIds(inf.id, this.infId) > 0 && (relation === 'same' || relation === 'threw-there')) {
      // Ahead, on this replica's history: first-hand, the sender acknowledged what it folded;
      // trusting (only when the sender's hooks threw), everyone did.
      if (believed === undefined) universal = inf.id
      else if (this.acknowledgeUpTo(inf.id, believed)) changed = true
    }
    // First-hand, a settled history this replica does not share (ahead or at the same id) is
    // divergence; trusting, the greater infimum was taken instead. A diverged sender's
    // acknowledgements are not taken (its bodies are): they were given in that other history,
    // and would let this replica fold on past the difference, as a refused diff would not.
    const diverged = believed !== undefined && (relation === 'missing' || relation === 'different' || relation === 'threw-here')
    const acksBelieved = diverged ? 0n : believed
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!
      if (compareEventIds(e.id, this.infId) <= 0) continue
      if (bodies[i] === undefined && this.find(e.id.counter, e.id.participant) < 0) continue
      if (this.mergeEvent(e, bodies[i], acksBelieved)) changed = true
    }
    const outputs: Array<ConsistentOutput<O>> = []
    if (this.reduce(universal, outputs)) changed = true
    return this.finishMerge(changed, outputs, diverged, diverged && relation === 'threw-here')
  }

  /**
   * How the history settled up to `id`, whose digest is `digest`, relates to this replica's:
   * compared with the infimum at the same id, or with what folding up to `id` would give
   * when `id` is ahead; `missing` when `id` is ahead and not held here, `behind` when it is
   * below the infimum (nothing to compare).
   */
  private relationTo (id: EventId, digest: InfimumDigest): HistoryRelation | 'missing' | 'behind' {
    const order = compareEventIds(id, this.infId)
    if (order < 0) return 'behind'
    if (order === 0) return relateHistories(this.infDigest, digest)
    const at = this.find(id.counter, id.participant)
    return at < 0 ? 'missing' : relateHistories(this.simulateDigest(at), digest)
  }

  // ---------------------------------------------------------------------------------------
  // Internals

  private intern (p: Participant): number {
    let i = this.peerIndex.get(p)
    if (i === undefined) {
      i = this.peers.length
      this.peers.push(p)
      this.peerIndex.set(p, i)
      this.peerBits.push(1n << BigInt(i))
      this.peerHashes.push(participantHash(p))
    }
    return i
  }

  private maskToList (mask: bigint): Participant[] {
    const out: Participant[] = []
    for (let i = 0; mask !== 0n && i < this.peers.length; i++) {
      const bit = this.peerBits[i]!
      if ((mask & bit) !== 0n) { out.push(this.peers[i]!); mask &= ~bit }
    }
    return out.sort()
  }

  private cachedList (mask: bigint, cache: Map<bigint, Participant[]>): Participant[] {
    let list = cache.get(mask)
    if (list === undefined) { list = this.maskToList(mask); cache.set(mask, list) }
    return list
  }

  private listToMask (list: readonly Participant[]): bigint {
    // Decoders hand out one array per distinct set in a message, and an interned
    // participant keeps its bit for good, so a list's mask can be remembered.
    let mask = this.masks.get(list)
    if (mask !== undefined) return mask
    mask = 0n
    for (const p of list) mask |= this.peerBits[this.intern(p)]!
    this.masks.set(list, mask)
    return mask
  }

  private externalDelta (d: InternalDelta<E, O>, cache: Map<bigint, Participant[]>): Delta<E, O> {
    switch (d.kind) {
      case 'event': return d
      case 'join': return { kind: 'join', participant: this.peers[d.peer]! }
      case 'unjoin': return { kind: 'unjoin', participant: this.peers[d.peer]! }
      case 'error': {
        const errorAcks = this.cachedList(d.errorAcks, cache)
        return d.failure.thrown !== undefined ? { kind: 'error', thrown: d.failure.thrown, errorAcks } : { kind: 'error', output: d.failure.output, errorAcks }
      }
    }
  }

  private internalDelta (d: Delta<E, O>): InternalDelta<E, O> {
    switch (d.kind) {
      case 'event': return d
      case 'join': return { kind: 'join', peer: this.intern(d.participant) }
      case 'unjoin': return { kind: 'unjoin', peer: this.intern(d.participant) }
      case 'error': return { kind: 'error', failure: remoteFailure(d), errorAcks: this.listToMask(d.errorAcks) }
    }
  }

  private entryFrom (id: EventId, delta: Delta<E, O>, acks: readonly Participant[], signature: Uint8Array | undefined): Entry<E, O> {
    const creator = this.intern(id.participant)
    this.observe(id.counter)
    return { counter: id.counter, participant: this.peers[creator]!, creator, delta: this.internalDelta(delta), acks: this.listToMask(acks), signature, projectedFailure: undefined, reported: false }
  }

  /** A new entry created by this replica, signed if the fold signs. */
  private newEntry (delta: InternalDelta<E, O>): Entry<E, O> {
    this.maxCounter += 1
    const counter = this.maxCounter
    let signature: Uint8Array | undefined
    if (this.signatures !== undefined && delta.kind !== 'error') {
      const external = this.externalDelta(delta, new Map()) as SignedDelta<E, O>
      signature = this.signatures.sign({ counter, participant: this.self }, external)
    }
    return { counter, participant: this.self, creator: this.selfIndex, delta, acks: this.peerBits[this.selfIndex]!, signature, projectedFailure: undefined, reported: false }
  }

  private membership (delta: InternalDelta<E, O>): MembershipResult<O> {
    const entry = this.newEntry(delta)
    if (delta.kind === 'unjoin') entry.acks |= this.peerBits[delta.peer]!
    this.ensureProjection()
    this.entries.push(entry)
    this.countUnjoin(entry, 1)
    this.projectEntry(entry)
    const outputs: Array<ConsistentOutput<O>> = []
    this.reduce(undefined, outputs)
    return { id: { counter: entry.counter, participant: entry.participant }, outputs, propagate: true, thrown: this.takeThrown() }
  }

  private observe (counter: number): void {
    if (counter > this.maxCounter) this.maxCounter = counter
  }

  /** Binary search in the outstanding events: the index of the id, or -(insertion point) - 1. */
  private find (counter: number, participant: Participant): number {
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

  /** Inserts a new entry at its place in id order; keeps the projection cache when it is last. */
  private insertEntry (entry: Entry<E, O>): void {
    const at = this.find(entry.counter, entry.participant)
    if (at >= 0) throw new Error('EventFold invariant: duplicate event id')
    const pos = -at - 1
    if (pos === this.entries.length) {
      this.entries.push(entry)
      this.projectEntry(entry)
    } else {
      this.entries.splice(pos, 0, entry)
      this.projValid = false
    }
    this.countUnjoin(entry, 1)
  }

  /**
   * The acknowledgements a merge may take: everyone's (`undefined`), or, first-hand, only
   * the sender's (no one's if the sender is not known here).
   */
  private believed (from: Participant | undefined): bigint | undefined {
    if (from === undefined) return undefined
    const index = this.peerIndex.get(from)
    return index === undefined ? 0n : this.peerBits[index]!
  }

  /**
   * The checked body of a remote event not held here: the body if it can be believed,
   * `undefined` if it is missing or cannot be (a first-hand error: it does not carry the
   * event, so nothing proves the creator made it), or a {@link ForgedEventError} if its
   * signature does not check.
   */
  private acceptBody (de: DiffEvent<E, O>, believed: bigint | undefined): Delta<E, O> | ForgedEventError | undefined {
    const delta = de.delta
    if (delta === undefined) return undefined
    if (delta.kind === 'error') return believed === undefined ? delta : undefined
    const signatures = this.signatures
    if (signatures === undefined) return delta
    return de.signature !== undefined && signatures.verify(de.id, delta, de.signature) ? delta : new ForgedEventError(de.id)
  }

  /**
   * Adds `bits` to the ack (and failure-ack) sets of every outstanding event up to `upTo`: a
   * peer whose infimum is `upTo`, on the same history as this replica's, acknowledged each of
   * those events as it folded it, and each of their failures. (A user event that has not
   * failed here yet gets that acknowledgement from the peer's next message, once it has: an
   * event ordered before it may still arrive and change how it goes here.)
   */
  private acknowledgeUpTo (upTo: EventId, bits: bigint): boolean {
    let changed = false
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!
      if (compareEventIds(e, upTo) > 0) break
      if ((e.acks & bits) !== bits) { e.acks |= bits; changed = true }
      const d = e.delta
      if (d.kind === 'error' && (d.errorAcks & bits) !== bits) { d.errorAcks |= bits; changed = true }
    }
    return changed
  }

  /**
   * Merges one remote event, whose checked body is `body` (see `acceptBody`), into the
   * outstanding events; returns whether anything changed. `believed`, if given, masks the
   * remote acknowledgements and keeps a remote failure from turning a local event into an
   * error (see {@link MergeOptions.from}).
   */
  private mergeEvent (remote: DiffEvent<E, O>, body: Delta<E, O> | undefined, believed: bigint | undefined): boolean {
    const id = remote.id
    const at = this.find(id.counter, id.participant)
    if (at < 0) {
      // Validation guaranteed a body for every event unknown here.
      const entry = this.entryFrom(id, body!, remote.acks, remote.signature)
      if (believed !== undefined) entry.acks &= believed
      this.insertEntry(entry)
      return true
    }
    const local = this.entries[at]!
    let changed = false
    let remoteAcks = this.listToMask(remote.acks)
    if (believed !== undefined) remoteAcks &= believed
    if ((local.acks | remoteAcks) !== local.acks) { local.acks |= remoteAcks; changed = true }
    if (body?.kind === 'error') {
      let errorAcks = this.listToMask(body.errorAcks)
      if (believed !== undefined) errorAcks &= believed
      const ld = local.delta
      if (ld.kind === 'error') {
        if ((ld.errorAcks | errorAcks) !== ld.errorAcks) { ld.errorAcks |= errorAcks; changed = true }
      } else if (ld.kind === 'event' && believed === undefined && body.thrown === undefined) {
        // A failure anywhere makes the event a failure everywhere: the only outcome every
        // replica can agree on without knowing who else succeeded. First-hand, a failure is
        // not taken on another's word: with a deterministic spec this replica's own fold
        // fails the event too, and then counts the sender's acknowledgement of it. Nor is a
        // failure whose `apply` threw, even trusting: it is the sender's own trouble (other
        // code, a bug that depends on more than the event and the state), not a verdict on
        // the event; replicas whose `apply` runs fold it, and the sender, outvoted by their
        // infima, takes their state (see `relateHistories`). Believing it would let a replica
        // that folded the event before the news arrived report another consistent output.
        // The output is this replica's own when its projection fails the event too: the
        // sender's state may be off (a hook that threw there earlier), this one's is not.
        const own = this.projValid ? local.projectedFailure : undefined
        local.delta = { kind: 'error', failure: own !== undefined && own.thrown === undefined ? own : remoteFailure(body), errorAcks, source: { event: ld.event } }
        this.projValid = false
        changed = true
      }
    }
    return changed
  }

  /** `out` with the entry's signature, if the entry carries a signed body. */
  private withSignature<T extends { readonly delta: Delta<E, O> | undefined }> (e: Entry<E, O>, out: T): T & { readonly signature?: Uint8Array } {
    return e.signature === undefined || e.delta.kind === 'error' ? out : { ...out, signature: e.signature }
  }

  private countUnjoin (entry: Entry<E, O>, by: 1 | -1): void {
    if (entry.delta.kind !== 'unjoin') return
    if (by > 0) this.unjoins.add(entry)
    else this.unjoins.delete(entry)
    let mask = 0n
    for (const u of this.unjoins) mask |= this.peerBits[(u.delta as { peer: number }).peer]!
    this.unjoinMask = mask
  }

  /**
   * The participants whose pending UnJoin may stand in for their acknowledgements: those
   * whose UnJoin every remaining participant has acknowledged.
   *
   * Why not every pending UnJoin at once (as the Haskell library does): an ejected peer's
   * own events may still be travelling to some participants and not to others. A replica
   * that let the UnJoin stand in at once could fold past such an event that it never
   * received, while a replica that received it folds it: they diverge. Once every remaining
   * participant has acknowledged the UnJoin, each of them has sent along every event of the
   * ejected peer it held (an acknowledgement travels with the sender's outstanding events),
   * so every such event is held here. What this cannot cover is an event of the ejected peer
   * that reaches a participant only after that participant acknowledged the UnJoin: the
   * runtime fences ejected peers so that their late messages are dropped (see "Ejection" in
   * docs/ARCHITECTURE.md).
   */
  private standInMask (): bigint {
    if (this.unjoins.size === 0) return 0n
    const remaining = this.infMask & ~this.unjoinMask
    let mask = 0n
    for (const u of this.unjoins) {
      if ((u.acks & remaining) === remaining) mask |= this.peerBits[(u.delta as { peer: number }).peer]!
    }
    return mask
  }

  private popHead (): void {
    const e = this.entries[this.head]!
    this.countUnjoin(e, -1)
    if (this.tailEntry === e) { this.tailEntry = undefined; this.tailApplied = undefined }
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
   * Makes `e` the infimum; `hookThrew`: it is a Join or UnJoin whose hook threw here. That is
   * the one throw the digest records as this replica's own: a failure whose `apply` threw
   * folds only once every participant has failed it too (or said so, trusting), so it is
   * everyone's outcome and marks the digest like a returned failure.
   */
  private foldInto (e: Entry<E, O>, hookThrew: boolean): void {
    this.infId = { counter: e.counter, participant: e.participant }
    const mark = e.delta.kind === 'error' ? ERROR_MARK : hookThrew ? HOOK_THREW_MARK : 0
    this.infDigest = extendDigest(this.infDigest, e.counter, this.peerHashes[e.creator]!, mark, hookThrew)
  }

  /**
   * Folds outstanding events into the infimum while the smallest one may fold. Events up to
   * `universal` (a remote infimum id) count as acknowledged by everyone. Appends the outputs
   * of folded events to `outputs`; returns whether the fold changed.
   *
   * Invariants:
   * 1. An event at or below the infimum id, or from a creator that is not a participant at
   *    that point (a renegade), is dropped without effect.
   * 2. Otherwise it folds only when every infimum participant (and, for a Join, the joining
   *    peer) has acknowledged it, or when it is covered by `universal`. A participant whose
   *    pending UnJoin every remaining participant has acknowledged counts as having
   *    acknowledged (see `standInMask`).
   * 3. An event whose `apply` fails becomes an error, acknowledged by this replica; an error
   *    folds (leaving the state unchanged, reporting its output) once every participant
   *    has acknowledged the failure, or when `universal` covers it (the caller has checked
   *    the remote digest, which records that the remote folded it as an error too). An event
   *    that fails here although `universal` covers it was applied successfully by the remote:
   *    folding stops, and only a full merge from a peer that folded it can unblock it.
   * 4. The projection cache stays valid: folding applies the same steps, in the same order,
   *    that the projection already applied.
   */
  private reduce (universal: EventId | undefined, outputs: Array<ConsistentOutput<O>>): boolean {
    let changed = false
    let standIn = this.standInMask()
    while (this.head < this.entries.length) {
      const e = this.entries[this.head]!
      if (compareEventIds(e, this.infId) <= 0 || (this.infMask & this.peerBits[e.creator]!) === 0n) {
        this.popHead()
        changed = true
        continue
      }
      const covered = universal !== undefined && compareEventIds(e, universal) <= 0
      let needed = this.infMask
      const d = e.delta
      if (d.kind === 'join') needed |= this.peerBits[d.peer]!
      needed &= ~standIn
      if (!covered && (e.acks & needed) !== needed) break

      let hookThrew = false
      if (d.kind === 'join' || d.kind === 'unjoin') {
        this.infMask = this.membershipMask(d, this.infMask)
        const m = this.hooks.membership(d.kind, this.peers[d.peer]!, this.infState, e)
        this.infState = m.state
        if (m.kind === 'threw') { hookThrew = true; this.reportThrow(e, d.kind, m) }
      } else if (d.kind === 'error') {
        if (!covered && (d.errorAcks & needed) !== needed) break
        outputs.push(failedOutput({ counter: e.counter, participant: e.participant }, this.foldedFailure(e, d, this.infState)))
      } else {
        const r = this.applyForFold(e, d.event)
        if (r.kind !== 'applied') {
          if (r.kind === 'threw') this.reportThrow(e, 'apply', r)
          e.delta = { kind: 'error', failure: failureOf(r), errorAcks: this.peerBits[this.selfIndex]!, source: { event: d.event } }
          changed = true
          if (covered) break
          continue // re-examine it as an error: with one participant it folds at once
        }
        this.infState = r.state
        outputs.push({ id: { counter: e.counter, participant: e.participant }, output: r.output })
      }
      this.foldInto(e, hookThrew)
      if (this.settledLog !== undefined) {
        this.settledLog.push(this.withSignature(e, { id: { counter: e.counter, participant: e.participant }, delta: this.externalDelta(e.delta, new Map()), acks: [] }))
      }
      this.popHead()
      changed = true
      if (d.kind === 'join' || d.kind === 'unjoin') standIn = this.standInMask()
    }
    return changed
  }

  /**
   * The failure of an Error on `state` (the state before it, as the projection or the fold
   * has it), which it also stores. It became an error before the fold reached it, and an
   * event ordered before it may have arrived since (an ejected peer's, or one that a trusting
   * joiner learnt of late), so the output stored then may not be what `apply` gives now:
   * where this replica holds the event, it is computed again, whenever the projection is
   * recomputed and when it folds. Storing it matters as much as folding with it: replicas
   * that received the Error without the event (a joiner's snapshot) fold with what was sent.
   * An event that no longer fails still folds as the failure every participant acknowledged;
   * the digests then tell the replicas apart, as for any other difference of outcome.
   */
  private foldedFailure (e: Entry<E, O>, d: Extract<InternalDelta<E, O>, { kind: 'error' }>, state: S): Failure<O> {
    if (d.source === undefined) return d.failure
    const r = this.hooks.apply(d.source.event, state, e)
    if (r.kind === 'applied') return d.failure
    if (r.kind === 'threw') this.reportThrow(e, 'apply', r)
    d.failure = failureOf(r)
    return d.failure
  }

  /**
   * Applies an event for folding, reusing the projection's result when it is the only
   * outstanding one. A reused throw is reported already; it comes back as a failure.
   */
  private applyForFold (e: Entry<E, O>, event: E): ApplyOutcome<S, O> {
    if (this.projValid && this.tailEntry === e && this.head === this.entries.length - 1) {
      // Folding the only outstanding event: the projection already computed this exact step.
      const f = e.projectedFailure
      if (f === undefined && this.tailApplied !== undefined) return { kind: 'applied', output: this.tailApplied.output, state: this.projState }
      if (f !== undefined && f.thrown === undefined) return { kind: 'failed', output: f.output }
    }
    return this.hooks.apply(event, this.infState, e)
  }

  /**
   * The digest the infimum would have after folding every outstanding event up to `at`.
   *
   * A user event that has not reached the front of the fold yet is still an `event` entry,
   * even if its `apply` fails here; folding will turn it into an error, and the digest will
   * carry {@link ERROR_MARK} for it. The projection has already applied it to the same state
   * folding will, so its outcome there is how it will fold. Predicting it as a success would
   * make a replica blocked on an earlier error refuse, as a different history, the infimum of
   * a peer that folded both: first-hand, that infimum is the only way the peer's
   * acknowledgement of the earlier error arrives, so the fold would stall for good.
   */
  private simulateDigest (at: number): InfimumDigest {
    this.ensureProjection()
    let mask = this.infMask
    let digest = this.infDigest
    for (let i = this.head; i <= at; i++) {
      const e = this.entries[i]!
      if ((mask & this.peerBits[e.creator]!) === 0n) continue
      const d = e.delta
      if (d.kind === 'join' || d.kind === 'unjoin') mask = this.membershipMask(d, mask)
      // A failure that threw here and has not folded is this replica's own until it does (if
      // every participant fails it, it folds as everyone's): a peer that applied the event
      // shows this one the odd one out (see `relateHistories`).
      const failure = d.kind === 'error' ? d.failure : e.projectedFailure
      const mark = failure === undefined ? 0 : d.kind === 'join' || d.kind === 'unjoin' ? HOOK_THREW_MARK : ERROR_MARK
      digest = extendDigest(digest, e.counter, this.peerHashes[e.creator]!, mark, failure?.thrown !== undefined)
    }
    return digest
  }

  /** Of two different histories settled at the same id, whether the remote one is the greater. */
  private remoteDigestWins (digest: InfimumDigest): boolean {
    if (digest.count !== this.infDigest.count) return digest.count > this.infDigest.count
    return digest.hash > this.infDigest.hash
  }

  private adoptInfimum (id: EventId, digest: InfimumDigest, participants: readonly Participant[], state: S): void {
    // The events that moved the infimum are not known here: a store must checkpoint.
    if (this.settledLog !== undefined) this.settledLog = undefined
    this.infId = { counter: id.counter, participant: this.peers[this.intern(id.participant)]! }
    this.infDigest = digest
    this.infMask = this.listToMask(participants)
    this.infState = this.hooks.frozen(state)
    this.observe(id.counter)
    while (this.head < this.entries.length && compareEventIds(this.entries[this.head]!, this.infId) <= 0) this.popHead()
    this.projValid = false
  }

  // Projection -----------------------------------------------------------------------------

  private ensureProjection (): void {
    if (this.projValid) return
    this.projState = this.infState
    this.projMask = this.infMask
    this.tailEntry = undefined
    this.tailApplied = undefined
    this.projValid = true
    for (let i = this.head; i < this.entries.length; i++) this.projectEntry(this.entries[i]!)
  }

  /** Applies one entry, known to be the last outstanding one, to a valid projection. */
  private projectEntry (e: Entry<E, O>): void {
    if (!this.projValid) return
    this.tailEntry = undefined
    this.tailApplied = undefined
    if ((this.projMask & this.peerBits[e.creator]!) === 0n) return // a renegade: reduce will drop it
    const d = e.delta
    if (d.kind === 'join' || d.kind === 'unjoin') {
      this.projMask = this.membershipMask(d, this.projMask)
      const m = this.hooks.membership(d.kind, this.peers[d.peer]!, this.projState, e)
      this.projState = m.state
      if (m.kind === 'threw') {
        e.projectedFailure = { thrown: m.message }
        this.reportThrow(e, d.kind, m)
      } else {
        e.projectedFailure = undefined
      }
    } else if (d.kind === 'event') {
      this.projectApplied(e, this.hooks.apply(d.event, this.projState, e))
    } else if (d.source !== undefined) {
      d.failure = this.foldedFailure(e, d, this.projState)
    }
  }

  /** Records `apply`'s outcome for the user event `e`, the last one the projection applies. */
  private projectApplied (e: Entry<E, O>, r: ApplyOutcome<S, O>): void {
    this.tailEntry = e
    if (r.kind === 'applied') {
      this.projState = r.state
      e.projectedFailure = undefined
      this.tailApplied = { output: r.output }
      return
    }
    e.projectedFailure = failureOf(r)
    this.tailApplied = undefined
    if (r.kind === 'threw') this.reportThrow(e, 'apply', r)
  }

  /** The participant mask after a Join or UnJoin. */
  private membershipMask (d: { readonly kind: 'join' | 'unjoin', readonly peer: number }, mask: bigint): bigint {
    const bit = this.peerBits[d.peer]!
    return d.kind === 'join' ? mask | bit : mask & ~bit
  }

}

/** The failure a remote error body carries. */
function remoteFailure<E, O> (d: Extract<Delta<E, O>, { kind: 'error' }>): Failure<O> {
  return d.thrown !== undefined ? { thrown: d.thrown } : { output: d.output }
}
