/**
 * Supervision demo: the seed's example as a program. A key-value server with a deliberate crash
 * runs as `kv1` under a one-for-one root supervisor and as `kv2`, `kv3` under a rest-for-one
 * supervisor. Looking up `"crash"` in `kv2` crashes it; the rest-for-one supervisor stops `kv3`,
 * then starts `kv2` and `kv3` again, in that order, and `kv1` is left alone. The transcript
 * matches the seed's (the restarted `kv2` has forgotten `x`).
 *
 * Then the same tree is put behind the HTTP endpoint on 127.0.0.1 and called once with `fetch`,
 * as a client on the network would.
 *
 * Run with `node --import tsx demo/supervision.ts`. Exit status 0 when the transcript matched.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isDeepStrictEqual } from 'node:util'
import { kvStore, type KvInput } from './kv-store.js'
import { startSupervision, supervisionHttpHandler, supervisor, worker } from '../src/index.js'

const transcript: string[] = []
function say (line: string): void {
  transcript.push(line)
  console.log(line)
}

const kv = kvStore(say)
const kv2 = worker('kv2', kv)
const tree = await startSupervision(
  supervisor('root', { strategy: 'one_for_one' }, [
    worker('kv1', kv),
    supervisor('kv-rest', { strategy: 'rest_for_one' }, [kv2, worker('kv3', kv)])
  ]),
  {
    queueCapacity: 128,
    onEvent: (e) => { if (e.type === 'crashed') say(`${e.child} threw: ${e.error instanceof Error ? e.error.message : String(e.error)}`) }
  })

async function call (input: KvInput): Promise<void> {
  console.log(`Calling kv2: ${JSON.stringify(input)}`)
  try {
    const output = await tree.call(kv2, input)
    console.log(`Right ${JSON.stringify(output)}`)
  } catch (err) {
    console.log(`Left ${err instanceof Error ? err.name : String(err)}`)
  }
}

await call({ op: 'store', key: 'x', value: 1 })
await call({ op: 'lookup', key: 'x' })
await call({ op: 'lookup', key: 'crash' }) // the deliberate bug
await call({ op: 'lookup', key: 'x' })
await call({ op: 'lookup', key: 'y' })

const expected = [
  'KV store starting: kv1', 'KV store starting: kv2', 'KV store starting: kv3',
  'kv2 threw: Division by zero',
  'KV store terminating: kv2', 'KV store terminating: kv3',
  'KV store starting: kv2', 'KV store starting: kv3'
]
const matched = isDeepStrictEqual(transcript, expected)
console.log(matched ? '\nThe start and stop order matches the seed.' : '\nUNEXPECTED order of starts and stops.')
console.log('kv1:', JSON.stringify(tree.whichChildren()[0]!.status), 'restarts:', tree.whichChildren()[0]!.restarts)

// The same tree over HTTP, as a client on the network would call it.
const server = createServer(supervisionHttpHandler(tree))
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/servers/kv1/call`
await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ op: 'store', key: 'h', value: 7 }) })
const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ op: 'lookup', key: 'h' }) })
console.log(`\nPOST ${url} -> ${res.status} ${await res.text()}`)
await new Promise<void>((resolve) => server.close(() => resolve()))

console.log('\nStopping the tree (reverse order):')
await tree.stop()
process.exitCode = matched ? 0 : 1
