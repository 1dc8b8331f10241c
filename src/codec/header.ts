/**
 * What every top-level Legion encoding starts with: the magic bytes, the format version and
 * the kind of value; and the standalone form of an event id, which several encodings share.
 * The layouts of the values themselves are in eventfold.ts (format 6), legacy.ts (formats 4
 * and 5, read only) and the peer protocols' modules.
 *
 * @module
 */
import type { Reader, Writer } from './buffer.js'
import { DEFAULT_DECODE_LIMITS, decodeWithin, type DecodeLimits } from './codec.js'
import { DecodeError, EncodeError } from './errors.js'
import { BOTTOM, type EventId } from '../eventfold/types.js'

/** The magic bytes every top-level encoding starts with: ASCII "LGN". */
export const MAGIC: Uint8Array = Uint8Array.of(0x4c, 0x47, 0x4e)

/** The format version this build writes (and the newest it reads). */
export const FORMAT_VERSION = 6

/**
 * The oldest format version this build still reads, and only to migrate what was stored:
 * formats 4 and 5 hold no logs, so a fold stored in them loads only when nothing was
 * outstanding (see `migrateEventFold` in legacy.ts).
 */
export const OLDEST_READABLE_FORMAT_VERSION = 4

/** Kinds of top-level encodings (the header's kind byte). */
export const MessageKind = Object.freeze({
  /** An `EventFoldSnapshot`. */
  eventFold: 1,
  /** A `Diff`. */
  diff: 2,
  /** A standalone `EventId`. */
  eventId: 3,
  /** One outstanding event, as a peer's storage keeps it (format 6). */
  storedEvent: 5,
  /** One participant's log, as a peer's storage keeps it (format 6). */
  storedLog: 6,
  /** The infimum id and digest a group's settled records reach, as a peer's storage keeps it (format 6). */
  storedReach: 8
})

/** The first kind byte reserved for runtime wire messages; kinds 16..255 are theirs. */
export const FIRST_WIRE_KIND = 16

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

/** Reads a header: its version (checked as {@link readHeader} does) and kind. */
export function readVersionedHeader (r: Reader): { readonly version: number, readonly kind: number } {
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

/** The format version of any Legion encoding, after checking the magic. Throws {@link DecodeError}. */
export function peekVersion (bytes: Uint8Array): number {
  return decodeWithin(bytes.subarray(0, 5), DEFAULT_DECODE_LIMITS, r => readVersionedHeader(r).version)
}

/**
 * Reads a header of `kind` and returns its format version, which must be one of `versions`
 * (by default only {@link FORMAT_VERSION}).
 */
export function expectKind (r: Reader, kind: number, versions: readonly number[] = [FORMAT_VERSION]): number {
  const { version, kind: actual } = readVersionedHeader(r)
  if (!versions.includes(version)) throw new DecodeError('bad-version', `format version ${version} of kind ${actual}, expected ${versions.join(' or ')}`)
  if (actual !== kind) throw new DecodeError('bad-kind', `message kind ${actual}, expected ${kind}`)
  return version
}

/**
 * The largest event counter a decoder takes: 2^52. A counter is a Lamport clock, so a peer that
 * folds an event takes larger counters for its own next ones; an event of 2^53 - 1 (a buggy or
 * hostile participant's, signed) would leave it none that encode. Half the safe range leaves
 * 2^52 events of headroom after the largest counter any peer accepts; an honest cluster gets
 * near it after 140 years at a million events a second.
 */
export const MAX_EVENT_COUNTER = 2 ** 52

/** Throws {@link DecodeError} if a decoded event counter is past {@link MAX_EVENT_COUNTER}. */
export function checkDecodedCounter (counter: number): void {
  if (counter > MAX_EVENT_COUNTER) throw new DecodeError('invalid', `event counter ${counter} is past 2^52`)
}

/** Throws {@link EncodeError} unless `id` is BOTTOM or has a safe counter >= 1. */
export function checkEventIdForEncoding (id: EventId): void {
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
  checkDecodedCounter(counter)
  return { counter, participant: r.readString(limits.maxStringBytes) }
}
