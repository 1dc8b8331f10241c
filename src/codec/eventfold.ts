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
 *                 sender's, then others ascending) · varuint r, r × run (creators ascending) ·
 *                 [varuint a >= 1, a × (varuint run position ascending · indexed id)]: the
 *                 Joins that admitted the runs' creators, only when one is known
 * event record    varuint counter step · pidx creator · varuint since · u8 tag ·
 *                   1: E | 2: pidx | 3: pidx · varuint k, k × (varuint since · varuint seq) |
 *                   4: E · O · set errorAcks | 5: E · string · set errorAcks
 *                 · set acks
 * EventFold (1)   header · string origin · table · indexed id infimum · digest ·
 *                 set participants · S state · varuint n, n × event record (ids ascending,
 *                 above the infimum, steps from the previous id) · varuint m, m × log ·
 *                 admissions (only when one is known)
 * admissions      varuint a, a × (pidx participant ascending · indexed id of its Join) ·
 *                 varuint b, b × (varuint log position ascending · indexed id), a + b >= 1
 * log             pidx participant · varuint since (ascending by both) · varuint seq >= 1 ·
 *                 bytes hash · bytes signature · base (the last event before its outstanding
 *                 ones, or its last one; required when it has outstanding events that are not
 *                 its first, none when they are, optional when it has none)
 * EventId (3)     header · varuint counter · string participant (unless 0)
 * stored reach (8) header · varuint counter >= 1 · string participant · digest (count >= 1)
 * ```
 * Storage also keeps events (kind 5) and logs (kind 6, its admission last when known) on
 * their own; docs/PROTOCOL.md 4.5. The admissions came with protocol 11.0.0, after what
 * format 6 had, so that what was written before reads as it was.
 * A log's outstanding events are its last ones: their positions run up to its `seq` without a
 * gap, so they are not written. An empty origin in a Diff stands for the
 * one the {@link DiffContext} implies.
 *
 * @module
 */
import { Writer, type Reader, digestPooled, finishPooled, takeWriter } from './buffer.js'
import { decodeWithin, resolveDecodeLimits, type DecodeLimits } from './codec.js'
import { DecodeError, EncodeError } from './errors.js'
import { MAGIC, MessageKind, checkDecodedCounter, checkEventIdForEncoding, expectKind, readEventId, writeEventId, writeHeader } from './header.js'
import { ParticipantTableReader, ParticipantTableWriter } from './participant-table.js'
import {
  MAX_HASH_BYTES,
  MAX_SIGNATURE_BYTES,
  TAG_EVENT,
  TAG_FAILED,
  TAG_JOIN,
  TAG_THREW,
  TAG_UNJOIN,
  TAG_UNJOIN_QUORUM,
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
  type Admission,
  type CreatorLog,
  type Delta,
  type EventFoldSnapshot,
  type EventId,
  type LogPosition,
  type OutstandingEvent,
  type Participant,
  type SettledInfimum,
  type SignedDelta
} from '../eventfold/types.js'

export { MAGIC, FORMAT_VERSION, OLDEST_READABLE_FORMAT_VERSION, MAX_EVENT_COUNTER, MessageKind, FIRST_WIRE_KIND, writeHeader, readHeader, peekKind, peekVersion, writeEventId, readEventId } from './header.js'
export { FINGERPRINT_BYTES, TABLE_HASH_BYTES, ParticipantTableWriter, ParticipantTableReader, type DiffContext, type SharedTable } from './participant-table.js'
export { MAX_HASH_BYTES, MAX_SIGNATURE_BYTES, MAX_HEADS_PER_SIGNATURE, type FoldCodecs } from './fold-fields.js'
export { encodeDiff, decodeDiff } from './diff.js'

/** The kind byte of {@link encodeLogHead}'s bytes; never sent on its own. */
const LOG_HEAD_KIND = 7
/** The kind byte of {@link encodeHeadsRoot}'s bytes; never sent on its own. */
const HEADS_ROOT_KIND = 9

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
  for (const a of infimum.admissions ?? []) { table.add(a.participant); table.addEventId(a.join) }
  for (const l of logs) if (l.admittedBy !== undefined) table.addEventId(l.admittedBy)
  const counts = new Map<string, number>()
  for (const e of events) counts.set(logKey(e.id.participant, e.since), (counts.get(logKey(e.id.participant, e.since)) ?? 0) + 1)
  const w = takeWriter()
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
  writeAdmissions(w, table, infimum.participants, infimum.admissions ?? [], logs)
  return finishPooled(w)
}

/**
 * The admissions trailer of a fold (protocol 11): the infimum participants' Joins, then the
 * logs' (by position in the log list). Written only when one of them is known, so a fold
 * without any has the layout it had before.
 */
function writeAdmissions (w: Writer, table: ParticipantTableWriter, participants: readonly Participant[], admissions: readonly Admission[], logs: readonly CreatorLog[]): void {
  const admittedLogs = logs.flatMap((l, i) => l.admittedBy === undefined ? [] : [{ i, join: l.admittedBy }])
  if (admissions.length === 0 && admittedLogs.length === 0) return
  w.writeVarUint(admissions.length)
  let last = -1
  for (const a of admissions) {
    const index = table.indexOf(a.participant)
    if (index <= last || !participants.includes(a.participant)) throw new EncodeError('admissions are not of infimum participants, ascending and one each')
    checkEventIdForEncoding(a.join)
    table.writeParticipant(w, a.participant)
    table.writeEventId(w, a.join)
    last = index
  }
  w.writeVarUint(admittedLogs.length)
  for (const { i, join } of admittedLogs) {
    checkEventIdForEncoding(join)
    w.writeVarUint(i)
    table.writeEventId(w, join)
  }
}

/** Reads what {@link writeAdmissions} wrote, if anything is left to read. */
function readAdmissions (r: Reader, table: ParticipantTableReader, participants: readonly Participant[], logs: CreatorLog[], limits: DecodeLimits): Admission[] {
  if (r.remaining === 0) return []
  const a = r.readCount(Math.min(limits.maxItems, participants.length), 2, 'admissions')
  const admissions: Admission[] = []
  let last = -1
  for (let i = 0; i < a; i++) {
    const index = table.readIndex(r)
    const participant = table.participants[index]!
    if (index <= last || !participants.includes(participant)) throw new DecodeError('invalid', 'admissions are not of infimum participants, ascending and one each')
    admissions.push({ participant, join: table.readEventId(r) })
    last = index
  }
  const b = r.readCount(Math.min(limits.maxItems, logs.length), 2, 'log admissions')
  if (a === 0 && b === 0) throw new DecodeError('invalid', 'an empty admissions trailer')
  last = -1
  for (let i = 0; i < b; i++) {
    const at = r.readVarUint()
    if (at <= last || at >= logs.length) throw new DecodeError('invalid', 'log admissions are not ascending by log')
    logs[at] = { ...logs[at]!, admittedBy: table.readEventId(r) }
    last = at
  }
  return admissions
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
      checkDecodedCounter(counter)
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
    const admissions = readAdmissions(r, table, participants, logs, resolved)
    table.expectAllUsed()
    const seqOf = new Map(logs.map(l => [logKey(l.participant, l.since), l.seq - (counts.get(logKey(l.participant, l.since)) ?? 0)]))
    const events: Array<OutstandingEvent<E, O>> = read.map(e => {
      const key = logKey(e.id.participant, e.since)
      const before = seqOf.get(key)
      if (before === undefined) throw new DecodeError('invalid', `outstanding events of ${e.id.participant} in a log it does not list`)
      seqOf.set(key, before + 1)
      return withStandIn({ id: e.id, since: e.since, seq: before + 1, delta: e.delta, acks: e.acks }, e.standIn)
    })
    return { origin, infimum: { id, digest, participants, ...(admissions.length > 0 ? { admissions } : {}), state }, logs, events }
  })
}

// ---------------------------------------------------------------------------------------------
// Records a peer's storage keeps

/** Encodes one outstanding event as storage keeps it (kind 5): its id, position, body and acknowledgements. */
export function encodeStoredEvent<E, S, O> (e: OutstandingEvent<E, O>, codecs: FoldCodecs<E, S, O>): Uint8Array {
  const table = new ParticipantTableWriter()
  collectEvent(table, e)
  const w = takeWriter()
  writeHeader(w, MessageKind.storedEvent)
  table.write(w)
  checkEventIdForEncoding(e.id)
  if (e.id.counter === 0 || !(Number.isSafeInteger(e.seq) && e.seq >= 1)) throw new EncodeError('a stored event needs a real id and a position')
  table.writeEventId(w, e.id)
  w.writeVarUint(e.seq)
  writeRecordBody(w, table, codecs, e)
  return finishPooled(w)
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
  const w = takeWriter()
  writeHeader(w, MessageKind.storedLog)
  if (log.participant === '') throw new EncodeError('a log of no participant')
  w.writeString(log.participant)
  writeLogFields(w, log)
  writeBase(w, log.base)
  // Its admission last, when known (protocol 11), so a log stored before reads as it did.
  if (log.admittedBy !== undefined) writeEventId(w, log.admittedBy)
  return finishPooled(w)
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
    const admittedBy = r.remaining > 0 ? readEventId(r, resolved) : undefined
    return { participant, since, seq, hash, ...(signature.length > 0 ? { signature } : {}), ...(admittedBy !== undefined ? { admittedBy } : {}), ...(base !== undefined ? { base } : {}) }
  })
}

/**
 * Encodes where a group's settled records reach, as storage keeps it (kind 8): the infimum id
 * and digest that folding them onto the checkpoint gives.
 */
export function encodeStoredReach (reach: SettledInfimum): Uint8Array {
  if (reach.id.counter === 0 || reach.digest.count === 0) throw new EncodeError('settled records reach a real event id, with at least one event folded')
  const w = takeWriter()
  writeHeader(w, MessageKind.storedReach)
  writeEventId(w, reach.id)
  writeDigest(w, reach.digest)
  return finishPooled(w)
}

/** Decodes bytes from {@link encodeStoredReach}. Throws only {@link DecodeError}. */
export function decodeStoredReach (bytes: Uint8Array, limits?: Partial<DecodeLimits>): SettledInfimum {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    expectKind(r, MessageKind.storedReach)
    const id = readEventId(r, resolved)
    const digest = readDigest(r)
    if (id.counter === 0 || digest.count === 0) throw new DecodeError('invalid', 'settled records reach a real event id, with at least one event folded')
    return { id, digest }
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
  const w = takeWriter()
  writeLogLink(w, previous, id, delta, codecs)
  return finishPooled(w)
}

/** `digest` of the bytes {@link encodeLogLink} returns, handed a view instead of a copy. */
export function digestLogLink<E, S, O, T> (previous: Uint8Array, id: EventId, delta: SignedDelta<E, O>, codecs: FoldCodecs<E, S, O>, digest: (bytes: Uint8Array) => T): T {
  const w = takeWriter()
  writeLogLink(w, previous, id, delta, codecs)
  return digestPooled(w, digest)
}

function writeLogLink<E, S, O> (w: Writer, previous: Uint8Array, id: EventId, delta: SignedDelta<E, O>, codecs: FoldCodecs<E, S, O>): void {
  w.writeBytes(previous)
  checkEventIdForEncoding(id)
  w.writeVarUint(id.counter)
  w.writeString(id.participant)
  switch (delta.kind) {
    case 'event': w.writeUint8(TAG_EVENT); codecs.event.encode(delta.event, w); break
    case 'join': w.writeUint8(TAG_JOIN); w.writeString(delta.participant); break
    case 'unjoin': w.writeUint8(delta.quorum === true ? TAG_UNJOIN_QUORUM : TAG_UNJOIN); w.writeString(delta.participant); break
  }
}

/**
 * The bytes a creator signs for the head of its log:
 * ```
 * MAGIC · u8 0 · u8 7 · string origin · string creator · varuint since · varuint seq · bytes head
 *   [· id admittedBy]
 * ```
 * Version byte 0 keeps signatures valid across format versions as long as this layout stays.
 * The origin binds the signature to one group of one cluster; `admittedBy`, the Join that
 * admitted the creator where it writes the log (when known: protocol 12), binds it to one
 * incarnation, so that no relayer can pass the log off as another's.
 */
export function encodeLogHead (origin: string, creator: Participant, since: number, seq: number, head: Uint8Array, admittedBy?: EventId): Uint8Array {
  const w = takeWriter()
  w.writeRaw(MAGIC)
  w.writeUint8(0)
  w.writeUint8(LOG_HEAD_KIND)
  w.writeString(origin)
  w.writeString(creator)
  w.writeVarUint(since)
  w.writeVarUint(seq)
  w.writeBytes(head)
  if (admittedBy !== undefined) writeEventId(w, admittedBy)
  return finishPooled(w)
}

/**
 * The bytes a creator signs for the heads of several logs at once (of several groups, in one
 * flush): the root of a hash tree over the heads' own bytes ({@link encodeLogHead}):
 * ```
 * MAGIC · u8 0 · u8 9 · u8 count · bytes root
 * ```
 * A leaf is SHA-256 of `00` and a head's bytes, an inner node SHA-256 of `01` and its two
 * children; a node without a sibling moves up unchanged (PROTOCOL.md 4.7).
 */
export function encodeHeadsRoot (count: number, root: Uint8Array): Uint8Array {
  const w = takeWriter()
  w.writeRaw(MAGIC)
  w.writeUint8(0)
  w.writeUint8(HEADS_ROOT_KIND)
  w.writeUint8(count)
  w.writeBytes(root)
  return finishPooled(w)
}

// ---------------------------------------------------------------------------------------------
// EventId

/** Encodes an event id on its own (kind 3). Throws {@link EncodeError} for an invalid id. */
export function encodeEventId (id: EventId): Uint8Array {
  const w = takeWriter()
  writeHeader(w, MessageKind.eventId)
  writeEventId(w, id)
  return finishPooled(w)
}

/** Decodes bytes from {@link encodeEventId} (any readable format: the layout never changed). Throws only {@link DecodeError}. */
export function decodeEventId (bytes: Uint8Array, limits?: Partial<DecodeLimits>): EventId {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    expectKind(r, MessageKind.eventId, [4, 5, 6])
    return readEventId(r, resolved)
  })
}
