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

/** Bytes of a participant fingerprint in a participant table. */
export const FINGERPRINT_BYTES = 8

/**
 * What the sender and the receiver of a Diff already share, so the Diff need not spell it
 * out: the participants the receiver knows (the sender fingerprints them, the receiver
 * resolves; the codec only carries the bytes, and choosing a hash nobody can collide on
 * purpose, such as a truncated SHA-256, is the caller's business), and the origin (when the
 * channel itself names the cluster).
 */
export interface DiffContext {
  /**
   * The origin both sides assume: a Diff from this origin is written with an empty origin,
   * and an empty origin reads back as this one.
   */
  readonly origin?: string
  /** The {@link FINGERPRINT_BYTES}-byte fingerprint to write for `participant`, or `undefined` to write it in full. */
  readonly fingerprint?: (participant: Participant) => Uint8Array | undefined
  /** The participant a fingerprint stands for, or `undefined` if it is unknown here. */
  readonly resolve?: (fingerprint: Uint8Array) => Participant | undefined
}

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

function checkEventIdForEncoding (id: EventId): void {
  if (id.counter === 0) {
    if (id.participant !== '') throw new EncodeError(`event id with counter 0 must be BOTTOM, got participant ${JSON.stringify(id.participant)}`)
  } else if (!(Number.isSafeInteger(id.counter) && id.counter >= 1)) {
    throw new EncodeError(`event id counter must be a safe integer >= 1, got ${String(id.counter)}`)
  }
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

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** A string with one char per byte, to use encoded bytes as a map key. */
function bytesKey (bytes: Uint8Array): string {
  let key = ''
  for (let i = 0; i < bytes.length; i += 4096) key += String.fromCharCode(...bytes.subarray(i, i + 4096))
  return key
}

/**
 * The encoding side of a participant table: collects participants, then writes the table
 * and refers to participants by index. Exported so runtime wire messages can share the
 * layout.
 */
export class ParticipantTableWriter {
  private readonly names = new Set<Participant>()
  private index: Map<Participant, number> | undefined
  private readonly sets = new Map<readonly Participant[], Uint8Array>()

  /** Adds a participant; call for every participant the message will write, before {@link write}. */
  add (participant: Participant): void {
    this.names.add(participant)
  }

  /** Adds every participant of a list. */
  addAll (participants: readonly Participant[]): void {
    for (let i = 0; i < participants.length; i++) this.names.add(participants[i] as Participant)
  }

  /** Adds the participant of an event id, unless it is BOTTOM. */
  addEventId (id: EventId): void {
    if (id.counter !== 0) this.names.add(id.participant)
  }

  /**
   * Writes the table (sorted), naming participants by fingerprint where `context` gives one;
   * no participant may be added afterwards.
   */
  write (w: Writer, context?: DiffContext): void {
    const sorted = [...this.names].sort()
    this.index = new Map(sorted.map((name, i) => [name, i]))
    const full: Participant[] = []
    const short: Uint8Array[] = []
    for (const name of sorted) {
      const fp = context?.fingerprint?.(name)
      if (fp === undefined) { full.push(name); continue }
      if (fp.length !== FINGERPRINT_BYTES) throw new EncodeError(`a fingerprint must have ${FINGERPRINT_BYTES} bytes`)
      short.push(fp)
    }
    w.writeVarUint(full.length)
    for (const name of full) w.writeString(name)
    short.sort(compareBytes)
    w.writeVarUint(short.length)
    for (let i = 0; i < short.length; i++) {
      if (i > 0 && compareBytes(short[i - 1]!, short[i]!) === 0) throw new EncodeError('two participants share a fingerprint')
      w.writeRaw(short[i]!)
    }
  }

  /** Index of a participant in the written table. */
  indexOf (participant: Participant): number {
    const i = this.index?.get(participant)
    if (i === undefined) throw new EncodeError(`participant ${JSON.stringify(participant)} is not in the table`)
    return i
  }

  /** Writes a participant as its table index. */
  writeParticipant (w: Writer, participant: Participant): void {
    w.writeVarUint(this.indexOf(participant))
  }

  /** Writes an event id in indexed form. */
  writeEventId (w: Writer, id: EventId): void {
    checkEventIdForEncoding(id)
    w.writeVarUint(id.counter)
    if (id.counter !== 0) this.writeParticipant(w, id.participant)
  }

  /**
   * Writes a participant set; throws {@link EncodeError} unless it is sorted and unique. The
   * same array object is encoded once per message and copied after that: folds hand out one
   * array per distinct ack set.
   */
  writeSet (w: Writer, participants: readonly Participant[]): void {
    let bytes = this.sets.get(participants)
    if (bytes === undefined) {
      bytes = this.encodeSet(participants)
      this.sets.set(participants, bytes)
    }
    w.writeRaw(bytes)
  }

  private encodeSet (participants: readonly Participant[]): Uint8Array {
    const size = this.index?.size ?? 0
    const members: number[] = []
    let previous = -1
    for (let i = 0; i < participants.length; i++) {
      const index = this.indexOf(participants[i] as Participant)
      if (index <= previous) throw new EncodeError(`participant list not sorted and unique at ${JSON.stringify(participants[i])}`)
      members.push(index)
      previous = index
    }
    // More than half the table: list who is missing instead (acks are mostly complete).
    const complement = members.length * 2 > size
    let listed = members
    if (complement) {
      listed = []
      for (let i = 0, j = 0; i < size; i++) {
        if (members[j] === i) j++
        else listed.push(i)
      }
    }
    const w = new Writer(8 + listed.length)
    w.writeVarUint(listed.length * 2 + (complement ? 1 : 0))
    previous = -1
    for (const index of listed) {
      w.writeVarUint(index - previous - 1)
      previous = index
    }
    return w.finish()
  }
}

/**
 * The decoding side of a participant table: reads the table, resolves indexes, and checks at
 * the end that every entry was used (so the table is canonical).
 */
export class ParticipantTableReader {
  private readonly used: Uint8Array
  private usedCount = 0
  private readonly sets = new Map<string, Participant[]>()

  private constructor (private readonly names: readonly Participant[]) {
    this.used = new Uint8Array(names.length)
  }

  /** Reads a table; its strings and its fingerprints must each be strictly ascending. */
  static read (r: Reader, limits: DecodeLimits, context?: DiffContext): ParticipantTableReader {
    const n = r.readCount(limits.maxItems, 1, 'participant table')
    const full: Participant[] = []
    for (let i = 0; i < n; i++) {
      const name = r.readString(limits.maxStringBytes)
      if (i > 0 && !((full[i - 1] as string) < name)) {
        throw new DecodeError('invalid', 'participant table not strictly ascending')
      }
      full.push(name)
    }
    const k = r.readCount(limits.maxItems - n, FINGERPRINT_BYTES, 'participant fingerprints')
    if (k === 0) return new ParticipantTableReader(full)
    const all = new Set(full)
    let previous: Uint8Array | undefined
    for (let i = 0; i < k; i++) {
      const fp = r.readRaw(FINGERPRINT_BYTES)
      if (previous !== undefined && compareBytes(previous, fp) >= 0) throw new DecodeError('invalid', 'participant fingerprints not strictly ascending')
      previous = fp
      const name = context?.resolve?.(fp)
      if (name === undefined) throw new DecodeError('unknown-participant', 'a participant named by a fingerprint unknown here')
      if (all.has(name)) throw new DecodeError('invalid', 'a participant is in the table twice')
      all.add(name)
    }
    return new ParticipantTableReader([...all].sort())
  }

  /** The table's participants, ascending. */
  get participants (): readonly Participant[] {
    return this.names
  }

  /** Reads a participant index, checks it and marks it used. */
  readIndex (r: Reader): number {
    const i = r.readVarUint()
    this.use(i)
    return i
  }

  private use (i: number): void {
    if (i >= this.names.length) throw new DecodeError('invalid', `participant index ${i} outside a table of ${this.names.length}`)
    if (this.used[i] === 0) {
      this.used[i] = 1
      this.usedCount++
    }
  }

  /** Reads a participant written as a table index. */
  readParticipant (r: Reader): Participant {
    return this.names[this.readIndex(r)] as Participant
  }

  /** Reads an event id in indexed form. */
  readEventId (r: Reader): EventId {
    const counter = r.readVarUint()
    if (counter === 0) return BOTTOM
    return { counter, participant: this.readParticipant(r) }
  }

  /**
   * Reads a participant set (sorted and unique by construction). Equal encodings within one
   * message decode to the same array object, which callers must not mutate.
   */
  readSet (r: Reader, limits: DecodeLimits): Participant[] {
    const start = r.offset
    const size = this.names.length
    const header = r.readVarUint()
    const complement = header % 2 === 1
    const n = (header - (header % 2)) / 2
    if (n > size || n > limits.maxItems) throw new DecodeError('invalid', `a participant set lists ${n} of a table of ${size}`)
    const listed: number[] = []
    let index = -1
    for (let i = 0; i < n; i++) {
      index += r.readVarUint() + 1
      if (index >= size) throw new DecodeError('invalid', `participant index ${index} outside a table of ${size}`)
      listed.push(index)
    }
    const members = complement ? size - n : n
    // Canonical: the complement form exactly when the set holds more than half the table.
    if (complement !== (members * 2 > size)) throw new DecodeError('invalid', 'participant set not in its canonical form')
    const key = bytesKey(r.bytesFrom(start))
    const known = this.sets.get(key)
    if (known !== undefined) return known
    const set: Participant[] = []
    if (complement) {
      for (let i = 0, j = 0; i < size; i++) {
        if (listed[j] === i) { j++; continue }
        this.use(i)
        set.push(this.names[i] as Participant)
      }
    } else {
      for (const i of listed) { this.use(i); set.push(this.names[i] as Participant) }
    }
    this.sets.set(key, set)
    return set
  }

  /** Throws `invalid` if an entry of the table was never referenced. */
  expectAllUsed (): void {
    if (this.usedCount !== this.names.length) {
      throw new DecodeError('invalid', `${this.names.length - this.usedCount} participant table entries are never used`)
    }
  }
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
