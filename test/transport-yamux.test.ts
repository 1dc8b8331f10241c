/**
 * The multiplexer's window policy (src/transport/yamux-window.ts), on two yamux muxers joined by
 * an in-memory connection pair: how many WINDOW_UPDATE frames a receiver writes (against the
 * stock muxer in the same scenario), that a sender streaming many windows to a receiver of the
 * other kind neither stalls nor loses a byte, and that a paused stream still holds the sender to
 * one window. Frames are counted from the bytes each side writes. Every wait is bounded.
 */
import '../src/transport/polyfill.js'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { halfWindowYamux, type YamuxFactoryInit } from '../src/transport/yamux-window.js'
import type { MultiaddrConnection, Stream } from '@libp2p/interface'
import { within } from './support/deadline.js'

/** The initial stream window of the yamux specification, in bytes. */
const WINDOW = 256 * 1024
const HEADER_BYTES = 12
const TYPE_DATA = 0
const TYPE_WINDOW_UPDATE = 1

/** Frames one side wrote, parsed from its bytes: a 12-byte header, then `length` bytes for data frames. */
class FrameCounter {
  dataFrames = 0
  windowUpdates = 0
  readonly #header = new Uint8Array(HEADER_BYTES)
  #headerFill = 0
  #payloadLeft = 0

  feed (chunk: Uint8Array): void {
    let i = 0
    while (i < chunk.byteLength) {
      if (this.#payloadLeft > 0) {
        const n = Math.min(this.#payloadLeft, chunk.byteLength - i)
        this.#payloadLeft -= n
        i += n
        continue
      }
      const n = Math.min(HEADER_BYTES - this.#headerFill, chunk.byteLength - i)
      this.#header.set(chunk.subarray(i, i + n), this.#headerFill)
      this.#headerFill += n
      i += n
      if (this.#headerFill < HEADER_BYTES) continue
      this.#headerFill = 0
      const type = this.#header[1]
      const length = new DataView(this.#header.buffer).getUint32(8)
      if (type === TYPE_DATA) {
        this.dataFrames++
        this.#payloadLeft = length
      } else if (type === TYPE_WINDOW_UPDATE) {
        this.windowUpdates++
      }
    }
  }
}

/** Counts every frame `conn` writes. */
function counted (conn: MultiaddrConnection): FrameCounter {
  const counter = new FrameCounter()
  const send = conn.send.bind(conn)
  conn.send = (data) => {
    for (const chunk of data instanceof Uint8Array ? [data] : data) counter.feed(chunk)
    return send(data)
  }
  return counter
}

/** Resolves once `check()` holds, re-checking on every turn of the event loop, for at most `ms`. */
async function until (check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`deadline of ${ms} ms passed waiting for ${what}`)
    await new Promise(resolve => setImmediate(resolve))
  }
}

// no keep-alive pings: no timers, and no measured round trip, so windows never grow
const INIT = { enableKeepAlive: false }

interface Link {
  /** The opener's end of one stream. */
  sender: Stream
  /** The accepting end, paused before any data arrived when asked. */
  receiver: Stream
  /** Frames the opening side wrote. */
  senderFrames: FrameCounter
  /** Frames the accepting side wrote. */
  receiverFrames: FrameCounter
  /** Bytes the accepting end delivered, in order. */
  received: Uint8Array[]
  close: () => Promise<void>
}

/** Two muxers over an in-memory pair, and one stream from the first to the second. */
async function link (senderMuxer: () => YamuxFactoryInit, receiverMuxer: () => YamuxFactoryInit, options: { pauseReceiver?: boolean } = {}): Promise<Link> {
  const [outbound, inbound] = multiaddrConnectionPair()
  const senderFrames = counted(outbound)
  const receiverFrames = counted(inbound)
  const client = senderMuxer()().createStreamMuxer(outbound)
  const server = receiverMuxer()().createStreamMuxer(inbound)
  const received: Uint8Array[] = []
  const accepted = new Promise<Stream>(resolve => {
    server.addEventListener('stream', (evt) => {
      const stream = evt.detail
      if (options.pauseReceiver === true) stream.pause()
      stream.addEventListener('message', (msg) => { received.push(msg.data.subarray()) })
      resolve(stream)
    }, { once: true })
  })
  const sender = await client.createStream()
  return {
    sender,
    receiver: await within(accepted, 5000, 'the stream to be accepted'),
    senderFrames,
    receiverFrames,
    received,
    close: async () => { await Promise.all([client.close(), server.close()]) }
  }
}

/** Sends `count` messages of `size` bytes, byte j of message i being (i + j) % 251; waits for drain when asked to. */
async function sendNumbered (stream: Stream, count: number, size: number, respectDrain: boolean): Promise<void> {
  for (let i = 0; i < count; i++) {
    const message = Uint8Array.from({ length: size }, (_, j) => (i + j) % 251)
    if (!stream.send(message) && respectDrain) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
  }
}

function concat (chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.byteLength, 0))
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.byteLength }
  return out
}

function assertNumbered (bytes: Uint8Array, count: number, size: number): void {
  assert.equal(bytes.byteLength, count * size)
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < size; j++) {
      if (bytes[i * size + j] !== (i + j) % 251) assert.fail(`byte ${j} of message ${i} differs`)
    }
  }
}

const byteCount = (chunks: readonly Uint8Array[]): number => chunks.reduce((s, c) => s + c.byteLength, 0)

test('a receiver grants window once half of it was consumed, where the stock muxer answers every data frame', async () => {
  const count = 1000
  const size = 100 // 100 KB in all: less than half a window
  const windowUpdates: Record<string, number> = {}
  for (const [name, muxer] of [['stock', yamux], ['half-window', halfWindowYamux]] as const) {
    const l = await link(() => muxer(INIT), () => muxer(INIT))
    try {
      // one message at a time, each delivered before the next is sent: one data frame each
      for (let i = 0; i < count; i++) {
        l.sender.send(Uint8Array.from({ length: size }, (_, j) => (i + j) % 251))
        await until(() => byteCount(l.received) === (i + 1) * size, 5000, `${name}: message ${i}`)
      }
      assertNumbered(concat(l.received), count, size)
      assert.equal(l.senderFrames.dataFrames, count)
      windowUpdates[name] = l.receiverFrames.windowUpdates
    } finally {
      await l.close()
    }
  }
  assert.equal(windowUpdates.stock, count, 'the stock muxer answers every data frame')
  // the one that accepts the stream (ACK), nothing else
  assert.equal(windowUpdates['half-window'], 1)
})

test('a sender streaming eight windows to a half-window receiver never stalls and every byte arrives in order, the sender being stock', async () => {
  const count = 2048
  const size = 1024 // 2 MiB: 8 initial windows
  const l = await link(() => yamux(INIT), () => halfWindowYamux(INIT))
  try {
    await within(sendNumbered(l.sender, count, size, true), 10_000, 'the sender to write 2 MiB')
    await until(() => byteCount(l.received) === count * size, 10_000, 'every byte')
    assertNumbered(concat(l.received), count, size)
    // one grant per half window consumed, and the ACK
    const grants = l.receiverFrames.windowUpdates
    assert.ok(grants >= count * size / WINDOW && grants <= count * size / (WINDOW / 2) + 1, `${grants} window updates for ${count * size} bytes`)
  } finally {
    await l.close()
  }
})

test('a paused half-window stream holds its sender to one window until it resumes', async () => {
  const count = 1024
  const size = 1024 // 1 MiB, four windows, written without waiting for drain
  const l = await link(() => halfWindowYamux(INIT), () => halfWindowYamux(INIT), { pauseReceiver: true })
  try {
    await sendNumbered(l.sender, count, size, false)
    // what the sender could send without a grant has arrived and waits in the paused stream
    await until(() => l.receiver.readBufferLength === WINDOW, 5000, 'one window to arrive')
    assert.equal(l.sender.writeBufferLength, count * size - WINDOW, 'the rest waits at the sender')
    assert.equal(l.receiverFrames.windowUpdates, 0, 'a paused stream grants nothing')
    assert.equal(byteCount(l.received), 0)
    l.receiver.resume()
    await until(() => byteCount(l.received) === count * size, 10_000, 'every byte after resuming')
    assertNumbered(concat(l.received), count, size)
  } finally {
    await l.close()
  }
})
