/**
 * `checkedJsonCodec`: the `jsonCodec` layout, narrowed to one type by a guard. Decoding reads a
 * `JsonValue` and refuses (with a `DecodeError`) any value the guard rejects, so bytes from the
 * network reach a typed consumer (a server's `step`, an event's `apply`) only once they have the
 * shape it expects. Encoding is `jsonCodec`'s: the guard is the decoder's business.
 *
 * @module
 */
import type { Reader } from './buffer.js'
import type { Codec, DecodeLimits } from './codec.js'
import { DecodeError } from './errors.js'
import { jsonCodec, type JsonValue } from './json.js'

/**
 * A {@link Codec} of `T` in the `jsonCodec` layout whose decoder checks values with `isValid`.
 * @param isValid - the guard every decoded value must pass
 * @param what - what `T` is, for the error message (`"not a <what>"`)
 * @throws TypeError if `isValid` is not a function
 */
export function checkedJsonCodec<T extends JsonValue> (isValid: (value: JsonValue) => value is T, what: string): Codec<T> {
  if (typeof isValid !== 'function') throw new TypeError('checkedJsonCodec: isValid must be a function')
  return Object.freeze({
    encode: jsonCodec.encode,
    decode (r: Reader, limits: DecodeLimits): T {
      const value = jsonCodec.decode(r, limits)
      if (!isValid(value)) throw new DecodeError('invalid', `not a ${what}`)
      return value
    }
  })
}
