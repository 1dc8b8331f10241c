/**
 * The stream multiplexer of a transport node: `@chainsafe/libp2p-yamux` with one change of
 * policy, when a receiver grants its sender more receive window. Nothing else of the muxer or
 * of the wire changes; the remote end may run the stock muxer.
 *
 * Why: yamux 8.0.x (and `@libp2p/yamux` 8.0.3, the same code under its new name) answers every
 * data frame with a WINDOW_UPDATE frame, because its "is an update needed" test is "the whole
 * window is still free", false after any frame. Legion's frames are small and many (at 3 peers
 * 8 data frames per sequential applyConsistent), so every second frame on the wire was a
 * 12-byte window update, each costing the receiver a Noise encryption and two socket writes and
 * the sender a decryption. The yamux specification leaves the timing of updates to the
 * receiver; Go's and Rust's yamux grant once half the window or more has been consumed, and so
 * does this module.
 *
 * What stays true: a sender never holds more credit than before (an update is only delayed, and
 * its delta is still the whole consumed part), so the memory bound of a paused stream (one
 * window, at most `maxStreamWindowSize`) is unchanged; a sender cannot stall, because its credit
 * reaching zero means the receiver has consumed its whole window, which passes the threshold on
 * the frame that did it; opening (SYN), accepting (ACK) and paused streams take the stock path.
 *
 * Boundary: the policy reaches into yamux internals (`_newStream` of the muxer, the receive
 * window fields and `sendWindowUpdate` of a stream), so the package is pinned to an exact
 * version. If they are missing after an upgrade, streams keep the stock behaviour and the fact
 * is logged; test/transport-yamux.test.ts counts window updates and fails.
 *
 * @module
 */

import { yamux, type YamuxMuxerInit } from '@chainsafe/libp2p-yamux'
import { StreamState } from '@chainsafe/libp2p-yamux/stream'
import { logger } from '@libp2p/logger'

const log = logger('legion:transport:yamux')

/** What `yamux(init)` returns: a muxer factory for libp2p's `streamMuxers`. */
export type YamuxFactoryInit = ReturnType<typeof yamux>
type YamuxFactory = ReturnType<YamuxFactoryInit>

/** The fields of a yamux stream the policy reads and writes (private in the package's types). */
interface StreamWindow {
  state: StreamState
  /** The whole receive window, in bytes (grows up to `maxStreamWindowSize`). */
  recvWindow: number
  /** How much of it the sender may still use. */
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

/** The muxer method that creates every stream, inbound and outbound. */
interface MuxerStreams {
  _newStream?: (...args: unknown[]) => unknown
}

let warned = false
function stockBehaviour (what: string): void {
  if (warned) return
  warned = true
  log.error('yamux internals changed (%s): window updates follow every data frame again', what)
}

function isStreamWindow (stream: unknown): stream is StreamWindow {
  const s = stream as Partial<StreamWindow> | null
  return s !== null && typeof s === 'object' && typeof s.state === 'number' &&
    typeof s.recvWindow === 'number' && typeof s.recvWindowCapacity === 'number' &&
    typeof s.sendWindowUpdate === 'function'
}

/**
 * Makes `stream` grant window only once half of it or more was consumed. Streams whose next
 * frame must carry a flag (SYN when opening, ACK when accepting) and paused streams (the stock
 * path keeps their timing for window growth) go through the stock update.
 */
function grantAtHalfWindow (stream: unknown): void {
  if (!isStreamWindow(stream)) {
    stockBehaviour('stream window fields')
    return
  }
  const stockUpdate = stream.sendWindowUpdate
  stream.sendWindowUpdate = function (this: StreamWindow): void {
    const state = this.state
    const stock = state === StreamState.Init || state === StreamState.SYNReceived || state === StreamState.Paused
    if (!stock && this.recvWindow - this.recvWindowCapacity < this.recvWindow / 2) return
    stockUpdate.call(this)
  }
}

/**
 * `yamux(init)` whose streams grant the sender window once half of it or more was consumed,
 * instead of after every data frame.
 */
export function halfWindowYamux (init: YamuxMuxerInit): YamuxFactoryInit {
  const stockFactory = yamux(init)
  return (): YamuxFactory => {
    const factory = stockFactory()
    const createStreamMuxer = factory.createStreamMuxer.bind(factory)
    factory.createStreamMuxer = (maConn) => {
      const muxer = createStreamMuxer(maConn)
      const streams = muxer as unknown as MuxerStreams
      const newStream = streams._newStream
      if (typeof newStream !== 'function') {
        stockBehaviour('muxer _newStream')
        return muxer
      }
      streams._newStream = function (this: unknown, ...args: unknown[]): unknown {
        const stream = newStream.apply(this, args)
        grantAtHalfWindow(stream)
        return stream
      }
      return muxer
    }
    return factory
  }
}
