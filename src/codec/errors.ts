/**
 * The two failures of the codec. Decoding reads untrusted bytes from the network and from
 * disk, so it has exactly one failure mode, {@link DecodeError}, whatever the input; callers
 * can then treat every malformed message the same way (drop it, count it) without guessing
 * which exceptions a parser might leak. Encoding only fails on a programming error (a value
 * outside the codec's type), reported as {@link EncodeError}.
 *
 * @module
 */

/**
 * Why a decode failed.
 * - `truncated`: the input ends before the value does.
 * - `limit`: the input exceeds a {@link DecodeLimits} bound (size, items, depth, string bytes).
 * - `bad-magic`: the input does not start with the `LGN` magic bytes.
 * - `bad-version`: the format version is not one this build reads.
 * - `bad-kind`: the header names a different kind of message than the one asked for.
 * - `bad-tag`: an unknown type tag inside a value.
 * - `invalid`: structurally readable but not a valid value (unsorted acks, non-canonical
 *   number, invalid UTF-8, or any error thrown by a user codec).
 * - `trailing-bytes`: bytes remain after the value.
 * - `unknown-participant`: the message names a participant by a fingerprint the decoder
 *   cannot resolve (format 3); the same data in full would decode.
 */
export type DecodeErrorCode =
  | 'truncated'
  | 'limit'
  | 'bad-magic'
  | 'bad-version'
  | 'bad-kind'
  | 'bad-tag'
  | 'invalid'
  | 'trailing-bytes'
  | 'unknown-participant'

/**
 * The only error a decode function throws. Test with `err.name === 'DecodeError'` when the
 * error may come from another copy of the package.
 */
export class DecodeError extends Error {
  /** Always `'DecodeError'`, so `err.name` identifies the error across package copies. */
  override readonly name = 'DecodeError'
  /** Why the decode failed. */
  readonly code: DecodeErrorCode

  /**
   * @param code - why the decode failed
   * @param message - what was wrong, for humans
   * @param options - `cause`: the original error when a foreign error is wrapped
   */
  constructor (code: DecodeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/**
 * Thrown when asked to encode a value the codec cannot represent exactly (a function, a
 * `Map`, a class instance, `undefined`, a lone surrogate, an unsorted ack list...). It extends
 * `TypeError` because it always means the caller passed a value of the wrong type.
 */
export class EncodeError extends TypeError {
  /** Always `'EncodeError'`, so `err.name` identifies the error across package copies. */
  override readonly name = 'EncodeError'
}

/**
 * Turns anything thrown while decoding into a {@link DecodeError}: decode errors pass through,
 * anything else (a `RangeError` from a user codec, a stack overflow) becomes code `invalid`
 * with the original as `cause`.
 */
export function toDecodeError (err: unknown): DecodeError {
  if (err instanceof DecodeError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new DecodeError('invalid', `decode failed: ${message}`, { cause: err })
}

/**
 * A fold stored in format 4 or 5 still has outstanding events, or events settled since its
 * last checkpoint, which cannot be migrated to format 6: those formats give events no
 * positions in their creators' logs, and no replica can assign ones every other replica would
 * agree on (and an Error of those formats does not carry the event that failed, which format
 * 6 folds again). A fold with nothing outstanding and nothing settled since its checkpoint
 * migrates. Remedy: recover the peer with the Legion version that wrote it until its groups
 * have settled (`stats()` shows nothing outstanding; a recovered peer's first save writes a
 * checkpoint), or start it afresh (`startup.mode` `new` or `join`, with `overwrite`).
 */
export class LegacyFoldError extends Error {
  /** Always `'LegacyFoldError'`, so `err.name` identifies the error across package copies. */
  override readonly name = 'LegacyFoldError'
  /** The format version the fold was stored in. */
  readonly version: number
  /** How many events were outstanding in it. */
  readonly outstanding: number
  /** How many events were stored as settled since its last checkpoint. */
  readonly settled: number
  constructor (version: number, outstanding: number, settled = 0) {
    const since = settled > 0 ? ` and ${settled} settled since its last checkpoint` : ''
    super(`a fold stored in format ${version} has ${outstanding} outstanding event(s)${since}, which format 6 cannot take over: recover it with the Legion version that wrote it until it has settled, or start afresh`)
    this.version = version
    this.outstanding = outstanding
    this.settled = settled
  }
}
