/**
 * The TCP transport of a transport node: `@libp2p/tcp` with one change of policy, how a
 * connection hands bytes to its socket. Nothing of the wire changes; the remote end may run
 * the stock transport.
 *
 * Why: a message reaches the TCP connection as a list of chunks (Noise writes a 2-byte length,
 * then the ciphertext; a private network's cipher passes on the chunks it is given), and
 * `@libp2p/tcp` 11.0.x writes each chunk with its own `socket.write`. On an idle socket every
 * write is a system call, so every frame cost two, and, on loopback, two wake-ups and two reads
 * of the receiver (measured: the 2-byte length prefix arrived as a `data` event of its own).
 * Legion's frames are small and on the critical path of every `applyConsistent` (the batch out,
 * the acknowledgements back), so this module corks the socket while one list is written: Node
 * then hands the chunks to the kernel in one `writev`.
 *
 * What stays true: bytes leave in the same order and nothing waits for a later turn (the socket
 * is uncorked before `sendData` returns, so a frame is never held back for the next one); a list
 * of at least the socket's high-water mark is written the stock way, so back-pressure
 * (`canSendMore`, `drain`) behaves exactly as before for large messages.
 *
 * Boundary: the policy reaches into `@libp2p/tcp` internals (the connection's `socket` field and
 * its `sendData` method, which the upgrader receives), so that package is pinned to an exact
 * version. If they are missing after an upgrade, connections keep the stock behaviour and the
 * fact is logged; test/transport-tcp-writes.test.ts counts socket writes and fails.
 *
 * @module
 */

import { Socket } from 'node:net'
import { tcp, type TCPOptions } from '@libp2p/tcp'
import { logger } from '@libp2p/logger'
import type { MultiaddrConnection, Upgrader } from '@libp2p/interface'

const log = logger('legion:transport:tcp')

/** What `tcp(init)` returns: a transport factory for libp2p's `transports`. */
export type TcpFactory = ReturnType<typeof tcp>
type TcpTransport = ReturnType<TcpFactory>

/** A list of chunks, as `@libp2p/tcp` receives it (a `Uint8ArrayList`). */
type Chunks = Iterable<Uint8Array> & { readonly byteLength: number }

/** What `sendData` of a TCP connection returns. */
interface SendResult {
  sentBytes: number
  canSendMore: boolean
}

/** The fields of a TCP connection the policy reads and replaces (not in the package's types). */
interface TcpConnection {
  socket: unknown
  sendData: (data: Chunks) => SendResult
}

let warned = false
function stockBehaviour (what: string): void {
  if (warned) return
  warned = true
  log.error('@libp2p/tcp internals changed (%s): each chunk of a message is written on its own again', what)
}

function isTcpConnection (maConn: unknown): maConn is TcpConnection {
  const c = maConn as Partial<TcpConnection> | null
  return c !== null && typeof c === 'object' && c.socket instanceof Socket && typeof c.sendData === 'function'
}

/**
 * Makes the TCP connection `maConn` write each list of chunks to its socket at once (one
 * `writev`); see the module comment. Connections of other transports are left alone.
 */
export function writeListsAtOnce (maConn: MultiaddrConnection): void {
  if (!isTcpConnection(maConn)) {
    stockBehaviour('connection socket or sendData')
    return
  }
  const socket = maConn.socket as Socket
  const stockSend = maConn.sendData
  maConn.sendData = function (this: TcpConnection, data: Chunks): SendResult {
    if (data.byteLength >= socket.writableHighWaterMark) return stockSend.call(this, data)
    socket.cork()
    try {
      return stockSend.call(this, data)
    } finally {
      socket.uncork()
    }
  }
}

/** `upgrader`, applying {@link writeListsAtOnce} to every connection before it is upgraded. */
function writingListsAtOnce (upgrader: Upgrader): Upgrader {
  return {
    upgradeInbound: async (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeInbound']>[1]): Promise<void> => {
      writeListsAtOnce(maConn)
      await upgrader.upgradeInbound(maConn, opts)
    },
    upgradeOutbound: async (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeOutbound']>[1]) => {
      writeListsAtOnce(maConn)
      return await upgrader.upgradeOutbound(maConn, opts)
    },
    createInboundAbortSignal: (signal) => upgrader.createInboundAbortSignal(signal),
    getStreamMuxers: () => upgrader.getStreamMuxers(),
    getConnectionEncrypters: () => upgrader.getConnectionEncrypters()
  }
}

/** `tcp(init)` whose connections write each message's chunks to the socket at once. */
export function listWritingTcp (init?: TCPOptions): TcpFactory {
  const stockFactory = tcp(init)
  return (components): TcpTransport => {
    const transport = stockFactory(components)
    const dial = transport.dial.bind(transport)
    const createListener = transport.createListener.bind(transport)
    transport.dial = async (ma, options) => await dial(ma, { ...options, upgrader: writingListsAtOnce(options.upgrader) })
    transport.createListener = (options) => createListener({ ...options, upgrader: writingListsAtOnce(options.upgrader) })
    return transport
  }
}
