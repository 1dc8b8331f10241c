/**
 * The contract between Legion and the user's types: a {@link Codec} turns one value into bytes
 * and back, and {@link DecodeLimits} bounds what a decode may cost. Legion never
 * serialises user events, states or outputs itself; it calls the codecs the application
 * provides (or the built-in `jsonCodec`), so the wire format of user data is the application's.
 *
 * @module
 */
import { Reader, Writer, finishPooled, takeWriter } from './buffer.js'
import { DecodeError, toDecodeError } from './errors.js'

/**
 * Bounds on what decoding untrusted bytes may cost. Exceeding one is a {@link DecodeError}
 * with code `limit`. Every field is a hard bound, checked before allocating.
 */
export interface DecodeLimits {
  /**
   * Largest input accepted, in bytes.
   * @default 67108864 (64 MiB)
   */
  readonly maxBytes: number
  /**
   * Most items in any one collection (array, object, event list, ack list, participant table).
   * @default 1000000
   */
  readonly maxItems: number
  /**
   * Deepest nesting of arrays and objects inside one user value.
   * @default 64
   */
  readonly maxDepth: number
  /**
   * Largest string or byte string, in bytes.
   * @default 16777216 (16 MiB)
   */
  readonly maxStringBytes: number
}

/** The limits used when a decode function is not given any. */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxBytes: 64 * 1024 * 1024,
  maxItems: 1_000_000,
  maxDepth: 64,
  maxStringBytes: 16 * 1024 * 1024
})

/**
 * Fills the fields of `limits` that are missing or `undefined` from
 * {@link DEFAULT_DECODE_LIMITS}. (A plain spread would let `{ maxDepth: undefined }` switch a
 * bound off, since every comparison with `undefined` is false.)
 */
export function resolveDecodeLimits (limits?: Partial<DecodeLimits>): DecodeLimits {
  if (limits === undefined) return DEFAULT_DECODE_LIMITS
  return {
    maxBytes: limits.maxBytes ?? DEFAULT_DECODE_LIMITS.maxBytes,
    maxItems: limits.maxItems ?? DEFAULT_DECODE_LIMITS.maxItems,
    maxDepth: limits.maxDepth ?? DEFAULT_DECODE_LIMITS.maxDepth,
    maxStringBytes: limits.maxStringBytes ?? DEFAULT_DECODE_LIMITS.maxStringBytes
  }
}

/**
 * Writes and reads values of one type.
 *
 * Rules Legion relies on:
 * 1. `decode` reads exactly the bytes `encode` wrote (values are not length-prefixed).
 * 2. Encoding is deterministic: equal values give equal bytes on every peer.
 * 3. `decode` respects `limits`, and may throw anything on bad input: Legion's decode
 *    functions wrap foreign errors into {@link DecodeError} code `invalid`.
 *
 * @typeParam T - the type of the values
 */
export interface Codec<T> {
  /** Appends `value` to `w`. */
  encode: (value: T, w: Writer) => void
  /** Reads one value from `r`. */
  decode: (r: Reader, limits: DecodeLimits) => T
}

/**
 * Encodes one value with `codec`, without a header: the bare bytes of the codec.
 * @throws {@link EncodeError} if the value is outside the codec's type
 */
export function encodeWith<T> (codec: Codec<T>, value: T): Uint8Array {
  const w = takeWriter()
  codec.encode(value, w)
  return finishPooled(w)
}

/**
 * Decodes bytes written by {@link encodeWith}. Throws only {@link DecodeError}, including
 * when bytes remain after the value (`trailing-bytes`).
 */
export function decodeWith<T> (codec: Codec<T>, bytes: Uint8Array, limits?: Partial<DecodeLimits>): T {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => codec.decode(r, resolved))
}

/**
 * Runs `read` over `bytes` with the size limit checked first, the end checked last and every
 * foreign error wrapped: the shared frame of every top-level decode function.
 */
export function decodeWithin<T> (bytes: Uint8Array, limits: DecodeLimits, read: (r: Reader) => T): T {
  try {
    if (!(bytes instanceof Uint8Array)) throw new DecodeError('invalid', 'input is not a Uint8Array')
    if (bytes.length > limits.maxBytes) {
      throw new DecodeError('limit', `input of ${bytes.length} bytes exceeds the limit of ${limits.maxBytes}`)
    }
    const r = new Reader(bytes)
    const value = read(r)
    r.expectEnd()
    return value
  } catch (err) {
    throw toDecodeError(err)
  }
}
