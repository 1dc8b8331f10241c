/**
 * The EventFold: an event-sourced CRDT whose events are totally ordered and folded into a
 * settled base value (the infimum) once every participant has acknowledged them. Semantics
 * follow the Haskell crdt-event-fold library, with two deliberate changes: an infimum digest
 * that keeps a late joiner from folding on a peer's word without holding the same events, and
 * per-participant logs with version-vector acknowledgements, so that an acknowledgement costs
 * O(participants) whatever is outstanding and need not travel with the events it covers.
 *
 * Pure: no I/O, no timers, no clocks, no randomness. One instance is one participant's replica
 * and is updated in place; a merge that fails changes nothing. Total with respect to the
 * user's spec: every hook call goes through hooks.ts, so a hook that throws becomes data (a
 * failure, a digest mark, a {@link ThrownHook} report) and never escapes a method.
 *
 * This class is the public face; the state and its concerns live in core.ts (state),
 * projection.ts, folding.ts, admissions.ts, acknowledgements.ts, logs.ts, merge.ts, settled.ts
 * and snapshots.ts.
 *
 * @module
 */
import { aheadOfThis, externalAck, heldBefore, ownPositions } from './acknowledgements.js'
import { FoldCore, onBehalf, type Entry, type InternalDelta, type LogState } from './core.js'
import { EMPTY_DIGEST } from './digest.js'
import { acknowledgeAll, awaitingMajority, holdingBack, joinedHere, readmissionOf, reduce } from './folding.js'
import { GuardedSpec } from './hooks.js'
import { runsFrom, unsignedOwnHead } from './logs.js'
import { coreFromSnapshot, snapshotOf } from './snapshots.js'
import { acknowledgementOf, allParticipantsMask, diffFor, mergeDiff, mergeFull } from './merge.js'
import { ensureProjection, projectApplied, projectedMask, projectEntry } from './projection.js'
import { refoldSettled, takeSettled } from './settled.js'
import type { EventResult, MembershipResult, MergeResult, ProjectedOutcome } from './results.js'
import {
  BOTTOM,
  compareEventIds,
  type Acknowledgement,
  type ConsistentOutput,
  type CreatorLog,
  type Diff,
  type EventFoldOptions,
  type EventFoldSnapshot,
  type EventId,
  type EventSpec,
  type InfimumDigest,
  type LogRun,
  type MergeOptions,
  type SnapshotOptions,
  type OutstandingEvent,
  type Participant,
  type SettledInfimum,
  type UnsignedHead,
  type UpdateResult
} from './types.js'

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
  private readonly core: FoldCore<E, S, O>

  private constructor (core: FoldCore<E, S, O>) {
    this.core = core
    this.origin = core.origin
    this.self = core.self
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
    const core = new FoldCore(origin, self, hooks, options.signatures, BOTTOM, EMPTY_DIGEST, [self], joined.state, [{ participant: self, join: BOTTOM }])
    if (joined.kind === 'threw') core.thrownSince.push({ id: BOTTOM, hook: 'join', error: joined.error, message: joined.message })
    return new EventFold(core)
  }

  /**
   * Rebuilds a replica from a snapshot (a persisted fold, or the full state received when
   * joining). Does not acknowledge anything: a joining peer calls {@link acknowledge} (or
   * merges) once it has persisted the result.
   * @throws TypeError if an outstanding event is not where its creator's log says (a
   * snapshot no fold would write)
   */
  static fromSnapshot<E, S, O> (snapshot: EventFoldSnapshot<E, S, O>, self: Participant, spec: EventSpec<E, S, O>, options: EventFoldOptions<E, O> = {}): EventFold<E, S, O> {
    return new EventFold(coreFromSnapshot(snapshot, self, new GuardedSpec(spec, options.freezeStates === true), options.signatures))
  }

  // ---------------------------------------------------------------------------------------
  // Reading

  /** The projected value: the infimum with every outstanding event applied in id order. */
  projectedValue (): S {
    ensureProjection(this.core)
    return this.core.projState
  }

  /** The settled value, identical on every replica at the same infimum id. */
  infimumValue (): S {
    return this.core.infState
  }

  /** The id of the last event folded into the infimum ({@link BOTTOM} if none). */
  infimumId (): EventId {
    return this.core.infId
  }

  /** The digest of every event folded into the infimum. */
  infimumDigest (): InfimumDigest {
    return this.core.infDigest
  }

  /**
   * Every participant this replica has seen (creators, acknowledgers, joined and departed
   * members), in the order it first saw them. The array only grows, and is shared: read only.
   */
  knownParticipants (): readonly Participant[] {
    return this.core.table.names
  }

  /** The participants as of the infimum, sorted. */
  infimumParticipants (): Participant[] {
    return this.core.table.list(this.core.infMask)
  }

  /**
   * Whether this replica's own Join has folded (it is a participant of its infimum) and no
   * readmission of it is pending. From then on every event that can fold needs its
   * acknowledgement, so it holds every one of them and never needs another replica's settled
   * state: it can merge first-hand ({@link MergeOptions.from}). A replica readmitted under its
   * name (an UnJoin of it, then a Join of it, both pending) is listed in an infimum only through
   * its old incarnation, whose events it may not hold and whose place its own
   * acknowledgements do not take: until the readmission folds it merges as a joiner does.
   */
  hasJoined (): boolean {
    return joinedHere(this.core)
  }

  /** The participants once every outstanding Join and UnJoin has taken effect, sorted. */
  projectedParticipants (): Participant[] {
    return this.core.table.list(projectedMask(this.core))
  }

  /** Who is, was during an outstanding event, or is joining: the infimum's plus every outstanding Join, sorted. */
  allParticipants (): Participant[] {
    return this.core.table.list(allParticipantsMask(this.core))
  }

  /** Participants whose UnJoin with `quorum` waits here for a strict majority (see {@link Delta}), sorted. */
  awaitingMajority (): Participant[] {
    return this.core.table.list(awaitingMajority(this.core))
  }

  /**
   * Participants that hold the fold back: each one some outstanding event waits for (it has
   * not acknowledged it, and the event cannot fold without it), with the newest event it
   * acknowledged before the first such one (the infimum id if none). Empty when nothing is
   * outstanding.
   *
   * The first event a participant has not acknowledged is what counts, not the newest: with
   * acknowledgements as version vectors a participant may acknowledge later events (its own,
   * always) and still miss an earlier one, and the fold cannot pass that one without it. The
   * newest event it acknowledged before it moves only when it acknowledges what it holds back,
   * which is what the runtime's progress tracker needs to find it stuck.
   */
  divergent (): Map<Participant, EventId> {
    return holdingBack(this.core, this.allParticipants())
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
    const core = this.core
    return core.head < core.entries.length && core.entries[core.head]!.delta.kind === 'error'
  }

  /**
   * How many heads of other participants' logs, taken first-hand without a signature check
   * ({@link MergeOptions.from}), failed the check when this replica was about to hand them on:
   * their creators signed them wrongly, and their runs are not handed on.
   */
  get lateForgedHeads (): number {
    return this.core.lateForged
  }

  /** Number of outstanding (not yet folded) events. */
  get outstandingCount (): number {
    return this.core.entries.length - this.core.head
  }

  /** The largest event id counter this replica has seen. */
  get maxKnownCounter (): number {
    return this.core.maxCounter
  }

  /**
   * Raises this replica's Lamport counter to at least `counter`, so its next events take
   * larger ids. A participant that replaces its fold (a rejoin) calls it with the counter of
   * the fold it had, so it never reuses an id it already gave an event that may still be
   * travelling.
   */
  observeCounter (counter: number): void {
    this.core.observe(counter)
  }

  /**
   * How many of `participant`'s events this replica holds, from the first, in its log `since`
   * (by default the one it writes now, as far as this replica knows: see {@link CreatorLog}).
   */
  held (participant: Participant, since?: number): number {
    const core = this.core
    const i = core.table.indexOf(participant)
    if (i === undefined) return 0
    if (since !== undefined) return core.held(i, since)
    if (i === core.selfIndex) return core.ownLog?.seq ?? 0
    const log = core.latest.get(i)?.log ?? Math.max(-1, ...(core.logs.get(i)?.keys() ?? []))
    return core.held(i, log)
  }

  /** The log this replica writes now (its `since`), or 0 before its first event in this fold. */
  get log (): number {
    return this.core.ownLog?.since ?? 0
  }

  /**
   * Goes on writing the newest of this replica's own logs the fold holds, instead of starting a
   * new one at its next event. For a fold recovered from this replica's own storage: it holds
   * every event of its own it ever sent, so nobody can hold more of that log, and its own
   * outstanding events there stay covered by its acknowledgements (which a new log would not
   * do). Not for a fold received from another replica (a join), whose copy of this replica's
   * log may be shorter than what this replica sent before.
   */
  resumeLog (): void {
    const core = this.core
    let newest: LogState | undefined
    for (const log of core.logs.get(core.selfIndex)?.values() ?? []) if (newest === undefined || log.since > newest.since) newest = log
    if (newest !== undefined && newest.seq > 0) core.ownLog = newest
  }

  /**
   * The head of this replica's own log while it has no signature, so that a peer can sign the
   * heads of several groups at once; `undefined` without signatures or once signed.
   */
  unsignedHead (): UnsignedHead | undefined {
    return unsignedOwnHead(this.core)
  }

  /** This replica's acknowledgement: its version vector, its infimum, the failures it saw. */
  acknowledgement (): Acknowledgement<O> {
    return acknowledgementOf(this.core)
  }

  /** The newest acknowledgement of `participant` this replica has taken, if any. */
  acknowledgementOf (participant: Participant): Acknowledgement<O> | undefined {
    const i = this.core.table.indexOf(participant)
    const a = i === undefined ? undefined : this.core.latest.get(i)
    return a === undefined ? undefined : externalAck(this.core, a)
  }

  /**
   * The infimum id of the newest acknowledgement of `participant` taken here, if any: the same
   * as `acknowledgementOf(participant)?.infimumId`, without building the acknowledgement.
   */
  acknowledgedInfimumOf (participant: Participant): EventId | undefined {
    const i = this.core.table.indexOf(participant)
    return i === undefined ? undefined : this.core.latest.get(i)?.infId
  }

  /**
   * Whether the newest acknowledgement of `participant` taken here says its own Join had
   * folded there ({@link Acknowledgement.joined}); `false` when none was taken. The same as
   * `acknowledgementOf(participant)?.joined === true`, without building the acknowledgement:
   * the runtime asks it for every output of another creator's event that folds.
   */
  acknowledgesJoined (participant: Participant): boolean {
    const i = this.core.table.indexOf(participant)
    return i !== undefined && this.core.latest.get(i)?.joined === true
  }

  /**
   * The participants whose acknowledgements show events this replica does not hold, the one
   * ahead by the most first: a sync from one of them repairs what it missed.
   */
  aheadOfThis (): Participant[] {
    return aheadOfThis(this.core)
  }

  /**
   * The events of `creator`'s log `since` this replica holds outstanding from position `from` on, as
   * one run ending at the held head (with the creator's signature of it; this replica signs
   * its own head here if it has not yet), or `undefined` if there are none.
   */
  run (creator: Participant, since: number, from: number): LogRun<E, O> | undefined {
    const i = this.core.table.indexOf(creator)
    if (i === undefined) return undefined
    return runsFrom(this.core, (c, s) => c === i && s === since ? from : Number.POSITIVE_INFINITY)[0]
  }

  /** The outstanding events in ascending id order, as plain data. */
  outstandingEvents (): Array<OutstandingEvent<E, O>> {
    const core = this.core
    const cache = new Map<bigint, Participant[]>()
    const out: Array<OutstandingEvent<E, O>> = []
    // Readmitted (an UnJoin of this replica's name and a Join after it pending), this replica
    // does not count its own acknowledgement of what is ordered before that UnJoin (folding.ts,
    // `reduce`), and must not hand it on either: a joiner taking this fold as its start would
    // count it, and fold past an event of the old incarnation that this one never held (link
    // cuts with delays and crashes, seed 52; docs/RELIABILITY.md).
    const readmitted = readmissionOf(core, core.selfIndex)
    for (let i = core.head; i < core.entries.length; i++) {
      const e = core.entries[i]!
      let d = e.delta
      // An UnJoin's acknowledgers travel with the positions they held (see `Entry.positioned`),
      // this replica's own included.
      let acks = d.kind === 'unjoin' ? core.acksOf(e) & (e.positioned | core.selfBit | core.table.bit(d.peer)) : core.acksOf(e)
      if (readmitted !== undefined && compareEventIds(e, readmitted.unjoin) < 0) {
        // (Its own UnJoin's acknowledgement on its behalf stays: that one is not a claim of holding.)
        acks &= ~core.selfBit | (d.kind === 'unjoin' ? core.table.bit(d.peer) : 0n)
        if (d.kind === 'error') d = { ...d, errorAcks: d.errorAcks & ~core.selfBit }
      }
      const event = { id: { counter: e.counter, participant: e.participant }, since: e.since, seq: e.seq, delta: core.externalDelta(d, cache), acks: core.table.cachedList(acks, cache) }
      const positions = d.kind === 'unjoin' ? ownPositions(core, e, d.peer, i) : e.standIn
      const standIn = positions === undefined ? [] : [...positions].map(([since, seq]) => ({ since, seq })).sort((a, b) => a.since - b.since)
      out.push(standIn.length > 0 ? { ...event, standIn } : event)
    }
    return out
  }

  /**
   * The events folded since the previous call, in fold order, each with its log position and
   * the outcome it folded with (an event whose `apply` failed is its Error), for a store that
   * saves the settled state as the events that moved it rather than whole. The first call
   * starts the record and returns `undefined`, as does the first call after this replica took
   * another's infimum whole (a merge that adopts a settled state it did not fold): the caller
   * cannot know what moved the infimum, and saves it whole. Until the first call nothing is
   * recorded.
   */
  takeSettled (): Array<OutstandingEvent<E, O>> | undefined {
    return takeSettled(this.core)
  }

  /**
   * Folds `events`, a record {@link takeSettled} gave to a store, back into the infimum of a
   * fold rebuilt from what that store saved (the infimum before them, and the logs and
   * outstanding events as they stood after them), as acknowledged by everyone up to `upTo`.
   * Returns the infimum id and digest it reached, for the caller to check against those it
   * saved with the record; when they differ (an event missing, or folding otherwise now) the
   * fold is not the one that was saved and must be discarded. The logs and the outstanding
   * events are left as they are (the latter projected again, onto the infimum they follow).
   * @throws TypeError if an event is not between the infimum and `upTo`, or not in the part of
   * its creator's log this fold holds as settled
   */
  refoldSettled (events: ReadonlyArray<OutstandingEvent<E, O>>, upTo: EventId): SettledInfimum {
    return refoldSettled(this.core, events, upTo)
  }

  /** The whole fold as plain data, for a full merge or for storage. Shares state objects. */
  snapshot (options: SnapshotOptions = {}): EventFoldSnapshot<E, S, O> {
    return snapshotOf(this.core, this.outstandingEvents(), options.checkSignatures ?? true)
  }

  // ---------------------------------------------------------------------------------------
  // Local updates

  /**
   * Adds a user event created by this replica, with the next id and the next position in its
   * log, acknowledged by this replica. Returns the event's projected output at once, and the
   * consistent outputs of anything that folded (with a single participant, the event itself).
   */
  event (event: E): EventResult<O> {
    const core = this.core
    const entry = this.newEntry({ kind: 'event', event })
    // A new local event always has the largest id, so it extends the projection.
    ensureProjection(core)
    const r = core.hooks.apply(event, core.projState, entry)
    projectApplied(core, entry, r)
    core.entries.push(entry)
    core.track(entry, 1)
    const outputs: Array<ConsistentOutput<O>> = []
    reduce(core, undefined, outputs)
    const outcome: ProjectedOutcome<O> = r.kind === 'threw'
      ? { status: 'threw', error: r.error, message: r.message }
      : { status: r.kind, output: r.output }
    return { id: { counter: entry.counter, participant: entry.participant }, outcome, outputs, propagate: true, thrown: core.takeThrown() }
  }

  /** Adds a Join for `peer`, acknowledged by this replica. */
  participate (peer: Participant): MembershipResult<O> {
    return this.membership({ kind: 'join', peer: this.core.table.intern(peer) })
  }

  /**
   * Adds an UnJoin for `peer`, acknowledged by this replica and on `peer`'s behalf: this is
   * how an unreachable peer is ejected. Until it folds, the pending UnJoin stands in for the
   * peer's acknowledgements, so the peer cannot block the fold. With `quorum` (the failure
   * detector's ejections) it is not acknowledged on `peer`'s behalf, and stands in only while
   * a strict majority of the participants remains (see the `quorum` of an UnJoin's {@link Delta}).
   */
  disassociate (peer: Participant, options: { readonly quorum?: boolean } = {}): MembershipResult<O> {
    const index = this.core.table.intern(peer)
    return this.membership(options.quorum === true ? { kind: 'unjoin', peer: index, quorum: true } : { kind: 'unjoin', peer: index })
  }

  /**
   * Records that `participant` (by default this replica) has seen every outstanding event,
   * and every outstanding failure, then folds what it can.
   *
   * The caller must have persisted the fold before anyone learns of this acknowledgement: a
   * participant may never roll back what it acknowledged.
   */
  acknowledge (participant: Participant = this.self): UpdateResult<O> {
    const core = this.core
    let changed = acknowledgeAll(core, core.table.bit(core.table.intern(participant)))
    const outputs: Array<ConsistentOutput<O>> = []
    if (reduce(core, undefined, outputs)) changed = true
    return { outputs, propagate: changed, thrown: core.takeThrown() }
  }

  private newEntry (delta: InternalDelta<E, O>): Entry<E, O> {
    const core = this.core
    core.maxCounter += 1
    const counter = core.maxCounter
    // A log is one incarnation's: the one the Join that admits this replica here made. Admitted
    // again by another Join (its first one was dropped, or it was readmitted), it writes a new
    // log; the old one's events after that Join can no longer fold (admissions.ts, `takesPart`).
    ensureProjection(core)
    const admittedBy = core.projAdmitted.get(core.selfIndex)
    const current = core.ownLog?.admittedBy
    if (core.ownLog === undefined || (current !== undefined && admittedBy !== undefined && compareEventIds(current, admittedBy) !== 0)) {
      core.ownLog = core.log(core.selfIndex, counter)
      core.ownLog.admittedBy = admittedBy
    }
    const log = core.ownLog
    const seq = log.seq + 1
    const hash = core.chain(log.hash, { counter, participant: core.self }, core.loggedDelta(delta))
    log.seq = seq
    log.hash = hash
    log.signature = undefined // signed once per batch, when it is sent (logs.ts, `headSignature`)
    return { counter, participant: core.self, creator: core.selfIndex, since: log.since, log, seq, hash, delta, acks: core.selfBit, ackSeen: core.ackVersion, standIn: undefined, positioned: 0n, projectedFailure: undefined, reported: false }
  }

  private membership (delta: InternalDelta<E, O>): MembershipResult<O> {
    const core = this.core
    const entry = this.newEntry(delta)
    ensureProjection(core)
    core.entries.push(entry)
    if (delta.kind === 'unjoin') {
      entry.acks |= onBehalf(core, delta)
      const standIn = heldBefore(core, delta.peer, core.entries.length - 1)
      if (standIn.size > 0) entry.standIn = standIn
    }
    core.track(entry, 1)
    projectEntry(core, entry)
    const outputs: Array<ConsistentOutput<O>> = []
    reduce(core, undefined, outputs)
    return { id: { counter: entry.counter, participant: entry.participant }, outputs, propagate: true, thrown: core.takeThrown() }
  }

  // ---------------------------------------------------------------------------------------
  // Exchange

  /**
   * The diff to send `peer`, or `undefined` when `peer` needs the full fold instead: its Join
   * has not yet folded into the infimum, or an UnJoin for it is pending. It carries this
   * replica's acknowledgement (first), unless `relay` is false those it holds of others too,
   * and the events of every log it holds outstanding past what `peer` last acknowledged.
   */
  diffFor (peer: Participant, options: { readonly relay?: boolean } = {}): Diff<E, O> | undefined {
    return diffFor(this.core, peer, options.relay !== false)
  }

  /**
   * Merges a diff from another replica, then acknowledges. Refused, with nothing changed,
   * when the origins differ, when a run of a creator's log starts past what is held here
   * (`DiffTooSparseError`, `missing-body`: the events in between are missing), when a run does
   * not chain to a head its creator signed (`ForgedEventError`), when the sender's infimum is
   * an event not held here (`DiffTooNewError`), or when folding up to it would not reproduce
   * its digest (`DiffTooSparseError`, `digest`). Refusals other than the origin and a forgery
   * call for a sync.
   *
   * Trusting, events at or below the sender's infimum fold without waiting for
   * acknowledgements: it proves everyone acknowledged them. If one of them fails to apply
   * here although the sender applied it, the fold blocks ({@link isBlockedOnError}) until a
   * full merge from a peer that folded it. A first-hand merge ({@link MergeOptions.from})
   * takes only the sender's acknowledgement.
   */
  mergeDiff (diff: Diff<E, O>, options: MergeOptions = {}): MergeResult<O> {
    return mergeDiff(this.core, diff, options)
  }

  /**
   * Merges another replica's whole fold, then acknowledges. Takes the greater infimum (by id,
   * then by digest, so replicas that somehow diverged at the same id still converge on one),
   * drops local events it covers, and merges the logs it continues. Refused only when the
   * origins differ or a run does not chain to its creator's signed head. Hooks that threw
   * settle which infimum is greater ({@link InfimumDigest.throws}): one whose history differs
   * from this replica's because the sender's hooks threw is never taken (its events fold here
   * instead, acknowledged by everyone as it proves), and one that differs because this
   * replica's own hooks threw always is.
   *
   * A first-hand merge ({@link MergeOptions.from}) never takes the other infimum: it only
   * counts the sender's acknowledgement (its logs, its infimum) when this replica holds the
   * same history (but for the sender's throws), and reports `diverged` otherwise.
   */
  mergeFull (other: EventFoldSnapshot<E, S, O>, options: MergeOptions = {}): MergeResult<O> {
    return mergeFull(this.core, other, options)
  }
}
