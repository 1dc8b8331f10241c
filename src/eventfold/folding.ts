/**
 * Folding outstanding events into the infimum (`reduce`), the stand-in rule for departing
 * participants, and what the infimum digest is for: predicting the digest folding would give,
 * relating a remote history to this one, adopting a remote infimum. Pure functions over a
 * replica's {@link FoldCore}.
 *
 * @module
 */
import { admissionsOf, admit, takesPart } from './admissions.js'
import { ERROR_MARK, HOOK_THREW_MARK, extendDigest, relateHistories, type HistoryRelation } from './digest.js'
import type { ApplyOutcome } from './hooks.js'
import { covers, type Ack, type Entry, type FoldCore } from './core.js'
import { ensureProjection, failureOf, foldedFailure } from './projection.js'
import { sizeOf } from './participants.js'
import { compareEventIds, type Admission, type ConsistentOutput, type EventId, type InfimumDigest, type Participant } from './types.js'

/**
 * The participants whose pending UnJoin may stand in for their acknowledgements: those
 * whose UnJoin every remaining participant has acknowledged together with what it held of the
 * departing participant's logs (`Entry.positioned`), on a replica that holds at least as much
 * of them as any of those acknowledgers did (folded there or outstanding; see
 * {@link positionsHeld}).
 *
 * Why not every pending UnJoin at once (as the Haskell library does): an ejected peer's own
 * events may still be travelling to some participants and not to others. A replica that let
 * the UnJoin stand in at once could fold past such an event that it never received, while a
 * replica that received it folds it: they diverge. Once every remaining participant has
 * acknowledged the UnJoin, and this replica holds every event of the departing participant
 * that any of them held when it did (`standInSeq`, from their version vectors), every such
 * event that can fold anywhere is held here. What this cannot cover is an event of the
 * ejected peer that reaches a participant only after that participant acknowledged the
 * UnJoin: the runtime fences ejected peers so that their late messages are dropped (see
 * "Ejection" in docs/ARCHITECTURE.md).
 *
 * An UnJoin with `quorum` (an ejection the failure detector decided) stands in only while
 * {@link quorate}: two sides of a split, each ejecting the other, otherwise each folded on
 * without the other (harsh link cuts on the keyspace, seed 293: four peers became two
 * clusters of two).
 */
export function standInMask<E, S, O> (core: FoldCore<E, S, O>): bigint {
  if (core.unjoins.size === 0) return 0n
  const remaining = core.infMask & ~core.unjoinMask
  let quorum: boolean | undefined
  let mask = 0n
  for (const u of core.unjoins) {
    const d = u.delta as { peer: number, quorum?: true }
    const peer = d.peer
    if (d.quorum === true && !(quorum ??= quorate(core, remaining, departures(core).others))) continue
    const positioned = u.positioned | core.selfBit
    if ((core.acksOf(u) & remaining) === remaining && (positioned & remaining) === remaining && positionsHeld(core, u, peer)) mask |= core.table.bit(peer)
  }
  return mask
}

/**
 * Whether `remaining` (the infimum's participants no pending UnJoin removes) is a strict
 * majority of the infimum's participants, those an UnJoin without `quorum` removes aside: a
 * participant leaving of its own accord, readmitted, or ejected by an operator is gone for
 * everyone, while an ejection by the failure detector is one side's view. Two disjoint sets
 * cannot both be a strict majority of the same participants, so at most one side of a split
 * lets its ejections of the other stand in; the other waits, and folds nothing new until the
 * split heals (docs/ARCHITECTURE.md, "Why a partition cannot produce two clusters").
 */
function quorate<E, S, O> (core: FoldCore<E, S, O>, remaining: bigint, others: bigint): boolean {
  return sizeOf(remaining) * 2 > sizeOf(core.infMask & ~others)
}

/** The participants pending UnJoins remove: by UnJoins with `quorum`, and by the others. */
function departures<E, S, O> (core: FoldCore<E, S, O>): { readonly byQuorum: bigint, readonly others: bigint } {
  let byQuorum = 0n
  let others = 0n
  for (const u of core.unjoins) {
    const d = u.delta as { peer: number, quorum?: true }
    if (d.quorum === true) byQuorum |= core.table.bit(d.peer)
    else others |= core.table.bit(d.peer)
  }
  return { byQuorum, others }
}

/**
 * The infimum participants whose UnJoin with `quorum` cannot stand in here for want of a
 * majority (and that no UnJoin without it removes): what an operator sees of a split that
 * stalls, and may end with `eject()`.
 */
export function awaitingMajority<E, S, O> (core: FoldCore<E, S, O>): bigint {
  const { byQuorum, others } = departures(core)
  const waiting = byQuorum & core.infMask & ~others
  return waiting === 0n || quorate(core, core.infMask & ~core.unjoinMask, others) ? 0n : waiting
}

/** A pending UnJoin of a participant and a pending Join of it after it: see {@link readmissionOf}. */
export interface Readmission<E, O> { readonly unjoin: Entry<E, O>, readonly join: Entry<E, O> }

/**
 * The newest readmission of participant `peer` pending here: an UnJoin of it followed by a
 * Join of it (a peer ejected and admitted again under the same name: the sponsor
 * disassociates it, then adds its Join).
 *
 * Before that UnJoin, the acknowledgements of the new incarnation do not count; only the
 * UnJoin standing in for the old one ({@link standInMask}) does. The name is all an
 * acknowledgement carries, and the new incarnation acknowledges from a fold that starts from
 * its sponsor's, which need not hold the events its old incarnation created before the event
 * it acknowledges: its acknowledgement says nothing about them (the rule of
 * acknowledgements.ts is about the log a fold writes). The UnJoin's stand-in positions do.
 * The old incarnation's acknowledgements still count: they are its own, and a replica behind
 * the others may have no other way to fold what it acknowledged. An acknowledgement tells
 * which by the log its sender writes: a new incarnation's starts after the Join that admitted
 * it (its first event has a greater counter), an old one's before; one that writes none yet
 * is taken for a new one (see acknowledgements.ts, `applyAck`).
 */
export function readmissionOf<E, S, O> (core: FoldCore<E, S, O>, peer: number): Readmission<E, O> | undefined {
  if (core.unjoins.size === 0) return undefined
  let newest: Readmission<E, O> | undefined
  for (const u of core.unjoins) {
    if ((u.delta as { peer: number }).peer !== peer || (newest !== undefined && compareEventIds(u, newest.unjoin) < 0)) continue
    // (Not among the entries while settled events are folded again alone: settled.ts.)
    const at = core.find(u.counter, u.participant)
    if (at < 0) continue
    for (let i = at + 1; i < core.entries.length; i++) {
      const j = core.entries[i]!
      if (j.delta.kind === 'join' && j.delta.peer === peer) { newest = { unjoin: u, join: j }; break }
    }
  }
  return newest
}

/**
 * Whether this replica's own Join has folded and no readmission of it is pending: it merges
 * first-hand and folds every event of its own itself (EventFold.hasJoined says why a
 * readmitted replica does not).
 */
export function joinedHere<E, S, O> (core: FoldCore<E, S, O>): boolean {
  return (core.infMask & core.selfBit) !== 0n && readmissionOf(core, core.selfIndex) === undefined
}

/** Whether this replica holds at least `positions` of `peer`'s logs. */
function holdsEnough<E, S, O> (core: FoldCore<E, S, O>, peer: number, positions: ReadonlyMap<number, number> | undefined): boolean {
  if (positions === undefined) return true
  for (const [since, seq] of positions) if (core.held(peer, since) < seq) return false
  return true
}

/**
 * Whether this replica holds `peer`'s logs as far as UnJoin `u` of it needs before it stands
 * in or folds: as far as its stand-in positions say, or, failing that, as far as every
 * remaining participant held them ({@link heldAsFarAsRemaining}).
 *
 * When no participant of the infimum remains (each one's UnJoin is pending: this replica
 * is a joiner, or readmitted, and every participant it knows of is taken as gone), nobody
 * vouches for what the departing ones held, and this replica has no word of its own in the
 * infimum: it must hold the positions and as much of `peer`'s logs as any acknowledgement
 * here says its sender held ({@link heldAsFarAsAnyone}). Otherwise a joiner cut off from
 * every owner stood in for all of them and folded past a write that two of them had
 * acknowledged to each other; its longer history then replaced theirs when they met, and the
 * write was lost on both (docs/RELIABILITY.md, the keyspace's link cuts with R = 2, seed 34).
 * It waits instead, until a participant's events reach it or the group is given up.
 */
function positionsHeld<E, S, O> (core: FoldCore<E, S, O>, u: Entry<E, O>, peer: number): boolean {
  if ((core.infMask & ~core.unjoinMask) === 0n) return holdsEnough(core, peer, u.standIn) && heldAsFarAsAnyone(core, u, peer)
  return holdsEnough(core, peer, u.standIn) || heldAsFarAsRemaining(core, u, peer)
}

/**
 * Whether this replica holds as much of each of `peer`'s logs begun before UnJoin `u` as the
 * newest acknowledgement here of any participant (departing ones too) says its sender held.
 */
function heldAsFarAsAnyone<E, S, O> (core: FoldCore<E, S, O>, u: Entry<E, O>, peer: number): boolean {
  let enough = true
  const check = (a: Ack<O>): void => {
    a.holds.forEach((i, since, seq) => { if (i === peer && since <= u.counter && core.held(peer, since) < seq) enough = false })
  }
  for (const a of core.latest.values()) check(a)
  for (const a of core.pending.values()) check(a)
  return enough
}

/**
 * Whether, by the newest acknowledgement here of every other remaining participant (one whose
 * UnJoin is not pending), this replica holds as much of departing `peer`'s logs before UnJoin
 * `u` as that participant did when it acknowledged `u` (its `departing` positions), or that
 * participant folded `u` on this replica's history.
 *
 * An UnJoin's positions merge every acknowledger's, departing ones too; the stand-in rule's
 * argument needs only the remaining participants' (an acknowledgement travels with its
 * sender's outstanding events, so what they held reaches here). A participant that departs as
 * well may have held events of `peer` that only it ever held: once its own UnJoin stands in,
 * nobody remaining can send them, and a replica that took its positions waited for them for
 * good while the replicas that never heard from it folded on (the link-cuts stall,
 * docs/RELIABILITY.md: a peer cut from three of five held five events of the first one ejected,
 * was ejected in turn, and two replicas waited behind the first UnJoin for ever). Each
 * remaining participant's acknowledgement must cover `u`, so this waits for exactly what the
 * positions of the remaining participants name, no less.
 */
function heldAsFarAsRemaining<E, S, O> (core: FoldCore<E, S, O>, u: Entry<E, O>, peer: number): boolean {
  const remaining = core.infMask & ~core.unjoinMask & ~core.selfBit
  const key = `${u.counter}:${u.participant}`
  for (let i = 0; i < core.table.names.length; i++) {
    if ((remaining & core.table.bit(i)) === 0n) continue
    const a = core.latest.get(i)
    if (a === undefined || !heldAsFarAs(core, u, key, peer, a)) return false
    const newer = core.pending.get(i)
    if (newer !== undefined && !heldAsFarAs(core, u, key, peer, newer)) return false
  }
  return true
}

/** {@link heldAsFarAsRemaining} for one acknowledgement `a`; `key`: UnJoin `u`'s key in `a.departing`. */
function heldAsFarAs<E, S, O> (core: FoldCore<E, S, O>, u: Entry<E, O>, key: string, peer: number, a: Ack<O>): boolean {
  if (compareEventIds(a.infId, u) >= 0) {
    const relation = relationTo(core, a.infId, a.infDigest)
    return relation === 'same' || relation === 'threw-there'
  }
  return covers(a.holds, u) && holdsEnough(core, peer, a.departing.get(key))
}

/**
 * Whether UnJoin `u` of `peer` may fold here as far as `peer`'s own events go. The UnJoin
 * (without `quorum`) counts as acknowledged on `peer`'s behalf from the start, the one
 * acknowledgement no version vector backs (acknowledgements.ts takes a participant's word
 * only where as much of its log is held as it held). While `peer` is an infimum
 * participant, an event of it ordered before the UnJoin (and after this replica's own Join)
 * that this replica lacks can fold nowhere without this replica's acknowledgement; folding
 * the UnJoin past it would put it below this infimum for good, and the replicas holding it
 * would wait for it for ever while this one settled a history they never will. So the UnJoin waits until this replica holds `peer`'s
 * logs as far as its acknowledgers held them before it ({@link positionsHeld}: the remaining
 * ones, when departing ones held more). When `peer` is not a participant there, its events
 * before the UnJoin are renegades that fold nowhere (and are dropped wherever they are held,
 * so waiting for them could be for ever).
 */
function departureHeld<E, S, O> (core: FoldCore<E, S, O>, u: Entry<E, O>, peer: number): boolean {
  return (core.infMask & core.table.bit(peer)) === 0n || positionsHeld(core, u, peer)
}

/**
 * Makes `e` the infimum; `hookThrew`: it is a Join or UnJoin whose hook threw here. That is
 * the one throw the digest records as this replica's own: a failure whose `apply` threw
 * folds only once every participant has failed it too (or said so, trusting), so it is
 * everyone's outcome and marks the digest like a returned failure.
 */
function foldInto<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>, hookThrew: boolean): void {
  core.infId = { counter: e.counter, participant: e.participant }
  const mark = e.delta.kind === 'error' ? ERROR_MARK : hookThrew ? HOOK_THREW_MARK : 0
  core.infDigest = extendDigest(core.infDigest, e.counter, core.table.hash(e.creator), mark, hookThrew)
}

/**
 * Folds outstanding events into the infimum while the smallest one may fold. Events up to
 * `universal` (a remote infimum id) count as acknowledged by everyone. Appends the outputs
 * of folded events to `outputs`; returns whether the fold changed.
 *
 * Invariants:
 * 1. An event at or below the infimum id is dropped without effect; so is one from a creator
 *    that is not a participant at that point (a renegade), which is set aside until the
 *    infimum passes it (`FoldCore.parkHead`).
 * 2. Otherwise it folds only when every infimum participant (and, for a Join, the joining
 *    peer) has acknowledged it, or when it is covered by `universal`. A participant whose
 *    pending UnJoin may stand in (see {@link standInMask}) counts as having acknowledged.
 *    An UnJoin of a participant also waits until this replica holds that participant's
 *    events ordered before it (see {@link departureHeld}).
 * 3. An event whose `apply` fails becomes an error, acknowledged by this replica; an error
 *    folds (leaving the state unchanged, reporting its output) once every participant
 *    has acknowledged the failure, or when `universal` covers it (the caller has checked
 *    the remote digest, which records that the remote folded it as an error too). An event
 *    that fails here although `universal` covers it was applied successfully by the remote:
 *    folding stops, and only a full merge from a peer that folded it can unblock it.
 * 4. The projection cache stays valid: folding applies the same steps, in the same order,
 *    that the projection already applied.
 */
export function reduce<E, S, O> (core: FoldCore<E, S, O>, universal: EventId | undefined, outputs: Array<ConsistentOutput<O>>): boolean {
  let changed = false
  let standIn = standInMask(core)
  let readmitted = readmissionOf(core, core.selfIndex)
  const table = core.table
  while (core.head < core.entries.length) {
    const e = core.entries[core.head]!
    if (compareEventIds(e, core.infId) <= 0) {
      core.popHead(false)
      changed = true
      continue
    }
    if (!takesPart(core, core.infMask, core.admitted, e)) {
      core.parkHead()
      changed = true
      continue
    }
    const covered = universal !== undefined && compareEventIds(e, universal) <= 0
    let needed = core.infMask
    const d = e.delta
    if (d.kind === 'join') needed |= table.bit(d.peer)
    needed &= ~standIn
    // Readmitted after `e` (a new incarnation of this replica's name), its own acknowledgement
    // of `e` counts only through its UnJoin's stand-in.
    if (!covered && ((core.acksOf(e) & needed) !== needed || (readmitted !== undefined && (needed & core.selfBit) !== 0n && compareEventIds(e, readmitted.unjoin) < 0))) break
    if (!covered && d.kind === 'unjoin' && !departureHeld(core, e, d.peer)) break

    let hookThrew = false
    if (d.kind === 'join' || d.kind === 'unjoin') {
      core.infMask = admit(core, d, e, core.infMask, core.admitted)
      const m = core.hooks.membership(d.kind, table.name(d.peer), core.infState, e)
      core.infState = m.state
      if (m.kind === 'threw') { hookThrew = true; core.reportThrow(e, d.kind, m) }
    } else if (d.kind === 'error') {
      if (!covered && (d.errorAcks & needed) !== needed) break
      const f = foldedFailure(core, e, d, core.infState)
      const id = { counter: e.counter, participant: e.participant }
      outputs.push(f.thrown !== undefined ? { id, thrown: f.thrown } : { id, output: f.output })
    } else {
      const r = applyForFold(core, e, d.event)
      if (r.kind !== 'applied') {
        if (r.kind === 'threw') core.reportThrow(e, 'apply', r)
        // Participants whose acknowledgement already reported this failure saw it first.
        e.delta = { kind: 'error', failure: failureOf(r), errorAcks: core.selfBit | reportedFailure(core, e), source: { event: d.event } }
        core.failuresFound++
        changed = true
        if (covered) break
        continue // re-examine it as an error: with one participant it folds at once
      }
      core.infState = r.state
      outputs.push({ id: { counter: e.counter, participant: e.participant }, output: r.output })
    }
    foldInto(core, e, hookThrew)
    core.popHead(true)
    changed = true
    if (d.kind === 'join' || d.kind === 'unjoin') { standIn = standInMask(core); readmitted = readmissionOf(core, core.selfIndex) }
  }
  if (changed && core.parked.size > 0) core.pruneParked()
  return changed
}

/**
 * Of `candidates`, the participants that hold the fold back (for `EventFold.divergent`): each one an
 * outstanding event waits for, with the newest event it acknowledged before the first such one
 * (the infimum id if none). Whom an event waits for follows {@link reduce}: the participants
 * after the outstanding Joins and UnJoins before it, a Join's joiner too, and never one whose
 * pending UnJoin stands in for it; a renegade (its creator does not take part there, or not as
 * the incarnation that wrote its log) waits for nobody, since `reduce` sets it aside.
 */
export function holdingBack<E, S, O> (core: FoldCore<E, S, O>, candidates: readonly Participant[]): Map<Participant, EventId> {
  const result = new Map<Participant, EventId>()
  if (core.entries.length === core.head) return result
  const standIn = standInMask(core)
  for (const p of candidates) {
    const index = core.table.indexOf(p)!
    const bit = core.table.bit(index)
    let participants = core.infMask
    const admitted = new Map(core.admitted)
    let latest = core.infId
    for (let i = core.head; i < core.entries.length; i++) {
      const e = core.entries[i]!
      if (!takesPart(core, participants, admitted, e)) continue
      const d = e.delta
      if (core.acknowledgedBy(e, index)) {
        latest = { counter: e.counter, participant: e.participant }
      } else if (((d.kind === 'join' ? participants | core.table.bit(d.peer) : participants) & ~standIn & bit) !== 0n) {
        result.set(p, latest)
        break
      }
      if (d.kind === 'join' || d.kind === 'unjoin') participants = admit(core, d, e, participants, admitted)
    }
  }
  return result
}

/** The participants whose newest acknowledgement reports `e` as failed. */
function reportedFailure<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>): bigint {
  let mask = 0n
  for (const a of core.latest.values()) {
    for (const f of a.failures) {
      if (f.id.counter === e.counter && f.id.participant === e.participant) { mask |= core.table.bit(a.p); break }
    }
  }
  return mask
}

/**
 * Applies an event for folding, reusing the projection's result when it is the only
 * outstanding one. A reused throw is reported already; it comes back as a failure.
 */
function applyForFold<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>, event: E): ApplyOutcome<S, O> {
  if (core.projValid && core.tailEntry === e && core.head === core.entries.length - 1) {
    // Folding the only outstanding event: the projection already computed this exact step.
    const f = e.projectedFailure
    if (f === undefined && core.tailApplied !== undefined) return { kind: 'applied', output: core.tailApplied.output, state: core.projState }
    if (f !== undefined && f.thrown === undefined) return { kind: 'failed', output: f.output }
  }
  return core.hooks.apply(event, core.infState, e)
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
 * acknowledgement of the earlier error may arrive, so the fold would stall for good.
 */
function simulateDigest<E, S, O> (core: FoldCore<E, S, O>, at: number): InfimumDigest {
  ensureProjection(core)
  let mask = core.infMask
  const admitted = new Map(core.admitted)
  let digest = core.infDigest
  for (let i = core.head; i <= at; i++) {
    const e = core.entries[i]!
    if (!takesPart(core, mask, admitted, e)) continue
    const d = e.delta
    if (d.kind === 'join' || d.kind === 'unjoin') mask = admit(core, d, e, mask, admitted)
    // A failure that threw here and has not folded is this replica's own until it does (if
    // every participant fails it, it folds as everyone's): a peer that applied the event
    // shows this one the odd one out (see `relateHistories`).
    const failure = d.kind === 'error' ? d.failure : e.projectedFailure
    const mark = failure === undefined ? 0 : d.kind === 'join' || d.kind === 'unjoin' ? HOOK_THREW_MARK : ERROR_MARK
    digest = extendDigest(digest, e.counter, core.table.hash(e.creator), mark, failure?.thrown !== undefined)
  }
  return digest
}

/**
 * How the history settled up to `id`, whose digest is `digest`, relates to this replica's:
 * compared with the infimum at the same id, or with what folding up to `id` would give
 * when `id` is ahead; `missing` when `id` is ahead and not held here, `behind` when it is
 * below the infimum (nothing to compare).
 */
export function relationTo<E, S, O> (core: FoldCore<E, S, O>, id: EventId, digest: InfimumDigest): HistoryRelation | 'missing' | 'behind' {
  const order = compareEventIds(id, core.infId)
  if (order < 0) return 'behind'
  if (order === 0) return relateHistories(core.infDigest, digest)
  const at = core.find(id.counter, id.participant)
  return at < 0 ? 'missing' : relateHistories(simulateDigest(core, at), digest)
}

/** Of two different histories settled at the same id, whether the remote one is the greater. */
export function remoteDigestWins<E, S, O> (core: FoldCore<E, S, O>, digest: InfimumDigest): boolean {
  if (digest.count !== core.infDigest.count) return digest.count > core.infDigest.count
  return digest.hash > core.infDigest.hash
}

/** Takes a remote infimum as this replica's own (a trusting full merge), dropping the events it covers. */
export function adoptInfimum<E, S, O> (core: FoldCore<E, S, O>, id: EventId, digest: InfimumDigest, participants: readonly Participant[], state: S, admissions: readonly Admission[]): void {
  core.infId = { counter: id.counter, participant: core.table.name(core.table.intern(id.participant)) }
  core.infDigest = digest
  core.infMask = core.table.mask(participants)
  core.admitted = admissionsOf(core.table, admissions)
  core.infState = core.hooks.frozen(state)
  core.observe(id.counter)
  while (core.head < core.entries.length && compareEventIds(core.entries[core.head]!, core.infId) <= 0) core.popHead(false)
  core.pruneParked()
  core.projValid = false
}

/**
 * Adds `bits` to the ack (and failure-ack) sets of every outstanding event up to `upTo`: a
 * peer whose infimum is `upTo`, on the same history as this replica's, acknowledged each of
 * those events as it folded it, and each of their failures. (A user event that has not
 * failed here yet gets that acknowledgement from the peer's next message, once it has: an
 * event ordered before it may still arrive and change how it goes here.)
 */
export function acknowledgeUpTo<E, S, O> (core: FoldCore<E, S, O>, upTo: EventId, bits: bigint): boolean {
  let changed = false
  for (let i = core.head; i < core.entries.length; i++) {
    const e = core.entries[i]!
    if (compareEventIds(e, upTo) > 0) break
    if ((core.acksOf(e) & bits) !== bits) { e.acks |= bits; changed = true }
    const d = e.delta
    if (d.kind === 'error' && (d.errorAcks & bits) !== bits) { d.errorAcks |= bits; changed = true }
    // The digest proves this replica holds every event the peer folded up to `upTo`.
    if (d.kind === 'unjoin' && (e.positioned & bits) !== bits) { e.positioned |= bits; changed = true }
  }
  return changed
}

/**
 * This replica acknowledges everything it holds: `acknowledgeAll` with its own bit, visiting
 * only the entries that may lack it (`FoldCore.ownAckDue`). Every merge ends with this, and a
 * burst's merges each visited thousands of outstanding entries that all had it already.
 */
export function acknowledgeOwn<E, S, O> (core: FoldCore<E, S, O>): boolean {
  const due = core.ownAckDue
  if (due.length === 0) return false
  core.ownAckDue = []
  const bits = core.selfBit
  // Most of what is outstanding came in at once (a whole log taken, a first merge): walking
  // the array costs less than asking of each whether it is still outstanding.
  if (2 * due.length >= core.entries.length - core.head) return acknowledgeAll(core, bits)
  let changed = false
  for (const e of due) if (core.isOutstanding(e) && acknowledgeEntry(e, e.acks, bits)) changed = true
  return changed
}

/**
 * Adds `bits` to one entry's ack (and failure-ack) set; returns whether it grew. `acks`: who
 * acknowledged it so far (its own bits suffice for this replica's, which no mark stands for).
 */
function acknowledgeEntry<E, O> (e: Entry<E, O>, acks: bigint, bits: bigint): boolean {
  let changed = false
  if ((acks & bits) !== bits) { e.acks |= bits; changed = true }
  const d = e.delta
  if (d.kind === 'error' && (d.errorAcks & bits) !== bits) { d.errorAcks |= bits; changed = true }
  if (d.kind === 'unjoin') e.positioned |= bits
  return changed
}

/**
 * Adds `bits` to every outstanding ack and failure-ack set; returns whether any grew. For
 * this replica, or for a participant on the caller's word (`EventFold.acknowledge`): as
 * holding what this replica holds, so its positions before an UnJoin are this replica's.
 */
export function acknowledgeAll<E, S, O> (core: FoldCore<E, S, O>, bits: bigint): boolean {
  let changed = false
  const own = bits === core.selfBit
  for (let i = core.head; i < core.entries.length; i++) {
    const e = core.entries[i]!
    if (acknowledgeEntry(e, own ? e.acks : core.acksOf(e), bits)) changed = true
  }
  return changed
}
