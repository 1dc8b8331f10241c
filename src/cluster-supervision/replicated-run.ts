/**
 * One run of a replicated server's primary: what this peer does while the registry grants it
 * the server's name. The state is not here but in the server's group (every replica holds it;
 * `replicated-spec.ts` steps inputs as the fold applies them), so a run starts with nothing to
 * restore and a failover loses nothing the fold acknowledged. The primary:
 *
 * - initialises the state once (the server's `init`, folded as an `init` event) if no earlier
 *   primary did;
 * - keeps the group at `replicas` participants among the members (rendezvous order), handing
 *   each new replica the whole fold and handing it again until it is reached, and confirms the
 *   generation in the children table once `minReplicas` replicas settled (before that, no call
 *   is answered: an unconfirmed generation may be abandoned);
 * - submits each call's input as an event and answers with its consistent output, once every
 *   replica acknowledged it; a step that threw comes back as the fold's failure
 *   (`EventApplyError`): it records the input in quarantine and answers `PoisonInputError`.
 *
 * At most `queueCapacity` inputs are in flight (`QueueFullError` beyond). A request that finds
 * the run over, or ends with it, is answered `moved`: the caller retries with the same request
 * id on the next primary, and the fold's window of recent outputs answers it once.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import { DEFAULT_DECODE_LIMITS, decodeWith, encodeWith, type Codec } from '../codec/codec.js'
import { jsonCodec, type JsonValue } from '../codec/json.js'
import type { HolderContext } from '../discovery/api.js'
import type { Participant } from '../eventfold/types.js'
import type { Group } from '../peer/group/groups.js'
import type { MembershipView } from '../peer/services.js'
import { BadInputError, BadOutputError, CallTimeoutError, QueueFullError, describeThrown } from '../supervision/errors.js'
import type { ServerSpec } from '../supervision/server.js'
import type { Clock, Timer } from '../time/clock.js'
import type { ClusterSupervisionEvent } from './api.js'
import type { ChildRecord } from './children-spec.js'
import { PoisonInputError, ReplicasUnavailableError } from './errors.js'
import { replicasToAdd } from './placement.js'
import { quarantineRecord, type QuarantineRecord, type ReplicatedEvent, type ReplicatedOutput, type ReplicatedState } from './replicated-spec.js'
import type { Waits } from './waiting.js'
import { errorToWire, type ChildReply, type ChildRequest } from './wire.js'

/** How often a primary with a replica it could not reach (or missing replicas) tries again. */
const REPAIR_EVERY_MS = 1000
/** How long `terminate` may take when a primary stops. */
const TERMINATE_MS = 5000

/** The group of a replicated server, as the run uses it. */
export type ReplicatedGroup = Group<ReplicatedEvent<unknown, unknown>, ReplicatedState<unknown, unknown>, ReplicatedOutput<unknown>>

/** What a primary needs from the service. */
export interface PrimaryRunComponents {
  /** The child as the settled table had it when the run began. */
  readonly record: ChildRecord
  /** Its server definition. */
  readonly server: ServerSpec<unknown, unknown, unknown>
  /** The server's input and output codecs. */
  readonly codecs: { readonly input: Codec<unknown>, readonly output: Codec<unknown> }
  /** The live generation's group. */
  readonly group: ReplicatedGroup
  /** The grant. */
  readonly context: HolderContext<JsonValue>
  /** The cluster's membership. */
  readonly membership: MembershipView
  /** Time. */
  readonly clock: Clock
  /** The service's logger. */
  readonly log: Logger
  /** The service's waits. */
  readonly waits: Waits
  /** The service's event listener. */
  readonly emit: (event: ClusterSupervisionEvent) => void
  /** The child in the settled table now. */
  readonly settled: () => ChildRecord | undefined
  /** Folds `confirm` of the run's generation in the children table. */
  readonly confirm: () => Promise<void>
}

type Phase = 'starting' | 'running' | 'stopping' | 'stopped'

/** One run of a replicated server's primary; see the module comment. */
export class PrimaryRun {
  private phase: Phase = 'starting'
  private inFlight = 0
  private confirming = false
  private readonly adding = new Set<Participant>()
  private readonly unreached = new Set<Participant>()
  private readonly unsubscribes: Array<() => void> = []
  private timer: Timer | undefined
  private readonly started: Promise<void>
  /** Fires when the grant ends or the run is stopped: ends every wait of the run. */
  private readonly ended = new AbortController()
  private readonly signal: AbortSignal
  /** Replies in the making, by request id: a caller's retry joins its first copy. */
  private readonly pending = new Map<string, Promise<ChildReply>>()

  constructor (private readonly c: PrimaryRunComponents) {
    this.signal = AbortSignal.any([c.context.signal, this.ended.signal])
    this.started = this.start()
  }

  /** The child's name. */
  get name (): string {
    return this.c.record.name
  }

  /** Whether it serves (or is about to). */
  get live (): boolean {
    return this.phase === 'starting' || this.phase === 'running'
  }

  private async start (): Promise<void> {
    const { group, server, record, log } = this.c
    try {
      await group.whenHeld({ timeoutMs: 60_000, signal: this.signal })
      if (group.readState().projected.server.kind === 'uninitialised') {
        const state = await server.init({ name: record.name, incarnation: 1, restored: undefined })
        await group.applyConsistent({ t: 'init', state }, { timeoutMs: 60_000, signal: this.signal })
      }
    } catch (err) {
      if (!this.signal.aborted) log.error('%s: the primary could not start: %s', record.name, err)
      if (this.phase === 'starting') { this.phase = 'stopped'; this.c.waits.changed() }
      return
    }
    if (this.phase !== 'starting') return
    this.phase = 'running'
    this.unsubscribes.push(group.subscribe(() => { this.changed() }), this.c.membership.subscribe(() => { this.changed() }))
    this.changed()
  }

  private changed (): void {
    this.c.waits.changed()
    this.repair()
  }

  /** Adds missing replicas, re-hands the fold to unreached ones, and confirms the generation. */
  private repair (): void {
    if (this.phase !== 'running') return
    const { group, membership, record } = this.c
    const s = group.readState()
    const members = membership.members()
    for (const p of replicasToAdd(record.name, record.replicas, members, s.projectedParticipants)) this.hand(p)
    for (const p of [...this.unreached]) {
      if (!members.includes(p) || !s.projectedParticipants.includes(p)) this.unreached.delete(p)
      else this.hand(p)
    }
    const settled = this.c.settled()
    if (settled?.confirmed === false && !this.confirming && this.settledReplicas() >= record.minReplicas) {
      this.confirming = true
      void this.c.confirm().catch(err => { this.c.log('%s: confirming the generation: %s', record.name, err) }).finally(() => { this.confirming = false; this.changed() })
    }
    this.timer?.cancel()
    this.timer = this.unreached.size > 0 || s.projectedParticipants.filter(p => members.includes(p)).length < Math.min(record.replicas, members.length)
      ? this.c.clock.setTimer(REPAIR_EVERY_MS, () => { this.timer = undefined; this.repair() })
      : undefined
  }

  /** Makes `peer` a replica (or hands it the fold again). */
  private hand (peer: Participant): void {
    if (this.adding.has(peer)) return
    this.adding.add(peer)
    this.c.group.participate(peer, { timeoutMs: 5000, signal: this.signal }).then(
      (d) => { if (d.reached.includes(peer)) this.unreached.delete(peer); else this.unreached.add(peer) },
      (err: unknown) => { this.unreached.add(peer); this.c.log('%s: adding replica %s: %s', this.name, peer, err) }
    ).finally(() => { this.adding.delete(peer); if (this.phase === 'running') this.changed() })
  }

  /** Settled participants of the group that are members. */
  private settledReplicas (): number {
    const members = new Set(this.c.membership.members())
    return this.c.group.readState().participants.filter(p => members.has(p)).length
  }

  /** Whether calls may be answered: running, the generation confirmed, enough settled replicas. */
  private ready (): boolean | undefined {
    if (!this.live) return false
    const settled = this.c.settled()
    return this.phase === 'running' && settled?.confirmed === true && this.settledReplicas() >= this.c.record.minReplicas ? true : undefined
  }

  /** Answers one request from the holder endpoint; a copy of a request in the making joins it. */
  async answer (req: ChildRequest): Promise<ChildReply> {
    const known = this.pending.get(req.r)
    if (known !== undefined) return await known
    const reply = this.serve(req)
    this.pending.set(req.r, reply)
    try { return await reply } finally { this.pending.delete(req.r) }
  }

  private async serve (req: ChildRequest): Promise<ChildReply> {
    if (req.k === 'quarantined') {
      if (this.phase !== 'running') return { k: 'moved' }
      return { k: 'ok', b: encodeWith(jsonCodec, this.c.group.readState().infimum.quarantined as unknown as JsonValue) }
    }
    const capacity = this.c.record.local.queueCapacity
    if (this.inFlight >= capacity) return { k: 'error', e: errorToWire(new QueueFullError(capacity)) }
    let input: unknown
    try { input = decodeWith(this.c.codecs.input, req.b, DEFAULT_DECODE_LIMITS) } catch (err) { return { k: 'error', e: errorToWire(new BadInputError(this.name, err)) } }
    this.inFlight++
    try {
      const began = this.c.clock.now()
      const gate = await this.c.waits.until(() => this.ready(), req.t, this.signal)
      if (gate.kind === 'value' && !gate.value) return { k: 'moved' }
      if (gate.kind !== 'value') {
        if (gate.kind === 'aborted' || !this.live) return { k: 'moved' }
        return { k: 'error', e: errorToWire(new ReplicasUnavailableError(this.name, this.settledReplicas(), this.c.record.minReplicas)) }
      }
      const event: ReplicatedEvent<unknown, unknown> = { t: 'input', request: req.r, input }
      if (req.k === 'cast') {
        // Admitted once it is an event; its outcome is folded in the background.
        void this.c.group.applyConsistent(event, { timeoutMs: 60_000 }).catch(err => { this.poisoned(req, err) })
        return { k: 'ok', b: new Uint8Array(0) }
      }
      const remaining = Math.max(1, req.t - (this.c.clock.now() - began))
      let out: ReplicatedOutput<unknown>
      try {
        out = await this.c.group.applyConsistent(event, { timeoutMs: remaining, signal: this.signal })
      } catch (err) {
        const poison = this.poisoned(req, err)
        if (poison !== undefined) return { k: 'error', e: errorToWire(poison) }
        if ((err as Error).name === 'TimeoutError') return { k: 'error', e: errorToWire(new CallTimeoutError(this.name, req.t)) }
        return { k: 'moved' } // ejected, stopped, deposed: the next primary answers the retry once
      }
      if (out.kind !== 'output') return { k: 'moved' }
      try { return { k: 'ok', b: encodeWith(this.c.codecs.output, out.output) } } catch (err) { return { k: 'error', e: errorToWire(new BadOutputError(this.name, err)) } }
    } finally {
      this.inFlight--
    }
  }

  /** If `err` says the input's step threw everywhere: quarantines it and returns the caller's error. */
  private poisoned (req: ChildRequest, err: unknown): PoisonInputError | undefined {
    const e = err as { name?: unknown, eventId?: { counter: number, participant: string }, message?: string }
    if (e?.name !== 'EventApplyError' || e.eventId === undefined) return undefined
    const thrown = (e.message ?? '').replace(/^.*?apply threw: /, '')
    const record: QuarantineRecord = quarantineRecord(req.r, e.eventId, thrown, req.b)
    this.c.log('%s: input %d:%s quarantined: its step threw on every replica: %s', this.name, e.eventId.counter, e.eventId.participant, record.thrown)
    try {
      if (this.live) this.c.group.applyFast({ t: 'quarantine', record })
    } catch (writeErr) {
      this.c.log('%s: recording the quarantine failed: %s', this.name, writeErr)
    }
    return new PoisonInputError(this.name, e.eventId, record.thrown)
  }

  /** Stops serving and calls `terminate` with the settled state (bounded). Idempotent. */
  async stop (): Promise<void> {
    if (this.phase === 'stopping' || this.phase === 'stopped') return
    this.phase = 'stopping'
    this.ended.abort(new Error(`${this.name}: the primary stops`))
    this.timer?.cancel()
    for (const u of this.unsubscribes.splice(0)) u()
    this.c.waits.changed()
    await this.started
    const { server, group, record, clock, log } = this.c
    try {
      const s = group.held() ? group.readState().infimum.server : undefined
      if (s?.kind === 'running' && server.terminate !== undefined) {
        let timer: Timer | undefined
        const late = new Promise<void>(resolve => { timer = clock.setTimer(TERMINATE_MS, () => { log('%s: terminate did not finish within %d ms', record.name, TERMINATE_MS); resolve() }) })
        await Promise.race([Promise.resolve().then(() => server.terminate!({ kind: 'shutdown' }, s.state, { name: record.name, incarnation: 1 })), late]).finally(() => timer?.cancel())
      }
    } catch (err) {
      log('%s: terminate threw: %s', record.name, describeThrown(err))
    }
    this.phase = 'stopped'
    this.c.waits.changed()
  }
}
