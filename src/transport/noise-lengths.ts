/**
 * The connection encrypter of a transport node: `@chainsafe/libp2p-noise` with one change of
 * implementation, how a secured connection splits what it reads into Noise messages. Nothing
 * of the wire or of the cryptography changes.
 *
 * Why: noise 17.0.0 splits with `@libp2p/utils`' length-prefixed decoder, a generator that
 * finds the end of its buffer by calling a length reader that throws a `RangeError` (from
 * `uint8arraylist`, constructed with its stack trace) and catching it, once for every chunk
 * the socket delivers, since a chunk almost always ends where a message does. Profiled between
 * two transport nodes, that constructor was 15% of all the CPU of a request and its answer.
 * A preallocated error first halved that; the throw and catch themselves, and the generator,
 * were still 1.2% of a keyspace write's CPU. The decoder is now a {@link NoiseMessageSplitter},
 * which checks that two bytes of length are there instead of throwing, and returns an array.
 *
 * Boundary: the change reaches into noise internals (the secured connection's `decoder`, read
 * anew for every chunk), so the package is pinned to an exact version. If it is missing after
 * an upgrade, connections keep the stock decoder and the fact is logged;
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

/** Bytes a connection hands over: one buffer, or a list of them (`Uint8ArrayList`). */
interface Chunk {
  readonly byteLength: number
  /** The bytes as one buffer (a list copies them into one). */
  subarray: () => Uint8Array
}

/** The field of a secured connection the change replaces (not in the package's types). */
interface Decoding {
  decoder: { decode: (chunk: Uint8Array | Chunk) => Iterable<Uint8Array | Chunk> }
}

const NOTHING = new Uint8Array(0)

/**
 * Splits the bytes a secured connection reads into Noise messages (a 2-byte big-endian length,
 * then that many bytes), keeping a partial message until the rest arrives; empty messages are
 * skipped, as the stock decoder does. Only a partial message is ever kept, so what it holds
 * is bounded by the largest Noise message (2 + 65,535 bytes).
 */
export class NoiseMessageSplitter {
  private partial: Uint8Array = NOTHING

  /** The messages `chunk` completes, in order (views of the bytes read; a message split across chunks is copied). */
  decode (chunk: Uint8Array | Chunk): Uint8Array[] {
    let bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
    if (this.partial.byteLength > 0) {
      const joined = new Uint8Array(this.partial.byteLength + bytes.byteLength)
      joined.set(this.partial)
      joined.set(bytes, this.partial.byteLength)
      bytes = joined
    }
    const messages: Uint8Array[] = []
    let at = 0
    while (bytes.byteLength - at >= 2) {
      const end = at + 2 + ((bytes[at]! << 8) | bytes[at + 1]!)
      if (end > bytes.byteLength) break
      if (end > at + 2) messages.push(bytes.subarray(at + 2, end))
      at = end
    }
    // Copied: the connection owns the buffers it hands over.
    this.partial = at < bytes.byteLength ? bytes.slice(at) : NOTHING
    return messages
  }
}

let warned = false
function stockBehaviour (what: string): void {
  if (warned) return
  warned = true
  log.error('noise internals changed (%s): every chunk read throws and catches a RangeError again', what)
}

function hasDecoder (connection: unknown): connection is Decoding {
  const decoder = (connection as Partial<Decoding> | null)?.decoder
  return typeof decoder === 'object' && decoder !== null && typeof decoder.decode === 'function'
}

/** Gives `secured` a {@link NoiseMessageSplitter} as its decoder; see the module comment. */
function splitQuietly<T extends SecuredConnection<unknown>> (secured: T): T {
  if (hasDecoder(secured.connection)) secured.connection.decoder = new NoiseMessageSplitter()
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
    encrypter.secureInbound = async (connection, options) => splitQuietly(await secureInbound(connection, options))
    encrypter.secureOutbound = async (connection, options) => splitQuietly(await secureOutbound(connection, options))
    return encrypter
  }
}
