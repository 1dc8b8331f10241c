/**
 * Discovery and election as a Legion service (`discovery`): the registry is one cluster-wide
 * group (`discovery/registry`, rules in `registry-spec.ts`), so lookups read this peer's
 * replica, registrations and candidacies are events, a grant is a folded event whose id is the
 * fencing token, and a departed peer's entries go with its UnJoin. On top of the replica, this
 * module keeps what is local to the peer:
 *
 * - the registrations and candidacies the application asked for, re-submitted whenever the
 *   projected registry lacks them (after a rejoin, the peer's earlier entries are gone);
 * - one {@link Role} per candidacy, told after every change which token it may run under: the
 *   settled grant if it names this peer, the peer is a member and its lease holds
 *   (`lease.ts`), else none. A timer re-evaluates exactly when the lease would lapse, so a
 *   holder cut off from the majority stops before the others may eject it;
 * - gap-free watchers (`watch.ts`) and calls addressed to a name (`calls.ts`).
 *
 * Stopping the service stops every run first, then withdraws the candidacies, so a successor is
 * granted only after this peer stopped (hand-over with no overlap).
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { jsonCodec, type JsonValue } from '../codec/json.js'
import { DEFAULT_DECODE_LIMITS, decodeWith, encodeWith, type Codec } from '../codec/codec.js'
import { compareEventIds, type EventId, type Participant } from '../eventfold/types.js'
import { defineService, type ServiceComponents, type ServiceDefinition, type ServiceInstance } from '../peer/services.js'
import type { Group } from '../peer/group/groups.js'
import type { ClusterState, WaitOptions } from '../peer/options.js'
import type { Timer } from '../time/clock.js'
import type {
  Candidacy, Checkpoint, LookupConsistency, Discovery, DiscoveryOptions, ElectOptions, Holder, HolderContext, HolderEndpoint, HolderEvent, Lookup,
  LookupOptions, Registration, RegistryWatchEvent, ServiceEntry, StartFunction
} from './api.js'
import { HolderCalls, type HolderReply, type HolderRequest } from './calls.js'
import { Conditions } from './conditions.js'
import { CandidacyClosedError, ElectionConflictError, FencedError, RegistryInputError } from './errors.js'
import { Role, candidacyHandle } from './holder.js'
import { defaultLeaseWindows, leaseOf, type LeaseWindows } from './lease.js'
import {
  MAX_KIND_BYTES, MAX_MIN_MEMBERS, invalidName, nameRecord, registrySpec,
  type RegistrationRecord, type RegistryEvent, type RegistryOutput, type RegistrySettings, type RegistryState
} from './registry-spec.js'
import { LocalRegistrations } from './registrations.js'
import { resolveDiscovery, type ResolvedDiscovery } from './settings.js'
import { DiscoveryTally, registerDiscoveryMetrics } from './metrics.js'
import { holdersView, registryView } from './views.js'
import { Watchers } from './watch.js'

/** The components the discovery service uses. */
export type DiscoveryNeeds = 'self' | 'log' | 'clock' | 'metrics' | 'membership' | 'groups' | 'messaging' | 'views'
type Needs = Pick<ServiceComponents, DiscoveryNeeds>

/** What `peer.services.discovery` is: {@link Discovery} plus the service's lifecycle. */
export type DiscoveryInstance<M, C> = Discovery<M, C> & Required<Pick<ServiceInstance, 'start' | 'stop'>>

/** The decoded metadata of a registration this peer's codec could not read. */
const UNDECODABLE = Symbol('undecodable')

/** How long `stop()` waits for the withdrawals of held names to settle. */
const WITHDRAW_ON_STOP_MS = 2000

/** A candidacy this peer wants, with where its submission is. */
interface LocalCandidacy<C> {
  readonly role: Role<C>
  submission: 'none' | 'in-flight' | 'settled'
  /** Withdrawing: it must not run meanwhile. */
  resigning: boolean
}

/**
 * The discovery service: registrations, lookups from the local replica with gap-free watches,
 * elections with fencing tokens, and calls addressed to a name. Add it to `startLegion`'s
 * `services` on every peer, with the same options everywhere.
 *
 * @example
 * ```ts
 * const peer = await startLegion({ cluster: 'jobs', spec, startup, services: { discovery: discovery() } })
 * const d = peer.services.discovery
 * d.register('worker', { slots: 4 })
 * d.elect('boss', (ctx) => { const t = setInterval(() => delegate(ctx.token), 100); return () => clearInterval(t) })
 * d.whereis('boss')                         // { name: 'boss', peer, token } once granted
 * d.lookup('worker').entries.length         // every registered worker, settled
 * ```
 */
export function discovery<M = JsonValue, C = JsonValue> (options: DiscoveryOptions<M, C> = {}): ServiceDefinition<DiscoveryInstance<M, C>, DiscoveryNeeds> {
  const resolved = resolveDiscovery(options)
  return defineService({
    name: 'discovery',
    needs: ['self', 'log', 'clock', 'metrics', 'membership', 'groups', 'messaging', 'views'],
    create: (components: Needs): DiscoveryInstance<M, C> => new DiscoveryService<M, C>(components, resolved)
  })
}

/** The service instance; see the module comment and {@link Discovery}. */
class DiscoveryService<M, C> implements DiscoveryInstance<M, C> {
  private readonly registry: Group<RegistryEvent, RegistryState, RegistryOutput>
  private readonly conditions: Conditions
  private readonly watchers: Watchers
  private readonly calls: HolderCalls
  private readonly registrations: LocalRegistrations<M>
  private readonly candidacies = new Map<string, LocalCandidacy<C>>()
  private readonly firstSeen = new Map<Participant, number>()
  private readonly metaCache = new WeakMap<Uint8Array, M | undefined | typeof UNDECODABLE>()
  private readonly allEntries = new WeakMap<readonly RegistrationRecord[], ReadonlyArray<ServiceEntry<M>>>()
  private readonly enabledEntries = new WeakMap<readonly RegistrationRecord[], ReadonlyArray<ServiceEntry<M>>>()
  private readonly unsubscribes: Array<() => void> = []
  private readonly tally = new DiscoveryTally()
  private windows: LeaseWindows | undefined
  private cached: ClusterState<RegistryState> | undefined
  private timer: Timer | undefined
  private phase: 'created' | 'started' | 'stopped' = 'created'

  private readonly settings: RegistrySettings
  private readonly metaCodec: Codec<M>
  private readonly checkpointCodec: Codec<C>

  constructor (private readonly c: Needs, private readonly options: ResolvedDiscovery<M, C>) {
    this.settings = options.registry
    this.metaCodec = options.metaCodec
    this.checkpointCodec = options.checkpointCodec
    this.registry = c.groups.clusterWide('registry', {
      spec: registrySpec(this.settings),
      // Watchers on every peer see a registration settle a round trip after it, not up to
      // acknowledgeDelayMs later (registrations are few).
      acknowledgeAtOnce: true
    })
    this.conditions = new Conditions(c.clock)
    this.registrations = new LocalRegistrations<M>({
      self: c.self,
      conditions: this.conditions,
      settled: () => this.registry.held() ? this.read().infimum : undefined,
      writable: () => this.writable(),
      projected: () => this.read().projected,
      write: (e) => { this.write(e) },
      encodeMeta: (meta) => this.encodeMeta(meta)
    })
    this.watchers = new Watchers(c.log)
    this.calls = new HolderCalls({
      channel: c.messaging.channel<HolderRequest, HolderReply>('holder', { request: jsonCodec as unknown as Codec<HolderRequest>, reply: jsonCodec as unknown as Codec<HolderReply> }),
      whereis: (name) => this.holder(name, 'settled'),
      runningToken: (name) => { const t = this.candidacies.get(name)?.role.runningToken(); return t !== undefined && this.isHolder(name, t) ? t : undefined },
      conditions: this.conditions,
      clock: c.clock,
      limits: DEFAULT_DECODE_LIMITS,
      log: c.log
    })
    c.views.add('holders', { title: 'Elections (settled)', read: () => this.registry.held() ? holdersView(this.read().infimum, name => this.isHolder(name)) : [] })
    c.views.add('registry', { title: 'Registrations (settled)', read: () => this.registry.held() ? registryView(this.read().infimum) : [] })
    const settled = (): RegistryState | undefined => this.registry.held() ? this.read().infimum : undefined
    registerDiscoveryMetrics(c.metrics, { self: c.self, settled, candidacies: () => [...this.candidacies.values()].map(l => l.role.status().kind), tally: this.tally })
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  /** The peer is a participant: follow the registry and the membership. */
  start (): void {
    this.phase = 'started'
    const live = this.c.membership.liveness()
    this.windows = {
      ...defaultLeaseWindows(live.suspectAfterMs),
      ...(this.options.quorumWindowMs !== undefined ? { quorumMs: this.options.quorumWindowMs } : {}),
      ...(this.options.linkWindowMs !== undefined ? { linkMs: this.options.linkWindowMs } : {})
    }
    if (this.windows.quorumMs >= live.suspectAfterMs) this.c.log.error('quorumWindowMs %d is not below suspectAfterMs %d: a holder cut off from the majority may still act when it is ejected', this.windows.quorumMs, live.suspectAfterMs)
    if (this.windows.quorumMs < 2 * live.heartbeatIntervalMs) this.c.log.error('quorumWindowMs %d is under two heartbeat intervals (%d ms): holders will step down whenever a heartbeat is late', this.windows.quorumMs, live.heartbeatIntervalMs)
    this.unsubscribes.push(
      this.registry.subscribe(state => { this.cached = state; this.onChange(false) }),
      this.c.membership.subscribe(() => { this.onChange(true) })
    )
    this.dropInherited()
    this.onChange(true)
  }

  /**
   * A peer that recovered as the same participant finds the registrations and candidacies of
   * its previous process in the registry: they belonged to that process (whose start functions
   * and handlers are gone), so they go now; the application registers and stands again. A
   * joining peer has none (its sponsor recorded its UnJoin before its Join).
   */
  private dropInherited (): void {
    if (!this.writable()) return
    const { names } = this.read().projected
    const self = this.c.self
    for (const name of Object.keys(names).sort()) {
      const { registrations, election } = names[name]!
      for (const r of registrations) if (r.peer === self) this.write({ t: 'unregister', name, local: r.local })
      if (election !== null && (election.holder?.peer === self || election.candidates.some(c => c.peer === self))) this.write({ t: 'withdraw', name, requeue: false })
    }
  }

  /** The peer stops: stop every run, then withdraw (hand-over), then forget everything. */
  async stop (): Promise<void> {
    if (this.phase === 'stopped') return
    const wasStarted = this.phase === 'started'
    this.phase = 'stopped'
    this.timer?.cancel()
    for (const u of this.unsubscribes.splice(0)) u()
    const roles = [...this.candidacies.values()].map(l => l.role)
    await Promise.all(roles.map(async r => { await r.close('the service stopped') }))
    if (wasStarted && this.writable()) {
      const standing = roles.filter(r => this.standsInProjection(r.name))
      await Promise.allSettled(standing.map(async r => await this.writeConsistent({ t: 'withdraw', name: r.name, requeue: false }, { timeoutMs: WITHDRAW_ON_STOP_MS })))
    }
    this.candidacies.clear()
    this.registrations.clear()
    this.watchers.clear()
    this.conditions.changed()
  }

  private onChange (stale = true): void {
    if (stale) this.cached = undefined
    if (this.phase !== 'started') return
    this.submit()
    this.evaluate()
    if (this.registry.held()) {
      const s = this.read()
      this.watchers.publish(s.infimum, s.infimumId)
      this.tally.observe(s.infimum)
    }
    this.conditions.changed()
  }

  // -------------------------------------------------------------------------------------------
  // Registrations

  register (name: string, meta?: M, options: { readonly enabled?: boolean } = {}): Registration<M> {
    this.checkName(name)
    const enabled = options.enabled ?? true
    if (typeof enabled !== 'boolean') throw new TypeError('options.enabled must be a boolean')
    this.checkRunning()
    const registration = this.registrations.add(name, meta, enabled)
    if (this.phase === 'started') this.registrations.submit()
    return registration
  }

  lookup (name: string, options: LookupOptions = {}): Lookup<M> {
    this.checkName(name)
    const consistency = consistencyOf(options.consistency)
    this.tally.lookups++
    if (!this.registry.held()) return { name, consistency, asOf: { counter: 0, participant: '' }, entries: [] }
    const s = this.read()
    const records = nameRecord(consistency === 'settled' ? s.infimum : s.projected, name)?.registrations
    return { name, consistency, asOf: s.infimumId, entries: records === undefined ? [] : this.entries(records, options.includeDrained === true) }
  }

  watch (name: string, listener: (event: RegistryWatchEvent<M>) => void): () => void {
    this.checkName(name)
    if (typeof listener !== 'function') throw new TypeError('listener must be a function')
    const s = this.registry.held() ? this.read() : undefined
    return this.watchers.add(name, s?.infimum, s?.infimumId ?? { counter: 0, participant: '' },
      (state, asOf, reset) => { listener({ kind: 'snapshot', name, asOf, seq: state.changes, reset, entries: this.entries(nameRecord(state, name)?.registrations ?? [], true) }) },
      (c) => {
        if (c.kind !== 'registered' && c.kind !== 'unregistered') return
        const entry = this.entry(c.registration)
        if (entry === undefined) return // metadata this peer cannot read (logged)
        if (c.kind === 'registered') listener({ kind: 'registered', name, id: c.id, seq: c.seq, entry })
        else listener({ kind: 'unregistered', name, id: c.id, seq: c.seq, entry, cause: c.cause })
      },
      (c) => c.name === name && (c.kind === 'registered' || c.kind === 'unregistered'))
  }

  // -------------------------------------------------------------------------------------------
  // Elections

  elect (name: string, start: StartFunction<C>, options: ElectOptions = {}): Candidacy {
    this.checkName(name)
    if (typeof start !== 'function') throw new TypeError('start must be a function')
    if (typeof options !== 'object' || options === null) throw new TypeError('elect options must be an object')
    const kind = options.kind ?? createHash('sha256').update(String(start)).digest('hex').slice(0, 32)
    if (typeof kind !== 'string' || kind === '' || Buffer.byteLength(kind) > MAX_KIND_BYTES) throw new TypeError(`options.kind must be a non-empty string of at most ${MAX_KIND_BYTES} bytes`)
    const minMembers = options.minMembers ?? 1
    if (!Number.isSafeInteger(minMembers) || minMembers < 1 || minMembers > MAX_MIN_MEMBERS) throw new TypeError(`options.minMembers must be an integer from 1 to ${MAX_MIN_MEMBERS}`)
    this.checkRunning()
    const existing = this.candidacies.get(name)
    if (existing !== undefined && !existing.role.closed) {
      if (existing.role.kind !== kind || existing.role.minMembers !== minMembers) throw new ElectionConflictError(name, existing.role.kind, existing.role.minMembers, 'this peer already stands for it with another start function')
      return this.candidacyHandle(existing.role)
    }
    const role = new Role<C>(name, kind, minMembers, (ctx) => { this.tally.runs++; return start(ctx) }, {
      clock: this.c.clock,
      log: this.c.log,
      stopTimeoutMs: this.options.stopTimeoutMs,
      context: (token, signal) => this.holderContext(name, token, signal),
      failed: (r, error) => { void this.resignRole(r, false, 'the start function failed', error, { timeoutMs: WITHDRAW_ON_STOP_MS }) },
      changed: () => { this.scheduleEvaluate() }
    })
    this.candidacies.set(name, { role, submission: 'none', resigning: false })
    this.submit()
    this.evaluate()
    return this.candidacyHandle(role)
  }

  whereis (name: string, options: { readonly consistency?: LookupConsistency } = {}): Holder | undefined {
    this.checkName(name)
    this.tally.whereis++
    return this.holder(name, consistencyOf(options.consistency))
  }

  /** The holder of `name` (a checked name), as `whereis` answers but not counted as the application's lookup. */
  private holder (name: string, consistency: LookupConsistency): Holder | undefined {
    if (!this.registry.held()) return undefined
    const s = this.read()
    const holder = nameRecord(consistency === 'settled' ? s.infimum : s.projected, name)?.election?.holder ?? null
    return holder === null ? undefined : { name, peer: holder.peer, token: holder.token }
  }

  observe (name: string, listener: (event: HolderEvent) => void): () => void {
    this.checkName(name)
    if (typeof listener !== 'function') throw new TypeError('listener must be a function')
    const s = this.registry.held() ? this.read() : undefined
    const holderIn = (state: RegistryState): Holder | undefined => {
      const h = nameRecord(state, name)?.election?.holder ?? null
      return h === null ? undefined : { name, peer: h.peer, token: h.token }
    }
    return this.watchers.add(name, s?.infimum, s?.infimumId ?? { counter: 0, participant: '' },
      (state, asOf, reset) => { listener({ kind: 'current', holder: holderIn(state), asOf, seq: state.changes, reset }) },
      (c) => {
        if (c.kind === 'granted') listener({ kind: 'granted', holder: { name, peer: c.grant.peer, token: c.grant.token }, id: c.id, seq: c.seq })
        else if (c.kind === 'vacated') listener({ kind: 'vacated', holder: { name, peer: c.grant.peer, token: c.grant.token }, cause: c.cause, id: c.id, seq: c.seq })
      },
      (c) => c.name === name && (c.kind === 'granted' || c.kind === 'vacated'))
  }

  isHolder (name: string, token?: EventId): boolean {
    const role = this.candidacies.get(name)?.role
    const running = role?.runningToken()
    if (running === undefined || (token !== undefined && compareEventIds(token, running) !== 0)) return false
    return this.mayRun(name) !== undefined
  }

  isCurrent (name: string, token: EventId): boolean {
    this.checkName(name)
    const h = this.holder(name, 'settled')
    return h !== undefined && compareEventIds(h.token, token) === 0
  }

  endpoint<Req, Rep> (name: string, codecs: { readonly request: Codec<Req>, readonly reply: Codec<Rep> }): HolderEndpoint<Req, Rep> {
    this.checkName(name)
    for (const k of ['request', 'reply'] as const) {
      const codec = codecs?.[k] as Partial<Codec<unknown>> | undefined
      if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function') throw new TypeError(`codecs.${k} must be a Codec { encode, decode }`)
    }
    return this.calls.endpoint(name, codecs)
  }

  private candidacyHandle (role: Role<C>): Candidacy {
    return candidacyHandle(role, this.conditions, () => {
      const local = this.candidacies.get(role.name)
      return local?.role === role && local.submission === 'settled'
    }, async (options) => { await this.resignRole(role, options.requeue === true, 'resigned', undefined, { timeoutMs: WITHDRAW_ON_STOP_MS, ...options }) })
  }

  /**
   * Stops the role's run, then withdraws it: closed, or requeued at the back of the queue. The
   * role does not run again while the withdrawal is on its way, so the next candidate can
   * only be granted after this one stopped.
   */
  private async resignRole (role: Role<C>, requeue: boolean, reason: string, error: Error | undefined, wait: WaitOptions): Promise<void> {
    const local = this.candidacies.get(role.name)
    if (local?.role !== role || role.closed) return
    local.resigning = true
    await role.standDown(reason)
    if (!requeue) {
      await role.close(reason, error)
      if (this.candidacies.get(role.name) === local) this.candidacies.delete(role.name)
    }
    await this.withdraw(role.name, requeue, wait)
    local.resigning = false
    this.onChange()
    this.conditions.changed()
  }

  private async withdraw (name: string, requeue: boolean, wait: WaitOptions): Promise<void> {
    if (!this.writable() || !this.standsInProjection(name)) return
    await this.writeConsistent({ t: 'withdraw', name, requeue }, wait).catch(err => { this.c.log('withdrawing from %s: %s', name, err) })
  }

  private holderContext (name: string, token: EventId, signal: AbortSignal): HolderContext<C> {
    const record = this.registry.held() ? nameRecord(this.read().infimum, name) : undefined
    const ck = record?.election?.checkpoint ?? null
    const checkpoint: Checkpoint<C> | undefined = ck === null ? undefined : { data: decodeWith(this.checkpointCodec, ck.data, DEFAULT_DECODE_LIMITS), token: ck.token, at: ck.at }
    return {
      name,
      token,
      signal,
      checkpoint,
      holding: () => !signal.aborted && this.isHolder(name, token),
      saveCheckpoint: async (data: C, options?: WaitOptions) => {
        const bytes = this.encode(this.checkpointCodec, data, 'checkpoint', this.settings.maxCheckpointBytes)
        if (signal.aborted || !this.writable()) throw new FencedError(name, token, this.holder(name, 'settled'))
        const out = await this.writeConsistent({ t: 'checkpoint', name, token, data: bytes }, options)
        if (!out.ok) throw out.error === 'fenced' ? new FencedError(name, token, out.holder === null ? undefined : { name, peer: out.holder.peer, token: out.holder.token }) : new RegistryInputError(`checkpoint refused: ${out.error}`)
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Keeping the registry in line with what this peer wants

  /** Submits what the projected registry lacks of this peer's registrations and candidacies. */
  private submit (): void {
    if (this.phase !== 'started' || !this.writable()) return
    this.registrations.submit()
    for (const local of this.candidacies.values()) {
      if (local.role.closed || local.resigning || local.submission === 'in-flight') continue
      if (this.standsInProjection(local.role.name)) continue
      void this.stand(local)
    }
  }

  private async stand (local: LocalCandidacy<C>): Promise<void> {
    const role = local.role
    local.submission = 'in-flight'
    try {
      const out = await this.writeConsistent({ t: 'candidate', name: role.name, kind: role.kind, minMembers: role.minMembers }, { timeoutMs: 60_000 })
      if (!out.ok) {
        const error = out.error === 'conflict' ? new ElectionConflictError(role.name, out.kind, out.minMembers) : new RegistryInputError(`candidacy refused: ${out.error}`)
        this.c.log('candidacy for %s refused: %s', role.name, error.message)
        if (this.candidacies.get(role.name)?.role === role) this.candidacies.delete(role.name)
        await role.close('refused', error)
        return
      }
      local.submission = 'settled'
    } catch (err) {
      local.submission = 'none' // ejected or timed out: submit() tries again when it can
      this.c.log('candidacy for %s not settled: %s', role.name, err)
    }
    this.onChange()
  }

  // -------------------------------------------------------------------------------------------
  // Who may run what

  /** The token this peer may run `name` under now (settled grant, membership, lease), or `undefined`. */
  private mayRun (name: string): EventId | undefined {
    if (this.phase !== 'started' || !this.c.membership.isMember() || !this.registry.held()) return undefined
    const grant = nameRecord(this.read().infimum, name)?.election?.holder ?? null
    if (grant === null || grant.peer !== this.c.self) return undefined
    return this.lease().kind === 'held' ? grant.token : undefined
  }

  private lease (): ReturnType<typeof leaseOf> {
    const m = this.c.membership
    const liveness = m.liveness()
    for (const p of liveness.peers) if (!this.firstSeen.has(p.peer)) this.firstSeen.set(p.peer, liveness.now)
    if (this.firstSeen.size > liveness.peers.length * 2 + 16) {
      const current = new Set(liveness.peers.map(p => p.peer))
      for (const p of [...this.firstSeen.keys()]) if (!current.has(p)) this.firstSeen.delete(p)
    }
    return leaseOf({ self: this.c.self, settled: m.settledMembers(), projected: m.members(), liveness, firstSeen: this.firstSeen, windows: this.windows! })
  }

  /** Tells every role which token it may run under, and arms the timer of the next check. */
  private evaluate (): void {
    if (this.phase !== 'started') return
    this.timer?.cancel()
    this.timer = undefined
    let next = Infinity
    const granted = [...this.candidacies.values()].filter(l => !l.role.closed && this.settledGrant(l.role.name) !== undefined)
    const lease = granted.length > 0 ? this.lease() : undefined
    for (const local of this.candidacies.values()) {
      const role = local.role
      const grant = this.settledGrant(role.name)
      const member = this.c.membership.isMember()
      if (local.resigning) continue
      const token = grant !== undefined && member && lease?.kind === 'held' ? grant : undefined
      role.reconcile(token, !member ? 'not a member' : grant === undefined ? 'not granted' : lease?.kind === 'lapsed' ? lease.reason : 'regranted')
    }
    if (lease?.kind === 'held') next = lease.until
    else if (lease?.kind === 'lapsed') next = this.c.clock.now() + Math.max(50, Math.floor(this.c.membership.liveness().heartbeatIntervalMs / 2))
    if (next !== Infinity) this.timer = this.c.clock.setTimer(Math.max(0, next - this.c.clock.now()), () => { this.timer = undefined; this.evaluate(); this.conditions.changed() })
  }

  private evaluating = false
  /** A role changed: evaluate again on the next turn (never re-entrantly). */
  private scheduleEvaluate (): void {
    this.conditions.changed()
    if (this.evaluating) return
    this.evaluating = true
    queueMicrotask(() => { this.evaluating = false; this.evaluate(); this.conditions.changed() })
  }

  private settledGrant (name: string): EventId | undefined {
    if (!this.registry.held()) return undefined
    const h = nameRecord(this.read().infimum, name)?.election?.holder ?? null
    return h !== null && h.peer === this.c.self ? h.token : undefined
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  /**
   * The registry as this peer holds it (the group must be held). Cached between changes:
   * reading a group's state builds its participant lists, which would dominate a lookup. The
   * cache is the state the last change notification carried, dropped whenever this service
   * writes or the membership changes, so a peer's own writes show at once.
   */
  private read (): ClusterState<RegistryState> {
    this.cached ??= this.registry.readState()
    return this.cached
  }

  private write (event: RegistryEvent): void {
    try { this.registry.applyFast(event) } finally { this.cached = undefined }
  }

  private async writeConsistent (event: RegistryEvent, options: WaitOptions | undefined): Promise<RegistryOutput> {
    let pending: Promise<RegistryOutput>
    try { pending = this.registry.applyConsistent(event, options) } finally { this.cached = undefined }
    const out = await pending
    this.cached = undefined // it folded: the settled state moved
    return out
  }

  private writable (): boolean {
    return this.c.membership.isMember() && this.registry.held()
  }

  private standsInProjection (name: string): boolean {
    if (!this.registry.held()) return false
    const e = nameRecord(this.read().projected, name)?.election ?? null
    return e !== null && (e.holder?.peer === this.c.self || e.candidates.some(x => x.peer === this.c.self))
  }

  /**
   * The entries of a registration list, cached by the list's identity: states are immutable,
   * so the list changes identity exactly when its registrations change, and repeated lookups
   * of an unchanged name cost no decoding and no allocation.
   */
  private entries (records: readonly RegistrationRecord[], drained: boolean): ReadonlyArray<ServiceEntry<M>> {
    const cache = drained ? this.allEntries : this.enabledEntries
    let entries = cache.get(records)
    if (entries === undefined) {
      entries = Object.freeze((drained ? records : records.filter(r => r.enabled)).map(r => this.entry(r)).filter((e): e is ServiceEntry<M> => e !== undefined))
      cache.set(records, entries)
    }
    return entries
  }

  private entry (r: RegistrationRecord): ServiceEntry<M> | undefined {
    const meta = this.decodeMeta(r.meta)
    if (meta === UNDECODABLE) return undefined
    return { key: r.key, peer: r.peer, meta: meta as M | undefined, enabled: r.enabled, since: r.since }
  }

  /**
   * Metadata bytes are a flag byte (0: none, 1: a value follows) and the codec's bytes. A value
   * this peer's codec cannot read (a peer on another version, a faulty one) makes its
   * registration invisible here, logged once: lookups never throw for another's data.
   */
  private decodeMeta (bytes: Uint8Array): M | undefined | typeof UNDECODABLE {
    if (this.metaCache.has(bytes)) return this.metaCache.get(bytes)
    let m: M | undefined | typeof UNDECODABLE
    try {
      m = bytes[0] === 0 && bytes.length === 1 ? undefined : bytes[0] === 1 ? decodeWith(this.metaCodec, bytes.subarray(1), DEFAULT_DECODE_LIMITS) : UNDECODABLE
    } catch (err) {
      m = UNDECODABLE
      this.c.log.error('registration metadata this peer cannot decode: %s', err)
    }
    this.metaCache.set(bytes, m)
    return m
  }

  private encodeMeta (meta: M | undefined): Uint8Array {
    if (meta === undefined) return new Uint8Array([0])
    const body = this.encode(this.metaCodec, meta, 'metadata', this.settings.maxMetaBytes - 1)
    const bytes = new Uint8Array(body.length + 1)
    bytes[0] = 1
    bytes.set(body, 1)
    return bytes
  }

  private encode<T> (codec: Codec<T>, value: T, what: string, max: number): Uint8Array {
    let bytes: Uint8Array
    try { bytes = encodeWith(codec, value) } catch (err) { throw new RegistryInputError(`the ${what} codec refused the value: ${(err as Error).message}`, { cause: err }) }
    if (bytes.length > max) throw new RegistryInputError(`the ${what} is ${bytes.length} bytes encoded, more than ${max}`)
    return bytes
  }

  private checkName (name: string): void {
    const why = invalidName(name, this.settings)
    if (why === undefined) return
    if (typeof name !== 'string') throw new TypeError(`name: ${why}`)
    throw new RegistryInputError(`name ${JSON.stringify(name.slice(0, 64))}: ${why}`)
  }

  private checkRunning (): void {
    if (this.phase === 'stopped') throw new CandidacyClosedError('*', 'the discovery service has stopped')
  }
}

function consistencyOf (c: unknown): LookupConsistency {
  if (c === undefined) return 'settled'
  if (c !== 'settled' && c !== 'projected') throw new TypeError(`options.consistency must be 'settled' or 'projected', got ${JSON.stringify(c)}`)
  return c
}

