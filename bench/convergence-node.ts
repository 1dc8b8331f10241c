/**
 * One peer of the convergence benchmark (bench/convergence.ts), for each system compared:
 * - `legion`: a Legion peer in its default `push` propagation;
 * - `om-legion`: a Legion peer with `propagation.mode: 'periodic'` (om-legion's strategy:
 *   every `intervalMs`, one diff or whole fold to one random participant);
 * - `automerge`: an Automerge 3.5 document kept in sync with Automerge's own sync protocol
 *   (`generateSyncMessage` / `receiveSyncMessage`) over the same libp2p transport, one-way
 *   messages on reused streams (`createTransportNode` `send` / `handle`).
 *
 * The workload is the same for all three: event `i` of the peer in slot `s` increments
 * counter `s` of a shared state (Legion: an array of counters beside a partition table kept
 * by the fold's join/unjoin hooks; Automerge: a map of `Counter`s). Because a creator's events
 * are delivered in order, "counter `s` >= `q + 1` on peer `p`" means that event `q` of slot `s`
 * has reached `p`'s projected value; every peer records when each counter moved, which gives
 * each event's arrival time on each peer without any extra message.
 *
 * Peers run in the benchmark's own process (memory transport) or one per OS process
 * (bench/convergence-peer.ts, TCP loopback); this module is the same in both.
 *
 * @module
 */
import '../src/transport/polyfill.js'
import * as Automerge from '@automerge/automerge'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createTransportNode, type TransportNode } from '../src/transport/index.js'
import { startPeer } from '../src/peer/start.js'
import { systemPeerClock, type PeerClock } from '../src/peer/clock.js'
import { EventFold } from '../src/eventfold/event-fold.js'
import { encodeEventFold } from '../src/codec/eventfold.js'
import { jsonCodec } from '../src/codec/json.js'
import { memoryStorage } from '../src/storage/memory.js'
import { eventIdKey, type EventSpec, type Participant } from '../src/eventfold/types.js'
import { partitionTableSpec, type PartitionTable } from '../src/partitions/partition-table.js'
import type { ClusterState, Legion, StartupMode } from '../src/peer/options.js'

export type SystemName = 'legion' | 'om-legion' | 'automerge'
export const SYSTEMS: readonly SystemName[] = ['legion', 'om-legion', 'automerge']

/** Milliseconds on a clock shared by every process of the machine (sub-millisecond resolution). */
export function now (): number {
  return performance.timeOrigin + performance.now()
}

/** Legion's state: one counter per slot, and a partition table the join/unjoin hooks rebalance. */
export interface BenchState {
  readonly c: readonly number[]
  readonly t: PartitionTable
}

/** Partitions of the benchmark's partition table. */
export const PARTITIONS = 64

/** Counter `slot` += 1; the output is the new count. Never mutates its input. */
export function benchSpec (slots: number): EventSpec<number, BenchState, number> {
  const table = partitionTableSpec(PARTITIONS)
  return {
    init: () => ({ c: new Array<number>(slots).fill(0), t: table.init() }),
    apply: (slot, s) => {
      if (!Number.isInteger(slot) || slot < 0 || slot >= s.c.length) return { ok: false, output: -1 }
      const c = s.c.slice()
      c[slot] = c[slot]! + 1
      return { ok: true, output: c[slot]!, state: { c, t: s.t } }
    },
    join: (p, s) => ({ c: s.c, t: table.join!(p, s.t) }),
    unjoin: (p, s) => ({ c: s.c, t: table.unjoin!(p, s.t) })
  }
}

/** How a benchmark peer is configured; plain JSON so that it can cross a process boundary. */
export interface NodeConfig {
  system: SystemName
  transport: 'memory' | 'tcp'
  cluster: string
  /** This peer's counter. */
  slot: number
  /** Number of counters. */
  slots: number
  /** Anti-entropy period (legion) or send period (om-legion). */
  intervalMs: number
  /** Record arrival times (the peers whose view the per-event latency is measured on). */
  tracked: boolean
  /** Automerge only: the common initial document (`Automerge.save`), base64. */
  automergeBase?: string
  /**
   * Legion only: keep the runtime's default failure detection (heartbeats to every other
   * participant every second, automatic ejection). Off by default in this benchmark, so that
   * it measures propagation alone (and an overloaded in-process cluster does not eject its
   * own peers): heartbeats are sent once an hour and nobody is ejected automatically.
   */
  failureDetection?: boolean
}

/** What {@link BenchNode.status} reports. */
export interface NodeStatus {
  /** Sum of the settled counters (Legion: infimum; Automerge: the document). */
  settledTotal: number
  /** Sum of the projected counters. */
  projectedTotal: number
  /** Events not yet settled (Legion: outstanding; Automerge: always 0). */
  outstanding: number
  /** Participants (Legion: infimum participants; Automerge: neighbours + 1). */
  participants: number
  /** Identifies the settled value: infimum id + digest (Legion), sorted heads (Automerge). */
  settledKey: string
  /** Identifies the projected value (every counter, and the partition table for Legion). */
  projectedKey: string
  /** When the settled or projected value last changed here. */
  lastChangeAt: number
}

/** Traffic counters of one peer, since it started. */
export interface NodeCounters {
  bytesOut: number
  messagesOut: number
  bytesIn: number
  messagesIn: number
}

/** One benchmark peer; the same interface whether it lives here or in its own process. */
export interface BenchNode {
  readonly id: string
  addrs(): string[]
  /** Creates `count` events at once (one tick). */
  emit(count: number): void
  /** Creates `ratePerS` events a second, in 20 ms ticks, for `durationMs`; resolves with the last event's time and the count. */
  steady(ratePerS: number, durationMs: number): Promise<SteadyResult>
  /** Stops a running `steady` (a leaver stops writing before it leaves). */
  stopSteady(): void
  /** Automerge only: starts syncing with these peers (peer id -> address). */
  connect(peers: Array<{ id: string, addr: string }>): Promise<void>
  /** Automerge only: stops syncing with this peer. */
  disconnect(id: string): void
  status(): NodeStatus
  counters(): NodeCounters
  /** Creation times of this peer's own events, by sequence number. */
  created(): number[]
  /** Arrival times of every slot's events in this peer's projected value (tracked peers only). */
  arrivals(): number[][]
  /** When this peer created its last event (0 if none). */
  lastEventAt(): number
  /** How many events of `slot` this peer's projected value holds. */
  seenCount(slot: number): number
  stop(leave: boolean): Promise<void>
}

/** What a steady stream did: when its last event was created (0 if none) and how many it created. */
export interface SteadyResult { lastEventAt: number, emitted: number }

/** Records when each counter reached each value, and when anything last changed. */
class ArrivalLog {
  readonly seen: number[]
  readonly times: number[][]
  lastChangeAt = now()
  settledKey = ''
  projectedKey = ''

  constructor (slots: number, readonly tracked: boolean) {
    this.seen = new Array<number>(slots).fill(0)
    this.times = Array.from({ length: slots }, () => [])
  }

  /** Notes the projected counters; returns whether any moved. */
  observe (counts: ArrayLike<number>, at: number): boolean {
    let moved = false
    for (let s = 0; s < this.seen.length; s++) {
      const c = counts[s] ?? 0
      if (c <= this.seen[s]!) continue
      moved = true
      if (this.tracked) { const list = this.times[s]!; for (let q = this.seen[s]!; q < c; q++) list[q] = at }
      this.seen[s] = c
    }
    return moved
  }
}

function sum (xs: ArrayLike<number>): number {
  let total = 0
  for (let i = 0; i < xs.length; i++) total += xs[i]!
  return total
}

/** Emits events at a steady rate through `emit`, in 20 ms ticks with a random phase. */
class SteadyEmitter {
  #timer: ReturnType<typeof setTimeout> | undefined
  #done: (() => void) | undefined
  last = 0

  /**
   * Events are owed by elapsed time, not by tick: a peer whose timers run late (a loaded event
   * loop) catches up with a larger batch, so every system is offered the same number of events.
   */
  run (emit: (count: number) => void, ratePerS: number, durationMs: number): Promise<SteadyResult> {
    const tickMs = 20
    const start = now()
    const phase = Math.random() // so the peers' ticks do not line up
    let emitted = 0
    this.last = 0
    return new Promise<SteadyResult>(resolve => {
      this.#done = () => { this.#timer = undefined; this.#done = undefined; resolve({ lastEventAt: this.last, emitted }) }
      const tick = (): void => {
        const elapsed = Math.min(now() - start, durationMs)
        const n = Math.floor(phase + ratePerS * elapsed / 1000) - emitted
        if (n > 0) { emitted += n; emit(n); this.last = now() }
        if (elapsed >= durationMs) { this.#done?.(); return }
        this.#timer = setTimeout(tick, tickMs)
      }
      this.#timer = setTimeout(tick, Math.random() * tickMs)
    })
  }

  stop (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#done?.()
  }
}

// -------------------------------------------------------------------------------------------
// Legion (push) and om-legion-style (periodic)

/**
 * A cluster formed without joins (memory mode only): the settled fold every peer of a cluster
 * of `participants` would hold after all of them joined and nothing else happened, encoded as
 * the runtime saves it. Each peer recovers from it (`startup: 'recover'`), which costs one
 * start and its dials instead of one join round per peer: 64 joins in one process take
 * more than 10 minutes on 2 cores (see docs/BENCHMARKS.md, "Convergence").
 */
export function bootstrapFold (cluster: string, participants: readonly Participant[], slots: number): Uint8Array {
  const spec = benchSpec(slots)
  const fold = EventFold.create(cluster, participants[0]!, spec)
  for (let k = 1; k < participants.length; k++) {
    fold.participate(participants[k]!)
    for (let i = 0; i <= k; i++) fold.acknowledge(participants[i]!)
  }
  if (fold.outstandingCount !== 0 || fold.infimumParticipants().length !== participants.length) throw new Error('bootstrap fold did not settle')
  return encodeEventFold(fold.snapshot(), { event: jsonCodec, state: jsonCodec, output: jsonCodec } as never)
}

/** What a peer of a bootstrapped cluster starts from (memory mode; not JSON). */
export interface Bootstrap {
  privateKey: PrivateKey
  fold: Uint8Array
  listen: string
  /** The peer's clock (a {@link TimerGate}'s while a large cluster starts); the system's by default. */
  clock?: PeerClock
}

/**
 * Starts the Legion peers of a whole in-process cluster without joins (see
 * {@link bootstrapFold}): each recovers from the cluster's settled fold on a memory address
 * chosen here, and dials the peers started before it, one peer after the other. `onStarted`
 * hears how many are up after each.
 *
 * Above {@link UNGATED_BOOTSTRAP_MAX} peers, the peers' periodic timers (anti-entropy, and
 * heartbeats, which the benchmark leaves off) do nothing until every peer is up: while some
 * participants of the fold are not up yet, every started peer's anti-entropy tick dials each of
 * them every interval, and that grows with started × missing peers. Measured: 32 started peers
 * of a 128-participant fold used 618 ms of CPU a second idle, against 118 ms with none missing,
 * nearly all of it in libp2p's dial path; started that way, 128 peers were not all up after 20
 * minutes (nor when started all at once). Up to 64 peers (every cluster measured before) the
 * timers run from the start.
 */
export async function startBootstrapped (configs: NodeConfig[], onStarted?: (started: number) => void): Promise<BenchNode[]> {
  const keys = await Promise.all(configs.map(async () => await generateKeyPair('Ed25519')))
  const ids = keys.map(k => peerIdFromPrivateKey(k).toString())
  const cluster = configs[0]!.cluster
  const fold = bootstrapFold(cluster, ids, configs[0]!.slots)
  const listen = ids.map((_, i) => `/memory/${cluster}-${i}`)
  const addrs = ids.map((id, i) => `${listen[i]!}/p2p/${id}`)
  const gate = configs.length > UNGATED_BOOTSTRAP_MAX ? new TimerGate() : undefined
  const nodes: BenchNode[] = []
  for (let i = 0; i < configs.length; i++) {
    nodes.push(await LegionNode.start(configs[i]!, { mode: 'recover', peers: addrs.slice(0, i) }, { privateKey: keys[i]!, fold, listen: listen[i]!, ...(gate !== undefined ? { clock: gate.clock } : {}) }))
    onStarted?.(i + 1)
  }
  gate?.open()
  return nodes
}

/** In-process clusters up to this size start with their periodic timers running; see {@link startBootstrapped}. */
export const UNGATED_BOOTSTRAP_MAX = 64

/** The system clock, except that periodic timers skip their calls until {@link TimerGate.open}. */
class TimerGate {
  #open = false
  readonly clock: PeerClock = {
    ...systemPeerClock,
    every: (ms, callback) => systemPeerClock.every(ms, () => { if (this.#open) callback() })
  }

  open (): void { this.#open = true }
}

class LegionNode implements BenchNode {
  readonly #log: ArrivalLog
  readonly #created: number[] = []
  readonly #steady = new SteadyEmitter()
  #last = 0

  private constructor (readonly legion: Legion<number, BenchState, number>, readonly config: NodeConfig) {
    this.#log = new ArrivalLog(config.slots, config.tracked)
    legion.subscribe(state => { this.#observe(state) })
    this.#observe(legion.readState())
  }

  static async start (config: NodeConfig, startup: StartupMode, bootstrap?: Bootstrap): Promise<LegionNode> {
    // LEGION_BENCH_ACKNOWLEDGE=creators routes acknowledgements to the creators waiting for them.
    const acknowledge = process.env.LEGION_BENCH_ACKNOWLEDGE
    if (acknowledge !== undefined && acknowledge !== 'everyone' && acknowledge !== 'creators') throw new Error(`LEGION_BENCH_ACKNOWLEDGE must be everyone or creators, not ${acknowledge}`)
    let storage
    if (bootstrap !== undefined) {
      storage = memoryStorage()
      await storage.save({ cluster: config.cluster, privateKey: privateKeyToProtobuf(bootstrap.privateKey), fold: bootstrap.fold })
    }
    // startPeer is startLegion with seams; the only one used is the clock of a large bootstrap.
    const legion = await startPeer<number, BenchState, number, Record<never, never>>({
      cluster: config.cluster,
      spec: benchSpec(config.slots),
      startup,
      transport: config.transport,
      freezeStates: false,
      joinTimeoutMs: 30_000,
      propagation: {
        mode: config.system === 'om-legion' ? 'periodic' : 'push',
        intervalMs: config.intervalMs,
        ...(process.env.LEGION_BENCH_DIRECT_FANOUT !== undefined ? { directFanout: Number(process.env.LEGION_BENCH_DIRECT_FANOUT) } : {}),
        ...(acknowledge !== undefined ? { acknowledge } : {})
      },
      ...(config.failureDetection === true ? {} : { failureDetection: { heartbeatIntervalMs: 3_600_000, suspectAfterMs: 7_200_000, autoEject: false } }),
      ...(bootstrap !== undefined ? { storage, privateKey: bootstrap.privateKey, listen: [bootstrap.listen] } : {})
    }, bootstrap?.clock !== undefined ? { clock: bootstrap.clock } : {})
    if (bootstrap !== undefined) {
      // The storage only carried the bootstrap fold. Detach it so that this peer, like every
      // other one in the benchmark, runs without storage: with storage, every flush saves what
      // changed. This reaches into private fields of the runtime (there is no public way to
      // start from a given fold without storage): the save-before-send gate reads its store at
      // every save. Checked, so that a rename fails loudly.
      const internals = legion as unknown as { parts?: { persistence?: { components?: { store?: unknown } } } }
      const components = internals.parts?.persistence?.components
      if (components === undefined || components.store === undefined) throw new Error('runtime internals changed: cannot detach the bootstrap storage')
      components.store = undefined
    }
    return new LegionNode(legion, config)
  }

  get id (): string { return this.legion.self }
  addrs (): string[] { return this.legion.multiaddrs() }

  #observe (state: ClusterState<BenchState>): void {
    const at = now()
    const settledKey = `${eventIdKey(state.infimumId)}|${state.outstanding}|${state.participants.length}`
    const moved = this.#log.observe(state.projected.c, at)
    if (moved || settledKey !== this.#log.settledKey) {
      this.#log.settledKey = settledKey
      this.#log.lastChangeAt = at
    }
  }

  emit (count: number): void {
    for (let i = 0; i < count; i++) {
      this.#created.push(now())
      this.legion.applyFast(this.config.slot)
    }
    this.#last = now()
    // Our own events are in our projection at once.
    this.#observe(this.legion.readState())
  }

  async steady (ratePerS: number, durationMs: number): Promise<SteadyResult> {
    return await this.#steady.run(n => { this.emit(n) }, ratePerS, durationMs)
  }

  stopSteady (): void { this.#steady.stop() }
  async connect (): Promise<void> {}
  disconnect (): void {}

  status (): NodeStatus {
    const s = this.legion.readState()
    // A merge whose flush (and change notification) has not run yet is noted now.
    this.#observe(s)
    return {
      settledTotal: sum(s.infimum.c),
      projectedTotal: sum(s.projected.c),
      outstanding: s.outstanding,
      participants: s.participants.length,
      settledKey: `${eventIdKey(s.infimumId)}:${s.infimum.c.join(',')}:${s.infimum.t.version}:${s.infimum.t.owners.join(',')}`,
      projectedKey: `${s.projected.c.join(',')}:${s.projected.t.version}:${s.projected.t.owners.join(',')}`,
      lastChangeAt: this.#log.lastChangeAt
    }
  }

  counters (): NodeCounters {
    const c = this.legion.stats().counters
    return { bytesOut: c.bytesOut, messagesOut: c.messagesOut, bytesIn: c.bytesIn, messagesIn: c.messagesIn }
  }

  created (): number[] { return this.#created }
  arrivals (): number[][] { return this.#log.times }
  lastEventAt (): number { return this.#last }
  seenCount (slot: number): number { return this.#log.seen[slot] ?? 0 }

  async stop (leave: boolean): Promise<void> {
    this.#steady.stop()
    await this.legion.stop({ leave, timeoutMs: 5000 })
  }
}

// -------------------------------------------------------------------------------------------
// Automerge

interface AmDoc { c: Record<string, Automerge.Counter> }

const AM_SYNC = '/legion-bench/automerge-sync/1.0.0'

/** The common initial document: a map with one Counter per slot, created once. */
export function automergeBase (slots: number): string {
  const doc = Automerge.change(Automerge.init<AmDoc>({ actor: '00' }), d => {
    d.c = {}
    for (let s = 0; s < slots; s++) d.c[String(s)] = new Automerge.Counter(0)
  })
  return Buffer.from(Automerge.save(doc)).toString('base64')
}

class AutomergeNode implements BenchNode {
  readonly #log: ArrivalLog
  readonly #created: number[] = []
  readonly #steady = new SteadyEmitter()
  readonly #syncStates = new Map<string, Automerge.SyncState>()
  readonly #sendChains = new Map<string, Promise<void>>()
  readonly #counters: NodeCounters = { bytesOut: 0, messagesOut: 0, bytesIn: 0, messagesIn: 0 }
  #doc: Automerge.Doc<AmDoc>
  #queued = 0
  #pumpScheduled = false
  #stopped = false
  #last = 0

  private constructor (readonly node: TransportNode, readonly config: NodeConfig) {
    this.#log = new ArrivalLog(config.slots, config.tracked)
    this.#doc = Automerge.load<AmDoc>(Buffer.from(config.automergeBase!, 'base64'))
    this.#log.settledKey = Automerge.getHeads(this.#doc).join(',')
  }

  static async start (config: NodeConfig): Promise<AutomergeNode> {
    if (config.automergeBase === undefined) throw new Error('automerge needs the base document')
    const node = await createTransportNode({ transport: config.transport, gossipsub: false, logPrefix: 'bench-am' })
    const am = new AutomergeNode(node, config)
    await node.handle(AM_SYNC, (from, payload) => { am.#receive(from, payload); return undefined })
    return am
  }

  get id (): string { return this.node.peerId }
  addrs (): string[] { return this.node.multiaddrs() }

  #receive (from: string, payload: Uint8Array): void {
    if (this.#stopped) return
    this.#counters.bytesIn += payload.byteLength
    this.#counters.messagesIn++
    const state = this.#syncStates.get(from)
    if (state === undefined) return // not (or no longer) a neighbour
    const [doc, next] = Automerge.receiveSyncMessage(this.#doc, state, payload)
    this.#doc = doc
    this.#syncStates.set(from, next)
    this.#observe()
    this.#schedulePump()
  }

  #schedulePump (): void {
    if (this.#pumpScheduled || this.#stopped) return
    this.#pumpScheduled = true
    // Like Legion's flush: everything that happened in this tick goes out together.
    setImmediate(() => { this.#pump() })
  }

  /** Applies queued local events as one change, notes arrivals, and sends every neighbour what the protocol says. */
  #pump (): void {
    this.#pumpScheduled = false
    if (this.#stopped) return
    if (this.#queued > 0) {
      const n = this.#queued
      this.#queued = 0
      const key = String(this.config.slot)
      // One change per tick (Automerge's advice: batch edits), one increment op per event.
      this.#doc = Automerge.change(this.#doc, d => { const counter = d.c[key]!; for (let i = 0; i < n; i++) counter.increment(1) })
    }
    this.#observe()
    for (const [peer, state] of this.#syncStates) {
      const [next, message] = Automerge.generateSyncMessage(this.#doc, state)
      this.#syncStates.set(peer, next)
      if (message === null) continue
      this.#counters.bytesOut += message.byteLength
      this.#counters.messagesOut++
      // One chain per peer keeps the messages in order.
      const chain = (this.#sendChains.get(peer) ?? Promise.resolve()).then(async () => {
        if (!this.#stopped) await this.node.send(peer, AM_SYNC, message)
      }).catch(() => { /* the peer left; churn drops it from the neighbours */ })
      this.#sendChains.set(peer, chain)
    }
  }

  #counts (): number[] {
    const c = this.#doc.c
    return Array.from({ length: this.config.slots }, (_, s) => c[String(s)]?.value ?? 0)
  }

  #observe (): void {
    const at = now()
    const heads = Automerge.getHeads(this.#doc).sort().join(',')
    const moved = this.#log.observe(this.#counts(), at)
    if (moved || heads !== this.#log.settledKey) {
      this.#log.settledKey = heads
      this.#log.lastChangeAt = at
    }
  }

  emit (count: number): void {
    for (let i = 0; i < count; i++) this.#created.push(now())
    this.#queued += count
    this.#last = now()
    this.#schedulePump()
  }

  async steady (ratePerS: number, durationMs: number): Promise<SteadyResult> {
    return await this.#steady.run(n => { this.emit(n) }, ratePerS, durationMs)
  }

  stopSteady (): void { this.#steady.stop() }

  async connect (peers: Array<{ id: string, addr: string }>): Promise<void> {
    for (const p of peers) {
      if (p.id === this.id || this.#syncStates.has(p.id)) continue
      await this.node.dial(p.addr, { timeoutMs: 10_000 })
      this.#syncStates.set(p.id, Automerge.initSyncState())
    }
    this.#schedulePump()
  }

  disconnect (id: string): void {
    this.#syncStates.delete(id)
    this.#sendChains.delete(id)
  }

  status (): NodeStatus {
    this.#observe()
    const counts = this.#counts()
    const total = sum(counts) + this.#queued
    return {
      settledTotal: total,
      projectedTotal: total,
      outstanding: this.#queued,
      participants: this.#syncStates.size + 1,
      settledKey: Automerge.getHeads(this.#doc).sort().join(','),
      projectedKey: counts.join(','),
      lastChangeAt: this.#log.lastChangeAt
    }
  }

  counters (): NodeCounters { return { ...this.#counters } }
  created (): number[] { return this.#created }
  arrivals (): number[][] { return this.#log.times }
  lastEventAt (): number { return this.#last }
  seenCount (slot: number): number { return this.#log.seen[slot] ?? 0 }

  async stop (): Promise<void> {
    this.#steady.stop()
    this.#stopped = true
    await this.node.stop()
  }
}

/** Starts a benchmark peer. Legion peers found (`new`) or join a cluster; Automerge peers connect later. */
export async function startNode (config: NodeConfig, startup: StartupMode, bootstrap?: Bootstrap): Promise<BenchNode> {
  if (config.system === 'automerge') return await AutomergeNode.start(config)
  return await LegionNode.start(config, startup, bootstrap)
}
