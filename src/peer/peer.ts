/**
 * The composition root of one peer: it builds the parts, wires them to each other through the
 * narrow components each declares, and implements the public `Legion` handle by delegating.
 * It owns no protocol logic of its own; where a thing happens is told by the folder:
 *
 * - `inbound.ts` admits every message; `flush.ts` decides what leaves after a change;
 *   `persistence.ts` saves before anything is sent; `propagation.ts`, `sync.ts`, `push.ts`,
 *   `intake.ts`, `outputs.ts` move group state; `group/` holds the replicas and their handles;
 * - `membership/` joins, sponsors, ejects, detects failures and stuck peers;
 * - `messaging.ts` carries calls and casts; `services.ts` plugs layers in; `observe.ts` reports.
 *
 * @module
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createTransportNode, type TransportNode } from '../transport/index.js'
import type { DecodeLimits } from '../codec/codec.js'
import { DEFAULT_DECODE_LIMITS } from '../codec/codec.js'
import type { EventFoldOptions, EventSpec, Participant } from '../eventfold/types.js'
import { systemPeerClock, systemRandom, type PeerClock, type Random, type Timer } from './clock.js'
import { DEFAULT_CONSISTENT_TIMEOUT_MS, type PeerConfig } from './config.js'
import { ExistingStateError, JoinError, RecoverError, StoppedError } from './errors.js'
import { eventSignatures, peerSigner, signHeadsTogether, type HeadOfGroup, type PeerSigner } from './event-signatures.js'
import { CLUSTER_GROUP, type GroupDefinition } from './group/definition.js'
import type { Group } from './group/groups.js'
import { Lifecycle, type Incarnation, type SomeReplica } from './lifecycle.js'
import { peerLoggers, type LoggerFactory } from './log.js'
import type { BroadcallResult, ChannelHandle, MessageChannel } from './messaging.js'
import { peerMetrics, type Metrics } from './metrics.js'
import type { Network } from './network.js'
import type { ClusterState, Dissemination, Legion, LegionCounters, LegionOptions, LegionStats, WaitOptions } from './options.js'
import { buildParts, type PartInputs, type Parts } from './parts.js'
import type { PeerStore, StoredPeer } from './persistence.js'
import { keyValuePeerStore } from './kv-peer-store.js'
import { recordPeerStore } from './record-store.js'
import { ServiceHost } from './service-host.js'
import type { ServiceInstances, ServiceMap } from './services.js'

/** Seams for tests: a network, a clock and randomness instead of libp2p and the system's. */
export interface PeerInternals {
  /** Builds the network once the peer's key is known. */
  readonly network?: (privateKey: PrivateKey) => Promise<Network & { stop(): Promise<void>, stats?: TransportNode['stats'] }>
  /** The clock. */
  readonly clock?: PeerClock
  /** Randomness. */
  readonly random?: Random
  /**
   * Benchmarks only: neither sign nor check events, to measure what signatures cost. Every
   * peer of such a cluster must say so (a signing peer refuses unsigned bodies as forged).
   */
  readonly unsignedEvents?: boolean
}

/**
 * How long a stopping peer waits for its last flush (the acknowledgements it owed) to reach the
 * transport before closing it; a peer that cannot be reached by then is repaired without them.
 */
const SEND_DRAIN_MS = 500

const NO_TRANSPORT_STATS: ReturnType<TransportNode['stats']> = {
  channel: { bytesOut: 0, bytesIn: 0, messagesOut: 0, messagesIn: 0, requestsSent: 0, requestsHandled: 0, handlerErrors: 0, timeouts: 0, droppedFrames: 0, malformedFrames: 0, oversizedFrames: 0, lateResponses: 0, streamsDropped: 0, streamsOpened: 0, streamsAccepted: 0, openOutboundStreams: 0, openInboundStreams: 0 },
  gossip: { published: 0, delivered: 0, droppedUnsubscribed: 0, droppedOversized: 0, handlerErrors: 0 },
  connectedPeers: 0,
  connections: { refused: 0, failedHandshakes: 0, denied: 0 }
} as unknown as ReturnType<TransportNode['stats']>

/** One running peer; see the module comment. */
export class Peer<E, S, O, Sv extends ServiceMap> implements Legion<E, S, O, Sv> {
  readonly clusterName: string
  private readonly clock: PeerClock
  private readonly random: Random
  private readonly lifecycle = new Lifecycle()
  private readonly limits: DecodeLimits
  private readonly metrics: Metrics = peerMetrics()
  private readonly counters: LegionCounters = newCounters()
  private readonly store: PeerStore | undefined
  private privateKey!: PrivateKey
  private network!: Network & { stop(): Promise<void>, stats?: TransportNode['stats'] }
  private loggers!: LoggerFactory
  private parts!: Parts
  private root!: Group<E, S, O>
  private serviceHost!: ServiceHost<Sv>
  private timers: Timer[] = []
  private stopping: Promise<void> | undefined

  constructor (private readonly config: PeerConfig<E, S, O>, private readonly options: LegionOptions<E, S, O, Sv>, private readonly internals: PeerInternals = {}) {
    this.clusterName = config.cluster
    this.clock = internals.clock ?? systemPeerClock
    this.random = internals.random ?? systemRandom
    this.limits = { ...DEFAULT_DECODE_LIMITS, maxBytes: config.maxMessageBytes }
    const storage = options.storage
    this.store = storage === undefined
      ? undefined
      : 'batch' in storage && 'namespace' in storage ? keyValuePeerStore(storage) : recordPeerStore(storage, this.limits)
  }

  get self (): Participant {
    return this.network.peerId
  }

  get services (): ServiceInstances<Sv> {
    return this.serviceHost.instances
  }

  // -----------------------------------------------------------------------------------------
  // Start-up

  /** Founds, joins or recovers, then starts the timers and the services. */
  async start (): Promise<void> {
    const config = this.config
    const stored = await this.loadStored()
    let mode = config.startup.mode
    if (mode === 'auto') mode = stored !== undefined ? 'recover' : 'join'
    if (mode === 'new' && stored !== undefined && config.startup.mode === 'new' && config.startup.overwrite !== true) throw new ExistingStateError(stored.cluster)
    if (mode === 'recover') {
      if (stored === undefined) throw new RecoverError(this.store === undefined ? 'recover needs the storage the peer saved to' : 'nothing was saved in this storage')
      if (stored.cluster !== config.cluster) throw new RecoverError(`the saved state belongs to cluster ${JSON.stringify(stored.cluster)}, not ${JSON.stringify(config.cluster)}`)
      try { this.privateKey = privateKeyFromProtobuf(stored.privateKey) } catch (err) { throw new RecoverError(`the saved key is unreadable: ${(err as Error).message}`, { cause: err }) }
      if (config.privateKey !== undefined && !config.privateKey.equals(this.privateKey)) throw new RecoverError('the private key given differs from the one saved with this state')
    } else {
      this.privateKey = config.privateKey ?? await generateKeyPair('Ed25519')
    }
    if (this.privateKey.type !== 'Ed25519') throw new TypeError(`options.privateKey: events are signed with Ed25519; the key is ${this.privateKey.type}`)
    this.loggers = peerLoggers(peerIdFromPrivateKey(this.privateKey).toString())
    this.network = this.internals.network !== undefined ? await this.internals.network(this.privateKey) : await this.createNetwork()
    const inputs = this.partInputs()
    this.parts = buildParts(inputs)
    this.root = this.parts.groups.define(CLUSTER_GROUP, 'cluster', { spec: config.spec, codecs: config.codecs })
    this.serviceHost = new ServiceHost<Sv>(this.options.services ?? ({} as Sv), {
      parts: this.parts,
      inputs,
      loggers: this.loggers,
      operator: {
        multiaddrs: () => this.multiaddrs(),
        stats: () => this.stats(),
        clusterSpec: config.spec as EventSpec<unknown, unknown, unknown>,
        eject: async (peer, options) => await this.eject(peer, options),
        stop: async (options) => { await this.stop(options) }
      }
    })
    await this.registerProtocols()
    await this.serviceHost.prepare()
    await this.becomeParticipant(mode, stored)
    await Promise.all(replicas(this.lifecycle.incarnation).map(async r => { await this.parts.persistence.persisted(r) }))
    this.timers.push(this.clock.every(config.intervalMs, () => { this.parts.propagation.tick() }))
    this.timers.push(this.clock.every(config.heartbeatIntervalMs, () => { this.parts.heartbeats.onInterval() }))
    // Pull from everyone connected, so a recovered peer catches up at once, and say hello (a
    // recovered peer also learns at once if it was ejected meanwhile).
    const incarnation = this.lifecycle.incarnation!
    for (const peer of this.network.connectedPeers()) {
      const wants = replicas(incarnation).filter(r => r.isParticipant(peer)).map(r => ({ group: r.id, full: false }))
      if (wants.length > 0) this.parts.sync.request(peer, wants)
    }
    this.parts.heartbeats.tick()
    await this.serviceHost.start()
  }

  private async loadStored (): Promise<StoredPeer | undefined> {
    if (this.store === undefined) return undefined
    try {
      return await this.store.load()
    } catch (err) {
      throw new RecoverError(`cannot read the saved state: ${(err as Error).message}`, { cause: err })
    }
  }

  private async createNetwork (): Promise<TransportNode> {
    const c = this.config
    return await createTransportNode({
      transport: c.transport,
      ...(c.listen !== undefined ? { listen: c.listen } : {}),
      privateKey: this.privateKey,
      maxFrameBytes: c.maxMessageBytes,
      loggers: this.loggers,
      ...(c.clusterSecret !== undefined ? { clusterSecret: c.clusterSecret } : {}),
      ...(c.allowPeersOption !== undefined ? { allowPeers: c.allowPeersOption } : {})
    })
  }

  private async becomeParticipant (mode: 'new' | 'join' | 'recover', stored: StoredPeer | undefined): Promise<void> {
    const { groups } = this.parts
    const startup = this.config.startup
    if (mode === 'join') {
      const peers = startup.mode === 'join' || startup.mode === 'auto' ? startup.peers ?? [] : []
      try {
        await this.parts.joining.join(peers)
        return
      } catch (err) {
        if (!(err instanceof JoinError) || startup.mode !== 'auto' || startup.found !== true) throw err
        this.parts.log('no peer admitted this one (%s): founding a new cluster', err.message)
      }
    }
    const incarnation = this.lifecycle.newIncarnation()
    if (mode === 'recover') {
      groups.keepStored(stored!.groups)
      for (const definition of groups.all()) {
        const saved = stored!.groups.get(definition.id)
        if (saved === undefined && definition.id === CLUSTER_GROUP) throw new RecoverError('the saved state holds no fold of the cluster\'s group')
        try {
          incarnation.groups.set(definition.id, saved !== undefined ? groups.fromStored(definition, saved) : groups.waiting(definition))
        } catch (err) {
          throw new RecoverError(`the saved state of group ${JSON.stringify(definition.id)} is unreadable: ${(err as Error).message}`, { cause: err })
        }
      }
      for (const addr of (startup.mode === 'recover' || startup.mode === 'auto' ? startup.peers : undefined) ?? []) {
        // Remembered first: if this dial fails, the anti-entropy tick redials by id. The others
        // cannot dial this peer (they know its address from before the restart), and without
        // the address nothing would connect the two until suspicion.
        const at = addr.lastIndexOf('/p2p/')
        if (at >= 0) await this.network.rememberAddresses(addr.slice(at + '/p2p/'.length), [addr])
        await this.network.dial(addr, { timeoutMs: this.config.joinTimeoutMs }).catch(err => { this.parts.log('recover: cannot dial %s: %s', addr, err) })
      }
    } else {
      for (const definition of groups.all()) {
        incarnation.groups.set(definition.id, definition.membership === 'cluster' ? groups.found(definition) : groups.waiting(definition))
      }
    }
    this.lifecycle.becomeMember(incarnation)
    this.parts.flusher.schedule()
  }

  private partInputs (): PartInputs {
    return {
      config: this.config as PeerConfig<unknown, unknown, unknown>,
      self: this.network.peerId,
      privateKey: this.privateKey,
      network: this.network,
      lifecycle: this.lifecycle,
      clock: this.clock,
      random: this.random,
      counters: this.counters,
      limits: this.limits,
      metrics: this.metrics,
      store: this.store,
      identity: () => ({ cluster: this.config.cluster, privateKey: privateKeyToProtobuf(this.privateKey) }),
      foldOptions: (definition) => this.foldOptions(definition),
      signHeads: (replicas) => { this.signHeads(replicas) },
      transportStats: () => this.network.stats?.() ?? NO_TRANSPORT_STATS,
      loggers: this.loggers
    }
  }

  private foldOptions<A, B, C> (definition: GroupDefinition<A, B, C>): EventFoldOptions<A, C> {
    if (this.internals.unsignedEvents === true) return { freezeStates: this.config.freezeStates }
    return { freezeStates: this.config.freezeStates, signatures: eventSignatures(definition.origin, this.self, this.signing(), definition.codecs) }
  }

  /** Signs the own heads of several groups at once (event-signatures.ts, `signHeadsTogether`). */
  private signHeads (replicas: readonly SomeReplica[]): void {
    if (this.internals.unsignedEvents === true) return
    const heads: HeadOfGroup[] = []
    for (const replica of replicas) {
      const head = replica.fold?.unsignedHead()
      if (head !== undefined) heads.push({ origin: replica.definition.origin, head })
    }
    if (heads.length > 1) signHeadsTogether(this.signing(), this.self, heads)
  }

  /** The peer's signer, made once, counting its signatures. */
  private signing (): PeerSigner {
    return this.signer ??= peerSigner(this.privateKey, () => { this.counters.headsSigned++ })
  }

  private signer: PeerSigner | undefined

  private async registerProtocols (): Promise<void> {
    const p = this.parts
    await p.propagation.start()
    await p.sync.start()
    await p.push.start()
    await p.outputs.start()
    await p.joining.start()
    await p.heartbeats.start()
    await p.messaging.start()
    const { onCall, onCast } = this.config
    if (onCall !== undefined) p.messaging.handleCall('', async (body, context) => await onCall(context.from, body, context))
    if (onCast !== undefined) p.messaging.handleCast('', (body, context) => { onCast(context.from, body, context) })
  }

  // -----------------------------------------------------------------------------------------
  // The public handle

  multiaddrs (): string[] {
    return this.network.multiaddrs()
  }

  applyFast (event: E): O {
    return this.root.applyFast(event)
  }

  async applyConsistent (event: E, options: WaitOptions = {}): Promise<O> {
    return await this.root.applyConsistent(event, { timeoutMs: DEFAULT_CONSISTENT_TIMEOUT_MS, ...options })
  }

  readState (): ClusterState<S> {
    return this.root.readState()
  }

  subscribe (listener: (state: ClusterState<S>) => void): () => void {
    return this.root.subscribe(listener)
  }

  changes (options?: { signal?: AbortSignal }): AsyncIterableIterator<ClusterState<S>> {
    return this.root.changes(options)
  }

  async cast (peer: Participant, payload: Uint8Array): Promise<void> {
    await this.parts.messaging.cast(peer, '', payload)
  }

  async call (peer: Participant, payload: Uint8Array, options?: WaitOptions): Promise<Uint8Array> {
    return await this.parts.messaging.call(peer, '', payload, options)
  }

  async broadcast (payload: Uint8Array): Promise<void> {
    await this.parts.messaging.broadcast('', payload)
  }

  async broadcall (payload: Uint8Array, options?: WaitOptions): Promise<Map<Participant, BroadcallResult<Uint8Array>>> {
    return await this.parts.messaging.broadcall('', payload, options)
  }

  channel<Req, Rep> (channel: MessageChannel<Req, Rep>): ChannelHandle<Req, Rep> {
    return this.parts.messaging.channel(channel)
  }

  async eject (peer: Participant, options?: WaitOptions): Promise<Dissemination> {
    if (this.lifecycle.stopped) throw new StoppedError()
    if (typeof peer !== 'string' || peer === '') throw new TypeError('peer must be a peer id string')
    return await this.parts.ejection.eject(peer, options)
  }

  stats (): LegionStats {
    if (this.lifecycle.stopped) throw new StoppedError()
    return this.parts.observer.stats()
  }

  async stop (options: { leave?: boolean, timeoutMs?: number } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options)
    await this.stopping
  }

  private async shutdown (options: { leave?: boolean, timeoutMs?: number }): Promise<void> {
    const p = this.parts as Parts | undefined
    if (p !== undefined) {
      // Acknowledgements owed without hurry leave now, not with a timer that will not fire:
      // the others would otherwise wait for this peer's return or ejection to settle those
      // events. (Before the services stop: their groups' debts go with them.)
      if (p.propagation.payEveryDebtNext()) {
        await p.flusher.flushNow()
        await p.propagation.sent(SEND_DRAIN_MS)
      }
      await this.serviceHost?.stop(options.leave !== false)
      if (options.leave !== false) await p.ejection.leave(options.timeoutMs ?? 5000)
    }
    for (const t of this.timers) t.cancel()
    this.timers = []
    const incarnation = this.lifecycle.incarnation
    for (const r of replicas(incarnation)) r.rejectPending(() => new StoppedError())
    this.lifecycle.stop()
    if (p !== undefined) {
      p.propagation.stop()
      p.heartbeats.stop()
      p.groups.closeAll()
      await p.flusher.idle()
      if (incarnation !== undefined) await p.persistence.save(incarnation.groups.values()).catch(err => { p.log.error('final save failed: %s', err) })
      p.persistence.releaseAll()
    }
    if (this.network !== undefined) await this.network.stop() // undefined when start-up failed early
    await this.store?.close()
  }
}

function replicas (incarnation: Incarnation | undefined): SomeReplica[] {
  return incarnation === undefined ? [] : [...incarnation.groups.values()]
}

function newCounters (): LegionCounters {
  return {
    eventsApplied: 0, eventsFolded: 0, diffMerges: 0, fullMerges: 0, mergeRefusals: 0, syncsRequested: 0, syncsServed: 0, outputsForwarded: 0,
    droppedUndecodable: 0, droppedWrongCluster: 0, droppedNonParticipant: 0, droppedForged: 0, divergences: 0, droppedDenied: 0, heartbeatsSent: 0,
    autoEjections: 0, timesEjected: 0, rejoins: 0, handedOver: 0, droppedRateLimited: 0, droppedFrames: 0, refusedConnections: 0, bytesIn: 0, bytesOut: 0,
    messagesIn: 0, messagesOut: 0, droppedUnknownGroup: 0, droppedUnknownParticipants: 0, hookErrors: 0, acknowledgementsRode: 0, acknowledgementsDelayed: 0, headsSigned: 0, saveFailures: 0, flushFailures: 0
  }
}
