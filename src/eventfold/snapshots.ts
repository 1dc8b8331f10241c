/**
 * A replica as plain data and back ({@link EventFoldSnapshot}): what a full merge sends and
 * what storage persists. `EventFold.snapshot` and `EventFold.fromSnapshot` are the public face.
 *
 * @module
 */
import { NO_HASH, FoldCore, type Entry, type LogState } from './core.js'
import type { GuardedSpec } from './hooks.js'
import { headSignature, insertEntry } from './logs.js'
import { compareEventIds, type Admission, type CreatorLog, type EventFoldSnapshot, type EventSignatures, type OutstandingEvent, type Participant } from './types.js'

/**
 * The replica state a snapshot describes. Does not acknowledge anything.
 * @throws TypeError if an outstanding event is not where its creator's log says (a snapshot
 * no fold would write)
 */
export function coreFromSnapshot<E, S, O> (snapshot: EventFoldSnapshot<E, S, O>, self: Participant, hooks: GuardedSpec<E, S, O>, signatures: EventSignatures<E, O> | undefined): FoldCore<E, S, O> {
  const inf = snapshot.infimum
  const core = new FoldCore(snapshot.origin, self, hooks, signatures, inf.id, inf.digest, inf.participants, inf.state, inf.admissions)
  const counts = new Map<string, number>()
  for (const e of snapshot.events) counts.set(`${e.since}:${e.id.participant}`, (counts.get(`${e.since}:${e.id.participant}`) ?? 0) + 1)
  for (const l of snapshot.logs) {
    const log = core.log(core.table.intern(l.participant), l.since)
    const outstanding = counts.get(`${l.since}:${l.participant}`) ?? 0
    log.seq = l.seq
    log.hash = l.hash
    // This replica's own heads are signed again when next sent (`headSignature`): one stored by
    // an 11.0.0 build does not cover the log's admission, and nobody would take its runs.
    log.signature = l.participant === core.self ? undefined : l.signature
    log.verified = false
    log.admittedBy = l.admittedBy === undefined ? undefined : internId(core, l.admittedBy)
    log.baseSeq = l.seq - outstanding
    log.baseHash = outstanding === 0 ? l.hash : l.base?.hash ?? NO_HASH
    log.baseCounter = l.base?.counter ?? 0
  }
  const chained = new Map<LogState, Uint8Array>()
  for (const e of snapshot.events) {
    const creator = core.table.intern(e.id.participant)
    const log = core.logs.get(creator)?.get(e.since)
    if (log === undefined || e.seq <= log.baseSeq || e.seq > log.seq) throw new TypeError(`event ${e.id.counter}:${e.id.participant} is outside its creator's log`)
    const delta = core.internalDelta(e.delta)
    const hash = core.chain(chained.get(log) ?? log.baseHash, e.id, core.loggedDelta(delta))
    chained.set(log, hash)
    core.observe(e.id.counter)
    const standIn = e.standIn !== undefined && e.standIn.length > 0 ? new Map(e.standIn.map(p => [p.since, p.seq])) : undefined
    const entry: Entry<E, O> = {
      counter: e.id.counter, participant: core.table.name(creator), creator, since: e.since, log, seq: e.seq, hash, delta,
      acks: core.table.mask(e.acks), standIn, positioned: e.delta.kind === 'unjoin' ? core.table.mask(e.acks) : 0n, projectedFailure: undefined, reported: false, ackSeen: -1
    }
    if (compareEventIds(e.id, core.infId) <= 0) {
      log.baseSeq = e.seq
      log.baseHash = hash
      log.baseCounter = e.id.counter
      continue
    }
    insertEntry(core, entry)
  }
  for (const [log, hash] of chained) {
    if (core.signatures !== undefined && !equalBytes(hash, log.hash)) throw new TypeError(`the events of a log (since ${log.since}) do not chain to its head`)
  }
  // A new fold writes a new log (see `CreatorLog`): its events before may have gone where
  // this one will never know.
  core.ownLog = undefined
  core.projValid = false
  return core
}

/** The whole replica as plain data (`events`: its outstanding events, as `EventFold.outstandingEvents` gives them). */
export function snapshotOf<E, S, O> (core: FoldCore<E, S, O>, events: Array<OutstandingEvent<E, O>>, check: boolean): EventFoldSnapshot<E, S, O> {
  const logs: CreatorLog[] = []
  const unsigned = new Set<string>()
  for (const [i, byLog] of core.logs) {
    for (const log of byLog.values()) {
      if (log.seq === 0) continue
      const signature = headSignature(core, i, log, check)
      // Outstanding events whose head has no good signature: a receiver checking them would
      // refuse the whole fold, so they are left out, as runsFrom leaves them out of diffs.
      if (check && signature === undefined && core.signatures !== undefined && log.baseSeq < log.seq) {
        unsigned.add(`${log.since}:${core.table.name(i)}`)
        continue
      }
      // The last event before the outstanding ones (or the last one), when known: a receiver
      // chains outstanding events from it, and relays runs over a gap from it.
      const base = log.baseSeq > 0 && log.baseCounter > 0 ? { base: { counter: log.baseCounter, hash: log.baseHash } } : {}
      const admittedBy = log.admittedBy !== undefined ? { admittedBy: log.admittedBy } : {}
      logs.push({ participant: core.table.name(i), since: log.since, seq: log.seq, hash: log.hash, ...(signature !== undefined ? { signature } : {}), ...admittedBy, ...base })
    }
  }
  logs.sort((a, b) => a.participant < b.participant ? -1 : a.participant > b.participant ? 1 : a.since - b.since)
  const participants = core.table.list(core.infMask)
  const admissions: Admission[] = []
  for (const participant of participants) {
    const join = core.admitted.get(core.table.indexOf(participant)!)
    if (join !== undefined) admissions.push({ participant, join })
  }
  return {
    origin: core.origin,
    infimum: { id: core.infId, digest: core.infDigest, participants, ...(admissions.length > 0 ? { admissions } : {}), state: core.infState },
    logs,
    events: unsigned.size === 0 ? events : events.filter(e => !unsigned.has(`${e.since}:${e.id.participant}`))
  }
}

/** `id` with its participant as the table spells it (BOTTOM as is). */
function internId<E, S, O> (core: FoldCore<E, S, O>, id: { readonly counter: number, readonly participant: Participant }): { readonly counter: number, readonly participant: Participant } {
  return id.counter === 0 ? id : { counter: id.counter, participant: core.table.name(core.table.intern(id.participant)) }
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
