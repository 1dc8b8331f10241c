/**
 * One Legion peer: the EventFold of this participant, wired to libp2p and to storage.
 *
 * Every external event (a local apply, a merged diff, a join) mutates the fold at once; one
 * `flush` per tick then decides what leaves the process. Its invariants:
 * 1. Nothing this peer acknowledged leaves it before it is persisted: a flush saves the fold
 *    first and only then sends; answers to sync, push and join requests wait for the save
 *    that covers them.
 * 2. Everything applied in one tick travels in one batch: one Diff, sent directly to each
 *    participant in small clusters (below `directFanout`) or published once on gossipsub.
 *    A batch goes out only when this peer has news of its own (events or memberships it
 *    made, acknowledgements it gave): each peer's own batches already reach everyone.
 * 3. A batch carries every outstanding event id with its acknowledgements, and the
 *    body only of events this peer has not sent before: its own at once, another's (a relay)
 *    only once the event has waited here an interval for someone. A receiver missing a body, or
 *    missing events below the sender's infimum, learns it from the merge error and pulls a
 *    sync from the sender over a direct stream; periodic pulls from a random participant
 *    repair anything else that was lost.
 * 4. Messages from peers that are not (projected) participants are dropped and counted: an
 *    ejected peer is fenced as soon as its UnJoin is known here. Answers to our own requests
 *    are fenced the same way, and dropped if the fold they were asked for has been replaced
 *    by a rejoin meanwhile (`epoch`).
 * 5. Failure detection (`failure-detector.ts`): anything accepted from a participant counts
 *    as hearing from it; every heartbeat tick sends each other participant a heartbeat with
 *    this peer's suspects, and ejects a participant only when a strict majority of the
 *    infimum participants suspects it. A `not-participant` refusal of a heartbeat means this
 *    peer was ejected only if the refuser had acknowledged its latest Join before the
 *    heartbeat left (`joinWitnesses`); otherwise the refuser may simply not know the Join yet.
 *
 * @module
 */
// First: applies the Promise.withResolvers polyfill before anything from libp2p loads.
import '../transport/polyfill.js'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { logger } from '@libp2p/logger'
import type { PrivateKey } from '@libp2p/interface'
import { createTransportNode, type TransportNode, AbortError } from '../transport/index.js'
import { EventFold } from '../eventfold/event-fold.js'
import { eventSignatures } from './event-signatures.js'
import { compareEventIds, eventIdKey, type ConsistentOutput, type Diff, type EventFoldOptions, type EventFoldSnapshot, type EventId, type MergeOptions, type Participant, type UpdateResult } from '../eventfold/types.js'
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, encodeWith, decodeWith } from '../codec/codec.js'
import { jsonCodec } from '../codec/json.js'
import { MessageKind, decodeDiff, decodeEventFold, encodeDiff, encodeEventFold, type FoldCodecs, type DiffContext } from '../codec/eventfold.js'
import { WireKind, decodeWireMessage, encodeWireMessage, peekKind, type EncodedOutput, type RefusalCode } from '../codec/wire.js'
import { DecodeError } from '../codec/errors.js'
import { ForgedEventError } from '../eventfold/errors.js'
import type { PeerStorage } from '../storage/storage.js'
import { ConsistencyTimeoutError, EjectedError, JoinError, NotParticipantError, RecoverError, StoppedError } from './errors.js'
import { FailureDetector } from './failure-detector.js'
import type {
  AutoEjectOptions, ClusterState, Dissemination, DivergentPeer, Legion, LegionCounters, LegionOptions, LegionStats, WaitOptions
} from './options.js'
import { protocolIds, type ProtocolIds } from './protocols.js'
import { RateLimiter } from './rate-limiter.js'
import { ParticipantFingerprints } from './participant-names.js'

const log = logger('legion:runtime')

const DEFAULT_CONSISTENT_TIMEOUT_MS = 30_000
const DEFAULT_CALL_TIMEOUT_MS = 10_000
const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

interface Pending<O> {
  readonly id: EventId
  readonly resolve: (output: O) => void
  readonly reject: (err: Error) => void
  readonly cleanup: () => void
}

/**
 * Starts a Legion peer and resolves once it is a participant (new, joined or recovered).
 *
 * @example
 * ```ts
 * const spec = partitionTableSpec(64)
 * const a = await startLegion({ cluster: 'demo', spec, startup: { mode: 'new' } })
 * const b = await startLegion({ cluster: 'demo', spec, startup: { mode: 'join', peers: a.multiaddrs() } })
 * await b.applyConsistent({ type: 'rebalance' })
 * console.log(b.readState().infimum)
 * await b.stop(); await a.stop()
 * ```
 */
export async function startLegion<E, S, O> (options: LegionOptions<E, S, O>): Promise<Legion<E, S, O>> {
  const runtime = new LegionRuntime(options)
  try {
    await runtime.start()
  } catch (err) {
    await runtime.stop({ leave: false }).catch(() => {})
    throw err
  }
  return runtime
}

class LegionRuntime<E, S, O> implements Legion<E, S, O> {
  readonly clusterName: string
  private readonly options: LegionOptions<E, S, O>
  private readonly codecs: FoldCodecs<E, S, O>
  private readonly storage: PeerStorage | undefined
  private readonly limits: DecodeLimits
  private readonly protocols: ProtocolIds
  private readonly intervalMs: number
  private readonly mode: 'push' | 'periodic'
  private readonly forwardOutputs: boolean
  private readonly directFanout: number
  private readonly freezeStates: boolean
  private readonly maxMessageBytes: number
  private readonly heartbeatIntervalMs: number
  private readonly autoEject: Required<AutoEjectOptions> | false
  private readonly rejoinWhenEjected: boolean
  private readonly allowPeers: ((peer: Participant) => boolean) | undefined

  private node!: TransportNode
  private fold: EventFold<E, S, O> | undefined
  private privateKey!: PrivateKey
  /** How every fold of this peer is made: signing its events and checking everyone's. */
  private foldOptions!: EventFoldOptions<E, O>
  private stopped = false

  // `version` counts every change of the fold (each is saved and shown to subscribers);
  // `news` says whether any of them is this peer's own news (events or memberships it made,
  // acknowledgements it gave), the only thing it needs to send: see invariant 3.
  private version = 0
  private savedVersion = 0
  private notifiedVersion = 0
  private news = false
  private flushScheduled = false
  private flushing: Promise<void> | undefined
  private readonly saveWaiters: Array<{ version: number, resolve: () => void }> = []

  private readonly pending = new Map<string, Pending<O>>()
  private readonly publishedBodies = new Set<string>()
  /** When this peer first gossiped each outstanding event of another's (`performance.now()`). */
  private readonly heldSince = new Map<string, number>()
  private readonly fingerprints = new ParticipantFingerprints()
  private readonly outputsToForward = new Map<Participant, EncodedOutput[]>()
  private readonly syncing = new Set<Participant>()
  private readonly listeners = new Set<(state: ClusterState<S>) => void>()
  private readonly progress = new Map<Participant, { key: string, since: number }>()
  private readonly fullSyncLimiter = new RateLimiter(20, 10)
  private readonly joinLimiter = new RateLimiter(5, 5)
  private participantsCache: { version: number, set: ReadonlySet<Participant> } | undefined
  private timer: ReturnType<typeof setInterval> | undefined
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined

  // Failure detection and membership of this peer (invariant 5).
  private detector!: FailureDetector
  private readonly suspectAfterMs: number
  private readonly heartbeatsInFlight = new Set<Participant>()
  private readonly ejecting = new Set<Participant>()
  /** Outstanding Joins already seen: each vouches once that its peer was alive. */
  private seenJoins = new Set<string>()
  /** Peers known to have merged this peer's latest Join: all of them once it folded. */
  private joinWitnesses: ReadonlySet<Participant> | 'all' = new Set()
  /** This peer knows it was ejected and has not been admitted again. */
  private ejected = false
  private rejoining: Promise<void> | undefined
  /** Participants that refused this peer as a non-participant: who can admit it again. */
  private readonly sponsors = new Set<Participant>()
  /** Incremented when a rejoin replaces the fold: answers to requests made before are dropped. */
  private epoch = 0
  private leaving = false
  /** Participants whose whole fold showed a settled history this peer does not share. */
  private readonly divergedFrom = new Set<Participant>()
  /** A participant's diff showed it waiting for events we folded: re-announce at the next tick. */
  private peersBehind = false
  private readonly unsubscribes: Array<() => void> = []
  private readonly counters: LegionCounters = {
    eventsApplied: 0,
    eventsFolded: 0,
    diffMerges: 0,
    fullMerges: 0,
    mergeRefusals: 0,
    syncsRequested: 0,
    syncsServed: 0,
    outputsForwarded: 0,
    droppedUndecodable: 0,
    droppedWrongCluster: 0,
    droppedNonParticipant: 0,
    droppedForged: 0,
    divergences: 0,
    droppedDenied: 0,
    heartbeatsSent: 0,
    autoEjections: 0,
    timesEjected: 0,
    rejoins: 0,
    droppedRateLimited: 0,
    droppedFrames: 0,
    refusedConnections: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0
  }

  constructor (options: LegionOptions<E, S, O>) {
    this.options = options
    this.clusterName = options.cluster
    // Without codecs the types must be JSON-like; the cast states that contract.
    this.codecs = options.codecs ?? ({ event: jsonCodec, state: jsonCodec, output: jsonCodec } as unknown as FoldCodecs<E, S, O>)
    this.storage = options.storage
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    this.limits = { ...DEFAULT_DECODE_LIMITS, maxBytes: this.maxMessageBytes }
    this.protocols = protocolIds(options.cluster)
    this.intervalMs = options.propagation?.intervalMs ?? 1000
    this.mode = options.propagation?.mode ?? 'push'
    this.forwardOutputs = options.propagation?.forwardOutputs ?? true
    this.directFanout = options.propagation?.directFanout ?? 64
    this.freezeStates = options.freezeStates ?? process.env.NODE_ENV !== 'production'
    const fd = options.failureDetection ?? {}
    this.heartbeatIntervalMs = fd.heartbeatIntervalMs ?? 1000
    this.suspectAfterMs = fd.suspectAfterMs ?? 3000
    this.autoEject = fd.autoEject === false
      ? false
      : { backupDelayMs: fd.autoEject?.backupDelayMs ?? 2 * this.heartbeatIntervalMs, timeoutMs: fd.autoEject?.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS }
    this.rejoinWhenEjected = fd.rejoin ?? true
    const allow = options.allowPeers
    if (typeof allow === 'function') this.allowPeers = allow
    else if (allow !== undefined) { const set = new Set(allow); this.allowPeers = peer => set.has(peer) }
  }

  get self (): Participant {
    return this.node.peerId
  }

  // -----------------------------------------------------------------------------------------
  // Start-up

  async start (): Promise<void> {
    const startup = this.options.startup
    let recovered: EventFoldSnapshot<E, S, O> | undefined
    if (startup.mode === 'recover') {
      const record = await this.loadRecord()
      try {
        this.privateKey = privateKeyFromProtobuf(record.privateKey)
        recovered = decodeEventFold(record.fold, this.codecs)
      } catch (err) {
        throw new RecoverError(`the saved state is unreadable: ${(err as Error).message}`, { cause: err })
      }
      if (this.options.privateKey !== undefined && !this.options.privateKey.equals(this.privateKey)) {
        throw new RecoverError('the private key given differs from the one saved with this state')
      }
    } else {
      this.privateKey = this.options.privateKey ?? await generateKeyPair('Ed25519')
    }

    try {
      this.foldOptions = { freezeStates: this.freezeStates, signatures: eventSignatures(this.clusterName, this.privateKey, this.codecs) }
    } catch (err) {
      throw new TypeError(`privateKey: ${(err as Error).message}`, { cause: err })
    }

    this.node = await createTransportNode({
      transport: this.options.transport ?? 'tcp',
      ...(this.options.listen !== undefined ? { listen: this.options.listen } : {}),
      privateKey: this.privateKey,
      maxFrameBytes: this.maxMessageBytes,
      logPrefix: 'legion',
      ...(this.options.clusterSecret !== undefined ? { clusterSecret: this.options.clusterSecret } : {}),
      ...(this.options.allowPeers !== undefined ? { allowPeers: this.options.allowPeers } : {})
    })
    this.detector = new FailureDetector(this.self, {
      suspectAfterMs: this.suspectAfterMs,
      backupDelayMs: this.autoEject === false ? 0 : this.autoEject.backupDelayMs
    })
    await this.registerHandlers()

    if (startup.mode === 'new') {
      this.fold = EventFold.create(this.clusterName, this.self, this.options.spec, this.foldOptions)
      this.changed()
    } else if (startup.mode === 'recover') {
      this.fold = EventFold.fromSnapshot(recovered!, this.self, this.options.spec, this.foldOptions)
      this.afterUpdate(this.fold.acknowledge())
      this.changed()
      for (const addr of startup.peers ?? []) await this.node.dial(addr, { timeoutMs: this.options.joinTimeoutMs ?? 10_000 }).catch(err => { log('recover: cannot dial %s: %s', addr, err) })
    } else {
      await this.join(startup.peers)
    }
    await this.persisted(this.version)
    this.timer = setInterval(() => { this.tick() }, this.intervalMs)
    this.heartbeatTimer = setInterval(() => { this.heartbeatTick() }, this.heartbeatIntervalMs)
    // Pull a sync from everyone we are connected to, so a recovered peer catches up at once,
    // and tell them we are here (a recovered peer also learns at once if it was ejected).
    for (const peer of this.node.connectedPeers()) void this.requestSync(peer, false)
    this.heartbeatTick()
  }

  private async loadRecord (): Promise<{ privateKey: Uint8Array, fold: Uint8Array }> {
    if (this.storage === undefined) throw new RecoverError('recover needs the storage the peer saved to')
    let record
    try {
      record = await this.storage.load()
    } catch (err) {
      throw new RecoverError(`cannot read the saved state: ${(err as Error).message}`, { cause: err })
    }
    if (record === undefined) throw new RecoverError('nothing was saved in this storage')
    if (record.cluster !== this.clusterName) {
      throw new RecoverError(`the saved state belongs to cluster ${JSON.stringify(record.cluster)}, not ${JSON.stringify(this.clusterName)}`)
    }
    return record
  }

  private async join (peers: readonly string[]): Promise<void> {
    const attempts = new Map<string, string>()
    const timeoutMs = this.options.joinTimeoutMs ?? 10_000
    for (const addr of peers) {
      try {
        const sponsor = await this.node.dial(addr, { timeoutMs })
        const request = encodeWireMessage({ kind: 'joinRequest', origin: this.clusterName, addresses: this.node.multiaddrs() })
        const answer = decodeWireMessage(await this.node.request(sponsor, this.protocols.join, request, { timeoutMs }), this.limits)
        if (answer.kind === 'refusal') { attempts.set(addr, `refused (${answer.code}): ${answer.message}`); continue }
        if (answer.kind !== 'joinAccepted') { attempts.set(addr, `unexpected answer ${answer.kind}`); continue }
        const snapshot = decodeEventFold(answer.fold, this.codecs, this.limits)
        if (snapshot.origin !== this.clusterName) { attempts.set(addr, `sponsor is in cluster ${snapshot.origin}`); continue }
        this.fold = EventFold.fromSnapshot(snapshot, this.self, this.options.spec, this.foldOptions)
        this.afterUpdate(this.fold.acknowledge())
        this.changed()
        // Connect to everyone the sponsor knows, so gossip and direct streams reach them.
        for (const p of answer.peers) {
          if (p.id === this.self || p.addresses.length === 0) continue
          void this.dialAny(p.addresses)
        }
        return
      } catch (err) {
        attempts.set(addr, err instanceof Error ? `${err.name}: ${err.message}` : String(err))
      }
    }
    throw new JoinError(attempts)
  }

  private async dialAny (addresses: readonly string[]): Promise<void> {
    for (const a of addresses) {
      try { await this.node.dial(a, { timeoutMs: 5000 }); return } catch { /* try the next address */ }
    }
  }

  private async registerHandlers (): Promise<void> {
    const p = this.protocols
    // Every message passes `admit` first: counted, refused if `allowPeers` no longer allows
    // its sender, and otherwise evidence that the sender is alive (invariant 5).
    const denied = (): never => { throw new Error('this peer does not accept messages from you (allowPeers)') }
    this.unsubscribes.push(this.node.subscribe(p.topic, (from, data) => { if (this.admit(from, data)) this.onGossip(from, data) }))
    await this.node.handle(p.sync, async (from, payload) => this.admit(from, payload) ? await this.onSyncRequest(from, payload) : denied())
    await this.node.handle(p.join, async (from, payload) => this.admit(from, payload) ? await this.onJoinRequest(from, payload) : denied())
    await this.node.handle(p.push, async (from, payload) => this.admit(from, payload) ? await this.onPush(from, payload) : denied())
    await this.node.handle(p.heartbeat, (from, payload) => this.admit(from, payload) ? this.onHeartbeat(from, payload) : denied())
    await this.node.handle(p.delta, (from, payload) => { if (this.admit(from, payload)) this.onGossip(from, payload); return undefined })
    await this.node.handle(p.outputs, (from, payload) => { if (this.admit(from, payload)) this.onOutputs(from, payload); return undefined })
    await this.node.handle(p.call, async (from, payload) => {
      if (!this.admit(from, payload)) denied()
      if (!this.isParticipant(from)) { this.counters.droppedNonParticipant++; throw new NotParticipantError(from, 'is not a participant: call refused') }
      if (this.options.onCall === undefined) throw new Error('this peer takes no calls')
      return await this.options.onCall(from, payload)
    })
    await this.node.handle(p.cast, (from, payload) => {
      if (!this.admit(from, payload)) return undefined
      if (!this.isParticipant(from)) { this.counters.droppedNonParticipant++; log('dropped a cast from non-participant %s', from); return undefined }
      try { this.options.onCast?.(from, payload) } catch (err) { log.error('cast handler threw: %s', err) }
      return undefined
    })
  }

  /**
   * Counts an incoming message and decides whether to look at it: not if `allowPeers` no
   * longer allows the sender (its connections are then closed). An admitted message is
   * evidence that its sender is alive.
   */
  private admit (from: Participant, payload: Uint8Array): boolean {
    this.countIn(payload)
    if (!this.allows(from)) {
      this.counters.droppedDenied++
      void this.node.hangUp(from).catch(() => {})
      return false
    }
    this.detector.heard(from, performance.now())
    return true
  }

  /** Whether `allowPeers` (which may change its answer over time) allows `peer`. A throw denies. */
  private allows (peer: Participant): boolean {
    if (this.allowPeers === undefined) return true
    try { return this.allowPeers(peer) === true } catch { return false }
  }

  // -----------------------------------------------------------------------------------------
  // Shared state

  applyFast (event: E): O {
    const fold = this.requireMember()
    const r = fold.event(event)
    this.counters.eventsApplied++
    this.afterUpdate(r)
    // The fold survived the throw (the event becomes a failure); the caller still sees it.
    if (r.outcome.status === 'threw') throw r.outcome.error
    return r.outcome.output
  }

  async applyConsistent (event: E, options: WaitOptions = {}): Promise<O> {
    const fold = this.requireMember()
    const { signal } = options
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    const timeoutMs = options.timeoutMs ?? DEFAULT_CONSISTENT_TIMEOUT_MS
    const r = fold.event(event)
    this.counters.eventsApplied++
    if (r.outcome.status === 'threw') {
      this.afterUpdate(r)
      throw r.outcome.error
    }
    const key = eventIdKey(r.id)
    const promise = new Promise<O>((resolve, reject) => {
      const timer = setTimeout(() => { settle(); reject(new ConsistencyTimeoutError(r.id, timeoutMs)) }, timeoutMs)
      const onAbort = (): void => { settle(); reject(new AbortError(undefined, { cause: signal?.reason })) }
      signal?.addEventListener('abort', onAbort, { once: true })
      const settle = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.pending.delete(key)
      }
      this.pending.set(key, {
        id: r.id,
        resolve: (o) => { settle(); resolve(o) },
        reject: (e) => { settle(); reject(e) },
        cleanup: settle
      })
    })
    this.afterUpdate(r) // may resolve at once: with one participant the event folds immediately
    return await promise
  }

  readState (): ClusterState<S> {
    const fold = this.requireFold()
    return {
      projected: fold.projectedValue(),
      infimum: fold.infimumValue(),
      infimumId: fold.infimumId(),
      participants: fold.infimumParticipants(),
      projectedParticipants: fold.projectedParticipants(),
      outstanding: fold.outstandingCount
    }
  }

  subscribe (listener: (state: ClusterState<S>) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  changes (options: { signal?: AbortSignal } = {}): AsyncIterableIterator<ClusterState<S>> {
    let latest: ClusterState<S> | undefined
    let wake: (() => void) | undefined
    let done = this.stopped || options.signal?.aborted === true
    const finish = (): void => { done = true; unsubscribe(); wake?.() }
    const unsubscribe = this.subscribe(state => { latest = state; wake?.() })
    this.stopListeners.add(finish)
    options.signal?.addEventListener('abort', finish, { once: true })
    const iterator: AsyncIterableIterator<ClusterState<S>> = {
      next: async () => {
        while (latest === undefined && !done) await new Promise<void>(resolve => { wake = resolve })
        wake = undefined
        if (latest === undefined) return { done: true, value: undefined }
        const value = latest
        latest = undefined
        return { done: false, value }
      },
      return: async () => { finish(); this.stopListeners.delete(finish); return { done: true, value: undefined } },
      [Symbol.asyncIterator]: () => iterator
    }
    return iterator
  }

  private readonly stopListeners = new Set<() => void>()

  // -----------------------------------------------------------------------------------------
  // Messaging

  async cast (peer: Participant, payload: Uint8Array): Promise<void> {
    this.requireRunning()
    this.countOut(payload)
    await this.node.send(peer, this.protocols.cast, payload)
  }

  async call (peer: Participant, payload: Uint8Array, options: WaitOptions = {}): Promise<Uint8Array> {
    this.requireRunning()
    this.countOut(payload)
    const reply = await this.node.request(peer, this.protocols.call, payload, {
      timeoutMs: options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    })
    this.countIn(reply)
    return reply
  }

  async broadcast (payload: Uint8Array): Promise<void> {
    await Promise.all(this.others().map(async peer => {
      await this.cast(peer, payload).catch(err => { log('broadcast to %s failed: %s', peer, err) })
    }))
  }

  async broadcall (payload: Uint8Array, options: WaitOptions = {}): Promise<Map<Participant, Uint8Array | undefined>> {
    const peers = this.others()
    const replies = await Promise.all(peers.map(async peer => await this.call(peer, payload, options).catch(() => undefined)))
    return new Map(peers.map((peer, i) => [peer, replies[i]]))
  }

  private others (): Participant[] {
    return this.requireFold().projectedParticipants().filter(p => p !== this.self)
  }

  // -----------------------------------------------------------------------------------------
  // Membership

  async eject (peer: Participant, options: WaitOptions = {}): Promise<Dissemination> {
    const fold = this.requireMember()
    if (peer === this.self) throw new NotParticipantError(peer, 'is this peer: use stop() to leave')
    if (!fold.projectedParticipants().includes(peer)) throw new NotParticipantError(peer)
    this.afterUpdate(fold.disassociate(peer))
    const result = await this.disseminate(options)
    void this.node.hangUp(peer).catch(() => {})
    return result
  }

  /** Persists, then pushes this peer's fold to every other participant and waits for their answers. */
  private async disseminate (options: WaitOptions): Promise<Dissemination> {
    const fold = this.requireFold()
    const targets = fold.projectedParticipants().filter(p => p !== this.self)
    const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
    // Encode now, send once everything the payloads show is saved (invariant 1).
    let whole: Uint8Array | undefined
    const payloads = targets.map(peer => {
      const diff = fold.diffFor(peer)
      return diff !== undefined ? encodeDiff(diff, this.codecs) : (whole ??= encodeEventFold(fold.snapshot(), this.codecs))
    })
    await this.persisted(this.version)
    const results = await Promise.all(targets.map(async (peer, i) => {
      if (!this.allows(peer)) return false
      try {
        const payload = payloads[i]!
        this.countOut(payload)
        const answer = await this.node.request(peer, this.protocols.push, payload, {
          timeoutMs, ...(options.signal !== undefined ? { signal: options.signal } : {})
        })
        this.detector.heard(peer, performance.now())
        return decodeWireMessage(answer, this.limits).kind === 'ack'
      } catch (err) {
        log('push to %s failed: %s', peer, err)
        return false
      }
    }))
    return {
      reached: targets.filter((_, i) => results[i] === true),
      unreachable: targets.filter((_, i) => results[i] !== true)
    }
  }

  // -----------------------------------------------------------------------------------------
  // Updates and flushing

  /**
   * Records the effects of an update: its consistent outputs, a change to save and show if
   * the fold changed, and whether that change is news of our own to send (by default: local
   * updates always are; merges pass what they acknowledged).
   */
  private afterUpdate (r: UpdateResult<O>, news: boolean = r.propagate): void {
    for (const t of r.thrown) log('the %s hook threw for %s: %s', t.hook, eventIdKey(t.id), t.message)
    for (const o of r.outputs) this.onConsistent(o)
    if (news) this.news = true
    if (r.propagate || news) this.changed()
  }

  private changed (): void {
    this.version++
    this.scheduleFlush()
  }

  private onConsistent (o: ConsistentOutput<O>): void {
    this.counters.eventsFolded++
    // A failure whose apply threw has no output to resolve with or to forward.
    if (o.thrown !== undefined) return
    const creator = o.id.participant
    if (creator === this.self) {
      this.pending.get(eventIdKey(o.id))?.resolve(o.output)
    } else if (this.forwardOutputs) {
      let list = this.outputsToForward.get(creator)
      if (list === undefined) { list = []; this.outputsToForward.set(creator, list) }
      list.push({ id: o.id, value: encodeWith(this.codecs.output, o.output) })
    }
  }

  private scheduleFlush (): void {
    if (this.flushScheduled || this.stopped) return
    this.flushScheduled = true
    // setImmediate, not a microtask: everything applied in this tick (and the I/O callbacks
    // already queued) joins the same batch.
    setImmediate(() => { void this.runFlush() })
  }

  private async runFlush (): Promise<void> {
    this.flushScheduled = false
    if (this.flushing !== undefined) { await this.flushing; if (this.needsFlush()) this.scheduleFlush(); return }
    this.flushing = this.flush().catch(err => { log.error('flush failed: %s', err) }).finally(() => { this.flushing = undefined })
    await this.flushing
  }

  /** Saves, then publishes, forwards outputs and notifies: see the module's invariants. */
  private async flush (): Promise<void> {
    const fold = this.fold
    if (fold === undefined) return
    // Our own UnJoin reached us (without a later Join): we were ejected.
    if (!this.ejected && !this.leaving && !this.stopped && !this.isParticipant(this.self)) this.onEjected('its own UnJoin reached it')
    const version = this.version
    const gossip = this.news && this.mode === 'push' && !this.ejected ? this.gossipPayload(fold) : undefined
    this.news = false
    const outputs = [...this.outputsToForward]
    this.outputsToForward.clear()
    if (this.storage !== undefined && version > this.savedVersion) {
      await this.storage.save({ cluster: this.clusterName, privateKey: privateKeyToProtobuf(this.privateKey), fold: encodeEventFold(fold.snapshot(), this.codecs) })
    }
    if (version > this.savedVersion) this.savedVersion = version
    for (let i = this.saveWaiters.length - 1; i >= 0; i--) {
      const w = this.saveWaiters[i]!
      if (w.version <= this.savedVersion) { this.saveWaiters.splice(i, 1); w.resolve() }
    }
    if (this.stopped) return
    // A rejoin replaced the fold during the save: what was computed above belongs to the old
    // membership and must not reach the cluster (invariant 4).
    if (fold !== this.fold) { this.scheduleFlush(); return }
    if (gossip !== undefined) this.propagate(fold, gossip)
    for (const [creator, list] of outputs) {
      const payload = encodeWireMessage({ kind: 'outputs', origin: this.clusterName, outputs: list })
      this.counters.outputsForwarded += list.length
      this.countOut(payload)
      void this.sendOneWay(creator, this.protocols.outputs, payload)
    }
    if (this.notifiedVersion < version) {
      this.notifiedVersion = version
      const state = this.listeners.size > 0 ? this.readState() : undefined
      for (const l of this.listeners) {
        try { l(state!) } catch (err) { log.error('change listener threw: %s', err) }
      }
    }
    if (this.needsFlush()) this.scheduleFlush()
  }

  private needsFlush (): boolean {
    return this.news || this.version > this.savedVersion || this.version > this.notifiedVersion
  }

  /**
   * Every outstanding id with its acks, and bodies as invariant 3 says: each once, this
   * peer's own at once, another's only after it has been outstanding here for an interval
   * with someone's acknowledgement still missing. Its creator sent it to everyone already,
   * so relaying it at once mostly repeats what receivers hold (a signed body is about 70
   * bytes); waiting an interval keeps the relay for whoever missed it.
   */
  private gossipPayload (fold: EventFold<E, S, O>): Uint8Array {
    const now = performance.now()
    let projected: Participant[] | undefined
    const events = fold.outstandingEvents().map(e => {
      if (e.delta.kind === 'error') return e
      const key = eventIdKey(e.id)
      let send = false
      if (!this.publishedBodies.has(key)) {
        if (e.id.participant === this.self) send = true
        else {
          const since = this.heldSince.get(key)
          if (since === undefined) this.heldSince.set(key, now)
          else if (now - since >= this.intervalMs) {
            projected ??= fold.projectedParticipants()
            send = projected.some(p => !e.acks.includes(p))
          }
        }
      }
      if (send) this.publishedBodies.add(key)
      return send ? e : { id: e.id, delta: undefined, acks: e.acks }
    })
    // Forget events that have folded: both track outstanding events only (an event can be in
    // both, so the slack is twice the old one's).
    if (this.publishedBodies.size + this.heldSince.size > events.length * 4 + 64) {
      const live = new Set(events.map(e => eventIdKey(e.id)))
      for (const k of this.publishedBodies) if (!live.has(k)) this.publishedBodies.delete(k)
      for (const k of this.heldSince.keys()) if (!live.has(k)) this.heldSince.delete(k)
    }
    return encodeDiff({ origin: this.clusterName, infimumId: fold.infimumId(), infimumDigest: fold.infimumDigest(), events }, this.codecs, this.sendingContext(fold))
  }

  /** The context of a pushed diff: the infimum participants by fingerprint, the origin implied. */
  private sendingContext (fold: EventFold<E, S, O>): DiffContext {
    return this.fingerprints.sending(this.clusterName, new Set(fold.infimumParticipants()))
  }

  /** Decodes a pushed diff; a participant named by a fingerprint unknown here throws `unknown-participant`. */
  private decodePushed (fold: EventFold<E, S, O>, bytes: Uint8Array): Diff<E, O> {
    return decodeDiff(bytes, this.codecs, this.limits, this.fingerprints.receiving(this.clusterName, fold.knownParticipants()))
  }

  /** Sends a batch to every other participant: directly in small clusters, by gossip in large ones. */
  private propagate (fold: EventFold<E, S, O>, payload: Uint8Array): void {
    const others = fold.projectedParticipants().filter(p => p !== this.self)
    if (others.length === 0) return
    if (others.length < this.directFanout) {
      for (const peer of others) {
        this.countOut(payload)
        void this.sendOneWay(peer, this.protocols.delta, payload)
      }
      return
    }
    this.countOut(payload)
    this.node.publish(this.protocols.topic, payload).catch(err => { log('publish failed: %s', err) })
  }

  /**
   * Sends a one-way message, dialling the peer first (through the peer store) if we are not
   * connected yet: right after joins, a peer may learn of a participant before it has a
   * connection to it. Failures are logged; anti-entropy repairs what is lost.
   */
  private async sendOneWay (peer: Participant, protocol: string, payload: Uint8Array): Promise<void> {
    if (!this.allows(peer)) return
    try {
      await this.node.send(peer, protocol, payload)
    } catch (first) {
      if (this.stopped) return
      try {
        await this.node.dial(peer, { timeoutMs: this.intervalMs })
        await this.node.send(peer, protocol, payload)
      } catch (err) {
        log('sending to %s failed: %s (first try: %s)', peer, err, first)
      }
    }
  }

  /** Resolves once everything up to `version` is saved. */
  private async persisted (version: number): Promise<void> {
    if (this.savedVersion >= version) return
    await new Promise<void>(resolve => {
      this.saveWaiters.push({ version, resolve })
      this.scheduleFlush()
    })
  }

  // -----------------------------------------------------------------------------------------
  // Incoming

  private isParticipant (peer: Participant): boolean {
    const fold = this.fold
    if (fold === undefined) return false
    if (this.participantsCache?.version !== this.version) {
      this.participantsCache = { version: this.version, set: new Set(fold.projectedParticipants()) }
    }
    return this.participantsCache.set.has(peer)
  }

  private onGossip (from: Participant, data: Uint8Array): void {
    const fold = this.fold
    if (fold === undefined || this.stopped) return
    if (!this.isParticipant(from)) { this.counters.droppedNonParticipant++; log('dropped gossip from non-participant %s', from); return }
    let diff
    try {
      diff = this.decodePushed(fold, data)
    } catch (err) {
      this.counters.droppedUndecodable++
      log('dropped undecodable gossip from %s: %s', from, err)
      // Well formed, but naming someone this fold has not seen yet: a sync names everyone.
      if (err instanceof DecodeError && err.code === 'unknown-participant') void this.requestSync(from, false)
      return
    }
    this.mergeDiffFrom(from, diff)
  }

  private mergeDiffFrom (from: Participant, diff: ReturnType<typeof decodeDiff<E, S, O>>): boolean {
    const fold = this.requireFold()
    if (diff.origin !== this.clusterName) { this.counters.droppedWrongCluster++; log('dropped a diff of cluster %s from %s', diff.origin, from); return false }
    const r = fold.mergeDiff(diff, this.mergeOptions(fold, from))
    if (!r.ok) {
      // No sync, and no retry in full: an honest peer never sends a forged body, so asking again would repeat it.
      if (r.error instanceof ForgedEventError) { this.counters.droppedForged++; log('dropped a diff from %s: %s', from, r.error.message); return true }
      this.counters.mergeRefusals++
      log('diff from %s refused (%s): pulling a sync', from, r.error.name)
      void this.requestSync(from, r.error.name !== 'DiffTooSparseError' || (r.error as { reason?: string }).reason === 'digest')
      return false
    }
    this.counters.diffMerges++
    // The sender still waits for events we folded: it missed acknowledgements of ours, which
    // only we may give it (first-hand). Our next tick re-announces them.
    if (diff.events.length > 0 && compareEventIds(diff.infimumId, fold.infimumId()) < 0) this.peersBehind = true
    // The sender sent its news to everyone; ours is only what we acknowledged.
    this.afterUpdate(r, r.acknowledged)
    if (fold.isBlockedOnError() && compareEventIds(diff.infimumId, fold.infimumId()) > 0) void this.requestSync(from, true)
    return true
  }

  private mergeFullFrom (from: Participant, snapshot: EventFoldSnapshot<E, S, O>): void {
    if (snapshot.origin !== this.clusterName) { this.counters.droppedWrongCluster++; return }
    const fold = this.requireFold()
    const options = this.mergeOptions(fold, from)
    const r = fold.mergeFull(snapshot, options)
    if (!r.ok) {
      if (r.error instanceof ForgedEventError) { this.counters.droppedForged++; log('dropped the fold of %s: %s', from, r.error.message) }
      return
    }
    this.counters.fullMerges++
    this.afterUpdate(r, r.acknowledged)
    log('merged the whole fold of %s', from)
    if (!r.diverged) { this.divergedFrom.delete(from); return }
    // First-hand, a fold settled past ours without us proves that our UnJoin folded there
    // (ours has folded our Join, so theirs did too): we were ejected. It is the sender's word,
    // but a participant may eject anyone openly anyway (an UnJoin in its own name).
    if (!snapshot.infimum.participants.includes(this.self)) {
      this.onEjected(`${from}'s settled state no longer lists it`)
      return
    }
    // Settled past us on a history we do not share: the ejected-peer race of `standInMask`
    // (or a lie). This peer cannot take a settled state on one participant's word, so it
    // waits until two (or the only other one) of the participants that stay show it, then
    // rejoins through them, taking the state as a joiner does. One whose UnJoin is pending
    // never will. When the difference is this peer's own hooks that threw (`threwHere`), one
    // word is enough: its hooks cannot compute the settled state anyway.
    this.divergedFrom.add(from)
    const others = fold.projectedParticipants().filter(p => p !== this.self).length
    if (r.threwHere || this.divergedFrom.size >= Math.min(2, others)) {
      for (const p of this.divergedFrom) this.sponsors.add(p)
      this.divergedFrom.clear()
      this.counters.divergences++
      this.onEjected(r.threwHere ? `its own hooks threw where ${from}'s ran` : 'participants settled on a history it does not share')
    }
  }

  /**
   * How to merge what `from` sent: first-hand once this peer's Join has folded, in push mode
   * (where every participant's own messages reach every other); see {@link MergeOptions.from}.
   * Periodic mode relays acknowledgements, as om-legion does, so it must believe them.
   */
  private mergeOptions (fold: EventFold<E, S, O>, from: Participant): MergeOptions {
    return this.mode === 'push' && fold.hasJoined() ? { from } : {}
  }

  /** Pulls `peer`'s diff for us (or its whole fold) and merges it; one request per peer at a time. */
  private async requestSync (peer: Participant, full: boolean): Promise<void> {
    if (this.stopped || this.ejected || this.syncing.has(peer) || !this.allows(peer)) return
    this.syncing.add(peer)
    this.counters.syncsRequested++
    let retryFull = false
    const epoch = this.epoch
    const witnessed = this.witnessedMyJoin(peer)
    try {
      const request = encodeWireMessage({ kind: 'syncRequest', origin: this.clusterName, full })
      this.countOut(request)
      const answer = await this.node.request(peer, this.protocols.sync, request, { timeoutMs: DEFAULT_CALL_TIMEOUT_MS })
      if (!this.admitAnswer(peer, answer, epoch)) return
      const kind = peekKind(answer)
      if (kind === MessageKind.diff) retryFull = !full && !this.mergeDiffFrom(peer, decodeDiff(answer, this.codecs, this.limits))
      else if (kind === MessageKind.eventFold) this.mergeFullFrom(peer, decodeEventFold(answer, this.codecs, this.limits))
      else if (kind === WireKind.refusal) {
        const refusal = decodeWireMessage(answer, this.limits)
        log('sync refused by %s: %o', peer, refusal)
        if (refusal.kind === 'refusal' && refusal.code === 'not-participant' && witnessed) {
          this.sponsors.add(peer)
          this.onEjected(`${peer} refused a sync: not a participant`)
        }
      } else this.counters.droppedUndecodable++
    } catch (err) {
      if (err instanceof DecodeError) this.counters.droppedUndecodable++
      log('sync with %s failed: %s', peer, err)
    } finally {
      this.syncing.delete(peer)
    }
    if (retryFull) await this.requestSync(peer, true)
  }

  /**
   * Whether to look at `answer`, the answer of `peer` to a request made at `epoch`: not if
   * this peer stopped, rejoined since (the answer is about the old membership), or no longer
   * accepts `peer` (not allowed, or not a participant: invariant 4). An admitted answer is
   * evidence that `peer` is alive.
   */
  private admitAnswer (peer: Participant, answer: Uint8Array, epoch: number): boolean {
    this.countIn(answer)
    if (this.stopped || epoch !== this.epoch || !this.allows(peer)) return false
    if (!this.isParticipant(peer)) { this.counters.droppedNonParticipant++; return false }
    this.detector.heard(peer, performance.now())
    return true
  }

  private refuse (code: RefusalCode, message: string): Uint8Array {
    return encodeWireMessage({ kind: 'refusal', code, message })
  }

  private async onSyncRequest (from: Participant, payload: Uint8Array): Promise<Uint8Array> {
    const fold = this.fold
    if (fold === undefined || this.stopped) return this.refuse('stopping', 'not ready')
    let request
    try { request = decodeWireMessage(payload, this.limits) } catch { this.counters.droppedUndecodable++; return this.refuse('bad-request', 'undecodable') }
    if (request.kind !== 'syncRequest') { this.counters.droppedUndecodable++; return this.refuse('bad-request', 'expected a sync request') }
    if (request.origin !== this.clusterName) { this.counters.droppedWrongCluster++; return this.refuse('wrong-cluster', `this is cluster ${this.clusterName}`) }
    if (!this.isParticipant(from)) { this.counters.droppedNonParticipant++; return this.refuse('not-participant', 'you are not a participant') }
    const diff = request.full ? undefined : fold.diffFor(from)
    if (diff === undefined && !this.fullSyncLimiter.take(from)) { this.counters.droppedRateLimited++; return this.refuse('rate-limited', 'too many full syncs') }
    // Encode now, answer once everything it shows is saved (invariant 1).
    const answer = diff !== undefined ? encodeDiff(diff, this.codecs) : encodeEventFold(fold.snapshot(), this.codecs)
    await this.persisted(this.version)
    this.counters.syncsServed++
    this.countOut(answer)
    return answer
  }

  private async onPush (from: Participant, payload: Uint8Array): Promise<Uint8Array> {
    if (this.fold === undefined || this.stopped) return this.refuse('stopping', 'not ready')
    if (!this.isParticipant(from)) { this.counters.droppedNonParticipant++; return this.refuse('not-participant', 'you are not a participant') }
    try {
      const kind = peekKind(payload)
      if (kind === MessageKind.diff) {
        const diff = this.decodePushed(this.fold, payload)
        if (diff.origin !== this.clusterName) { this.counters.droppedWrongCluster++; return this.refuse('wrong-cluster', `this is cluster ${this.clusterName}`) }
        this.mergeDiffFrom(from, diff)
      } else if (kind === MessageKind.eventFold) {
        if (!this.fullSyncLimiter.take(from)) { this.counters.droppedRateLimited++; return this.refuse('rate-limited', 'too many full pushes') }
        const snapshot = decodeEventFold(payload, this.codecs, this.limits)
        if (snapshot.origin !== this.clusterName) { this.counters.droppedWrongCluster++; return this.refuse('wrong-cluster', `this is cluster ${this.clusterName}`) }
        this.mergeFullFrom(from, snapshot)
      } else {
        this.counters.droppedUndecodable++
        return this.refuse('bad-request', 'expected a diff or a fold')
      }
    } catch (err) {
      this.counters.droppedUndecodable++
      log('undecodable push from %s: %s', from, err)
      if (err instanceof DecodeError && err.code === 'unknown-participant') void this.requestSync(from, false)
      return this.refuse('bad-request', 'undecodable')
    }
    await this.persisted(this.version)
    return encodeWireMessage({ kind: 'ack' })
  }

  private async onJoinRequest (from: Participant, payload: Uint8Array): Promise<Uint8Array> {
    const fold = this.fold
    // An ejected peer's fold is stale: admitting someone into it would only strand them there.
    if (fold === undefined || this.stopped || this.ejected) return this.refuse('stopping', 'not ready')
    if (!this.joinLimiter.take(from)) { this.counters.droppedRateLimited++; return this.refuse('rate-limited', 'too many joins') }
    let request
    try { request = decodeWireMessage(payload, this.limits) } catch { this.counters.droppedUndecodable++; return this.refuse('bad-request', 'undecodable') }
    if (request.kind !== 'joinRequest') { this.counters.droppedUndecodable++; return this.refuse('bad-request', 'expected a join request') }
    if (request.origin !== this.clusterName) { this.counters.droppedWrongCluster++; return this.refuse('wrong-cluster', `this is cluster ${this.clusterName}`) }
    // An earlier incarnation with the same id leaves first, so a restarted peer rejoins cleanly.
    this.afterUpdate(fold.disassociate(from))
    this.afterUpdate(fold.participate(from))
    const foldBytes = encodeEventFold(fold.snapshot(), this.codecs)
    const peers = await Promise.all(fold.projectedParticipants().filter(p => p !== from).map(async id => ({
      id,
      addresses: id === this.self ? this.node.multiaddrs() : await this.node.peerAddresses(id)
    })))
    await this.persisted(this.version)
    log('admitted %s', from)
    return encodeWireMessage({ kind: 'joinAccepted', fold: foldBytes, peers })
  }

  private onOutputs (from: Participant, payload: Uint8Array): void {
    if (this.stopped || !this.isParticipant(from)) { this.counters.droppedNonParticipant++; return }
    let message
    try { message = decodeWireMessage(payload, this.limits) } catch { this.counters.droppedUndecodable++; return }
    if (message.kind !== 'outputs') { this.counters.droppedUndecodable++; return }
    if (message.origin !== this.clusterName) { this.counters.droppedWrongCluster++; return }
    for (const o of message.outputs) {
      if (o.id.participant !== this.self) continue
      const pending = this.pending.get(eventIdKey(o.id))
      if (pending === undefined) continue
      try {
        pending.resolve(decodeWith(this.codecs.output, o.value, this.limits))
      } catch (err) {
        this.counters.droppedUndecodable++
        log('undecodable output from %s: %s', from, err)
      }
    }
  }

  // -----------------------------------------------------------------------------------------
  // Failure detection, automatic ejection, rejoin (invariant 5)

  /**
   * Every `heartbeatIntervalMs`: closes connections `allowPeers` no longer allows, updates
   * suspicions, sends each other participant a heartbeat with this peer's suspects, and
   * ejects whom a majority suspects. An ejected peer that wants to rejoin keeps sending
   * heartbeats (their refusals name participants that can admit it again) and retries.
   */
  private heartbeatTick (): void {
    const fold = this.fold
    if (fold === undefined || this.stopped) return
    for (const p of this.node.connectedPeers()) if (!this.allows(p)) void this.node.hangUp(p).catch(() => {})
    if (this.ejected && !this.rejoinWhenEjected) return // out for good: nothing to detect or ask
    const now = performance.now() // monotonic: a wall-clock jump must not make everyone suspect
    const projected = fold.projectedParticipants()
    this.detector.watch(projected, now)
    this.scanJoins(fold, now)
    const suspects = this.detector.suspects(now)
    const payload = encodeWireMessage({ kind: 'heartbeat', origin: this.clusterName, suspects })
    for (const peer of projected) if (peer !== this.self && this.allows(peer)) void this.sendHeartbeat(peer, payload)
    if (this.ejected) { void this.rejoin(); return }
    if (this.autoEject !== false) {
      for (const peer of this.detector.toEject(fold.infimumParticipants(), projected, now)) void this.ejectSuspect(peer)
    }
  }

  /**
   * Reads the outstanding Joins: a Join not seen before vouches that its peer was alive a
   * moment ago (its sponsor just heard from it), so a peer restarted under the same id is not
   * ejected on its earlier self's silence; and this peer's own latest Join tells which
   * participants have merged it (`joinWitnesses`): all of them once it has folded.
   */
  private scanJoins (fold: EventFold<E, S, O>, now: number): void {
    const seen = new Set<string>()
    let mine: readonly Participant[] | undefined
    for (const e of fold.outstandingEvents()) {
      if (e.delta.kind !== 'join') continue
      const key = eventIdKey(e.id)
      seen.add(key)
      if (!this.seenJoins.has(key)) this.detector.heard(e.delta.participant, now)
      if (e.delta.participant === this.self) mine = e.acks
    }
    this.seenJoins = seen
    this.joinWitnesses = mine !== undefined ? new Set(mine) : fold.infimumParticipants().includes(this.self) ? 'all' : new Set()
  }

  /** Whether `peer` is known to have merged this peer's latest Join (so its refusal means an ejection). */
  private witnessedMyJoin (peer: Participant): boolean {
    return this.joinWitnesses === 'all' || this.joinWitnesses.has(peer)
  }

  private async sendHeartbeat (peer: Participant, payload: Uint8Array): Promise<void> {
    if (this.heartbeatsInFlight.has(peer)) return
    this.heartbeatsInFlight.add(peer)
    const epoch = this.epoch
    const witnessed = this.witnessedMyJoin(peer)
    try {
      this.counters.heartbeatsSent++
      this.countOut(payload)
      const answer = await this.node.request(peer, this.protocols.heartbeat, payload, { timeoutMs: this.suspectAfterMs })
      if (!this.admitAnswer(peer, answer, epoch)) return
      const m = decodeWireMessage(answer, this.limits)
      if (m.kind === 'refusal' && m.code === 'not-participant') {
        if (!witnessed) { log('%s does not know this peer as a participant (yet)', peer); return }
        this.sponsors.add(peer)
        this.onEjected(`${peer} refused its heartbeat: not a participant`)
      }
    } catch (err) {
      if (err instanceof DecodeError) this.counters.droppedUndecodable++
      log('heartbeat to %s failed: %s', peer, err)
    } finally {
      this.heartbeatsInFlight.delete(peer)
    }
  }

  private onHeartbeat (from: Participant, payload: Uint8Array): Uint8Array {
    const fold = this.fold
    // An ejected peer's view of the membership is stale: it gives no verdict on anyone.
    if (fold === undefined || this.stopped || this.ejected) return this.refuse('stopping', 'not ready')
    let message
    try { message = decodeWireMessage(payload, this.limits) } catch { this.counters.droppedUndecodable++; return this.refuse('bad-request', 'undecodable') }
    if (message.kind !== 'heartbeat') return this.refuse('bad-request', 'expected a heartbeat')
    if (message.origin !== this.clusterName) { this.counters.droppedWrongCluster++; return this.refuse('wrong-cluster', `this is cluster ${this.clusterName}`) }
    if (!this.isParticipant(from)) { this.counters.droppedNonParticipant++; return this.refuse('not-participant', 'you are not a participant') }
    this.detector.report(from, message.suspects, performance.now())
    return encodeWireMessage({ kind: 'ack' })
  }

  /** Ejects a participant a majority suspects; failures are logged (the next tick may retry). */
  private async ejectSuspect (peer: Participant): Promise<void> {
    if (this.ejecting.has(peer) || this.autoEject === false) return
    this.ejecting.add(peer)
    try {
      log('ejecting %s: a majority of the participants suspects it', peer)
      const fold = this.requireMember()
      if (!fold.projectedParticipants().includes(peer)) return
      const done = this.eject(peer, { timeoutMs: this.autoEject.timeoutMs })
      this.counters.autoEjections++
      await done
    } catch (err) {
      log('automatic ejection of %s failed: %s', peer, err)
    } finally {
      this.ejecting.delete(peer)
    }
  }

  /**
   * This peer learnt that it is no longer a participant. Pending `applyConsistent` calls
   * reject with `EjectedError` (their outcome is unknown: see the error), and the peer
   * rejoins if configured to.
   */
  private onEjected (reason: string): void {
    if (this.ejected || this.stopped || this.leaving) return
    this.ejected = true
    this.counters.timesEjected++
    log('this peer was ejected (%s)', reason)
    for (const p of [...this.pending.values()]) p.reject(new EjectedError(p.id))
    void this.rejoin()
  }

  /** Asks to be admitted again (one attempt at a time); the next heartbeat tick retries. */
  private async rejoin (): Promise<void> {
    if (!this.rejoinWhenEjected || this.rejoining !== undefined || this.stopped) return
    this.rejoining = this.tryRejoin().finally(() => { this.rejoining = undefined })
    await this.rejoining
  }

  /**
   * Sends a join request to a participant of the membership that ejected this peer: one that
   * refused it as a non-participant, or, when its own UnJoin reached it, a participant of its
   * own fold. Never a peer that still counts it in (it may be on the same losing side).
   */
  private async tryRejoin (): Promise<void> {
    const fold = this.requireFold()
    const candidates = [...this.sponsors]
    if (!fold.projectedParticipants().includes(this.self)) candidates.push(...fold.projectedParticipants())
    const timeoutMs = this.options.joinTimeoutMs ?? 10_000
    for (const sponsor of new Set(candidates)) {
      if (this.stopped || !this.ejected) return
      if (sponsor === this.self || !this.allows(sponsor)) continue
      try {
        await this.node.dial(sponsor, { timeoutMs: this.heartbeatIntervalMs })
        const request = encodeWireMessage({ kind: 'joinRequest', origin: this.clusterName, addresses: this.node.multiaddrs() })
        this.countOut(request)
        const bytes = await this.node.request(sponsor, this.protocols.join, request, { timeoutMs })
        this.countIn(bytes)
        if (this.stopped || !this.ejected || !this.allows(sponsor)) return
        const answer = decodeWireMessage(bytes, this.limits)
        if (answer.kind !== 'joinAccepted') { log('rejoin through %s refused: %o', sponsor, answer); continue }
        const snapshot = decodeEventFold(answer.fold, this.codecs, this.limits)
        if (snapshot.origin !== this.clusterName) continue
        this.adopt(snapshot)
        for (const p of answer.peers) if (p.id !== this.self && p.addresses.length > 0) void this.dialAny(p.addresses)
        log('rejoined through %s', sponsor)
        return
      } catch (err) {
        log('rejoin through %s failed: %s', sponsor, err)
      }
    }
  }

  /** Replaces the fold by the one a sponsor admitted this peer with: a new membership. */
  private adopt (snapshot: EventFoldSnapshot<E, S, O>): void {
    this.epoch++
    const previousCounter = this.fold?.maxKnownCounter ?? 0
    this.fold = EventFold.fromSnapshot(snapshot, this.self, this.options.spec, this.foldOptions)
    // Never reuse an id of the previous membership: its events may still be travelling.
    this.fold.observeCounter(previousCounter)
    this.participantsCache = undefined
    this.ejected = false
    this.sponsors.clear()
    this.publishedBodies.clear()
    this.heldSince.clear()
    this.outputsToForward.clear()
    this.progress.clear()
    this.detector.reset()
    this.seenJoins = new Set()
    this.joinWitnesses = new Set()
    this.counters.rejoins++
    this.afterUpdate(this.fold.acknowledge())
    this.changed()
  }

  // -----------------------------------------------------------------------------------------
  // Periodic work

  private tick (): void {
    const fold = this.fold
    if (fold === undefined || this.stopped || this.ejected) return
    const others = fold.projectedParticipants().filter(p => p !== this.self && this.allows(p))
    const connected = new Set(this.node.connectedPeers())
    for (const p of others) if (!connected.has(p)) void this.node.dial(p, { timeoutMs: this.intervalMs }).catch(() => {})
    const reachable = others.filter(p => connected.has(p))
    if (reachable.length > 0) {
      const peer = reachable[Math.floor(Math.random() * reachable.length)]!
      if (this.mode === 'periodic') void this.pushTo(peer)
      else if (fold.outstandingCount > 0 || this.peersBehind) {
        // Anti-entropy: re-announce acknowledgements and pull from someone, to repair losses.
        // The re-announcement goes through a flush, so it leaves only once saved (invariant 1).
        this.peersBehind = false
        this.news = true
        this.scheduleFlush()
        if (fold.outstandingCount > 0) void this.requestSync(peer, false)
      }
    }
    this.trackProgress()
  }

  /** om-legion's propagation: send our diff (or whole fold) to one peer. */
  private async pushTo (peer: Participant): Promise<void> {
    const fold = this.requireFold()
    const epoch = this.epoch
    // Encode now, send once everything it shows is saved (invariant 1).
    const diff = fold.diffFor(peer)
    const payload = diff !== undefined ? encodeDiff(diff, this.codecs, this.sendingContext(fold)) : encodeEventFold(fold.snapshot(), this.codecs)
    await this.persisted(this.version)
    if (this.stopped || epoch !== this.epoch || !this.allows(peer)) return
    this.countOut(payload)
    await this.node.request(peer, this.protocols.push, payload, { timeoutMs: this.intervalMs * 5 }).catch(err => { log('push to %s failed: %s', peer, err) })
  }

  private trackProgress (): Map<Participant, EventId> {
    const divergent = this.requireFold().divergent()
    const now = Date.now()
    for (const [peer, id] of divergent) {
      const key = eventIdKey(id)
      const seen = this.progress.get(peer)
      if (seen === undefined || seen.key !== key) this.progress.set(peer, { key, since: now })
    }
    for (const peer of this.progress.keys()) if (!divergent.has(peer)) this.progress.delete(peer)
    return divergent
  }

  stats (): LegionStats {
    const fold = this.requireFold()
    const divergent = this.trackProgress()
    const now = Date.now()
    const list: DivergentPeer[] = [...divergent].map(([peer, id]) => ({
      peer, latestAcknowledged: id, sinceProgressMs: now - (this.progress.get(peer)?.since ?? now)
    }))
    const t = this.node.stats()
    return {
      self: this.self,
      participants: fold.infimumParticipants().length,
      outstanding: fold.outstandingCount,
      infimumId: fold.infimumId(),
      divergent: list,
      suspected: this.detector.suspects(performance.now()),
      membership: this.ejected ? 'ejected' : 'participant',
      counters: { ...this.counters, droppedFrames: t.channel.droppedFrames, refusedConnections: t.connections.refused }
    }
  }

  private countIn (bytes: Uint8Array): void {
    this.counters.messagesIn++
    this.counters.bytesIn += bytes.length
  }

  private countOut (bytes: Uint8Array): void {
    this.counters.messagesOut++
    this.counters.bytesOut += bytes.length
  }

  // -----------------------------------------------------------------------------------------
  // Stopping

  multiaddrs (): string[] {
    return this.node.multiaddrs()
  }

  async stop (options: { leave?: boolean, timeoutMs?: number } = {}): Promise<void> {
    if (this.stopped) return
    const fold = this.fold
    if (options.leave !== false && fold !== undefined && !this.ejected && fold.projectedParticipants().length > 1) {
      this.leaving = true
      this.afterUpdate(fold.disassociate(this.self))
      await this.disseminate({ timeoutMs: options.timeoutMs ?? 5000 }).catch(err => { log('leaving: %s', err) })
    }
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer)
    for (const u of this.unsubscribes) u()
    for (const p of [...this.pending.values()]) p.reject(new StoppedError())
    for (const f of [...this.stopListeners]) f()
    this.listeners.clear()
    await this.flushing
    if (this.storage !== undefined && this.fold !== undefined && this.version > this.savedVersion) {
      await this.storage.save({ cluster: this.clusterName, privateKey: privateKeyToProtobuf(this.privateKey), fold: encodeEventFold(this.fold.snapshot(), this.codecs) }).catch(err => { log.error('final save failed: %s', err) })
    }
    for (const w of this.saveWaiters.splice(0)) w.resolve()
    if (this.node !== undefined) await this.node.stop() // undefined when start-up failed early
    await this.storage?.close()
  }

  private requireRunning (): void {
    if (this.stopped) throw new StoppedError()
  }

  private requireFold (): EventFold<E, S, O> {
    this.requireRunning()
    if (this.fold === undefined) throw new StoppedError('the peer is not a participant yet')
    return this.fold
  }

  /** The fold, for changes that must reach the cluster: refused while this peer knows it is ejected. */
  private requireMember (): EventFold<E, S, O> {
    const fold = this.requireFold()
    if (this.ejected) throw new EjectedError()
    return fold
  }
}

