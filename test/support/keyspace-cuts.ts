/**
 * One run of random link cuts on the keyspace (test/explore/keyspace-cuts.test.ts): 4 - 6
 * simulated peers, each a cache keyspace (demo/cache) of 16 partitions, on the in-memory
 * network with one manual clock; every 400 ms each peer sets a key of its own (unique keys,
 * agreed consistency, each routed to its partition's owners).
 * Rounds of 1 - 4 links cut at once for 2 - 20 s, healed for 1 - 5 s; then everything healed.
 * At the end every peer must be a member again, every partition owned with no move under way,
 * every acknowledged write on every owner of its partition, and no flush may have thrown.
 * Writes that fail (timeouts while the owners cannot be reached, a partition lost) are counted,
 * not failures: only an acknowledged write must not be lost.
 *
 * The rules order peers by id, so the seed fixes the cuts and `keys` the peers' ids; without
 * `keys` they are fresh, and a seed fixes the cuts, not the outcome.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { startPeer } from '../../src/peer/start.js'
import type { Legion, LegionOptions } from '../../src/peer/options.js'
import type { EventSpec } from '../../src/eventfold/types.js'
import { cacheKeyspace } from '../../demo/cache/cache.js'
import { FakeNetwork, ManualClock, seededRandom, advanceUntil } from './fake-network.js'
import { missingOnReplicas, settledWith, type Write } from './keyspace-load.js'
import { cutRandomLinks } from './link-cuts.js'
import { traceKeyspacePartition } from './keyspace-trace.js'

const noState: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
type Peer = Legion<null, number, number, { cache: ReturnType<typeof cacheKeyspace> }>

/** What a run that ended well reports. */
export interface KeyspaceCutsReport {
  readonly peers: number
  /** Writes acknowledged. */
  readonly acknowledged: number
  /** Writes that failed, by error name. */
  readonly failed: Readonly<Record<string, number>>
  /** Times a peer learnt it was ejected, summed over the peers. */
  readonly ejections: number
  /** Partitions lost (every replica gone: a new generation from the default state), as `onPartitionEvent` told. */
  readonly lost: number
  /** The cuts, round by round. */
  readonly plan: readonly string[]
}

/** Options of {@link keyspaceCutsRun}. */
export interface KeyspaceCutsOptions {
  /** Cut each link one way only, in a direction drawn at random, half of the time. @default false */
  readonly oneWay?: boolean
  /** Rounds of cuts before the final heal. @default 6 */
  readonly rounds?: number
  /** Replicas of each partition (the keyspace's default too). @default 3 */
  readonly replication?: number
}

/** Runs seed `seed` (peer keys from `keys` if given); throws, naming what is missing, unless every acknowledged write ends on every owner. */
export async function keyspaceCutsRun (seed: number, keys?: number, options: KeyspaceCutsOptions = {}): Promise<KeyspaceCutsReport> {
  const random = seededRandom(seed * 7919 + 17)
  const n = 4 + Math.floor(random.next() * 3)
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const peers: Peer[] = []
  const lost = new Set<string>()
  let started = 0
  const start = async (startup: LegionOptions<null, number, number>['startup']): Promise<Peer> => {
    started++
    const keySeed = keys === undefined ? undefined : keys * 1000 + seed
    const privateKey = keySeed === undefined ? undefined : await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(started, 0, 16).fill(keySeed % 256, 16, 24).fill(Math.floor(keySeed / 256) % 256, 24))
    const peer = await startPeer<null, number, number, { cache: ReturnType<typeof cacheKeyspace> }>({
      cluster: 'keyspace-cuts',
      spec: noState,
      startup,
      ...(privateKey === undefined ? {} : { privateKey }),
      services: { cache: cacheKeyspace({ partitions: 16, replication: options.replication ?? 3 }) },
      propagation: { intervalMs: 1000 },
      failureDetection: { heartbeatIntervalMs: 1000, suspectAfterMs: 3000, stuckAfterMs: 5000 }
    }, { network: async key => await net.node(key), clock, random: seededRandom(started) })
    peer.services.cache.onPartitionEvent(e => { trace?.event(peer.self, e); if (e.type === 'lost') lost.add(`${e.partition}.${e.generation}`) })
    peers.push(peer)
    return peer
  }
  // LEGION_KEYSPACE_CUT_TRACE=<partition>[:<key>] (test/explore/keyspace-cuts.test.ts)
  const [tracePartition, traceKey] = (process.env.LEGION_KEYSPACE_CUT_TRACE ?? '').split(':')
  const writes: Write[] = []
  const trace = tracePartition === undefined || tracePartition === ''
    ? undefined
    : traceKeyspacePartition(clock, () => peers.map(p => ({ peer: p, table: () => p.services.cache.table() })), Number(tracePartition), traceKey === undefined ? undefined : { name: traceKey, acknowledged: () => writes.some(w => w.key === traceKey && w.acknowledged === true) })
  const until = async (predicate: () => boolean, what: string, maxMs: number): Promise<void> => { await advanceUntil(clock, predicate, what, maxMs, 250) }
  const pass = async (ms: number): Promise<void> => { await advanceUntil(clock, () => false, `${ms} ms`, ms, 250).catch(() => {}) }
  try {
    const first = await start({ mode: 'new' })
    for (let i = 1; i < n; i++) await start({ mode: 'join', peers: first.multiaddrs() })
    await until(() => peers.every(p => settledWith(p.services.cache, n)), `${n} members, every move done`, 60_000)
    let count = 0
    const load = clock.every(400, () => {
      for (const p of peers) {
        const write: Write = { key: `k${count++}`, value: `v${count}` }
        writes.push(write)
        p.services.cache.request(write.key, { op: 'set', value: write.value, tags: [] }, { timeoutMs: 20_000 }).then(() => { write.acknowledged = true }, (err: Error) => { write.error = err.name; write.detail = err.message })
      }
    })
    const plan: string[] = []
    for (let round = 0; round < (options.rounds ?? 6); round++) {
      const cut = cutRandomLinks(random, net, peers.map(p => p.self), options.oneWay === true)
      const hold = 2000 + Math.floor(random.next() * 18_000)
      const rest = 1000 + Math.floor(random.next() * 4000)
      plan.push(`${cut.join(',')} cut ${hold} ms, healed ${rest} ms`)
      await pass(hold)
      net.heal()
      await pass(rest)
    }
    load.cancel()
    await pass(25_000) // every write still pending ends (20 s)
    const caches = peers.map(p => p.services.cache)
    const selfs = peers.map(p => p.self)
    const acknowledged = writes.filter(w => w.acknowledged === true)
    try {
      await until(() => caches.every(c => settledWith(c, n)) && missingOnReplicas(caches, selfs, acknowledged).length === 0, 'every member back, every acknowledged write on every owner', 120_000)
    } catch (err) {
      const missing = missingOnReplicas(caches, selfs, acknowledged)
      const views = peers.map((p, i) => `${i} ${p.self.slice(-6)}: ${p.stats().membership}, members ${caches[i]!.table()?.members.length ?? '-'}, ${JSON.stringify(caches[i]!.stats())}`)
      throw new Error(`${(err as Error).message}; ${n} peers; ${lost.size} partitions lost; plan: ${plan.join('; ')}; ${missing.length} missing: ${missing.slice(0, 8).join(', ')};\n${views.join('\n')}`)
    }
    const threw = peers.filter(p => p.stats().counters.flushFailures > 0).map(p => p.self)
    if (threw.length > 0) throw new Error(`the flush of ${threw.join(', ')} threw (legion:flush:error says why); plan: ${plan.join('; ')}`)
    const failed: Record<string, number> = {}
    for (const w of writes) if (w.error !== undefined) failed[w.error] = (failed[w.error] ?? 0) + 1
    const ejections = peers.reduce((sum, p) => sum + p.stats().counters.timesEjected, 0)
    return { peers: n, acknowledged: acknowledged.length, failed, ejections, lost: lost.size, plan }
  } finally {
    trace?.stop()
    await Promise.all(peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
  }
}
