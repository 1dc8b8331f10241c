/**
 * The connection encrypter of a transport node: `@chainsafe/libp2p-noise`, with each batch of
 * Noise frames it sends handed to the connection as one contiguous buffer, so that TCP writes
 * it to the socket in one `write` instead of one per part. The bytes on the wire do not change;
 * the remote end may run the stock encrypter.
 *
 * Why: Noise sends every encrypted frame as a list of two parts, the 2-byte length prefix and
 * the ciphertext, and `@libp2p/tcp` writes each part of what it is given with its own
 * `socket.write`. Each write is a system call on the sender and may cost the receiver a read
 * of its own, which hands Noise's decoder a 2-byte chunk before the ciphertext.
 * Legion's messages are small and many (at 3 peers 8 data frames per sequential
 * applyConsistent), so half of all socket writes carried 2 bytes. Joining the parts costs one
 * copy of the ciphertext, far less than the encryption that just produced it.
 *
 * What stays true: the connection receives the same bytes in the same order through its public
 * `send`, whose return value (room for more, or wait for 'drain') passes through unchanged, so
 * back-pressure is exactly the stock one. Frames are not held back to join those of later
 * calls: a call's bytes reach the connection before it returns. (Between 3 peers, about one
 * frame in 60 shares a tick with an earlier one to the same socket: too few to pay for a
 * deferred write and a 'drain' that no longer follows the socket's own.)
 *
 * Boundary: only `send` of the connection libp2p hands to the encrypter (the transport's
 * connection, or the cluster secret's stream over it, which already writes one buffer per
 * call) is wrapped, before the handshake; the encrypter, its handshake and the encrypted stream
 * are Noise's own.
 *
 * @module
 */

import { noise, type NoiseExtensions, type NoiseInit } from '@chainsafe/libp2p-noise'
import type { ConnectionEncrypter, MessageStream } from '@libp2p/interface'

/** What `noise(init)` returns: an encrypter factory for libp2p's `connectionEncrypters`. */
export type NoiseFactory = ReturnType<typeof noise>

/** Connections whose `send` is already wrapped. */
const contiguous = new WeakSet<MessageStream>()

/**
 * Makes `connection.send` hand a list of parts on as one buffer. Idempotent per connection, so
 * an encrypter retried on the same connection does not wrap twice.
 */
function sendContiguous (connection: MessageStream): MessageStream {
  if (contiguous.has(connection)) return connection
  contiguous.add(connection)
  const send = connection.send
  connection.send = function (this: MessageStream, data) {
    // a list of one part gives that part back, uncopied
    return send.call(this, data instanceof Uint8Array ? data : data.subarray())
  }
  return connection
}

/**
 * `noise(init)` whose encrypted frames reach the connection as one buffer per send, so a TCP
 * connection writes each frame (the length prefix with its ciphertext) with one `socket.write`.
 */
export function contiguousNoise (init?: NoiseInit): NoiseFactory {
  const stockFactory = noise(init)
  return (components) => {
    const encrypter: ConnectionEncrypter<NoiseExtensions> = stockFactory(components)
    const secureInbound = encrypter.secureInbound.bind(encrypter)
    const secureOutbound = encrypter.secureOutbound.bind(encrypter)
    encrypter.secureInbound = async (connection, options) => await secureInbound(sendContiguous(connection), options)
    encrypter.secureOutbound = async (connection, options) => await secureOutbound(sendContiguous(connection), options)
    return encrypter
  }
}
