/**
 * How the encrypter's frames reach the socket (src/transport/noise-writes.ts), between two
 * transport nodes on 127.0.0.1: every socket write carries whole Noise frames (its 2-byte
 * length prefix with the ciphertext), so a small message costs one write, and a message larger
 * than one Noise frame still arrives whole. Writes are counted and parsed by wrapping
 * `net.Socket.prototype.write` for sockets to 127.0.0.1 in this test process, which holds only
 * these two nodes. Every
 * wait is bounded.
 */
import '../src/transport/polyfill.js'
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Socket } from 'node:net'
import { createTransportNode, type TransportNode } from '../src/transport/node.js'
import { within } from './support/deadline.js'

const ECHO = '/legion/test/noise-echo/1.0.0'
/** Noise length prefix: 2 bytes, big-endian. */
const PREFIX_BYTES = 2

/** The Noise frames written to one socket, parsed from its bytes write by write. */
class NoiseFrameParser {
  frames = 0
  writes = 0
  /** Writes that ended inside a frame (its prefix, or part of its ciphertext, still to come). */
  splitWrites = 0
  #prefix: number[] = []
  #bodyLeft = 0

  feed (chunk: Uint8Array): void {
    this.writes++
    let i = 0
    while (i < chunk.byteLength) {
      if (this.#bodyLeft > 0) {
        const n = Math.min(this.#bodyLeft, chunk.byteLength - i)
        this.#bodyLeft -= n
        i += n
        continue
      }
      this.#prefix.push(chunk[i++]!)
      if (this.#prefix.length < PREFIX_BYTES) continue
      this.#bodyLeft = (this.#prefix[0]! << 8) | this.#prefix[1]!
      this.#prefix = []
      this.frames++
    }
    if (this.#bodyLeft > 0 || this.#prefix.length > 0) this.splitWrites++
  }
}

let client: TransportNode
let server: TransportNode
/** Parsers by socket, while counting. */
let parsers: Map<Socket, NoiseFrameParser> | undefined
const socketWrite = Socket.prototype.write

before(async () => {
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    // the nodes' connections only, not the test runner's own pipes
    if (parsers !== undefined && this.remoteAddress === '127.0.0.1' && chunk instanceof Uint8Array) {
      let parser = parsers.get(this)
      if (parser === undefined) parsers.set(this, parser = new NoiseFrameParser())
      parser.feed(chunk)
    }
    return (socketWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
  } as typeof Socket.prototype.write
  // no gossipsub: nothing but these requests (and identify, done by then) on the connection
  ;[client, server] = await Promise.all([
    createTransportNode({ transport: 'tcp', gossipsub: false, logPrefix: 'noise-client' }),
    createTransportNode({ transport: 'tcp', gossipsub: false, logPrefix: 'noise-server' })
  ])
  await server.handle(ECHO, (_from, payload) => payload)
  await within(client.dial(server.multiaddrs()[0]!), 10_000, 'dial')
  // the channel's stream opened and every handshake done before counting starts; counting starts
  // between two macrotasks, so never in the middle of a frame's writes
  await within(client.request(server.peerId, ECHO, new Uint8Array([1])), 5_000, 'warm-up request')
})

after(async () => {
  Socket.prototype.write = socketWrite
  await Promise.all([client?.stop(), server?.stop()])
})

/** Runs `exchange` while parsing every socket write; returns the sum over both sockets. */
async function counting (exchange: () => Promise<void>): Promise<{ frames: number, writes: number, splitWrites: number }> {
  const seen = new Map<Socket, NoiseFrameParser>()
  parsers = seen
  try {
    await exchange()
  } finally {
    parsers = undefined
  }
  assert.ok(seen.size > 0, 'no socket write was seen')
  const sum = { frames: 0, writes: 0, splitWrites: 0 }
  for (const p of seen.values()) {
    sum.frames += p.frames
    sum.writes += p.writes
    sum.splitWrites += p.splitWrites
  }
  return sum
}

test('a small request and its answer cost one socket write each, each carrying whole Noise frames', async () => {
  const requests = 100
  const total = await counting(async () => {
    for (let i = 0; i < requests; i++) {
      const payload = new TextEncoder().encode(`ping ${i}`)
      const answer = await within(client.request(server.peerId, ECHO, payload), 5_000, `request ${i}`)
      assert.deepEqual(new Uint8Array(answer), payload)
    }
  })
  assert.equal(total.splitWrites, 0, 'a write ended inside a Noise frame (a length prefix written on its own)')
  assert.equal(total.writes, total.frames, 'one write per Noise frame')
  // one data frame each way per request; a rare window update or keep-alive ping besides
  assert.ok(total.writes >= 2 * requests && total.writes <= 2 * requests + 4, `${total.writes} writes for ${requests} requests`)
})

test('a message of several Noise frames arrives whole, written without splitting a frame', async () => {
  // above the Noise frame limit (65,535 bytes with its tag): several frames per yamux frame
  const payload = new Uint8Array(300 * 1024).map((_, i) => i % 251)
  let answer: Uint8Array | undefined
  const total = await counting(async () => {
    answer = await within(client.request(server.peerId, ECHO, payload, { timeoutMs: 10_000 }), 10_000, 'large request')
  })
  assert.deepEqual(answer === undefined ? undefined : new Uint8Array(answer), payload)
  assert.equal(total.splitWrites, 0, 'a write ended inside a Noise frame')
  assert.ok(total.frames >= 2 * Math.ceil(payload.byteLength / 65_519), `${total.frames} Noise frames`)
  assert.ok(total.writes < total.frames, `${total.writes} writes for ${total.frames} frames`)
})
