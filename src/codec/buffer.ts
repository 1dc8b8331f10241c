/**
 * The byte-level primitives every Legion encoding is built from: a growable {@link Writer}
 * and a bounds-checked {@link Reader} with symmetric `writeX` / `readX` pairs (the lib0
 * pattern). The reader is the codec's trust boundary: whatever the bytes, it either returns
 * a value or throws a {@link DecodeError}, and it never allocates more than the input could
 * justify. It also accepts only the one canonical encoding of each value (no overlong
 * varints, one NaN), so equal values always have equal bytes and re-encoding a decoded value
 * reproduces the input.
 *
 * @module
 */
import { DecodeError, EncodeError } from './errors.js'

const MAX_SAFE = Number.MAX_SAFE_INTEGER
const utf8Encoder = new TextEncoder()
// fatal: invalid UTF-8 must be rejected, not silently replaced by U+FFFD. ignoreBOM: a string
// that starts with U+FEFF must round-trip instead of losing its first character.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Strings up to this many UTF-16 units always fit a one-byte length prefix (3 bytes/unit). */
const SHORT_STRING_UNITS = 42
/** Decoded strings up to this many bytes try the ASCII path, which skips TextDecoder's setup. */
const SHORT_STRING_BYTES = 32
/** Slots of the decoded short-string cache (a power of two). */
const STRING_CACHE_SIZE = 4096
/** Recently decoded short ASCII strings, by a hash of their bytes; shared by every Reader. */
const stringCache: Array<string | undefined> = new Array<string | undefined>(STRING_CACHE_SIZE).fill(undefined)

/** Number of bytes `writeVarUint(n)` takes. */
export function varUintSize (n: number): number {
  let size = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    size++
  }
  return size
}

/**
 * A growable output buffer. Capacity doubles when full, so writing `n` bytes costs O(n)
 * amortised. Write methods throw {@link EncodeError} for values they cannot represent
 * exactly rather than silently truncating them.
 */
export class Writer {
  private buf: Uint8Array
  private view: DataView
  private pos = 0

  /** @param initialCapacity - bytes allocated up front; grows by doubling. */
  constructor (initialCapacity = 256) {
    this.buf = new Uint8Array(Math.max(16, initialCapacity))
    this.view = new DataView(this.buf.buffer)
  }

  /** Number of bytes written so far. */
  get length (): number {
    return this.pos
  }

  /** Makes room for `n` more bytes. */
  private ensure (n: number): void {
    const needed = this.pos + n
    if (needed <= this.buf.length) return
    let capacity = this.buf.length * 2
    while (capacity < needed) capacity *= 2
    const next = new Uint8Array(capacity)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
  }

  /** Writes one byte; `n` must be an integer in [0, 255]. */
  writeUint8 (n: number): void {
    if ((n & 0xff) !== n) throw new EncodeError(`not a byte: ${String(n)}`)
    this.ensure(1)
    this.buf[this.pos++] = n
  }

  /** Writes raw bytes without a length prefix (headers, magic numbers). */
  writeRaw (bytes: Uint8Array): void {
    this.ensure(bytes.length)
    this.buf.set(bytes, this.pos)
    this.pos += bytes.length
  }

  /**
   * Writes an unsigned LEB128 varint: 7 bits per byte, least significant group first, high
   * bit set on every byte but the last. `n` must be a safe integer `>= 0` (at most 8 bytes).
   */
  writeVarUint (n: number): void {
    if (!(Number.isSafeInteger(n) && n >= 0)) throw new EncodeError(`not a safe unsigned integer: ${String(n)}`)
    this.ensure(8)
    this.putVarUint(n)
  }

  /** Writes a varuint into capacity already ensured (at least 8 bytes, or `varUintSize(n)`). */
  private putVarUint (n: number): void {
    const buf = this.buf
    let pos = this.pos
    // Division for the bits above 31, then cheap bit operations for the rest.
    while (n > 0x7fffffff) {
      buf[pos++] = (n % 128) | 0x80
      n = Math.floor(n / 128)
    }
    while (n >= 0x80) {
      buf[pos++] = (n & 0x7f) | 0x80
      n >>>= 7
    }
    buf[pos++] = n
    this.pos = pos
  }

  /**
   * Writes a signed safe integer as a zigzag LEB128 varint (0, -1, 1, -2, ... map to 0, 1, 2,
   * 3, ...), byte-compatible with protobuf `sint64`. The zigzag value `2|n| - (n < 0)` can
   * exceed 2^53 and lose precision as a double, so it is never formed: the sign goes in bit 0
   * of the first byte and the magnitude follows, 6 bits then 7 bits per byte.
   */
  writeVarInt (n: number): void {
    if (!Number.isSafeInteger(n)) throw new EncodeError(`not a safe integer: ${String(n)}`)
    const negative = n < 0
    let m = negative ? -n - 1 : n
    this.ensure(8)
    const buf = this.buf
    let pos = this.pos
    let first = ((m % 64) << 1) | (negative ? 1 : 0)
    m = Math.floor(m / 64)
    if (m > 0) first |= 0x80
    buf[pos++] = first
    while (m > 0x7fffffff) {
      buf[pos++] = (m % 128) | 0x80
      m = Math.floor(m / 128)
    }
    if (m > 0) {
      while (m >= 0x80) {
        buf[pos++] = (m & 0x7f) | 0x80
        m >>>= 7
      }
      buf[pos++] = m
    }
    this.pos = pos
  }

  /** Writes an IEEE 754 double, little-endian. Every NaN is written as the one canonical NaN. */
  writeFloat64 (n: number): void {
    this.ensure(8)
    if (Number.isNaN(n)) {
      // NaN payloads differ between platforms and operations; one bit pattern keeps encoding
      // deterministic.
      this.view.setUint32(this.pos, 0, true)
      this.view.setUint32(this.pos + 4, 0x7ff80000, true)
    } else {
      this.view.setFloat64(this.pos, n, true)
    }
    this.pos += 8
  }

  /** Writes a byte string: varuint length, then the bytes. */
  writeBytes (bytes: Uint8Array): void {
    this.writeVarUint(bytes.length)
    this.writeRaw(bytes)
  }

  /**
   * Writes a string as varuint byte length then UTF-8. Throws {@link EncodeError} for a
   * string with a lone surrogate, which UTF-8 cannot carry (it would come back as U+FFFD).
   */
  writeString (s: string): void {
    const n = s.length
    if (n <= SHORT_STRING_UNITS) {
      // Short ASCII strings (peer ids, object keys) dominate; a byte loop beats encodeInto.
      this.ensure(1 + 3 * n)
      const buf = this.buf
      const start = this.pos + 1
      let p = start
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) {
          this.writeStringUtf8(s)
          return
        }
        buf[p++] = c
      }
      buf[this.pos] = n
      this.pos = p
      return
    }
    this.writeStringUtf8(s)
  }

  private writeStringUtf8 (s: string): void {
    if (!s.isWellFormed()) throw new EncodeError('string has a lone surrogate, which UTF-8 cannot represent')
    const maxBytes = 3 * s.length
    const reserved = varUintSize(maxBytes)
    this.ensure(reserved + maxBytes)
    const start = this.pos + reserved
    const { written } = utf8Encoder.encodeInto(s, this.buf.subarray(start, start + maxBytes))
    // The length prefix was sized for the worst case; close the gap if the real one is shorter.
    const actual = varUintSize(written)
    if (actual < reserved) this.buf.copyWithin(this.pos + actual, start, start + written)
    // Not writeVarUint: its capacity check could grow the buffer and drop the bytes just
    // encoded past `pos`. The reserved room already fits the prefix.
    this.putVarUint(written)
    this.pos += written
  }

  /** Returns a copy of the bytes written, trimmed to length. The writer stays usable. */
  finish (): Uint8Array {
    return this.buf.slice(0, this.pos)
  }

  /** A view of the bytes written so far (not a copy): valid until the next write or `reset`. */
  written (): Uint8Array {
    return this.buf.subarray(0, this.pos)
  }

  /** Bytes allocated now. */
  get capacity (): number {
    return this.buf.length
  }

  /** Forgets what was written, keeping the capacity. */
  reset (): void {
    this.pos = 0
  }
}

/** Writers {@link takeWriter} may hand out again: a stack, so a nested encoding takes another one. */
const idleWriters: Writer[] = []
/** At most this many idle writers are kept... */
const MAX_IDLE_WRITERS = 8
/** ...and none that grew past this many bytes, so one large message is not held for good. */
const MAX_POOLED_CAPACITY = 64 * 1024

/**
 * A writer from a small pool, for an encoding that ends with {@link finishPooled}. Its bytes
 * are copied out once, where `new Writer()` also allocates (and zeroes) an initial buffer and
 * every doubling: in a profile of one peer serving keyspace writes, the writers' allocations
 * were about a sixth of its CPU (docs/BENCHMARKS.md, "Pooled writers"). Nothing may keep the
 * writer past `finishPooled`; one dropped on the way (an encoder threw) is simply not reused.
 */
export function takeWriter (): Writer {
  return idleWriters.pop() ?? new Writer(1024)
}

/** A copy of what `w` (from {@link takeWriter}) wrote; `w` goes back to the pool. */
export function finishPooled (w: Writer): Uint8Array {
  const bytes = w.finish()
  releaseWriter(w)
  return bytes
}

/**
 * `digest` of what `w` (from {@link takeWriter}) wrote, given a view rather than a copy (for
 * bytes that are only hashed); `w` goes back to the pool. `digest` must not keep the view.
 */
export function digestPooled<T> (w: Writer, digest: (bytes: Uint8Array) => T): T {
  const result = digest(w.written())
  releaseWriter(w)
  return result
}

function releaseWriter (w: Writer): void {
  if (idleWriters.length < MAX_IDLE_WRITERS && w.capacity <= MAX_POOLED_CAPACITY) {
    w.reset()
    idleWriters.push(w)
  }
}

/**
 * A bounds-checked cursor over untrusted bytes. Every method either returns a value or
 * throws {@link DecodeError}; none reads past the end or allocates for a length the input
 * cannot back.
 */
export class Reader {
  private readonly bytes: Uint8Array
  private view: DataView | undefined
  private pos = 0

  /** @param bytes - the input; not copied, so it must not change while it is being read. */
  constructor (bytes: Uint8Array) {
    this.bytes = bytes
  }

  /** Offset of the next byte to read. */
  get offset (): number {
    return this.pos
  }

  /** The bytes read since offset `start` (a view, not a copy). */
  bytesFrom (start: number): Uint8Array {
    return this.bytes.subarray(start, this.pos)
  }

  /** Number of bytes left to read. */
  get remaining (): number {
    return this.bytes.length - this.pos
  }

  /** Throws `trailing-bytes` unless every byte has been read. */
  expectEnd (): void {
    if (this.pos !== this.bytes.length) {
      throw new DecodeError('trailing-bytes', `${this.bytes.length - this.pos} bytes left after the value at offset ${this.pos}`)
    }
  }

  private truncated (what: string): DecodeError {
    return new DecodeError('truncated', `input ends while reading ${what} at offset ${this.pos}`)
  }

  /** Reads one byte. */
  readUint8 (): number {
    if (this.pos >= this.bytes.length) throw this.truncated('a byte')
    return this.bytes[this.pos++] as number
  }

  /** Reads `n` raw bytes as a view into the input (no copy). */
  readRaw (n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) throw this.truncated(`${n} bytes`)
    const start = this.pos
    this.pos += n
    return this.bytes.subarray(start, this.pos)
  }

  /**
   * Reads an unsigned LEB128 varint. Throws `invalid` for a value above 2^53 - 1, more than
   * 8 bytes, or an overlong encoding (a final zero byte), which would give one number two
   * encodings.
   */
  readVarUint (): number {
    const bytes = this.bytes
    let pos = this.pos
    if (pos >= bytes.length) throw this.truncated('a varuint')
    let b = bytes[pos++] as number
    if (b < 0x80) {
      this.pos = pos
      return b
    }
    let result = b & 0x7f
    let multiplier = 128
    for (let i = 1; ; i++) {
      if (pos >= bytes.length) throw this.truncated('a varuint')
      b = bytes[pos++] as number
      result += (b & 0x7f) * multiplier
      if (b < 0x80) {
        if (b === 0) throw new DecodeError('invalid', `overlong varuint at offset ${this.pos}`)
        if (result > MAX_SAFE) throw new DecodeError('invalid', `varuint above 2^53 - 1 at offset ${this.pos}`)
        this.pos = pos
        return result
      }
      if (i === 7) throw new DecodeError('invalid', `varuint longer than 8 bytes at offset ${this.pos}`)
      multiplier *= 128
    }
  }

  /** Reads a zigzag varint written by {@link Writer.writeVarInt}; a safe integer. */
  readVarInt (): number {
    const bytes = this.bytes
    let pos = this.pos
    if (pos >= bytes.length) throw this.truncated('a varint')
    let b = bytes[pos++] as number
    const negative = (b & 1) === 1
    let m = (b >> 1) & 0x3f
    if (b >= 0x80) {
      let multiplier = 64
      for (let i = 1; ; i++) {
        if (pos >= bytes.length) throw this.truncated('a varint')
        b = bytes[pos++] as number
        m += (b & 0x7f) * multiplier
        if (b < 0x80) {
          if (b === 0) throw new DecodeError('invalid', `overlong varint at offset ${this.pos}`)
          break
        }
        if (i === 7) throw new DecodeError('invalid', `varint longer than 8 bytes at offset ${this.pos}`)
        multiplier *= 128
      }
      if (m > (negative ? MAX_SAFE - 1 : MAX_SAFE)) {
        throw new DecodeError('invalid', `varint outside the safe integer range at offset ${this.pos}`)
      }
    }
    this.pos = pos
    return negative ? -m - 1 : m
  }

  /** Reads a little-endian IEEE 754 double. Only the canonical NaN is accepted. */
  readFloat64 (): number {
    if (this.bytes.length - this.pos < 8) throw this.truncated('a float64')
    this.view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
    const n = this.view.getFloat64(this.pos, true)
    if (Number.isNaN(n) && (this.view.getUint32(this.pos, true) !== 0 || this.view.getUint32(this.pos + 4, true) !== 0x7ff80000)) {
      throw new DecodeError('invalid', `non-canonical NaN at offset ${this.pos}`)
    }
    this.pos += 8
    return n
  }

  /**
   * Reads a varuint length and checks it against `max` (`limit`) and against the bytes left
   * (`truncated`), before anything is allocated.
   */
  readLength (max: number, what: string): number {
    const n = this.readVarUint()
    if (n > max) throw new DecodeError('limit', `${what} of ${n} bytes exceeds the limit of ${max}`)
    if (n > this.bytes.length - this.pos) throw this.truncated(`${what} of ${n} bytes`)
    return n
  }

  /**
   * Reads a collection size: at most `maxItems` (`limit`), and at most what the remaining
   * bytes can hold if each item takes at least `minItemBytes` (`truncated`), so a forged count
   * cannot make the caller preallocate a huge array.
   */
  readCount (maxItems: number, minItemBytes: number, what: string): number {
    const n = this.readVarUint()
    if (n > maxItems) throw new DecodeError('limit', `${what} of ${n} items exceeds the limit of ${maxItems}`)
    if (n * minItemBytes > this.bytes.length - this.pos) throw this.truncated(`${what} of ${n} items`)
    return n
  }

  /** Reads a byte string written by {@link Writer.writeBytes}; returns a copy. */
  readBytes (maxBytes: number = Number.POSITIVE_INFINITY): Uint8Array {
    const n = this.readLength(maxBytes, 'byte string')
    const start = this.pos
    this.pos += n
    // A copy, so the value does not pin (or alias) the whole input buffer.
    return this.bytes.slice(start, this.pos)
  }

  /** Reads a string written by {@link Writer.writeString}. Invalid UTF-8 is `invalid`. */
  readString (maxBytes: number = Number.POSITIVE_INFINITY): string {
    const n = this.readLength(maxBytes, 'string')
    const bytes = this.bytes
    const start = this.pos
    const end = start + n
    this.pos = end
    if (n <= SHORT_STRING_BYTES) {
      // Short ASCII strings (object keys, peer ids, enum-like values) repeat across events;
      // a small cache keyed by a hash of the bytes returns the same string without
      // allocating, which matters more than the hashing costs.
      let hash = n
      let ascii = true
      for (let i = start; i < end; i++) {
        const c = bytes[i] as number
        if (c >= 0x80) {
          ascii = false
          break
        }
        hash = Math.imul(hash, 31) + c
      }
      if (ascii) {
        const slot = (hash ^ (hash >>> 11)) & (STRING_CACHE_SIZE - 1)
        const cached = stringCache[slot]
        if (cached !== undefined && cached.length === n) {
          let i = 0
          while (i < n && cached.charCodeAt(i) === bytes[start + i]) i++
          if (i === n) return cached
        }
        // ASCII is valid UTF-8 byte for byte, so no decoder is needed.
        const s = String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[])
        stringCache[slot] = s
        return s
      }
    }
    try {
      return utf8Decoder.decode(bytes.subarray(start, end))
    } catch (err) {
      throw new DecodeError('invalid', `invalid UTF-8 in the string at offset ${start}`, { cause: err })
    }
  }
}

/**
 * Whether `a` and `b` hold the same bytes. A loop rather than `Buffer.compare`, whose native
 * call costs more than comparing the short hashes and keys this is used for.
 */
export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
