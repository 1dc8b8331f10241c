/**
 * `jsonCodec`: a ready-made binary {@link Codec} for plain JSON-like data, so applications
 * whose events and states are plain objects need not write a codec. Unlike `JSON.stringify`
 * it is exact and binary-safe: `-0`, `NaN`, `Infinity`, `bigint` and `Uint8Array` survive a
 * round trip, and object keys are written in sorted order, so equal values give equal bytes
 * whatever their key insertion order. Decoding accepts only that canonical form.
 *
 * Layout: one tag byte, then the tag's payload.
 *
 * | tag | value                  | payload                                                   |
 * |-----|------------------------|-----------------------------------------------------------|
 * | 0   | `null`                 | none                                                      |
 * | 1   | `false`                | none                                                      |
 * | 2   | `true`                 | none                                                      |
 * | 3   | safe integer (not -0)  | zigzag varint                                             |
 * | 4   | any other number       | float64 little-endian (NaN only as 0x7ff8000000000000)    |
 * | 5   | string                 | varuint byte length, UTF-8                                |
 * | 6   | `Uint8Array`           | varuint length, bytes                                     |
 * | 7   | array                  | varuint count, values                                     |
 * | 8   | plain object           | varuint count, (string key, value) pairs, keys strictly ascending by UTF-16 code units |
 * | 9   | `bigint` >= 0          | varuint length, magnitude big-endian, no leading zero byte (0n: empty) |
 * | 10  | `bigint` < 0           | as 9, magnitude of the absolute value, never empty        |
 *
 * @module
 */
import type { Reader, Writer } from './buffer.js'
import type { Codec, DecodeLimits } from './codec.js'
import { DecodeError, EncodeError } from './errors.js'

/**
 * A value {@link jsonCodec} can encode: JSON's values plus `bigint` and `Uint8Array`, with
 * every number allowed (including `NaN`, `-0` and the infinities). `undefined` is not one:
 * an object property or array element that is `undefined` is an {@link EncodeError}.
 */
export type JsonValue = null | boolean | number | string | bigint | Uint8Array | JsonArray | JsonObject

/** An array of {@link JsonValue}s. */
export type JsonArray = readonly JsonValue[]

/**
 * A plain object (prototype `Object.prototype` or `null`) of {@link JsonValue}s. Decoded
 * objects always have `Object.prototype`; a `"__proto__"` key is kept as an own property.
 */
export interface JsonObject { readonly [key: string]: JsonValue }

const TAG_NULL = 0
const TAG_FALSE = 1
const TAG_TRUE = 2
const TAG_INT = 3
const TAG_FLOAT = 4
const TAG_STRING = 5
const TAG_BYTES = 6
const TAG_ARRAY = 7
const TAG_OBJECT = 8
const TAG_BIGINT_POSITIVE = 9
const TAG_BIGINT_NEGATIVE = 10

/**
 * Deepest nesting `jsonCodec` encodes. Guards against cyclic values (which would otherwise
 * overflow the stack); far above any sane `maxDepth` on the decoding side.
 */
export const MAX_ENCODE_DEPTH = 1000

const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function describe (value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name
    return typeof name === 'string' ? `an instance of ${name}` : 'a non-plain object'
  }
  return typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`
}

function writeBigInt (n: bigint, w: Writer): void {
  const negative = n < 0n
  w.writeUint8(negative ? TAG_BIGINT_NEGATIVE : TAG_BIGINT_POSITIVE)
  if (n === 0n) {
    w.writeVarUint(0)
    return
  }
  let hex = (negative ? -n : n).toString(16)
  if (hex.length % 2 === 1) hex = '0' + hex
  const bytes = new Uint8Array(hex.length / 2)
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  w.writeBytes(bytes)
}

function readBigInt (r: Reader, limits: DecodeLimits, negative: boolean): bigint {
  const n = r.readLength(limits.maxStringBytes, 'bigint')
  const bytes = r.readRaw(n)
  if (n === 0) {
    if (negative) throw new DecodeError('invalid', 'negative bigint with an empty magnitude (-0n)')
    return 0n
  }
  if (bytes[0] === 0) throw new DecodeError('invalid', 'bigint magnitude with a leading zero byte')
  const digits = new Array<string>(n)
  for (let i = 0; i < n; i++) digits[i] = HEX[bytes[i] as number] as string
  const magnitude = BigInt('0x' + digits.join(''))
  return negative ? -magnitude : magnitude
}

function encodeValue (value: unknown, w: Writer, depth: number): void {
  switch (typeof value) {
    case 'number':
      // -0 is a safe integer to Number.isSafeInteger but a varint cannot carry its sign.
      if (Number.isSafeInteger(value) && !(value === 0 && 1 / value < 0)) {
        w.writeUint8(TAG_INT)
        w.writeVarInt(value)
      } else {
        w.writeUint8(TAG_FLOAT)
        w.writeFloat64(value)
      }
      return
    case 'string':
      w.writeUint8(TAG_STRING)
      w.writeString(value)
      return
    case 'boolean':
      w.writeUint8(value ? TAG_TRUE : TAG_FALSE)
      return
    case 'bigint':
      writeBigInt(value, w)
      return
    case 'object': {
      if (value === null) {
        w.writeUint8(TAG_NULL)
        return
      }
      if (depth >= MAX_ENCODE_DEPTH) {
        throw new EncodeError(`value nested deeper than ${MAX_ENCODE_DEPTH} levels (is it cyclic?)`)
      }
      if (Array.isArray(value)) {
        const items: readonly unknown[] = value
        w.writeUint8(TAG_ARRAY)
        w.writeVarUint(items.length)
        for (let i = 0; i < items.length; i++) encodeValue(items[i], w, depth + 1)
        return
      }
      if (value instanceof Uint8Array) {
        w.writeUint8(TAG_BYTES)
        w.writeBytes(value)
        return
      }
      const proto: unknown = Object.getPrototypeOf(value)
      if (proto === Object.prototype || proto === null) {
        const record = value as Record<string, unknown>
        // Default sort compares UTF-16 code units: the order the decoder checks.
        const keys = Object.keys(record).sort()
        w.writeUint8(TAG_OBJECT)
        w.writeVarUint(keys.length)
        for (const key of keys) {
          w.writeString(key)
          encodeValue(record[key], w, depth + 1)
        }
        return
      }
      throw new EncodeError(`jsonCodec cannot encode ${describe(value)}`)
    }
    default:
      throw new EncodeError(`jsonCodec cannot encode ${describe(value)}`)
  }
}

function decodeValue (r: Reader, limits: DecodeLimits, depth: number): JsonValue {
  const tag = r.readUint8()
  switch (tag) {
    case TAG_NULL: return null
    case TAG_FALSE: return false
    case TAG_TRUE: return true
    case TAG_INT: return r.readVarInt()
    case TAG_FLOAT: {
      const n = r.readFloat64()
      if (Number.isSafeInteger(n) && !(n === 0 && 1 / n < 0)) {
        throw new DecodeError('invalid', `safe integer ${n} encoded as a float64`)
      }
      return n
    }
    case TAG_STRING: return r.readString(limits.maxStringBytes)
    case TAG_BYTES: return r.readBytes(limits.maxStringBytes)
    case TAG_ARRAY: {
      if (depth >= limits.maxDepth) throw new DecodeError('limit', `value nested deeper than ${limits.maxDepth}`)
      const count = r.readCount(limits.maxItems, 1, 'array')
      const items: JsonValue[] = []
      for (let i = 0; i < count; i++) items.push(decodeValue(r, limits, depth + 1))
      return items
    }
    case TAG_OBJECT: {
      if (depth >= limits.maxDepth) throw new DecodeError('limit', `value nested deeper than ${limits.maxDepth}`)
      const count = r.readCount(limits.maxItems, 2, 'object')
      const record: Record<string, JsonValue> = {}
      let previous = ''
      for (let i = 0; i < count; i++) {
        const key = r.readString(limits.maxStringBytes)
        // Strictly ascending keys: one encoding per object, and no duplicate keys.
        if (i > 0 && !(previous < key)) throw new DecodeError('invalid', `object keys not strictly ascending at ${JSON.stringify(key)}`)
        previous = key
        const item = decodeValue(r, limits, depth + 1)
        if (key === '__proto__') {
          // Plain assignment would set the prototype instead of creating the property.
          Object.defineProperty(record, key, { value: item, writable: true, enumerable: true, configurable: true })
        } else {
          record[key] = item
        }
      }
      return record
    }
    case TAG_BIGINT_POSITIVE: return readBigInt(r, limits, false)
    case TAG_BIGINT_NEGATIVE: return readBigInt(r, limits, true)
    default:
      throw new DecodeError('bad-tag', `unknown jsonCodec tag ${tag} at offset ${r.offset - 1}`)
  }
}

/**
 * The default codec for plain data ({@link JsonValue}); see the module comment for the
 * layout. Encoding throws {@link EncodeError} for anything outside {@link JsonValue}
 * (functions, symbols, `undefined`, `Map`, `Date`, class instances, typed arrays other than
 * `Uint8Array`, strings with lone surrogates). Decoded byte strings are copies, never views
 * of the input.
 */
export const jsonCodec: Codec<JsonValue> = Object.freeze({
  encode (value: JsonValue, w: Writer): void {
    encodeValue(value, w, 0)
  },
  decode (r: Reader, limits: DecodeLimits): JsonValue {
    return decodeValue(r, limits, 0)
  }
})

/**
 * `true` when every value of `T` is a {@link JsonValue} that {@link jsonCodec} can carry:
 * strings, numbers, booleans, null, bigints, `Uint8Array`s, and arrays and plain objects of
 * them (optional properties must be left out, not set to `undefined`). `false` for
 * `undefined`, functions, symbols, `Date`, `Map`, `Set`, other typed arrays and the like,
 * anywhere inside. Interfaces count like type literals (no index signature is needed).
 */
export type IsJson<T> = false extends JsonCheck<T, []> ? false : true

/** The check behind {@link IsJson}: a union holding `false` when some part of `T` is not a JSON value (`D` bounds the depth). */
export type JsonCheck<T, D extends unknown[]> =
  D['length'] extends 12 ? true
    : T extends string | number | boolean | null | bigint | Uint8Array ? true
      : T extends undefined | symbol | ((...args: never[]) => unknown) ? false
        : T extends Date | RegExp | Map<unknown, unknown> | Set<unknown> | ArrayBufferView | ArrayBuffer | Promise<unknown> ? false
          : T extends ReadonlyArray<infer U> ? JsonCheck<U, [...D, 0]>
            : T extends object ? true | { [K in keyof T]-?: JsonCheck<K extends OptionalKeys<T> ? Exclude<T[K], undefined> : T[K], [...D, 0]> }[keyof T]
              : false

/** The keys of `T` whose properties are optional (they may be left out). */
export type OptionalKeys<T> = { [K in keyof T]-?: Record<never, never> extends Pick<T, K> ? K : never }[keyof T]

/**
 * {@link jsonCodec}, typed for `T`. Compiles only when `T` is a JSON type ({@link IsJson}).
 *
 * @example
 * ```ts
 * interface Vote { readonly room: string, readonly count: number }
 * const votes = messageChannel({ name: 'votes', request: jsonCodecFor<Vote>(), reply: jsonCodecFor<boolean>() })
 * ```
 */
export function jsonCodecFor<T> (...notJson: IsJson<T> extends true ? [] : [never]): Codec<T> {
  void notJson
  return jsonCodec as unknown as Codec<T>
}
