/**
 * How a TCP connection hands a message to its socket (src/transport/tcp-writes.ts): the chunks
 * of one message in one write, against the stock `@libp2p/tcp`'s one write per chunk in the same
 * scenario; large messages and back-pressure the stock way; and transport nodes whose Noise
 * messages never start with a write of their 2-byte length alone. Writes are counted at the
 * sockets (`_write`, `_writev`). Every wait is bounded; nothing sleeps.
 */
import '../src/transport/polyfill.js'
import assert from 'node:assert/strict'
import { Socket } from 'node:net'
import { test } from 'node:test'
import { tcp } from '@libp2p/tcp'
import { defaultLogger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { listWritingTcp, type TcpFactory } from '../src/transport/tcp-writes.js'
import { createTransportNode } from '../src/transport/node.js'
import type { Connection, MultiaddrConnection, Upgrader } from '@libp2p/interface'

/** Resolves with `promise`, or rejects once `ms` have passed. */
async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no ${what} within ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** What a TCP connection's `sendData` takes and returns (internals of `@libp2p/tcp`). */
type SendData = (data: Iterable<Uint8Array> & { byteLength: number }) => { sentBytes: number, canSendMore: boolean }
interface Raw { socket: Socket, sendData: SendData }

/** The writes a socket made: one entry per `_write` (1) or `_writev` (its chunk count). */
function countWrites (socket: Socket): number[] {
  const writes: number[] = []
  const target = socket as unknown as { _write: (...a: unknown[]) => void, _writev: (chunks: unknown[], cb: unknown) => void }
  const write = target._write
  const writev = target._writev
  target._write = function (...args: unknown[]) { writes.push(1); write.apply(this, args) }
  target._writev = function (chunks: unknown[], cb: unknown) { writes.push(chunks.length); writev.call(this, chunks, cb) }
  return writes
}

/** A list of chunks as a connection receives it from the layer above. */
function chunks (...parts: Uint8Array[]): Iterable<Uint8Array> & { byteLength: number } {
  return Object.assign(parts, { byteLength: parts.reduce((n, p) => n + p.byteLength, 0) })
}

/**
 * A connected pair of raw TCP connections of `factory` on 127.0.0.1 (no encryption, no
 * muxer: the upgrader only hands them over), and everything the listening side reads.
 */
async function pair (factory: TcpFactory): Promise<{ out: Raw, received: () => Uint8Array, close: () => Promise<void> }> {
  const transport = factory({ logger: defaultLogger() })
  let inbound: MultiaddrConnection | undefined
  let accepted: () => void = () => {}
  const acceptedOnce = new Promise<void>(resolve => { accepted = resolve })
  const bytes: Uint8Array[] = []
  const upgrader: Upgrader = {
    upgradeInbound: async (maConn: MultiaddrConnection) => {
      inbound = maConn
      maConn.addEventListener('message', (evt) => { for (const c of evt.data instanceof Uint8Array ? [evt.data] : evt.data) bytes.push(c.slice()) })
      accepted()
    },
    upgradeOutbound: async (maConn: MultiaddrConnection) => ({ maConn }) as unknown as Connection,
    createInboundAbortSignal: (signal: AbortSignal) => Object.assign(AbortSignal.any([signal]), { clear: () => {} }),
    getStreamMuxers: () => new Map(),
    getConnectionEncrypters: () => new Map()
  }
  const listener = transport.createListener({ upgrader })
  await listener.listen(multiaddr('/ip4/127.0.0.1/tcp/0'))
  const connection = await transport.dial(listener.getAddrs()[0]!, { upgrader, signal: AbortSignal.timeout(5_000) }) as unknown as { maConn: Raw & MultiaddrConnection }
  await within(acceptedOnce, 5_000, 'inbound connection')
  return {
    out: connection.maConn,
    received: () => Buffer.concat(bytes),
    close: async () => {
      connection.maConn.abort(new Error('test over'))
      inbound?.abort(new Error('test over'))
      await listener.close()
    }
  }
}

/** Waits (bounded) until `received()` holds `n` bytes. */
async function receivedBytes (received: () => Uint8Array, n: number): Promise<Uint8Array> {
  const deadline = Date.now() + 5_000
  while (received().byteLength < n && Date.now() < deadline) await new Promise(resolve => setImmediate(resolve))
  return received()
}

test('a message of several chunks reaches the socket in one write (the stock transport writes each chunk on its own)', async () => {
  const length = new Uint8Array([0, 5])
  const body = new TextEncoder().encode('hello')
  for (const [factory, expected] of [[listWritingTcp(), [2]], [tcp(), [1, 1]]] as const) {
    const { out, received, close } = await pair(factory)
    try {
      const writes = countWrites(out.socket)
      const result = out.sendData(chunks(length, body))
      assert.deepEqual(result, { sentBytes: 7, canSendMore: true })
      assert.deepEqual(writes, expected, 'writes at the socket (chunks per write)')
      assert.equal(out.socket.writableCorked, 0, 'the socket is not left corked')
      assert.deepEqual([...await receivedBytes(received, 7)], [0, 5, ...body])
    } finally {
      await close()
    }
  }
})

test('a message of at least the socket\'s high-water mark is written the stock way, every byte in order', async () => {
  const { out, received, close } = await pair(listWritingTcp())
  try {
    const half = out.socket.writableHighWaterMark / 2
    const parts = [new Uint8Array(half).fill(1), new Uint8Array(half).fill(2), new Uint8Array(3).fill(3)]
    const writes = countWrites(out.socket)
    const result = out.sendData(chunks(...parts))
    assert.equal(result.sentBytes, half * 2 + 3)
    assert.equal(out.socket.writableCorked, 0)
    assert.ok(writes.length >= 2 && writes.every(w => w === 1), `one write per chunk: ${JSON.stringify(writes)}`)
    const got = await receivedBytes(received, half * 2 + 3)
    assert.deepEqual(got, Buffer.concat(parts))
  } finally {
    await close()
  }
})

test('transport nodes on TCP never write a Noise length prefix on its own: a request and its answer take one write each', async () => {
  const [a, b] = await Promise.all([createTransportNode({ transport: 'tcp', gossipsub: false }), createTransportNode({ transport: 'tcp', gossipsub: false })])
  const proto = Socket.prototype as unknown as { _write: (...a: unknown[]) => void, _writev: (chunks: unknown[], cb: unknown) => void }
  const write = proto._write
  const writev = proto._writev
  const single: number[] = []
  let vectored = 0
  try {
    await b.handle('/legion/test/echo/1.0.0', (_from, payload) => payload)
    await a.dial(b.multiaddrs()[0]!)
    await a.request(b.peerId, '/legion/test/echo/1.0.0', new Uint8Array(64)) // opens the stream
    proto._write = function (chunk: unknown, ...rest: unknown[]) { single.push((chunk as Uint8Array).byteLength); write.call(this, chunk, ...rest) }
    proto._writev = function (chunks: unknown[], cb: unknown) { vectored++; writev.call(this, chunks, cb) }
    for (let i = 0; i < 20; i++) assert.equal((await a.request(b.peerId, '/legion/test/echo/1.0.0', new Uint8Array(64).fill(i)))[0], i)
  } finally {
    proto._write = write
    proto._writev = writev
    await Promise.all([a.stop(), b.stop()])
  }
  assert.deepEqual(single.filter(n => n === 2), [], 'no 2-byte length prefix written alone')
  assert.ok(vectored >= 40, `every request and answer in one writev (${vectored})`)
})
