/**
 * How a secured connection splits what it reads into Noise messages
 * (src/transport/noise-lengths.ts): a splitter that never throws to find the end of its
 * buffer, so transport nodes exchange requests without constructing a single error (the stock
 * decoder constructed one per chunk read). Every wait is bounded; nothing sleeps.
 */
import '../src/transport/polyfill.js'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { NoiseMessageSplitter } from '../src/transport/noise-lengths.js'
import { createTransportNode } from '../src/transport/node.js'

/** A Noise message: the 2-byte big-endian length, then `body`. */
function message (...body: number[]): number[] {
  return [body.length >> 8, body.length & 0xff, ...body]
}

const hexes = (messages: ReadonlyArray<Uint8Array>): string[] => messages.map(m => Buffer.from(m).toString('hex'))

test('Noise messages are split out of whole, joined, cut and listed chunks, empty ones skipped, without throwing', () => {
  const splitter = new NoiseMessageSplitter()
  // One whole message per chunk, and several in one.
  assert.deepEqual(hexes(splitter.decode(Uint8Array.from(message(1, 2, 3)))), ['010203'])
  assert.deepEqual(hexes(splitter.decode(Uint8Array.from([...message(4), ...message(), ...message(5, 6)]))), ['04', '0506'])
  // A message cut inside its length, then inside its body, then completed with the next one.
  const long = Array.from({ length: 300 }, (_, i) => i & 0xff)
  const bytes = [...message(...long), ...message(7)]
  assert.deepEqual(splitter.decode(Uint8Array.from(bytes.slice(0, 1))), [])
  assert.deepEqual(splitter.decode(Uint8Array.from(bytes.slice(1, 100))), [])
  const cut = splitter.decode(Uint8Array.from(bytes.slice(100, 302)))
  assert.deepEqual(hexes(cut), [Buffer.from(long).toString('hex')])
  assert.deepEqual(hexes(splitter.decode(Uint8Array.from(bytes.slice(302)))), ['07'])
  // A chunk handed over as a list of buffers (as libp2p may: a Uint8ArrayList), and an empty chunk.
  const list = { byteLength: 4, subarray: () => Uint8Array.from([0, 2, 8, 9]) }
  assert.deepEqual(hexes(splitter.decode(list)), ['0809'])
  assert.deepEqual(splitter.decode(new Uint8Array(0)), [])
  // The largest Noise message, in pieces.
  const largest = [0xff, 0xff, ...new Array<number>(0xffff).fill(0xab)]
  assert.deepEqual(splitter.decode(Uint8Array.from(largest.slice(0, 40_000))), [])
  const [whole] = splitter.decode(Uint8Array.from(largest.slice(40_000)))
  assert.equal(whole?.byteLength, 0xffff)
  assert.ok(whole.every(b => b === 0xab))
})

test('a partial message is kept as a copy: the bytes it arrived in may be reused', () => {
  const splitter = new NoiseMessageSplitter()
  const first = Uint8Array.from([...message(1), 0, 3, 2])
  assert.deepEqual(hexes(splitter.decode(first)), ['01'])
  first.fill(0xee)
  assert.deepEqual(hexes(splitter.decode(Uint8Array.from([3, 4]))), ['020304'])
})

test('transport nodes exchange requests without constructing an error per chunk read', async () => {
  const [a, b] = await Promise.all([createTransportNode({ transport: 'tcp', gossipsub: false }), createTransportNode({ transport: 'tcp', gossipsub: false })])
  const Stock = globalThis.RangeError
  let constructed = 0
  try {
    await b.handle('/legion/test/echo/1.0.0', (_from, payload) => payload)
    await a.dial(b.multiaddrs()[0]!)
    await a.request(b.peerId, '/legion/test/echo/1.0.0', new Uint8Array(64)) // opens the stream
    // Counts every RangeError made (with `new` or without, as noise does); each is a stock one.
    const counting = function (message?: string): RangeError { constructed++; return new Stock(message) }
    counting.prototype = Stock.prototype
    globalThis.RangeError = counting as unknown as RangeErrorConstructor
    for (let i = 0; i < 20; i++) assert.equal((await a.request(b.peerId, '/legion/test/echo/1.0.0', new Uint8Array(64).fill(i)))[0], i)
  } finally {
    globalThis.RangeError = Stock
    await Promise.all([a.stop(), b.stop()])
  }
  assert.equal(constructed, 0, 'RangeErrors constructed during 20 requests and answers')
})
