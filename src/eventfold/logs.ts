/**
 * Participants' logs: taking a run of a creator's events (checked against the hash chain this
 * replica holds and the creator's signed head), and handing out runs this replica holds.
 *
 * A run is taken only where it continues what is held: the events it repeats are skipped, and
 * one that starts after a gap is refused (the events in between come from a sync). Its new
 * events are chained from the held head; the chain must end at a head the creator signed
 * (when the fold signs), whoever relays the run, so that a body is never taken on the
 * relayer's word. One signature check per run, however many events it carries.
 *
 * @module
 */
import { initialAcks } from './acknowledgements.js'
import { writtenAs } from './admissions.js'
import { onBehalf, type Entry, type FoldCore, type LogState } from './core.js'
import { projectEntry } from './projection.js'
import { compareEventIds, type EventId, type LogRun, type Participant, type RunEvent, type SignedDelta, type UnsignedHead } from './types.js'

/** The new events of a run, checked: what {@link takeRun} inserts. */
export interface CheckedRun<E, O> {
  readonly creator: number
  readonly since: number
  /** Where the new events chain from: the held head, or the base of a run taken over a gap. */
  readonly from: { readonly seq: number, readonly hash: Uint8Array, readonly counter?: number }
  readonly events: ReadonlyArray<{ readonly seq: number, readonly counter: number, readonly delta: SignedDelta<E, O>, readonly hash: Uint8Array }>
  readonly seq: number
  readonly hash: Uint8Array
  readonly signature: Uint8Array | undefined
  /** Whether `signature` was checked (a run of the first-hand sender's own log is not yet). */
  readonly verified: boolean
  /** The Join that admitted the creator where it writes the log, as the run says. */
  readonly admittedBy: EventId | undefined
}

/** Why a run cannot be taken. */
export type RunRefusal =
  | { readonly kind: 'gap', readonly id: EventId }
  | { readonly kind: 'forged', readonly id: EventId }

/**
 * Checks a run against what this replica holds of its creator's log, changing nothing.
 * Returns `undefined` when the run holds nothing new (or names another Join than the log held
 * under its name: another incarnation's, see {@link CreatorLog.admittedBy}).
 *
 * A run that starts after a gap is refused, unless it says which event it follows (its base)
 * and that event is at or below `passed`: the infimum this replica has, the one a trusting
 * full merge is about to adopt, or the sender's own infimum ahead of this one on this
 * replica's history (its digest is what folding here up to it would give: `relationTo`).
 * Every event in the gap is earlier in the same log, so has a lower id still: below this
 * infimum it can never fold here; below the sender's, it is one the sender's history passed
 * without it (the digest would differ had it folded there), so folding it here would part
 * from that history. The run is taken from there (into a log none of whose events are
 * outstanding here: they stay its last ones). Likewise when none of the events in the gap can
 * fold anywhere ({@link renegadeGap}; not while adopting). That is how a log moves on past
 * events that were dropped everywhere they reached (a renegade's, ones an adopted infimum
 * passed, an ejected peer's that reached others only after they had folded past them) and
 * that nobody can send any more.
 */
export function checkRun<E, S, O> (core: FoldCore<E, S, O>, run: LogRun<E, O>, sender?: Participant, passed: EventId = core.infId, adopting = false): CheckedRun<E, O> | RunRefusal | undefined {
  const creator = core.table.intern(run.creator)
  const held = core.log(creator, run.since)
  let from: CheckedRun<E, O>['from'] = { seq: held.seq, hash: held.hash }
  const end = run.first + run.events.length - 1
  if (run.events.length === 0 || end <= from.seq) return undefined
  const idOf = (e: RunEvent<E, O>): EventId => ({ counter: e.counter, participant: run.creator })
  // A log is written by one incarnation: a run that names another Join than the one held is
  // another incarnation's log under the same name (their first events had the same counter),
  // which can never continue this one. Nothing to take.
  const admittedBy = run.admittedBy
  if (admittedBy !== undefined && held.admittedBy !== undefined && compareEventIds(admittedBy, held.admittedBy) !== 0) return undefined
  if (run.first > from.seq + 1) {
    const base = run.base
    const baseId = base === undefined ? undefined : { counter: base.counter, participant: run.creator }
    const jumpable = baseId !== undefined && held.baseSeq === held.seq &&
      (compareEventIds(baseId, passed) <= 0 || (!adopting && renegadeGap(core, creator, baseId)))
    if (!jumpable) return { kind: 'gap', id: idOf(run.events[0]!) }
    from = { seq: run.first - 1, hash: base!.hash, counter: base!.counter }
  }
  let hash = from.hash
  let below = from.counter ?? headCounter(core, creator, held)
  const events: Array<CheckedRun<E, O>['events'][number]> = []
  for (let i = from.seq + 1 - run.first; i < run.events.length; i++) {
    const e = run.events[i]!
    // A log's ids ascend past its head, and no id is held twice. Only its creator can break
    // that (a signature proves authorship, not sense), and inserting the events relies on it.
    if (e.counter <= below || core.find(e.counter, run.creator) >= 0 || core.parked.get(creator)?.some(p => p.entry.counter === e.counter) === true) return { kind: 'forged', id: idOf(e) }
    below = e.counter
    hash = core.chain(hash, idOf(e), e.delta)
    events.push({ seq: run.first + i, counter: e.counter, delta: e.delta, hash })
  }
  const last = idOf(run.events[run.events.length - 1]!)
  const signatures = core.signatures
  // A run of the authenticated sender's own log is its creator's word first-hand, as its
  // acknowledgements are: its signature is kept and checked once, before it is handed on
  // (headSignature), which is when anyone else needs it.
  const firstHand = sender !== undefined && sender === run.creator
  // The admission is signed with the head: a relayer that names another (or leaves it out) forged the run.
  if (signatures !== undefined && (run.signature === undefined || (!firstHand && !signatures.verify(run.creator, run.since, end, hash, held.admittedBy ?? admittedBy, run.signature)))) return { kind: 'forged', id: last }
  return { creator, since: run.since, from, events, seq: end, hash, signature: run.signature, verified: signatures === undefined || !firstHand, admittedBy }
}

/**
 * The counter of the last event of `log` (participant `creator`'s) held here: its last
 * outstanding event, or the last one before them when known (0: none, or not known).
 */
function headCounter<E, S, O> (core: FoldCore<E, S, O>, creator: number, log: LogState): number {
  if (log.seq > log.baseSeq) {
    for (let i = core.entries.length - 1; i >= core.head; i--) {
      const e = core.entries[i]!
      if (e.creator === creator && e.since === log.since) return e.counter
    }
  }
  return log.baseCounter
}

/**
 * Whether none of `creator`'s events ordered before `base` can fold anywhere, although they
 * are above this replica's infimum: this replica's own Join has folded, `creator` is not a
 * participant of its infimum, and no Join of `creator` ordered before `base` is outstanding
 * here. Any replica that folded such an event had folded a Join of `creator` before it, above
 * this infimum; that Join needed this replica's acknowledgement, so it would be held here. (A
 * departed participant's events from before its rejoin are what this lets a log move past.)
 */
function renegadeGap<E, S, O> (core: FoldCore<E, S, O>, creator: number, base: EventId): boolean {
  if ((core.infMask & core.selfBit) === 0n || (core.infMask & core.table.bit(creator)) !== 0n) return false
  for (let i = core.head; i < core.entries.length; i++) {
    const e = core.entries[i]!
    if (compareEventIds(e, base) >= 0) break
    if (e.delta.kind === 'join' && e.delta.peer === creator) return false
  }
  return true
}

/** Inserts a checked run's events and moves its creator's log to its head. */
export function takeRun<E, S, O> (core: FoldCore<E, S, O>, run: CheckedRun<E, O>): void {
  const log = core.log(run.creator, run.since)
  // Before its events are projected: whether they take part depends on it.
  log.admittedBy ??= run.admittedBy
  const participant = core.table.name(run.creator)
  const fresh: Array<Entry<E, O>> = []
  if (run.from.seq > log.seq) {
    // Taken over a gap: the events in between can never fold here.
    log.seq = log.baseSeq = run.from.seq
    log.hash = log.baseHash = run.from.hash
    log.baseCounter = run.from.counter ?? 0
  }
  const creatorBit = core.table.bit(run.creator)
  for (const r of run.events) {
    core.observe(r.counter)
    const delta = core.internalDelta(r.delta)
    const entry: Entry<E, O> = {
      counter: r.counter, participant, creator: run.creator, since: run.since, log, seq: r.seq, hash: r.hash, delta,
      acks: creatorBit, ackSeen: -1, standIn: undefined, positioned: 0n, projectedFailure: undefined, reported: false
    }
    if (compareEventIds(entry, core.infId) <= 0) {
      // Settled already (a late event, or one taken over a gap): held, never outstanding.
      log.baseSeq = entry.seq
      log.baseHash = entry.hash
      log.baseCounter = entry.counter
      continue
    }
    if (delta.kind === 'unjoin') entry.acks |= onBehalf(core, delta)
    fresh.push(entry)
  }
  initialAcks(core, fresh)
  insertRun(core, fresh)
  for (const entry of fresh) if (entry.delta.kind === 'join') unpark(core, entry, entry.delta.peer)
  log.seq = run.seq
  log.hash = run.hash
  log.signature = run.signature
  log.verified = run.verified
}

/**
 * Puts back the renegades of `peer` set aside after `join`, a Join of it that arrived late
 * (see `FoldCore.parkHead`): its events after the Join are not renegades after all. Their
 * logs' bases go back to where they were before the first of them was dropped.
 */
function unpark<E, S, O> (core: FoldCore<E, S, O>, join: Entry<E, O>, peer: number): void {
  // A Join put back puts back its peer's renegades in turn.
  const joins: Array<{ readonly join: Entry<E, O>, readonly peer: number }> = [{ join, peer }]
  for (let next = joins.pop(); next !== undefined; next = joins.pop()) {
    const list = core.parked.get(next.peer)
    if (list === undefined) continue
    const after = next.join
    // Only the incarnation this Join admits: another's events stay renegades after it.
    const back = list.filter(p => compareEventIds(p.entry, after) > 0 && compareEventIds(p.entry, core.infId) > 0 && writtenAs(core, p.entry, after))
    if (back.length === 0) continue
    core.parked.set(next.peer, list.filter(p => !back.includes(p)))
    // Entries come back below the acknowledgers' marks, which cover them: they were held
    // where the marks come from (core.ts, `ackBefore`).
    const restored = new Set<LogState>()
    for (const p of back) {
      const log = p.entry.log
      if (!restored.has(log)) {
        restored.add(log)
        log.baseSeq = p.baseSeq
        log.baseHash = p.baseHash
        log.baseCounter = p.baseCounter
      }
      insertEntry(core, p.entry)
      const d = p.entry.delta
      if (d.kind === 'join') joins.push({ join: p.entry, peer: d.peer })
    }
  }
}

/** Inserts a new entry at its place in id order; keeps the projection cache when it is last. */
export function insertEntry<E, S, O> (core: FoldCore<E, S, O>, entry: Entry<E, O>): void {
  insertRun(core, [entry])
}

/**
 * Inserts new entries, in ascending id order (a run of one log), at their places; keeps the
 * projection cache when they all come after the last. One pass over the entries they land
 * among, not one per entry: a burst's runs land in the middle of thousands of outstanding
 * events, and splicing them in one at a time was a tenth of a 64-peer burst.
 */
function insertRun<E, S, O> (core: FoldCore<E, S, O>, run: ReadonlyArray<Entry<E, O>>): void {
  if (run.length === 0) return
  const entries = core.entries
  // Where each lands among the entries held now: ascending, as the run is.
  const at: number[] = []
  for (const e of run) {
    const found = core.find(e.counter, e.participant)
    if (found >= 0) throw new Error('EventFold invariant: duplicate event id')
    at.push(-found - 1)
  }
  const end = entries.length
  for (const e of run) entries.push(e)
  if (at[0] === end) {
    for (const e of run) projectEntry(core, e)
  } else {
    // From the back, in place: the entries between two landing places move once, by as many
    // places as new ones land before them, with no comparison.
    let upper = end
    for (let j = run.length - 1; j >= 0; j--) {
      const p = at[j]!
      for (let i = upper - 1; i >= p; i--) entries[i + j + 1] = entries[i]!
      entries[p + j] = run[j]!
      upper = p
    }
    core.projValid = false
  }
  for (const entry of run) insertedEntry(core, entry)
}

function insertedEntry<E, S, O> (core: FoldCore<E, S, O>, entry: Entry<E, O>): void {
  core.track(entry, 1)
  // This replica's own events carry its acknowledgement from the start; an entry taken from
  // another replica waits for it until the merge ends (folding.ts, `acknowledgeOwn`).
  if ((entry.acks & core.selfBit) === 0n) core.ownAckDue.push(entry)
}

/**
 * The events of each log this replica holds outstanding, from position `from(creator)` on
 * (those it holds no longer are left out), each run ending at the held head with the
 * creator's signature; this replica's own head is signed here if it is not yet. With
 * signatures on, a log whose head has no good signature here is left out.
 */
export function runsFrom<E, S, O> (core: FoldCore<E, S, O>, from: (creator: number, since: number) => number): Array<LogRun<E, O>> {
  const byLog = new Map<LogState, Array<Entry<E, O>>>()
  for (let i = core.head; i < core.entries.length; i++) {
    const e = core.entries[i]!
    const log = e.log
    let list = byLog.get(log)
    if (list === undefined) { list = []; byLog.set(log, list) }
    list.push(e)
  }
  const runs: Array<LogRun<E, O>> = []
  for (const [log, list] of byLog) {
    const creator = list[0]!.creator
    const start = from(creator, log.since)
    const events = list.filter(e => e.seq >= start)
    if (events.length === 0) continue
    const signature = headSignature(core, creator, log)
    // A receiver would refuse the whole diff for a run it cannot check; it gets it from its creator.
    if (signature === undefined && core.signatures !== undefined) continue
    const first = events[0]!.seq
    const run: LogRun<E, O> = {
      creator: core.table.name(creator),
      since: log.since,
      first,
      events: events.map(e => ({ counter: e.counter, delta: core.loggedDelta(e.delta) })),
      signature,
      ...(log.admittedBy !== undefined ? { admittedBy: log.admittedBy } : {})
    }
    // The receiver may hold less of the log than this replica still has: where to chain from.
    // (Not known of a log taken from a snapshot that did not say: the receiver then syncs.)
    runs.push(start < first && first > 1 && log.baseCounter > 0 && log.baseSeq === first - 1 ? { ...run, base: { counter: log.baseCounter, hash: log.baseHash } } : run)
  }
  runs.sort((a, b) => a.creator < b.creator ? -1 : a.creator > b.creator ? 1 : a.since - b.since)
  return runs
}

/** This replica's own head if it has events and no signature yet (see {@link UnsignedHead}). */
export function unsignedOwnHead<E, S, O> (core: FoldCore<E, S, O>): UnsignedHead | undefined {
  const log = core.ownLog
  if (core.signatures === undefined || log === undefined || log.seq === 0 || log.signature !== undefined) return undefined
  const { since, seq, hash, admittedBy } = log
  return {
    since,
    seq,
    head: hash,
    admittedBy,
    sign: (signature) => {
      if (log.seq !== seq || log.signature !== undefined) return
      log.signature = signature
      log.verified = true
    }
  }
}

/**
 * The signature of the head of `log` (participant `i`'s) as held here: this replica signs its
 * own (once per head: one signature per batch however many events it carries); another's,
 * taken from a snapshot or first-hand from its creator, is checked once before it is handed on
 * (`check`; not for a snapshot kept here, which is checked when restored). One that fails is
 * forgotten: the log's runs are then not handed on (`runsFrom`), since nobody could check them.
 */
export function headSignature<E, S, O> (core: FoldCore<E, S, O>, i: number, log: LogState, check = true): Uint8Array | undefined {
  const signatures = core.signatures
  if (signatures === undefined || log.seq === 0) return undefined
  if (i === core.selfIndex) {
    if (log.signature === undefined) { log.signature = signatures.sign(log.since, log.seq, log.hash, log.admittedBy); log.verified = true }
    return log.signature
  }
  if (check && !log.verified && log.signature !== undefined) {
    if (!signatures.verify(core.table.name(i), log.since, log.seq, log.hash, log.admittedBy, log.signature)) { log.signature = undefined; core.lateForged++ }
    log.verified = true
  }
  return log.signature
}
