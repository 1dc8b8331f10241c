/**
 * Specification of the HTTP endpoint onto a tree's queue: a node:http server on 127.0.0.1, port
 * 0, with the handler mounted; JSON text and codec bytes in, typed HTTP errors out.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { kvStore } from '../demo/kv-store.js'
import {
  startSupervision, supervisionHttpHandler, supervisor, worker, type SupervisionTree
} from '../src/supervision/index.js'
import { decodeWith, encodeWith, jsonCodec } from '../src/codec/index.js'
import { gate, stub, type Gate } from './support/supervision-stubs.js'

const T = { timeout: 20_000 }

interface Fixture { tree: SupervisionTree, base: string, held: Gate, close: () => Promise<void> }

/**
 * A tree with the KV store `kv`, a stub `held` whose second start waits on a gate (crash it to
 * make requests wait), and a stub `plain`; served over HTTP with a 200 ms call timeout.
 */
async function serve (queueCapacity = 16): Promise<Fixture> {
  const held = gate()
  const tree = await startSupervision(supervisor('root', { intensity: 10 }, [
    worker('kv', kvStore(() => {})),
    worker('held', stub([], { initGate: (i) => i === 2 ? held.promise : undefined })),
    worker('plain', stub([]))
  ]), { queueCapacity })
  const server: Server = createServer(supervisionHttpHandler(tree, { timeoutMs: 200, maxBodyBytes: 1024 }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    tree,
    held,
    base: `http://127.0.0.1:${port}/servers`,
    close: async () => {
      held.open()
      await tree.stop()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

async function post (url: string, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number, json: () => unknown, bytes: Uint8Array, type: string | null }> {
  const res = await fetch(url, { method: 'POST', body, headers })
  const bytes = new Uint8Array(await res.arrayBuffer())
  return { status: res.status, bytes, type: res.headers.get('content-type'), json: () => JSON.parse(new TextDecoder().decode(bytes)) }
}

test('POST /servers/<name>/call with JSON text answers with the output as JSON', T, async () => {
  const f = await serve()
  try {
    assert.deepEqual((await post(`${f.base}/kv/call`, '{"op":"store","key":"x","value":1}')).json(), { stored: 'x' })
    const res = await post(`${f.base}/kv/call`, '{"op":"lookup","key":"x"}')
    assert.equal(res.status, 200)
    assert.equal(res.type, 'application/json')
    assert.deepEqual(res.json(), { result: 1 })
  } finally {
    await f.close()
  }
})

test('application/octet-stream carries the input and the output in the server\'s codecs', T, async () => {
  const f = await serve()
  try {
    await post(`${f.base}/kv/call`, '{"op":"store","key":"y","value":2.5}')
    const res = await post(`${f.base}/kv/call`, encodeWith(jsonCodec, { op: 'lookup', key: 'y' }), { 'content-type': 'application/octet-stream' })
    assert.equal(res.status, 200)
    assert.equal(res.type, 'application/octet-stream')
    assert.deepEqual(decodeWith(jsonCodec, res.bytes), { result: 2.5 })
  } finally {
    await f.close()
  }
})

test('cast answers 202 once the input is queued', T, async () => {
  const f = await serve()
  try {
    const res = await post(`${f.base}/kv/cast`, '{"op":"store","key":"z","value":3}')
    assert.equal(res.status, 202)
    assert.deepEqual((await post(`${f.base}/kv/call`, '{"op":"lookup","key":"z"}')).json(), { result: 3 })
  } finally {
    await f.close()
  }
})

test('typed errors: 404 unknown server or route, 405, 400 bad input, 413, 415, 500 crash', T, async () => {
  const f = await serve()
  try {
    const unknown = await post(`${f.base}/nobody/call`, '{}')
    assert.equal(unknown.status, 404)
    assert.deepEqual(unknown.json(), { error: 'UnknownServerError', message: 'no server named "nobody"' })
    assert.equal((await post(`${f.base}/kv/frobnicate`, '{}')).status, 404)
    assert.equal((await post(f.base.replace('/servers', '/elsewhere') + '/kv/call', '{}')).status, 404)
    const get = await fetch(`${f.base}/kv/call`)
    assert.equal(get.status, 405)
    assert.equal(get.headers.get('allow'), 'POST')
    await get.arrayBuffer()
    const notJson = await post(`${f.base}/kv/call`, '{"op":')
    assert.equal(notJson.status, 400)
    const wrongShape = await post(`${f.base}/kv/call`, '{"op":"delete","key":"x"}')
    assert.equal(wrongShape.status, 400)
    assert.equal((wrongShape.json() as { error: string }).error, 'BadInputError')
    assert.equal((await post(`${f.base}/kv/call`, 'x'.repeat(2048))).status, 413)
    assert.equal((await post(`${f.base}/kv/call`, 'hello', { 'content-type': 'text/plain' })).status, 415)
    const crash = await post(`${f.base}/kv/call`, '{"op":"lookup","key":"crash"}')
    assert.equal(crash.status, 500)
    assert.equal((crash.json() as { error: string }).error, 'ServerCrashedError')
  } finally {
    await f.close()
  }
})

test('503 when the queue is full, 504 when the call times out', T, async () => {
  const f = await serve(1)
  try {
    await assert.rejects(f.tree.call('held', 'crash'))
    // `held` now waits in its second init: a call for it takes the one place in the queue.
    const occupying = f.tree.call('held', 'x', { timeoutMs: 10_000 })
    const full = await post(`${f.base}/plain/call`, '"x"')
    assert.equal(full.status, 503)
    assert.equal((full.json() as { error: string }).error, 'QueueFullError')
    f.held.open()
    assert.equal(await occupying, 'x:1')
    const plain = await post(`${f.base}/plain/call`, '"x"')
    assert.deepEqual(plain.json(), 'x:1')
  } finally {
    await f.close()
  }
  const g = await serve()
  try {
    await assert.rejects(g.tree.call('held', 'crash'))
    const timeout = await post(`${g.base}/held/call`, '"x"')
    assert.equal(timeout.status, 504)
    assert.equal((timeout.json() as { error: string }).error, 'CallTimeoutError')
  } finally {
    await g.close()
  }
})

test('406 when the output cannot be JSON text, unless bytes are asked for', T, async () => {
  const tree = await startSupervision(supervisor('root', {}, [
    worker('big', { init: () => 0, step: (_i: unknown, n: number) => ({ state: n, output: 2n ** 70n }) })
  ]))
  const server = createServer(supervisionHttpHandler(tree, { prefix: '/rpc/' }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc/big/call`
  try {
    assert.equal((await post(url, 'null')).status, 406)
    const bytes = await post(url, 'null', { 'content-type': 'application/json', accept: 'application/octet-stream' })
    assert.equal(bytes.status, 200)
    assert.equal(decodeWith(jsonCodec, bytes.bytes), 2n ** 70n)
  } finally {
    await tree.stop()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})
