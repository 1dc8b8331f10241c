/**
 * Acknowledgements as version vectors. A participant's acknowledgement says how much of each
 * log it holds (holding an event is acknowledging it), what it folded and which failures it
 * saw; this module turns one into the per-event acknowledgement masks that folding reads, and
 * builds this replica's own.
 *
 * **The rule that makes routing safe** (why an acknowledgement need not travel with the
 * events it covers): an acknowledgement of participant P is taken only by a replica that holds
 * at least as much of the log P writes as P did when it made it. Every event P created before it
 * acknowledged an event f is in that log, at a smaller position (or in an earlier log of P's,
 * whose events P no longer holds unfolded), and every event P creates afterwards has a larger id
 * than f (its Lamport counter exceeds f's). So a replica that folds f on P's word holds every
 * event of P that is ordered before f and may still fold: it can never fold past one of P's
 * events that is still on its way, and then drop it as below its infimum (the loss that
 * sending acknowledgements only to creators showed before logs existed, docs/ARCHITECTURE.md).
 * An acknowledgement that cannot be taken yet waits (one per participant, the newest) until
 * the replica holds enough of its sender's log.
 *
 * @module
 */
import type { Ack, Entry, FoldCore } from './core.js'
import { covers, failureOfReport } from './core.js'
import { LogVector } from './log-vector.js'
import { acknowledgeUpTo, joinedHere, readmissionOf, relationTo } from './folding.js'
import { compareEventIds, type Acknowledgement, type EventId, type FailureReport, type Participant, type VersionEntry } from './types.js'

function sortHolds (holds: VersionEntry[]): VersionEntry[] {
  return holds.sort((x, y) => x.participant < y.participant ? -1 : x.participant > y.participant ? 1 : x.since - y.since)
}

/** An acknowledgement with its participants interned. */
export function internAck<E, S, O> (core: FoldCore<E, S, O>, a: Acknowledgement<O>): Ack<O> {
  const holds = new LogVector()
  let total = 0
  for (const h of a.holds) {
    holds.set(core.table.intern(h.participant), h.since, h.seq)
    total += h.seq
  }
  const departing = new Map<string, Map<number, number>>()
  for (const d of a.departing) {
    const key = `${d.unjoin.counter}:${d.unjoin.participant}`
    let logs = departing.get(key)
    if (logs === undefined) { logs = new Map(); departing.set(key, logs) }
    logs.set(d.since, d.seq)
  }
  return { p: core.table.intern(a.participant), infId: a.infimumId, infDigest: a.infimumDigest, joined: a.joined, log: a.log, unsettled: a.unsettled, holds, failures: a.failures, departing, total }
}

/** The plain form of an interned acknowledgement (to relay it). */
export function externalAck<E, S, O> (core: FoldCore<E, S, O>, a: Ack<O>): Acknowledgement<O> {
  const holds: VersionEntry[] = []
  a.holds.forEach((p, since, seq) => holds.push({ participant: core.table.name(p), since, seq }))
  const departing: Array<{ unjoin: EventId, since: number, seq: number }> = []
  for (const [key, logs] of a.departing) {
    const colon = key.indexOf(':')
    const unjoin = { counter: Number(key.slice(0, colon)), participant: key.slice(colon + 1) }
    for (const [since, seq] of logs) departing.push({ unjoin, since, seq })
  }
  departing.sort((x, y) => compareEventIds(x.unjoin, y.unjoin) || x.since - y.since)
  return { participant: core.table.name(a.p), infimumId: a.infId, infimumDigest: a.infDigest, joined: a.joined, log: a.log, unsettled: a.unsettled, holds: sortHolds(holds), failures: a.failures, departing }
}

/**
 * This replica's own acknowledgement: the logs that still matter here (those with outstanding
 * events, and the one each participant that is, was during an outstanding event, or is about
 * to become one writes now, as far as this replica knows), its infimum, the failures it
 * acknowledges, and what it holds of departing participants' logs before their UnJoins.
 */
export function ownAcknowledgement<E, S, O> (core: FoldCore<E, S, O>, allParticipants: bigint, current: ReadonlyMap<number, number>): Acknowledgement<O> {
  const relevant = allParticipants | core.selfBit
  const listed = new Map<number, Set<number>>()
  const list = (p: number, since: number): void => {
    let logs = listed.get(p)
    if (logs === undefined) { logs = new Set(); listed.set(p, logs) }
    logs.add(since)
  }
  const failures: Array<FailureReport<O>> = []
  const departing: Array<{ unjoin: EventId, since: number, seq: number }> = []
  const log = core.ownLog?.since ?? 0
  let unsettled = 0
  for (let i = core.head; i < core.entries.length; i++) {
    const e = core.entries[i]!
    if (e.creator === core.selfIndex && e.since === log && e.seq > unsettled) unsettled = e.seq
    list(e.creator, e.since)
    const d = e.delta
    if (d.kind === 'error') {
      const id = { counter: e.counter, participant: e.participant }
      failures.push(d.failure.thrown !== undefined ? { id, thrown: d.failure.thrown } : { id, output: d.failure.output })
    } else if (d.kind === 'unjoin') {
      // Ascending by log, as the wire wants them: `heldBefore` lists folded logs first.
      const held = [...heldBefore(core, d.peer, i)].sort(([x], [y]) => x - y)
      for (const [since, seq] of held) departing.push({ unjoin: { counter: e.counter, participant: e.participant }, since, seq })
    }
  }
  for (const [p, since] of current) if ((relevant & core.table.bit(p)) !== 0n) list(p, since)
  const holds: VersionEntry[] = []
  for (const [p, logs] of listed) {
    for (const since of logs) {
      const seq = core.held(p, since)
      if (seq > 0) holds.push({ participant: core.table.name(p), since, seq })
    }
  }
  const joined = joinedHere(core)
  return { participant: core.self, infimumId: core.infId, infimumDigest: core.infDigest, joined, log, unsettled, holds: sortHolds(holds), failures, departing }
}

/**
 * For each of `peer`'s logs, the position of its last event ordered before the entry at
 * `index` that folded here or is outstanding: how much of a departing participant's logs
 * matters for its UnJoin there (events after the UnJoin are renegades). The folded ones count
 * too: a replica that lets the UnJoin stand in for `peer` below its own infimum must hold
 * them, and one may not, although it is a remaining participant, when it is a rejoined
 * incarnation whose old self was stood in for when they folded here.
 */
export function heldBefore<E, S, O> (core: FoldCore<E, S, O>, peer: number, index: number): Map<number, number> {
  const out = new Map<number, number>()
  for (const [since, log] of core.logs.get(peer) ?? []) if (log.foldedSeq > 0) out.set(since, log.foldedSeq)
  for (let i = core.head; i < index; i++) {
    const e = core.entries[i]!
    if (e.creator === peer) out.set(e.since, e.seq)
  }
  return out
}

/** An UnJoin's stand-in positions with this replica's own holdings before it (at `index`) added. */
export function ownPositions<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>, peer: number, index: number): Map<number, number> {
  const out = new Map(e.standIn)
  for (const [since, seq] of heldBefore(core, peer, index)) if ((out.get(since) ?? 0) < seq) out.set(since, seq)
  return out
}

/** How much of its own log a replica must hold to take an acknowledgement (see the module comment). */
function ownPart<O> (a: Ack<O>): number {
  return a.log === 0 ? 0 : a.unsettled
}

/**
 * Whether acknowledgement `a` must wait before this replica takes it: it does not hold enough
 * of its sender's log yet (the module comment), or the sender may be an incarnation this
 * replica does not know of. An acknowledgement carries a name, not an incarnation: a peer
 * ejected while alive and admitted again acknowledges from a fold that starts from its
 * sponsor's, which need not hold the events its old incarnation created. A replica that holds
 * its readmission (folding.ts, `readmissionOf`) counts the new incarnation only after the
 * UnJoin; one that does not yet would take its word for events before it, among them events
 * after one of the old incarnation's that the new one never held, and fold past that one (the
 * link-cuts fork, docs/RELIABILITY.md). So while the sender says its own Join has not folded
 * there (`joined` false: a fresh joiner, or a readmission pending there) and it is a
 * participant here with no readmission known, its acknowledgement waits: its readmission
 * arrives first (every participant acknowledges an UnJoin before it stands in, and the new
 * incarnation's Join folds nowhere before its UnJoin), or its `joined` comes true. A fresh
 * joiner whose Join folded here first is only kept waiting until it folded it too. Its
 * infimum is still taken: the digest checks that part.
 */
function mustWait<E, S, O> (core: FoldCore<E, S, O>, a: Ack<O>): boolean {
  if (ownPart(a) > core.held(a.p, a.log)) return true
  return !a.joined && (core.infMask & core.table.bit(a.p)) !== 0n && readmissionOf(core, a.p) === undefined
}

/**
 * Takes an acknowledgement of another participant, or keeps it for later when this replica
 * does not hold enough of its sender's log (see the module comment). `trusting`: a failure it
 * reports turns a held event into one (a failure anywhere is a failure everywhere, the only
 * outcome replicas can agree on without knowing who else succeeded); first-hand, it only
 * counts as the sender's acknowledgement of a failure this replica found itself. Returns
 * whether the fold changed.
 */
export function takeAck<E, S, O> (core: FoldCore<E, S, O>, a: Ack<O>, trusting: boolean): boolean {
  if (a.p === core.selfIndex) return false
  if (mustWait(core, a)) {
    const waiting = core.pending.get(a.p)
    if (waiting === undefined || supersedes(a, waiting)) core.pending.set(a.p, a)
    // Its infimum says what it folded, and is checked against this replica's own history:
    // that part holds whatever its sender's log.
    return takeInfimum(core, a)
  }
  const known = core.latest.get(a.p)
  if (known === undefined || supersedes(a, known)) core.latest.set(a.p, a)
  // A waiting one it supersedes is never taken: it would only hold back what it names (an
  // older one waited for a renegade event of a departing peer, its stand-in positions naming
  // it, long after the sender's newer acknowledgements had folded past it: keyspace link
  // cuts, seed 103, docs/RELIABILITY.md).
  const waiting = core.pending.get(a.p)
  if (waiting !== undefined && supersedes(a, waiting)) core.pending.delete(a.p)
  return applyAck(core, a, trusting)
}

/**
 * Whether acknowledgement `a` is at least as new as `b` of the same sender: by what it holds,
 * or by its infimum. Once its sender folds a log, the log no longer matters there and leaves
 * its vector, so a newer acknowledgement may hold less in total (keeping the older one starved
 * the stand-in rule of the sender's infimum past an UnJoin).
 */
function supersedes<O> (a: Ack<O>, b: Ack<O>): boolean {
  return b.total <= a.total || compareEventIds(a.infId, b.infId) > 0
}

/** Takes the waiting acknowledgements that the logs this replica now holds make takeable. */
export function takeWaiting<E, S, O> (core: FoldCore<E, S, O>, trusting: boolean): boolean {
  let changed = false
  for (const [p, a] of [...core.pending]) {
    if (mustWait(core, a)) continue
    core.pending.delete(p)
    if (takeAck(core, a, trusting)) changed = true
  }
  return changed
}

/** Raises `standIn` to the positions `departing` lists for UnJoin `e`; returns the map (new if it was undefined) and whether it grew. */
function raiseStandIn<E, O> (e: Entry<E, O>, departing: ReadonlyMap<string, ReadonlyMap<number, number>>): boolean {
  const positions = departing.get(`${e.counter}:${e.participant}`)
  if (positions === undefined) return false
  let changed = false
  for (const [since, seq] of positions) {
    e.standIn ??= new Map()
    if ((e.standIn.get(since) ?? 0) < seq) { e.standIn.set(since, seq); changed = true }
  }
  return changed
}

/**
 * Takes what acknowledgement `a` (of participant `bit`) says its sender held of the leaver's
 * logs before UnJoin `e`, which its vector covers. Only while `e` was outstanding there: its
 * `departing` then lists them (nothing when it held none); one whose infimum passed `e` says
 * it through its infimum digest instead (`takeInfimum`).
 */
function takePositions<E, O> (e: Entry<E, O>, a: Ack<O>, bit: bigint): boolean {
  if (compareEventIds(a.infId, e) >= 0) return false
  let changed = raiseStandIn(e, a.departing)
  if ((e.positioned & bit) === 0n) { e.positioned |= bit; changed = true }
  return changed
}

/**
 * Before which event an acknowledgement of participant `p` writing log `log` does not count:
 * the UnJoin of `p`'s pending readmission when the acknowledgement comes from the new
 * incarnation (see folding.ts, `readmissionOf`).
 */
function newIncarnationBefore<E, S, O> (core: FoldCore<E, S, O>, p: number, log: number): Entry<E, O> | undefined {
  const r = readmissionOf(core, p)
  return r !== undefined && (log === 0 || log > r.join.counter) ? r.unjoin : undefined
}

/**
 * Takes acknowledgement `a` (see `takeAck`): its marks on the logs its vector covers (the
 * entries there count it as acknowledging them, core.ts `ackBefore`), stand-in positions on
 * the UnJoins, failures, its infimum. No entry is visited for the vector: in a burst
 * thousands of events are outstanding and each message brings one acknowledgement.
 */
function applyAck<E, S, O> (core: FoldCore<E, S, O>, a: Ack<O>, trusting: boolean): boolean {
  const bit = core.table.bit(a.p)
  const before = newIncarnationBefore(core, a.p, a.log)
  let changed = false
  core.ackFrom(a.p, before)
  a.holds.forEach((creator, since, seq) => {
    const log = core.logs.get(creator)?.get(since)
    if (log === undefined) return
    // Another's log may be held further there than here (its events on their way here are
    // covered as they come, as `initialAcks` would); this replica's own log is not, so a
    // claim past its head says nothing about its next events.
    if (core.markAck(a.p, log, creator === core.selfIndex ? Math.min(seq, log.seq) : seq)) changed = true
  })
  // Stand-in positions can grow with any acknowledgement, also for UnJoins covered before.
  for (const e of core.unjoins) {
    if ((before !== undefined && compareEventIds(e, before) < 0) || !covers(a.holds, e)) continue
    if (takePositions(e, a, bit)) changed = true
  }
  for (const f of a.failures) {
    const at = core.find(f.id.counter, f.id.participant)
    if (at < 0 || (before !== undefined && compareEventIds(f.id, before) < 0)) continue
    if (takeFailure(core, core.entries[at]!, f, bit, trusting)) changed = true
  }
  if (takeInfimum(core, a)) changed = true
  return changed
}

/**
 * An infimum ahead, on this replica's history, says the participant folded (and so
 * acknowledged, failures included) everything up to it. The vector mostly covers that
 * already (not the logs that no longer matter there, nor failures), so the digest is checked
 * only when it would tell something new. Safe whether or not this replica holds its sender's
 * log: the digest proves this replica holds every event up to that infimum, with the same
 * outcomes.
 */
function takeInfimum<E, S, O> (core: FoldCore<E, S, O>, a: Ack<O>): boolean {
  const bit = core.table.bit(a.p)
  if (compareEventIds(a.infId, core.infId) <= 0 || !missesAck(core, a.infId, a.p, bit)) return false
  const relation = relationTo(core, a.infId, a.infDigest)
  return (relation === 'same' || relation === 'threw-there') && acknowledgeUpTo(core, a.infId, bit)
}

function missesAck<E, S, O> (core: FoldCore<E, S, O>, upTo: EventId, p: number, bit: bigint): boolean {
  for (let i = core.head; i < core.entries.length; i++) {
    const e = core.entries[i]!
    if (compareEventIds(e, upTo) > 0) return false
    const d = e.delta
    if (!core.acknowledgedBy(e, p) || (d.kind === 'error' && (d.errorAcks & bit) === 0n) || (d.kind === 'unjoin' && (e.positioned & bit) === 0n)) return true
  }
  return false
}

/**
 * A participant (`bits`) reports that `e` failed there. Returns whether anything changed.
 * Trusting, a returned failure turns a held event into an error; a thrown one never does
 * (see below).
 */
export function takeFailure<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>, f: { readonly output?: O, readonly thrown?: string }, bits: bigint, trusting: boolean): boolean {
  const d = e.delta
  if (d.kind === 'error') {
    if ((d.errorAcks & bits) === bits) return false
    d.errorAcks |= bits
    return true
  }
  if (d.kind !== 'event' || !trusting || f.thrown !== undefined) return false
  // A failure anywhere makes the event a failure everywhere: the only outcome every replica
  // can agree on without knowing who else succeeded. First-hand, a failure is not taken on
  // another's word: with a deterministic spec this replica's own fold fails the event too, and
  // then counts the sender's acknowledgement of it. Nor is a failure whose `apply` threw, even
  // trusting: it is the sender's own trouble (other code, a bug that depends on more than the
  // event and the state), not a verdict on the event; replicas whose `apply` runs fold it, and
  // the sender, outvoted by their infima, takes their state (see `relateHistories`).
  // Believing it would let a replica that folded the event before the news arrived report
  // another consistent output. The output is this replica's own when its projection fails the
  // event too: the sender's state may be off (a hook that threw there earlier), this one's is not.
  const own = core.projValid ? e.projectedFailure : undefined
  e.delta = { kind: 'error', failure: own !== undefined && own.thrown === undefined ? own : failureOfReport(f), errorAcks: bits, source: { event: d.event } }
  if ((bits & core.selfBit) === 0n) core.ownAckDue.push(e)
  core.projValid = false
  return true
}

/**
 * Sets the acknowledgement masks that new entries of one log (`run`, ascending) start with,
 * from what is known of everyone's vectors: the marks cover them when they land in a log they
 * were set on (`FoldCore.acksOf`), these bits when their log was new here. The acknowledgers
 * are sorted once by how far they hold the log, not asked once per entry: a 64-peer burst
 * brings each replica runs of about 150 events, each to be checked against 63 vectors.
 */
export function initialAcks<E, S, O> (core: FoldCore<E, S, O>, run: ReadonlyArray<Entry<E, O>>): void {
  const first = run[0]
  if (first === undefined) return
  const holding: Array<{ readonly p: number, readonly upTo: number }> = []
  let plain = true
  for (const a of core.latest.values()) {
    const upTo = a.holds.get(first.creator, first.since)
    if (upTo < first.seq) continue
    if (newIncarnationBefore(core, a.p, a.log) !== undefined) plain = false
    holding.push({ p: a.p, upTo })
  }
  if (holding.length === 0) return
  if (!plain || run.some(e => e.delta.kind === 'unjoin')) {
    for (const e of run) initialAcksOf(core, e)
    return
  }
  // From the last entry back, the set of acknowledgers covering an entry only grows.
  holding.sort((x, y) => y.upTo - x.upTo)
  const covered = core.covered
  let mask = 0n
  let k = 0
  for (let i = run.length - 1; i >= 0; i--) {
    const e = run[i]!
    for (; k < holding.length && holding[k]!.upTo >= e.seq; k++) covered.add(holding[k]!.p)
    if (!covered.empty) mask |= covered.take()
    if (mask !== 0n) e.acks |= mask
  }
}

/** {@link initialAcks} for one entry, whatever its kind or its acknowledgers' incarnations. */
function initialAcksOf<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>): void {
  const covered = core.covered
  for (const a of core.latest.values()) {
    if (!covers(a.holds, e)) continue
    const before = newIncarnationBefore(core, a.p, a.log)
    if (before !== undefined && compareEventIds(e, before) < 0) continue
    covered.add(a.p)
    if (e.delta.kind === 'unjoin') takePositions(e, a, core.table.bit(a.p))
  }
  if (!covered.empty) e.acks |= covered.take()
}

/**
 * The participants this replica's acknowledgement should reach now (see `MergeResult.notify`):
 * `waiting` (the creators of the events a merge added and of those ordered after them, read
 * before folding), or, when `everyone`, every participant there may be. Never this replica.
 */
export function notifyList<E, S, O> (core: FoldCore<E, S, O>, waiting: bigint, everyone: boolean, allParticipants: () => bigint): Participant[] {
  const mask = everyone ? allParticipants() | waiting : waiting
  return core.table.list(mask & ~core.selfBit)
}

/**
 * The participants whose acknowledgements show events this replica does not hold (a sync
 * from one of them repairs it), the one ahead by the most first.
 *
 * So do the acknowledgers of a pending UnJoin whose stand-in positions name events of the
 * leaver this replica does not hold: the UnJoin cannot stand in here until it holds them
 * (folding.ts, `positionsHeld`), and no acknowledgement may ever show them here, since one
 * goes to the creators of what it covers. A replica that waited on the leaver's
 * acknowledgement of an earlier event stalled for good on this (keyspace link cuts, seed 9:
 * docs/RELIABILITY.md).
 */
export function aheadOfThis<E, S, O> (core: FoldCore<E, S, O>): Participant[] {
  const ahead = new Map<number, number>()
  const note = (p: number, missing: number): void => { if (missing > (ahead.get(p) ?? 0)) ahead.set(p, missing) }
  for (const known of [core.latest, core.pending]) {
    for (const a of known.values()) {
      let missing = 0
      a.holds.forEach((c, since, seq) => {
        const held = core.held(c, since)
        if (seq > held) missing += seq - held
      })
      note(a.p, missing)
    }
  }
  for (const u of core.unjoins) {
    if (u.standIn === undefined) continue
    const leaver = (u.delta as { peer: number }).peer
    let missing = 0
    for (const [since, seq] of u.standIn) missing += Math.max(0, seq - core.held(leaver, since))
    if (missing === 0) continue
    const asked = u.positioned & ~core.selfBit & ~core.table.bit(leaver)
    for (let i = 0; i < core.table.names.length; i++) if ((asked & core.table.bit(i)) !== 0n) note(i, missing)
  }
  return [...ahead].sort((x, y) => y[1] - x[1]).map(([p]) => core.table.name(p))
}
