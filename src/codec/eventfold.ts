/**
 * Binary encodings of the EventFold's plain data ({@link EventFoldSnapshot}, {@link Diff},
 * {@link EventId}, and the records a peer's storage keeps) in format 6, for the wire and for
 * storage. User events, states and outputs are written by the application's codecs
 * ({@link FoldCodecs}); this module owns only the frame around them. Encodings are
 * deterministic and canonical (a value has exactly one valid encoding), and decoding
 * validates every structural invariant the fold relies on, so a fold never sees an unsorted
 * set or an event outside its creator's log from a malformed message. Formats 4 and 5 are
 * read (to migrate) by legacy.ts; docs/PROTOCOL.md section 4 has every layout with examples.
 *
 * ## Byte layout, format version 6
 *
 * Primitives: `u8`; `varuint` (unsigned LEB128, at most 8 bytes, at most 2^53 - 1, no
 * overlong form); `string` and `bytes` (varuint length, then UTF-8 or raw bytes); `E`, `S`,
 * `O` by the matching {@link Codec}. Header: `"LGN"`, `u8 6`, `u8 kind` (header.ts).
 * Participants are table indexes (`pidx`) and sets are written against the table
 * (participant-table.ts). An indexed event id is `varuint counter` then, unless 0, `pidx`.
 *
 * ```
 * digest          varuint count · varuint hash · varuint throws (<= count)
 * body            tag 1: E · tag 2: pidx (joins) · tag 3: pidx (leaves)
 * acknowledgement pidx participant · u8 flags (1: joined) · varuint log · varuint unsettled ·
 *                 indexed id infimum ·
 *                 digest · varuint m, m × (pidx creator · varuint since · varuint seq >= 1),
 *                 ascending by creator, then since ·
 *                 varuint f, f × (indexed id ascending · u8 4: O | u8 5: string) ·
 *                 varuint d, d × (indexed id of an UnJoin · varuint since · varuint seq >= 1),
 *                 ascending by UnJoin, then since
 * run             pidx creator · varuint since · varuint first >= 1 · varuint n >= 1 ·
 *                 n × (varuint counter (the first whole, then the step, >= 1) · u8 tag · body) ·
 *                 bytes signature (empty: none) · base (none when first = 1)
 * base            varuint counter of the event before (0: none) · bytes hash after it (if any)
 * Diff (2)        header · string origin · table · varuint k, k × acknowledgement (the
 *                 sender's, then others ascending) · varuint r, r × run (creators ascending)
 * event record    varuint counter step · pidx creator · varuint since · u8 tag ·
 *                   1: E | 2: pidx | 3: pidx · varuint k, k × (varuint since · varuint seq) |
 *                   4: E · O · set errorAcks | 5: E · string · set errorAcks
 *                 · set acks
 * EventFold (1)   header · string origin · table · indexed id infimum · digest ·
 *                 set participants · S state · varuint n, n × event record (ids ascending,
 *                 above the infimum, steps from the previous id) · varuint m, m × log
 * log             pidx participant · varuint since (ascending by both) · varuint seq >= 1 ·
 *                 bytes hash · bytes signature · base (the last event before its outstanding
 *                 ones, or its last one; required when it has outstanding events that are not
 *                 its first, none when they are, optional when it has none)
 * EventId (3)     header · varuint counter · string participant (unless 0)
 * ```
 * A log's outstanding events are its last ones: their positions run up to its `seq` without a
 * gap, so they are not written. An empty origin in a Diff stands for the
 * one the {@link DiffContext} implies.
 *
 * @module
 */
import { Reader, Writer } from './buffer.js'
import { decodeWithin, resolveDecodeLimits, type DecodeLimits } from './codec.js'
import { DecodeError, EncodeError } from './errors.js'
import { MAGIC, MessageKind, checkEventIdForEncoding, expectKind, readEventId, writeEventId, writeHeader } from './header.js'
import { ParticipantTableReader, ParticipantTableWriter, type DiffContext } from './participant-table.js'
import type { Codec } from './codec.js'
import {
  compareEventIds,
  type Acknowledgement,
  type CreatorLog,
  type Delta,
  type Diff,
  type EventFoldSnapshot,
  type EventId,
  type FailureReport,
  type InfimumDigest,
  type LogBase,
  type LogPosition,
  type LogRun,
  type OutstandingEvent,
  type Participant,
  type RunEvent,
  type SignedDelta
} from '../eventfold/types.js'

export { MAGIC, FORMAT_VERSION, OLDEST_READABLE_FORMAT_VERSION, MessageKind, FIRST_WIRE_KIND, writeHeader, readHeader, peekKind, peekVersion, writeEventId, readEventId } from './header.js'
export { FINGERPRINT_BYTES, ParticipantTableWriter, ParticipantTableReader, type DiffContext } from './participant-table.js'

/** The codecs of a fold's user types. */
export interface FoldCodecs<E, S, O> {
  /** Codec of user events. */
  readonly event: Codec<E>
  /** Codec of the folded state. */
  readonly state: Codec<S>
  /** Codec of event outputs. */
  readonly output: Codec<O>
}

const TAG_EVENT = 1
const TAG_JOIN = 2
const TAG_UNJOIN = 3
/** A user event that failed here: its `apply` returned a failure. */
const TAG_FAILED = 4
/** A user event that failed here: its `apply` threw. */
const TAG_THREW = 5

/** Largest signature a run or log may carry (an Ed25519 signature is 64 bytes). */
export const MAX_SIGNATURE_BYTES = 128
/** Largest chain hash a log may carry (a SHA-256 is 32 bytes). */
export const MAX_HASH_BYTES = 64

/** The kind byte of {@link encodeLogHead}'s bytes; never sent on its own. */
const LOG_HEAD_KIND = 7

const JOINED = 1

function writeDigest (w: Writer, digest: InfimumDigest): void {
  w.writeVarUint(digest.count)
  w.writeVarUint(digest.hash)
  // Canonical: no throws is written as 0 and read back as the field left out.
  if (digest.throws === 0) throw new EncodeError('a digest with no throws must leave the field out')
  w.writeVarUint(digest.throws ?? 0)
}

function readDigest (r: Reader): InfimumDigest {
  const count = r.readVarUint()
  const hash = r.readVarUint()
  const throws = r.readVarUint()
  if (throws > count) throw new DecodeError('invalid', `a digest counts ${throws} throws among ${count} events`)
  return throws === 0 ? { count, hash } : { count, hash, throws }
}

function checkBytes (bytes: Uint8Array, max: number, what: string): void {
  if (bytes.length > max) throw new EncodeError(`a ${what} of ${bytes.length} bytes exceeds ${max}`)
}

// ---------------------------------------------------------------------------------------------
// Bodies, acknowledgements, runs

function collectBody<E, O> (table: ParticipantTableWriter, delta: Delta<E, O>): void {
  if (delta.kind === 'join' || delta.kind === 'unjoin') table.add(delta.participant)
  else if (delta.kind === 'error') table.addAll(delta.errorAcks)
}

function writeBody<E, S, O> (w: Writer, table: ParticipantTableWriter, codecs: FoldCodecs<E, S, O>, delta: SignedDelta<E, O>): void {
  switch (delta.kind) {
    case 'event': w.writeUint8(TAG_EVENT); codecs.event.encode(delta.event, w); break
    case 'join': w.writeUint8(TAG_JOIN); table.writeParticipant(w, delta.participant); break
    case 'unjoin': w.writeUint8(TAG_UNJOIN); table.writeParticipant(w, delta.participant); break
    default: throw new EncodeError(`a log holds no delta of kind ${String((delta as { kind: unknown }).kind)}`)
  }
}

function readBody<E, S, O> (r: Reader, table: ParticipantTableReader, codecs: FoldCodecs<E, S, O>, limits: DecodeLimits, tag: number): SignedDelta<E, O> {
  switch (tag) {
    case TAG_EVENT: return { kind: 'event', event: codecs.event.decode(r, limits) }
    case TAG_JOIN: return { kind: 'join', participant: table.readParticipant(r) }
    case TAG_UNJOIN: return { kind: 'unjoin', participant: table.readParticipant(r) }
    default: throw new DecodeError('bad-tag', `unknown body tag ${tag} at offset ${r.offset - 1}`)
  }
}

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

/** `varuint counter` (0: none), then, if there is one, `bytes hash`. */
function writeBase (w: Writer, base: LogBase | undefined): void {
  if (base === undefined) { w.writeVarUint(0); return }
  checkEventIdForEncoding({ counter: base.counter, participant: 'x' })
  if (base.counter === 0) throw new EncodeError('a base event has a counter >= 1')
  checkBytes(base.hash, MAX_HASH_BYTES, 'hash')
  w.writeVarUint(base.counter)
  w.writeBytes(base.hash)
}

function readBase (r: Reader): LogBase | undefined {
  const counter = r.readVarUint()
  return counter === 0 ? undefined : { counter, hash: r.readBytes(MAX_HASH_BYTES) }
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
    events.push({ counter, delta: readBody(r, table, codecs, limits, r.readUint8()) })
  }
  if (!Number.isSafeInteger(first + n - 1)) throw new DecodeError('invalid', 'a run ends past 2^53')
  const signature = r.readBytes(MAX_SIGNATURE_BYTES)
  const base = readBase(r)
  if (base !== undefined && first === 1) throw new DecodeError('invalid', 'a run from a log\'s first event has nothing before it')
  return { creator, since, first, events, ...(signature.length > 0 ? { signature } : {}), ...(base !== undefined ? { base } : {}) }
}

// ---------------------------------------------------------------------------------------------
// Diff

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
  const w = new Writer(256)
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
  return w.finish()
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
    table.expectAllUsed()
    return { origin, acknowledgements, runs }
  })
}

// ---------------------------------------------------------------------------------------------
// EventFold

function collectEvent<E, O> (table: ParticipantTableWriter, e: OutstandingEvent<E, O>): void {
  table.addEventId(e.id)
  table.addAll(e.acks)
  collectBody(table, e.delta)
}

/** Writes an event record's body: the tag, the body, and what the fold holds about it. */
function writeRecordBody<E, S, O> (w: Writer, table: ParticipantTableWriter, codecs: FoldCodecs<E, S, O>, e: OutstandingEvent<E, O>): void {
  const d = e.delta
  if (d.kind !== 'unjoin' && e.standIn !== undefined) throw new EncodeError('only an UnJoin has stand-in positions')
  if (e.standIn !== undefined && e.standIn.length === 0) throw new EncodeError('no stand-in positions must be left out')
  w.writeVarUint(e.since)
  switch (d.kind) {
    case 'event': case 'join': writeBody(w, table, codecs, d); break
    case 'unjoin': {
      writeBody(w, table, codecs, d)
      const positions = e.standIn ?? []
      w.writeVarUint(positions.length)
      let last = -1
      for (const p of positions) {
        if (p.since <= last || !(Number.isSafeInteger(p.seq) && p.seq >= 1)) throw new EncodeError('stand-in positions are not ascending by log, each at least 1')
        w.writeVarUint(p.since)
        w.writeVarUint(p.seq)
        last = p.since
      }
      break
    }
    case 'error':
      w.writeUint8(d.thrown !== undefined ? TAG_THREW : TAG_FAILED)
      codecs.event.encode(d.event, w)
      if (d.thrown !== undefined) w.writeString(d.thrown)
      else codecs.output.encode(d.output, w)
      table.writeSet(w, d.errorAcks)
      break
  }
  table.writeSet(w, e.acks)
}

function readRecordBody<E, S, O> (r: Reader, table: ParticipantTableReader, codecs: FoldCodecs<E, S, O>, limits: DecodeLimits): { since: number, delta: Delta<E, O>, acks: Participant[], standIn: LogPosition[] } {
  const since = r.readVarUint()
  const tag = r.readUint8()
  let delta: Delta<E, O>
  const standIn: LogPosition[] = []
  if (tag === TAG_FAILED || tag === TAG_THREW) {
    const event = codecs.event.decode(r, limits)
    delta = tag === TAG_THREW
      ? { kind: 'error', event, thrown: r.readString(limits.maxStringBytes), errorAcks: table.readSet(r, limits) }
      : { kind: 'error', event, output: codecs.output.decode(r, limits), errorAcks: table.readSet(r, limits) }
  } else {
    delta = readBody(r, table, codecs, limits, tag)
    if (delta.kind === 'unjoin') {
      const k = r.readCount(limits.maxItems, 2, 'stand-in positions')
      for (let i = 0; i < k; i++) {
        const log = r.readVarUint()
        const seq = r.readVarUint()
        if ((i > 0 && log <= standIn[i - 1]!.since) || seq < 1) throw new DecodeError('invalid', 'stand-in positions are not ascending by log, each at least 1')
        standIn.push({ since: log, seq })
      }
    }
  }
  return { since, delta, acks: table.readSet(r, limits), standIn }
}

function withStandIn<E, O> (event: OutstandingEvent<E, O>, standIn: LogPosition[]): OutstandingEvent<E, O> {
  return standIn.length > 0 ? { ...event, standIn } : event
}

/**
 * Encodes a whole fold (kind 1). Deterministic: equal snapshots give equal bytes.
 * @throws {@link EncodeError} if the snapshot breaks an invariant (events not strictly
 * ascending above the infimum, or not the last ones of their creators' logs; unsorted sets or
 * logs; bad counters) or a user codec rejects a value
 */
export function encodeEventFold<E, S, O> (snapshot: EventFoldSnapshot<E, S, O>, codecs: FoldCodecs<E, S, O>): Uint8Array {
  const { infimum, events, logs } = snapshot
  const table = new ParticipantTableWriter()
  table.addEventId(infimum.id)
  table.addAll(infimum.participants)
  for (const e of events) collectEvent(table, e)
  for (const l of logs) table.add(l.participant)
  const counts = new Map<string, number>()
  for (const e of events) counts.set(logKey(e.id.participant, e.since), (counts.get(logKey(e.id.participant, e.since)) ?? 0) + 1)
  const w = new Writer(1024)
  writeHeader(w, MessageKind.eventFold)
  w.writeString(snapshot.origin)
  table.write(w)
  table.writeEventId(w, infimum.id)
  writeDigest(w, infimum.digest)
  table.writeSet(w, infimum.participants)
  codecs.state.encode(infimum.state, w)
  w.writeVarUint(events.length)
  const logOf = new Map(logs.map(l => [logKey(l.participant, l.since), l]))
  const seen = new Map<string, number>()
  let previous = infimum.id
  for (const e of events) {
    checkEventIdForEncoding(e.id)
    if (compareEventIds(previous, e.id) >= 0) throw new EncodeError(`event ${e.id.counter}:${e.id.participant} is not above the one before it (infimum or previous event)`)
    const key = logKey(e.id.participant, e.since)
    const log = logOf.get(key)
    const k = (seen.get(key) ?? 0) + 1
    seen.set(key, k)
    if (log === undefined || e.seq !== log.seq - counts.get(key)! + k) throw new EncodeError(`event ${e.id.counter}:${e.id.participant} is not where its creator's log ends`)
    w.writeVarUint(e.id.counter - previous.counter)
    table.writeParticipant(w, e.id.participant)
    writeRecordBody(w, table, codecs, e)
    previous = e.id
  }
  w.writeVarUint(logs.length)
  let last = -1
  let lastSince = -1
  for (const l of logs) {
    const index = table.indexOf(l.participant)
    if (index < last || (index === last && l.since <= lastSince)) throw new EncodeError('logs are not sorted by participant and log, one each')
    writeLog(w, table, l, counts.get(logKey(l.participant, l.since)) ?? 0)
    last = index
    lastSince = l.since
  }
  return w.finish()
}

function logKey (participant: Participant, since: number): string {
  return `${since}:${participant}`
}

function writeLog (w: Writer, table: ParticipantTableWriter, l: CreatorLog, outstanding: number): void {
  table.writeParticipant(w, l.participant)
  // A base is needed before outstanding events that are not the log's first, and known or not
  // otherwise; there is none before a log's first event.
  if (outstanding > 0 && l.seq > outstanding && l.base === undefined) throw new EncodeError(`a log of ${l.participant} needs a base`)
  if (l.seq <= outstanding && l.base !== undefined) throw new EncodeError(`a log of ${l.participant} has nothing before its outstanding events`)
  writeLogFields(w, l)
  writeBase(w, l.base)
}

/** A log after its participant: since, seq, hash, signature. */
function writeLogFields (w: Writer, l: CreatorLog): void {
  if (!(Number.isSafeInteger(l.seq) && l.seq >= 1)) throw new EncodeError(`a log of ${String(l.seq)} events`)
  w.writeVarUint(l.since)
  w.writeVarUint(l.seq)
  checkBytes(l.hash, MAX_HASH_BYTES, 'hash')
  w.writeBytes(l.hash)
  const signature = l.signature ?? new Uint8Array(0)
  checkBytes(signature, MAX_SIGNATURE_BYTES, 'signature')
  w.writeBytes(signature)
}

/**
 * Decodes bytes from {@link encodeEventFold}, validating every invariant of the snapshot.
 * Throws only {@link DecodeError}; a fold of format 4 or 5 is `bad-version` (see
 * `migrateEventFold`).
 */
export function decodeEventFold<E, S, O> (bytes: Uint8Array, codecs: FoldCodecs<E, S, O>, limits?: Partial<DecodeLimits>): EventFoldSnapshot<E, S, O> {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    expectKind(r, MessageKind.eventFold)
    const origin = r.readString(resolved.maxStringBytes)
    const table = ParticipantTableReader.read(r, resolved)
    const id = table.readEventId(r)
    const digest = readDigest(r)
    const participants = table.readSet(r, resolved)
    const state = codecs.state.decode(r, resolved)
    const n = r.readCount(resolved.maxItems, 4, 'event list')
    const read: Array<{ id: EventId, since: number, delta: Delta<E, O>, acks: Participant[], standIn: LogPosition[] }> = []
    const counts = new Map<string, number>()
    let previousCounter = id.counter
    // BOTTOM has no index; -1 sorts below every participant, as "" does.
    let previousIndex = id.counter === 0 ? -1 : table.participants.indexOf(id.participant)
    for (let i = 0; i < n; i++) {
      const step = r.readVarUint()
      const counter = previousCounter + step
      const index = table.readIndex(r)
      if (!Number.isSafeInteger(counter) || counter < 1) throw new DecodeError('invalid', `event counter ${counter} is not a safe integer >= 1`)
      if (step === 0 && index <= previousIndex) throw new DecodeError('invalid', `event ids not strictly ascending above the infimum at event ${i}`)
      const participant = table.participants[index]!
      const body = readRecordBody(r, table, codecs, resolved)
      read.push({ id: { counter, participant }, ...body })
      counts.set(logKey(participant, body.since), (counts.get(logKey(participant, body.since)) ?? 0) + 1)
      previousCounter = counter
      previousIndex = index
    }
    const m = r.readCount(resolved.maxItems, 5, 'logs')
    const logs: CreatorLog[] = []
    let last = -1
    let lastSince = -1
    for (let i = 0; i < m; i++) {
      const index = table.readIndex(r)
      const since = r.readVarUint()
      if (index < last || (index === last && since <= lastSince)) throw new DecodeError('invalid', 'logs are not ascending by participant and log')
      const participant = table.participants[index]!
      const key = logKey(participant, since)
      const seq = r.readVarUint()
      if (seq < 1) throw new DecodeError('invalid', `an empty log of ${participant}`)
      if (seq < (counts.get(key) ?? 0)) throw new DecodeError('invalid', `a log of ${participant} is shorter than its outstanding events`)
      const hash = r.readBytes(MAX_HASH_BYTES)
      const signature = r.readBytes(MAX_SIGNATURE_BYTES)
      const outstanding = counts.get(key) ?? 0
      const base = readBase(r)
      if (outstanding > 0 && seq > outstanding && base === undefined) throw new DecodeError('invalid', `a log of ${participant} without its base`)
      if (seq <= outstanding && base !== undefined) throw new DecodeError('invalid', `a log of ${participant} with a base before its first event`)
      logs.push({ participant, since, seq, hash, ...(signature.length > 0 ? { signature } : {}), ...(base !== undefined ? { base } : {}) })
      last = index
      lastSince = since
    }
    table.expectAllUsed()
    const seqOf = new Map(logs.map(l => [logKey(l.participant, l.since), l.seq - (counts.get(logKey(l.participant, l.since)) ?? 0)]))
    const events: Array<OutstandingEvent<E, O>> = read.map(e => {
      const key = logKey(e.id.participant, e.since)
      const before = seqOf.get(key)
      if (before === undefined) throw new DecodeError('invalid', `outstanding events of ${e.id.participant} in a log it does not list`)
      seqOf.set(key, before + 1)
      return withStandIn({ id: e.id, since: e.since, seq: before + 1, delta: e.delta, acks: e.acks }, e.standIn)
    })
    return { origin, infimum: { id, digest, participants, state }, logs, events }
  })
}

// ---------------------------------------------------------------------------------------------
// Records a peer's storage keeps

/** Encodes one outstanding event as storage keeps it (kind 5): its id, position, body and acknowledgements. */
export function encodeStoredEvent<E, S, O> (e: OutstandingEvent<E, O>, codecs: FoldCodecs<E, S, O>): Uint8Array {
  const table = new ParticipantTableWriter()
  collectEvent(table, e)
  const w = new Writer(128)
  writeHeader(w, MessageKind.storedEvent)
  table.write(w)
  checkEventIdForEncoding(e.id)
  if (e.id.counter === 0 || !(Number.isSafeInteger(e.seq) && e.seq >= 1)) throw new EncodeError('a stored event needs a real id and a position')
  table.writeEventId(w, e.id)
  w.writeVarUint(e.seq)
  writeRecordBody(w, table, codecs, e)
  return w.finish()
}

/** Decodes bytes from {@link encodeStoredEvent}. Throws only {@link DecodeError}. */
export function decodeStoredEvent<E, S, O> (bytes: Uint8Array, codecs: FoldCodecs<E, S, O>, limits?: Partial<DecodeLimits>): OutstandingEvent<E, O> {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    expectKind(r, MessageKind.storedEvent)
    const table = ParticipantTableReader.read(r, resolved)
    const id = table.readEventId(r)
    const seq = r.readVarUint()
    if (id.counter === 0 || seq < 1) throw new DecodeError('invalid', 'a stored event needs a real id and a position')
    const { since, delta, acks, standIn } = readRecordBody(r, table, codecs, resolved)
    table.expectAllUsed()
    return withStandIn({ id, since, seq, delta, acks }, standIn)
  })
}

/** Encodes one participant's log as storage keeps it (kind 6); its base is always written. */
export function encodeStoredLog (log: CreatorLog): Uint8Array {
  const w = new Writer(128)
  writeHeader(w, MessageKind.storedLog)
  if (log.participant === '') throw new EncodeError('a log of no participant')
  w.writeString(log.participant)
  writeLogFields(w, log)
  writeBase(w, log.base)
  return w.finish()
}

/** Decodes bytes from {@link encodeStoredLog}. Throws only {@link DecodeError}. */
export function decodeStoredLog (bytes: Uint8Array, limits?: Partial<DecodeLimits>): CreatorLog {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    expectKind(r, MessageKind.storedLog)
    const participant = r.readString(resolved.maxStringBytes)
    const since = r.readVarUint()
    const seq = r.readVarUint()
    if (seq < 1 || participant === '') throw new DecodeError('invalid', 'a stored log needs a participant and at least one event')
    const hash = r.readBytes(MAX_HASH_BYTES)
    const signature = r.readBytes(MAX_SIGNATURE_BYTES)
    const base = readBase(r)
    return { participant, since, seq, hash, ...(signature.length > 0 ? { signature } : {}), ...(base !== undefined ? { base } : {}) }
  })
}

// ---------------------------------------------------------------------------------------------
// What is hashed and signed

/**
 * The bytes a log's hash chain hashes for one event: the hash before it, then the event.
 * ```
 * bytes previous · varuint counter · string creator · u8 tag (1-3) · body
 * ```
 * The body is written as in a run, with a Join's or UnJoin's participant spelled out.
 * @throws {@link EncodeError} if the id is invalid or the user codec rejects the event
 */
export function encodeLogLink<E, S, O> (previous: Uint8Array, id: EventId, delta: SignedDelta<E, O>, codecs: FoldCodecs<E, S, O>): Uint8Array {
  const w = new Writer(64 + previous.length)
  w.writeBytes(previous)
  checkEventIdForEncoding(id)
  w.writeVarUint(id.counter)
  w.writeString(id.participant)
  switch (delta.kind) {
    case 'event': w.writeUint8(TAG_EVENT); codecs.event.encode(delta.event, w); break
    case 'join': w.writeUint8(TAG_JOIN); w.writeString(delta.participant); break
    case 'unjoin': w.writeUint8(TAG_UNJOIN); w.writeString(delta.participant); break
  }
  return w.finish()
}

/**
 * The bytes a creator signs for the head of its log:
 * ```
 * MAGIC · u8 0 · u8 7 · string origin · string creator · varuint since · varuint seq · bytes head
 * ```
 * Version byte 0 keeps signatures valid across format versions as long as this layout stays.
 * The origin binds the signature to one group of one cluster.
 */
export function encodeLogHead (origin: string, creator: Participant, since: number, seq: number, head: Uint8Array): Uint8Array {
  const w = new Writer(80 + head.length)
  w.writeRaw(MAGIC)
  w.writeUint8(0)
  w.writeUint8(LOG_HEAD_KIND)
  w.writeString(origin)
  w.writeString(creator)
  w.writeVarUint(since)
  w.writeVarUint(seq)
  w.writeBytes(head)
  return w.finish()
}

// ---------------------------------------------------------------------------------------------
// EventId

/** Encodes an event id on its own (kind 3). Throws {@link EncodeError} for an invalid id. */
export function encodeEventId (id: EventId): Uint8Array {
  const w = new Writer(32)
  writeHeader(w, MessageKind.eventId)
  writeEventId(w, id)
  return w.finish()
}

/** Decodes bytes from {@link encodeEventId} (any readable format: the layout never changed). Throws only {@link DecodeError}. */
export function decodeEventId (bytes: Uint8Array, limits?: Partial<DecodeLimits>): EventId {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    expectKind(r, MessageKind.eventId, [4, 5, 6])
    return readEventId(r, resolved)
  })
}
