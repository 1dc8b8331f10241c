/**
 * Supervision across the cluster as a Legion service (`supervision`): children placed on peers
 * and restarted on another when their peer goes, replicated servers whose state is a group
 * among their replicas, and calls by name from any peer. It is built from public parts only:
 *
 * - the **children table**, a cluster-wide group (`children-spec.ts`): which children exist,
 *   their terms, and each replicated child's live generation;
 * - **one election per child** in a registry of the service's own (the `discovery()` service,
 *   built from its definition with this service's components, so its group, channel and views
 *   are `supervision/registry`, `supervision/holder`, `supervision/holders`): the holder runs
 *   the child, its token fences it, its endpoint carries calls to it, and the registry's fold
 *   decides every restart after a departure (docs/ARCHITECTURE.md, "Supervision across the
 *   cluster": why exactly one);
 * - for each replicated child, a **managed group** per generation (`replicated-spec.ts`).
 *
 * After every change of the table, the membership or a child's holder, each peer evaluates
 * every child from the same settled state: whether it stands (`placement.ts`), whether it must
 * found a replicated child's group, whether a candidacy must go (the child was stopped, ended,
 * or this peer no longer holds its replica). Runs are `placed-run.ts` and `replicated-run.ts`;
 * calls are `caller.ts`.
 *
 * Stopping the service stops this peer's runs first (each server's `terminate`, which hands a
 * placed server's state to the next host while this peer still holds the grant), then stops
 * the registry, which withdraws the candidacies: the next host starts after this one stopped.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { DEFAULT_DECODE_LIMITS, decodeWith, encodeWith, type Codec } from '../codec/codec.js'
import { jsonCodec, type JsonValue } from '../codec/json.js'
import type { Candidacy, HolderContext, HolderEndpoint } from '../discovery/api.js'
import { discovery, type DiscoveryInstance } from '../discovery/service.js'
import type { EventId } from '../eventfold/types.js'
import type { Group } from '../peer/group/groups.js'
import type { ClusterState, WaitOptions } from '../peer/options.js'
import { defineService, type ServiceComponents, type ServiceDefinition, type ServiceInstance, type ServiceStopContext } from '../peer/services.js'
import { BadInputError, BadOutputError, UnknownServerError } from '../supervision/errors.js'
import { codecsOf, stateCodecOf, type ServerSpec } from '../supervision/server.js'
import type { Timer } from '../time/clock.js'
import type {
  ChildHolder, ChildRef, ClusterCallOptions, ClusterChildInfo, ClusterSupervision, ClusterSupervisionEvent, ClusterSupervisionOptions,
  ClusterSupervisionStats, PlacedChildOptions, QuarantinedInput, ReplicatedChildOptions, ServerTable
} from './api.js'
import { Caller } from './caller.js'
import { childrenSpec, generationGroupId, type ChildRecord, type ChildrenEvent, type ChildrenOutput, type ChildrenState, type ChildTerms } from './children-spec.js'
import { ChildConflictError } from './errors.js'
import { PlacedRun } from './placed-run.js'
import { designate, founderOf, shouldStand } from './placement.js'
import { PrimaryRun, type ReplicatedGroup } from './replicated-run.js'
import { replicatedCodecs, replicatedSpec } from './replicated-spec.js'
import { placedTerms, replicatedTerms, resolveOptions, type ResolvedOptions } from './terms.js'
import { Waits } from './waiting.js'
import { isChildRequest, replyCodec, requestCodec, type ChildReply, type ChildRequest } from './wire.js'

/** The components the service uses. */
export type SupervisionNeeds = 'self' | 'log' | 'clock' | 'random' | 'metrics' | 'membership' | 'groups' | 'messaging' | 'views'
type Needs = Pick<ServiceComponents, SupervisionNeeds>

/** What `peer.services.supervision` is: {@link ClusterSupervision} plus the service's lifecycle. */
export type ClusterSupervisionInstance<Sv> = ClusterSupervision<Sv> & Required<Pick<ServiceInstance, 'start' | 'stop'>>

/** How often every child is evaluated again even when nothing was notified (a write that failed, a founding to retry). */
const EVALUATE_EVERY_MS = 1000
/** The default bound of a table write the application waits for. */
const WRITE_MS = 30_000

/**
 * The supervision service: placed children, replicated servers, calls by name. Add it to
 * `startLegion`'s `services` on every peer, with the same server names everywhere.
 *
 * @example
 * ```ts
 * const kv = defineServer<KvInput, Record<string, number>, unknown>({ init: () => ({}), step })
 * const peer = await startLegion({ cluster, spec, startup, services: { supervision: clusterSupervision({ servers: { kv } }) } })
 * const sup = peer.services.supervision
 * const cart = await sup.startChild('cart', { server: 'kv' })             // on the least loaded peer
 * await sup.call(cart, { op: 'store', key: 'x', value: 1 })                // from any peer
 * const ledger = await sup.startReplicated('ledger', { server: 'kv', replicas: 3 })
 * await sup.call(ledger, { op: 'store', key: 'y', value: 2 })              // once 3 replicas acknowledged it
 * ```
 */
export function clusterSupervision<Sv extends ServerTable<Sv>> (options: ClusterSupervisionOptions<Sv>): ServiceDefinition<ClusterSupervisionInstance<Sv>, SupervisionNeeds> {
  const resolved = resolveOptions(options)
  return defineService({
    name: 'supervision',
    needs: ['self', 'log', 'clock', 'random', 'metrics', 'membership', 'groups', 'messaging', 'views'],
    create: (components: Needs): ClusterSupervisionInstance<Sv> => new ClusterSupervisionService<Sv>(components, resolved)
  })
}

/** What this peer keeps for one child of the table. */
interface LocalChild {
  readonly name: string
  candidacy: Candidacy | undefined
  run: PlacedRun | PrimaryRun | undefined
  /** A replicated child: its settled generation's group. */
  group: { readonly id: string, readonly generation: EventId, readonly handle: ReplicatedGroup, readonly unsubscribe: () => void } | undefined
  founding: boolean
  /** Quarantine records this peer's replica had when first seen held (`undefined`: not yet). */
  quarantineSeen: number | undefined
  readonly unobserve: () => void
  readonly unhandle: () => void
}

/** The service instance; see the module comment and {@link ClusterSupervision}. */
class ClusterSupervisionService<Sv> implements ClusterSupervisionInstance<Sv> {
  private readonly election: DiscoveryInstance<JsonValue, JsonValue>
  private readonly table: Group<ChildrenEvent, ChildrenState, ChildrenOutput>
  private readonly waits: Waits
  private readonly caller: Caller
  private readonly locals = new Map<string, LocalChild>()
  private readonly defined = new Map<string, ReplicatedGroup>()
  private readonly endpoints = new Map<string, HolderEndpoint<ChildRequest, ChildReply>>()
  private readonly unsubscribes: Array<() => void> = []
  private readonly warned = new Set<string>()
  private readonly counts = { runsStarted: 0, served: 0, quarantined: 0 }
  private phase: 'created' | 'started' | 'stopped' = 'created'
  private cached: ClusterState<ChildrenState> | undefined
  private scheduled = false
  private timer: Timer | undefined

  constructor (private readonly c: Needs, private readonly o: ResolvedOptions) {
    const e = o.election
    // The registry's metrics go under `legion_supervision_registry_...`, apart from the
    // service's own; its lookups count this service's reads of where each child runs.
    this.election = discovery<JsonValue, JsonValue>({
      ...(e.quorumWindowMs !== undefined ? { quorumWindowMs: e.quorumWindowMs } : {}),
      ...(e.linkWindowMs !== undefined ? { linkWindowMs: e.linkWindowMs } : {}),
      ...(e.stopTimeoutMs !== undefined ? { stopTimeoutMs: e.stopTimeoutMs } : {}),
      ...(e.maxCheckpointBytes !== undefined ? { maxCheckpointBytes: e.maxCheckpointBytes } : {})
    }).create({ self: c.self, log: c.log, clock: c.clock, metrics: c.metrics.scoped('registry'), membership: c.membership, groups: c.groups, messaging: c.messaging, views: c.views })
    this.table = c.groups.clusterWide('children', { spec: childrenSpec, acknowledgeAtOnce: true }) // read on every peer as it changes (whereis, placement)
    this.waits = new Waits(c.clock)
    this.caller = new Caller({
      self: c.self,
      clock: c.clock,
      waits: this.waits,
      record: (name) => this.known(name),
      holder: (name) => this.whereis(name),
      endpoint: (name) => this.endpoint(name),
      log: c.log
    })
    c.views.add('children', { title: 'Supervised children (settled)', read: () => this.whichChildren().map(childRow) })
    const m = c.metrics
    m.counter('runs_started', 'Children this peer started running (placed hosts and replicated primaries).', [], x => { x.reset(); x.inc(this.counts.runsStarted) })
    m.counter('child_calls', 'Calls and casts this peer sent to children by name.', [], x => { x.reset(); x.inc(this.caller.sent) })
    m.counter('quarantined', 'Quarantine records of replicated servers folded by the replicas on this peer.', [], x => { x.reset(); x.inc(this.counts.quarantined) })
    m.gauge('children_running', 'Children this peer runs now.', [], x => { x.set(this.runningHere()) })
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  /** The peer is a participant: run the registry, follow the table and the membership. */
  start (): void {
    this.phase = 'started'
    this.election.start()
    this.unsubscribes.push(
      this.table.subscribe(state => { this.cached = state; this.schedule() }),
      this.c.membership.subscribe(() => { this.cached = undefined; this.schedule() })
    )
    this.tick()
    this.schedule()
  }

  private tick (): void {
    this.timer = this.c.clock.setTimer(EVALUATE_EVERY_MS, () => { if (this.phase === 'started') { this.evaluate(); this.tick() } })
  }

  /**
   * Stops this peer's runs (handing state over), then the registry (withdrawing: hand-over).
   * Both happen whether or not the peer leaves: a stopped run's state is worth handing over
   * either way, and the registry withdraws in both cases (discovery's own rule).
   */
  async stop (context: ServiceStopContext = { leaving: true }): Promise<void> {
    if (this.phase === 'stopped') return
    this.phase = 'stopped'
    this.timer?.cancel()
    for (const u of this.unsubscribes.splice(0)) u()
    const runs = [...this.locals.values()].flatMap(l => l.run === undefined ? [] : [l.run])
    await Promise.all(runs.map(async r => { await r.stop() }))
    await this.election.stop(context)
    for (const l of this.locals.values()) { l.unobserve(); l.unhandle(); l.group?.unsubscribe() }
    this.locals.clear()
    this.waits.changed()
  }

  private schedule (): void {
    if (this.scheduled) return
    this.scheduled = true
    queueMicrotask(() => { this.scheduled = false; this.evaluate() })
  }

  // -------------------------------------------------------------------------------------------
  // Evaluation: who stands, who founds, what goes

  private evaluate (): void {
    this.waits.changed()
    if (this.phase !== 'started' || !this.c.membership.isMember() || !this.table.held()) return
    const s = this.read()
    const children = s.infimum.children
    const names = Object.keys(children).sort()
    for (const name of [...this.locals.keys()]) if (children[name] === undefined) this.retire(name)
    const members = this.c.membership.settledMembers()
    const placed = names.map(n => children[n]!).filter(r => r.mode === 'placed' && r.status === 'active')
    const designated = designate(placed.map(record => ({ record, holder: this.election.whereis(record.name)?.peer })), members)
    for (const name of names) {
      try {
        this.reconcile(children[name]!, s.projected.children[name], members, designated.get(name))
      } catch (err) {
        this.c.log.error('%s: evaluating the child failed: %s', name, err)
      }
    }
    this.waits.changed()
  }

  private reconcile (record: ChildRecord, projected: ChildRecord | undefined, members: readonly string[], designated: string | undefined): void {
    const server = this.o.servers.get(record.server)
    if (server === undefined) {
      if (!this.warned.has(record.name)) { this.warned.add(record.name); this.c.log.error('%s: this peer has no server named %s: it never runs the child', record.name, record.server) }
      return
    }
    const local = this.local(record.name)
    const self = this.c.self
    let want: boolean
    if (record.mode === 'placed') {
      want = shouldStand({ self, record, members, holder: this.election.whereis(record.name)?.peer, designated, standbys: this.o.standbys })
    } else {
      this.syncGroup(local, record, projected, server)
      const g = local.group
      want = record.status === 'active' && g !== undefined && g.handle.held() && g.handle.readState().projectedParticipants.includes(self)
      if (record.status === 'active' && record.generation === null && !local.founding && founderOf(record.name, members) === self) void this.found(local, server)
    }
    const open = local.candidacy !== undefined && local.candidacy.status().kind !== 'closed'
    if (want && !open) {
      local.candidacy = this.election.elect(record.name, (ctx) => this.run(local, ctx), { kind: `supervision:${record.mode}:${record.server}` })
    } else if (!want && open && (record.status !== 'active' || record.mode === 'replicated')) {
      this.resign(local)
    }
  }

  /** The local bookkeeping of `name`, made on first use: its observer and its call handler. */
  private local (name: string): LocalChild {
    let l = this.locals.get(name)
    if (l !== undefined) return l
    const unobserve = this.election.observe(name, () => { this.waits.changed(); this.schedule() })
    const unhandle = this.endpoint(name).handle(async (req) => await this.answer(name, req))
    l = { name, candidacy: undefined, run: undefined, group: undefined, founding: false, quarantineSeen: undefined, unobserve, unhandle }
    this.locals.set(name, l)
    return l
  }

  /** `name` left the table: stop running it and forget it. */
  private retire (name: string): void {
    const l = this.locals.get(name)!
    this.locals.delete(name)
    this.resign(l)
    l.unobserve()
    l.unhandle()
    if (l.group !== undefined) { l.group.unsubscribe(); this.dropGroup(l.group.id) }
  }

  private resign (local: LocalChild): void {
    const candidacy = local.candidacy
    local.candidacy = undefined
    void candidacy?.resign({ timeoutMs: 10_000 }).catch(err => { this.c.log('%s: resigning: %s', local.name, err) })
  }

  // -------------------------------------------------------------------------------------------
  // Runs

  /** The start function of a child's election: runs it here for as long as the grant lasts. */
  private run (local: LocalChild, ctx: HolderContext<JsonValue>): (() => Promise<void>) | undefined {
    const record = this.settled(local.name)
    const server = record === undefined ? undefined : this.o.servers.get(record.server)
    if (this.phase !== 'started' || record === undefined || server === undefined || record.status !== 'active') { this.schedule(); return undefined }
    const common = { record, server, context: ctx, clock: this.c.clock, log: this.c.log, waits: this.waits, emit: (e: ClusterSupervisionEvent) => { this.emit(e) } }
    let run: PlacedRun | PrimaryRun
    if (record.mode === 'placed') {
      run = new PlacedRun({ ...common, random: () => this.c.random.next(), ended: (how, reason) => { void this.ended(local.name, ctx.token, how, reason) } })
    } else {
      const g = local.group
      if (g === undefined || record.generation === null || !sameId(g.generation, record.generation)) { this.schedule(); return undefined }
      const generation = g.generation
      run = new PrimaryRun({
        ...common,
        codecs: codecsOf(server),
        group: g.handle,
        membership: this.c.membership,
        settled: () => this.settled(local.name),
        confirm: async () => {
          const out = await this.write({ t: 'confirm', name: local.name, generation }, { timeoutMs: WRITE_MS })
          if (!out.ok) this.c.log('%s: confirming generation refused: %s', local.name, out.reason)
        }
      })
    }
    local.run = run
    this.counts.runsStarted++
    this.emit({ type: 'run-started', child: local.name, mode: record.mode, token: ctx.token })
    this.waits.changed()
    return async () => {
      await run.stop()
      if (local.run === run) local.run = undefined
      this.emit({ type: 'run-stopped', child: local.name, token: ctx.token })
      this.waits.changed()
    }
  }

  /** A placed child ended by itself on this host: record it (if this peer still holds it). */
  private async ended (name: string, token: EventId, how: 'finished' | 'failed', reason: string): Promise<void> {
    if (!this.election.isHolder(name, token)) return
    this.c.log('%s: %s on this host: %s', name, how, reason)
    try {
      await this.write({ t: 'ended', name, how, reason }, { timeoutMs: WRITE_MS })
    } catch (err) {
      this.c.log('%s: recording that it %s failed: %s', name, how, err)
    }
    this.schedule()
  }

  /** A holder endpoint's request for `name`. */
  private async answer (name: string, req: unknown): Promise<ChildReply> {
    if (!isChildRequest(req)) return { k: 'error', e: { name: 'BadInputError', message: 'a malformed request', fields: { server: name } } }
    const run = this.locals.get(name)?.run
    if (run === undefined || !run.live) return { k: 'moved' }
    this.counts.served++
    return await run.answer(req)
  }

  // -------------------------------------------------------------------------------------------
  // Replicated children: groups and founding

  /** Defines the groups of the child's projected and settled generations; follows the settled one. */
  private syncGroup (local: LocalChild, record: ChildRecord, projected: ChildRecord | undefined, server: ServerSpec<unknown, unknown, unknown>): void {
    if (projected?.generation != null) this.group(this.groupId(record.name, projected.generation), server)
    const generation = record.generation
    if (local.group !== undefined && (generation === null || !sameId(local.group.generation, generation))) {
      const old = local.group
      local.group = undefined
      old.unsubscribe()
      this.resign(local) // the generation it stood for is abandoned
      this.dropGroup(old.id)
    }
    if (generation === null || local.group !== undefined) return
    const id = this.groupId(record.name, generation)
    const handle = this.group(id, server)
    local.quarantineSeen = handle.held() ? handle.readState().infimum.quarantinedTotal : undefined
    const unsubscribe = handle.subscribe(state => { this.reportQuarantine(local, state.infimum.quarantinedTotal, state.infimum.quarantined); this.schedule() })
    local.group = { id, generation, handle, unsubscribe }
  }

  private group (id: string, server: ServerSpec<unknown, unknown, unknown>): ReplicatedGroup {
    let g = this.defined.get(id)
    if (g === undefined) {
      const codecs = codecsOf(server)
      const state: Codec<unknown> = server.persistence !== undefined ? stateCodecOf(server.persistence) : jsonCodec as unknown as Codec<unknown>
      g = this.c.groups.managed(id, {
        spec: replicatedSpec(server, { window: this.o.window, maxQuarantined: this.o.maxQuarantined }),
        codecs: replicatedCodecs({ input: codecs.input, state, output: codecs.output })
      })
      this.defined.set(id, g)
    }
    return g
  }

  private dropGroup (id: string): void {
    try { this.c.groups.drop(id) } catch (err) { this.c.log('dropping group %s: %s', id, err) }
  }

  private groupId (name: string, generation: EventId): string {
    return generationGroupId(name, generation, text => createHash('sha256').update(text).digest('hex'))
  }

  /** Founds the child's next generation if this peer's `found` is the one that folds first. */
  private async found (local: LocalChild, server: ServerSpec<unknown, unknown, unknown>): Promise<void> {
    local.founding = true
    try {
      const out = await this.write({ t: 'found', name: local.name }, { timeoutMs: WRITE_MS })
      if (out.ok && out.founder === true && out.generation != null) {
        const id = this.groupId(local.name, out.generation)
        this.group(id, server)
        this.c.groups.found(id)
        this.c.log('%s: founded generation %d:%s', local.name, out.generation.counter, out.generation.participant)
      }
    } catch (err) {
      this.c.log('%s: founding failed: %s', local.name, err)
    } finally {
      local.founding = false
      this.schedule()
    }
  }

  /**
   * Reports the quarantine records this replica folded since it last looked. A replica added
   * after some were folded reports only later ones (the earlier ones were reported where they
   * were folded, and `quarantined(name)` lists them all).
   */
  private reportQuarantine (local: LocalChild, total: number, records: readonly QuarantinedInput[]): void {
    if (local.quarantineSeen === undefined) { local.quarantineSeen = total; return }
    if (total <= local.quarantineSeen) return
    const fresh = records.slice(Math.max(0, records.length - (total - local.quarantineSeen)))
    local.quarantineSeen = total
    for (const record of fresh) {
      this.counts.quarantined++
      this.c.log('%s: input %d:%s quarantined on every replica (its step threw): %s', local.name, record.event.counter, record.event.participant, record.thrown)
      this.emit({ type: 'quarantined', child: local.name, record })
    }
  }

  // -------------------------------------------------------------------------------------------
  // The application's API

  async startChild<K extends keyof Sv & string> (name: string, options: PlacedChildOptions<K>): Promise<ChildRef<never, never>> {
    return await this.declare(name, placedTerms(name, options, this.o.servers), options)
  }

  async startReplicated<K extends keyof Sv & string> (name: string, options: ReplicatedChildOptions<K>): Promise<ChildRef<never, never>> {
    return await this.declare(name, replicatedTerms(name, options, this.o.servers), options)
  }

  private async declare (name: string, terms: ChildTerms, wait: WaitOptions): Promise<ChildRef<never, never>> {
    const out = await this.write({ t: 'start', name, terms }, { timeoutMs: wait.timeoutMs ?? WRITE_MS, ...(wait.signal !== undefined ? { signal: wait.signal } : {}) })
    if (!out.ok) {
      if (out.error === 'conflict') throw new ChildConflictError(name, out.reason)
      throw new TypeError(`child ${JSON.stringify(name)} refused: ${out.reason}`)
    }
    return Object.freeze({ name })
  }

  async stopChild (name: string, options: WaitOptions = {}): Promise<void> {
    const out = await this.write({ t: 'stop', name }, { timeoutMs: WRITE_MS, ...options })
    if (!out.ok) throw out.error === 'unknown' ? new UnknownServerError(name) : new TypeError(`stopChild: ${out.reason}`)
  }

  async restartChild (name: string, options: WaitOptions = {}): Promise<void> {
    const out = await this.write({ t: 'restart', name }, { timeoutMs: WRITE_MS, ...options })
    if (!out.ok) throw out.error === 'unknown' ? new UnknownServerError(name) : new TypeError(`restartChild: ${out.reason}`)
  }

  readonly call = (child: string | ChildRef<unknown, unknown>, input: unknown, options?: ClusterCallOptions): Promise<never> => this.send(child, input, 'call', options) as Promise<never>

  readonly cast = async (child: string | ChildRef<unknown, unknown>, input: unknown, options?: ClusterCallOptions): Promise<void> => { await this.send(child, input, 'cast', options) }

  private async send (child: string | ChildRef<unknown, unknown>, input: unknown, kind: 'call' | 'cast', options: ClusterCallOptions = {}): Promise<unknown> {
    const name = typeof child === 'string' ? child : (child as Partial<ChildRef<unknown, unknown>>)?.name
    if (typeof name !== 'string') throw new TypeError(`${kind}: child must be a name or a ChildRef`)
    const { timeoutMs, signal } = callOptions(options, this.o.callTimeoutMs, kind)
    const record = this.known(name)
    const server = record === undefined ? undefined : this.o.servers.get(record.server)
    if (server === undefined) throw new UnknownServerError(name)
    const codecs = codecsOf(server)
    let body: Uint8Array
    try { body = encodeWith(codecs.input, input) } catch (err) { throw new BadInputError(name, err) }
    const reply = await this.caller.request(name, kind, body, timeoutMs, signal)
    if (kind === 'cast') return undefined
    try { return decodeWith(codecs.output, reply, DEFAULT_DECODE_LIMITS) } catch (err) { throw new BadOutputError(name, err) }
  }

  whereis (name: string): ChildHolder | undefined {
    if (this.phase !== 'started') return undefined
    const h = this.election.whereis(name)
    return h === undefined ? undefined : { peer: h.peer, token: h.token }
  }

  whichChildren (): ClusterChildInfo[] {
    if (!this.table.held()) return []
    const children = this.read().infimum.children
    return Object.keys(children).sort().map(name => {
      const r = children[name]!
      const l = this.locals.get(name)
      const held = l?.group?.handle.held() === true ? l.group.handle.readState() : undefined
      return {
        name,
        server: r.server,
        mode: r.mode,
        restart: r.restart,
        status: r.status,
        reason: r.reason ?? undefined,
        holder: this.whereis(name),
        runningHere: l?.run?.live === true,
        local: l?.run instanceof PlacedRun ? l.run.local() : undefined,
        replicas: held?.participants,
        steps: held?.infimum.steps,
        quarantinedTotal: held?.infimum.quarantinedTotal
      }
    })
  }

  async quarantined (name: string, options: ClusterCallOptions = {}): Promise<QuarantinedInput[]> {
    const { timeoutMs, signal } = callOptions(options, this.o.callTimeoutMs, 'quarantined')
    const record = this.known(name)
    if (record === undefined) throw new UnknownServerError(name)
    if (record.mode !== 'replicated') return []
    const g = this.locals.get(name)?.group?.handle
    if (g?.held() === true) return [...g.readState().infimum.quarantined]
    const bytes = await this.caller.request(name, 'quarantined', new Uint8Array(0), timeoutMs, signal)
    const records = decodeWith(jsonCodec, bytes, DEFAULT_DECODE_LIMITS)
    return Array.isArray(records) ? records as unknown as QuarantinedInput[] : []
  }

  stats (): ClusterSupervisionStats {
    return {
      children: this.table.held() ? Object.keys(this.read().infimum.children).length : 0,
      runningHere: this.runningHere(),
      runsStarted: this.counts.runsStarted,
      calls: this.caller.sent,
      served: this.counts.served,
      quarantined: this.counts.quarantined
    }
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  private runningHere (): number {
    let n = 0
    for (const l of this.locals.values()) if (l.run?.live === true) n++
    return n
  }

  private endpoint (name: string): HolderEndpoint<ChildRequest, ChildReply> {
    let e = this.endpoints.get(name)
    if (e === undefined) { e = this.election.endpoint(name, { request: requestCodec, reply: replyCodec }); this.endpoints.set(name, e) }
    return e
  }

  /** The table as this peer holds it, cached between its change notifications. */
  private read (): ClusterState<ChildrenState> {
    this.cached ??= this.table.readState()
    return this.cached
  }

  private settled (name: string): ChildRecord | undefined {
    return this.table.held() ? this.read().infimum.children[name] : undefined
  }

  /**
   * The child as callers find it: settled, or else projected (declared on another peer, and not
   * settled here yet: its holder will be, and the call waits for it).
   */
  private known (name: string): ChildRecord | undefined {
    if (!this.table.held()) return undefined
    const s = this.read()
    return s.infimum.children[name] ?? s.projected.children[name]
  }

  private async write (event: ChildrenEvent, options: WaitOptions): Promise<ChildrenOutput> {
    let pending: Promise<ChildrenOutput>
    try { pending = this.table.applyConsistent(event, options) } finally { this.cached = undefined }
    const out = await pending
    this.cached = undefined
    this.schedule()
    return out
  }

  private emit (event: ClusterSupervisionEvent): void {
    if (this.o.onEvent === undefined) return
    try { this.o.onEvent(event) } catch (err) { this.c.log.error('an onEvent listener threw: %s', err) }
  }
}

function sameId (a: EventId, b: EventId): boolean {
  return a.counter === b.counter && a.participant === b.participant
}

function callOptions (options: ClusterCallOptions, defaultTimeoutMs: number, fn: string): { timeoutMs: number, signal: AbortSignal | undefined } {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${fn}: options must be an object`)
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) throw new TypeError(`${fn}: options.timeoutMs must be a finite number of milliseconds > 0`)
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError(`${fn}: options.signal must be an AbortSignal`)
  return { timeoutMs, signal: options.signal }
}

/** A child as a flat row for the operator's view. */
function childRow (c: ClusterChildInfo): Record<string, string | number | boolean | null> {
  return {
    name: c.name,
    server: c.server,
    mode: c.mode,
    status: c.status,
    holder: c.holder?.peer ?? null,
    token: c.holder === undefined ? null : `${c.holder.token.counter}:${c.holder.token.participant}`,
    runningHere: c.runningHere,
    localStatus: c.local?.status.kind ?? null,
    restartsHere: c.local?.restarts ?? null,
    replicas: c.replicas?.length ?? null,
    quarantined: c.quarantinedTotal ?? null
  }
}
