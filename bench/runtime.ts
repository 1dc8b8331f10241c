/**
 * Runtime benchmark: Legion peers as separate OS processes on TCP loopback (127.0.0.1, port 0),
 * driven by this parent over stdin/stdout JSON lines (bench/runtime-peer.ts). Every latency is
 * set against the baseline measured in the same run between the same processes: a plain
 * transport request on a reused stream (`createTransportNode` request/handle, echo handler, a
 * second libp2p node in each peer process), `raw_rtt_ms`.
 *
 * Scenarios (a fresh cluster each; a tiny counter spec with the JSON codec; NODE_ENV=production
 * in the peers unless set, so states are not deep-frozen):
 * - 3 peers, no storage: raw RTT, sequential applyConsistent latency, a broadcall to the other
 *   peers (the same messages without a fold), throughput;
 * - 3 peers, memoryStorage, then lmdbStorage in a temp dir: latency and throughput;
 * - 5 peers, no storage: raw RTT, applyConsistent latency, broadcall and call latency;
 * - 3 peers with the admin endpoint: what a Prometheus scrape of `/metrics` costs a peer (CPU
 *   per scrape, answer time idle and under load), and throughput and sequential latency with
 *   and without every peer scraped once a second, alternated in the same run (A, B, A, B).
 * Beside wall-clock figures it reports the CPU time all peer processes spent per event.
 * Sequential latency is measured twice: on a fresh cluster (events 200 to 700, `..._cold`:
 * V8 has not yet optimised Legion's path, and an event costs two to three times what it costs
 * later) and, for the goal rows, after SEQUENTIAL_WARMUP more, as the raw round trip it is set
 * against is measured warm.
 *
 * - groups: 3 peers with 0, then 1,000 cluster-wide groups of a service: heap and bytes sent per
 *   second while idle, per idle group; applyConsistent latency and CPU per event in a group
 *   against the cluster's own group, same cluster.
 *
 * Run: npm run bench:runtime [-- --quick]        (about 3 minutes; --quick: smaller counts)
 * Env: LEGION_BENCH_BASELINE=<dir>    also run the 3- and 5-peer scenarios with the peers of another
 *      checkout (e.g. the commit before a change, with its own node_modules), in the same run,
 *      and report each figure as a ratio to it (rows ending in `_baseline`, `_over_baseline`);
 *      LEGION_BENCH_UNSIGNED=1        the same, with this build's peers neither signing nor checking events
 *      as the baseline (what signatures cost; a benchmark-only mode);
 *      LEGION_BENCH_CPU_PROF=<dir>   profile every peer (--cpu-prof, one folder per peer);
 *      LEGION_BENCH_NODE_FLAGS='--max-semi-space-size=64'   more flags for every peer process;
 *      LEGION_BENCH_ONLY=3p-none,... run only these scenarios (3p-none, 3p-memory, 3p-lmdb, 5p-none, 3p-admin, groups);
 *      LEGION_BENCH_PROPAGATION='{"forwardOutputs":false}'   override the peers' propagation options;
 *      LEGION_BENCH_FAILURE_DETECTION='{"suspectAfterMs":60000}'   override their failure detection
 *      (on a loaded machine, so that starved peers do not eject each other mid-measurement);
 *      LEGION_BENCH_DEBUG=1           print per-peer CPU and counters.
 * Prints the machine and a table; a full default run writes bench/results/runtime.json as rows
 * { metric, value, unit, baseline_ratio?, goal? } (baseline_ratio: the figure over raw_rtt_ms).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CommandProcess, killChildren, type Reply } from './command-process.js'

const QUICK = process.argv.includes('--quick')
/** Events before the `_cold` latency rows of a fresh cluster. */
const COLD_WARMUP = QUICK ? 50 : 200
const LATENCY_COUNT = QUICK ? 100 : 500
/**
 * Sequential events run before the latency rows the goals are read from. A fresh cluster's
 * events cost two to three times what they cost once V8 has optimised Legion's path, and that
 * takes about 3,000 sequential events at 3 and at 5 peers (docs/BENCHMARKS.md, "Latency
 * measured warm"); the raw round trip is warm after its own 1,000.
 */
const SEQUENTIAL_WARMUP = 4000
const RAW_COUNT = QUICK ? 500 : 2000
const THROUGHPUT_WAVE = 2000
const THROUGHPUT_PER_PEER = QUICK ? 4000 : 20_000
const THROUGHPUT_WARMUP_PER_PEER = QUICK ? 2000 : 4000
/** The whole run gives up after this. */
const OVERALL_DEADLINE = Date.now() + (QUICK ? 4 : 15) * 60_000
/** One measuring command gives up after this (the worker stops its loops first). */
const COMMAND_MS = 120_000
const CPU_PROF_DIR = process.env.LEGION_BENCH_CPU_PROF
/** More V8 or Node flags for every peer process, space-separated (e.g. `--max-semi-space-size=64`). */
const NODE_FLAGS = process.env.LEGION_BENCH_NODE_FLAGS?.split(' ').filter(f => f !== '') ?? []
/** Comma-separated scenario labels to run (e.g. `3p-none,5p-none`); all when unset. */
const ONLY = process.env.LEGION_BENCH_ONLY?.split(',')
/**
 * Failure detection options given to every peer, as JSON (e.g. `{"suspectAfterMs":60000}`, so
 * that on a loaded machine a starved peer is not ejected mid-measurement); defaults when unset.
 */
const FAILURE_DETECTION = process.env.LEGION_BENCH_FAILURE_DETECTION !== undefined ? JSON.parse(process.env.LEGION_BENCH_FAILURE_DETECTION) as Record<string, unknown> : undefined
/** Propagation options given to every peer, as JSON (e.g. `{"forwardOutputs":false}`); defaults when unset. */
const PROPAGATION = process.env.LEGION_BENCH_PROPAGATION !== undefined ? JSON.parse(process.env.LEGION_BENCH_PROPAGATION) as Record<string, unknown> : undefined

type StorageKind = 'none' | 'memory' | 'lmdb'
interface Row { metric: string, value: number, unit: string, baseline_ratio?: number, baseline?: string, goal?: string }
interface Latency { n: number, p50: number, p99: number, mean: number, max: number }

/** Where lmdbStorage peers keep their data; removed on every exit path. */
const DATA_ROOT = mkdtempSync(join(tmpdir(), 'legion-bench-'))
process.on('exit', () => { killChildren(); rmSync(DATA_ROOT, { recursive: true, force: true }) })
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => { process.exit(130) })
}

function remaining (): number {
  return OVERALL_DEADLINE - Date.now()
}

/** Another checkout whose peers run the same scenarios in this run, for side-by-side ratios. */
const BASELINE = process.env.LEGION_BENCH_BASELINE
/** Benchmark-only: the baseline is this build with events neither signed nor checked (what signatures cost). */
const UNSIGNED = process.env.LEGION_BENCH_UNSIGNED === '1'
const SCRIPT = fileURLToPath(new URL('./runtime-peer.ts', import.meta.url))

/** One peer process and its command/reply line protocol. */
class Peer {
  readonly #process: CommandProcess

  constructor (readonly name: string, script = SCRIPT) {
    this.#process = new CommandProcess(name, script, ['--expose-gc', ...NODE_FLAGS], CPU_PROF_DIR)
  }

  /** Sends a command; the worker gets `timeoutMs` for its own loops, the parent waits a little longer. */
  async send (cmd: string, args: Record<string, unknown> = {}, timeoutMs = COMMAND_MS): Promise<Reply> {
    const budget = Math.max(1000, Math.min(timeoutMs, remaining()))
    return await this.#process.send(cmd, { timeoutMs: budget, ...args }, budget + 10_000)
  }

  /** Asks the worker to stop; kills it if it does not exit in time. */
  async stop (): Promise<void> {
    await this.#process.exitWith('stop', 10_000, 15_000)
  }
}

/** Starts `n` peer processes: the first founds the cluster, the others join through it one by one. */
async function startCluster (peers: Peer[], storage: StorageKind, label: string, extra: Record<string, unknown> = {}): Promise<Reply[]> {
  const cluster = `bench-${label}`
  const common = { cluster, storage, dataRoot: DATA_ROOT, ...extra, ...(PROPAGATION !== undefined ? { propagation: PROPAGATION } : {}), ...(FAILURE_DETECTION !== undefined ? { failureDetection: FAILURE_DETECTION } : {}) }
  const first = await peers[0]!.send('start', { ...common, startup: { mode: 'new' } }, 60_000)
  const starts = [first]
  for (const p of peers.slice(1)) starts.push(await p.send('start', { ...common, startup: { mode: 'join', peers: first.addrs } }, 60_000))
  await Promise.all(peers.map(async p => await p.send('waitParticipants', { n: peers.length }, 30_000)))
  return starts
}

async function stopAll (peers: Peer[]): Promise<void> {
  await Promise.all(peers.map(async p => { await p.stop() }))
}

/** Connects peer `a`'s raw transport node to `b`'s and measures the echo RTT from `a`. */
async function rawRtt (peers: Peer[], bStart: Reply): Promise<Latency & { cpuMsPerRequest: number }> {
  const a = peers[0]!
  const target = (await a.send('dialRaw', { addr: (bStart.rawAddrs as string[])[0] })).peer as string
  await a.send('latency', { op: 'raw', target, warmup: 1000, count: 0 })
  const { result, cpuMs } = await withCpu(peers, async () => await a.send('latency', { op: 'raw', target, warmup: 0, count: RAW_COUNT }) as unknown as Latency)
  return { ...result, cpuMsPerRequest: cpuMs / result.n }
}

/** CPU time (user + system) all peer processes have used so far, in milliseconds. */
async function cpuMs (peers: Peer[]): Promise<number> {
  const replies = await Promise.all(peers.map(async p => await p.send('cpu', {}, 10_000)))
  if (process.env.LEGION_BENCH_DEBUG !== undefined) console.error('    cpu user/system per peer:', replies.map(r => `${Number(r.userMs).toFixed(0)}/${Number(r.systemMs).toFixed(0)}`).join(' '))
  return replies.reduce((s, r) => s + Number(r.cpuMs), 0)
}

/** Runs `phase` and returns its result with the CPU time every peer process spent meanwhile. */
async function withCpu<T> (peers: Peer[], phase: () => Promise<T>): Promise<{ result: T, cpuMs: number }> {
  const before = await cpuMs(peers)
  const result = await phase()
  return { result, cpuMs: await cpuMs(peers) - before }
}

/**
 * Every peer runs `perPeer` applyConsistent calls in waves of `wave` concurrent ones, all peers
 * at once; completions per second over the wall time of the slowest.
 */
async function throughput (peers: Peer[], perPeer: number): Promise<{ perSecond: number, completed: number, failed: number, cpuMs: number, firstError?: string }> {
  const { result: { seconds, results }, cpuMs } = await withCpu(peers, async () => {
    const start = performance.now()
    const results = await Promise.all(peers.map(async p => await p.send('throughput', { total: perPeer, wave: THROUGHPUT_WAVE, opTimeoutMs: 60_000 })))
    return { seconds: (performance.now() - start) / 1000, results }
  })
  const completed = results.reduce((s, r) => s + Number(r.completed), 0)
  const failed = results.reduce((s, r) => s + Number(r.failed), 0)
  const firstError = results.find(r => r.firstError !== undefined)?.firstError as string | undefined
  return { perSecond: completed / seconds, completed, failed, cpuMs, ...(firstError !== undefined ? { firstError } : {}) }
}

/**
 * Sequential applyConsistent latency from peer 0 (in the cluster's group, or `group`) after
 * `warmup` unmeasured ones, with the CPU all peers spent per measured event.
 */
async function consistentLatency (peers: Peer[], warmup: number, group?: number): Promise<Latency & { cpuMsPerEvent: number }> {
  const op = group === undefined ? { op: 'consistent' } : { op: 'groupConsistent', group }
  await peers[0]!.send('latency', { ...op, warmup, count: 0 })
  const measured = await withCpu(peers, async () =>
    await peers[0]!.send('latency', { ...op, warmup: 0, count: LATENCY_COUNT }) as unknown as Latency)
  if (measured.result.n < LATENCY_COUNT) notes.push(`applyConsistent latency: only ${measured.result.n} of ${LATENCY_COUNT} samples before the deadline`)
  return { ...measured.result, cpuMsPerEvent: measured.cpuMs / measured.result.n }
}

/**
 * The sequential latency rows of an `n`-peer cluster set against the raw round trip of the same
 * processes: first on the fresh cluster (`_cold`), then, after SEQUENTIAL_WARMUP more events,
 * the rows the goal is read from, with the raw round trip measured between the two.
 */
async function sequentialRows (peers: Peer[], second: Reply, n: number, sx: string): Promise<number> {
  const cold = await consistentLatency(peers, COLD_WARMUP)
  row(`apply_consistent_p50_ms_${n}_peers_cold${sx}`, cold.p50, 'ms')
  row(`apply_consistent_sequential_cpu_ms_per_event_${n}_peers_cold${sx}`, cold.cpuMsPerEvent, 'ms (all peers)')
  await peers[0]!.send('latency', { op: 'consistent', warmup: SEQUENTIAL_WARMUP, count: 0 })
  const raw = await rawRtt(peers, second)
  const rtt = raw.p50
  // The 3-peer round-trip rows keep their names of before the 5-peer ones existed.
  const at = n === 3 ? '' : `_${n}_peers`
  row(`raw_rtt_ms${at}${sx}`, raw.p50, 'ms', { baseline_ratio: 1 })
  row(`raw_rtt_p99_ms${at}${sx}`, raw.p99, 'ms', { baseline_ratio: ratio(raw.p99, rtt) })
  row(`raw_rtt_cpu_ms_per_request_${n}_peers${sx}`, raw.cpuMsPerRequest, 'ms (all peers)')
  row(`apply_consistent_p50_over_rtt_${n}_peers_cold${sx}`, cold.p50 / rtt, 'ratio')
  const lat = await consistentLatency(peers, 0)
  const goal = n === 3 ? 3 : 4 // issue 16: at most 3x the round trip at 3 peers, 4x at 5
  row(`apply_consistent_p50_ms_${n}_peers${sx}`, lat.p50, 'ms', { baseline_ratio: ratio(lat.p50, rtt), goal: `<= ${goal} x raw_rtt_ms` })
  row(`apply_consistent_p99_ms_${n}_peers${sx}`, lat.p99, 'ms', { baseline_ratio: ratio(lat.p99, rtt) })
  row(`apply_consistent_p50_over_rtt_${n}_peers${sx}`, lat.p50 / rtt, 'ratio', { goal: `<= ${goal}` })
  row(`apply_consistent_sequential_cpu_ms_per_event_${n}_peers${sx}`, lat.cpuMsPerEvent, 'ms (all peers)')
  // The same messages without a fold: a broadcall sends what an event travelling alone sends
  // (one frame from the caller to every other peer, one back from each), so its p50 is the
  // floor that the transport and this host set for applyConsistent.
  const bc = await peers[0]!.send('latency', { op: 'broadcall', warmup: 1000, count: LATENCY_COUNT }) as unknown as Latency
  row(`broadcall_p50_ms_${n}_peers${sx}`, bc.p50, 'ms', { baseline_ratio: ratio(bc.p50, rtt) })
  row(`broadcall_p99_ms_${n}_peers${sx}`, bc.p99, 'ms', { baseline_ratio: ratio(bc.p99, rtt) })
  row(`apply_consistent_p50_over_broadcall_${n}_peers${sx}`, lat.p50 / bc.p50, 'ratio')
  return rtt
}

/**
 * A Prometheus stand-in: GETs `/metrics` of every peer once every `intervalMs` (all peers at
 * once, as one Prometheus scraping each target), and records how long each answer took.
 */
class Scraper {
  readonly durations: number[] = []
  bytes = 0
  failures = 0
  #timer: NodeJS.Timeout | undefined
  #inFlight: Array<Promise<void>> = []

  constructor (private readonly urls: readonly string[], private readonly intervalMs: number) {}

  start (): void {
    const tick = (): void => { for (const url of this.urls) this.#inFlight.push(this.scrape(url)) }
    tick()
    this.#timer = setInterval(tick, this.intervalMs)
  }

  async scrape (url: string): Promise<void> {
    const began = performance.now()
    try {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })
      const text = await res.text()
      if (res.status !== 200) throw new Error(`status ${res.status}`)
      this.durations.push(performance.now() - began)
      this.bytes = text.length
    } catch {
      this.failures++
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    await Promise.all(this.#inFlight)
  }
}

function percentile (sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

/**
 * What scraping costs: the CPU a peer spends per scrape (many scrapes back to back on an idle
 * peer), the answer time idle and under full load, and throughput and sequential
 * applyConsistent latency without and with every peer scraped once a second, alternated.
 */
async function scrapeCost (peers: Peer[], urls: string[]): Promise<void> {
  const count = QUICK ? 100 : 300
  const one = new Scraper([urls[0]!], 1000)
  for (let i = 0; i < 20; i++) await one.scrape(urls[0]!) // warm-up
  one.durations.length = 0
  const before = Number((await peers[0]!.send('cpu', {}, 10_000)).cpuMs)
  for (let i = 0; i < count; i++) await one.scrape(urls[0]!)
  const cpu = Number((await peers[0]!.send('cpu', {}, 10_000)).cpuMs) - before
  const idle = [...one.durations].sort((x, y) => x - y)
  row('metrics_scrape_cpu_us_per_scrape', cpu * 1000 / count, 'us (the scraped peer)')
  row('metrics_scrape_ms_p50_idle', percentile(idle, 0.5), 'ms')
  row('metrics_scrape_bytes', one.bytes, 'bytes')

  const runs: Record<'without' | 'with', Array<{ perSecond: number, cpuUsPerEvent: number, p50: number }>> = { without: [], with: [] }
  const loaded: number[] = []
  let failures = 0
  await throughput(peers, THROUGHPUT_WARMUP_PER_PEER)
  await peers[0]!.send('latency', { op: 'consistent', warmup: SEQUENTIAL_WARMUP, count: 0 })
  for (const mode of ['without', 'with', 'without', 'with'] as const) {
    const scraper = mode === 'with' ? new Scraper(urls, 1000) : undefined
    scraper?.start()
    const t = await throughput(peers, THROUGHPUT_PER_PEER)
    const lat = await consistentLatency(peers, COLD_WARMUP)
    await scraper?.stop()
    if (scraper !== undefined) { loaded.push(...scraper.durations); failures += scraper.failures }
    if (t.failed > 0) notes.push(`scrape cost (${mode}): ${t.failed} applyConsistent failed (${t.firstError})`)
    runs[mode].push({ perSecond: t.perSecond, cpuUsPerEvent: t.cpuMs * 1000 / t.completed, p50: lat.p50 })
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length
  for (const mode of ['without', 'with'] as const) {
    row(`apply_consistent_throughput_per_s_3_peers_${mode}_scrape`, mean(runs[mode].map(r => r.perSecond)), 'events/s')
    row(`apply_consistent_throughput_cpu_us_per_event_3_peers_${mode}_scrape`, mean(runs[mode].map(r => r.cpuUsPerEvent)), 'us (all peers)')
    row(`apply_consistent_p50_ms_3_peers_${mode}_scrape`, mean(runs[mode].map(r => r.p50)), 'ms')
  }
  const busy = loaded.sort((x, y) => x - y)
  row('metrics_scrapes_under_load', busy.length, 'scrapes')
  row('metrics_scrape_ms_p50_under_load', percentile(busy, 0.5), 'ms')
  row('metrics_scrape_ms_p99_under_load', percentile(busy, 0.99), 'ms')
  if (failures > 0) notes.push(`scrape cost: ${failures} scrapes failed`)
}

const rows: Row[] = []
const notes: string[] = []
function row (metric: string, value: number, unit: string, extra: Omit<Row, 'metric' | 'value' | 'unit'> = {}): void {
  rows.push({ metric, value: Number(value.toPrecision(6)), unit, ...(extra.baseline_ratio !== undefined ? { baseline: 'raw_rtt_ms' } : {}), ...extra })
  console.error(`  ${metric} = ${value.toFixed(3)} ${unit}`)
}
function ratio (x: number, base: number): number {
  return Number((x / base).toPrecision(4))
}

/**
 * Throughput rows: completions/s, and the CPU all peers spent per event, which the load of
 * other work on the host does not move much; `cores / cpu per event` is the ceiling this
 * machine could reach with the peers alone on it.
 */
async function throughputRows (peers: Peer[], suffix: string): Promise<void> {
  await throughput(peers, THROUGHPUT_WARMUP_PER_PEER)
  const t = await throughput(peers, THROUGHPUT_PER_PEER)
  if (t.failed > 0) notes.push(`${suffix}: ${t.failed} applyConsistent failed (${t.firstError})`)
  const cpuUsPerEvent = t.cpuMs * 1000 / t.completed
  if (process.env.LEGION_BENCH_DEBUG !== undefined) {
    for (const p of peers) {
      const c = (await p.send('stats', {}, 10_000)).counters as Record<string, number>
      console.error(`    ${p.name}: ${JSON.stringify(c)}`)
    }
  }
  row(`apply_consistent_throughput_per_s_${suffix}`, t.perSecond, 'events/s', { goal: '>= 20000' })
  row(`apply_consistent_throughput_cpu_us_per_event_${suffix}`, cpuUsPerEvent, 'us (all peers)')
  row(`apply_consistent_throughput_cpu_ceiling_per_s_${suffix}`, cpus().length * 1e6 / cpuUsPerEvent, 'events/s')
}

/**
 * Runs one scenario on a fresh cluster, always stopping its processes; with `baseline`, the
 * peers are the baseline checkout's.
 */
async function scenario (n: number, storage: StorageKind, body: (peers: Peer[], starts: Reply[]) => Promise<void>, options: { baseline?: string, label?: string, start?: Record<string, unknown> } = {}): Promise<void> {
  const label = options.label ?? `${n}p-${storage}`
  if (ONLY !== undefined && !ONLY.includes(label)) return
  if (remaining() < 30_000) { notes.push(`skipped ${label}: overall deadline`); return }
  console.error(`scenario: ${label}${options.baseline !== undefined ? ' (baseline peers)' : ''}`)
  const script = options.baseline !== undefined ? join(options.baseline, 'bench', 'runtime-peer.ts') : SCRIPT
  const peers = Array.from({ length: n }, (_, i) => new Peer(`${label}-peer${i}`, script))
  try {
    await body(peers, await startCluster(peers, storage, label, options.start))
  } catch (err) {
    notes.push(`${n} peers / ${storage} failed: ${err instanceof Error ? err.message : String(err)}`)
    console.error(`  failed: ${String(err)}`)
  } finally {
    await stopAll(peers)
  }
}

async function main (): Promise<void> {
  const cpu = cpus()
  const machine = { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, node: process.version, memGiB: Math.round(totalmem() / 2 ** 30) }
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, node ${machine.node}${QUICK ? ' (quick run)' : ''}`)
  // Other work on the host moves every figure here: record how busy it was.
  row('host_load_average_1m_at_start', loadavg()[0]!, 'runnable tasks')

  // The 3- and 5-peer scenarios, with this checkout's peers and, given LEGION_BENCH_BASELINE,
  // with the baseline's (baseline first, then current, so neither always runs on a warmer host).
  const trees: Array<{ suffix: string, baseline?: string, start?: Record<string, unknown> }> = BASELINE !== undefined
    ? [{ suffix: '_baseline', baseline: BASELINE }, { suffix: '' }]
    : UNSIGNED ? [{ suffix: '_baseline', start: { unsigned: true } }, { suffix: '' }] : [{ suffix: '' }]
  let rtt3 = NaN
  for (const tree of trees) {
    const sx = tree.suffix
    await scenario(3, 'none', async (peers, starts) => {
      rtt3 = await sequentialRows(peers, starts[1]!, 3, sx)
      await throughputRows(peers, `3_peers${sx}`)
    }, tree)
  }

  if (BASELINE === undefined) {
    for (const storage of ['memory', 'lmdb'] as const) {
      await scenario(3, storage, async (peers) => {
        const lat = await consistentLatency(peers, SEQUENTIAL_WARMUP)
        row(`apply_consistent_p50_ms_3_peers_${storage}_storage`, lat.p50, 'ms', { baseline_ratio: ratio(lat.p50, rtt3) })
        row(`apply_consistent_p99_ms_3_peers_${storage}_storage`, lat.p99, 'ms', { baseline_ratio: ratio(lat.p99, rtt3) })
        await throughputRows(peers, `3_peers_${storage}_storage`)
      })
    }
  }

  for (const tree of trees) {
    const sx = tree.suffix
    await scenario(5, 'none', async (peers, starts) => {
      const rtt5 = await sequentialRows(peers, starts[1]!, 5, sx)
      const target = starts[1]!.self as string
      const call = await peers[0]!.send('latency', { op: 'call', target, warmup: 200, count: RAW_COUNT }) as unknown as Latency
      row(`call_p50_ms_5_peers${sx}`, call.p50, 'ms', { baseline_ratio: ratio(call.p50, rtt5) })
      row(`call_p99_ms_5_peers${sx}`, call.p99, 'ms', { baseline_ratio: ratio(call.p99, rtt5) })
    }, tree)
  }
  if (BASELINE !== undefined || UNSIGNED) compareToBaseline()

  await groupScenarios()

  await scenario(3, 'none', async (peers, starts) => { await scrapeCost(peers, starts.map(s => String(s.adminUrl))) }, { label: '3p-admin', start: { admin: true } })

  row('host_load_average_1m_at_end', loadavg()[0]!, 'runnable tasks')
  console.table(rows.map(r => ({ metric: r.metric, value: r.value, unit: r.unit, ratio: r.baseline_ratio ?? '', to: r.baseline ?? '', goal: r.goal ?? '' })))
  for (const n of notes) console.log(`note: ${n}`)
  if (ONLY !== undefined || PROPAGATION !== undefined || NODE_FLAGS.length > 0 || QUICK) {
    console.log('partial, quick or non-default run: bench/results/runtime.json left as it was')
  } else {
    await mkdir(new URL('./results/', import.meta.url), { recursive: true })
    await writeFile(new URL('./results/runtime.json', import.meta.url), JSON.stringify(rows, null, 2) + '\n')
    console.log('wrote bench/results/runtime.json')
  }
  if (notes.some(n => n.includes('failed'))) process.exitCode = 1
}

/** For every row measured with both trees, the current figure over the baseline's. */
function compareToBaseline (): void {
  for (const r of [...rows]) {
    if (!r.metric.endsWith('_baseline')) continue
    const name = r.metric.slice(0, -'_baseline'.length)
    const current = rows.find(x => x.metric === name)
    if (current !== undefined) row(`${name}_over_baseline`, current.value / r.value, 'ratio', { baseline: `${r.metric} (same run)` })
  }
}

/** Heap (after a full GC) and bytes sent per second by each of `peers` while idle for `ms`. */
async function idle (peers: Peer[], ms: number): Promise<{ heapBytes: number, bytesPerSecond: number }> {
  const before = await Promise.all(peers.map(async p => Number(((await p.send('stats', {}, 10_000)).counters as Record<string, number>).bytesOut)))
  await new Promise(resolve => setTimeout(resolve, ms)) // the measuring window itself
  const after = await Promise.all(peers.map(async p => Number(((await p.send('stats', {}, 10_000)).counters as Record<string, number>).bytesOut)))
  const heaps = await Promise.all(peers.map(async p => Number((await p.send('memory', {}, 30_000)).heapUsed)))
  return {
    heapBytes: heaps.reduce((s, h) => s + h, 0) / peers.length,
    bytesPerSecond: after.reduce((s, x, i) => s + x - before[i]!, 0) / peers.length / (ms / 1000)
  }
}

/** 3 peers with 0, then 1,000 cluster-wide groups: idle cost per group, and a group with traffic. */
async function groupScenarios (): Promise<void> {
  const IDLE_MS = QUICK ? 5000 : 15_000
  const GROUPS = 1000
  let none: { heapBytes: number, bytesPerSecond: number } | undefined
  await scenario(3, 'none', async (peers) => {
    await new Promise(resolve => setTimeout(resolve, 2000)) // let the joins' last acknowledgements settle
    none = await idle(peers, IDLE_MS)
    row('idle_heap_bytes_per_peer_0_groups', none.heapBytes, 'bytes')
    row('idle_bytes_out_per_s_per_peer_0_groups', none.bytesPerSecond, 'bytes/s')
  }, { label: 'groups' })
  await scenario(3, 'none', async (peers) => {
    await new Promise(resolve => setTimeout(resolve, 2000))
    const many = await idle(peers, IDLE_MS)
    row(`idle_heap_bytes_per_peer_${GROUPS}_groups`, many.heapBytes, 'bytes')
    row(`idle_bytes_out_per_s_per_peer_${GROUPS}_groups`, many.bytesPerSecond, 'bytes/s', none !== undefined ? { baseline_ratio: ratio(many.bytesPerSecond, none.bytesPerSecond), baseline: 'idle_bytes_out_per_s_per_peer_0_groups' } : {})
    if (none !== undefined) {
      row('idle_heap_bytes_per_group', (many.heapBytes - none.heapBytes) / GROUPS, 'bytes')
      row('idle_bytes_out_per_s_per_group', (many.bytesPerSecond - none.bytesPerSecond) / GROUPS, 'bytes/s')
    }
    // Both warmed up: measured first, either group cost about 1.5x what it costs once warm.
    await consistentLatency(peers, SEQUENTIAL_WARMUP, 0)
    const cluster = await consistentLatency(peers, SEQUENTIAL_WARMUP / 4)
    const group = await consistentLatency(peers, SEQUENTIAL_WARMUP / 4, 0)
    row('apply_consistent_p50_ms_3_peers_in_a_group', group.p50, 'ms', { baseline_ratio: ratio(group.p50, cluster.p50), baseline: 'the cluster group, same cluster' })
    row('apply_consistent_sequential_cpu_ms_per_event_3_peers_in_a_group', group.cpuMsPerEvent, 'ms (all peers)', { baseline_ratio: ratio(group.cpuMsPerEvent, cluster.cpuMsPerEvent), baseline: 'the cluster group, same cluster' })
    row('apply_consistent_sequential_cpu_ms_per_event_3_peers_cluster_group_beside_1000', cluster.cpuMsPerEvent, 'ms (all peers)')
  }, { label: 'groups', start: { groups: GROUPS } })
}

const watchdog = setTimeout(() => {
  console.error('overall deadline passed: killing the peers')
  killChildren()
  process.exit(2)
}, remaining() + 30_000)
watchdog.unref()

main().catch(err => {
  console.error(err)
  killChildren()
  process.exitCode = 1
})
