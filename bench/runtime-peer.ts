/**
 * One peer process of bench/runtime.ts. It runs a Legion peer (a tiny counter spec with the
 * default JSON codec) and, beside it, a plain transport node with an echo handler that serves
 * as the baseline of the same processes; with `admin: true` it also runs the admin endpoint
 * (for the cost of scraping its metrics). The parent drives it with one JSON command per line
 * on stdin and reads one JSON reply per line on stdout: `{ id, cmd, ...args }` in,
 * `{ id, ok: true, ...result }` or `{ id, ok: false, error }` out. Nothing else is written to
 * stdout. The process exits after `stop`, or when stdin closes (the parent died).
 *
 * Every measuring loop is bounded by a count and by a deadline given by the parent.
 */
import '../src/transport/polyfill.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createTransportNode, type TransportNode } from '../src/transport/index.js'
import { startPeer } from '../src/peer/start.js'
import { admin } from '../src/admin/service.js'
import { lmdbKeyValueStore, memoryKeyValueStore, type KeyValueStore } from '../src/storage/index.js'
import { defineService } from '../src/peer/services.js'
import type { Group } from '../src/peer/group/groups.js'
import type { EventSpec } from '../src/eventfold/types.js'
import type { FailureDetectionOptions, Legion, PropagationOptions, StartupMode } from '../src/peer/options.js'
import { serveCommands } from './command-process.js'

/** A counter: each event adds its value, the output is the new total. */
const counter: EventSpec<number, number, number> = {
  init: () => 0,
  apply: (n, total) => ({ ok: true, output: total + n, state: total + n })
}

const ECHO = '/legion-bench/echo/1.0.0'
const PAYLOAD = new Uint8Array(64).fill(7)

type StorageKind = 'none' | 'memory' | 'lmdb'

interface Command {
  id: number
  cmd: string
  [key: string]: unknown
}

/** `groups: n` in `start`: a service with n cluster-wide counter groups `bench/g0`... */
function benchGroups (n: number): ReturnType<typeof defineService<{ groups: Array<Group<number, number, number>> }, 'groups'>> {
  return defineService({ name: 'bench', needs: ['groups'], create: ({ groups }) => ({ groups: Array.from({ length: n }, (_, i) => groups.clusterWide(`g${i}`, { spec: counter })) }) })
}

let legion: Legion<number, number, number> | undefined
let benchGroupHandles: Array<Group<number, number, number>> = []
let raw: TransportNode | undefined
let dataDir: string | undefined

function summary (samples: number[]): { n: number, p50: number, p99: number, mean: number, max: number } {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? NaN
  return { n: sorted.length, p50: at(0.5), p99: at(0.99), mean: sorted.reduce((s, x) => s + x, 0) / sorted.length, max: sorted[sorted.length - 1] ?? NaN }
}

function requireLegion (): Legion<number, number, number> {
  if (legion === undefined) throw new Error('not started')
  return legion
}

/** `root`: a temp directory the parent owns and removes, even if this process is killed. */
async function openStorage (kind: StorageKind, root: string): Promise<KeyValueStore | undefined> {
  if (kind === 'memory') return memoryKeyValueStore()
  if (kind === 'lmdb') {
    dataDir = await mkdtemp(join(root, 'peer-'))
    return await lmdbKeyValueStore(join(dataDir, 'peer'))
  }
  return undefined
}

/** Resolves once this peer sees `n` settled participants, woken by its change notifications. */
async function waitParticipants (n: number, timeoutMs: number): Promise<void> {
  const l = requireLegion()
  const ready = (): boolean => { const s = l.readState(); return s.participants.length >= n && s.outstanding === 0 }
  if (ready()) return
  await new Promise<void>((resolve, reject) => {
    const unsubscribe = l.subscribe(() => { if (ready()) { done(); resolve() } })
    const timer = setTimeout(() => { done(); reject(new Error(`saw ${l.readState().participants.length} of ${n} participants after ${timeoutMs} ms`)) }, timeoutMs)
    const done = (): void => { unsubscribe(); clearTimeout(timer) }
  })
}

/** Runs `once` `warmup` times, then `count` times sequentially (or until `deadline`), timing each. */
async function latency (once: () => Promise<void>, warmup: number, count: number, deadline: number): Promise<number[]> {
  for (let i = 0; i < warmup && Date.now() < deadline; i++) await once()
  const samples: number[] = []
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    const start = performance.now()
    await once()
    samples.push(performance.now() - start)
  }
  return samples
}

/**
 * `total` applyConsistent calls in waves of `wave` concurrent ones; a wave starts when the
 * previous one has settled. Stops starting waves at `deadline`.
 */
async function throughput (total: number, wave: number, deadline: number, timeoutMs: number): Promise<Record<string, unknown>> {
  const l = requireLegion()
  let completed = 0
  let failed = 0
  let firstError: string | undefined
  const start = performance.now()
  while (completed + failed < total && Date.now() < deadline) {
    const size = Math.min(wave, total - completed - failed)
    const results = await Promise.allSettled(Array.from({ length: size }, async () => await l.applyConsistent(1, { timeoutMs })))
    for (const r of results) {
      if (r.status === 'fulfilled') completed++
      else { failed++; firstError ??= String(r.reason) }
    }
  }
  const elapsedMs = performance.now() - start
  return { completed, failed, elapsedMs, ...(firstError !== undefined ? { firstError } : {}) }
}

async function handle (c: Command): Promise<Record<string, unknown>> {
  const deadline = Date.now() + Number(c.timeoutMs ?? 60_000)
  switch (c.cmd) {
    case 'start': {
      const storage = await openStorage(c.storage as StorageKind, String(c.dataRoot))
      const services = { bench: benchGroups(Number(c.groups ?? 0)), ...(c.admin === true ? { admin: admin() } : {}) }
      const started = await startPeer({
        services,
        cluster: String(c.cluster),
        spec: counter,
        startup: c.startup as StartupMode,
        onCall: (_from, payload) => payload, // echo: `call` against the raw transport request
        ...(c.propagation !== undefined ? { propagation: c.propagation as PropagationOptions } : {}),
        ...(c.failureDetection !== undefined ? { failureDetection: c.failureDetection as FailureDetectionOptions } : {}),
        ...(storage !== undefined ? { storage } : {})
      }, { unsignedEvents: c.unsigned === true })
      benchGroupHandles = started.services.bench.groups
      legion = started as unknown as Legion<number, number, number>
      raw = await createTransportNode({ gossipsub: false, logPrefix: 'bench-raw' })
      await raw.handle(ECHO, (_from, payload) => payload)
      const adminUrl = (legion.services as { admin?: { url: string | undefined } }).admin?.url
      return { self: legion.self, addrs: legion.multiaddrs(), rawPeer: raw.peerId, rawAddrs: raw.multiaddrs(), ...(adminUrl !== undefined ? { adminUrl } : {}) }
    }
    case 'dialRaw': {
      if (raw === undefined) throw new Error('not started')
      return { peer: await raw.dial(String(c.addr)) }
    }
    case 'waitParticipants':
      await waitParticipants(Number(c.n), Number(c.timeoutMs ?? 30_000))
      return {}
    case 'latency': {
      const l = requireLegion()
      const target = String(c.target ?? '')
      const op = String(c.op)
      const once: Record<string, () => Promise<void>> = {
        raw: async () => { await raw!.request(target, ECHO, PAYLOAD) },
        call: async () => { await l.call(target, PAYLOAD) },
        broadcall: async () => {
          const replies = await l.broadcall(PAYLOAD)
          for (const r of replies.values()) if (r.kind !== 'reply') throw new Error(`a broadcall reply is missing: ${r.kind}`)
        },
        consistent: async () => { await l.applyConsistent(1) },
        groupConsistent: async () => { await benchGroupHandles[Number(c.group ?? 0)]!.applyConsistent(1) }
      }
      const f = once[op]
      if (f === undefined) throw new Error(`unknown op ${op}`)
      return summary(await latency(f, Number(c.warmup), Number(c.count), deadline))
    }
    case 'throughput':
      return await throughput(Number(c.total), Number(c.wave), deadline, Number(c.opTimeoutMs ?? 30_000))
    case 'cpu': {
      const u = process.cpuUsage()
      return { cpuMs: (u.user + u.system) / 1000, userMs: u.user / 1000, systemMs: u.system / 1000 }
    }
    case 'memory': {
      // After a full GC (the parent starts this process with --expose-gc): the live heap.
      const gc = (globalThis as { gc?: () => void }).gc
      if (gc === undefined) throw new Error('start the peer with --expose-gc')
      gc(); gc()
      return { heapUsed: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss }
    }
    case 'stats': {
      const s = requireLegion().stats()
      return { counters: s.counters, outstanding: s.outstanding, participants: s.participants }
    }
    case 'stop':
      await shutdown()
      return {}
    default:
      throw new Error(`unknown command ${c.cmd}`)
  }
}

let stopping: Promise<void> | undefined
async function shutdown (): Promise<void> {
  stopping ??= (async () => {
    await legion?.stop({ leave: false, timeoutMs: 2000 }).catch(() => {})
    await raw?.stop().catch(() => {})
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true }).catch(() => {})
  })()
  await stopping
}

serveCommands(handle, 'stop', shutdown)
