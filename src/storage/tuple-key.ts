/**
 * Tuple keys: an order-preserving, unambiguous encoding of a list of strings, numbers and byte
 * strings into one key of a {@link KeyValueView}, so callers can build keys such as
 * `('event', 17, 'alice')` without inventing separators that might also occur inside a part.
 * Pure functions, no I/O; storage itself never requires keys to be tuples.
 *
 * Encoding: each part is one type tag followed by its body, and parts are concatenated.
 * ```
 * number   0x20  8 bytes: the IEEE-754 double, big-endian, sign bit flipped when positive and
 *                every bit flipped when negative (so byte order is numeric order); -0 is stored
 *                as 0, NaN is refused
 * string   0x30  UTF-8 bytes, each 0x00 written as 0x00 0xFF, then the terminator 0x00 0x00
 * bytes    0x40  the bytes, each 0x00 written as 0x00 0xFF, then the terminator 0x00 0x00
 * ```
 * Properties the tests pin:
 * 1. Decoding gives back the parts (numbers as numbers, strings as strings, bytes as bytes).
 * 2. Bytewise order of keys is tuple order: parts compare left to right; numbers by value,
 *    strings by Unicode code point (UTF-8 byte order, which differs from JavaScript's UTF-16
 *    `<` for characters beyond U+FFFF), byte strings bytewise; across types, every number
 *    sorts before every string and every string before every byte string; a tuple sorts before
 *    every longer tuple it is a prefix of.
 * 3. The key of a tuple is a byte prefix of the key of every tuple that extends it, so
 *    `range({ prefix: tupleKey('event') })` visits exactly the tuples whose first part is
 *    `'event'`, and of no other. (A string part is not a byte prefix of a longer string
 *    part: a two-byte terminator sees to that; with a one-byte 0x00 terminator, `''` would be a
 *    byte prefix of `'\0'`, written 0x00 0xFF.)
 *
 * @module
 */

/** One part of a tuple key. */
export type KeyPart = string | number | Uint8Array

/** A part of a tuple key could not be decoded: the bytes are not a tuple key. */
export class KeyDecodeError extends Error {
  /** Always `'KeyDecodeError'`. */
  override readonly name = 'KeyDecodeError'
  /** The offset in the key where decoding failed. */
  readonly offset: number

  /**
   * @param offset - where in the key decoding failed
   * @param message - what was wrong, for humans
   */
  constructor (offset: number, message: string) {
    super(`not a tuple key at byte ${offset}: ${message}`)
    this.offset = offset
  }
}

const NUMBER_TAG = 0x20
const STRING_TAG = 0x30
const BYTES_TAG = 0x40
const ESCAPE = 0xff

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Encodes `parts` as one key (see the module comment for the format and its order).
 *
 * @example
 * ```ts
 * const events = store.namespace('group/orders')
 * await events.put(tupleKey('event', 17, 'alice'), body)
 * for await (const { key } of events.range({ prefix: tupleKey('event') })) {
 *   const [, counter, participant] = readTupleKey(key) // 17, 'alice'
 * }
 * ```
 *
 * @param parts - strings (well-formed Unicode), numbers (not NaN) and byte strings
 * @returns the key, a fresh array
 * @throws TypeError when a part is of another type, or a string has a lone surrogate
 * @throws RangeError when a number is NaN
 */
export function tupleKey (...parts: KeyPart[]): Uint8Array {
  // Measured first and written into one array: keys are made for every stored record, and
  // an array per part plus their concatenation cost more than the encoding itself.
  let total = 0
  for (let i = 0; i < parts.length; i++) total += encodedLength(parts[i], i)
  const out = new Uint8Array(total)
  let offset = 0
  for (const part of parts) offset = writePart(part, out, offset)
  return out
}

/**
 * Decodes a key written by {@link tupleKey}.
 *
 * @param key - the key bytes
 * @returns the parts, in order (byte strings as fresh arrays)
 * @throws {@link KeyDecodeError} when `key` is not a tuple key
 */
export function readTupleKey (key: Uint8Array): KeyPart[] {
  if (!(key instanceof Uint8Array)) throw new TypeError('key must be a Uint8Array')
  const parts: KeyPart[] = []
  let offset = 0
  while (offset < key.length) {
    const tag = key[offset]!
    if (tag === NUMBER_TAG) {
      if (offset + 9 > key.length) throw new KeyDecodeError(offset, 'a number part is cut short')
      parts.push(decodeNumber(key.subarray(offset + 1, offset + 9)))
      offset += 9
    } else if (tag === STRING_TAG || tag === BYTES_TAG) {
      const { bytes, next } = unescape(key, offset + 1)
      if (tag === BYTES_TAG) {
        parts.push(bytes)
      } else {
        try {
          parts.push(utf8Decoder.decode(bytes))
        } catch {
          throw new KeyDecodeError(offset, 'a string part is not valid UTF-8')
        }
      }
      offset = next
    } else {
      throw new KeyDecodeError(offset, `unknown part tag 0x${tag.toString(16)}`)
    }
  }
  return parts
}

/** The last string part encoded to UTF-8, and its bytes: `writePart` reuses what `encodedLength` encoded. */
let lastString: string | undefined
let lastUtf8: Uint8Array = new Uint8Array(0)

/** Checks part `index` and returns its encoded length. */
function encodedLength (part: KeyPart | undefined, index: number): number {
  if (typeof part === 'number') {
    if (Number.isNaN(part)) throw new RangeError(`parts[${index}] is NaN, which has no place in an order`)
    return 9
  }
  if (typeof part === 'string') {
    if (isPlainAscii(part)) return part.length + 3
    if (!part.isWellFormed()) throw new TypeError(`parts[${index}] is a string with a lone surrogate, which UTF-8 cannot carry`)
    return escapedLength(utf8Of(part)) + 3
  }
  if (part instanceof Uint8Array) return escapedLength(part) + 3
  throw new TypeError(`parts[${index}] must be a string, a number or a Uint8Array`)
}

/** Writes a part checked by `encodedLength` at `offset`; returns the offset after it. */
function writePart (part: KeyPart, out: Uint8Array, offset: number): number {
  if (typeof part === 'number') {
    numberView.setFloat64(0, part === 0 ? 0 : part)
    out[offset] = NUMBER_TAG
    if ((numberBytes[0]! & 0x80) === 0) {
      out[offset + 1] = numberBytes[0]! | 0x80
      for (let i = 1; i < 8; i++) out[offset + 1 + i] = numberBytes[i]!
    } else {
      for (let i = 0; i < 8; i++) out[offset + 1 + i] = ~numberBytes[i]! & 0xff
    }
    return offset + 9
  }
  if (typeof part === 'string') {
    if (isPlainAscii(part)) {
      out[offset++] = STRING_TAG
      for (let i = 0; i < part.length; i++) out[offset++] = part.charCodeAt(i)
      out[offset] = 0
      out[offset + 1] = 0
      return offset + 2
    }
    return writeEscaped(STRING_TAG, utf8Of(part), out, offset)
  }
  return writeEscaped(BYTES_TAG, part, out, offset)
}

const numberBytes = new Uint8Array(8)
const numberView = new DataView(numberBytes.buffer)

/** A string of ASCII characters other than 0: its UTF-8 is its char codes, with nothing to escape. */
function isPlainAscii (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0 || c > 0x7f) return false
  }
  return true
}

function utf8Of (s: string): Uint8Array {
  if (s !== lastString) {
    lastUtf8 = utf8Encoder.encode(s)
    lastString = s
  }
  return lastUtf8
}

/** Length of `body` with every 0x00 escaped. */
function escapedLength (body: Uint8Array): number {
  let zeros = 0
  for (const byte of body) if (byte === 0) zeros++
  return body.length + zeros
}

/** Writes `tag`, `body` with every 0x00 as 0x00 0xff, then the terminator 0x00 0x00. */
function writeEscaped (tag: number, body: Uint8Array, out: Uint8Array, offset: number): number {
  out[offset++] = tag
  for (const byte of body) {
    out[offset++] = byte
    if (byte === 0) out[offset++] = ESCAPE
  }
  out[offset] = 0
  out[offset + 1] = 0
  return offset + 2
}

function unescape (key: Uint8Array, start: number): { bytes: Uint8Array, next: number } {
  const body: number[] = []
  let i = start
  for (;;) {
    if (i >= key.length) throw new KeyDecodeError(start - 1, 'a string or bytes part has no terminator')
    const byte = key[i]!
    if (byte !== 0) {
      body.push(byte)
      i++
    } else if (key[i + 1] === ESCAPE) {
      body.push(0)
      i += 2
    } else if (key[i + 1] === 0) {
      return { bytes: Uint8Array.from(body), next: i + 2 }
    } else {
      throw new KeyDecodeError(i, 'a 0x00 in a string or bytes part is neither escaped nor a terminator')
    }
  }
}

function decodeNumber (bytes: Uint8Array): number {
  const raw = new Uint8Array(bytes)
  if ((raw[0]! & 0x80) !== 0) {
    raw[0] = raw[0]! & 0x7f
  } else {
    for (let i = 0; i < 8; i++) raw[i] = ~raw[i]! & 0xff
  }
  return new DataView(raw.buffer).getFloat64(0)
}
