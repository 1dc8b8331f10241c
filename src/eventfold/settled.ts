/**
 * The settled record: the events that moved the infimum since a store last asked, so that a
 * store can save the settled state as those events (each about the size of the event) instead
 * of rewriting the whole state every time it moves, and fold them back on recovery. Nothing
 * here decides what folds: recording happens where folding pops an entry (core.ts), and
 * refolding goes through the same `reduce` (folding.ts) that folded the events live.
 *
 * Logs are not part of it: a store saves each log's head and base as they stand, past the
 * events that folded, so refolding moves the infimum alone and leaves every log as folding
 * live left it (runs received after recovery chain from the same heads).
 *
 * @module
 */
import type { Entry, FoldCore } from './core.js'
import { NO_HASH } from './core.js'
import { reduce } from './folding.js'
import { ensureProjection } from './projection.js'
import { compareEventIds, type ConsistentOutput, type EventId, type OutstandingEvent, type SettledInfimum } from './types.js'

/**
 * The events folded since the previous call, in fold order, each as it folded (an event whose
 * `apply` failed is its Error), and starts the record again. `undefined` when there is no
 * record to give: at the first call (nobody was recording), and when the infimum moved
 * otherwise than by folding here since (a merge that took another's infimum whole, see
 * {@link endSettledRecord}): the caller cannot know what moved it, and saves it whole.
 */
export function takeSettled<E, S, O> (core: FoldCore<E, S, O>): Array<OutstandingEvent<E, O>> | undefined {
  const record = core.settled
  core.settled = { from: core.infDigest.count, entries: [] }
  // Every fold extends the digest by one: a count that does not add up means the infimum
  // moved in some other way (`endSettledRecord`, called where a merge takes another's
  // infimum, also catches one whose count happens to match).
  if (record === undefined || record.from + record.entries.length !== core.infDigest.count) return undefined
  const cache = new Map<bigint, string[]>()
  return record.entries.map(e => ({ id: { counter: e.counter, participant: e.participant }, since: e.since, seq: e.seq, delta: core.externalDelta(e.delta, cache), acks: [] }))
}

/** Ends the settled record: the infimum is about to move by other means than folding here. */
export function endSettledRecord<E, S, O> (core: FoldCore<E, S, O>): void {
  core.settled = undefined
}

/**
 * Folds `events` (a settled record a store saved, see {@link takeSettled}) into the infimum,
 * as acknowledged by everyone up to `upTo` (the infimum id the store saved with them), and
 * returns the infimum id and digest they reached, for the caller to check against what it
 * saved: a record with an event missing, or whose events now fold otherwise, reaches another
 * digest. The outstanding events play no part and stay outstanding (projected again, onto the
 * infimum they follow); the logs are not touched (see the module comment). Hooks that throw
 * for the refolded events are not reported again: they were when those folded live. When the
 * result is not what was saved, the fold must be discarded.
 *
 * @throws TypeError if an event is not one this fold could have folded since its infimum:
 * not above the infimum and at most `upTo`, or not in a log this fold holds past it
 */
export function refoldSettled<E, S, O> (core: FoldCore<E, S, O>, events: ReadonlyArray<OutstandingEvent<E, O>>, upTo: EventId): SettledInfimum {
  // What folds here is the record a store already holds, not news to record again.
  endSettledRecord(core)
  const sorted = [...events].sort((a, b) => compareEventIds(a.id, b.id))
  const entries: Array<Entry<E, O>> = []
  for (const e of sorted) {
    if (compareEventIds(e.id, core.infId) <= 0 || compareEventIds(e.id, upTo) > 0) throw new TypeError(`settled event ${e.id.counter}:${e.id.participant} is not between the infimum and ${upTo.counter}:${upTo.participant}`)
    const creator = core.table.intern(e.id.participant)
    const log = core.logs.get(creator)?.get(e.since)
    // Its log's base is past it already: the store saved the log as it stood after it folded.
    if (log === undefined || e.seq < 1 || e.seq > log.baseSeq) throw new TypeError(`settled event ${e.id.counter}:${e.id.participant} is outside the part of its creator's log that left the fold`)
    core.observe(e.id.counter)
    entries.push({
      counter: e.id.counter, participant: core.table.name(creator), creator, since: e.since, log, seq: e.seq, hash: NO_HASH,
      delta: core.internalDelta(e.delta), acks: 0n, ackSeen: -1, standIn: undefined, positioned: 0n, projectedFailure: undefined, reported: false
    })
  }
  // Folded alone, in front of nothing: `reduce` stops where they end, whatever the outstanding
  // events' acknowledgements would allow.
  const outstanding = core.entries.slice(core.head)
  const thrown = core.thrownSince.length
  core.entries = entries
  core.head = 0
  core.projValid = false
  const outputs: Array<ConsistentOutput<O>> = []
  reduce(core, upTo, outputs)
  // Whatever did not fold stays out: the caller refuses this fold.
  core.entries = outstanding
  core.head = 0
  // Rebuilding the fold projected the outstanding events onto the checkpoint's infimum: an
  // Error's failure was computed again on a state it does not follow, and hooks may have been
  // reported as thrown there. Project them again onto the infimum they follow, so both are what
  // folding live gave (a snapshot of this fold carries the failures).
  const isOutstanding = new Set(outstanding.map(e => `${e.counter}:${e.participant}`))
  core.thrownSince = core.thrownSince.slice(0, thrown).filter(t => !isOutstanding.has(`${t.id.counter}:${t.id.participant}`))
  for (const e of outstanding) { e.projectedFailure = undefined; e.reported = false }
  core.projValid = false
  ensureProjection(core)
  return { id: core.infId, digest: core.infDigest }
}
