/**
 * One incarnation of one replicated group on this peer: its EventFold and everything that
 * belongs to that fold and to nothing else — the change counters the persistence gate and the
 * flush read (`version`, `savedVersion`, `notifiedVersion`), what this peer owes the others
 * (`broadcast`, `ackTo`), the callers waiting in `applyConsistent`, the outputs owed to other
 * creators, the syncs in flight, and the first-hand divergence evidence. A rejoin replaces the replica whole, so
 * nothing of an old membership survives into a new one by accident.
 *
 * Pure with respect to I/O: it never sends or saves. It reports what a merge found (a refusal
 * that calls for a sync, a forgery, a divergence) for the parts that do I/O to act on, and
 * calls `changed` so the peer's flush runs at the end of the tick.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import { EventFold } from '../../eventfold/event-fold.js'
import { ForgedEventError } from '../../eventfold/errors.js'
import { compareEventIds, eventIdKey, type ConsistentOutput, type Diff, type EventFoldOptions, type EventFoldSnapshot, type EventId, type MergeOptions, type OutstandingEvent, type Participant, type SettledInfimum, type UpdateResult } from '../../eventfold/types.js'
import { sameDigest } from '../../eventfold/digest.js'
import type { MergeResult } from '../../eventfold/results.js'
import { encodeWith } from '../../codec/codec.js'
import { decodeDiff, encodeDiff, encodeEventFold, type DiffContext } from '../../codec/eventfold.js'
import type { DecodeLimits } from '../../codec/codec.js'
import type { PeerClock } from '../clock.js'
import { ConsistencyTimeoutError, EjectedError, EventApplyError } from '../errors.js'
import { AbortError } from '../../transport/errors.js'
import { StorageCorruptError } from '../../storage/storage.js'
import type { ClusterState, LegionCounters, WaitOptions } from '../options.js'
import type { EncodedOutput } from '../protocol/outputs.js'
import type { GroupDefinition } from './definition.js'
import { ParticipantFingerprints } from './participant-names.js'

/**
 * What a peer's own storage holds of a group beside its snapshot: the events folded since the
 * checkpoint the snapshot's infimum is, and the infimum they reach (see kv-peer-store.ts).
 */
export interface Recovered<E, O> {
  readonly settled?: {
    readonly events: ReadonlyArray<OutstandingEvent<E, O>>
    readonly reached: SettledInfimum
  }
}

/** What a replica needs from the peer. */
export interface ReplicaComponents {
  /** This peer. */
  readonly self: Participant
  /** Time, for `applyConsistent` timeouts and relay delays. */
  readonly clock: PeerClock
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** The groups' logger. */
  readonly log: Logger
  /** Signing and freezing of this peer's folds of a group. */
  readonly foldOptions: <E, S, O>(definition: GroupDefinition<E, S, O>) => EventFoldOptions<E, O>
  /** Called after every change (and announcement) of this replica: the peer flushes it at the end of the tick. */
  readonly changed: (replica: GroupReplica<unknown, unknown, unknown>) => void
  /** Decode limits of messages. */
  readonly limits: DecodeLimits
}

/** Settings shared by every replica of a peer. */
export interface ReplicaSettings {
  /** Merge first-hand once this replica's Join has folded (push propagation). */
  readonly firstHand: boolean
  /** Send the consistent outputs of others' events to their creators (those that may skip them). */
  readonly forwardOutputs: boolean
  /** Default `applyConsistent` timeout. */
  readonly consistentTimeoutMs: number
  /**
   * Send this replica's acknowledgement to every other participant after every merge that
   * took something (`propagation.acknowledge: 'everyone'`), not only to those `notify` names.
   * @default false
   */
  readonly acknowledgeEveryone?: boolean
  /**
   * With {@link acknowledgeEveryone}: the acknowledgement owed to participants that are not
   * waiting for it is left to propagation to send when it sends them something anyway, or
   * after `propagation.acknowledgeDelayMs` (`acknowledgeLater`), instead of at this flush.
   * @default false
   */
  readonly acknowledgeLater?: boolean
}

/** What a merge from a peer found, for the parts that act on it. */
export type MergeOutcome =
  | { readonly kind: 'merged', readonly acknowledged: boolean }
  /** Refused as too new or too sparse: pull a sync from the sender (`full`: the whole fold). */
  | { readonly kind: 'refused', readonly full: boolean, readonly reason: string }
  /** A body's signature did not check: dropped, nothing asked again (an honest peer never sends one). */
  | { readonly kind: 'forged', readonly reason: string }
  /** The message is of another origin. */
  | { readonly kind: 'wrong-origin' }
  /**
   * First-hand: the sender's fold settled past this one on a history this replica does not
   * share. `ejected`: the settled participants no longer include this peer.
   */
  | { readonly kind: 'diverged', readonly ejected: boolean, readonly threwHere: boolean }

interface Pending<O> {
  readonly id: EventId
  readonly resolve: (output: O) => void
  readonly reject: (err: Error) => void
}

/** One incarnation of one group; see the module comment. */
export class GroupReplica<E, S, O> {
  /** Counts every change of the fold (each is saved and shown to subscribers). */
  version = 0
  /** The newest version the persistence gate has saved. */
  savedVersion = 0
  /** The newest version subscribers were shown. */
  notifiedVersion = 0
  /**
   * This peer owes every other participant a batch: it made events or memberships (they go to
   * everyone with its acknowledgement), acknowledged a new failure, or an anti-entropy round
   * re-announces its acknowledgement.
   */
  broadcast = false
  /**
   * Participants this peer owes its acknowledgement now (`MergeResult.notify`: the creators of
   * events it just took, who may be waiting for it to fold them); the others hear of it at
   * the next anti-entropy round.
   */
  readonly ackTo = new Set<Participant>()
  /**
   * This peer owes every other participant its acknowledgement, without hurry: it took events
   * none of them is waiting for it to acknowledge (the creators are in {@link ackTo}).
   * Propagation sends it with the next message to each, or once `acknowledgeDelayMs` is up.
   */
  acknowledgeLater = false
  /** How far this peer's own log has gone out in batches: its log (`since`) and position. */
  private sent = { since: 0, seq: 0 }
  /**
   * Participants whose diff showed them waiting for events this replica folded: they missed
   * acknowledgements of this peer's, which only this peer may give them (first-hand). The next
   * anti-entropy tick re-announces to them (and only them).
   */
  readonly behind = new Set<Participant>()
  /** Participants a sync is in flight with (one at a time per participant). */
  readonly syncing = new Set<Participant>()
  /** Participants whose whole fold showed a settled history this replica does not share. */
  readonly divergedFrom = new Set<Participant>()
  private foldValue: EventFold<E, S, O> | undefined
  private readonly pending = new Map<string, Pending<O>>()
  private readonly outputsToForward = new Map<Participant, EncodedOutput[]>()
  private readonly fingerprints = new ParticipantFingerprints()
  /**
   * The lists a table hash in a received Diff may name besides this replica's own recent
   * infimum lists: its projected participants. One function for the replica's life, so that
   * the fingerprints hand out the same decoding context while nothing changed.
   */
  private readonly projectedLists = (): ReadonlyArray<readonly Participant[]> => this.foldValue === undefined ? [] : [this.foldValue.projectedParticipants()]
  private participantsCache: { version: number, set: ReadonlySet<Participant> } | undefined

  constructor (
    readonly definition: GroupDefinition<E, S, O>,
    private readonly components: ReplicaComponents,
    private readonly settings: ReplicaSettings,
    fold?: EventFold<E, S, O>
  ) {
    if (fold !== undefined) this.install(fold)
  }

  /** Whether this peer owes anyone anything of this group at the next flush. */
  get news (): boolean {
    return this.broadcast || this.ackTo.size > 0 || this.acknowledgeLater
  }

  /** Forgets what this peer owes (a flush took it, or this peer may not send now). */
  clearNews (): void {
    this.broadcast = false
    this.ackTo.clear()
    this.acknowledgeLater = false
  }

  /** The group's id. */
  get id (): string {
    return this.definition.id
  }

  /** The fold, once this peer holds the group's state (`undefined` while it waits for it). */
  get fold (): EventFold<E, S, O> | undefined {
    return this.foldValue
  }

  /** A new fold of this group whose only participant is this peer. */
  static founded<E, S, O> (definition: GroupDefinition<E, S, O>, components: ReplicaComponents, settings: ReplicaSettings, initial?: { readonly state: S }): GroupReplica<E, S, O> {
    // A founder with a state to start from (a successor of a group this peer held) starts there
    // instead of at `init()`: the fold calls `init` only to create.
    const spec = initial === undefined ? definition.spec : { ...definition.spec, init: () => initial.state }
    const fold = EventFold.create(definition.origin, components.self, spec, components.foldOptions(definition))
    return new GroupReplica(definition, components, settings, fold)
  }

  /**
   * A fold of this group from a snapshot (a sponsor, a participant's push; `recovered`: this
   * peer's own storage, whose log it goes on writing), acknowledged by this peer.
   * @throws StorageCorruptError when recovered settled events do not reach what was saved
   */
  static fromSnapshot<E, S, O> (definition: GroupDefinition<E, S, O>, components: ReplicaComponents, settings: ReplicaSettings, snapshot: EventFoldSnapshot<E, S, O>, previousCounter = 0, recovered?: Recovered<E, O>): GroupReplica<E, S, O> {
    const replica = new GroupReplica(definition, components, settings)
    replica.adopt(snapshot, previousCounter, recovered)
    return replica
  }

  /**
   * Takes a whole fold as this peer's own (a joiner's, or a waiting member's first state):
   * trusting, since before its Join folds this peer may lack events that folded without it.
   * `previousCounter`: never reuse an id below it (a rejoining peer's old events may still travel).
   * `recovered`: the fold is this peer's own, from its storage: its settled events fold back
   * first (before anything can fold past them), and it goes on writing its log.
   * @throws StorageCorruptError when recovered settled events do not reach what was saved
   */
  adopt (snapshot: EventFoldSnapshot<E, S, O>, previousCounter = 0, recovered?: Recovered<E, O>): void {
    const d = this.definition
    const fold = EventFold.fromSnapshot(snapshot, this.components.self, d.spec, this.components.foldOptions(d))
    fold.observeCounter(previousCounter)
    if (recovered?.settled !== undefined) {
      // The events folded since the checkpoint fold again, as acknowledged by everyone, and
      // must reach what was saved: anything else is a corrupt record, not a state to run on.
      const { events, reached } = recovered.settled
      const got = fold.refoldSettled(events, reached.id)
      if (compareEventIds(got.id, reached.id) !== 0 || !sameDigest(got.digest, reached.digest)) {
        throw new StorageCorruptError('invalid', `the settled events of group ${JSON.stringify(d.id)} reach ${eventIdKey(got.id)} (${got.digest.count} folded), not the saved ${eventIdKey(reached.id)} (${reached.digest.count})`)
      }
    }
    if (recovered !== undefined) fold.resumeLog()
    this.install(fold)
    // Everyone hears of it: what this peer holds now, and its own events (a sync fills in
    // whatever of them a receiver lacks).
    this.sent = { since: 0, seq: 0 }
    this.afterUpdate(fold.acknowledge(), true)
  }

  private install (fold: EventFold<E, S, O>): void {
    this.foldValue = fold
    this.participantsCache = undefined
    this.changed()
  }

  // ---------------------------------------------------------------------------------------
  // Local updates

  /**
   * Applies an event on the projection; see `Legion.applyFast`. An `apply` that threw is an
   * `EventApplyError`, once the event is recorded (it travels, and folds as a failure).
   */
  applyFast (fold: EventFold<E, S, O>, event: E): O {
    const r = fold.event(event)
    this.components.counters.eventsApplied++
    this.afterUpdate(r)
    const outcome = r.outcome
    if (outcome.status === 'threw') throw new EventApplyError(r.id, outcome.message, { cause: outcome.error })
    return outcome.output
  }

  /** Applies an event and waits for it to fold; see `Legion.applyConsistent`. */
  async applyConsistent (fold: EventFold<E, S, O>, event: E, options: WaitOptions = {}): Promise<O> {
    const { signal } = options
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    const timeoutMs = options.timeoutMs ?? this.settings.consistentTimeoutMs
    const r = fold.event(event)
    this.components.counters.eventsApplied++
    const key = eventIdKey(r.id)
    const clock = this.components.clock
    const promise = new Promise<O>((resolve, reject) => {
      const timer = clock.setTimer(timeoutMs, () => { settle(); reject(new ConsistencyTimeoutError(r.id, timeoutMs)) })
      const onAbort = (): void => { settle(); reject(new AbortError(undefined, { cause: signal?.reason })) }
      signal?.addEventListener('abort', onAbort, { once: true })
      const settle = (): void => {
        timer.cancel()
        signal?.removeEventListener('abort', onAbort)
        this.pending.delete(key)
      }
      this.pending.set(key, {
        id: r.id,
        resolve: (o) => { settle(); resolve(o) },
        reject: (e) => { settle(); reject(e) }
      })
    })
    this.afterUpdate(r) // may resolve at once: with one participant the event folds immediately
    return await promise
  }

  /** Rejects every pending `applyConsistent` (an ejection or a stop): `make` builds each error. */
  rejectPending (make: (id: EventId) => Error): void {
    for (const p of [...this.pending.values()]) p.reject(make(p.id))
  }

  /** Rejects every pending `applyConsistent` with `EjectedError`: their outcome is unknown. */
  rejectEjected (): void {
    this.rejectPending(id => new EjectedError(id))
  }

  /**
   * Records the effects of an update: its consistent outputs, a change to save and show if
   * the fold changed, and whether that change is news for everyone (`broadcast`: local
   * updates always are). What a merge owes is added by the merge (`notify`).
   */
  afterUpdate (r: UpdateResult<O>, broadcast: boolean = r.propagate): void {
    for (const t of r.thrown) {
      this.components.counters.hookErrors++
      this.components.log.error('group %s: the %s hook threw on event %d:%s: %s', this.id === '' ? '(cluster)' : this.id, t.hook, t.id.counter, t.id.participant, t.message)
    }
    for (const o of r.outputs) this.onConsistent(o)
    if (broadcast) this.broadcast = true
    if (r.propagate || broadcast) this.changed()
  }

  /** The effects of a merge: {@link afterUpdate}, and this peer's acknowledgement owed to those it notifies. */
  private afterMerge (r: Extract<MergeResult<O>, { ok: true }>): void {
    for (const p of r.notify) this.ackTo.add(p)
    // Acknowledging everyone: the batch to everyone carries the acknowledgement (and no events
    // of this peer's log it sent before), or, acknowledging later, propagation sends it to
    // those not waiting for it (the creators get it now, through ackTo).
    const everyone = this.settings.acknowledgeEveryone === true && r.acknowledged
    const later = everyone && this.settings.acknowledgeLater === true && this.definition.acknowledgeAtOnce !== true
    if (later) this.acknowledgeLater = true
    this.afterUpdate(r, everyone && !later)
    if (r.notify.length > 0) this.changed()
  }

  /** Counts a change: saved, shown and (if news) sent at the end of the tick. */
  changed (): void {
    this.version++
    this.components.changed(this as GroupReplica<unknown, unknown, unknown>)
  }

  /** Re-announces this replica's acknowledgement to everyone at the end of the tick (anti-entropy), changing nothing. */
  announce (): void {
    this.broadcast = true
    this.components.changed(this as GroupReplica<unknown, unknown, unknown>)
  }

  private onConsistent (o: ConsistentOutput<O>): void {
    this.components.counters.eventsFolded++
    const creator = o.id.participant
    if (creator === this.components.self) {
      const pending = this.pending.get(eventIdKey(o.id))
      if (o.thrown !== undefined) pending?.reject(new EventApplyError(o.id, o.thrown))
      else pending?.resolve(o.output)
    } else if (this.settings.forwardOutputs && this.mayMiss(creator)) {
      let list = this.outputsToForward.get(creator)
      if (list === undefined) { list = []; this.outputsToForward.set(creator, list) }
      list.push(o.thrown !== undefined ? { id: o.id, thrown: o.thrown } : { id: o.id, value: encodeWith(this.definition.codecs.output, o.output) })
    }
  }

  /**
   * Whether `creator` may not learn the outcome of its own event by folding it itself: only a
   * replica whose Join has not folded (it merges trusting, and may take a settled state past
   * its own event) or one this peer knows nothing of. A joined creator folds every event of its
   * own itself (every fold needs its acknowledgement, and its acknowledgements go to it), so a
   * forwarded output would arrive after its own.
   */
  private mayMiss (creator: Participant): boolean {
    return this.foldValue?.acknowledgesJoined(creator) !== true
  }

  /** Settles a pending `applyConsistent` of this peer with an outcome another peer forwarded. */
  resolveForwarded (id: EventId, outcome: { readonly output: O } | { readonly thrown: string }): boolean {
    const pending = this.pending.get(eventIdKey(id))
    if (pending === undefined) return false
    if ('thrown' in outcome) pending.reject(new EventApplyError(id, outcome.thrown))
    else pending.resolve(outcome.output)
    return true
  }

  /** Whether a forwarded output is awaited for `id`. */
  awaits (id: EventId): boolean {
    return this.pending.has(eventIdKey(id))
  }

  /** Takes the outputs owed to other creators since the last call. */
  takeOutputs (): Map<Participant, EncodedOutput[]> {
    const out = new Map(this.outputsToForward)
    this.outputsToForward.clear()
    return out
  }

  // ---------------------------------------------------------------------------------------
  // Reading

  /** Whether `peer` is a projected participant of this group. */
  isParticipant (peer: Participant): boolean {
    const fold = this.foldValue
    if (fold === undefined) return false
    if (this.participantsCache?.version !== this.version) {
      this.participantsCache = { version: this.version, set: new Set(fold.projectedParticipants()) }
    }
    return this.participantsCache.set.has(peer)
  }

  /** The other projected participants. */
  others (): Participant[] {
    const self = this.components.self
    return this.foldValue?.projectedParticipants().filter(p => p !== self) ?? []
  }

  /** The state as this replica sees it. */
  readState (fold: EventFold<E, S, O>): ClusterState<S> {
    return {
      projected: fold.projectedValue(),
      infimum: fold.infimumValue(),
      infimumId: fold.infimumId(),
      participants: fold.infimumParticipants(),
      projectedParticipants: fold.projectedParticipants(),
      outstanding: fold.outstandingCount,
      joined: fold.hasJoined()
    }
  }

  // ---------------------------------------------------------------------------------------
  // Exchange

  /**
   * This peer's batch for every other participant, as a pushed Diff (participants every
   * receiver knows by fingerprint, the origin implied): its acknowledgement, and the events of
   * its own log it has not sent in a batch before (its signature of the log's head with them).
   * A receiver that missed an earlier batch finds a gap in this peer's log and pulls a sync.
   */
  broadcastPayload (fold: EventFold<E, S, O>): Uint8Array {
    const log = fold.log
    const from = log === this.sent.since ? this.sent.seq + 1 : 1
    const run = log === 0 ? undefined : fold.run(this.components.self, log, from)
    this.sent = { since: log, seq: fold.held(this.components.self, log) }
    const diff: Diff<E, O> = { origin: this.definition.origin, acknowledgements: [fold.acknowledgement()], runs: run === undefined ? [] : [run] }
    return encodeDiff(diff, this.definition.codecs, this.sendingContext(fold))
  }

  /** This peer's acknowledgement alone, as a pushed Diff: what the creators it notifies are owed. */
  acknowledgementPayload (fold: EventFold<E, S, O>): Uint8Array {
    const diff: Diff<E, O> = { origin: this.definition.origin, acknowledgements: [fold.acknowledgement()], runs: [] }
    return encodeDiff(diff, this.definition.codecs, this.sendingContext(fold))
  }

  /** The diff for `peer` in full form (sync answers, pushes), or the whole fold when a diff is not enough. */
  payloadFor (fold: EventFold<E, S, O>, peer: Participant, full = false): { kind: 'diff' | 'fold', bytes: Uint8Array } {
    return this.encodePlan(fold, this.plan(fold, peer, full))
  }

  /** What `peer` needs: a diff (computed, not yet encoded), or the whole fold (`undefined`). */
  plan (fold: EventFold<E, S, O>, peer: Participant, full = false): Diff<E, O> | undefined {
    return full ? undefined : this.handingOn(fold, () => fold.diffFor(peer))
  }

  /** Encodes what {@link plan} decided. */
  encodePlan (fold: EventFold<E, S, O>, diff: Diff<E, O> | undefined): { kind: 'diff' | 'fold', bytes: Uint8Array } {
    return diff !== undefined
      ? { kind: 'diff', bytes: encodeDiff(diff, this.definition.codecs) }
      : { kind: 'fold', bytes: this.encodedFold(fold) }
  }

  /** The whole fold, encoded. */
  encodedFold (fold: EventFold<E, S, O>): Uint8Array {
    return encodeEventFold(this.handingOn(fold, () => fold.snapshot()), this.definition.codecs)
  }

  /**
   * Runs `take`, which hands others' logs on and so checks the signatures of heads taken
   * first-hand unchecked; one that fails is a forgery by its own creator, counted and logged.
   */
  private handingOn<T> (fold: EventFold<E, S, O>, take: () => T): T {
    const before = fold.lateForgedHeads
    const taken = take()
    const forged = fold.lateForgedHeads - before
    if (forged > 0) {
      this.components.counters.droppedForged += forged
      this.components.log('group %s: %d head(s) taken from their creators failed their signature check; their events are not handed on', this.id === '' ? '(cluster)' : this.id, forged)
    }
    return taken
  }

  /**
   * Infimum participants go by fingerprint; all of them by one table hash once every other
   * projected participant's acknowledgement shows an infimum at or past the one at which the
   * list became this replica's (participant-names.ts).
   */
  private sendingContext (fold: EventFold<E, S, O>): DiffContext {
    const participants = fold.infimumParticipants()
    const noted = this.fingerprints.noteInfimum(participants, fold.infimumId())
    const self = this.components.self
    const receivers = fold.projectedParticipants().filter(p => p !== self)
    const table = this.fingerprints.tableFor(noted, receivers, (p) => fold.acknowledgedInfimumOf(p))
    return this.fingerprints.sending(this.definition.origin, noted.shared, table)
  }

  /**
   * Decodes a pushed Diff; a participant named by a fingerprint, or a table hash, unknown here
   * throws `unknown-participant`.
   */
  decodePushed (fold: EventFold<E, S, O>, bytes: Uint8Array): Diff<E, O> {
    this.fingerprints.noteInfimum(fold.infimumParticipants(), fold.infimumId())
    const context = this.fingerprints.receiving(this.definition.origin, fold.knownParticipants(), this.projectedLists)
    return decodeDiff(bytes, this.definition.codecs, this.components.limits, context)
  }

  /**
   * How to merge what `from` sent: first-hand once this replica's Join has folded, in push
   * mode (where every participant's own messages reach every other); see `MergeOptions.from`.
   */
  private mergeOptions (fold: EventFold<E, S, O>, from: Participant): MergeOptions {
    return this.settings.firstHand && fold.hasJoined() ? { from } : {}
  }

  /** Merges a diff `from` sent. */
  mergeDiff (fold: EventFold<E, S, O>, from: Participant, diff: Diff<E, O>): MergeOutcome {
    const counters = this.components.counters
    if (diff.origin !== this.definition.origin) { counters.droppedWrongCluster++; return { kind: 'wrong-origin' } }
    const infimumBefore = fold.infimumId()
    const r = fold.mergeDiff(diff, this.mergeOptions(fold, from))
    if (!r.ok) {
      if (r.error instanceof ForgedEventError) { counters.droppedForged++; return { kind: 'forged', reason: r.error.message } }
      counters.mergeRefusals++
      const sparse = r.error.name === 'DiffTooSparseError' && (r.error as { reason?: string }).reason !== 'digest'
      return { kind: 'refused', full: !sparse, reason: r.error.name }
    }
    counters.diffMerges++
    const senderInfimum = diff.acknowledgements[0]?.infimumId
    // The sender still waits for events we had folded before its message came: it missed
    // acknowledgements of ours, which only we may give it (first-hand). Our next tick
    // re-announces them. Not our infimum after this merge: the acknowledgement that completes
    // an event is sent before its sender could fold it, so it would always look behind. A
    // sender that really waits has that event outstanding and re-announces at its own tick,
    // which shows it behind then.
    if (senderInfimum !== undefined && compareEventIds(senderInfimum, infimumBefore) < 0) this.behind.add(from)
    this.afterMerge(r)
    if (senderInfimum !== undefined && fold.isBlockedOnError() && compareEventIds(senderInfimum, fold.infimumId()) > 0) return { kind: 'refused', full: true, reason: 'blocked on an error the sender folded' }
    return { kind: 'merged', acknowledged: r.acknowledged }
  }

  /**
   * Merges a whole fold `from` sent. A first-hand divergence is counted here; deciding what
   * it means (two participants, or the only other one, must show it) is membership's.
   * `firstHand`: merge first-hand whatever the settings (a fold handed over by its own writer).
   */
  mergeFull (fold: EventFold<E, S, O>, from: Participant, snapshot: EventFoldSnapshot<E, S, O>, firstHand = false): MergeOutcome {
    const counters = this.components.counters
    if (snapshot.origin !== this.definition.origin) { counters.droppedWrongCluster++; return { kind: 'wrong-origin' } }
    const r = fold.mergeFull(snapshot, firstHand ? { from } : this.mergeOptions(fold, from))
    if (!r.ok) {
      if (r.error instanceof ForgedEventError) { counters.droppedForged++; return { kind: 'forged', reason: r.error.message } }
      return { kind: 'wrong-origin' }
    }
    counters.fullMerges++
    this.afterMerge(r)
    if (!r.diverged) { this.divergedFrom.delete(from); return { kind: 'merged', acknowledged: r.acknowledged } }
    this.components.log('group %s: the fold of %s settled a history this peer does not share: %s', this.id === '' ? '(cluster)' : this.id, from, divergence(fold, snapshot))
    return { kind: 'diverged', ejected: !snapshot.infimum.participants.includes(this.components.self), threwHere: r.threwHere }
  }
}

/**
 * What a divergence looks like from here, for its log line: both infima (id, events folded,
 * participants), whether the sender's infimum event is held here, and each log's length on
 * both sides where they differ. A real divergence is a bug or a lie; these say which history
 * is short of what.
 */
function divergence<E, S, O> (fold: EventFold<E, S, O>, theirs: EventFoldSnapshot<E, S, O>): string {
  const id = (e: EventId): string => `${e.counter}:${e.participant.slice(-6)}`
  const names = (ps: readonly Participant[]): string => ps.map(p => p.slice(-6)).join(',')
  const inf = theirs.infimum
  const held = fold.outstandingEvents().some(e => compareEventIds(e.id, inf.id) === 0)
  const logs = theirs.logs.filter(l => fold.held(l.participant, l.since) !== l.seq).map(l => `${l.participant.slice(-6)}@${l.since}: theirs ${l.seq}, ours ${fold.held(l.participant, l.since)}`)
  return `theirs ${id(inf.id)} (${inf.digest.count} folded; ${names(inf.participants)}), ours ${id(fold.infimumId())} (${fold.infimumDigest().count} folded; ${names(fold.infimumParticipants())}; projected ${names(fold.projectedParticipants())}); their infimum event ${held ? 'is' : 'is not'} outstanding here; logs ${logs.length === 0 ? 'alike' : logs.join('; ')}`
}
