/**
 * One peer process of bench/keyspace.ts: a Legion peer running the example cache keyspace
 * (demo/cache/cache.ts), with an echo `onCall` handler as the baseline of the same processes
 * (a plain `call`). Driven with one JSON command per line (bench/command-process.ts); every
 * measuring loop is bounded by a count and by a deadline from the parent.
 *
 * Storage, when asked for, is `lmdbKeyValueStore` or `memoryKeyValueStore`, wrapped so that the
 * bytes of every value it is given to write are counted (what the peer's persistence costs per
 * request).
 */
import '../src/transport/polyfill.js'
import { execFileSync } from 'node:child_process'
import { createServer, connect, type Server } from 'node:net'
import { mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { startLegion } from '../src/peer/start.js'
import { lmdbKeyValueStore, memoryKeyValueStore, type KeyValueStore } from '../src/storage/index.js'
import type { EventSpec } from '../src/eventfold/types.js'
import type { Legion, StartupMode } from '../src/peer/options.js'
import { cacheKeyspace, type Cache } from '../demo/cache/cache.js'
import { serveCommands } from './command-process.js'

interface Command { id: number, cmd: string, [key: string]: unknown }
type Peer = Legion<null, number, number, { cache: ReturnType<typeof cacheKeyspace> }>

const noState: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
const PAYLOAD = new Uint8Array(64).fill(7)
let peer: Peer | undefined
let cache: Cache | undefined
let dataDir: string | undefined
let storedBytes = 0
let echo: Server | undefined
let load: { running: boolean, done: Promise<void>, acked: string[], failed: Record<string, number>, sent: number } | undefined

function summary (samples: number[]): { n: number, p50: number, p99: number, mean: number } {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? NaN
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), mean: sorted.reduce((s, x) => s + x, 0) / sorted.length }
}

function cpuMs (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** A key-value store that counts the bytes of the values written through it. */
function counting (store: KeyValueStore): KeyValueStore {
  return new Proxy(store, {
    get (target, prop, receiver) {
      if (prop === 'batch') {
        return async (ops: Parameters<KeyValueStore['batch']>[0]) => {
          for (const op of ops) if (op.type === 'put') storedBytes += op.value.length + op.key.length
          await target.batch(ops)
        }
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    }
  })
}

function need (): Cache {
  if (cache === undefined) throw new Error('not started')
  return cache
}

const valueOf = (bytes: number, i: number): string => `${i}:`.padEnd(bytes, 'x')

/** Requests in a window of `concurrency`, `count` in all, until `deadline`. */
async function windowed (count: number, concurrency: number, deadline: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count && Date.now() < deadline) await one(next++)
  }))
}

async function handle (c: Command): Promise<Record<string, unknown>> {
  const deadline = Date.now() + Number(c.timeoutMs ?? 120_000)
  switch (c.cmd) {
    case 'start': {
      const startup: StartupMode = c.join !== undefined ? { mode: 'join', peers: [c.join as string] } : { mode: 'new' }
      let storage: KeyValueStore | undefined
      if (c.storage === 'lmdb') {
        dataDir = await mkdtemp(join(c.root as string, 'peer-'))
        storage = counting(await lmdbKeyValueStore(dataDir))
      } else if (c.storage === 'memory') {
        storage = counting(memoryKeyValueStore())
      }
      peer = await startLegion({
        cluster: c.cluster as string,
        spec: noState,
        services: { cache: cacheKeyspace({ partitions: c.partitions as number, replication: c.replication as number }) },
        startup,
        listen: ['/ip4/127.0.0.1/tcp/0'],
        ...(storage !== undefined ? { storage } : {}),
        onCall: (_from, payload) => payload,
        failureDetection: { heartbeatIntervalMs: 1000, suspectAfterMs: 10_000, stuckAfterMs: 30_000 }
      }) as Peer
      cache = peer.services.cache
      return { self: peer.self, address: peer.multiaddrs()[0] }
    }
    case 'settled': {
      const members = c.members as number
      const started = Date.now()
      while (Date.now() < deadline) {
        const t = need().table()
        if (t !== undefined && t.members.length === members && t.assignments.every(a => a.incoming.length === 0 && a.founder === null && a.owners.length > 0)) {
          return { ms: Date.now() - started, version: t.version }
        }
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      throw new Error(`not settled with ${members} members`)
    }
    case 'latency': {
      // Keys whose partition this peer serves (`owned`) or does not (`other`); with `gapMs`,
      // that long between requests (paced: the previous request's replication is done).
      const c_ = need()
      const table = c_.table()!
      const self = peer!.self
      const keys: string[] = []
      for (let i = 0; keys.length < 64 && i < 100_000; i++) {
        const k = `lat:${i}`
        const owns = table.assignments[c_.partitionOf(k)]!.owners.includes(self)
        if (owns === (c.target === 'owned')) keys.push(k)
      }
      const n = c.n as number
      const warmup = c.warmup as number
      const samples: number[] = []
      const cpu0 = cpuMs()
      for (let i = 0; i < warmup + n && Date.now() < deadline; i++) {
        const t = performance.now()
        await c_.request(keys[i % keys.length]!, { op: 'set', value: valueOf(100, i), tags: ['lat'] }, { consistency: c.consistency as 'agreed' | 'one' })
        if (i >= warmup) samples.push(performance.now() - t)
        if (typeof c.gapMs === 'number') await new Promise(resolve => setTimeout(resolve, c.gapMs as number))
      }
      return { ...summary(samples), cpuMs: cpuMs() - cpu0 }
    }
    case 'echoServer': {
      // A plain TCP echo server (no libp2p): the host's own cost of a round trip between two
      // processes, the baseline of the paced scenario.
      const server = createServer(socket => { socket.setNoDelay(true); socket.on('data', d => socket.write(d)) })
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      echo = server
      return { port: (server.address() as { port: number }).port }
    }
    case 'tcpLatency': {
      const socket = connect(c.port as number, '127.0.0.1')
      socket.setNoDelay(true)
      await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
      const payload = Buffer.alloc(100, 7)
      const samples: number[] = []
      try {
        for (let i = 0; i < (c.n as number) && Date.now() < deadline; i++) {
          const t = performance.now()
          // The echo of 100 bytes on loopback arrives as one chunk.
          await new Promise<void>(resolve => { socket.once('data', () => { resolve() }); socket.write(payload) })
          samples.push(performance.now() - t)
          if ((c.gapMs as number) > 0) await new Promise(resolve => setTimeout(resolve, c.gapMs as number))
        }
      } finally {
        socket.destroy()
      }
      return summary(samples)
    }
    case 'callLatency': {
      const n = c.n as number
      const warmup = c.warmup as number
      const samples: number[] = []
      for (let i = 0; i < warmup + n && Date.now() < deadline; i++) {
        const t = performance.now()
        await peer!.call(c.peer as string, PAYLOAD)
        if (i >= warmup) samples.push(performance.now() - t)
      }
      return summary(samples)
    }
    case 'writes': {
      const c_ = need()
      let acked = 0
      const failed: Record<string, number> = {}
      const cpu0 = cpuMs()
      const stored0 = storedBytes
      const started = performance.now()
      await windowed(c.count as number, c.concurrency as number, deadline, async (i) => {
        try {
          await c_.request(`${c.prefix as string}:${i}`, { op: 'set', value: valueOf(c.valueBytes as number, i), tags: [c.prefix as string] }, { consistency: (c.consistency as 'agreed' | 'one' | undefined) ?? 'agreed', timeoutMs: 30_000 })
          acked++
        } catch (err) {
          const name = (err as Error).name
          failed[name] = (failed[name] ?? 0) + 1
        }
      })
      return { acked, failed, ms: performance.now() - started, cpuMs: cpuMs() - cpu0, storedBytes: storedBytes - stored0 }
    }
    case 'loadStart': {
      const c_ = need()
      const state = { running: true, done: Promise.resolve(), acked: [] as string[], failed: {} as Record<string, number>, sent: 0 }
      state.done = Promise.all(Array.from({ length: c.concurrency as number }, async (_, w) => {
        for (let i = 0; state.running && i < 1_000_000; i++) {
          const key = `${c.prefix as string}:${w}-${i}`
          state.sent++
          try {
            await c_.request(key, { op: 'set', value: valueOf(100, i), tags: [c.prefix as string] }, { timeoutMs: 30_000 })
            state.acked.push(key)
          } catch (err) {
            const name = (err as Error).name
            state.failed[name] = (state.failed[name] ?? 0) + 1
          }
        }
      })).then(() => {})
      load = state
      return {}
    }
    case 'loadStop': {
      if (load === undefined) throw new Error('no load')
      load.running = false
      await load.done
      // Every acknowledged write must read back: anything else is a lost request.
      let lost = 0
      const c_ = need()
      await windowed(load.acked.length, 16, deadline, async (i) => {
        const key = load!.acked[i]!
        const value = await c_.request(key, { op: 'get' }).catch(() => undefined)
        if (value === undefined || value === null) lost++
      })
      return { sent: load.sent, acked: load.acked.length, failed: load.failed, lost }
    }
    case 'search': {
      const started = performance.now()
      const cpu0 = cpuMs()
      let records = 0
      for await (const r of need().search(c.from as string | undefined, { pageSize: c.pageSize as number })) {
        records++
        if (Date.now() > deadline) break
      }
      return { records, ms: performance.now() - started, cpuMs: cpuMs() - cpu0 }
    }
    case 'stats': {
      const s = peer!.stats()
      return { keyspace: need().stats(), bytesIn: s.counters.bytesIn, bytesOut: s.counters.bytesOut, syncsRequested: s.counters.syncsRequested, headsSigned: s.counters.headsSigned, fullMerges: s.counters.fullMerges, eventsApplied: s.counters.eventsApplied, cpuMs: cpuMs(), storedBytes, messagesOut: s.counters.messagesOut, diffMerges: s.counters.diffMerges }
    }
    case 'memory': {
      setFlagsFromString('--expose-gc')
      const gc = runInNewContext('gc') as () => void
      gc()
      gc()
      return { heapUsed: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss }
    }
    case 'diskAfterStop': {
      // LMDB's file reaches its size on disk when the environment closes.
      await peer?.stop({ leave: false })
      return { disk: dataDir === undefined ? 0 : Number(execFileSync('du', ['-sb', dataDir]).toString().split('\t')[0]) }
    }
    case 'stop': {
      echo?.close()
      await peer?.stop({ leave: false })
      return {}
    }
    default: throw new Error(`unknown command ${c.cmd}`)
  }
}

serveCommands<Command>(handle, 'stop', async () => { echo?.close(); await peer?.stop({ leave: false }) })
