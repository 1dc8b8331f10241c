/**
 * The Diff (kind 2) of format 6: acknowledgements as version vectors and runs of creators'
 * logs, as one replica sends them to another. Layouts in eventfold.ts's module comment and
 * docs/PROTOCOL.md section 4; the fields it shares with folds are in fold-fields.ts.
 *
 * @module
 */
import { Reader, Writer, finishPooled, takeWriter } from './buffer.js'
import { decodeWithin, resolveDecodeLimits, type DecodeLimits } from './codec.js'
import { DecodeError, EncodeError } from './errors.js'
import { MessageKind, checkDecodedCounter, checkEventIdForEncoding, expectKind, writeHeader } from './header.js'
import { ParticipantTableReader, ParticipantTableWriter, type DiffContext } from './participant-table.js'
import {
  MAX_SIGNATURE_BYTES,
  TAG_FAILED,
  TAG_THREW,
  checkBytes,
  collectBody,
  readBase,
  readBody,
  readDigest,
  writeBase,
  writeBody,
  writeDigest,
  type FoldCodecs
} from './fold-fields.js'
import {
  compareEventIds,
  type Acknowledgement,
  type Diff,
  type EventId,
  type FailureReport,
  type LogRun,
  type Participant,
  type RunEvent
} from '../eventfold/types.js'

/** The acknowledgement's flag: its sender's own Join has folded there and no readmission of it is pending. */
const JOINED = 1

function collectAck<O> (table: ParticipantTableWriter, a: Acknowledgement<O>): void {
  table.add(a.participant)
  table.addEventId(a.infimumId)
  for (const h of a.holds) table.add(h.participant)
  for (const f of a.failures) table.addEventId(f.id)
  for (const d of a.departing) table.addEventId(d.unjoin)
}

function writeAck<E, S, O> (w: Writer, table: ParticipantTableWriter, codecs: FoldCodecs<E, S, O>, a: Acknowledgement<O>): void {
  table.writeParticipant(w, a.participant)
  w.writeUint8(a.joined ? JOINED : 0)
  w.writeVarUint(a.log)
  if (a.log === 0 && a.unsettled !== 0) throw new EncodeError('an unsettled position in no log')
  w.writeVarUint(a.unsettled)
  table.writeEventId(w, a.infimumId)
  writeDigest(w, a.infimumDigest)
  w.writeVarUint(a.holds.length)
  let previous = -1
  let previousSince = -1
  for (const h of a.holds) {
    const index = table.indexOf(h.participant)
    if (index < previous || (index === previous && h.since <= previousSince)) throw new EncodeError('an acknowledgement\'s holds are not sorted and unique')
    if (!(Number.isSafeInteger(h.seq) && h.seq >= 1)) throw new EncodeError(`an acknowledgement holds ${String(h.seq)} events of ${h.participant}`)
    w.writeVarUint(index)
    w.writeVarUint(h.since)
    w.writeVarUint(h.seq)
    previous = index
    previousSince = h.since
  }
  w.writeVarUint(a.failures.length)
  let last: EventId | undefined
  for (const f of a.failures) {
    if (f.id.counter === 0 || (last !== undefined && compareEventIds(last, f.id) >= 0)) throw new EncodeError('an acknowledgement\'s failures are not ascending real ids')
    table.writeEventId(w, f.id)
    if (f.thrown !== undefined) { w.writeUint8(TAG_THREW); w.writeString(f.thrown) } else { w.writeUint8(TAG_FAILED); codecs.output.encode(f.output, w) }
    last = f.id
  }
  w.writeVarUint(a.departing.length)
  last = undefined
  let lastSince = -1
  for (const d of a.departing) {
    const order = last === undefined ? 1 : compareEventIds(d.unjoin, last)
    if (d.unjoin.counter === 0 || order < 0 || (order === 0 && d.since <= lastSince)) throw new EncodeError('an acknowledgement\'s UnJoins are not ascending real ids')
    if (!(Number.isSafeInteger(d.seq) && d.seq >= 1)) throw new EncodeError(`a departing position of ${String(d.seq)}`)
    table.writeEventId(w, d.unjoin)
    w.writeVarUint(d.since)
    w.writeVarUint(d.seq)
    last = d.unjoin
    lastSince = d.since
  }
}

function readAck<E, S, O> (r: Reader, table: ParticipantTableReader, codecs: FoldCodecs<E, S, O>, limits: DecodeLimits): Acknowledgement<O> {
  const participant = table.readParticipant(r)
  const flags = r.readUint8()
  if ((flags & ~JOINED) !== 0) throw new DecodeError('invalid', `unknown acknowledgement flags ${flags}`)
  const log = r.readVarUint()
  const unsettled = r.readVarUint()
  if (log === 0 && unsettled !== 0) throw new DecodeError('invalid', 'an unsettled position in no log')
  const infimumId = table.readEventId(r)
  const infimumDigest = readDigest(r)
  const m = r.readCount(limits.maxItems, 3, 'holds')
  const holds: Array<{ participant: Participant, since: number, seq: number }> = []
  let previous = -1
  let previousSince = -1
  for (let i = 0; i < m; i++) {
    const index = table.readIndex(r)
    const since = r.readVarUint()
    if (index < previous || (index === previous && since <= previousSince)) throw new DecodeError('invalid', 'an acknowledgement\'s holds are not ascending')
    const seq = r.readVarUint()
    if (seq < 1) throw new DecodeError('invalid', 'an acknowledgement holds 0 events of a log it lists')
    holds.push({ participant: table.participants[index]!, since, seq })
    previous = index
    previousSince = since
  }
  const f = r.readCount(limits.maxItems, 3, 'failures')
  const failures: Array<FailureReport<O>> = []
  let last: EventId | undefined
  for (let i = 0; i < f; i++) {
    const id = table.readEventId(r)
    if (id.counter === 0 || (last !== undefined && compareEventIds(last, id) >= 0)) throw new DecodeError('invalid', 'an acknowledgement\'s failures are not ascending real ids')
    const tag = r.readUint8()
    if (tag === TAG_THREW) failures.push({ id, thrown: r.readString(limits.maxStringBytes) })
    else if (tag === TAG_FAILED) failures.push({ id, output: codecs.output.decode(r, limits) })
    else throw new DecodeError('bad-tag', `unknown failure tag ${tag} at offset ${r.offset - 1}`)
    last = id
  }
  const d = r.readCount(limits.maxItems, 4, 'departing')
  const departing: Array<{ unjoin: EventId, since: number, seq: number }> = []
  last = undefined
  let lastSince = -1
  for (let i = 0; i < d; i++) {
    const unjoin = table.readEventId(r)
    const since = r.readVarUint()
    const order = last === undefined ? 1 : compareEventIds(unjoin, last)
    if (unjoin.counter === 0 || order < 0 || (order === 0 && since <= lastSince)) throw new DecodeError('invalid', 'an acknowledgement\'s UnJoins are not ascending real ids')
    const seq = r.readVarUint()
    if (seq < 1) throw new DecodeError('invalid', 'a departing position of 0')
    departing.push({ unjoin, since, seq })
    last = unjoin
    lastSince = since
  }
  return { participant, infimumId, infimumDigest, joined: flags === JOINED, log, unsettled, holds, failures, departing }
}

function collectRun<E, O> (table: ParticipantTableWriter, run: LogRun<E, O>): void {
  table.add(run.creator)
  for (const e of run.events) collectBody(table, e.delta)
  if (run.admittedBy !== undefined) table.addEventId(run.admittedBy)
}

function writeRun<E, S, O> (w: Writer, table: ParticipantTableWriter, codecs: FoldCodecs<E, S, O>, run: LogRun<E, O>): void {
  if (run.events.length === 0) throw new EncodeError('a run holds at least one event')
  if (!(Number.isSafeInteger(run.first) && run.first >= 1)) throw new EncodeError(`a run starts at position ${String(run.first)}`)
  table.writeParticipant(w, run.creator)
  w.writeVarUint(run.since)
  w.writeVarUint(run.first)
  w.writeVarUint(run.events.length)
  let previous = 0
  for (const e of run.events) {
    checkEventIdForEncoding({ counter: e.counter, participant: run.creator })
    if (e.counter <= previous) throw new EncodeError(`the counters of ${run.creator}'s run do not ascend`)
    w.writeVarUint(e.counter - previous)
    writeBody(w, table, codecs, e.delta)
    previous = e.counter
  }
  const signature = run.signature ?? new Uint8Array(0)
  checkBytes(signature, MAX_SIGNATURE_BYTES, 'signature')
  w.writeBytes(signature)
  if (run.base !== undefined && run.first === 1) throw new EncodeError('a run from a log\'s first event has nothing before it')
  writeBase(w, run.base)
}

function readRun<E, S, O> (r: Reader, table: ParticipantTableReader, codecs: FoldCodecs<E, S, O>, limits: DecodeLimits): LogRun<E, O> {
  const creator = table.readParticipant(r)
  const since = r.readVarUint()
  const first = r.readVarUint()
  if (first < 1) throw new DecodeError('invalid', 'a run starts at position 0')
  const n = r.readCount(limits.maxItems, 2, 'run')
  if (n === 0) throw new DecodeError('invalid', 'an empty run')
  const events: Array<RunEvent<E, O>> = []
  let counter = 0
  for (let i = 0; i < n; i++) {
    const step = r.readVarUint()
    if (step < 1) throw new DecodeError('invalid', `the counters of ${creator}'s run do not ascend`)
    counter += step
    if (!Number.isSafeInteger(counter)) throw new DecodeError('invalid', `event counter ${counter} is not a safe integer`)
    checkDecodedCounter(counter)
    events.push({ counter, delta: readBody(r, table, codecs, limits, r.readUint8()) })
  }
  if (!Number.isSafeInteger(first + n - 1)) throw new DecodeError('invalid', 'a run ends past 2^53')
  const signature = r.readBytes(MAX_SIGNATURE_BYTES)
  const base = readBase(r)
  if (base !== undefined && first === 1) throw new DecodeError('invalid', 'a run from a log\'s first event has nothing before it')
  return { creator, since, first, events, ...(signature.length > 0 ? { signature } : {}), ...(base !== undefined ? { base } : {}) }
}

/**
 * Encodes a diff (kind 2). Deterministic, given the `context`: which participants it
 * fingerprints, and which origin it implies.
 * @throws {@link EncodeError} if the diff breaks an invariant (acknowledgements or runs out
 * of order, counters that do not ascend), a user codec rejects a value, or two participants
 * share a fingerprint
 */
export function encodeDiff<E, S, O> (diff: Diff<E, O>, codecs: FoldCodecs<E, S, O>, context?: DiffContext): Uint8Array {
  const table = new ParticipantTableWriter()
  for (const a of diff.acknowledgements) collectAck(table, a)
  for (const run of diff.runs) collectRun(table, run)
  const w = takeWriter()
  writeHeader(w, MessageKind.diff)
  if (context?.origin !== undefined && diff.origin === '' && context.origin !== '') throw new EncodeError('an empty origin cannot be told from the implied one')
  w.writeString(context?.origin !== undefined && diff.origin === context.origin ? '' : diff.origin)
  table.write(w, context)
  w.writeVarUint(diff.acknowledgements.length)
  let previous = -1
  for (let i = 0; i < diff.acknowledgements.length; i++) {
    const a = diff.acknowledgements[i]!
    const index = table.indexOf(a.participant)
    if (i > 1 && index <= previous) throw new EncodeError('relayed acknowledgements are not sorted and unique')
    if (i > 0 && a.participant === diff.acknowledgements[0]!.participant) throw new EncodeError('the sender\'s acknowledgement is relayed too')
    writeAck(w, table, codecs, a)
    if (i > 0) previous = index
  }
  w.writeVarUint(diff.runs.length)
  previous = -1
  let previousSince = -1
  for (const run of diff.runs) {
    const index = table.indexOf(run.creator)
    if (index < previous || (index === previous && run.since <= previousSince)) throw new EncodeError('runs are not sorted by creator and log, one each')
    writeRun(w, table, codecs, run)
    previous = index
    previousSince = run.since
  }
  // The runs' admissions, after them (and only when one is known), so that a diff without any
  // reads as it did before there were any.
  const admitted = diff.runs.flatMap((run, i) => run.admittedBy === undefined ? [] : [{ i, join: run.admittedBy }])
  if (admitted.length > 0) {
    w.writeVarUint(admitted.length)
    for (const { i, join } of admitted) {
      checkEventIdForEncoding(join)
      w.writeVarUint(i)
      table.writeEventId(w, join)
    }
  }
  return finishPooled(w)
}

/**
 * Decodes bytes from {@link encodeDiff}, validating its invariants; `context` resolves
 * fingerprinted participants and supplies an implied origin. Throws only {@link DecodeError}.
 */
export function decodeDiff<E, S, O> (bytes: Uint8Array, codecs: FoldCodecs<E, S, O>, limits?: Partial<DecodeLimits>, context?: DiffContext): Diff<E, O> {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    expectKind(r, MessageKind.diff)
    const written = r.readString(resolved.maxStringBytes)
    const origin = written === '' && context?.origin !== undefined ? context.origin : written
    const table = ParticipantTableReader.read(r, resolved, context)
    const k = r.readCount(resolved.maxItems, 8, 'acknowledgements')
    const acknowledgements: Array<Acknowledgement<O>> = []
    let previous = ''
    for (let i = 0; i < k; i++) {
      const a = readAck(r, table, codecs, resolved)
      if (i > 1 && !(previous < a.participant)) throw new DecodeError('invalid', 'relayed acknowledgements are not ascending')
      if (i > 0 && a.participant === acknowledgements[0]!.participant) throw new DecodeError('invalid', 'the sender\'s acknowledgement is relayed too')
      acknowledgements.push(a)
      if (i > 0) previous = a.participant
    }
    const n = r.readCount(resolved.maxItems, 6, 'runs')
    const runs: Array<LogRun<E, O>> = []
    for (let i = 0; i < n; i++) {
      const run = readRun(r, table, codecs, resolved)
      const before = runs[i - 1]
      if (before !== undefined && !(before.creator < run.creator || (before.creator === run.creator && before.since < run.since))) throw new DecodeError('invalid', 'runs are not ascending by creator and log')
      runs.push(run)
    }
    if (r.remaining > 0) {
      const a = r.readCount(n, 2, 'run admissions')
      if (a === 0) throw new DecodeError('invalid', 'an empty list of run admissions')
      let last = -1
      for (let i = 0; i < a; i++) {
        const at = r.readVarUint()
        if (at <= last || at >= n) throw new DecodeError('invalid', 'run admissions are not ascending by run')
        runs[at] = { ...runs[at]!, admittedBy: table.readEventId(r) }
        last = at
      }
    }
    table.expectAllUsed()
    return { origin, acknowledgements, runs }
  })
}
