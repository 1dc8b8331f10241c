/**
 * Specification of the binary codec: exact round trips, deterministic and canonical bytes,
 * bounded decoding that throws nothing but DecodeError, and golden vectors that pin format
 * versions 4 and 5 (still read, to migrate what was stored) and 6 (written). (The peer protocols' messages, which carry these
 * encodings, are specified by peer-protocol.test.ts.)
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { digestLogLink } from '../src/codec/eventfold.js'
import {
  DecodeError,
  EncodeError,
  Reader,
  Writer,
  jsonCodec,
  encodeWith,
  decodeWith,
  encodeEventId,
  decodeEventId,
  encodeEventFold,
  decodeEventFold,
  encodeDiff,
  decodeDiff,
  writeHeader,
  MessageKind,
  FORMAT_VERSION,
  OLDEST_READABLE_FORMAT_VERSION,
  MAX_EVENT_COUNTER,
  DEFAULT_DECODE_LIMITS,
  type Codec,
  type DecodeErrorCode,
  type FoldCodecs,
  type JsonValue,
  FINGERPRINT_BYTES,
  TABLE_HASH_BYTES,
  MAX_SIGNATURE_BYTES,
  MAX_HASH_BYTES,
  encodeLogHead,
  encodeLogLink,
  encodeStoredEvent,
  decodeStoredEvent,
  encodeStoredLog,
  decodeStoredLog,
  encodeStoredReach,
  decodeStoredReach,
  decodeLegacyEventFold,
  decodeLegacyDiff,
  migrateEventFold,
  varUintSize,
  type DiffContext
} from '../src/codec/index.js'
import {
  BOTTOM,
  compareEventIds,
  eventIdKey,
  type Acknowledgement,
  type CreatorLog,
  type Delta,
  type Diff,
  type EventFoldSnapshot,
  type EventId,
  type FailureReport,
  type OutstandingEvent,
  type SignedDelta
} from '../src/eventfold/types.js'
import { propertyParameters } from './support/property.js'
import { goldenDiffs, goldenEventFolds, goldenEventIds, goldenJson, goldenStoredEvents, goldenStoredLogs, goldenStoredReaches, legacyDiffs, legacyEventFolds, legacyV5Diffs, legacyV5EventFolds } from './fixtures/codec-golden-values.js'

type Snapshot = EventFoldSnapshot<JsonValue, JsonValue, JsonValue>
type JsonDiff = Diff<JsonValue, JsonValue>

const codecs: FoldCodecs<JsonValue, JsonValue, JsonValue> = { event: jsonCodec, state: jsonCodec, output: jsonCodec }

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

/** Runs `decode`; fails the test if it throws anything but a DecodeError. */
function decodeOutcome<T> (decode: () => T): { ok: true, value: T } | { ok: false, code: DecodeErrorCode } {
  try {
    return { ok: true, value: decode() }
  } catch (err) {
    if (!(err instanceof DecodeError)) assert.fail(`decoder threw a non-DecodeError: ${String(err)}`)
    assert.equal(err.name, 'DecodeError')
    return { ok: false, code: err.code }
  }
}

function expectDecodeError (code: DecodeErrorCode, decode: () => unknown): void {
  const outcome = decodeOutcome(decode)
  assert.equal(outcome.ok, false, 'decode should have failed')
  if (!outcome.ok) assert.equal(outcome.code, code)
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** fc.record, but always with Object.prototype: decoded values are plain objects, and deepStrictEqual compares prototypes. */
function record<T> (model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true })
}

const stringArb = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  // Long enough to leave the writer's short-string path and shrink a reserved length prefix.
  fc.string({ unit: 'binary', minLength: 40, maxLength: 120 }),
  fc.constantFrom('\uFEFFbom', 'é', '🌍', '\u0000', 'a'.repeat(43), 'é'.repeat(64))
)

const keyArb = fc.oneof(stringArb, fc.constantFrom('__proto__', 'constructor', 'toString', '', '10', '9', 'a', 'b'))

const leafArb: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(-0, Number.NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 0.1, 63, 64, -64, -65),
  stringArb,
  fc.bigInt(),
  fc.bigInt({ min: -(2n ** 300n), max: 2n ** 300n }),
  fc.uint8Array({ maxLength: 40 })
)

const jsonArb: fc.Arbitrary<JsonValue> = fc.letrec<{ value: JsonValue, array: JsonValue, object: JsonValue }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leafArb, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  object: fc.dictionary(keyArb, tie('value'), { maxKeys: 5, noNullPrototype: true })
})).value

const participantArb = fc.oneof(
  fc.constantFrom('12D3KooWAlice', '12D3KooWBob', 'carol', 'Ω-dave', 'e'),
  fc.string({ minLength: 1, maxLength: 8 })
)

// Counters up to the largest a decoder takes (2^52; past it, "... past 2^52 are refused" below).
const counterArb = fc.oneof(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: MAX_EVENT_COUNTER }))

function uniqueSortedEvents<T extends { id: EventId }> (events: T[], infimumId: EventId): T[] {
  const byKey = new Map<string, T>()
  for (const event of events) byKey.set(eventIdKey(event.id), event)
  return [...byKey.values()]
    .filter((event) => compareEventIds(event.id, infimumId) > 0)
    .sort((a, b) => compareEventIds(a.id, b.id))
}

interface FoldParts {
  pool: string[]
  member: fc.Arbitrary<string>
  subset: fc.Arbitrary<string[]>
  id: fc.Arbitrary<EventId>
  infimumId: fc.Arbitrary<EventId>
  delta: fc.Arbitrary<Delta<JsonValue, JsonValue>>
  logged: fc.Arbitrary<SignedDelta<JsonValue, JsonValue>>
}

function foldParts (poolArb: fc.Arbitrary<string[]>): fc.Arbitrary<FoldParts> {
  return poolArb.map((pool) => {
    const sorted = [...pool].sort()
    const subset = fc.subarray(sorted)
    const member = fc.constantFrom(...sorted)
    const id = record({ counter: counterArb, participant: member })
    const logged = fc.oneof(
      record({ kind: fc.constant('event' as const), event: jsonArb }),
      record({ kind: fc.constant('join' as const), participant: member }),
      record({ kind: fc.constant('unjoin' as const), participant: member })
    )
    const delta = fc.oneof(
      logged,
      record({ kind: fc.constant('error' as const), event: jsonArb, output: jsonArb, errorAcks: subset }),
      record({ kind: fc.constant('error' as const), event: jsonArb, thrown: stringArb.filter((t) => t.isWellFormed()), errorAcks: subset })
    )
    return { pool: sorted, member, subset, id, infimumId: fc.oneof(fc.constant(BOTTOM), id), delta, logged }
  })
}

const poolArb = fc.uniqueArray(participantArb, { minLength: 1, maxLength: 6 })
/** A signature (never empty: an empty one is none). */
const signatureArb = fc.option(fc.uint8Array({ minLength: 1, maxLength: MAX_SIGNATURE_BYTES }), { nil: undefined })
const hashArb = fc.uint8Array({ maxLength: MAX_HASH_BYTES })
const baseArb = record({ counter: counterArb, hash: hashArb })
const positionArb = record({ since: fc.nat(100), seq: fc.integer({ min: 1, max: 1_000_000 }) })
const digestArb = fc.oneof(
  record({ count: fc.maxSafeNat(), hash: fc.maxSafeNat() }),
  fc.tuple(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.maxSafeNat(), fc.double({ min: 0, max: 1, noNaN: true }))
    .map(([count, hash, share]) => ({ count, hash, throws: Math.max(1, Math.floor(count * share)) }))
)

const byParticipantThenSince = (x: { participant: string, since: number }, y: { participant: string, since: number }): number =>
  x.participant < y.participant ? -1 : x.participant > y.participant ? 1 : x.since - y.since

function uniqueBy<T> (items: T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>()
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item)
  return [...seen.values()]
}

/** Keeps only what a value carries when present: an absent optional field is left out, as decoding leaves it. */
function present<T extends object> (value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

const snapshotArb: fc.Arbitrary<Snapshot> = foldParts(poolArb).chain((parts) =>
  record({
    origin: stringArb,
    infimumId: parts.infimumId,
    digest: digestArb,
    participants: parts.subset,
    state: jsonArb,
    events: fc.array(record({ id: parts.id, delta: parts.delta, acks: parts.subset, standIn: fc.array(positionArb, { maxLength: 3 }) }), { maxLength: 10 }),
    logs: fc.array(record({ participant: parts.member, since: fc.nat(100), before: fc.nat(3), hash: hashArb, signature: signatureArb, base: baseArb, withBase: fc.boolean() }), { maxLength: 8 })
  }).map(({ origin, infimumId, digest, participants, state, events, logs }): Snapshot => {
    // Each creator's outstanding events are the last ones of one log of its, named by the first of them.
    const sorted = uniqueSortedEvents(events, infimumId)
    const heads = new Map<string, (typeof logs)[number]>()
    for (const l of logs) if (!heads.has(l.participant)) heads.set(l.participant, l)
    const logOf = new Map<string, { since: number, count: number, before: number }>()
    const outstanding = sorted.map((e) => {
      let log = logOf.get(e.id.participant)
      if (log === undefined) { log = { since: e.id.counter, count: 0, before: heads.get(e.id.participant)?.before ?? 0 }; logOf.set(e.id.participant, log) }
      log.count++
      const standIn = uniqueBy(e.standIn, p => String(p.since)).sort((x, y) => x.since - y.since)
      const event: OutstandingEvent<JsonValue, JsonValue> = { id: e.id, since: log.since, seq: log.before + log.count, delta: e.delta, acks: e.acks }
      return e.delta.kind === 'unjoin' && standIn.length > 0 ? { ...event, standIn } : event
    })
    const all: CreatorLog[] = []
    for (const [participant, log] of logOf) {
      const l = heads.get(participant)
      all.push(present({ participant, since: log.since, seq: log.before + log.count, hash: l?.hash ?? new Uint8Array(0), signature: l?.signature, base: log.before > 0 ? l!.base : undefined }))
    }
    // Logs with nothing outstanding: a base or not.
    for (const l of logs) {
      if (logOf.get(l.participant)?.since === l.since) continue
      all.push(present({ participant: l.participant, since: l.since, seq: l.before + 1, hash: l.hash, signature: l.signature, base: l.withBase ? l.base : undefined }))
    }
    return { origin, infimum: { id: infimumId, digest, participants, state }, logs: uniqueBy(all, l => `${l.participant}:${l.since}`).sort(byParticipantThenSince), events: outstanding }
  })
)

function acknowledgementArb (parts: FoldParts): fc.Arbitrary<Acknowledgement<JsonValue>> {
  return record({
    participant: parts.member,
    infimumId: parts.infimumId,
    infimumDigest: digestArb,
    joined: fc.boolean(),
    log: fc.nat(100),
    unsettled: fc.nat(100),
    holds: fc.array(record({ participant: parts.member, since: fc.nat(100), seq: fc.integer({ min: 1, max: 1_000_000 }) }), { maxLength: 5 }),
    failures: fc.array(fc.oneof(record({ id: parts.id, output: jsonArb }), record({ id: parts.id, thrown: stringArb.filter((t) => t.isWellFormed()) })), { maxLength: 3 }),
    departing: fc.array(record({ unjoin: parts.id, since: fc.nat(100), seq: fc.integer({ min: 1, max: 1_000_000 }) }), { maxLength: 3 })
  }).map((a) => ({
    ...a,
    unsettled: a.log === 0 ? 0 : a.unsettled,
    holds: uniqueBy(a.holds, h => `${h.participant}:${h.since}`).sort(byParticipantThenSince),
    failures: uniqueBy(a.failures, f => eventIdKey(f.id)).sort((x, y) => compareEventIds(x.id, y.id)) as Array<FailureReport<JsonValue>>,
    departing: uniqueBy(a.departing, d => `${eventIdKey(d.unjoin)}/${d.since}`).sort((x, y) => compareEventIds(x.unjoin, y.unjoin) || x.since - y.since)
  }))
}

const diffArb: fc.Arbitrary<JsonDiff> = foldParts(poolArb).chain((parts) =>
  record({
    origin: stringArb,
    acknowledgements: fc.array(acknowledgementArb(parts), { maxLength: 4 }),
    runs: fc.array(record({
      creator: parts.member,
      since: fc.nat(100),
      first: fc.integer({ min: 1, max: 1000 }),
      events: fc.uniqueArray(record({ counter: counterArb, delta: parts.logged }), { minLength: 1, maxLength: 4, selector: e => e.counter }),
      signature: signatureArb,
      base: fc.option(baseArb, { nil: undefined })
    }), { maxLength: 4 })
  }).map(({ origin, acknowledgements, runs }): JsonDiff => {
    const unique = uniqueBy(acknowledgements, a => a.participant)
    const [sender, ...relayed] = unique
    return {
      origin,
      acknowledgements: sender === undefined ? [] : [sender, ...relayed.sort((x, y) => x.participant < y.participant ? -1 : 1)],
      runs: uniqueBy(runs, r => `${r.creator}:${r.since}`)
        .map(r => present({ ...r, events: [...r.events].sort((x, y) => x.counter - y.counter), base: r.first > 1 ? r.base : undefined }))
        .sort((x, y) => byParticipantThenSince({ participant: x.creator, since: x.since }, { participant: y.creator, since: y.since }))
    }
  })
)

const eventIdArb: fc.Arbitrary<EventId> = fc.oneof(
  fc.constant(BOTTOM),
  record({ counter: counterArb, participant: participantArb })
)

/** One edit of a byte string; positions are taken modulo the length. */
type Mutation =
  | { op: 'flip', at: number, bit: number }
  | { op: 'set', at: number, byte: number }
  | { op: 'insert', at: number, byte: number }
  | { op: 'delete', at: number }
  | { op: 'truncate', at: number }

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 2, 3, 4) }),
  record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  record({ op: fc.constant('delete' as const), at: fc.nat() }),
  record({ op: fc.constant('truncate' as const), at: fc.nat() })
)

function mutate (input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = Array.from(input)
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.at % bytes.length
    switch (m.op) {
      case 'flip': if (bytes.length > 0) bytes[at] = (bytes[at] as number) ^ (1 << m.bit); break
      case 'set': if (bytes.length > 0) bytes[at] = m.byte; break
      case 'insert': bytes.splice(at, 0, m.byte); break
      case 'delete': bytes.splice(at, 1); break
      case 'truncate': bytes = bytes.slice(0, at); break
    }
  }
  return Uint8Array.from(bytes)
}

const headerOf = (kind: number): Uint8Array => {
  const w = new Writer()
  writeHeader(w, kind)
  return w.finish()
}

/**
 * Each decoder with its encoder, for the robustness properties: whatever the bytes, decode
 * throws only DecodeError, and bytes it accepts re-encode to themselves (canonical form).
 */
const decoders: Array<{ name: string, valid: fc.Arbitrary<Uint8Array>, header: Uint8Array, roundTrip: (bytes: Uint8Array) => Uint8Array }> = [
  {
    name: 'jsonCodec',
    valid: jsonArb.map((v) => encodeWith(jsonCodec, v)),
    header: new Uint8Array(0),
    roundTrip: (bytes) => encodeWith(jsonCodec, decodeWith(jsonCodec, bytes))
  },
  {
    name: 'EventId',
    valid: eventIdArb.map(encodeEventId),
    header: headerOf(MessageKind.eventId),
    roundTrip: (bytes) => encodeEventId(decodeEventId(bytes))
  },
  {
    name: 'EventFold',
    valid: snapshotArb.map((s) => encodeEventFold(s, codecs)),
    header: headerOf(MessageKind.eventFold),
    roundTrip: (bytes) => encodeEventFold(decodeEventFold(bytes, codecs), codecs)
  },
  {
    name: 'Diff',
    valid: diffArb.map((d) => encodeDiff(d, codecs)),
    header: headerOf(MessageKind.diff),
    roundTrip: (bytes) => encodeDiff(decodeDiff(bytes, codecs), codecs)
  },
  {
    name: 'stored event',
    valid: snapshotArb.filter(s => s.events.length > 0).map((s) => encodeStoredEvent(s.events[0]!, codecs)),
    header: headerOf(MessageKind.storedEvent),
    roundTrip: (bytes) => encodeStoredEvent(decodeStoredEvent(bytes, codecs), codecs)
  },
  {
    name: 'stored log',
    valid: snapshotArb.filter(s => s.logs.length > 0).map((s) => encodeStoredLog(s.logs[0]!)),
    header: headerOf(MessageKind.storedLog),
    roundTrip: (bytes) => encodeStoredLog(decodeStoredLog(bytes))
  },
  {
    name: 'stored reach',
    valid: snapshotArb.filter(s => s.infimum.id.counter > 0 && s.infimum.digest.count > 0).map((s) => encodeStoredReach({ id: s.infimum.id, digest: s.infimum.digest })),
    header: headerOf(MessageKind.storedReach),
    roundTrip: (bytes) => encodeStoredReach(decodeStoredReach(bytes))
  }
]

/**
 * Whatever `bytes` are, decoding throws only DecodeError, and bytes it accepts are the
 * canonical encoding of their value. Bytes of an older format still read (an event id of
 * format 4 or 5) must re-encode to bytes of this format of the same value, which decode to
 * it again.
 */
function checkRobust (roundTrip: (bytes: Uint8Array) => Uint8Array, bytes: Uint8Array, headed: boolean): void {
  const outcome = decodeOutcome(() => roundTrip(bytes))
  if (!outcome.ok) return
  if (headed && bytes[3]! >= OLDEST_READABLE_FORMAT_VERSION && bytes[3]! < FORMAT_VERSION) {
    assert.equal(outcome.value[3], FORMAT_VERSION)
    assert.equal(hex(roundTrip(outcome.value)), hex(outcome.value), 'an older value re-encodes to a stable encoding of this format')
    return
  }
  assert.equal(hex(outcome.value), hex(bytes), 'accepted bytes must be the canonical encoding of their value')
}

// ---------------------------------------------------------------------------------------------

describe('Writer and Reader', () => {
  test('varuints round-trip at every 7-bit boundary up to 2^53 - 1', () => {
    const values = [0, 1, 127, 128, 255, 16383, 16384, 2 ** 21, 2 ** 28 - 1, 2 ** 31, 2 ** 32, 2 ** 35, 2 ** 49, 2 ** 52, Number.MAX_SAFE_INTEGER]
    const w = new Writer(1)
    for (const v of values) w.writeVarUint(v)
    const r = new Reader(w.finish())
    for (const v of values) assert.equal(r.readVarUint(), v)
    r.expectEnd()
  })

  test('any safe integer round-trips as a zigzag varint, and any non-negative one as a varuint', () => {
    fc.assert(fc.property(fc.maxSafeInteger(), fc.maxSafeNat(), (i, n) => {
      const w = new Writer(1)
      w.writeVarInt(i)
      w.writeVarUint(n)
      const r = new Reader(w.finish())
      assert.equal(r.readVarInt(), i)
      assert.equal(r.readVarUint(), n)
      r.expectEnd()
    }), propertyParameters('varint round trip', 500))
  })

  test('zigzag maps 0, -1, 1, -2 to 0, 1, 2, 3 like protobuf sint64', () => {
    const w = new Writer()
    for (const n of [0, -1, 1, -2, -64, 63, 64]) w.writeVarInt(n)
    assert.equal(hex(w.finish()), '00010203' + '7f' + '7e' + '8001')
  })

  test('writing a number a varint cannot carry exactly is an EncodeError', () => {
    const w = new Writer()
    for (const bad of [-1, 1.5, 2 ** 53, Number.NaN, Infinity]) assert.throws(() => w.writeVarUint(bad), EncodeError)
    for (const bad of [2 ** 53, -(2 ** 53), 0.5]) assert.throws(() => w.writeVarInt(bad), EncodeError)
    assert.throws(() => w.writeUint8(256), EncodeError)
  })

  test('a varuint above 2^53 - 1, longer than 8 bytes, or overlong is rejected', () => {
    expectDecodeError('invalid', () => new Reader(fromHex('80808080808080 10'.replace(' ', ''))).readVarUint())
    expectDecodeError('invalid', () => new Reader(fromHex('ffffffffffffffff01')).readVarUint())
    expectDecodeError('invalid', () => new Reader(fromHex('ffffffffffffffffffff01')).readVarUint())
    expectDecodeError('invalid', () => new Reader(fromHex('8000')).readVarUint())
    expectDecodeError('truncated', () => new Reader(fromHex('80')).readVarUint())
    expectDecodeError('truncated', () => new Reader(new Uint8Array(0)).readUint8())
  })

  test('every NaN is written as the canonical NaN, and only that NaN is read', () => {
    const w = new Writer()
    w.writeFloat64(-Number.NaN)
    w.writeFloat64(0 / 0)
    assert.equal(hex(w.finish()), '000000000000f87f'.repeat(2))
    expectDecodeError('invalid', () => new Reader(fromHex('010000000000f87f')).readFloat64())
    expectDecodeError('invalid', () => new Reader(fromHex('000000000000f8ff')).readFloat64())
  })

  test('a string with a lone surrogate cannot be encoded (UTF-8 would corrupt it)', () => {
    assert.throws(() => new Writer().writeString('\uD800'), EncodeError)
    assert.throws(() => new Writer().writeString('x'.repeat(50) + '\uDC00'), EncodeError)
  })

  test('invalid UTF-8 is a DecodeError, and a leading BOM is kept', () => {
    expectDecodeError('invalid', () => new Reader(fromHex('02c328')).readString())
    expectDecodeError('invalid', () => new Reader(fromHex('02c0af')).readString())
    const w = new Writer()
    w.writeString('\uFEFFx')
    assert.equal(new Reader(w.finish()).readString(), '\uFEFFx')
  })

  test('a length beyond the limit is a limit error, beyond the input a truncation', () => {
    expectDecodeError('limit', () => new Reader(fromHex('0a616263')).readString(5))
    expectDecodeError('truncated', () => new Reader(fromHex('0a616263')).readString())
    expectDecodeError('truncated', () => new Reader(fromHex('0a616263')).readBytes())
  })

  test('strings of any length round-trip through the one-byte and multi-byte length paths', () => {
    const anyString = fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme-ascii', maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 3 }))
    fc.assert(fc.property(fc.array(anyString, { maxLength: 30 }), (strings) => {
      // A tiny initial capacity makes the buffer grow in the middle of string writes.
      const w = new Writer(1)
      for (const s of strings) w.writeString(s)
      const r = new Reader(w.finish())
      for (const s of strings) assert.equal(r.readString(), s)
      r.expectEnd()
    }), propertyParameters('string round trip', 300))
  })

  test('a non-ASCII string written when the buffer is nearly full keeps its bytes', () => {
    // Regression: the length prefix used to be written with a capacity check that could grow
    // the buffer and lose the UTF-8 bytes already encoded past the write position.
    for (let filler = 0; filler < 40; filler++) {
      const w = new Writer(16)
      w.writeRaw(new Uint8Array(filler))
      w.writeString('ꡪ')
      const r = new Reader(w.finish())
      r.readRaw(filler)
      assert.equal(r.readString(), 'ꡪ')
    }
  })

  test('byte strings are read as copies, not views of the input', () => {
    const input = fromHex('03010203')
    const bytes = new Reader(input).readBytes()
    input[1] = 9
    assert.deepEqual(bytes, Uint8Array.of(1, 2, 3))
  })

  test('pooled writers: nested encodings, a codec that throws, and large values keep every result intact', () => {
    // A codec that encodes another value inside its own encode takes a second pooled writer.
    const inner: Codec<string> = { encode: (v, w) => { w.writeBytes(encodeWith(jsonCodec, v)) }, decode: (r) => decodeWith(jsonCodec, r.readBytes()) as string }
    const throwing: Codec<number> = { encode: (v, w) => { w.writeVarUint(v); throw new EncodeError('no') }, decode: (r) => r.readVarUint() }
    const results: Array<[unknown, Uint8Array]> = []
    for (let i = 0; i < 40; i++) {
      const value = i % 3 === 0 ? 'x'.repeat(i * 5000) : `v${i}`
      results.push([value, encodeWith(inner, value)])
      assert.throws(() => encodeWith(throwing, i), EncodeError)
    }
    // Every earlier result is a copy the pool's later reuse did not touch.
    for (const [value, bytes] of results) assert.equal(decodeWith(inner, bytes), value)
  })
})

describe('jsonCodec', () => {
  test('any JSON-like value round-trips exactly', () => {
    fc.assert(fc.property(jsonArb, (value) => {
      assert.deepStrictEqual(decodeWith(jsonCodec, encodeWith(jsonCodec, value)), value)
    }), propertyParameters('jsonCodec round trip', 300))
  })

  test('-0, NaN, infinities, bigints and unsafe integers round-trip exactly', () => {
    const values: JsonValue[] = [-0, Number.NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 60), 1e308, 5e-324, 0n, -1n, 2n ** 64n, -(2n ** 521n - 1n)]
    for (const value of values) assert.deepStrictEqual(decodeWith(jsonCodec, encodeWith(jsonCodec, value)), value)
    assert.ok(Object.is(decodeWith(jsonCodec, encodeWith(jsonCodec, -0)), -0))
  })

  test('a Uint8Array inside an object survives a round trip as a Uint8Array', () => {
    const value = { a: { b: [Uint8Array.of(1, 2, 3)] } }
    const decoded = decodeWith(jsonCodec, encodeWith(jsonCodec, value)) as { a: { b: Uint8Array[] } }
    assert.ok(decoded.a.b[0] instanceof Uint8Array)
    assert.deepStrictEqual(decoded, value)
  })

  test('unicode strings and keys round-trip, including a BOM and astral characters', () => {
    const value = { '🌍': 'héllo', '\uFEFF': '\uFEFFstart', ['Ω'.repeat(50)]: 'é'.repeat(100) }
    assert.deepStrictEqual(decodeWith(jsonCodec, encodeWith(jsonCodec, value)), value)
  })

  test('a "__proto__" key stays an own property and does not change the prototype', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}') as JsonValue
    const decoded = decodeWith(jsonCodec, encodeWith(jsonCodec, value)) as Record<string, JsonValue>
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype)
    assert.deepStrictEqual(Object.keys(decoded), ['__proto__', 'x'])
    assert.deepStrictEqual(decoded, value)
  })

  test('object key insertion order does not change the bytes', () => {
    fc.assert(fc.property(fc.dictionary(keyArb, jsonArb, { maxKeys: 8, noNullPrototype: true }), (dict) => {
      const reversed: Record<string, JsonValue> = {}
      for (const key of Object.keys(dict).reverse()) {
        Object.defineProperty(reversed, key, { value: dict[key], enumerable: true, writable: true, configurable: true })
      }
      assert.equal(hex(encodeWith(jsonCodec, reversed)), hex(encodeWith(jsonCodec, dict)))
    }), propertyParameters('jsonCodec key order', 200))
  })

  test('values outside JsonValue are an EncodeError', () => {
    class Point { x = 1 }
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const bad: unknown[] = [() => 1, Symbol('s'), undefined, new Map(), new Set(), new Date(0), new Point(), new Int8Array(2), { a: undefined }, [1, , 3], cyclic, '\uDBFF']
    for (const value of bad) {
      assert.throws(() => encodeWith(jsonCodec, value as JsonValue), (err: unknown) => err instanceof EncodeError && err.name === 'EncodeError' && err instanceof TypeError)
    }
  })

  test('a null-prototype object encodes like a plain one', () => {
    const bare = Object.assign(Object.create(null) as Record<string, JsonValue>, { a: 1 })
    assert.equal(hex(encodeWith(jsonCodec, bare)), hex(encodeWith(jsonCodec, { a: 1 })))
  })

  test('non-canonical encodings are rejected', () => {
    expectDecodeError('invalid', () => decodeWith(jsonCodec, fromHex('04000000000000f03f'))) // 1 as a float64
    expectDecodeError('invalid', () => decodeWith(jsonCodec, fromHex('038000'))) // overlong varint
    expectDecodeError('invalid', () => decodeWith(jsonCodec, fromHex('080201620300016103 00'.replace(' ', '')))) // keys b, a
    expectDecodeError('invalid', () => decodeWith(jsonCodec, fromHex('08020161030001610300'))) // duplicate key
    expectDecodeError('invalid', () => decodeWith(jsonCodec, fromHex('09020001'))) // bigint leading zero
    expectDecodeError('invalid', () => decodeWith(jsonCodec, fromHex('0a00'))) // -0n
    expectDecodeError('bad-tag', () => decodeWith(jsonCodec, fromHex('0b')))
    expectDecodeError('trailing-bytes', () => decodeWith(jsonCodec, fromHex('0000')))
  })
})

describe('limits', () => {
  const nested = (depth: number): JsonValue => {
    let value: JsonValue = 0
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value }
    return value
  }

  test('nesting deeper than maxDepth is a limit error; maxDepth itself decodes', () => {
    const max = DEFAULT_DECODE_LIMITS.maxDepth
    assert.deepStrictEqual(decodeWith(jsonCodec, encodeWith(jsonCodec, nested(max))), nested(max))
    expectDecodeError('limit', () => decodeWith(jsonCodec, encodeWith(jsonCodec, nested(max + 1))))
    expectDecodeError('limit', () => decodeWith(jsonCodec, encodeWith(jsonCodec, nested(5)), { maxDepth: 4 }))
    assert.doesNotThrow(() => decodeWith(jsonCodec, encodeWith(jsonCodec, nested(200)), { maxDepth: 200 }))
  })

  test('a huge declared string, byte string or bigint length is a limit error before any allocation', () => {
    const huge = (tag: number): Uint8Array => {
      const w = new Writer()
      w.writeUint8(tag)
      w.writeVarUint(2 ** 40)
      return w.finish()
    }
    for (const tag of [5, 6, 9, 10]) expectDecodeError('limit', () => decodeWith(jsonCodec, huge(tag)))
    expectDecodeError('limit', () => decodeWith(jsonCodec, encodeWith(jsonCodec, 'x'.repeat(100)), { maxStringBytes: 99 }))
  })

  test('too many items in a collection is a limit error; a plausible count beyond the input is a truncation', () => {
    const w = new Writer()
    w.writeUint8(7)
    w.writeVarUint(2_000_000)
    expectDecodeError('limit', () => decodeWith(jsonCodec, w.finish()))
    expectDecodeError('limit', () => decodeWith(jsonCodec, encodeWith(jsonCodec, [1, 2, 3, 4]), { maxItems: 3 }))
    expectDecodeError('limit', () => decodeWith(jsonCodec, encodeWith(jsonCodec, { a: 1, b: 2 }), { maxItems: 1 }))
    expectDecodeError('truncated', () => decodeWith(jsonCodec, fromHex('07e807')))
    const fold = encodeEventFold(goldenEventFolds['eventFold.small'] as Snapshot, codecs)
    expectDecodeError('limit', () => decodeEventFold(fold, codecs, { maxItems: 3 }))
  })

  test('a limit given as undefined keeps its default instead of switching the bound off', () => {
    expectDecodeError('limit', () => decodeWith(jsonCodec, encodeWith(jsonCodec, nested(65)), { maxDepth: undefined }))
  })

  test('an input larger than maxBytes is a limit error', () => {
    const bytes = encodeWith(jsonCodec, 'x'.repeat(100))
    expectDecodeError('limit', () => decodeWith(jsonCodec, bytes, { maxBytes: 50 }))
    const fold = encodeEventFold(goldenEventFolds['eventFold.small'] as Snapshot, codecs)
    expectDecodeError('limit', () => decodeEventFold(fold, codecs, { maxBytes: fold.length - 1 }))
  })
})

describe('event ids', () => {
  test('any event id, including BOTTOM, round-trips', () => {
    fc.assert(fc.property(eventIdArb, (id) => {
      assert.deepStrictEqual(decodeEventId(encodeEventId(id)), id)
    }), propertyParameters('EventId round trip', 300))
  })

  test('counters past 2^52 are refused wherever one is read: an id, a run, a base, an outstanding event, a stored event; encoders still write any safe counter', () => {
    // An event folded with a counter of 2^53 - 1 would leave the folding peer no next counter
    // that encodes (a Lamport clock only grows): half the range is kept as headroom.
    const past = MAX_EVENT_COUNTER + 1
    assert.deepStrictEqual(decodeEventId(encodeEventId({ counter: MAX_EVENT_COUNTER, participant: 'a' })), { counter: MAX_EVENT_COUNTER, participant: 'a' })
    expectDecodeError('invalid', () => decodeEventId(encodeEventId({ counter: past, participant: 'a' })))
    const diff = goldenDiffs['diff.batch'] as JsonDiff
    const run = diff.runs[0]!
    expectDecodeError('invalid', () => decodeDiff(encodeDiff({ ...diff, runs: [{ ...run, events: [run.events[0]!, { ...run.events[1]!, counter: past }] }] }, codecs), codecs))
    expectDecodeError('invalid', () => decodeDiff(encodeDiff({ ...diff, acknowledgements: [{ ...diff.acknowledgements[0]!, infimumId: { counter: past, participant: diff.acknowledgements[0]!.infimumId.participant } }] }, codecs), codecs))
    const fold = goldenEventFolds['eventFold.small'] as Snapshot
    const last = fold.events[fold.events.length - 1]!
    expectDecodeError('invalid', () => decodeEventFold(encodeEventFold({ ...fold, events: [...fold.events.slice(0, -1), { ...last, id: { ...last.id, counter: past } }] }, codecs), codecs))
    const based = fold.logs.find(l => l.base !== undefined)!
    expectDecodeError('invalid', () => decodeEventFold(encodeEventFold({ ...fold, logs: fold.logs.map(l => l === based ? { ...l, base: { ...l.base!, counter: past } } : l) }, codecs), codecs))
    const stored = goldenStoredEvents['storedEvent.error']!
    expectDecodeError('invalid', () => decodeStoredEvent(encodeStoredEvent({ ...stored, id: { ...stored.id, counter: past } }, codecs), codecs))
  })

  test('an id with counter 0 that is not BOTTOM, or a non-integer counter, cannot be encoded', () => {
    assert.throws(() => encodeEventId({ counter: 0, participant: 'a' }), EncodeError)
    assert.throws(() => encodeEventId({ counter: 1.5, participant: 'a' }), EncodeError)
    assert.throws(() => encodeEventId({ counter: -1, participant: 'a' }), EncodeError)
  })

  test('the header is checked: magic, version, kind', () => {
    const bytes = encodeEventId({ counter: 1, participant: 'a' })
    assert.equal(bytes[3], 6, 'version 6 is written')
    assert.deepEqual(decodeEventId(mutate(bytes, [{ op: 'set', at: 3, byte: 4 }])), { counter: 1, participant: 'a' }) // 4 and 5 are still read
    assert.deepEqual(decodeEventId(mutate(bytes, [{ op: 'set', at: 3, byte: 5 }])), { counter: 1, participant: 'a' })
    expectDecodeError('bad-magic', () => decodeEventId(mutate(bytes, [{ op: 'set', at: 0, byte: 0 }])))
    expectDecodeError('bad-version', () => decodeEventId(mutate(bytes, [{ op: 'set', at: 3, byte: 3 }]))) // version 3 is no longer read
    expectDecodeError('bad-version', () => decodeEventId(mutate(bytes, [{ op: 'set', at: 3, byte: 7 }])))
    expectDecodeError('bad-kind', () => decodeEventId(mutate(bytes, [{ op: 'set', at: 4, byte: 1 }])))
    expectDecodeError('truncated', () => decodeEventId(bytes.subarray(0, 2)))
    expectDecodeError('trailing-bytes', () => decodeEventId(Uint8Array.of(...bytes, 0)))
  })
})

describe('EventFold snapshots', () => {
  test('any snapshot round-trips exactly', () => {
    fc.assert(fc.property(snapshotArb, (snapshot) => {
      assert.deepStrictEqual(decodeEventFold(encodeEventFold(snapshot, codecs), codecs), snapshot)
    }), propertyParameters('EventFold round trip', 200))
  })

  test('encoding is deterministic: equal snapshots give equal bytes', () => {
    fc.assert(fc.property(snapshotArb, (snapshot) => {
      const bytes = encodeEventFold(snapshot, codecs)
      const copy = structuredClone(snapshot)
      assert.equal(hex(encodeEventFold(copy, codecs)), hex(bytes))
      assert.equal(hex(encodeEventFold(decodeEventFold(bytes, codecs), codecs)), hex(bytes))
    }), propertyParameters('EventFold determinism', 100))
  })

  test('a snapshot that breaks an invariant cannot be encoded', () => {
    const good = goldenEventFolds['eventFold.small'] as Snapshot
    const events = good.events
    assert.throws(() => encodeEventFold({ ...good, events: [...events].reverse() }, codecs), EncodeError)
    assert.throws(() => encodeEventFold({ ...good, infimum: { ...good.infimum, id: { counter: 9, participant: 'z' } } }, codecs), EncodeError)
    assert.throws(() => encodeEventFold({ ...good, infimum: { ...good.infimum, participants: ['b', 'a'] } }, codecs), EncodeError)
    assert.throws(() => encodeEventFold({ ...good, infimum: { ...good.infimum, digest: { count: 0, hash: 2 ** 53 } } }, codecs), EncodeError)
    assert.throws(() => encodeEventFold({ ...good, events: [{ ...events[0]!, acks: ['x', 'x'] }, ...events.slice(1)] }, codecs), EncodeError)
    // Outstanding events are the last ones of their creators' logs, which the fold lists.
    assert.throws(() => encodeEventFold({ ...good, events: [{ ...events[0]!, seq: 1 }, ...events.slice(1)] }, codecs), EncodeError)
    assert.throws(() => encodeEventFold({ ...good, logs: good.logs.slice(1) }, codecs), EncodeError)
    assert.throws(() => encodeEventFold({ ...good, logs: [...good.logs].reverse() }, codecs), EncodeError)
    // A base before outstanding events that are not the log's first, and none before its first.
    const { base: _, ...unbased } = good.logs[0]!
    assert.throws(() => encodeEventFold({ ...good, logs: [unbased, ...good.logs.slice(1)] }, codecs), EncodeError)
    assert.throws(() => encodeEventFold({ ...good, logs: [good.logs[0]!, { ...good.logs[1]!, base: { counter: 1, hash: new Uint8Array(0) } }, good.logs[2]!] }, codecs), EncodeError)
  })

  test('a decoded snapshot with events out of order, below the infimum, outside their logs or with bad indexes is invalid', () => {
    // Hand-built: header, origin "", table ["a","b"], infimum (1,"a"), digest 0/0/0, no participants, state null.
    const prefix = '4c474e060100' + '0201610162' + '00' + '0100' + '000000' + '00' + '00'
    const event = (step: string, pidx: string): string => step + pidx + '00' + '0200' + '00' // log 0, join "a", no acks
    const log = (pidx: string, seq: string): string => pidx + '00' + seq + '00' + '00' + '00' // log 0, no hash, signature or base
    const fold = (events: string[], logs: string[]): Uint8Array => fromHex(prefix + '0' + events.length.toString(16) + events.join('') + '0' + logs.length.toString(16) + logs.join(''))
    assert.equal(decodeEventFold(fold([event('00', '01')], [log('01', '01')]), codecs).events.length, 1) // (1,b) > (1,a): fine
    expectDecodeError('invalid', () => decodeEventFold(fold([event('00', '00')], [log('00', '01')]), codecs)) // (1,a) = infimum
    expectDecodeError('invalid', () => decodeEventFold(fold([event('01', '01'), event('00', '00')], [log('00', '01'), log('01', '01')]), codecs)) // (2,b) then (2,a)
    expectDecodeError('invalid', () => decodeEventFold(fold([event('01', '05')], []), codecs)) // index out of range
    expectDecodeError('invalid', () => decodeEventFold(fold([], []), codecs)) // "b" never used
    expectDecodeError('invalid', () => decodeEventFold(fold([event('00', '01')], []), codecs)) // an event of a log the fold does not list
    expectDecodeError('invalid', () => decodeEventFold(fold([event('00', '01')], [log('01', '00')]), codecs)) // an empty log
    expectDecodeError('invalid', () => decodeEventFold(fold([event('00', '01')], [log('01', '02')]), codecs)) // outstanding events after others, without a base
    expectDecodeError('bad-tag', () => decodeEventFold(fold(['01' + '01' + '00' + '00' + '00'], [log('01', '01')]), codecs)) // tag 0: no body
    expectDecodeError('invalid', () => decodeEventFold(fromHex('4c474e060100' + '0201620161' + '00' + '0100' + '000000' + '00' + '00' + '00' + '00'), codecs)) // unsorted table
  })

  test('a participant set is written as its complement exactly when it holds more than half the table', () => {
    // Header, origin "", table ["a","b","c"], infimum (1,"c"), digest 0/0/0, then the participant set, state null, no events, no logs.
    const fold = (set: string): Uint8Array => fromHex('4c474e060100' + '03016101620163' + '00' + '0102' + '000000' + set + '00' + '00' + '00')
    assert.deepStrictEqual(decodeEventFold(fold('01'), codecs).infimum.participants, ['a', 'b', 'c']) // complement of nothing
    assert.deepStrictEqual(decodeEventFold(fold('0302'), codecs).infimum.participants, ['a', 'b']) // all but "c"
    assert.equal(hex(encodeEventFold(decodeEventFold(fold('0302'), codecs), codecs)), hex(fold('0302')))
    expectDecodeError('invalid', () => decodeEventFold(fold('06000000'), codecs)) // all three listed: must be a complement
    expectDecodeError('invalid', () => decodeEventFold(fold('050001'), codecs)) // complement leaving one of three: must be a list
    expectDecodeError('invalid', () => decodeEventFold(fold('0303'), codecs)) // missing index outside the table
  })

  test('an event counter that overflows the safe range is invalid', () => {
    const w = new Writer()
    writeHeader(w, MessageKind.eventFold)
    w.writeString('')
    w.writeVarUint(1); w.writeString('a'); w.writeVarUint(0)
    w.writeVarUint(Number.MAX_SAFE_INTEGER); w.writeVarUint(0) // infimum (2^53 - 1, "a")
    w.writeVarUint(0); w.writeVarUint(0); w.writeVarUint(0); w.writeVarUint(0); w.writeUint8(0) // digest, participants, state null
    w.writeVarUint(1); w.writeVarUint(1); w.writeVarUint(0); w.writeVarUint(0); w.writeUint8(2); w.writeVarUint(0); w.writeVarUint(0) // step, pidx, log, join "a", acks
    expectDecodeError('invalid', () => decodeEventFold(w.finish(), codecs))
  })

  test('anything a user codec throws while decoding becomes a DecodeError with code invalid', () => {
    const failing: Codec<JsonValue> = {
      encode: (value, w) => jsonCodec.encode(value, w),
      decode: () => { throw new RangeError('user codec failed') }
    }
    const bytes = encodeEventFold(goldenEventFolds['eventFold.small'] as Snapshot, codecs)
    assert.throws(() => decodeEventFold(bytes, { ...codecs, state: failing }), (err: unknown) =>
      err instanceof DecodeError && err.code === 'invalid' && err.cause instanceof RangeError)
  })
})

describe('Signatures and hash chains', () => {
  const golden = goldenDiffs['diff.batch'] as JsonDiff
  const run = golden.runs[0]!

  test('a signature longer than MAX_SIGNATURE_BYTES, or a hash longer than MAX_HASH_BYTES, is refused both ways', () => {
    assert.throws(() => encodeDiff({ ...golden, runs: [{ ...run, signature: new Uint8Array(MAX_SIGNATURE_BYTES + 1) }] }, codecs), EncodeError)
    assert.throws(() => encodeDiff({ ...golden, runs: [{ ...run, base: { counter: 1, hash: new Uint8Array(MAX_HASH_BYTES + 1) } }] }, codecs), EncodeError)
    // Hand-edit the 64-byte signature's length prefix (0x40) of the golden diff to one byte past the limit.
    const bytes = encodeDiff(golden, codecs)
    const at = Buffer.from(bytes).indexOf(Buffer.from([0x40, 0xab, 0xab]))
    const tooLong = MAX_SIGNATURE_BYTES + 1
    const forged = Uint8Array.of(...bytes.subarray(0, at), 0x80 | (tooLong & 0x7f), tooLong >> 7, ...new Uint8Array(tooLong), ...bytes.subarray(at + 65))
    expectDecodeError('limit', () => decodeDiff(forged, codecs))
  })

  test('an empty signature is none', () => {
    const decoded = decodeDiff(encodeDiff({ ...golden, runs: [{ ...run, signature: new Uint8Array(0) }] }, codecs), codecs)
    assert.equal(decoded.runs[0]!.signature, undefined)
  })

  test('what a creator signs names the cluster, the creator, its log, the position, the head and the Join that admitted it, and nothing else', () => {
    const head = Uint8Array.of(1, 2, 3)
    const base = hex(encodeLogHead('demo', 'bob', 2, 3, head))
    assert.equal(hex(encodeLogHead('demo', 'bob', 2, 3, Uint8Array.of(1, 2, 3))), base) // deterministic
    assert.notEqual(hex(encodeLogHead('other', 'bob', 2, 3, head)), base)
    assert.notEqual(hex(encodeLogHead('demo', 'bo', 2, 3, head)), base)
    assert.notEqual(hex(encodeLogHead('demo', 'bob', 3, 3, head)), base)
    assert.notEqual(hex(encodeLogHead('demo', 'bob', 2, 4, head)), base)
    assert.notEqual(hex(encodeLogHead('demo', 'bob', 2, 3, Uint8Array.of(1, 2, 4))), base)
    // The admission (protocol 12), when known, follows the head: absent, the bytes are as before.
    const admitted = hex(encodeLogHead('demo', 'bob', 2, 3, head, { counter: 1, participant: 'alice' }))
    assert.equal(admitted, base + '01' + '05' + hex(new TextEncoder().encode('alice')))
    assert.equal(hex(encodeLogHead('demo', 'bob', 2, 3, head, BOTTOM)), base + '00', 'the founder\'s admission is not its absence')
    assert.notEqual(hex(encodeLogHead('demo', 'bob', 2, 3, head, { counter: 2, participant: 'alice' })), admitted)
    assert.notEqual(hex(encodeLogHead('demo', 'bob', 2, 3, head, { counter: 1, participant: 'alicf' })), admitted)
    // Version byte 0: the layout is not tied to the format version of folds and diffs.
    assert.equal(base.slice(0, 10), '4c474e0007')
  })

  test('a link of a hash chain names the hash before, the event id and the body', () => {
    const id = { counter: 4, participant: 'bob' }
    const body = { kind: 'event' as const, event: 7 }
    const previous = Uint8Array.of(9, 9)
    const base = hex(encodeLogLink(previous, id, body, codecs))
    assert.equal(hex(encodeLogLink(Uint8Array.of(9, 9), { ...id }, { kind: 'event', event: 7 }, codecs)), base)
    assert.notEqual(hex(encodeLogLink(new Uint8Array(0), id, body, codecs)), base)
    assert.notEqual(hex(encodeLogLink(previous, { ...id, counter: 5 }, body, codecs)), base)
    assert.notEqual(hex(encodeLogLink(previous, { ...id, participant: 'x' }, body, codecs)), base)
    assert.notEqual(hex(encodeLogLink(previous, id, { kind: 'event', event: 8 }, codecs)), base)
    assert.notEqual(hex(encodeLogLink(previous, id, { kind: 'join', participant: 'x' }, codecs)), hex(encodeLogLink(previous, id, { kind: 'unjoin', participant: 'x' }, codecs)))
    // What the chains hash: the same bytes, seen in place (a nested encoding in between must not move them).
    assert.equal(digestLogLink(previous, id, body, codecs, (bytes) => { encodeLogLink(previous, id, { kind: 'event', event: 8 }, codecs); return hex(bytes) }), base)
  })
})

describe('Diffs', () => {
  test('any diff, with bodies left out or not, round-trips exactly', () => {
    fc.assert(fc.property(diffArb, (diff) => {
      assert.deepStrictEqual(decodeDiff(encodeDiff(diff, codecs), codecs), diff)
    }), propertyParameters('Diff round trip', 200))
  })

  test('any diff round-trips with any of its participants named by fingerprint', () => {
    // A toy fingerprint (the runtime uses truncated SHA-256): unique for these short names.
    const fp = (p: string): Uint8Array => { const b = new Uint8Array(FINGERPRINT_BYTES); b.set(new TextEncoder().encode(p).subarray(0, FINGERPRINT_BYTES)); return b }
    fc.assert(fc.property(diffArb, fc.func(fc.boolean()), (diff, pick) => {
      const known = new Map<string, string>()
      const names: DiffContext = {
        fingerprint: (p) => { if (!pick(p) || new TextEncoder().encode(p).length > FINGERPRINT_BYTES) return undefined; known.set(hex(fp(p)), p); return fp(p) },
        resolve: (f) => known.get(hex(f))
      }
      const bytes = encodeDiff(diff, codecs, names)
      assert.deepStrictEqual(decodeDiff(bytes, codecs, undefined, names), diff)
      if (known.size > 0) {
        assert.ok(bytes.length < encodeDiff(diff, codecs).length || [...known.values()].every(p => p.length <= FINGERPRINT_BYTES))
        expectDecodeError('unknown-participant', () => decodeDiff(bytes, codecs))
      }
    }), propertyParameters('Diff round trip with fingerprints', 200))
  })

  test('any diff round-trips with any list of participants, referred to or not, named by a table hash', () => {
    const referred = (d: JsonDiff): string[] => {
      const names = new Set<string>()
      for (const a of d.acknowledgements) {
        names.add(a.participant)
        if (a.infimumId.counter !== 0) names.add(a.infimumId.participant)
        for (const h of a.holds) names.add(h.participant)
        for (const f of a.failures) names.add(f.id.participant)
        for (const u of a.departing) names.add(u.unjoin.participant)
      }
      for (const r of d.runs) {
        names.add(r.creator)
        for (const e of r.events) if (e.delta.kind === 'join' || e.delta.kind === 'unjoin') names.add(e.delta.participant)
      }
      return [...names]
    }
    const hash = new Uint8Array(TABLE_HASH_BYTES).fill(0x5a)
    fc.assert(fc.property(diffArb, fc.func(fc.boolean()), fc.uniqueArray(fc.string({ maxLength: 3 }), { maxLength: 3 }), (diff, pick, extra) => {
      const participants = [...new Set([...referred(diff).filter(p => pick(p)), ...extra])].sort()
      const context: DiffContext = { table: { hash, participants }, resolveTable: (h) => hex(h) === hex(hash) ? participants : undefined }
      const bytes = encodeDiff(diff, codecs, context)
      assert.deepStrictEqual(decodeDiff(bytes, codecs, undefined, context), diff)
      expectDecodeError('unknown-participant', () => decodeDiff(bytes, codecs))
    }), propertyParameters('Diff round trip with a table hash', 200))
  })

  test('Diff: random bytes after a table hash the decoder resolves never throw anything but DecodeError', () => {
    const context: DiffContext = { resolveTable: () => ['a', 'b', 'c'], resolve: (f) => f[0] === 1 ? 'd' : undefined }
    const prefix = Uint8Array.of(...headerOf(MessageKind.diff), 0, 0, 1, ...new Uint8Array(TABLE_HASH_BYTES))
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (random) => {
      const bytes = Uint8Array.of(...prefix, ...random)
      try {
        const diff = decodeDiff(bytes, codecs, undefined, context)
        // Accepted: the same context writes it back to the same bytes (canonical form).
        assert.equal(hex(encodeDiff(diff, codecs, { table: { hash: new Uint8Array(TABLE_HASH_BYTES), participants: ['a', 'b', 'c'] }, fingerprint: (p) => p === 'd' ? new Uint8Array(FINGERPRINT_BYTES).fill(1) : undefined })), hex(bytes))
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err
      }
    }), propertyParameters('Diff random bytes after a table hash', 1000))
  })

  test('an implied origin is left out of the bytes and read back, and only that origin', () => {
    fc.assert(fc.property(diffArb, fc.boolean(), (diff, same) => {
      const context: DiffContext = { origin: same ? diff.origin : diff.origin + 'x' }
      if (diff.origin === '' && !same) {
        assert.throws(() => encodeDiff(diff, codecs, context), EncodeError)
        return
      }
      const bytes = encodeDiff(diff, codecs, context)
      assert.deepStrictEqual(decodeDiff(bytes, codecs, undefined, context), diff)
      if (same) {
        const originBytes = new TextEncoder().encode(diff.origin).length
        assert.equal(bytes.length, encodeDiff(diff, codecs).length - originBytes - varUintSize(originBytes) + 1)
        assert.equal(decodeDiff(bytes, codecs).origin, '') // without the context: the empty origin it says
      }
    }), propertyParameters('Diff round trip with an implied origin', 200))
  })

  test('fingerprints must be well formed, and name no participant twice', () => {
    const good = goldenDiffs['diff.batch'] as JsonDiff
    const fp = (byte: number): Uint8Array => new Uint8Array(FINGERPRINT_BYTES).fill(byte)
    assert.throws(() => encodeDiff(good, codecs, { fingerprint: () => new Uint8Array(3) }), EncodeError)
    assert.throws(() => encodeDiff(good, codecs, { fingerprint: () => fp(1) }), EncodeError) // several participants, one fingerprint
    // Header, origin "", table: "a" in full, then a fingerprint; no acknowledgement; one run of
    // (fp)'s log 1 from its first event: (1, fp) joins "a", no signature, no base.
    const diff = (fps: string): Uint8Array => fromHex('4c474e060200' + '010161' + fps + '00' + '01' + '01' + '01' + '01' + '01' + '01' + '0200' + '00' + '00')
    // The count is written doubled (plus one when a table hash comes first): one fingerprint is 02.
    const one = '02' + '07'.repeat(FINGERPRINT_BYTES)
    const names = (name: string): DiffContext => ({ resolve: (f) => f[0] === 7 ? name : undefined })
    assert.deepStrictEqual(decodeDiff(diff(one), codecs, undefined, names('b')).runs[0]!.creator, 'b')
    expectDecodeError('unknown-participant', () => decodeDiff(diff(one), codecs))
    expectDecodeError('invalid', () => decodeDiff(diff(one), codecs, undefined, names('a'))) // "a" twice
    expectDecodeError('invalid', () => decodeDiff(diff('04' + '07'.repeat(FINGERPRINT_BYTES) + '07'.repeat(FINGERPRINT_BYTES)), codecs, undefined, names('b'))) // not ascending
  })

  test('a table hash names a whole list of participants, referred to or not, that the receiver resolves', () => {
    const good = goldenDiffs['diff.batch'] as JsonDiff
    const hash = new Uint8Array(TABLE_HASH_BYTES).fill(9)
    const table = { hash, participants: ['12D3KooWAlice', '12D3KooWBob', '12D3KooWCarol', 'zz'] }
    assert.throws(() => encodeDiff(good, codecs, { table: { hash: new Uint8Array(3), participants: ['a'] } }), EncodeError)
    const bytes = encodeDiff(good, codecs, { table })
    const resolveTable = (h: Uint8Array): readonly string[] | undefined => h[0] === 9 ? table.participants : undefined
    assert.deepStrictEqual(decodeDiff(bytes, codecs, undefined, { resolveTable }), good)
    expectDecodeError('unknown-participant', () => decodeDiff(bytes, codecs))
    expectDecodeError('unknown-participant', () => decodeDiff(bytes, codecs, undefined, { resolveTable: () => undefined }))
    // The list's participants are in the table ("zz" too, which nothing refers to) and are not
    // written: after the origin "demo", the table is the byte 00 (none in full), then 01 and the hash.
    assert.equal(hex(bytes.subarray(10, 20)), '0001' + '09'.repeat(TABLE_HASH_BYTES))
    // By hand: header, origin "", table: "c" in full, then a table hash (01: a hash, no
    // fingerprint) for ["a", "b"] (indexes 0 and 1; "c" is 2); no acknowledgement; one run of
    // "c"'s log 1: (1, c) joins "a". Table entries named in full must still be referred to.
    const handMade = (names: string, table: string, joins: string): Uint8Array => fromHex('4c474e060200' + names + table + '00' + '01' + '02' + '01' + '01' + '01' + '01' + '02' + joins + '00' + '00')
    const ab = { resolveTable: (h: Uint8Array) => h[0] === 9 ? ['a', 'b'] : undefined }
    const withHash = '01' + '09'.repeat(TABLE_HASH_BYTES)
    const decoded = decodeDiff(handMade('0101' + '63', withHash, '00'), codecs, undefined, ab)
    assert.deepStrictEqual(decoded.runs[0]!.events[0]!.delta, { kind: 'join', participant: 'a' })
    expectDecodeError('invalid', () => decodeDiff(handMade('0201' + '61' + '0163', withHash, '00'), codecs, undefined, ab)) // "a" in full and in the list
    expectDecodeError('truncated', () => decodeDiff(fromHex('4c474e060200' + '00' + '01' + '0909'), codecs, undefined, ab))
  })

  test('a diff whose acknowledgements or runs break an invariant cannot be encoded', () => {
    const good = goldenDiffs['diff.relayed'] as JsonDiff
    const [first, second] = good.acknowledgements as [Acknowledgement<JsonValue>, Acknowledgement<JsonValue>]
    const run = good.runs[0]!
    assert.throws(() => encodeDiff({ ...good, acknowledgements: [first, first] }, codecs), EncodeError) // the sender relayed too
    assert.throws(() => encodeDiff({ ...good, acknowledgements: [first, second, { ...second, participant: '0' }] }, codecs), EncodeError) // relayed ones unsorted
    assert.throws(() => encodeDiff({ ...good, acknowledgements: [{ ...first, holds: [...first.holds].reverse() }] }, codecs), EncodeError)
    assert.throws(() => encodeDiff({ ...good, acknowledgements: [{ ...first, holds: [{ ...first.holds[0]!, seq: 0 }] }] }, codecs), EncodeError)
    assert.throws(() => encodeDiff({ ...good, acknowledgements: [{ ...first, failures: [...first.failures].reverse() }] }, codecs), EncodeError)
    assert.throws(() => encodeDiff({ ...good, acknowledgements: [{ ...second, log: 0, unsettled: 1 }] }, codecs), EncodeError) // unsettled in no log
    assert.throws(() => encodeDiff({ ...good, runs: [{ ...run, events: [] }] }, codecs), EncodeError)
    assert.throws(() => encodeDiff({ ...good, runs: [{ ...run, events: [run.events[0]!, run.events[0]!] }] }, codecs), EncodeError) // counters do not ascend
    assert.throws(() => encodeDiff({ ...good, runs: [{ ...run, first: 1 }] }, codecs), EncodeError) // a base before the first event
    const error = { kind: 'error', event: 1, output: 1, errorAcks: [] } as unknown as SignedDelta<JsonValue, JsonValue>
    assert.throws(() => encodeDiff({ ...good, runs: [{ ...run, events: [{ counter: 6, delta: error }] }] }, codecs), EncodeError) // a log holds no errors
  })
})

describe('robustness: decoders throw only DecodeError', () => {
  for (const { name, valid, header, roundTrip } of decoders) {
    test(`${name}: random bytes never throw anything but DecodeError`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (random, withHeader) => {
        checkRobust(roundTrip, withHeader ? Uint8Array.of(...header, ...random) : random, header.length > 0)
      }), propertyParameters(`${name} random bytes`, 1000))
    })

    test(`${name}: mutated valid encodings never throw anything but DecodeError, and accepted ones are canonical`, () => {
      fc.assert(fc.property(valid, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (bytes, mutations) => {
        checkRobust(roundTrip, mutate(bytes, mutations), header.length > 0)
      }), propertyParameters(`${name} mutations`, 1000))
    })
  }

  test('a user codec that reads past its value is caught by the frame checks', () => {
    const greedy: Codec<JsonValue> = { encode: (v, w) => jsonCodec.encode(v, w), decode: (r) => r.readRaw(r.remaining) }
    const bytes = encodeEventFold(goldenEventFolds['eventFold.small'] as Snapshot, codecs)
    const outcome = decodeOutcome(() => decodeEventFold(bytes, { ...codecs, state: greedy }))
    assert.equal(outcome.ok, false)
  })
})

describe('golden vectors', () => {
  type Fixture = { formatVersion: number, vectors: Record<string, string> }
  const load = (file: string): Fixture => JSON.parse(readFileSync(new URL(`./fixtures/${file}`, import.meta.url), 'utf8')) as Fixture
  const v4 = load('codec-golden.json')
  const v5 = load('codec-golden-v5.json')
  const v6 = load('codec-golden-v6.json')
  const vector = (fixture: Fixture, name: string): string => {
    const stored = fixture.vectors[name]
    assert.ok(stored !== undefined, `no golden vector for ${name}`)
    return stored
  }

  test('the fixtures cover exactly the golden values', () => {
    const names = (...groups: Array<Record<string, unknown>>): string[] => groups.flatMap((group) => Object.keys(group)).sort()
    assert.deepStrictEqual(Object.keys(v4.vectors).sort(), names(goldenEventIds, legacyEventFolds, legacyDiffs, goldenJson))
    assert.equal(v4.formatVersion, 4)
    assert.deepStrictEqual(Object.keys(v5.vectors).sort(), names(goldenEventIds, legacyEventFolds, legacyDiffs, legacyV5EventFolds, legacyV5Diffs))
    assert.equal(v5.formatVersion, 5)
    assert.deepStrictEqual(Object.keys(v6.vectors).sort(), names(goldenEventIds, goldenEventFolds, goldenDiffs, goldenStoredEvents, goldenStoredLogs, goldenStoredReaches))
    assert.equal(v6.formatVersion, 6)
  })

  // Formats 4 and 5 are no longer written; what they stored must still read as the same values.
  const legacy = [
    { fixture: v4, folds: legacyEventFolds, diffs: legacyDiffs },
    { fixture: v5, folds: { ...legacyEventFolds, ...legacyV5EventFolds }, diffs: { ...legacyDiffs, ...legacyV5Diffs } }
  ]
  for (const { fixture, folds, diffs } of legacy) {
    const format = `format ${fixture.formatVersion}`
    for (const [name, id] of Object.entries(goldenEventIds)) {
      test(`${format}: ${name} decodes to its value`, () => {
        assert.deepStrictEqual(decodeEventId(fromHex(vector(fixture, name))), id)
      })
    }
    for (const [name, snapshot] of Object.entries(folds)) {
      test(`${format}: ${name} reads to its value, and is not taken for a fold of this format`, () => {
        assert.deepStrictEqual(decodeLegacyEventFold(fromHex(vector(fixture, name)), codecs), snapshot)
        expectDecodeError('bad-version', () => decodeEventFold(fromHex(vector(fixture, name)), codecs))
      })
    }
    for (const [name, diff] of Object.entries(diffs)) {
      test(`${format}: ${name} reads to its value, and is not taken for a diff of this format`, () => {
        assert.deepStrictEqual(decodeLegacyDiff(fromHex(vector(fixture, name)), codecs), diff)
        expectDecodeError('bad-version', () => decodeDiff(fromHex(vector(fixture, name)), codecs))
      })
    }
  }

  test('a stored fold of format 4 or 5 migrates when nothing is outstanding in it, and is refused when something is', () => {
    for (const fixture of [v4, v5]) {
      const empty = migrateEventFold(fromHex(vector(fixture, 'eventFold.empty')), codecs)
      assert.deepStrictEqual(empty, { ...legacyEventFolds['eventFold.empty']!, logs: [], events: [] })
      assert.throws(() => migrateEventFold(fromHex(vector(fixture, 'eventFold.small')), codecs), { name: 'LegacyFoldError' })
    }
    assert.deepStrictEqual(migrateEventFold(fromHex(vector(v6, 'eventFold.small')), codecs), goldenEventFolds['eventFold.small'])
  })

  for (const [name, value] of Object.entries(goldenJson)) {
    test(`${name} encodes to its pinned bytes and back`, () => {
      assert.equal(hex(encodeWith(jsonCodec, value)), vector(v4, name))
      assert.deepStrictEqual(decodeWith(jsonCodec, fromHex(vector(v4, name))), value)
    })
  }

  for (const [name, id] of Object.entries(goldenEventIds)) {
    test(`format 6: ${name} encodes to its pinned bytes and back`, () => {
      assert.equal(hex(encodeEventId(id)), vector(v6, name))
      assert.deepStrictEqual(decodeEventId(fromHex(vector(v6, name))), id)
    })
  }
  for (const [name, snapshot] of Object.entries(goldenEventFolds)) {
    test(`format 6: ${name} encodes to its pinned bytes and back`, () => {
      assert.equal(hex(encodeEventFold(snapshot, codecs)), vector(v6, name))
      assert.deepStrictEqual(decodeEventFold(fromHex(vector(v6, name)), codecs), snapshot)
    })
  }
  for (const [name, diff] of Object.entries(goldenDiffs)) {
    test(`format 6: ${name} encodes to its pinned bytes and back`, () => {
      assert.equal(hex(encodeDiff(diff, codecs)), vector(v6, name))
      assert.deepStrictEqual(decodeDiff(fromHex(vector(v6, name)), codecs), diff)
    })
  }
  for (const [name, event] of Object.entries(goldenStoredEvents)) {
    test(`format 6: ${name} encodes to its pinned bytes and back`, () => {
      assert.equal(hex(encodeStoredEvent(event, codecs)), vector(v6, name))
      assert.deepStrictEqual(decodeStoredEvent(fromHex(vector(v6, name)), codecs), event)
    })
  }
  for (const [name, log] of Object.entries(goldenStoredLogs)) {
    test(`format 6: ${name} encodes to its pinned bytes and back`, () => {
      assert.equal(hex(encodeStoredLog(log)), vector(v6, name))
      assert.deepStrictEqual(decodeStoredLog(fromHex(vector(v6, name))), log)
    })
  }
  for (const [name, reach] of Object.entries(goldenStoredReaches)) {
    test(`format 6: ${name} encodes to its pinned bytes and back`, () => {
      assert.equal(hex(encodeStoredReach(reach)), vector(v6, name))
      assert.deepStrictEqual(decodeStoredReach(fromHex(vector(v6, name))), reach)
    })
  }
  test('a stored reach is of a real event with something folded', () => {
    assert.throws(() => encodeStoredReach({ id: BOTTOM, digest: { count: 1, hash: 1 } }), EncodeError)
    assert.throws(() => encodeStoredReach({ id: { counter: 3, participant: 'x' }, digest: { count: 0, hash: 0 } }), EncodeError)
    // header, then id 0 (BOTTOM) or id (3, "x"), then digest count · hash · throws
    expectDecodeError('invalid', () => decodeStoredReach(fromHex('4c474e0608' + '00' + '010100')))
    expectDecodeError('invalid', () => decodeStoredReach(fromHex('4c474e0608' + '030178' + '000000')))
  })

  test('a digest writes its throws only when there are some, and never more than its events', () => {
    const diff = goldenDiffs['diff.batch'] as JsonDiff
    const withDigest = (infimumDigest: Acknowledgement<JsonValue>['infimumDigest']): JsonDiff => ({ ...diff, acknowledgements: [{ ...diff.acknowledgements[0]!, infimumDigest }] })
    assert.throws(() => encodeDiff(withDigest({ count: 3, hash: 7, throws: 0 }), codecs), EncodeError)
    const bytes = encodeDiff(withDigest({ count: 3, hash: 7, throws: 3 }), codecs)
    assert.deepStrictEqual(decodeDiff(bytes, codecs).acknowledgements[0]!.infimumDigest, { count: 3, hash: 7, throws: 3 })
    const tooMany = encodeDiff(withDigest({ count: 3, hash: 7, throws: 2 }), codecs)
    const at = Buffer.from(tooMany).indexOf(Buffer.from([3, 7, 2])) // count 3, hash 7, throws 2: set throws to 4
    expectDecodeError('invalid', () => decodeDiff(mutate(tooMany, [{ op: 'set', at: at + 2, byte: 4 }]), codecs))
  })
})
