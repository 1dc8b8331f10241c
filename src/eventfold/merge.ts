/**
 * Exchanging folds: the diff one replica sends another, and merging a diff or a whole fold.
 * Every merge validates before its first change (a refused merge changes nothing), takes the
 * runs of logs it does not hold yet (logs.ts), takes the acknowledgements it may believe
 * (acknowledgements.ts), folds what it can (folding.ts), and ends with this replica
 * acknowledging everything it now holds.
 *
 * @module
 */
import { internAck, externalAck, notifyList, ownAcknowledgement, takeAck, takeFailure, takeWaiting } from './acknowledgements.js'
import { NO_HASH, type Entry, type FoldCore } from './core.js'
import { DiffTooNewError, DiffTooSparseError, DifferentOriginsError, ForgedEventError, type MergeError } from './errors.js'
import { acknowledgeOwn, adoptInfimum, readmissionOf, reduce, relationTo, remoteDigestWins } from './folding.js'
import { checkRun, runsFrom, takeRun, type CheckedRun } from './logs.js'
import { endSettledRecord } from './settled.js'
import type { MergeResult } from './results.js'
import {
  compareEventIds,
  type Acknowledgement,
  type ConsistentOutput,
  type Diff,
  type EventFoldSnapshot,
  type EventId,
  type MergeOptions,
  type OutstandingEvent,
  type Participant
} from './types.js'

/** Everyone who is, was during an outstanding event, or is about to become a participant. */
export function allParticipantsMask<E, S, O> (core: FoldCore<E, S, O>): bigint {
  let mask = core.infMask
  for (let i = core.head; i < core.entries.length; i++) {
    const d = core.entries[i]!.delta
    if (d.kind === 'join') mask |= core.table.bit(d.peer)
  }
  return mask
}

/** This replica's acknowledgement. */
export function acknowledgementOf<E, S, O> (core: FoldCore<E, S, O>): Acknowledgement<O> {
  return ownAcknowledgement(core, allParticipantsMask(core), currentLogs(core))
}

/**
 * The log each participant writes now, as far as this replica knows: its own, the one each
 * other participant's newest acknowledgement names, or else the latest held.
 */
function currentLogs<E, S, O> (core: FoldCore<E, S, O>): Map<number, number> {
  const current = new Map<number, number>()
  for (const [p, logs] of core.logs) {
    let latest = -1
    for (const since of logs.keys()) if (since > latest) latest = since
    if (latest >= 0) current.set(p, latest)
  }
  for (const a of core.latest.values()) if (a.log > 0) current.set(a.p, a.log)
  if (core.ownLog !== undefined) current.set(core.selfIndex, core.ownLog.since)
  return current
}

/**
 * The diff to send `peer`, or `undefined` when `peer` needs the full fold instead: its Join
 * has not yet folded into the infimum, or an UnJoin for it is pending. It carries this
 * replica's acknowledgement, with `relay` those it holds of every other participant, and the
 * events of every log it holds outstanding that `peer`'s latest known acknowledgement does not
 * show it holding.
 */
export function diffFor<E, S, O> (core: FoldCore<E, S, O>, peer: Participant, relay: boolean): Diff<E, O> | undefined {
  const index = core.table.indexOf(peer)
  if (index === undefined) return undefined
  const bit = core.table.bit(index)
  if ((core.infMask & bit) === 0n || (core.unjoinMask & bit) !== 0n) return undefined
  const known = core.latest.get(index)?.holds
  const runs = runsFrom(core, (c, since) => (known?.get(c, since) ?? 0) + 1)
  const acknowledgements = [acknowledgementOf(core)]
  if (relay) {
    const others = [...core.latest.values()].map(a => externalAck(core, a))
    others.sort((a, b) => a.participant < b.participant ? -1 : a.participant > b.participant ? 1 : 0)
    acknowledgements.push(...others)
  }
  return { origin: core.origin, acknowledgements, runs }
}

/** A refused merge: nothing changed. */
function refused<O> (error: MergeError): MergeResult<O> {
  return { ok: false, error }
}

/**
 * Checks every run of a diff. A forged run refuses the diff; so does a gap in the log its
 * sender writes now (a batch of it was lost: its sender has the events and a sync repairs
 * it). A gap in another log is skipped: whoever holds those events can send them (the
 * replica's acknowledgements show who), and if nobody does they never mattered.
 */
function checkRuns<E, S, O> (core: FoldCore<E, S, O>, diff: Diff<E, O>, from: Participant | undefined, passed: EventId): Array<CheckedRun<E, O>> | ForgedEventError | DiffTooSparseError {
  const checked: Array<CheckedRun<E, O>> = []
  const sender = diff.acknowledgements[0]
  for (const run of diff.runs) {
    const r = checkRun(core, run, from, passed)
    if (r === undefined) continue
    if ('kind' in r) {
      if (r.kind === 'forged') return new ForgedEventError(r.id)
      if (sender !== undefined && sender.participant === run.creator && sender.log === run.since) return new DiffTooSparseError('missing-body', r.id)
      continue
    }
    checked.push(r)
  }
  return checked
}

/**
 * Merges a diff; see `EventFold.mergeDiff`. Refused, with nothing changed, for another origin,
 * a run that skips events not held here or does not chain to its creator's signed head, a
 * sender's infimum that is an event not held here, or one whose digest folding up to it would
 * not reproduce (unless it differs only by the sender's own hooks that threw).
 */
export function mergeDiff<E, S, O> (core: FoldCore<E, S, O>, diff: Diff<E, O>, options: MergeOptions): MergeResult<O> {
  if (diff.origin !== core.origin) return refused(new DifferentOriginsError(core.origin, diff.origin))
  const from = options.from
  const trusting = from === undefined
  const sender = diff.acknowledgements[0]
  const vouching = sender !== undefined && (trusting || sender.participant === from)
  let passed = core.infId
  if (vouching) {
    const remoteInf = sender.infimumId
    const relation = relationTo(core, remoteInf, sender.infimumDigest)
    if (relation === 'missing') return refused(new DiffTooNewError(remoteInf, core.infId))
    // The sender's infimum is as good as a matching one when it differs only by the sender's
    // own hooks that threw: it still folded exactly these events, so everyone acknowledged them.
    if (relation === 'different' || relation === 'threw-here') return refused(new DiffTooSparseError('digest', remoteInf))
    if (compareEventIds(remoteInf, passed) > 0) passed = remoteInf
  }
  const checked = checkRuns(core, diff, from, passed)
  if (!Array.isArray(checked)) return refused(checked)
  let universal: EventId | undefined
  if (vouching) {
    core.observe(passed.counter)
    // Trusting, a remote infimum ahead on this history proves everyone acknowledged up to it;
    // first-hand, it is the sender's acknowledgement only (its vector says as much).
    if (trusting && passed !== core.infId) universal = passed
  }
  const { first, taken } = takeRuns(core, checked)
  let changed = checked.length > 0
  for (const a of diff.acknowledgements) {
    if (!trusting && a.participant !== from) continue
    if (takeAck(core, internAck(core, a), trusting)) changed = true
  }
  if (takeWaiting(core, trusting)) changed = true
  const outputs: Array<ConsistentOutput<O>> = []
  if (reduce(core, universal, outputs)) changed = true
  return finishMerge(core, changed, outputs, first, taken)
}

/**
 * Merges a whole fold; see `EventFold.mergeFull`. Takes the greater infimum (trusting only),
 * the runs of logs it continues, and the acknowledgements it may believe.
 */
export function mergeFull<E, S, O> (core: FoldCore<E, S, O>, other: EventFoldSnapshot<E, S, O>, options: MergeOptions): MergeResult<O> {
  if (other.origin !== core.origin) return refused(new DifferentOriginsError(core.origin, other.origin))
  const from = options.from
  const trusting = from === undefined
  const inf = other.infimum
  const relation = relationTo(core, inf.id, inf.digest)
  const ahead = compareEventIds(inf.id, core.infId) > 0
  const adopt = trusting && (relation === 'missing' || relation === 'threw-here' ||
    (ahead ? relation === 'same' || relation === 'different' : relation === 'different' && remoteDigestWins(core, inf.digest)))
  // Validate before the first change. A log this replica cannot continue (first-hand, the
  // sender folded events of it that are not held here) is skipped rather than refused: the
  // rest of the fold is still news.
  // The infimum a gap in a log may be passed up to (logs.ts, `checkRun`): the adopted one, or
  // the sender's ahead on this replica's history.
  const passed = adopt || (ahead && (relation === 'same' || relation === 'threw-there')) ? inf.id : core.infId
  const byLog = new Map<string, Array<OutstandingEvent<E, O>>>()
  for (const e of other.events) {
    const key = `${e.since}:${e.id.participant}`
    let list = byLog.get(key)
    if (list === undefined) { list = []; byLog.set(key, list) }
    list.push(e)
  }
  const checked: Array<CheckedRun<E, O>> = []
  const heads: Array<{ creator: number, since: number, seq: number, hash: Uint8Array, signature: Uint8Array | undefined, counter: number, admittedBy: EventId | undefined }> = []
  for (const log of other.logs) {
    const events = byLog.get(`${log.since}:${log.participant}`) ?? []
    const creator = core.table.intern(log.participant)
    if (events.length === 0) {
      // All its events folded there: adopting that infimum, the head is this replica's too.
      if (adopt && log.seq > core.held(creator, log.since)) heads.push({ creator, since: log.since, seq: log.seq, hash: log.hash, signature: log.signature, counter: log.base?.counter ?? 0, admittedBy: log.admittedBy })
      continue
    }
    const first = log.seq - events.length + 1
    const run = { creator: log.participant, since: log.since, first, events: events.map(e => ({ counter: e.id.counter, delta: logged(e) })), signature: log.signature, admittedBy: log.admittedBy, base: first > 1 ? log.base : undefined }
    const r = checkRun(core, run, from, passed, adopt)
    if (r === undefined) continue
    if ('kind' in r) {
      if (r.kind === 'forged') return refused(new ForgedEventError(r.id))
      continue
    }
    checked.push(r)
  }
  let changed = false
  let universal: EventId | undefined
  if (adopt) {
    // What moved the infimum did not fold here: a store must save it whole.
    endSettledRecord(core)
    adoptInfimum(core, inf.id, inf.digest, inf.participants, inf.state, inf.admissions ?? [])
    changed = true
  } else if (trusting && ahead && relation === 'threw-there') {
    // Ahead, on this replica's history but for the sender's hooks that threw: everyone acknowledged.
    universal = inf.id
  }
  // First-hand, a settled history this replica does not share (ahead or at the same id) is
  // divergence; trusting, the greater infimum was taken instead. A diverged sender's
  // acknowledgements are not taken (its bodies are): they were given in that other history,
  // and would let this replica fold on past the difference, as a refused diff would not.
  const diverged = !trusting && (relation === 'missing' || relation === 'different' || relation === 'threw-here')
  const believed = trusting ? undefined : diverged ? 0n : core.table.bit(core.table.intern(from))
  for (const h of heads) {
    const log = core.log(h.creator, h.since)
    // Events of the log still outstanding here (above the adopted infimum) were set aside
    // there, not folded: the sender's head is past them only in its own history, and a log's
    // outstanding events must stay its last ones. They fold or are set aside here in turn.
    if (h.seq <= log.seq || log.outstanding.size > 0) continue
    log.seq = log.baseSeq = h.seq
    log.hash = log.baseHash = h.hash
    log.baseCounter = h.counter
    log.signature = h.signature
    log.verified = false
    log.admittedBy ??= h.admittedBy
    changed = true
  }
  const { first, taken } = takeRuns(core, checked)
  if (checked.length > 0) changed = true
  // A participant's acknowledgements in the fold are believed only once this replica holds as
  // much of that participant's logs as the fold does (the rule of acknowledgements.ts: it then
  // holds every event of that participant the fold's sender held when it believed them).
  const shortOf = new Set<Participant>()
  for (const l of other.logs) if (core.held(core.table.intern(l.participant), l.since) < l.seq) shortOf.add(l.participant)
  let believable = believed
  if (believable === undefined && shortOf.size > 0) {
    believable = 0n
    for (let i = 0; i < core.table.names.length; i++) if (!shortOf.has(core.table.name(i))) believable |= core.table.bit(i)
  }
  const remote = new Map<string, OutstandingEvent<E, O>>()
  for (const e of other.events) remote.set(`${e.id.counter}:${e.id.participant}`, e)
  // A whole fold does not say which incarnation of a readmitted participant acknowledged what:
  // before the readmission its acknowledgements are left to the UnJoin's stand-in (folding.ts,
  // `readmissionOf`).
  // The fold's own readmissions count too: one whose runs were not taken here is still one.
  const readmissions: Array<{ readonly bit: bigint, readonly unjoin: EventId }> = []
  for (const u of core.unjoins) {
    const peer = (u.delta as { peer: number }).peer
    const r = readmissionOf(core, peer)
    if (r !== undefined && r.unjoin === u) readmissions.push({ bit: core.table.bit(peer), unjoin: r.unjoin })
  }
  const readmittedThere = readmissionsIn(other.events)
  for (const [peer, unjoin] of readmittedThere) readmissions.push({ bit: core.table.bit(core.table.intern(peer)), unjoin })
  // What the fold says about events held here: acknowledgements, failures, stand-in positions.
  for (let i = core.head; i < core.entries.length; i++) {
    const local = core.entries[i]!
    const e = remote.get(`${local.counter}:${local.participant}`)
    if (e === undefined) continue
    let allowed = believable
    for (const { bit, unjoin } of readmissions) if (compareEventIds(local, unjoin) < 0) allowed = (allowed ?? ~0n) & ~bit
    if (mergeEntry(core, local, e, allowed, trusting)) changed = true
  }
  if (!trusting && !diverged && !shortOf.has(from)) {
    const sender = senderAcknowledgement(from, other, readmittedThere.has(from))
    if (takeAck(core, internAck(core, sender), false)) changed = true
  }
  if (takeWaiting(core, trusting)) changed = true
  const outputs: Array<ConsistentOutput<O>> = []
  if (reduce(core, universal, outputs)) changed = true
  return finishMerge(core, changed, outputs, first, taken, diverged, diverged && relation === 'threw-here')
}

/** Takes checked runs; returns the smallest event they added and the mask of their creators. */
function takeRuns<E, S, O> (core: FoldCore<E, S, O>, checked: ReadonlyArray<CheckedRun<E, O>>): { first: EventId | undefined, taken: bigint } {
  let first: EventId | undefined
  let taken = 0n
  for (const run of checked) {
    takeRun(core, run)
    first = earlier(first, { counter: run.events[0]!.counter, participant: core.table.name(run.creator) })
    taken |= core.table.bit(run.creator)
  }
  return { first, taken }
}

function earlier (a: EventId | undefined, b: EventId): EventId {
  return a === undefined || compareEventIds(b, a) < 0 ? b : a
}

/** The delta a log holds for a snapshot's event (an error keeps the event that failed). */
function logged<E, O> (e: OutstandingEvent<E, O>): Exclude<OutstandingEvent<E, O>['delta'], { kind: 'error' }> {
  return e.delta.kind === 'error' ? { kind: 'event', event: e.delta.event } : e.delta
}

/**
 * The readmissions a whole fold holds pending (an UnJoin of a participant, then a Join of it;
 * see folding.ts, `readmissionOf`): each participant's newest such UnJoin.
 */
function readmissionsIn<E, O> (events: ReadonlyArray<OutstandingEvent<E, O>>): Map<Participant, EventId> {
  const unjoins = new Map<Participant, EventId>()
  const out = new Map<Participant, EventId>()
  for (const e of events) {
    const d = e.delta
    if (d.kind === 'unjoin') unjoins.set(d.participant, e.id)
    else if (d.kind === 'join') {
      const u = unjoins.get(d.participant)
      if (u !== undefined) out.set(d.participant, u)
    }
  }
  return out
}

/**
 * What a whole fold says of its sender: it holds its logs, folded its infimum, saw its errors.
 * `readmitted`: the fold holds a readmission of it.
 */
function senderAcknowledgement<E, S, O> (from: Participant, other: EventFoldSnapshot<E, S, O>, readmitted: boolean): Acknowledgement<O> {
  const failures: Acknowledgement<O>['failures'][number][] = []
  for (const e of other.events) {
    const d = e.delta
    if (d.kind !== 'error' || !d.errorAcks.includes(from)) continue
    failures.push(d.thrown !== undefined ? { id: e.id, thrown: d.thrown } : { id: e.id, output: d.output })
  }
  return {
    participant: from,
    infimumId: other.infimum.id,
    infimumDigest: other.infimum.digest,
    // As the sender's own acknowledgement would say (EventFold.hasJoined): not while a
    // readmission of it is pending there, so that a replica that does not know of it waits.
    joined: other.infimum.participants.includes(from) && !readmitted,
    // Which log it writes now a fold does not say, and need not: the fold holds every event of
    // it that can still fold, which this merge has just taken (no gap can stand before them:
    // they continue what this replica acknowledged to it).
    log: 0,
    unsettled: 0,
    holds: other.logs.map(l => ({ participant: l.participant, since: l.since, seq: l.seq })),
    failures,
    // What the fold's stand-in positions say is everyone's; its sender's own share is in them.
    departing: other.events.flatMap(e => e.delta.kind === 'unjoin' ? (e.standIn ?? []).map(p => ({ unjoin: e.id, since: p.since, seq: p.seq })) : [])
  }
}

/**
 * Merges what a whole fold holds about one event held here: its acknowledgements (only the
 * `believed` ones; all of them when undefined), a failure (trusting, a returned one converts
 * the event, see `takeFailure`), and how much of a departing participant's log its
 * acknowledgers held (trusting).
 */
function mergeEntry<E, S, O> (core: FoldCore<E, S, O>, local: Entry<E, O>, e: OutstandingEvent<E, O>, believed: bigint | undefined, trusting: boolean): boolean {
  let changed = false
  let acks = core.table.mask(e.acks)
  if (believed !== undefined) acks &= believed
  if ((core.acksOf(local) | acks) !== core.acksOf(local)) { local.acks |= acks; changed = true }
  // A whole fold lists an UnJoin's acknowledgers with the positions they held (`outstandingEvents`).
  if (local.delta.kind === 'unjoin' && (local.positioned | acks) !== local.positioned) { local.positioned |= acks; changed = true }
  if (trusting || acks !== 0n) {
    for (const p of e.standIn ?? []) {
      local.standIn ??= new Map()
      if ((local.standIn.get(p.since) ?? 0) < p.seq) { local.standIn.set(p.since, p.seq); changed = true }
    }
  }
  const d = e.delta
  if (d.kind === 'error') {
    let errorAcks = core.table.mask(d.errorAcks)
    if (believed !== undefined) errorAcks &= believed
    if ((errorAcks !== 0n || trusting) && takeFailure(core, local, d, errorAcks, trusting)) changed = true
  }
  return changed
}

/**
 * The end of every merge: this replica acknowledges everything it holds, then folds what it
 * can, and works out who should hear of it now (`first`: the smallest event the merge added).
 */
export function finishMerge<E, S, O> (
  core: FoldCore<E, S, O>,
  changed: boolean,
  outputs: Array<ConsistentOutput<O>>,
  first: EventId | undefined,
  taken: bigint,
  diverged = false,
  threwHere = false
): MergeResult<O> {
  const newFailure = failureUnacknowledged(core)
  const acknowledged = acknowledgeOwn(core)
  // Who waits for this acknowledgement is read before folding: the events this merge added
  // may fold here at once (with two participants they do), and their creators still wait.
  let from = core.entries.length
  if (first !== undefined) {
    const at = core.find(first.counter, first.participant)
    from = at >= 0 ? at : -at - 1
  }
  const waiting = creatorsFrom(core, from) | taken
  const membership = first !== undefined && membershipFrom(core, first)
  const failuresBefore = core.failuresFound
  if (reduce(core, undefined, outputs)) changed = true
  const failed = newFailure || core.failuresFound > failuresBefore
  // A failure, and a Join or UnJoin, is everyone's business at once: every replica must
  // acknowledge a failure before it folds, and a membership change (an ejection above all)
  // should not wait for the next anti-entropy round to settle everywhere. Both are rare.
  const everyone = failed || (acknowledged && membership)
  const notify = acknowledged || failed ? notifyList(core, waiting, everyone, () => allParticipantsMask(core)) : []
  return { ok: true, outputs, propagate: changed || acknowledged || failed, acknowledged: acknowledged || failed, notify, diverged, threwHere, thrown: core.takeThrown() }
}

/** The creators of the outstanding events from index `from` on. */
function creatorsFrom<E, S, O> (core: FoldCore<E, S, O>, from: number): bigint {
  // Marked by index first: a bigint operation per entry allocates, and a burst's merges
  // visit thousands of entries.
  const seen = new Uint8Array(core.table.names.length)
  for (let i = Math.max(from, core.head); i < core.entries.length; i++) seen[core.entries[i]!.creator] = 1
  let mask = 0n
  for (let c = 0; c < seen.length; c++) if (seen[c] === 1) mask |= core.table.bit(c)
  return mask
}

/** Whether a Join or UnJoin is among the outstanding events from `first` on. */
function membershipFrom<E, S, O> (core: FoldCore<E, S, O>, first: EventId): boolean {
  for (const e of core.memberships) if (compareEventIds(e, first) >= 0) return true
  return false
}

/**
 * Whether an outstanding failure lacks this replica's acknowledgement. Only entries of
 * `ownAckDue` can: every other outstanding entry got it, failure included, when the last
 * merge ended, and this replica's own folding records a failure it finds with it.
 */
function failureUnacknowledged<E, S, O> (core: FoldCore<E, S, O>): boolean {
  for (const e of core.ownAckDue) {
    const d = e.delta
    if (d.kind === 'error' && (d.errorAcks & core.selfBit) === 0n && core.isOutstanding(e)) return true
  }
  return false
}
