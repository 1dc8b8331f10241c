/**
 * Binary encodings of the EventFold's plain data ({@link EventFoldSnapshot}, {@link Diff},
 * {@link EventId}) for the wire and for storage. User events, states and outputs are written
 * by the application's codecs ({@link FoldCodecs}); this module owns only the frame around
 * them. Encodings are deterministic and canonical (a value has exactly one valid encoding),
 * and decoding validates every structural invariant the fold relies on, so a fold never sees
 * an unsorted ack list or an event below its infimum from a malformed message.
 *
 * ## Byte layout, format version 5
 *
 * Primitives:
 * - `u8`: one byte.
 * - `varuint`: unsigned LEB128, 7 bits per byte, low group first; at most 8 bytes, value at
 *   most 2^53 - 1, no overlong form (the last byte of a multi-byte varuint is never 0).
 * - `string`: `varuint` byte length, then UTF-8 (valid, no lone surrogates; a leading BOM is
 *   data).
 * - `E`, `S`, `O`: a user event, state or output, written by the matching {@link Codec},
 *   not length-prefixed.
 *
 * Header, at the start of every top-level encoding:
 * ```
 * 0x4C 0x47 0x4E   magic "LGN"
 * u8 version       5 (written); 4 and 5 are read
 * u8 kind          1 = EventFold, 2 = Diff, 3 = EventId;
 *                  4..15 reserved for this module, 16..255 reserved for runtime wire messages
 * ```
 * Decoding checks magic (`bad-magic`), version (`bad-version`) and kind (`bad-kind`), and
 * that no byte follows the value (`trailing-bytes`). Format 4 is format 5 without delta tag
 * 5 (a thrown failure), so folds stored by the previous version still load; a value has one
 * encoding per version, and is always written as version 5.
 *
 * Participant table. Peer ids are long and repeat in every event id and ack list, so an
 * EventFold or Diff message lists each distinct participant once and then refers to it by
 * index (`pidx`, a `varuint` index into the table). A sender may name participants the
 * receiver surely knows by an 8-byte fingerprint instead of in full
 * ({@link DiffContext}); the table is the union of both lists, sorted by name:
 * ```
 * varuint n        then n × string, strictly ascending by UTF-16 code units
 * varuint k        then k × 8-byte fingerprint, strictly ascending bytewise
 * ```
 * A fingerprint the decoder cannot resolve is `unknown-participant` (the receiver should ask
 * for the same data in full); one that resolves to a name also listed in full is `invalid`.
 * Every entry must be referenced at least once by the message (`invalid` otherwise), so
 * given which names are fingerprinted the table is a function of the value. Because the
 * table is sorted, comparing indexes compares participants.
 *
 * Participant set (infimum participants, acks, error acks), sorted and unique by construction.
 * Acks are mostly complete, so a set holding more than half the table lists who is missing
 * instead (the complement); which form is used follows from the set, so it stays canonical:
 * ```
 * varuint h        n = floor(h / 2) listed indexes; h odd: they are the missing ones
 *                  then, if n > 0: pidx of the first, and for each next one
 *                  varuint (index - previous index - 1)
 * ```
 *
 * Event id, indexed form (inside EventFold and Diff):
 * ```
 * varuint counter  0 means BOTTOM (counter 0, participant ""), and nothing follows
 * pidx participant only when counter >= 1
 * ```
 * Event id, standalone form (kind 3, and {@link writeEventId}): the same, with the participant
 * as a `string` instead of a `pidx`.
 *
 * Event list: ids strictly ascend and all exceed the infimum id, so each id is written
 * relative to the one before (the infimum id for the first):
 * ```
 * varuint n        then n × event:
 *   varuint counter - previous counter    (>= 0; when 0, pidx must exceed the previous pidx)
 *   pidx participant
 *   u8 delta tag   1 = event: E
 *                  2 = join: pidx
 *                  3 = unjoin: pidx
 *                  4 = error (apply returned a failure): O, participant set (errorAcks)
 *                  5 = error (apply threw; version 5 only): string description,
 *                      participant set (errorAcks)
 *                  0 = body left out (Diff only)
 *                  tag + 16 (17, 18, 19) = the same body, signed: bytes signature, then the body
 *   participant set acks
 * ```
 * A signature is at most {@link MAX_SIGNATURE_BYTES} bytes; what it signs is
 * {@link encodeSignedEvent}'s encoding.
 * Counters must be safe integers >= 1.
 *
 * Infimum digest:
 * ```
 * varuint count · varuint hash · varuint throws   (throws <= count; 0 when none)
 * ```
 * Format 4 has no `throws`.
 *
 * EventFold (kind 1):
 * ```
 * header · string origin · participant table · indexed event id (infimum.id) ·
 * digest · participant set (infimum.participants) · S infimum.state · event list
 * ```
 * Diff (kind 2):
 * ```
 * header · string origin · participant table · indexed event id (infimumId) ·
 * digest · event list (tag 0 allowed)
 * ```
 * An empty origin stands for the one the {@link DiffContext} implies, when it implies one.
 * EventId (kind 3):
 * ```
 * header · standalone event id
 * ```
 *
 * @module
 */
import { Reader, Writer } from './buffer.js'
import { ParticipantTableReader, ParticipantTableWriter, checkEventIdForEncoding, type DiffContext } from './participant-table.js'
import { DEFAULT_DECODE_LIMITS, decodeWithin, resolveDecodeLimits, type Codec, type DecodeLimits } from './codec.js'
import { DecodeError, EncodeError } from './errors.js'
import {
  BOTTOM,
  compareEventIds,
  type Delta,
  type Diff,
  type DiffEvent,
  type EventFoldSnapshot,
  type EventId,
  type InfimumDigest,
  type OutstandingEvent,
  type Participant,
  type SignedDelta
} from '../eventfold/types.js'

/** The codecs of a fold's user types. */
export interface FoldCodecs<E, S, O> {
  /** Codec of user events. */
  readonly event: Codec<E>
  /** Codec of the folded state. */
  readonly state: Codec<S>
  /** Codec of event outputs. */
  readonly output: Codec<O>
}

/** The magic bytes every top-level encoding starts with: ASCII "LGN". */
export const MAGIC: Uint8Array = Uint8Array.of(0x4c, 0x47, 0x4e)

/** The format version this build writes (and the newest it reads). */
export const FORMAT_VERSION = 5

/** The oldest format version this build still reads: format 4 lacks only the thrown failure (delta tag 5). */
export const OLDEST_READABLE_FORMAT_VERSION = 4

export { FINGERPRINT_BYTES, ParticipantTableReader, ParticipantTableWriter, type DiffContext } from './participant-table.js'

/** Kinds of top-level encodings (the header's kind byte). */
export const MessageKind = Object.freeze({
  /** An {@link EventFoldSnapshot}. */
  eventFold: 1,
  /** A {@link Diff}. */
  diff: 2,
  /** A standalone {@link EventId}. */
  eventId: 3
})

/** The first kind byte reserved for runtime wire messages; kinds 16..255 are theirs. */
export const FIRST_WIRE_KIND = 16

const DELTA_OMITTED = 0
const DELTA_EVENT = 1
const DELTA_JOIN = 2
const DELTA_UNJOIN = 3
const DELTA_ERROR = 4
/** An error whose `apply` threw: a description instead of an output. Format 5 on. */
const DELTA_THROWN = 5
/** Added to the tag of a body that carries its creator's signature. */
const DELTA_SIGNED = 16

/** Largest signature a body may carry (an Ed25519 signature is 64 bytes). */
export const MAX_SIGNATURE_BYTES = 128

/** The kind byte of {@link encodeSignedEvent}'s encoding; never sent on its own. */
const SIGNED_EVENT_KIND = 4

/** Smallest encoded event: counter step, pidx, delta tag, empty ack set. */
const MIN_EVENT_BYTES = 4

/** Writes the 5-byte header: magic, {@link FORMAT_VERSION}, `kind`. */
export function writeHeader (w: Writer, kind: number): void {
  w.writeRaw(MAGIC)
  w.writeUint8(FORMAT_VERSION)
  w.writeUint8(kind)
}

/**
 * Reads a header and returns its kind byte. Throws `bad-magic` or `bad-version` (a version
 * outside {@link OLDEST_READABLE_FORMAT_VERSION}..{@link FORMAT_VERSION}); the caller checks
 * the kind.
 */
export function readHeader (r: Reader): number {
  return readVersionedHeader(r).kind
}

function readVersionedHeader (r: Reader): { readonly version: number, readonly kind: number } {
  for (let i = 0; i < MAGIC.length; i++) {
    if (r.readUint8() !== MAGIC[i]) throw new DecodeError('bad-magic', 'input does not start with the "LGN" magic bytes')
  }
  const version = r.readUint8()
  if (version < OLDEST_READABLE_FORMAT_VERSION || version > FORMAT_VERSION) {
    throw new DecodeError('bad-version', `format version ${version}, expected ${OLDEST_READABLE_FORMAT_VERSION} to ${FORMAT_VERSION}`)
  }
  return { version, kind: r.readUint8() }
}

/**
 * The kind byte of any Legion encoding (EventFold, Diff or a peer protocol message), after
 * checking the magic and version. Throws {@link DecodeError}.
 */
export function peekKind (bytes: Uint8Array): number {
  return decodeWithin(bytes.subarray(0, 5), DEFAULT_DECODE_LIMITS, readHeader)
}

/** Reads a header of `kind` and returns its format version. */
function expectKind (r: Reader, kind: number): number {
  const { version, kind: actual } = readVersionedHeader(r)
  if (actual !== kind) throw new DecodeError('bad-kind', `message kind ${actual}, expected ${kind}`)
  return version
}

/** Writes an event id in standalone form: varuint counter, then the participant unless BOTTOM. */
export function writeEventId (w: Writer, id: EventId): void {
  checkEventIdForEncoding(id)
  w.writeVarUint(id.counter)
  if (id.counter !== 0) w.writeString(id.participant)
}

/** Reads an event id written by {@link writeEventId}. */
export function readEventId (r: Reader, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): EventId {
  const counter = r.readVarUint()
  if (counter === 0) return BOTTOM
  return { counter, participant: r.readString(limits.maxStringBytes) }
}

interface EncodableEvent<E, O> {
  readonly id: EventId
  readonly delta: Delta<E, O> | undefined
  readonly acks: readonly Participant[]
  readonly signature?: Uint8Array | undefined
}

function collectEvents<E, O> (table: ParticipantTableWriter, events: ReadonlyArray<EncodableEvent<E, O>>): void {
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as EncodableEvent<E, O>
    table.addEventId(event.id)
    table.addAll(event.acks)
    const delta = event.delta
    if (delta === undefined) continue
    if (delta.kind === 'join' || delta.kind === 'unjoin') table.add(delta.participant)
    else if (delta.kind === 'error') table.addAll(delta.errorAcks)
  }
}

function writeDigest (w: Writer, digest: InfimumDigest): void {
  w.writeVarUint(digest.count)
  w.writeVarUint(digest.hash)
  // Canonical: no throws is written as 0 and read back as the field left out.
  if (digest.throws === 0) throw new EncodeError('a digest with no throws must leave the field out')
  w.writeVarUint(digest.throws ?? 0)
}

function readDigest (r: Reader, version: number): InfimumDigest {
  const count = r.readVarUint()
  const hash = r.readVarUint()
  if (version < 5) return { count, hash }
  const throws = r.readVarUint()
  if (throws > count) throw new DecodeError('invalid', `a digest counts ${throws} throws among ${count} events`)
  return throws === 0 ? { count, hash } : { count, hash, throws }
}

function writeEvents<E, S, O> (
  w: Writer,
  table: ParticipantTableWriter,
  codecs: FoldCodecs<E, S, O>,
  infimumId: EventId,
  events: ReadonlyArray<EncodableEvent<E, O>>,
  allowOmitted: boolean
): void {
  w.writeVarUint(events.length)
  let previous = infimumId
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as EncodableEvent<E, O>
    const id = event.id
    checkEventIdForEncoding(id)
    if (compareEventIds(previous, id) >= 0) {
      throw new EncodeError(`event ${id.counter}:${id.participant} is not above the one before it (infimum or previous event)`)
    }
    w.writeVarUint(id.counter - previous.counter)
    table.writeParticipant(w, id.participant)
    const delta = event.delta
    if (delta === undefined) {
      if (!allowOmitted) throw new EncodeError('an EventFold event must have a delta')
      w.writeUint8(DELTA_OMITTED)
    } else {
      // An error does not carry the event, so it carries no signature either.
      const signature = delta.kind === 'error' ? undefined : event.signature
      const signed = signature === undefined ? 0 : DELTA_SIGNED
      if (signature !== undefined) {
        if (signature.length > MAX_SIGNATURE_BYTES) throw new EncodeError(`a signature of ${signature.length} bytes exceeds ${MAX_SIGNATURE_BYTES}`)
      }
      switch (delta.kind) {
        case 'event':
          w.writeUint8(DELTA_EVENT + signed)
          if (signature !== undefined) w.writeBytes(signature)
          codecs.event.encode(delta.event, w)
          break
        case 'join':
          w.writeUint8(DELTA_JOIN + signed)
          if (signature !== undefined) w.writeBytes(signature)
          table.writeParticipant(w, delta.participant)
          break
        case 'unjoin':
          w.writeUint8(DELTA_UNJOIN + signed)
          if (signature !== undefined) w.writeBytes(signature)
          table.writeParticipant(w, delta.participant)
          break
        case 'error':
          if (delta.thrown !== undefined) {
            w.writeUint8(DELTA_THROWN)
            w.writeString(delta.thrown)
          } else {
            w.writeUint8(DELTA_ERROR)
            codecs.output.encode(delta.output, w)
          }
          table.writeSet(w, delta.errorAcks)
          break
        default:
          throw new EncodeError(`unknown delta kind ${String((delta as { kind: unknown }).kind)}`)
      }
    }
    table.writeSet(w, event.acks)
    previous = id
  }
}

function readEvents<E, S, O> (
  r: Reader,
  table: ParticipantTableReader,
  codecs: FoldCodecs<E, S, O>,
  limits: DecodeLimits,
  infimumId: EventId,
  allowOmitted: boolean,
  version: number
): Array<DiffEvent<E, O>> {
  const n = r.readCount(limits.maxItems, MIN_EVENT_BYTES, 'event list')
  const events: Array<DiffEvent<E, O>> = []
  let previousCounter = infimumId.counter
  // BOTTOM has no index; -1 sorts below every participant, as "" does.
  let previousIndex = infimumId.counter === 0 ? -1 : table.participants.indexOf(infimumId.participant)
  for (let i = 0; i < n; i++) {
    const step = r.readVarUint()
    const counter = previousCounter + step
    const index = table.readIndex(r)
    if (!Number.isSafeInteger(counter) || counter < 1) throw new DecodeError('invalid', `event counter ${counter} is not a safe integer >= 1`)
    if (step === 0 && index <= previousIndex) {
      throw new DecodeError('invalid', `event ids not strictly ascending above the infimum at event ${i}`)
    }
    const id: EventId = { counter, participant: table.participants[index] as Participant }
    let tag = r.readUint8()
    let signature: Uint8Array | undefined
    if (tag > DELTA_SIGNED && tag <= DELTA_SIGNED + DELTA_UNJOIN) {
      signature = r.readBytes(MAX_SIGNATURE_BYTES)
      tag -= DELTA_SIGNED
    }
    let delta: Delta<E, O> | undefined
    switch (tag) {
      case DELTA_EVENT:
        delta = { kind: 'event', event: codecs.event.decode(r, limits) }
        break
      case DELTA_JOIN:
        delta = { kind: 'join', participant: table.readParticipant(r) }
        break
      case DELTA_UNJOIN:
        delta = { kind: 'unjoin', participant: table.readParticipant(r) }
        break
      case DELTA_ERROR: {
        const output = codecs.output.decode(r, limits)
        delta = { kind: 'error', output, errorAcks: table.readSet(r, limits) }
        break
      }
      case DELTA_THROWN: {
        if (version < 5) throw new DecodeError('bad-tag', `delta tag 5 (a thrown failure) in format version ${version} at offset ${r.offset - 1}`)
        const thrown = r.readString(limits.maxStringBytes)
        delta = { kind: 'error', thrown, errorAcks: table.readSet(r, limits) }
        break
      }
      case DELTA_OMITTED:
        // Only a diff may leave a body out; an EventFold carries every one.
        if (!allowOmitted) throw new DecodeError('bad-tag', `delta tag 0 (body left out) in an EventFold at offset ${r.offset - 1}`)
        delta = undefined
        break
      default:
        throw new DecodeError('bad-tag', `unknown delta tag ${tag} at offset ${r.offset - 1}`)
    }
    const acks = table.readSet(r, limits)
    events.push(signature === undefined ? { id, delta, acks } : { id, delta, acks, signature })
    previousCounter = counter
    previousIndex = index
  }
  return events
}

/**
 * The bytes a creator signs for one of its events (see `EventSignatures` in the core):
 * ```
 * MAGIC · u8 0 · u8 4 · string origin · standalone event id · u8 delta tag (1-3) · body
 * ```
 * The body is written as in an event list, with every participant spelled out. Version byte
 * 0 keeps signatures valid across format versions as long as this layout stays. The origin
 * binds the signature to one cluster, the id to one place in its order.
 * @throws {@link EncodeError} if the id is invalid or the user codec rejects the event
 */
export function encodeSignedEvent<E, S, O> (origin: string, id: EventId, delta: SignedDelta<E, O>, codecs: FoldCodecs<E, S, O>): Uint8Array {
  const w = new Writer(64)
  w.writeRaw(MAGIC)
  w.writeUint8(0)
  w.writeUint8(SIGNED_EVENT_KIND)
  w.writeString(origin)
  writeEventId(w, id)
  switch (delta.kind) {
    case 'event':
      w.writeUint8(DELTA_EVENT)
      codecs.event.encode(delta.event, w)
      break
    case 'join':
      w.writeUint8(DELTA_JOIN)
      w.writeString(delta.participant)
      break
    case 'unjoin':
      w.writeUint8(DELTA_UNJOIN)
      w.writeString(delta.participant)
      break
  }
  return w.finish()
}

/** Encodes an event id on its own (kind 3). Throws {@link EncodeError} for an invalid id. */
export function encodeEventId (id: EventId): Uint8Array {
  const w = new Writer(32)
  writeHeader(w, MessageKind.eventId)
  writeEventId(w, id)
  return w.finish()
}

/** Decodes bytes from {@link encodeEventId}. Throws only {@link DecodeError}. */
export function decodeEventId (bytes: Uint8Array, limits?: Partial<DecodeLimits>): EventId {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    expectKind(r, MessageKind.eventId)
    return readEventId(r, resolved)
  })
}

/**
 * Encodes a whole fold (kind 1). Deterministic: equal snapshots give equal bytes.
 * @throws {@link EncodeError} if the snapshot breaks an invariant (events not strictly
 * ascending above the infimum, unsorted ack or participant lists, bad counters) or a user
 * codec rejects a value
 */
export function encodeEventFold<E, S, O> (snapshot: EventFoldSnapshot<E, S, O>, codecs: FoldCodecs<E, S, O>): Uint8Array {
  const { infimum, events } = snapshot
  const table = new ParticipantTableWriter()
  table.addEventId(infimum.id)
  table.addAll(infimum.participants)
  collectEvents(table, events)
  const w = new Writer(1024)
  writeHeader(w, MessageKind.eventFold)
  w.writeString(snapshot.origin)
  table.write(w)
  table.writeEventId(w, infimum.id)
  writeDigest(w, infimum.digest)
  table.writeSet(w, infimum.participants)
  codecs.state.encode(infimum.state, w)
  writeEvents(w, table, codecs, infimum.id, events, false)
  return w.finish()
}

/**
 * Decodes bytes from {@link encodeEventFold}, validating every invariant of the snapshot.
 * Throws only {@link DecodeError}.
 */
export function decodeEventFold<E, S, O> (
  bytes: Uint8Array,
  codecs: FoldCodecs<E, S, O>,
  limits?: Partial<DecodeLimits>
): EventFoldSnapshot<E, S, O> {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    const version = expectKind(r, MessageKind.eventFold)
    const origin = r.readString(resolved.maxStringBytes)
    const table = ParticipantTableReader.read(r, resolved)
    const id = table.readEventId(r)
    const digest = readDigest(r, version)
    const participants = table.readSet(r, resolved)
    const state = codecs.state.decode(r, resolved)
    const events = readEvents(r, table, codecs, resolved, id, false, version) as Array<OutstandingEvent<E, O>>
    table.expectAllUsed()
    return { origin, infimum: { id, digest, participants, state }, events }
  })
}

/**
 * Encodes a diff (kind 2). Deterministic, given the `context`: which participants
 * it fingerprints, and which origin it implies.
 * @throws {@link EncodeError} if the diff breaks an invariant, a user codec rejects a value,
 * or two participants share a fingerprint
 */
export function encodeDiff<E, S, O> (diff: Diff<E, O>, codecs: FoldCodecs<E, S, O>, context?: DiffContext): Uint8Array {
  const table = new ParticipantTableWriter()
  table.addEventId(diff.infimumId)
  collectEvents(table, diff.events)
  const w = new Writer(1024)
  writeHeader(w, MessageKind.diff)
  if (context?.origin !== undefined && diff.origin === '' && context.origin !== '') throw new EncodeError('an empty origin cannot be told from the implied one')
  w.writeString(context?.origin !== undefined && diff.origin === context.origin ? '' : diff.origin)
  table.write(w, context)
  table.writeEventId(w, diff.infimumId)
  writeDigest(w, diff.infimumDigest)
  writeEvents(w, table, codecs, diff.infimumId, diff.events, true)
  return w.finish()
}

/**
 * Decodes bytes from {@link encodeDiff}, validating its invariants; `context` resolves
 * fingerprinted participants and supplies an implied origin. Throws only {@link DecodeError}.
 */
export function decodeDiff<E, S, O> (bytes: Uint8Array, codecs: FoldCodecs<E, S, O>, limits?: Partial<DecodeLimits>, context?: DiffContext): Diff<E, O> {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    const version = expectKind(r, MessageKind.diff)
    const written = r.readString(resolved.maxStringBytes)
    const origin = written === '' && context?.origin !== undefined ? context.origin : written
    const table = ParticipantTableReader.read(r, resolved, context)
    const infimumId = table.readEventId(r)
    const infimumDigest = readDigest(r, version)
    const events = readEvents(r, table, codecs, resolved, infimumId, true, version)
    table.expectAllUsed()
    return { origin, infimumId, infimumDigest, events }
  })
}
