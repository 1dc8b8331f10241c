/**
 * How a secured connection finds the end of what it read (src/transport/noise-lengths.ts): the
 * length reader throws one preallocated `RangeError` when the next length is not buffered, and
 * transport nodes exchange requests without constructing a single error (the stock reader
 * constructed one per chunk read). Every wait is bounded; nothing sleeps.
 */
import '../src/transport/polyfill.js'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { noiseMessageLength } from '../src/transport/noise-lengths.js'
import { createTransportNode } from '../src/transport/node.js'

/** A stand-in for the decoder's buffer of several chunks. */
function list (...chunks: number[][]): { byteLength: number, getUint16: (offset: number) => number } {
  const bytes = Buffer.from(chunks.flat())
  return { byteLength: bytes.byteLength, getUint16: (offset) => bytes.readUInt16BE(offset) }
}

test('the next Noise message length is read big-endian from bytes or a buffered list, and a short buffer throws one and the same RangeError', () => {
  assert.equal(noiseMessageLength(new Uint8Array([0x01, 0x02, 0xff])), 0x0102)
  assert.equal(noiseMessageLength(list([0xff], [0xfe, 0x00])), 0xfffe)
  const thrown: unknown[] = []
  for (const short of [new Uint8Array(0), new Uint8Array([7]), list(), list([1])]) {
    try { noiseMessageLength(short) } catch (err) { thrown.push(err) }
  }
  assert.equal(thrown.length, 4)
  assert.ok(thrown[0] instanceof RangeError, 'the decoder waits for more bytes on a RangeError')
  assert.ok(thrown.every(err => err === thrown[0]), 'no error is constructed per short buffer')
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
