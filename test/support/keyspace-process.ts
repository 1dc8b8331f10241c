/**
 * Child process of the keyspace fault tests (test/keyspace-faults.test.ts, driven through
 * test/support/process-cluster.ts with `script: 'keyspace-process.ts'`): one Legion peer over
 * TCP loopback running the example cache keyspace (demo/cache/cache.ts), with durable LMDB
 * storage when LEGION_STORAGE is set.
 *
 * Environment as peer-process.ts (LEGION_CLUSTER, LEGION_JOIN, LEGION_RECOVER,
 * LEGION_STORAGE, LEGION_PRIVATE_KEY, LEGION_OPTIONS: `{ intervalMs?, failureDetection?,
 * partitions?, replication? }`).
 *
 * Out: `{"type":"ready","self","address"}` once started, `{"type":"reply","id","value"|"error"}`
 * per command. In: `{"id","command",...}` with command one of
 * - `set {key, value, timeoutMs}`: a request, answering the previous value;
 * - `get {key, consistency}`;
 * - `readLocal {keys}`: per key `[held, value]` of this peer's replica (settled state);
 * - `partitions {keys}`: each key's partition;
 * - `table`: the settled ownership table; `stats`: the keyspace's stats;
 * - `search {from}`: every key the index lists after `from`;
 * - `block {peers}`: the network partition switch (see peer-process.ts);
 * - `stop {leave}`.
 */
import { say, serveCommands } from './child-commands.js'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { startLegion } from '../../src/peer/start.js'
import { lmdbKeyValueStore } from '../../src/storage/index.js'
import type { EventSpec } from '../../src/eventfold/types.js'
import type { FailureDetectionOptions, StartupMode } from '../../src/peer/options.js'
import { cacheKeyspace } from '../../demo/cache/cache.js'

const join = process.env.LEGION_JOIN
const recover = process.env.LEGION_RECOVER
const key = process.env.LEGION_PRIVATE_KEY
const storageDir = process.env.LEGION_STORAGE
const options = JSON.parse(process.env.LEGION_OPTIONS ?? '{}') as { intervalMs?: number, failureDetection?: FailureDetectionOptions, partitions?: number, replication?: number }
const startup: StartupMode = recover !== undefined
  ? { mode: 'recover', peers: JSON.parse(recover) as string[] }
  : join !== undefined ? { mode: 'join', peers: [join] } : { mode: 'new' }
let blocked: ReadonlySet<string> = new Set()

const noState: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
const legion = await startLegion({
  cluster: process.env.LEGION_CLUSTER ?? 'keyspace-processes',
  spec: noState,
  services: { cache: cacheKeyspace({ partitions: options.partitions ?? 16, replication: options.replication ?? 3 }) },
  startup,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  ...(key !== undefined ? { privateKey: privateKeyFromProtobuf(Buffer.from(key, 'hex')) } : {}),
  ...(storageDir !== undefined ? { storage: await lmdbKeyValueStore(storageDir) } : {}),
  ...(options.failureDetection !== undefined ? { failureDetection: options.failureDetection } : {}),
  allowPeers: peer => !blocked.has(peer),
  propagation: { intervalMs: options.intervalMs ?? 250 }
})
const cache = legion.services.cache

say({ type: 'ready', self: legion.self, address: legion.multiaddrs()[0] })

async function run (command: string, args: Record<string, unknown>): Promise<unknown> {
  switch (command) {
    case 'set': {
      const k = args.key as string
      return await cache.request(k, { op: 'set', value: args.value as string, tags: [k.split(':')[0]!] }, { timeoutMs: args.timeoutMs as number | undefined })
    }
    case 'get': return await cache.request(args.key as string, { op: 'get' }, { consistency: (args.consistency as 'one' | undefined) ?? 'agreed' })
    case 'readLocal': return (args.keys as string[]).map(k => { const r = cache.readLocal(k); return [r.held, r.infimum?.value ?? null] })
    case 'partitions': return (args.keys as string[]).map(k => cache.partitionOf(k))
    case 'table': return cache.table()
    case 'stats': return cache.stats()
    case 'search': {
      const keys: string[] = []
      for await (const r of cache.search(args.from as string | undefined)) keys.push(r.key)
      return keys
    }
    case 'block': blocked = new Set(args.peers as string[]); return [...blocked]
    case 'stop': await legion.stop({ leave: args.leave as boolean | undefined }); return 'stopped'
    default: throw new Error(`unknown command ${command}`)
  }
}

serveCommands(run, () => { void legion.stop({ leave: false }) })
