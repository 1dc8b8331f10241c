/**
 * Legion's binary codec: deterministic, versioned and bounded encodings of the EventFold's
 * data, plus the {@link Codec} contract through which applications serialise their own
 * events, states and outputs ({@link jsonCodec} covers plain data).
 *
 * Decoding never throws anything but {@link DecodeError}, whatever the bytes, and never
 * costs more than its {@link DecodeLimits} allow.
 *
 * @example
 * ```ts
 * import { encodeEventFold, decodeEventFold, jsonCodec } from './codec/index.js'
 *
 * const codecs = { event: jsonCodec, state: jsonCodec, output: jsonCodec }
 * const bytes = encodeEventFold(snapshot, codecs)
 * const copy = decodeEventFold(bytes, codecs, { maxBytes: 1 << 20 })
 * ```
 *
 * @module
 */
export type { Codec, DecodeLimits } from './codec.js'
export { DEFAULT_DECODE_LIMITS, resolveDecodeLimits, encodeWith, decodeWith, decodeWithin } from './codec.js'
export { DecodeError, EncodeError, LegacyFoldError, type DecodeErrorCode } from './errors.js'
export { Reader, Writer, varUintSize } from './buffer.js'
export { jsonCodec, MAX_ENCODE_DEPTH, type JsonValue, type JsonArray, type JsonObject } from './json.js'
export {
  type FoldCodecs,
  MAGIC,
  FORMAT_VERSION,
  OLDEST_READABLE_FORMAT_VERSION,
  MAX_EVENT_COUNTER,
  FINGERPRINT_BYTES,
  TABLE_HASH_BYTES,
  MAX_SIGNATURE_BYTES,
  MAX_HEADS_PER_SIGNATURE,
  MAX_HASH_BYTES,
  encodeLogLink,
  encodeLogHead,
  encodeHeadsRoot,
  encodeStoredEvent,
  decodeStoredEvent,
  encodeStoredLog,
  decodeStoredLog,
  encodeStoredReach,
  decodeStoredReach,
  peekVersion,
  type DiffContext,
  type SharedTable,
  MessageKind,
  FIRST_WIRE_KIND,
  writeHeader,
  readHeader,
  writeEventId,
  readEventId,
  encodeEventId,
  decodeEventId,
  encodeEventFold,
  decodeEventFold,
  encodeDiff,
  decodeDiff,
  ParticipantTableWriter,
  ParticipantTableReader
} from './eventfold.js'
export { migrateEventFold, decodeLegacyEventFold, decodeLegacyDiff, type LegacyDelta, type LegacyEvent, type LegacyEventFoldSnapshot, type LegacyDiff } from './legacy.js'
