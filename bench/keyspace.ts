/**
 * Keyspace benchmark: cache peers (bench/keyspace-peer.ts, the example cache of
 * demo/cache/cache.ts) as separate OS processes on TCP loopback, driven over stdin/stdout.
 * Every request latency is set against a plain `call` measured in the same run between the
 * same processes (`call_p50_ms`), and CPU per request is the CPU all peer processes spent.
 *
 * Scenarios (a fresh cluster each, 64 partitions, NODE_ENV=production in the peers):
 * - 5 peers, R = 3, no storage: request latency from a peer that owns the key and from one
 *   that does not (agreed and one-replica), against `call`, back to back and (routed only)
 *   paced 20 ms apart, after LATENCY_WARMUP routed requests (the first routed requests of the
 *   fresh cluster are reported too, as `_cold`); writes per second over many keys with every
 *   peer writing concurrently (after 2,000 unmeasured writes per peer);
 * - the same writes (after the same warm-up, 5,000 per peer) with LMDB storage
 *   (`lmdbKeyValueStore`) and with memory storage (`memoryKeyValueStore`, the peer store's own
 *   cost without a disk), the bytes written per request, and CPU per write over the writes
 *   without storage of the same run;
 * - 5 peers holding 100,000 keys (100-byte values): `search` records per second over the whole
 *   index; then a 6th peer joins under write load: time until every move is done, bytes it
 *   received over the bytes of the state it now holds, acknowledged writes lost (read back
 *   after the move) and writes failed;
 * - 1 peer, R = 1: heap bytes per key at 1,000,000 keys (no storage), and disk bytes per key
 *   with LMDB at 1,000,000 keys (a save writes the events that settled, and a checkpoint of
 *   the partition's state only once those add up to its size: docs/BENCHMARKS.md, "Storage").
 *
 * Run: npm run bench:keyspace [-- --quick]   (several minutes; --quick: smaller counts)
 * Env: LEGION_BENCH_ONLY=latency,writes,paced,memory,lmdb,rebalance,bytes   run only these scenarios
 *      (writes: the write rate alone, after 2,000 unmeasured writes per peer; paced: idle CPU,
 *      then requests 20 ms apart with messages, merges, bytes and CPU per request, against a
 *      plain TCP round trip between two of the peer processes; neither runs unless named);
 *      LEGION_BENCH_DISK_KEYS=<n>    keys of the LMDB fill (default 1,000,000; 50,000 quick);
 *      LEGION_BENCH_WRITE_CONCURRENCY=<n>  requests in flight per writing peer (default 64);
 *      LEGION_BENCH_WRITES_PEERS=<n>, LEGION_BENCH_WRITES_REPLICATION=<r>  the writes scenario's
 *        cluster (default 5 and 3; with 1 peer and R = 1 nothing is routed or replicated);
 *      LEGION_BENCH_CPU_PROF=<dir>   profile every peer (--cpu-prof, one folder per peer).
 * Prints the machine and a table; a full default run writes bench/results/keyspace.json as rows
 * { metric, value, unit, baseline_ratio?, goal? } (baseline_ratio: over `call_p50_ms`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeWith } from '../src/codec/codec.js'
import { jsonCodec } from '../src/codec/json.js'
import { CommandProcess, killChildren, type Reply } from './command-process.js'

const QUICK = process.argv.includes('--quick')
const ONLY = process.env.LEGION_BENCH_ONLY?.split(',')
const PARTITIONS = 64
const LATENCY_N = QUICK ? 200 : 1000
/**
 * Routed agreed requests before the latency rows the goal is read from: a fresh cluster's
 * requests cost about twice what they cost once V8 has optimised the path, which takes about
 * 4,000 of them (docs/BENCHMARKS.md, "Latency measured warm"); `call` is warm after its own 1,000.
 */
const LATENCY_WARMUP = 5000
/** Paced latency: requests this many milliseconds apart, this many of them. */
const PACE_MS = 20
const PACED_N = QUICK ? 100 : 300
const WRITES_PER_PEER = QUICK ? 4000 : 20_000
/** Peers and replication of the writes scenario (LEGION_BENCH_WRITES_PEERS, LEGION_BENCH_WRITES_REPLICATION). */
const WRITES_PEERS = Number(process.env.LEGION_BENCH_WRITES_PEERS ?? 5)
const WRITES_REPLICATION = Number(process.env.LEGION_BENCH_WRITES_REPLICATION ?? 3)
/** Unmeasured writes per peer before writes are measured, with or without storage (see `warmUp`). */
const WARMUP_WRITES_PER_PEER = 2000
/** Requests each writing peer keeps in flight (LEGION_BENCH_WRITE_CONCURRENCY). */
const WRITE_CONCURRENCY = Number(process.env.LEGION_BENCH_WRITE_CONCURRENCY ?? 64)
const STORED_KEYS = QUICK ? 20_000 : 100_000
const HEAP_KEYS = QUICK ? 100_000 : 1_000_000
const DISK_KEYS = Number(process.env.LEGION_BENCH_DISK_KEYS ?? (QUICK ? 50_000 : 1_000_000))
const VALUE_BYTES = 100

/** What a peer stores into: nothing, `memoryKeyValueStore` or `lmdbKeyValueStore`. */
type Storage = 'none' | 'memory' | 'lmdb'
interface Row { metric: string, value: number, unit: string, baseline_ratio?: number, goal?: string }
interface Latency { n: number, p50: number, p99: number, mean: number, cpuMs?: number }
const rows: Row[] = []
const notes: string[] = []

const DATA_ROOT = mkdtempSync(join(tmpdir(), 'legion-bench-keyspace-'))
process.on('exit', () => { killChildren(); rmSync(DATA_ROOT, { recursive: true, force: true }) })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { process.exit(130) })

function row (metric: string, value: number, unit: string, extra: { baseline_ratio?: number, goal?: string } = {}): void {
  rows.push({ metric, value: Number(value.toPrecision(6)), unit, ...extra })
  console.error(`  ${metric} = ${value.toFixed(3)} ${unit}`)
}

const ratio = (x: number, base: number): number => Number((x / base).toFixed(3))

class Peer {
  readonly #process: CommandProcess
  self = ''
  address = ''
  constructor (readonly name: string) {
    this.#process = new CommandProcess(name, fileURLToPath(new URL('./keyspace-peer.ts', import.meta.url)), ['--max-old-space-size=4096'], process.env.LEGION_BENCH_CPU_PROF)
  }

  /** Sends a command; the child gets `args.timeoutMs` (default 300 s) for its loops, the parent waits a little longer. */
  async send (cmd: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const timeoutMs = typeof args.timeoutMs === 'number' ? args.timeoutMs : 300_000
    return await this.#process.send(cmd, { ...args, timeoutMs }, timeoutMs + 30_000)
  }

  async stop (): Promise<void> {
    await this.#process.exitWith('stop', 10_000, 15_000)
  }
}

/** Starts `n` peers (the first founds, the others join through it) and waits until their table has settled. */
async function cluster (n: number, options: { replication: number, storage: Storage }, name: string): Promise<Peer[]> {
  const cluster = `bench-keyspace-${name}-${process.pid}`
  const peers: Peer[] = []
  const start = async (p: Peer, join?: string): Promise<void> => {
    const r = await p.send('start', { cluster, partitions: PARTITIONS, replication: options.replication, storage: options.storage, root: DATA_ROOT, ...(join !== undefined ? { join } : {}) })
    p.self = r.self as string
    p.address = r.address as string
  }
  const first = new Peer(`${name}-A`)
  await start(first)
  peers.push(first)
  for (let i = 1; i < n; i++) {
    const p = new Peer(`${name}-${String.fromCharCode(65 + i)}`)
    await start(p, first.address)
    peers.push(p)
  }
  await Promise.all(peers.map(async p => await p.send('settled', { members: n, timeoutMs: 120_000 })))
  return peers
}

async function stopAll (peers: Peer[]): Promise<void> {
  await Promise.all(peers.map(async p => { await p.stop() }))
}

async function totalCpu (peers: Peer[]): Promise<number> {
  const s = await Promise.all(peers.map(async p => await p.send('stats')))
  return s.reduce((sum, r) => sum + Number(r.cpuMs), 0)
}

async function run (label: string, body: () => Promise<void>, byDefault = true): Promise<void> {
  if (ONLY === undefined ? !byDefault : !ONLY.includes(label)) return
  console.error(`scenario: ${label}`)
  try {
    await body()
  } catch (err) {
    notes.push(`${label} failed: ${String(err)}`)
    console.error(`  failed: ${String(err)}`)
  }
}

/** Events applied over every peer (each replica counts the events it applied), and syncs pulled. */
async function eventsAndSyncs (peers: Peer[]): Promise<{ events: number, syncs: number, signatures: number, bytes: number, messages: number }> {
  const s = await Promise.all(peers.map(async p => await p.send('stats')))
  const sum = (field: string): number => s.reduce((total, r) => total + Number(r[field]), 0)
  return { events: sum('eventsApplied'), syncs: sum('syncsRequested'), signatures: sum('headsSigned'), bytes: sum('bytesOut'), messages: sum('messagesOut') }
}

/**
 * Every peer writes `count` keys of its own, unmeasured: a fresh cluster's first thousands of
 * requests run through code the JIT has not optimised yet, which in a quick run's 4,000 writes
 * per peer made the CPU per request about 1.5x that of a full run.
 */
async function warmUp (peers: Peer[], count: number): Promise<void> {
  await Promise.all(peers.map(async (p, i) => await p.send('writes', { prefix: `warm${i}`, count, concurrency: WRITE_CONCURRENCY, valueBytes: VALUE_BYTES, timeoutMs: 240_000 })))
}

/** Every peer writes `perPeer` keys, `concurrency` in flight each; rows for the rate, CPU and stored bytes. */
async function writesRows (peers: Peer[], suffix: string, perPeer: number): Promise<{ cpuMsPerWrite: number }> {
  const cpu0 = await totalCpu(peers)
  const events0 = await eventsAndSyncs(peers)
  const started = Date.now()
  const results = await Promise.all(peers.map(async (p, i) => await p.send('writes', { prefix: `w${i}`, count: perPeer, concurrency: WRITE_CONCURRENCY, valueBytes: VALUE_BYTES, timeoutMs: 240_000 })))
  const wall = Date.now() - started
  const ok = results.reduce((s, r) => s + Number(r.acked), 0)
  const failed = results.reduce((s, r) => s + Object.values(r.failed as Record<string, number>).reduce((a, b) => a + b, 0), 0)
  const cpu = await totalCpu(peers) - cpu0
  const counted = await eventsAndSyncs(peers)
  const events = counted.events - events0.events
  row(`keyspace_requests_per_event_${suffix}`, ok / Math.max(1, events), 'requests (batching)')
  // Anti-entropy's pulls (a lost batch, or a participant a fold waited on for a whole round)
  // should be rare under load: each one is a request and a diff encoded for it.
  row(`keyspace_write_syncs_pulled_per_1000_requests_${suffix}`, 1000 * (counted.syncs - events0.syncs) / ok, 'syncs (all peers)')
  // Heads signed together: one signature per flush however many partitions it changed.
  row(`keyspace_write_heads_signed_per_1000_requests_${suffix}`, 1000 * (counted.signatures - events0.signatures) / ok, 'signatures (all peers)')
  row(`keyspace_write_bytes_per_request_${suffix}`, (counted.bytes - events0.bytes) / ok, 'bytes sent (all peers)')
  // Messages, not bytes, are what a write's CPU follows: each is framed, encrypted, written
  // and woken up for.
  row(`keyspace_write_messages_per_request_${suffix}`, (counted.messages - events0.messages) / ok, 'messages sent (all peers)')
  row(`keyspace_writes_per_s_${suffix}`, ok / (wall / 1000), 'writes/s', suffix === '5_peers_r3' ? { goal: '>= 10000' } : {})
  row(`keyspace_write_cpu_ms_per_request_${suffix}`, cpu / ok, 'ms (all peers)')
  if (failed > 0) notes.push(`${suffix}: ${failed} writes failed: ${JSON.stringify(results.map(r => r.failed))}`)
  const stored = results.reduce((s, r) => s + Number(r.storedBytes), 0)
  if (stored > 0) row(`keyspace_storage_bytes_written_per_request_${suffix}`, stored / ok, 'bytes (all replicas)')
  return { cpuMsPerWrite: cpu / ok }
}

async function main (): Promise<void> {
  const cpu = cpus()
  console.log(`machine: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}${QUICK ? ' (quick run)' : ''}`)
  row('host_load_average_1m_at_start', loadavg()[0]!, 'runnable tasks')
  let call = NaN
  /** CPU per write of the writes without storage, when measured in this run. */
  let writesCpuWithoutStorage: number | undefined

  await run('latency', async () => {
    const peers = await cluster(5, { replication: 3, storage: 'none' }, 'lat')
    try {
      const cold = await peers[0]!.send('latency', { target: 'other', consistency: 'agreed', n: LATENCY_N, warmup: 100 }) as unknown as Latency
      await peers[0]!.send('latency', { target: 'other', consistency: 'agreed', n: 0, warmup: LATENCY_WARMUP })
      const c = await peers[0]!.send('callLatency', { peer: peers[1]!.self, n: LATENCY_N * 2, warmup: 1000 }) as unknown as Latency
      call = c.p50
      row('call_p50_ms', c.p50, 'ms', { baseline_ratio: 1 })
      row('call_p99_ms', c.p99, 'ms', { baseline_ratio: ratio(c.p99, call) })
      row('keyspace_request_p50_ms_non_owner_cold', cold.p50, 'ms', { baseline_ratio: ratio(cold.p50, call) })
      for (const [target, consistency, label] of [['owned', 'agreed', 'owner'], ['other', 'agreed', 'non_owner'], ['owned', 'one', 'owner_one_replica'], ['other', 'one', 'non_owner_one_replica']] as const) {
        const cpu0 = await totalCpu(peers)
        const l = await peers[0]!.send('latency', { target, consistency, n: LATENCY_N, warmup: 100 }) as unknown as Latency
        const cpuPer = (await totalCpu(peers) - cpu0) / (l.n + 100)
        const goal = label === 'non_owner' || label === 'owner' ? { goal: '<= 3 x call_p50_ms' } : {}
        row(`keyspace_request_p50_ms_${label}`, l.p50, 'ms', { baseline_ratio: ratio(l.p50, call), ...goal })
        row(`keyspace_request_p99_ms_${label}`, l.p99, 'ms', { baseline_ratio: ratio(l.p99, call) })
        row(`keyspace_request_cpu_ms_per_request_${label}`, cpuPer, 'ms (all peers)')
        if (label === 'non_owner') row('keyspace_request_p50_over_call_p50', l.p50 / call, 'ratio', { goal: '<= 3' })
        if (label === 'owner') row('keyspace_request_p50_over_call_p50_owner', l.p50 / call, 'ratio', { goal: '<= 3' })
      }
      // The same routed requests paced (PACE_MS apart), so that the replication of one has
      // finished before the next is sent: what is left is the request's own path, and the
      // difference to the rows above is the contention of back-to-back replication for the
      // host's cores (docs/BENCHMARKS.md, "Keyspace").
      for (const [consistency, label] of [['agreed', 'non_owner_paced'], ['one', 'non_owner_one_replica_paced']] as const) {
        const l = await peers[0]!.send('latency', { target: 'other', consistency, n: PACED_N, warmup: 20, gapMs: PACE_MS }) as unknown as Latency
        row(`keyspace_request_p50_ms_${label}`, l.p50, 'ms', { baseline_ratio: ratio(l.p50, call) })
        row(`keyspace_request_p99_ms_${label}`, l.p99, 'ms', { baseline_ratio: ratio(l.p99, call) })
      }
      // The rate in steady state: the pipelined write path is code the sequential rows above
      // hardly ran, and over a full run's 20,000 writes per peer a cold start costs about
      // 1.2x the CPU per write (docs/BENCHMARKS.md, "Keyspace").
      await warmUp(peers, WARMUP_WRITES_PER_PEER)
      writesCpuWithoutStorage = (await writesRows(peers, '5_peers_r3', WRITES_PER_PEER)).cpuMsPerWrite
    } finally {
      await stopAll(peers)
    }
  })

  // Requests one at a time, PACE_MS apart, against the host's own price of a wake-up: what one
  // request costs in messages, merges and CPU when every message wakes a sleeping process
  // (docs/BENCHMARKS.md, "Sequential requests on this host"). Not run unless named.
  await run('paced', async () => {
    const peers = await cluster(5, { replication: 3, storage: 'none' }, 'paced')
    try {
      const idleMs = 3000
      const cpuIdle0 = await totalCpu(peers)
      const idleStart = Date.now()
      await new Promise(resolve => setTimeout(resolve, idleMs))
      const idlePerMs = (await totalCpu(peers) - cpuIdle0) / (Date.now() - idleStart)
      row('keyspace_idle_cpu_ms_per_s_5_peers', idlePerMs * 1000, 'ms of CPU per s (all peers)')
      const { port } = await peers[1]!.send('echoServer') as unknown as { port: number }
      const pair = async (): Promise<number> => (await Promise.all([0, 1].map(async i => Number((await peers[i]!.send('stats')).cpuMs)))).reduce((a, b) => a + b, 0)
      let tcpPaced = NaN
      for (const [gapMs, label] of [[0, 'back_to_back'], [PACE_MS, 'paced']] as const) {
        const n = gapMs === 0 ? 2000 : PACED_N * 2
        const cpu0 = await pair()
        const started = Date.now()
        const l = await peers[0]!.send('tcpLatency', { port, n, gapMs }) as unknown as Latency
        const cpu = await pair() - cpu0 - 2 / 5 * idlePerMs * (Date.now() - started)
        row(`host_tcp_rtt_p50_ms_${label}`, l.p50, 'ms', label === 'paced' ? { baseline_ratio: 1 } : {})
        row(`host_tcp_cpu_ms_per_round_trip_${label}`, cpu / l.n, 'ms (both processes, idle subtracted)')
        if (label === 'paced') tcpPaced = l.p50
      }
      for (const [target, consistency] of [['owned', 'agreed'], ['owned', 'one'], ['other', 'agreed'], ['other', 'one']] as const) {
        const label = `${target === 'owned' ? 'owner' : 'non_owner'}_${consistency === 'one' ? 'one_replica' : 'agreed'}_paced`
        const before = await Promise.all(peers.map(async p => await p.send('stats')))
        const started = Date.now()
        const l = await peers[0]!.send('latency', { target, consistency, n: PACED_N, warmup: 20, gapMs: PACE_MS }) as unknown as Latency
        const wall = Date.now() - started
        const after = await Promise.all(peers.map(async p => await p.send('stats')))
        const delta = (k: string): number => after.reduce((s, r) => s + Number(r[k]), 0) - before.reduce((s, r) => s + Number(r[k]), 0)
        const requests = l.n + 20
        row(`keyspace_request_p50_ms_${label}`, l.p50, 'ms', { baseline_ratio: ratio(l.p50, tcpPaced) })
        row(`keyspace_messages_per_request_${label}`, delta('messagesOut') / requests, 'messages (all peers)')
        row(`keyspace_group_merges_per_request_${label}`, delta('diffMerges') / requests, 'group diffs merged (all peers)')
        row(`keyspace_bytes_per_request_${label}`, delta('bytesOut') / requests, 'bytes sent (all peers)')
        row(`keyspace_cpu_ms_per_request_${label}`, (delta('cpuMs') - idlePerMs * wall) / requests, 'ms (all peers, idle subtracted)')
      }
    } finally {
      await stopAll(peers)
    }
  }, false)

  // Writes alone, without the latency rows before them: for profiles (LEGION_BENCH_CPU_PROF)
  // and quick checks of the write rate (LEGION_BENCH_ONLY=writes).
  await run('writes', async () => {
    const peers = await cluster(WRITES_PEERS, { replication: WRITES_REPLICATION, storage: 'none' }, 'writes')
    try {
      await warmUp(peers, WARMUP_WRITES_PER_PEER)
      const alone = await writesRows(peers, `${WRITES_PEERS}_peers_r${WRITES_REPLICATION}_alone`, WRITES_PER_PEER)
      if (WRITES_PEERS === 5 && WRITES_REPLICATION === 3) writesCpuWithoutStorage ??= alone.cpuMsPerWrite
    } finally {
      await stopAll(peers)
    }
  }, false)

  // The same writes with storage, warmed up as the writes without (a cold cluster's first
  // thousands of writes cost about twice as much CPU each, storage or not), so that the ratio
  // to them is what storage costs.
  for (const storage of ['memory', 'lmdb'] as const) {
    await run(storage, async () => {
      const peers = await cluster(5, { replication: 3, storage }, storage)
      try {
        await warmUp(peers, WARMUP_WRITES_PER_PEER)
        const suffix = `5_peers_r3_${storage}`
        const { cpuMsPerWrite } = await writesRows(peers, suffix, Math.round(WRITES_PER_PEER / 4))
        if (writesCpuWithoutStorage !== undefined) row(`keyspace_write_cpu_over_no_storage_${suffix}`, cpuMsPerWrite / writesCpuWithoutStorage, 'ratio')
      } finally {
        await stopAll(peers)
      }
    })
  }

  await run('rebalance', async () => {
    const peers = await cluster(5, { replication: 3, storage: 'none' }, 'reb')
    try {
      const perPeer = STORED_KEYS / 5
      await Promise.all(peers.map(async (p, i) => await p.send('writes', { prefix: `s${i}`, count: perPeer, concurrency: 64, valueBytes: VALUE_BYTES, timeoutMs: 600_000 })))
      const cpu0 = await totalCpu(peers)
      const scroll = await peers[0]!.send('search', { pageSize: 512, timeoutMs: 300_000 })
      const cpuScroll = await totalCpu(peers) - cpu0
      row('keyspace_search_records_per_s_5_peers', Number(scroll.records) / (Number(scroll.ms) / 1000), 'records/s')
      row('keyspace_search_records', Number(scroll.records), 'records')
      row('keyspace_search_cpu_us_per_record', cpuScroll * 1000 / Number(scroll.records), 'µs (all peers)')
      // A 6th peer joins under write load.
      await peers[1]!.send('loadStart', { prefix: 'load', concurrency: 8 })
      await peers[2]!.send('loadStart', { prefix: 'load2', concurrency: 8 })
      const sixth = new Peer('reb-F')
      const joinedAt = Date.now()
      const r = await sixth.send('start', { cluster: `bench-keyspace-reb-${process.pid}`, partitions: PARTITIONS, replication: 3, storage: 'none', root: DATA_ROOT, join: peers[0]!.address })
      sixth.self = r.self as string
      peers.push(sixth)
      const before = await sixth.send('stats')
      await Promise.all(peers.map(async p => await p.send('settled', { members: 6, timeoutMs: 300_000 })))
      const moveMs = Date.now() - joinedAt
      const after = await sixth.send('stats')
      const loads = await Promise.all([peers[1]!.send('loadStop', { timeoutMs: 300_000 }), peers[2]!.send('loadStop', { timeoutMs: 300_000 })])
      const keys = Number((after.keyspace as { keys: number }).keys)
      const perKey = encodeWith(jsonCodec, { tags: ['s0'], value: 'x'.repeat(VALUE_BYTES) }).length + 'sN:NNNNN'.length + 1
      const received = Number(after.bytesIn) - Number(before.bytesIn)
      row('keyspace_rebalance_ms_6th_peer', moveMs, 'ms', {})
      row('keyspace_rebalance_keys_moved_to_6th_peer', keys, 'keys')
      row('keyspace_rebalance_bytes_over_state_bytes', received / (keys * perKey), 'ratio', { goal: '<= 1.5' })
      row('keyspace_rebalance_lost_requests', loads.reduce((s, l) => s + Number(l.lost), 0), 'requests', { goal: '0' })
      row('keyspace_rebalance_failed_requests', loads.reduce((s, l) => s + Object.values(l.failed as Record<string, number>).reduce((a, b) => a + b, 0), 0), 'requests')
      row('keyspace_rebalance_acknowledged_requests', loads.reduce((s, l) => s + Number(l.acked), 0), 'requests')
      row('keyspace_rebalance_full_syncs_pulled_by_6th_peer', Number(after.syncsRequested) - Number(before.syncsRequested), 'syncs')
      row('keyspace_rebalance_full_merges_on_6th_peer', Number(after.fullMerges) - Number(before.fullMerges), 'merges')
    } finally {
      await stopAll(peers)
    }
  })

  await run('bytes', async () => {
    const [heap] = await cluster(1, { replication: 1, storage: 'none' }, 'heap')
    try {
      const empty = await heap!.send('memory')
      const w = await heap!.send('writes', { prefix: 'b', count: HEAP_KEYS, concurrency: 256, valueBytes: VALUE_BYTES, timeoutMs: 1_200_000 })
      const full = await heap!.send('memory')
      const n = Number(w.acked)
      row('keyspace_heap_keys', n, 'keys')
      row('keyspace_heap_bytes_per_key', (Number(full.heapUsed) - Number(empty.heapUsed)) / n, 'bytes')
      row('keyspace_fill_writes_per_s_1_peer', n / (Number(w.ms) / 1000), 'writes/s')
    } finally {
      await heap!.stop()
    }
    const [disk] = await cluster(1, { replication: 1, storage: 'lmdb' }, 'disk')
    try {
      const w = await disk!.send('writes', { prefix: 'b', count: DISK_KEYS, concurrency: 256, valueBytes: VALUE_BYTES, timeoutMs: 1_200_000 })
      const bytes = await disk!.send('diskAfterStop')
      const n = Number(w.acked)
      row('keyspace_disk_keys', n, 'keys')
      row('keyspace_disk_bytes_per_key', Number(bytes.disk) / n, 'bytes')
      row('keyspace_fill_writes_per_s_1_peer_lmdb', n / (Number(w.ms) / 1000), 'writes/s')
      row('keyspace_fill_storage_bytes_written_per_request_1_peer_lmdb', Number(w.storedBytes) / n, 'bytes')
      row('keyspace_payload_bytes_per_key', VALUE_BYTES + 'b:NNNNNN'.length, 'bytes (key + value)')
    } finally {
      await disk!.stop()
    }
  })

  row('host_load_average_1m_at_end', loadavg()[0]!, 'runnable tasks')
  console.table(rows.map(r => ({ metric: r.metric, value: r.value, unit: r.unit, 'x call': r.baseline_ratio ?? '', goal: r.goal ?? '' })))
  for (const n of notes) console.log(`note: ${n}`)
  if (ONLY !== undefined || QUICK) {
    console.log('partial or quick run: bench/results/keyspace.json left as it was')
  } else {
    await mkdir(new URL('./results/', import.meta.url), { recursive: true })
    await writeFile(new URL('./results/keyspace.json', import.meta.url), JSON.stringify(rows, null, 2) + '\n')
    console.log('wrote bench/results/keyspace.json')
  }
  if (notes.some(n => n.includes('failed'))) process.exitCode = 1
}

await main()
