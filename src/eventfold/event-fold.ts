/**
 * The EventFold: an event-sourced CRDT whose events are totally ordered and folded into a
 * settled base value (the infimum) once every participant has acknowledged them. Semantics
 * follow the Haskell crdt-event-fold library, with one deliberate fix: an infimum digest that
 * keeps a late joiner from folding on a peer's word without holding the same events.
 *
 * Pure: no I/O, no timers, no clocks, no randomness. One instance is one participant's replica
 * and is updated in place; a merge that fails changes nothing.
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
import { EMPTY_DIGEST, ERROR_MARK, chainHash, participantHash, sameDigest } from './digest.js'
import { DiffTooNewError, DiffTooSparseError, DifferentOriginsError, ForgedEventError, type MergeError } from './errors.js'
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
  type InfimumDigest,
  type MergeOptions,
  type OutstandingEvent,
  type Participant,
  type SignedDelta,
  type UpdateResult
} from './types.js'

/** What {@link EventFold.event} returns. */
export interface EventResult<O> extends UpdateResult<O> {
  /** The id given to the new event. */
  readonly id: EventId
  /**
   * The output of applying the event to the projected value: immediate and possibly
   * inconsistent (an earlier event may still arrive and change it).
   */
  readonly output: O
  /** Whether `apply` failed on the projected value (the output is then the error's output). */
  readonly failed: boolean
}

/** What {@link EventFold.participate} and {@link EventFold.disassociate} return. */
export interface MembershipResult<O> extends UpdateResult<O> {
  /** The id of the Join or UnJoin event. */
  readonly id: EventId
}

/** The outcome of a merge: the update it made, or why it was refused (nothing changed). */
export type MergeResult<O> =
  | ({
    /** The merge was made. */
    readonly ok: true
    /**
     * Whether this replica acknowledged something it had not before: the only news of its
     * own a merge creates, which is all a runtime that sends every replica's messages to
     * every other replica needs to pass on.
     */
    readonly acknowledged: boolean
    /**
     * A first-hand full merge only ({@link MergeOptions.from}): the sender's infimum is ahead
     * of this replica's and its history differs (this replica does not hold that infimum
     * event, or folding up to it would not reproduce its digest). The settled state was not
     * taken. Among honest replicas this happens when this one was ejected, or when replicas
     * folded past an ejected peer's event that reached only some of them (see
     * `standInMask`); the runtime then rejoins once two participants show it.
     */
    readonly diverged: boolean
  } & UpdateResult<O>)
  | {
    /** The merge was refused; the fold is unchanged. */
    readonly ok: false
    /** Why it was refused. */
    readonly error: MergeError
  }

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
}

type InternalDelta<E, O> =
  | { readonly kind: 'event', readonly event: E }
  | { readonly kind: 'join', readonly peer: number }
  | { readonly kind: 'unjoin', readonly peer: number }
  | { readonly kind: 'error', readonly output: O, errorAcks: bigint }

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
 * a.event(5).output   // 5, folded at once: a is the only participant
 * a.infimumValue()    // 5
 * ```
 */
export class EventFold<E, S, O> {
  /** The cluster's name; folds of different origins never merge. */
  readonly origin: string
  /** The participant this replica belongs to. */
  readonly self: Participant
  private readonly spec: EventSpec<E, S, O>
  private readonly freeze: boolean
  private readonly signatures: EventSignatures<E, O> | undefined

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
  private projState: S
  private projMask: bigint
  /** The output of the last outstanding entry as the projection computed it, if known. */
  private tailEntry: Entry<E, O> | undefined
  private tailResult: { ok: boolean, output: O } | undefined

  private constructor (origin: string, self: Participant, spec: EventSpec<E, S, O>, options: EventFoldOptions<E, O>,
    infId: EventId, infDigest: InfimumDigest, participants: Iterable<Participant>, infState: S) {
    this.origin = origin
    this.spec = spec
    this.freeze = options.freezeStates === true
    this.signatures = options.signatures
    this.selfIndex = this.intern(self)
    this.self = this.peers[this.selfIndex]!
    this.infId = infId.counter === 0 ? BOTTOM : { counter: infId.counter, participant: this.peers[this.intern(infId.participant)]! }
    this.infDigest = infDigest
    let mask = 0n
    for (const p of participants) mask |= this.peerBits[this.intern(p)]!
    this.infMask = mask
    this.infState = this.frozen(infState)
    this.maxCounter = infId.counter
    this.projState = this.infState
    this.projMask = mask
  }

  /**
   * Creates the fold of a new cluster whose only participant is `self`. The `join` hook runs
   * once for `self`, so the first participant is in the state like every later one.
   */
  static create<E, S, O> (origin: string, self: Participant, spec: EventSpec<E, S, O>, options: EventFoldOptions<E, O> = {}): EventFold<E, S, O> {
    const init = spec.init()
    const state = spec.join !== undefined ? spec.join(self, init, BOTTOM) : init
    return new EventFold(origin, self, spec, options, BOTTOM, EMPTY_DIGEST, [self], state)
  }

  /**
   * Rebuilds a replica from a snapshot (a persisted fold, or the full state received when
   * joining). Does not acknowledge anything: a joining peer calls {@link acknowledge} (or
   * merges) once it has persisted the result.
   */
  static fromSnapshot<E, S, O> (snapshot: EventFoldSnapshot<E, S, O>, self: Participant, spec: EventSpec<E, S, O>, options: EventFoldOptions<E, O> = {}): EventFold<E, S, O> {
    const inf = snapshot.infimum
    const fold = new EventFold(snapshot.origin, self, spec, options, inf.id, inf.digest, inf.participants, inf.state)
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
    const r = this.spec.apply(event, this.projState, idOf(entry))
    if (r.ok) this.projState = this.frozen(r.state)
    this.tailEntry = entry
    this.tailResult = { ok: r.ok, output: r.output }
    this.entries.push(entry)
    const outputs: Array<ConsistentOutput<O>> = []
    this.reduce(undefined, outputs)
    return { id: { counter: entry.counter, participant: entry.participant }, output: r.output, failed: !r.ok, outputs, propagate: true }
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
    return { outputs, propagate: changed }
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
  private finishMerge (changed: boolean, outputs: Array<ConsistentOutput<O>>, diverged = false): MergeResult<O> {
    const acknowledged = this.addAcks(this.self)
    if (this.reduce(undefined, outputs)) changed = true
    return { ok: true, outputs, propagate: changed || acknowledged, acknowledged, diverged }
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
    if (infOrder === 0 && !sameDigest(diff.infimumDigest, this.infDigest)) {
      return { ok: false, error: new DiffTooSparseError('digest', remoteInf) }
    }
    if (infOrder > 0) {
      const at = this.find(remoteInf.counter, remoteInf.participant)
      if (at < 0) return { ok: false, error: new DiffTooNewError(remoteInf, this.infId) }
      if (!sameDigest(this.simulateDigest(at), diff.infimumDigest)) {
        return { ok: false, error: new DiffTooSparseError('digest', remoteInf) }
      }
    }

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
   * origins differ or a body's signature does not check.
   *
   * A first-hand merge ({@link MergeOptions.from}) never takes the other infimum: it only
   * counts it as the sender's acknowledgement of the events up to it.
   */
  mergeFull (other: EventFoldSnapshot<E, S, O>, options: MergeOptions = {}): MergeResult<O> {
    if (other.origin !== this.origin) return { ok: false, error: new DifferentOriginsError(this.origin, other.origin) }
    const believed = this.believed(options.from)
    const inf = other.infimum
    const adopt = believed === undefined && this.remoteInfimumWins(inf.id, inf.digest)
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
    let diverged = false
    if (adopt) {
      this.adoptInfimum(inf.id, inf.digest, inf.participants, inf.state)
      changed = true
    } else if (believed !== undefined && compareEventIds(inf.id, this.infId) > 0) {
      if (!this.sameHistoryUpTo(inf.id, inf.digest)) diverged = true
      else if (this.acknowledgeUpTo(inf.id, believed)) changed = true
    }
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!
      if (compareEventIds(e.id, this.infId) <= 0) continue
      if (bodies[i] === undefined && this.find(e.id.counter, e.id.participant) < 0) continue
      if (this.mergeEvent(e, bodies[i], believed)) changed = true
    }
    const outputs: Array<ConsistentOutput<O>> = []
    if (this.reduce(undefined, outputs)) changed = true
    return this.finishMerge(changed, outputs, diverged)
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
      case 'error': return { kind: 'error', output: d.output, errorAcks: this.cachedList(d.errorAcks, cache) }
    }
  }

  private internalDelta (d: Delta<E, O>): InternalDelta<E, O> {
    switch (d.kind) {
      case 'event': return d
      case 'join': return { kind: 'join', peer: this.intern(d.participant) }
      case 'unjoin': return { kind: 'unjoin', peer: this.intern(d.participant) }
      case 'error': return { kind: 'error', output: d.output, errorAcks: this.listToMask(d.errorAcks) }
    }
  }

  private entryFrom (id: EventId, delta: Delta<E, O>, acks: readonly Participant[], signature: Uint8Array | undefined): Entry<E, O> {
    const creator = this.intern(id.participant)
    this.observe(id.counter)
    return { counter: id.counter, participant: this.peers[creator]!, creator, delta: this.internalDelta(delta), acks: this.listToMask(acks), signature }
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
    return { counter, participant: this.self, creator: this.selfIndex, delta, acks: this.peerBits[this.selfIndex]!, signature }
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
    return { id: { counter: entry.counter, participant: entry.participant }, outputs, propagate: true }
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
   * Whether `id`, ahead of the infimum, is an outstanding event here and folding up to it
   * would reproduce `digest`: the sender of that infimum folded the same events as this
   * replica holds up to there, so it acknowledged each of them.
   */
  private sameHistoryUpTo (id: EventId, digest: InfimumDigest): boolean {
    const at = this.find(id.counter, id.participant)
    return at >= 0 && sameDigest(this.simulateDigest(at), digest)
  }

  /** Adds `bits` to the ack (and failure-ack) sets of every outstanding event up to `upTo`. */
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
      } else if (ld.kind === 'event' && believed === undefined) {
        // A failure anywhere makes the event a failure everywhere: the only outcome every
        // replica can agree on without knowing who else succeeded. First-hand, a failure is
        // not taken on another's word: with a deterministic spec this replica's own fold
        // fails the event too, and then counts the sender's acknowledgement of it.
        local.delta = { kind: 'error', output: body.output, errorAcks }
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
    if (this.tailEntry === e) { this.tailEntry = undefined; this.tailResult = undefined }
    this.head++
    if (this.head === this.entries.length) {
      this.entries = []
      this.head = 0
    } else if (this.head > COMPACT_AFTER && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  private foldInto (e: Entry<E, O>): void {
    this.infId = { counter: e.counter, participant: e.participant }
    this.infDigest = { count: this.infDigest.count + 1, hash: chainHash(this.infDigest.hash, e.counter, this.digestHash(e)) }
  }

  private digestHash (e: Entry<E, O>): number {
    const h = this.peerHashes[e.creator]!
    return e.delta.kind === 'error' ? (h ^ ERROR_MARK) >>> 0 : h
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

      if (d.kind === 'join' || d.kind === 'unjoin') {
        this.infMask = this.membershipMask(d, this.infMask)
        this.infState = this.membershipState(e, d, this.infState)
      } else if (d.kind === 'error') {
        if (!covered && (d.errorAcks & needed) !== needed) break
        outputs.push({ id: { counter: e.counter, participant: e.participant }, output: d.output })
      } else {
        const r = this.applyForFold(e, d.event)
        if (!r.ok) {
          e.delta = { kind: 'error', output: r.output, errorAcks: this.peerBits[this.selfIndex]! }
          changed = true
          if (covered) break
          continue // re-examine it as an error: with one participant it folds at once
        }
        this.infState = r.state
        outputs.push({ id: { counter: e.counter, participant: e.participant }, output: r.output })
      }
      this.foldInto(e)
      this.popHead()
      changed = true
      if (d.kind === 'join' || d.kind === 'unjoin') standIn = this.standInMask()
    }
    return changed
  }

  /** Applies an event for folding, reusing the projection's result when it is the last one. */
  private applyForFold (e: Entry<E, O>, event: E): { ok: true, output: O, state: S } | { ok: false, output: O } {
    if (this.projValid && this.tailEntry === e && this.tailResult !== undefined && this.head === this.entries.length - 1) {
      // Folding the only outstanding event: the projection already computed this exact step.
      return this.tailResult.ok ? { ok: true, output: this.tailResult.output, state: this.projState } : { ok: false, output: this.tailResult.output }
    }
    const r = this.spec.apply(event, this.infState, idOf(e))
    return r.ok ? { ok: true, output: r.output, state: this.frozen(r.state) } : r
  }

  /** The digest the infimum would have after folding every outstanding event up to `at`. */
  private simulateDigest (at: number): InfimumDigest {
    let mask = this.infMask
    let { count, hash } = this.infDigest
    for (let i = this.head; i <= at; i++) {
      const e = this.entries[i]!
      if ((mask & this.peerBits[e.creator]!) === 0n) continue
      const d = e.delta
      if (d.kind === 'join' || d.kind === 'unjoin') mask = this.membershipMask(d, mask)
      count++
      hash = chainHash(hash, e.counter, this.digestHash(e))
    }
    return { count, hash }
  }

  private remoteInfimumWins (id: EventId, digest: InfimumDigest): boolean {
    const c = compareEventIds(id, this.infId)
    if (c !== 0) return c > 0
    if (digest.count !== this.infDigest.count) return digest.count > this.infDigest.count
    return digest.hash > this.infDigest.hash
  }

  private adoptInfimum (id: EventId, digest: InfimumDigest, participants: readonly Participant[], state: S): void {
    this.infId = { counter: id.counter, participant: this.peers[this.intern(id.participant)]! }
    this.infDigest = digest
    this.infMask = this.listToMask(participants)
    this.infState = this.frozen(state)
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
    this.tailResult = undefined
    this.projValid = true
    for (let i = this.head; i < this.entries.length; i++) this.projectEntry(this.entries[i]!)
  }

  /** Applies one entry, known to be the last outstanding one, to a valid projection. */
  private projectEntry (e: Entry<E, O>): void {
    if (!this.projValid) return
    this.tailEntry = undefined
    this.tailResult = undefined
    if ((this.projMask & this.peerBits[e.creator]!) === 0n) return // a renegade: reduce will drop it
    const d = e.delta
    if (d.kind === 'join' || d.kind === 'unjoin') {
      this.projMask = this.membershipMask(d, this.projMask)
      this.projState = this.membershipState(e, d, this.projState)
    } else if (d.kind === 'event') {
      const r = this.spec.apply(d.event, this.projState, idOf(e))
      if (r.ok) this.projState = this.frozen(r.state)
      this.tailEntry = e
      this.tailResult = { ok: r.ok, output: r.output }
    }
  }

  /** The participant mask after a Join or UnJoin. */
  private membershipMask (d: { readonly kind: 'join' | 'unjoin', readonly peer: number }, mask: bigint): bigint {
    const bit = this.peerBits[d.peer]!
    return d.kind === 'join' ? mask | bit : mask & ~bit
  }

  /** The state after a Join or UnJoin (entry `e`): the spec's hook, if it has one. */
  private membershipState (e: Entry<E, O>, d: { readonly kind: 'join' | 'unjoin', readonly peer: number }, state: S): S {
    const hook = d.kind === 'join' ? this.spec.join : this.spec.unjoin
    return hook === undefined ? state : this.frozen(hook(this.peers[d.peer]!, state, idOf(e)))
  }

  private frozen<T> (value: T): T {
    if (this.freeze) deepFreeze(value)
    return value
  }
}

/** The id of an entry, as the fresh object a spec receives (an entry itself is internal and mutable). */
function idOf (e: { readonly counter: number, readonly participant: Participant }): EventId {
  return { counter: e.counter, participant: e.participant }
}

/** Freezes plain objects and arrays recursively, stopping at anything already frozen. */
function deepFreeze (value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value) || ArrayBuffer.isView(value)) return
  Object.freeze(value)
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
}
