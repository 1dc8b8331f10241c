/**
 * Convergence benchmark: Legion against om-legion-style propagation and Automerge.
 *
 * Systems (bench/convergence-node.ts), measured in the same run on the same transport:
 * - `legion`: Legion's default propagation (`push`; direct streams below `directFanout`
 *   participants, gossipsub at or above; anti-entropy every `intervalMs`);
 * - `om-legion`: Legion with `propagation: { mode: 'periodic', intervalMs }`, the same interval:
 *   every interval each peer sends its diff (or whole fold) to one random participant;
 * - `automerge`: an Automerge 3.5 document (a map of counters, one increment op per event, one
 *   change per peer and tick), synchronised with Automerge's sync protocol over one-way
 *   messages on the same libp2p transport; full mesh up to {@link AUTOMERGE_MESH_MAX} peers,
 *   beyond that a ring plus random links up to degree {@link AUTOMERGE_DEGREE}.
 * Legion peers run without failure detection (see `NodeConfig.failureDetection`) unless
 * LEGION_BENCH_FAILURE_DETECTION=1.
 *
 * Clusters: 3, 8, 16, 32, 64 peers in one host process on the memory transport, and 3, 8 peers
 * as one host process each on TCP loopback (bench/convergence-host.ts). This process only
 * orchestrates, so its deadlines hold however loaded the hosts are. Workloads, in this order on
 * one cluster per system and size (a fresh cluster after any run that did not converge):
 * - `burst`: K events from random peers, all created in one tick;
 * - `steady`: R events a second over the whole cluster, for D ms;
 * - `churn`: the steady stream while J peers leave (one at a time, gracefully) and J new ones
 *   join; Legion's state carries a partition table that every join and leave rebalances.
 *
 * Per run: convergence time (from the last event until every peer has the same settled value
 * with every event folded and the same projected value), p50/p99 of the time one event takes
 * to reach every (tracked) peer's projected value, bytes and messages sent per event (Legion's
 * `stats().counters.bytesOut/messagesOut`; Automerge: sync message bytes and count), CPU time
 * (summed over the host processes), peak heap per peer. Every figure is also given as a ratio
 * to each baseline measured in the same run.
 *
 * Run: npm run bench             (quick: about 3 minutes; intervalMs 500)
 *      npm run bench:full        (whole matrix: at most about 20 minutes; then draws the charts)
 * Env: LEGION_BENCH_INTERVAL_MS (default 1000; quick: 500), LEGION_BENCH_SIZES=3,8 (in-process sizes),
 *      LEGION_BENCH_PROCESS_SIZES=3 (empty: none), LEGION_BENCH_SYSTEMS=legion,automerge,
 *      LEGION_BENCH_WORKLOADS=burst, LEGION_BENCH_K=10000, LEGION_BENCH_DEADLINE_MS,
 *      LEGION_BENCH_HEAVY_WORKLOADS (workloads of Legion clusters of 64 in-process peers; default
 *      burst), LEGION_BENCH_FAILURE_DETECTION=1, LEGION_BENCH_OUT=<file>,
 *      LEGION_BENCH_CPU_PROF=<dir> (profile every host; written when it exits normally),
 *      LEGION_BENCH_DIRECT_FANOUT (Legion's `directFanout`; default its own, 64),
 *      LEGION_BENCH_ACKNOWLEDGE=creators (Legion's `propagation.acknowledge`; default its own, everyone),
 *      LEGION_BENCH_OVERALL_MINUTES (the whole run; default 45 full, 5 quick),
 *      LEGION_BENCH_HOST_HEAP_MB (each host's --max-old-space-size; default 4096),
 *      LEGION_BENCH_START_DEADLINE_MS (starting one cluster; default 120 s, 40 n² ms above 54 peers;
 *      also how long a host of more than 64 in-process peers may take to answer a command),
 *      LEGION_BENCH_CONNECTION_MONITOR=off (libp2p's per-connection pings off in every host; see
 *      bench/convergence-host.ts: without it, 128 in-process peers do not finish starting).
 * In-process clusters above 64 peers (128: `LEGION_BENCH_SIZES=128`) get start-up and
 * convergence deadlines that grow with n (see {@link startDeadlineMs}, {@link convergeDeadlineMs}).
 * Writes rows { metric, value, unit, cluster_size, workload, system, mode, converged,
 * ratio_vs_om_legion?, ratio_vs_automerge?, goal? } to bench/results/convergence.json (full) or
 * bench/results/convergence-quick.json (quick).
 */
import '../src/transport/polyfill.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  SYSTEMS, automergeBase, now,
  type NodeConfig, type NodeCounters, type NodeStatus, type SystemName
} from './convergence-node.js'
import type { StartupMode } from '../src/peer/options.js'
import { CommandProcess, killChildren, type Reply } from './command-process.js'

// -------------------------------------------------------------------------------------------
// Settings

const FULL = process.argv.includes('--full')
const env = process.env
function list (name: string, fallback: string[]): string[] {
  const v = env[name]
  return v === undefined ? fallback : v.split(',').map(s => s.trim()).filter(s => s !== '')
}

type Workload = 'burst' | 'steady' | 'churn'
type Mode = 'memory' | 'process'

/** Legion's anti-entropy interval and om-legion's send interval (the quick run halves the default to finish sooner). */
const INTERVAL_MS = Number(env.LEGION_BENCH_INTERVAL_MS ?? (FULL ? 1000 : 500))
const MEMORY_SIZES = list('LEGION_BENCH_SIZES', FULL ? ['3', '8', '16', '32', '64'] : ['3', '8', '16']).map(Number)
const PROCESS_SIZES = list('LEGION_BENCH_PROCESS_SIZES', FULL ? ['3', '8'] : ['3']).map(Number)
const RUN_SYSTEMS = list('LEGION_BENCH_SYSTEMS', [...SYSTEMS]) as SystemName[]
const WORKLOADS = list('LEGION_BENCH_WORKLOADS', ['burst', 'steady', 'churn']) as Workload[]
/** Burst size. */
const BURST_K = Number(env.LEGION_BENCH_K ?? (FULL ? 10_000 : 1000))
/** Steady stream: events a second over the whole cluster, and for how long. */
const STEADY_RATE = FULL ? 100 : 50
const STEADY_MS = FULL ? 4000 : 2000
const CHURN_MS = FULL ? 5000 : 3000
/** Peers that leave (and as many that join) during churn, at most n - 2. */
const CHURN_J = FULL ? 2 : 1
/**
 * A run that has not converged this long after its last event is reported as not converged.
 * In the full run, larger clusters get longer: 120 s from 32 peers, 600 s for Legion's and
 * om-legion's 64-peer 10,000-event bursts (they need minutes in one process:
 * docs/BENCHMARKS.md), and 30 minutes for any system from 128 peers.
 */
const CONVERGE_DEADLINE_MS = Number(env.LEGION_BENCH_DEADLINE_MS ?? (FULL ? 30_000 : 20_000))
function convergeDeadlineMs (c: Cluster): number {
  if (env.LEGION_BENCH_DEADLINE_MS !== undefined || !FULL) return CONVERGE_DEADLINE_MS
  if (c.n > HEAVY_N && c.mode === 'memory') return 1_800_000
  if (c.heavy) return 600_000
  return c.n >= 32 ? 120_000 : CONVERGE_DEADLINE_MS
}
/**
 * Starting a cluster (all joins settled) gives up after this: 120 s, or longer for in-process
 * clusters above 64 peers, whose start-up (n(n-1)/2 Noise handshakes in one process) grows
 * with n²: 64 peers took 65-95 s.
 */
function startDeadlineMs (n: number): number {
  if (env.LEGION_BENCH_START_DEADLINE_MS !== undefined) return Number(env.LEGION_BENCH_START_DEADLINE_MS)
  return Math.max(120_000, 40 * n * n)
}
/**
 * In-process clusters of at least this many peers are heavy (docs/BENCHMARKS.md): Legion and
 * om-legion run only {@link HEAVY_WORKLOADS} there, and their warm-up may end unsettled after
 * {@link HEAVY_WARMUP_MS} (the burst is then measured from that state).
 */
const HEAVY_N = 64
const HEAVY_WORKLOADS = list('LEGION_BENCH_HEAVY_WORKLOADS', ['burst']) as Workload[]
const HEAVY_WARMUP_MS = 30_000
/** The whole benchmark stops starting runs after this. */
const OVERALL_DEADLINE = Date.now() + Number(env.LEGION_BENCH_OVERALL_MINUTES ?? (FULL ? 45 : 5)) * 60_000
/** Heap limit of each host process, in MB (a 128-peer in-process cluster needs more than 4 GB). */
const HOST_HEAP_MB = Number(env.LEGION_BENCH_HOST_HEAP_MB ?? 4096)
/** Automerge peers sync with every other peer up to this cluster size... */
export const AUTOMERGE_MESH_MAX = 16
/** ...and beyond it with at least this many random neighbours (gossipsub's mesh degree D is 6). */
export const AUTOMERGE_DEGREE = 6
const OUT = env.LEGION_BENCH_OUT ?? `bench/results/convergence${FULL ? '' : '-quick'}.json`

/** Profile every host process (--cpu-prof; written when the host exits normally). */
const CPU_PROF_DIR = env.LEGION_BENCH_CPU_PROF
/** Keep Legion's default failure detection (heartbeats, automatic ejection); off unless set. */
const FAILURE_DETECTION = env.LEGION_BENCH_FAILURE_DETECTION === '1'

// -------------------------------------------------------------------------------------------
// Progress bar (stderr)

let done = 0
let total = 0
let label = ''
let lastPrinted = { line: '', at: 0 }
/** Redraws the bar on a terminal; elsewhere prints a line when the step changes, and at most every 10 s while it lasts. */
function progress (text?: string): void {
  if (text !== undefined) label = text
  const width = 20
  const filled = total === 0 ? 0 : Math.round(width * done / total)
  const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${label}`
  if (process.stderr.isTTY) { process.stderr.write(`\r\x1b[2K${line}`); return }
  const step = line.replace(/ \(.*$/, '')
  if (step === lastPrinted.line && Date.now() - lastPrinted.at < 10_000) return
  lastPrinted = { line: step, at: Date.now() }
  process.stderr.write(line + '\n')
}
function note (text: string): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K')
  process.stderr.write(text + '\n')
  notes.push(text)
}
const notes: string[] = []

// -------------------------------------------------------------------------------------------
// Hosts (child processes running peers) and the peers in them

process.on('exit', killChildren)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { killChildren(); process.exit(130) })

/** A host process (bench/convergence-host.ts) and its line protocol. */
class Host {
  readonly #process: CommandProcess

  /**
   * `commandMs`: how long a command waits for its reply by default. A host of more than 64
   * in-process peers gets longer than 30 s: `@libp2p/memory` hands buffers between its peers
   * through promises, so a cascade of messages (the warm-up's acknowledgements among 128 peers)
   * runs as one microtask queue that no command line gets into for minutes at a time
   * (docs/BENCHMARKS.md, "128 in-process peers").
   */
  constructor (readonly name: string, readonly commandMs = 30_000) {
    const script = fileURLToPath(new URL('./convergence-host.ts', import.meta.url))
    this.#process = new CommandProcess(name, script, ['--expose-gc', `--max-old-space-size=${HOST_HEAP_MB}`], CPU_PROF_DIR)
  }

  async send (cmd: string, args: Record<string, unknown> = {}, timeoutMs = this.commandMs): Promise<Reply> {
    return await this.#process.send(cmd, args, timeoutMs)
  }

  async cpuMs (timeoutMs = this.commandMs): Promise<number> { return Number((await this.send('cpu', {}, timeoutMs)).cpuMs) }
  async mem (): Promise<{ peakHeap: number, peakRss: number }> {
    const r = await this.send('mem')
    return { peakHeap: Number(r.peakHeap), peakRss: Number(r.peakRss) }
  }

  /** Stops every peer and exits; kills the process if that takes too long. */
  async exit (): Promise<void> {
    await this.#process.exitWith('exit', 20_000, 20_000)
  }

  kill (): void {
    this.#process.kill()
  }
}

/** One peer, living in a host. */
class Peer {
  id = ''
  addrs: string[] = []
  constructor (readonly host: Host, readonly slot: number, readonly tracked: boolean) {}

  async #send (cmd: string, args: Record<string, unknown> = {}, timeoutMs?: number): Promise<Reply> {
    return await this.host.send(cmd, { slot: this.slot, ...args }, timeoutMs)
  }

  started (r: Reply): this { this.id = String(r.peer); this.addrs = r.addrs as string[]; return this }
  /** Resolves with the time of this peer's last event and how many events it created. */
  async steady (ratePerS: number, durationMs: number, timeoutMs: number): Promise<{ lastEventAt: number, emitted: number }> {
    const r = await this.#send('steady', { ratePerS, durationMs }, durationMs + timeoutMs)
    return { lastEventAt: Number(r.lastEventAt), emitted: Number(r.emitted) }
  }

  async stopSteady (): Promise<void> { await this.#send('stopSteady') }
  async connect (peers: Array<{ id: string, addr: string }>): Promise<void> { await this.#send('connect', { peers }, 60_000) }
  async disconnect (id: string): Promise<void> { await this.#send('disconnect', { peer: id }) }
  async counters (timeoutMs?: number): Promise<NodeCounters> { return (await this.#send('counters', {}, timeoutMs)).counters as NodeCounters }
  async seenCount (of: number): Promise<number> { return Number((await this.#send('seenCount', { of })).count) }
  async lastEventAt (timeoutMs?: number): Promise<number> { return Number((await this.#send('lastEventAt', {}, timeoutMs)).at) }
  async results (timeoutMs = 60_000): Promise<{ created: number[], arrivals: number[][] }> {
    const r = await this.#send('results', {}, timeoutMs)
    return { created: r.created as number[], arrivals: r.arrivals as number[][] }
  }

  async stop (leave: boolean): Promise<void> { await this.#send('stop', { leave }, 30_000) }
}

// -------------------------------------------------------------------------------------------
// Clusters

/** What a peer that has left leaves behind for the run's figures. */
interface Departed { slot: number, created: number[], counters: NodeCounters, lastEventAt: number, host: Host, hostCpuMs: number }

/** How long the host of a workload gets to answer its commands: the event loop of a saturated in-process cluster answers late. */
const COMMAND_SLACK_MS = 30_000

class Cluster {
  peers: Peer[] = []
  hosts: Host[] = []
  departed: Departed[] = []
  /** Automerge only: who syncs with whom. */
  readonly neighbours = new Map<string, Set<string>>()
  /** Spare hosts for churn joiners (process mode), spawned in advance. */
  spares: Host[] = []
  nextSlot: number
  /** Events created in this cluster so far (warm-up included). */
  totalEvents = 0
  readonly cluster: string
  readonly base: string | undefined

  constructor (readonly system: SystemName, readonly mode: Mode, readonly n: number, readonly slots: number) {
    this.nextSlot = n
    this.cluster = `conv-${system}-${mode}-${n}-${Math.random().toString(36).slice(2, 8)}`
    this.base = system === 'automerge' ? automergeBase(slots) : undefined
  }

  get heavy (): boolean { return this.mode === 'memory' && this.n >= HEAVY_N && this.system !== 'automerge' }

  config (slot: number, tracked: boolean): NodeConfig {
    return {
      system: this.system,
      transport: this.mode === 'memory' ? 'memory' : 'tcp',
      cluster: this.cluster,
      slot,
      slots: this.slots,
      intervalMs: INTERVAL_MS,
      tracked,
      failureDetection: FAILURE_DETECTION,
      ...(this.base !== undefined ? { automergeBase: this.base } : {})
    }
  }

  /** Starts one peer in its host (process mode: a spare host of its own). */
  async startPeer (slot: number, tracked: boolean, startup: StartupMode): Promise<Peer> {
    let host: Host
    if (this.mode === 'memory') host = this.hosts[0]!
    else { host = this.spares.pop() ?? new Host(`${this.system}-${this.n}-slot${slot}`); this.hosts.push(host) }
    const peer = new Peer(host, slot, tracked)
    return peer.started(await host.send('start', { config: this.config(slot, tracked), startup }, 120_000))
  }

  /** Starts `n` peers; the last `leavers` of them are the ones churn removes (not tracked). */
  async start (leavers: number, spares: number): Promise<void> {
    const tracked = (i: number): boolean => i < this.n - leavers
    if (this.mode === 'memory') this.hosts = [new Host(`${this.system}-${this.n}-memory`, this.n > HEAVY_N ? startDeadlineMs(this.n) : undefined)]
    else this.spares = Array.from({ length: this.n + spares }, (_, i) => new Host(`${this.system}-${this.n}-p${i}`))
    if (this.system === 'automerge') {
      for (let i = 0; i < this.n; i++) this.peers.push(await this.startPeer(i, tracked(i), { mode: 'new' }))
      await this.wireAutomerge(this.peers)
    } else if (this.mode === 'memory') {
      // Formed without joins: every peer recovers from the settled fold of the whole cluster
      // and dials the peers started before it (see bootstrapFold in convergence-node.ts).
      const host = this.hosts[0]!
      const configs = Array.from({ length: this.n }, (_, i) => this.config(i, tracked(i)))
      const r = await host.send('bootstrap', { configs }, startDeadlineMs(this.n))
      this.peers = (r.peers as Reply[]).map((p, i) => new Peer(host, i, tracked(i)).started(p))
    } else {
      // Real joins through the founder, one at a time.
      const first = await this.startPeer(0, tracked(0), { mode: 'new' })
      this.peers.push(first)
      for (let i = 1; i < this.n; i++) this.peers.push(await this.startPeer(i, tracked(i), { mode: 'join', peers: first.addrs }))
    }
    await this.waitSettled(0, Date.now() + startDeadlineMs(this.n), 'start')
    // Warm-up (not measured): one event, whose acknowledgements travel from every peer to
    // every peer, so that connections, streams and gossipsub meshes are up before the first
    // measured event. (One event per peer costs O(n^2) publishes: minutes at 64 peers.)
    await this.emit(new Map([[this.peers[0]!, 1]]))
    this.totalEvents = 1
    try {
      await this.waitSettled(1, Date.now() + (this.heavy ? HEAVY_WARMUP_MS : startDeadlineMs(this.n)), 'warm-up')
    } catch (err) {
      if (!this.heavy) throw err
      note(`${this.system} n=${this.n} ${this.mode}: ${(err as Error).message}; measuring anyway`)
    }
  }

  /** Every peer in `counts` creates that many events; per host, all in the same tick. Resolves with the time of the last one. */
  async emit (counts: Map<Peer, number>): Promise<number> {
    const byHost = new Map<Host, Record<string, number>>()
    for (const [p, count] of counts) {
      let m = byHost.get(p.host); if (m === undefined) { m = {}; byHost.set(p.host, m) }
      m[String(p.slot)] = count
    }
    const replies = await Promise.all([...byHost].map(async ([host, m]) => await host.send('emitMany', { counts: m })))
    return Math.max(...replies.map(r => Number(r.at)))
  }

  async waitSettled (target: number, deadline: number, what: string): Promise<void> {
    for (;;) {
      const check = await this.settled(target, Math.max(1000, deadline - Date.now()))
      if (check.ok) return
      if (Date.now() > deadline) throw new Error(`${what} did not settle in time (${check.reason})`)
      await sleep(50)
    }
  }

  /** Links Automerge peers: every pair up to the mesh size, else a ring plus random links up to the degree. */
  async wireAutomerge (joining: Peer[]): Promise<void> {
    const link = (a: Peer, b: Peer): void => {
      if (a === b) return
      let s = this.neighbours.get(a.id); if (s === undefined) { s = new Set(); this.neighbours.set(a.id, s) }
      let t = this.neighbours.get(b.id); if (t === undefined) { t = new Set(); this.neighbours.set(b.id, t) }
      s.add(b.id); t.add(a.id)
    }
    const all = this.peers
    if (all.length <= AUTOMERGE_MESH_MAX) {
      for (const a of joining) for (const b of all) link(a, b)
    } else {
      if (joining.length === all.length) for (let i = 0; i < all.length; i++) link(all[i]!, all[(i + 1) % all.length]!)
      for (const a of joining) {
        let guard = 0
        while ((this.neighbours.get(a.id)?.size ?? 0) < AUTOMERGE_DEGREE && guard++ < 1000) link(a, all[Math.floor(Math.random() * all.length)]!)
      }
    }
    const byId = new Map(all.map(p => [p.id, p]))
    await Promise.all(all.map(async p => {
      const ids = [...(this.neighbours.get(p.id) ?? [])]
      await p.connect(ids.map(id => ({ id, addr: byId.get(id)!.addrs[0]! })))
    }))
  }

  /** The current peers' statuses, one request per host. */
  async statuses (timeoutMs: number): Promise<NodeStatus[]> {
    const hosts = [...new Set(this.peers.map(p => p.host))]
    const replies = await Promise.all(hosts.map(async h => (await h.send('statusAll', {}, timeoutMs)).statuses as Array<NodeStatus & { slot: number }>))
    const bySlot = new Map(replies.flat().map(s => [s.slot, s]))
    return this.peers.map(p => {
      const s = bySlot.get(p.slot)
      if (s === undefined) throw new Error(`no status for slot ${p.slot}`)
      return s
    })
  }

  /** Whether every peer holds the same settled and projected value with `target` events folded. */
  async settled (target: number, timeoutMs = 30_000): Promise<{ ok: boolean, statuses: NodeStatus[], reason: string }> {
    const statuses = await this.statuses(timeoutMs)
    const s0 = statuses[0]!
    let reason = ''
    const folded = statuses.filter(s => s.settledTotal === target && s.projectedTotal === target && s.outstanding === 0).length
    const held = statuses.filter(s => s.projectedTotal === target).length
    if (folded < statuses.length) reason = `${held}/${statuses.length} peers hold and ${folded} folded all ${target} events`
    else if (this.system !== 'automerge' && statuses.some(s => s.participants !== this.n)) reason = `participants ${statuses.map(s => s.participants).join(',')}`
    else if (statuses.some(s => s.settledKey !== s0.settledKey)) reason = 'settled values differ'
    else if (statuses.some(s => s.projectedKey !== s0.projectedKey)) reason = 'projected values differ'
    return { ok: reason === '', statuses, reason }
  }

  /** Removes a peer gracefully (Legion: it leaves the cluster; Automerge: its neighbours drop it once they hold its events). */
  async leave (peer: Peer): Promise<void> {
    await peer.stopSteady()
    const created = (await peer.results()).created
    if (this.system === 'automerge') {
      const ids = [...(this.neighbours.get(peer.id) ?? [])]
      const others = this.peers.filter(p => ids.includes(p.id))
      const deadline = Date.now() + 5000
      while (Date.now() < deadline) {
        const seen = await Promise.all(others.map(async p => await p.seenCount(peer.slot)))
        if (seen.every(c => c >= created.length)) break
        await sleep(10)
      }
    }
    const counters = await peer.counters()
    const lastEventAt = await peer.lastEventAt()
    this.peers = this.peers.filter(p => p !== peer)
    if (this.system === 'automerge') {
      for (const id of this.neighbours.get(peer.id) ?? []) {
        this.neighbours.get(id)?.delete(peer.id)
        await this.peers.find(p => p.id === id)?.disconnect(peer.id)
      }
      this.neighbours.delete(peer.id)
    }
    await peer.stop(true)
    // Process mode: the peer's host goes with it; its CPU up to now counts for the run.
    const hostCpuMs = this.mode === 'process' ? await peer.host.cpuMs() : NaN
    this.departed.push({ slot: peer.slot, created, counters, lastEventAt, host: peer.host, hostCpuMs })
    if (this.mode === 'process') { this.hosts = this.hosts.filter(h => h !== peer.host); await peer.host.exit() }
  }

  /** A new peer joins (Legion: through the founder; Automerge: linked like the others). */
  async join (): Promise<Peer> {
    const slot = this.nextSlot++
    if (this.system === 'automerge') {
      const p = await this.startPeer(slot, false, { mode: 'new' })
      this.peers.push(p)
      await this.wireAutomerge([p])
      return p
    }
    const p = await this.startPeer(slot, false, { mode: 'join', peers: this.peers[0]!.addrs })
    this.peers.push(p)
    return p
  }

  async stop (): Promise<void> {
    await Promise.all([...this.hosts, ...this.spares].map(async h => { await h.exit() }))
    this.peers = []
    this.hosts = []
    this.spares = []
  }

  kill (): void {
    for (const h of [...this.hosts, ...this.spares]) h.kill()
  }
}

// -------------------------------------------------------------------------------------------
// Measurement

interface RunResult {
  converged: boolean
  peersSettled: number
  reason: string
  events: number
  convergenceMs: number
  reachP50: number
  reachP99: number
  reachMax: number
  unreached: number
  bytesOut: number
  messagesOut: number
  bytesIn: number
  cpuMs: number
  heapPerPeer: number
  rssPerPeer: number
}

function quantile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!
}

function sumCounters (cs: NodeCounters[]): NodeCounters {
  const t = { bytesOut: 0, messagesOut: 0, bytesIn: 0, messagesIn: 0 }
  for (const c of cs) { t.bytesOut += c.bytesOut; t.messagesOut += c.messagesOut; t.bytesIn += c.bytesIn; t.messagesIn += c.messagesIn }
  return t
}

async function hostsCpu (hosts: Host[], timeoutMs?: number): Promise<Map<Host, number>> {
  return new Map(await Promise.all(hosts.map(async h => [h, await h.cpuMs(timeoutMs)] as const)))
}

/** CPU the idle cluster uses, in ms per second, summed over its hosts. */
async function idleCpu (c: Cluster, ms: number): Promise<number> {
  const before = await hostsCpu(c.hosts)
  await sleep(ms)
  const after = await hostsCpu(c.hosts)
  let total = 0
  for (const [h, v] of after) total += v - (before.get(h) ?? v)
  return total * 1000 / ms
}

/** Runs one workload on a started cluster and measures it. */
async function runWorkload (c: Cluster, workload: Workload, tag: string): Promise<RunResult> {
  await Promise.all(c.hosts.map(async h => { await h.send('gc'); await h.send('resetMem') }))
  const startTotal = c.totalEvents
  const createdBase = new Map<number, number>()
  for (const p of c.peers) createdBase.set(p.slot, (await p.results()).created.length)
  const counters0 = sumCounters(await Promise.all(c.peers.map(async p => await p.counters())))
  const cpuBefore = await hostsCpu(c.hosts)
  const departedBefore = c.departed.length
  // The workload. The parent learns how many events each peer created, and when the last one
  // was, from the replies to its commands, so that nothing waits on a busy host afterwards.
  let lastEventAt = 0
  let events = 0
  if (workload === 'burst') {
    const counts = new Map<Peer, number>(c.peers.map(p => [p, 0]))
    for (let i = 0; i < BURST_K; i++) { const p = c.peers[Math.floor(Math.random() * c.peers.length)]!; counts.set(p, counts.get(p)! + 1) }
    lastEventAt = await c.emit(counts)
    events = BURST_K
  } else {
    const duration = workload === 'steady' ? STEADY_MS : CHURN_MS
    const perPeer = STEADY_RATE / c.n
    const t0 = Date.now()
    // Errors are kept (not thrown) until every run has been awaited: no unhandled rejection.
    const steady = (p: Peer, ms: number): Promise<{ lastEventAt: number, emitted: number } | Error> =>
      p.steady(perPeer, ms, COMMAND_SLACK_MS).catch((err: unknown) => err instanceof Error ? err : new Error(String(err)))
    const runs = c.peers.map(p => ({ peer: p, run: steady(p, duration) }))
    const leavers = workload === 'churn' ? c.peers.filter(p => !p.tracked) : []
    for (let i = 0; i < leavers.length; i++) {
      const at = t0 + duration * (i + 0.5) / leavers.length
      await sleep(Math.max(0, at - Date.now()))
      progress(`${tag} (peer ${i + 1} of ${leavers.length} leaves and another joins)`)
      await c.leave(leavers[i]!)
      const joiner = await c.join()
      if (c.mode === 'process') cpuBefore.set(joiner.host, await joiner.host.cpuMs())
      const left = duration - (Date.now() - t0)
      if (left > 100) runs.push({ peer: joiner, run: steady(joiner, left) })
    }
    const results = await Promise.all(runs.map(async ({ peer, run }) => ({ peer, r: await run })))
    for (const { peer, r } of results) {
      if (r instanceof Error) throw r
      // A leaver's events are counted from what it left behind (below).
      if (leavers.includes(peer)) continue
      events += r.emitted
      lastEventAt = Math.max(lastEventAt, r.lastEventAt)
    }
  }
  const departed = c.departed.slice(departedBefore)
  for (const d of departed) {
    events += d.created.length - (createdBase.get(d.slot) ?? 0)
    lastEventAt = Math.max(lastEventAt, d.lastEventAt)
  }
  const target = startTotal + events
  c.totalEvents = target

  // Wait for convergence, bounded: a host too busy to answer by the deadline counts as not converged.
  const deadline = lastEventAt + convergeDeadlineMs(c)
  let check: { ok: boolean, statuses: NodeStatus[], reason: string } = { ok: false, statuses: [], reason: 'no answer' }
  for (;;) {
    try {
      check = await c.settled(target, Math.max(1000, deadline - now()))
    } catch (err) {
      check = { ok: false, statuses: check.statuses, reason: `no status by the deadline (${(err as Error).message})` }
      break
    }
    if (check.ok || now() >= deadline) break
    progress(`${tag} (converging: ${check.reason}, ${((now() - lastEventAt) / 1000).toFixed(1)} s)`)
    await sleep(c.mode === 'memory' ? 50 : 25)
  }
  const convergenceMs = check.ok ? Math.max(...check.statuses.map(s => s.lastChangeAt)) - lastEventAt : now() - lastEventAt
  const peersSettled = check.statuses.filter(s => s.settledTotal === target && s.projectedTotal === target && s.outstanding === 0).length
  const result: RunResult = {
    converged: check.ok, peersSettled, reason: check.reason, events, convergenceMs,
    reachP50: NaN, reachP99: NaN, reachMax: NaN, unreached: NaN, bytesOut: NaN, messagesOut: NaN, bytesIn: NaN, cpuMs: NaN, heapPerPeer: NaN, rssPerPeer: NaN
  }
  // The other figures; a host still too busy to answer within a few seconds leaves them out.
  const quickMs = check.ok ? 60_000 : 20_000
  try {
    const cpuAfter = await hostsCpu(c.hosts, quickMs)
    let cpuMs = 0
    for (const [h, v] of cpuAfter) cpuMs += v - (cpuBefore.get(h) ?? v)
    for (const d of departed) if (Number.isFinite(d.hostCpuMs)) cpuMs += d.hostCpuMs - (cpuBefore.get(d.host) ?? d.hostCpuMs)
    result.cpuMs = cpuMs
    const counters1 = sumCounters([...await Promise.all(c.peers.map(async p => await p.counters(quickMs))), ...departed.map(d => d.counters)])
    result.bytesOut = counters1.bytesOut - counters0.bytesOut
    result.messagesOut = counters1.messagesOut - counters0.messagesOut
    result.bytesIn = counters1.bytesIn - counters0.bytesIn
    const mems = await Promise.all(c.hosts.map(async h => await h.mem()))
    if (c.mode === 'memory') {
      result.heapPerPeer = mems[0]!.peakHeap / c.n
      result.rssPerPeer = mems[0]!.peakRss / c.n
    } else {
      result.heapPerPeer = Math.max(...mems.map(m => m.peakHeap))
      result.rssPerPeer = Math.max(...mems.map(m => m.peakRss))
    }

    // Per-event reach: the latest arrival over the tracked peers, minus the creation time.
    const created = new Map<number, number[]>()
    const tracked: number[][][] = []
    for (const p of c.peers) {
      const r = await p.results(quickMs)
      created.set(p.slot, r.created)
      if (p.tracked) tracked.push(r.arrivals)
    }
    for (const d of departed) created.set(d.slot, d.created)
    const reach: number[] = []
    let unreached = 0
    for (const [slot, times] of created) {
      for (let q = createdBase.get(slot) ?? 0; q < times.length; q++) {
        let latest = 0
        let missing = false
        for (const arrivals of tracked) {
          const a = arrivals[slot]?.[q]
          if (a === undefined || a === null) { missing = true; break }
          if (a > latest) latest = a
        }
        if (missing) unreached++
        else reach.push(Math.max(0, latest - times[q]!))
      }
    }
    reach.sort((a, b) => a - b)
    result.reachP50 = quantile(reach, 0.5)
    result.reachP99 = quantile(reach, 0.99)
    result.reachMax = reach.length > 0 ? reach[reach.length - 1]! : NaN
    result.unreached = unreached
  } catch (err) {
    note(`${tag}: figures incomplete: ${(err as Error).message}`)
  }
  return result
}

// -------------------------------------------------------------------------------------------
// Rows, ratios, table

interface Row {
  metric: string
  value: number | null
  unit: string
  cluster_size: number
  workload: string
  system: string
  mode: string
  converged?: boolean
  ratio_vs_om_legion?: number
  ratio_vs_automerge?: number
  goal?: string
}
const rows: Row[] = []

const METRICS: Array<{ metric: string, unit: string, get: (r: RunResult) => number }> = [
  { metric: 'convergence_ms', unit: 'ms', get: r => r.convergenceMs },
  { metric: 'event_reach_all_p50_ms', unit: 'ms', get: r => r.reachP50 },
  { metric: 'event_reach_all_p99_ms', unit: 'ms', get: r => r.reachP99 },
  { metric: 'bytes_per_event', unit: 'bytes', get: r => r.bytesOut / r.events },
  { metric: 'messages_per_event', unit: 'messages', get: r => r.messagesOut / r.events },
  { metric: 'bytes_delivered_per_event', unit: 'bytes', get: r => r.bytesIn / r.events },
  { metric: 'cpu_ms', unit: 'ms', get: r => r.cpuMs },
  { metric: 'cpu_us_per_event', unit: 'us', get: r => r.cpuMs * 1000 / r.events },
  { metric: 'peak_heap_per_peer_mb', unit: 'MB', get: r => r.heapPerPeer / 1e6 },
  { metric: 'peak_rss_per_peer_mb', unit: 'MB', get: r => r.rssPerPeer / 1e6 },
  { metric: 'events', unit: 'events', get: r => r.events },
  { metric: 'events_unreached', unit: 'events', get: r => r.unreached },
  { metric: 'peers_settled', unit: 'peers', get: r => r.peersSettled }
]

function record (r: RunResult, system: SystemName, mode: Mode, n: number, workload: Workload): void {
  for (const m of METRICS) {
    const v = m.get(r)
    const goal = system === 'legion' && m.metric === 'convergence_ms'
      ? '<= 0.5x om-legion'
      : system === 'legion' && m.metric === 'bytes_per_event' ? '<= 0.5x automerge' : undefined
    rows.push({
      metric: m.metric,
      value: Number.isFinite(v) ? Number(v.toPrecision(5)) : null,
      unit: m.unit,
      cluster_size: n,
      workload,
      system,
      mode,
      converged: r.converged,
      ...(goal !== undefined ? { goal } : {})
    })
  }
}

/** Ratios to each baseline, only between runs that both converged (a lower bound over a lower bound says nothing). */
function addRatios (): void {
  const key = (r: Row, system: string): string => `${r.metric}|${r.cluster_size}|${r.workload}|${system}|${r.mode}`
  const byKey = new Map(rows.map(r => [key(r, r.system), r]))
  for (const r of rows) {
    if (r.value === null || r.converged === false) continue
    for (const [base, field] of [['om-legion', 'ratio_vs_om_legion'], ['automerge', 'ratio_vs_automerge']] as const) {
      const b = byKey.get(key(r, base))
      if (b?.value !== undefined && b.value !== null && b.value > 0 && b.converged !== false) r[field] = Number((r.value / b.value).toPrecision(4))
    }
  }
}

function fmt (v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-'
  if (Math.abs(v) >= 1000) return v.toFixed(0)
  return v.toPrecision(digits)
}

function printTable (): void {
  const get = (m: string, n: number, w: string, s: string, mode: string): Row | undefined =>
    rows.find(r => r.metric === m && r.cluster_size === n && r.workload === w && r.system === s && r.mode === mode)
  const header = ['mode', 'n', 'workload', 'system', 'conv ms', 'x om', 'x am', 'p50 ms', 'p99 ms', 'B/ev', 'x om', 'x am', 'msg/ev', 'cpu ms', 'x om', 'x am', 'heap MB/peer']
  const lines: string[][] = [header]
  const seen = new Set<string>()
  for (const r of rows) {
    const k = `${r.mode}|${r.cluster_size}|${r.workload}|${r.system}`
    if (seen.has(k) || r.metric !== 'convergence_ms') continue
    seen.add(k)
    const conv = get('convergence_ms', r.cluster_size, r.workload, r.system, r.mode)
    const b = get('bytes_per_event', r.cluster_size, r.workload, r.system, r.mode)
    const cpu = get('cpu_ms', r.cluster_size, r.workload, r.system, r.mode)
    lines.push([
      r.mode, String(r.cluster_size), r.workload, r.system,
      (conv?.converged === false ? '>' : '') + fmt(conv?.value), fmt(conv?.ratio_vs_om_legion), fmt(conv?.ratio_vs_automerge),
      fmt(get('event_reach_all_p50_ms', r.cluster_size, r.workload, r.system, r.mode)?.value),
      fmt(get('event_reach_all_p99_ms', r.cluster_size, r.workload, r.system, r.mode)?.value),
      fmt(b?.value), fmt(b?.ratio_vs_om_legion), fmt(b?.ratio_vs_automerge),
      fmt(get('messages_per_event', r.cluster_size, r.workload, r.system, r.mode)?.value),
      fmt(cpu?.value), fmt(cpu?.ratio_vs_om_legion), fmt(cpu?.ratio_vs_automerge),
      fmt(get('peak_heap_per_peer_mb', r.cluster_size, r.workload, r.system, r.mode)?.value)
    ])
  }
  const widths = header.map((_, i) => Math.max(...lines.map(l => l[i]!.length)))
  for (const l of lines) console.log(l.map((cell, i) => i < 4 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)).join('  '))
  const idle = rows.filter(r => r.metric === 'idle_cpu_ms_per_s')
  if (idle.length > 0) {
    console.log('\ncluster start-up (with warm-up) and idle CPU:')
    for (const r of idle) {
      const start = get('start_ms', r.cluster_size, 'idle', r.system, r.mode)
      console.log(`  ${r.mode.padEnd(7)} n=${String(r.cluster_size).padEnd(3)} ${r.system.padEnd(9)}  start ${fmt(start?.value)} ms, idle ${fmt(r.value)} ms of CPU per second`)
    }
  }
}

// -------------------------------------------------------------------------------------------
// Main

async function main (): Promise<void> {
  const cpu = cpus()
  console.log(`machine: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, load average ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
  console.log(`convergence benchmark (${FULL ? 'full' : 'quick'}): intervalMs ${INTERVAL_MS}, burst K=${BURST_K}, steady ${STEADY_RATE}/s for ${STEADY_MS} ms, churn ${CHURN_MS} ms with ${CHURN_J} leave(s)+join(s), deadline ${CONVERGE_DEADLINE_MS} ms after the last event; Legion's acknowledge: ${env.LEGION_BENCH_ACKNOWLEDGE ?? 'everyone (default)'}, directFanout: ${env.LEGION_BENCH_DIRECT_FANOUT ?? '64 (default)'}, libp2p connection monitor: ${env.LEGION_BENCH_CONNECTION_MONITOR ?? 'on (default)'}`)
  const plan: Array<{ mode: Mode, n: number, system: SystemName }> = []
  // The heavy in-process sizes last, so that a run out of time loses the least.
  for (const n of MEMORY_SIZES.filter(n => n < HEAVY_N)) for (const system of RUN_SYSTEMS) plan.push({ mode: 'memory', n, system })
  for (const n of PROCESS_SIZES) for (const system of RUN_SYSTEMS) plan.push({ mode: 'process', n, system })
  for (const n of MEMORY_SIZES.filter(n => n >= HEAVY_N)) for (const system of RUN_SYSTEMS) plan.push({ mode: 'memory', n, system })
  total = plan.reduce((t, { mode, n, system }) => t + WORKLOADS.filter(w => !(mode === 'memory' && n >= HEAVY_N && system !== 'automerge') || HEAVY_WORKLOADS.includes(w)).length, 0)
  const started = Date.now()

  for (const { mode, n, system } of plan) {
    const j = Math.max(0, Math.min(CHURN_J, n - 2))
    let cluster: Cluster | undefined
    const heavy = mode === 'memory' && n >= HEAVY_N && system !== 'automerge'
    for (const workload of WORKLOADS) {
      if (heavy && !HEAVY_WORKLOADS.includes(workload)) continue
      const tag = `${system} ${workload} n=${n} ${mode}`
      // A new cluster needs time to start and run (64 in-process peers: minutes).
      const needMs = cluster === undefined ? (heavy ? Math.max(240_000, startDeadlineMs(n)) : 60_000) : 0
      if (Date.now() + needMs > OVERALL_DEADLINE) { note(`skipped ${tag}: overall deadline`); done++; continue }
      progress(tag)
      try {
        if (cluster === undefined) {
          progress(`${tag} (starting ${n} peers)`)
          cluster = new Cluster(system, mode, n, n + j)
          const t = Date.now()
          await cluster.start(j, j)
          const startMs = Date.now() - t
          const idle = await idleCpu(cluster, 2000)
          for (const [metric, value, unit] of [['start_ms', startMs, 'ms'], ['idle_cpu_ms_per_s', idle, 'ms/s']] as const) {
            rows.push({ metric, value: Number(value.toPrecision(4)), unit, cluster_size: n, workload: 'idle', system, mode })
          }
          if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K')
          process.stderr.write(`${system} n=${n} ${mode}: cluster started and warmed up in ${(startMs / 1000).toFixed(1)} s; idle, it uses ${idle.toFixed(0)} ms of CPU a second\n`)
        }
        const r = await runWorkload(cluster, workload, tag)
        record(r, system, mode, n, workload)
        const msg = `${tag}: ${r.converged ? '' : 'NOT CONVERGED (' + r.reason + ') '}conv ${r.convergenceMs.toFixed(0)} ms, p50 ${fmt(r.reachP50)} p99 ${fmt(r.reachP99)} ms, ${fmt(r.bytesOut / r.events)} B/ev, ${fmt(r.messagesOut / r.events)} msg/ev, cpu ${r.cpuMs.toFixed(0)} ms, heap ${(r.heapPerPeer / 1e6).toFixed(2)} MB/peer, ${r.events} events${r.unreached > 0 ? `, ${r.unreached} unreached` : ''}`
        if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K')
        process.stderr.write(msg + '\n')
        if (!r.converged) notes.push(msg)
        // Churn changes the membership; a run that did not converge leaves a busy cluster.
        if (!r.converged) { cluster.kill(); cluster = undefined } else if (workload === 'churn') { await cluster.stop(); cluster = undefined }
      } catch (err) {
        note(`${tag} failed: ${err instanceof Error ? err.message : String(err)}`)
        cluster?.kill()
        cluster = undefined
      }
      done++
      progress(tag)
    }
    await cluster?.stop()
  }
  if (process.stderr.isTTY) process.stderr.write('\n')

  addRatios()
  printTable()
  for (const n of notes) console.log(`note: ${n}`)
  console.log(`total time ${((Date.now() - started) / 1000).toFixed(0)} s`)
  await mkdir('bench/results', { recursive: true })
  await writeFile(OUT, JSON.stringify(rows, null, 2) + '\n')
  console.log(`wrote ${OUT}`)
}

const watchdog = setTimeout(() => {
  console.error('convergence benchmark: overall watchdog fired, exiting')
  killChildren()
  process.exit(2)
}, OVERALL_DEADLINE - Date.now() + 5 * 60_000)
watchdog.unref()

main().then(() => { killChildren(); process.exit(0) }, err => {
  console.error(err)
  killChildren()
  process.exit(1)
})
