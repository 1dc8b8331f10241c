/**
 * The connection encrypter of a transport node: `@chainsafe/libp2p-noise` with one change of
 * implementation, how a secured connection finds that its buffer holds no further message.
 * Nothing of the wire or of the cryptography changes.
 *
 * Why: a secured connection splits what it reads into Noise messages with a length-prefixed
 * decoder that stops when reading the next 2-byte length fails, and in noise 17.0.0 that
 * failure is a `RangeError` constructed (stack trace and all) by `uint8arraylist` for every
 * chunk the socket delivers, since a chunk almost always ends where a message does. Profiled
 * between two transport nodes, that constructor was 15% of all the CPU of a request and its
 * answer, more than the encryption, and Legion's frames are small and many. This module gives
 * the decoder a length reader that throws one preallocated `RangeError` instead: the decoder
 * still catches it and waits for more bytes, exactly as before.
 *
 * Boundary: the change reaches into noise internals (the secured connection's `decoder` and
 * its `lengthDecoder`), so the package is pinned to an exact version. If they are missing
 * after an upgrade, connections keep the stock reader and the fact is logged;
 * test/transport-noise-lengths.test.ts counts the errors constructed and fails.
 *
 * @module
 */

import { noise } from '@chainsafe/libp2p-noise'
import { logger } from '@libp2p/logger'
import type { SecuredConnection } from '@libp2p/interface'

const log = logger('legion:transport:noise')

/** What `noise(init)` returns: a connection encrypter factory for libp2p's `connectionEncrypters`. */
export type NoiseFactory = ReturnType<typeof noise>

/** What the decoder reads lengths from: the bytes not yet split into messages. */
interface Buffered {
  readonly byteLength: number
  getUint16: (byteOffset: number) => number
}

/** The fields of a secured connection the change replaces (not in the package's types). */
interface LengthDecoding {
  decoder: { lengthDecoder: (data: Buffered | Uint8Array) => number }
}

/**
 * Thrown whenever fewer than two bytes of the next length are buffered: once per chunk read,
 * so allocated once (the decoder only tests that it is a `RangeError`).
 */
const INCOMPLETE_LENGTH = new RangeError('the next Noise message length is not buffered yet')

/** The 2-byte big-endian length of the next Noise message; see the module comment. */
export function noiseMessageLength (data: Buffered | Uint8Array): number {
  if (data.byteLength < 2) throw INCOMPLETE_LENGTH
  if (data instanceof Uint8Array) return (data[0]! << 8) | data[1]!
  return data.getUint16(0)
}

let warned = false
function stockBehaviour (what: string): void {
  if (warned) return
  warned = true
  log.error('noise internals changed (%s): every chunk read constructs a RangeError again', what)
}

function hasLengthDecoder (connection: unknown): connection is LengthDecoding {
  const decoder = (connection as Partial<LengthDecoding> | null)?.decoder
  return typeof decoder === 'object' && decoder !== null && typeof decoder.lengthDecoder === 'function'
}

/** Gives `secured`'s decoder {@link noiseMessageLength}; see the module comment. */
function readLengthsQuietly<T extends SecuredConnection<unknown>> (secured: T): T {
  if (hasLengthDecoder(secured.connection)) secured.connection.decoder.lengthDecoder = noiseMessageLength
  else stockBehaviour('secured connection decoder')
  return secured
}

/**
 * A Noise encrypter factory (`noise()` by default, or one already wrapped, e.g. by
 * `contiguousNoise`) whose secured connections find the end of their buffer without
 * constructing an error.
 */
export function quietLengthNoise (stockFactory: NoiseFactory = noise()): NoiseFactory {
  return (components) => {
    const encrypter = stockFactory(components)
    const secureInbound = encrypter.secureInbound.bind(encrypter)
    const secureOutbound = encrypter.secureOutbound.bind(encrypter)
    encrypter.secureInbound = async (connection, options) => readLengthsQuietly(await secureInbound(connection, options))
    encrypter.secureOutbound = async (connection, options) => readLengthsQuietly(await secureOutbound(connection, options))
    return encrypter
  }
}
