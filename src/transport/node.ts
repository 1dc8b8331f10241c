/**
 * One libp2p node configured for Legion, behind a small byte-moving contract.
 *
 * `createTransportNode` builds and starts libp2p (TCP or in-process memory
 * transport, Noise, Yamux, identify, ping, gossipsub) with limits chosen for
 * clusters of many processes on one host, and returns a {@link TransportNode}:
 * connections, topic gossip (`gossip.ts`) and request/response channels
 * (`channel.ts`), optionally closed to outsiders by a cluster secret and an
 * allow-list (`security.ts`). It knows nothing about what the bytes mean.
 *
 * @module
 */

// Must stay the first import: libp2p calls Promise.withResolvers, which Node 20 lacks.
import './polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub, StrictNoSign, StrictSign } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { logger } from '@libp2p/logger'
import { memory } from '@libp2p/memory'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { setImmediate as yieldToEventLoop, setTimeout as delay } from 'node:timers/promises'
import { createChannel } from './channel.js'
import { AbortError, isAborted, PeerUnreachableError } from './errors.js'
import { createGossip, signedMessageFastId } from './gossip.js'
import { createConnectionGuard, swarmKeyFromSecret } from './security.js'
import { quietLengthNoise } from './noise-lengths.js'
import { contiguousNoise } from './noise-writes.js'
import { halfWindowYamux } from './yamux-window.js'
import type { Channel, ChannelHandler, ChannelInit, ChannelStats, HandleOptions, RequestOptions, SendOptions } from './channel.js'
import type { Gossip, GossipHandler, GossipSigning, GossipStats, WaitForTopicPeersOptions } from './gossip.js'
import type { AllowPeers, ConnectionGuard, ConnectionStats } from './security.js'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, Logger, PeerId, PrivateKey } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { ServiceFactoryMap } from 'libp2p'

const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
/** Room for what a gossip RPC adds around the data: signature, key, topic, sequence number, control. */
const GOSSIP_RPC_OVERHEAD_BYTES = 64 * 1024

/** Options of {@link createTransportNode}; every field is optional. */
export interface TransportNodeOptions extends ChannelInit {
  /**
   * Which libp2p transport to use. `'memory'` connects nodes of the same
   * process only (tests, simulations); its addresses are process-global.
   *
   * @default 'tcp'
   */
  transport?: 'tcp' | 'memory'
  /**
   * Multiaddrs to listen on.
   *
   * @default ['/ip4/127.0.0.1/tcp/0'] for tcp, a unique '/memory/legion-<random>' for memory
   */
  listen?: string[]
  /**
   * The node's identity; its public key determines the peer id.
   *
   * @default a freshly generated Ed25519 key
   */
  privateKey?: PrivateKey
  /**
   * Whether to run gossipsub. Without it the gossip methods throw
   * `GossipDisabledError` (and `topicPeers` returns []).
   *
   * @default true
   */
  gossipsub?: boolean
  /**
   * Gossip message signing policy. `'strict-sign'` proves the author of every
   * message; `'strict-no-sign'` is about 3x faster but `from` is only claimed.
   * All nodes of a cluster must agree. See `gossip.ts`.
   *
   * @default 'strict-sign'
   */
  gossipSigning?: GossipSigning
  /**
   * Maximum number of connections before libp2p starts pruning.
   *
   * @default 300
   */
  maxConnections?: number
  /**
   * Inbound connections accepted per second from one host. libp2p defaults to
   * 5, which a cluster on one machine (every peer at 127.0.0.1) exceeds at
   * start-up.
   *
   * @default 1_000
   */
  inboundConnectionThreshold?: number
  /**
   * Suffix of this node's log namespaces: logs go to `legion:transport:<prefix>`,
   * `legion:channel:<prefix>`, `legion:gossip:<prefix>` (enable with `DEBUG=legion:*`).
   * Useful to tell apart several nodes in one process.
   *
   * @default none (`legion:transport`, ...)
   */
  logPrefix?: string
  /**
   * Makes the node's loggers (one per component: `transport`, `channel`, `gossip`), e.g. so
   * that every line carries the peer's id. Overrides `logPrefix`.
   * @default `debug` loggers `legion:<component>[:<logPrefix>]`
   */
  loggers?: (component: string) => Logger
  /**
   * The cluster secret: 32 bytes every node of the cluster shares. With it the
   * node runs a libp2p private network (`@libp2p/pnet`): every connection is
   * encrypted with the secret before Noise starts, so a node without the same
   * secret cannot complete a connection in either direction. Such failures
   * are counted in `connections.failedHandshakes`. Keep it secret like a
   * password; all nodes must use the same one (or all none).
   *
   * @default none: any libp2p node may connect
   */
  clusterSecret?: Uint8Array
  /**
   * Peers allowed to connect, checked by a connection gater once Noise has
   * proven the remote peer id, for inbound and outbound connections and
   * before dials: a list of peer id strings, or a predicate (which must be
   * fast and must not throw; a throw denies). Refusals are counted in
   * `connections.deniedPeers`.
   *
   * @default none: every peer is allowed
   */
  allowPeers?: AllowPeers
}

/** Counters of a transport node. */
export interface TransportStats {
  /** Request/response and one-way channel counters. */
  channel: ChannelStats
  /** Gossip counters. */
  gossip: GossipStats
  /** Peers with at least one open connection. */
  connectedPeers: number
  /** Connections refused (cluster secret, allow-list). */
  connections: ConnectionStats
}

/** Options of {@link TransportNode.dial}. */
export interface DialOptions {
  /**
   * Give up after this many milliseconds.
   *
   * @default 10_000
   */
  timeoutMs?: number
  /** Give up when this fires. */
  signal?: AbortSignal
}

/**
 * A started libp2p node, reduced to what a Legion runtime needs: connections,
 * topic gossip, and request/response channels. Peers are named by their peer
 * id strings.
 */
export interface TransportNode {
  /** This node's peer id. */
  readonly peerId: string
  /** Addresses other nodes can dial, each ending in `/p2p/<peerId>`. */
  multiaddrs(): string[]
  /**
   * Connects to `addr` and resolves with the remote peer id. `addr` is either a
   * multiaddr ending in `/p2p/<peerId>`, or a bare peer id, dialled at the
   * addresses the peer store learnt for it. Rejects with
   * `PeerUnreachableError` on failure, `AbortError` if the signal fired.
   */
  dial(addr: string, options?: DialOptions): Promise<string>
  /** The addresses the peer store knows for `peer` (empty when none). */
  peerAddresses(peer: string): Promise<string[]>
  /**
   * Adds `addresses` (multiaddrs, with or without `/p2p/<peer>`) to what the peer store knows
   * of `peer`, so that a dial by its id finds them later, even if the first dial failed.
   * Invalid ones (they come off the wire) are skipped.
   */
  rememberAddresses(peer: string, addresses: readonly string[]): Promise<void>
  /**
   * The protocols `peer` said it speaks (libp2p's identify, once it ran on a connection to
   * it; empty when it has not, or for an unknown peer). With `waitMs` (default 0: only what
   * the peer store holds), asks `peer` over an open connection instead (an identify request
   * answered within `waitMs`), and falls back to the peer store.
   */
  peerProtocols(peer: string, options?: { readonly waitMs?: number }): Promise<string[]>
  /** Closes every connection to `peer`. */
  hangUp(peer: string): Promise<void>
  /** Peers with at least one open connection. */
  connectedPeers(): string[]
  /** Calls `listener` when the first connection to a peer opens; returns the unsubscribe function. */
  onPeerConnected(listener: (peer: string) => void): () => void
  /** Calls `listener` when the last connection to a peer closes; returns the unsubscribe function. */
  onPeerDisconnected(listener: (peer: string) => void): () => void
  /** Round trip of a libp2p ping to a connected peer, in milliseconds. */
  ping(peer: string, options?: { signal?: AbortSignal }): Promise<number>

  /** See {@link Gossip.subscribe}. */
  subscribe(topic: string, handler: GossipHandler): () => void
  /** See {@link Gossip.publish}. */
  publish(topic: string, data: Uint8Array): Promise<number>
  /** See {@link Gossip.topicPeers}. */
  topicPeers(topic: string): string[]
  /** See {@link Gossip.waitForTopicPeers}. */
  waitForTopicPeers(topic: string, n: number, options?: WaitForTopicPeersOptions): Promise<string[]>

  /** See {@link Channel.handle}. */
  handle(protocol: string, handler: ChannelHandler, options?: HandleOptions): Promise<void>
  /** See {@link Channel.unhandle}. */
  unhandle(protocol: string): Promise<void>
  /** See {@link Channel.request}. */
  request(peer: string, protocol: string, payload: Uint8Array, options?: RequestOptions): Promise<Uint8Array>
  /** See {@link Channel.send}. */
  send(peer: string, protocol: string, payload: Uint8Array, options?: SendOptions): Promise<void>

  /** A snapshot of the counters. */
  stats(): TransportStats
  /**
   * Stops the node: rejects pending requests and waits, closes every stream
   * and connection, stops listening. Leaves no timer, socket or listener
   * behind. Idempotent.
   */
  stop(): Promise<void>
}

/** The libp2p services a transport node runs. */
interface Services extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  pubsub?: GossipSub
}

/** Creates, starts and returns a {@link TransportNode}. */
export async function createTransportNode (options: TransportNodeOptions = {}): Promise<TransportNode> {
  const transport = options.transport ?? 'tcp'
  const suffix = options.logPrefix !== undefined && options.logPrefix !== '' ? `:${options.logPrefix}` : ''
  const loggerFor = options.loggers ?? ((component: string) => logger(`legion:${component}${suffix}`))
  const log = loggerFor('transport')
  const listen = options.listen ?? (transport === 'tcp'
    ? ['/ip4/127.0.0.1/tcp/0']
    : [`/memory/legion-${randomHex(12)}`])
  const privateKey = options.privateKey ?? await generateKeyPair('Ed25519')
  const signing = options.gossipSigning ?? 'strict-sign'
  // validated before anything starts
  const swarmKey = options.clusterSecret !== undefined ? swarmKeyFromSecret(options.clusterSecret) : undefined
  const guard = createConnectionGuard(options.allowPeers)

  const services: ServiceFactoryMap<Services> = {
    identify: identify(),
    ping: ping()
  }
  if (options.gossipsub !== false) {
    services.pubsub = gossipsub({
      // our own messages are applied locally by the caller, never echoed back
      emitSelf: false,
      // publish() reports 0 recipients instead of throwing; callers that need
      // delivery wait for topic peers first (waitForTopicPeers)
      allowPublishToZeroTopicPeers: true,
      ignoreDuplicatePublishError: true,
      globalSignaturePolicy: signing === 'strict-sign' ? StrictSign : StrictNoSign,
      // copies of a signed message forwarded by other mesh peers are dropped before their
      // signature is checked (without this, every copy is checked: gossip.ts)
      ...(signing === 'strict-sign' ? { fastMsgIdFn: signedMessageFastId } : {}),
      // every node of a local cluster has the same IP; the default colocation
      // penalty would graylist peers once more than 10 share 127.0.0.1
      scoreParams: { IPColocationFactorWeight: 0 },
      // one gossip RPC carries one message (our data plus signature, key and
      // topic) or control traffic; refuse RPCs far above the frame limit
      // before decoding them (gossipsub's own default is a fixed 4 MiB)
      maxInboundDataLength: (options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES) + GOSSIP_RPC_OVERHEAD_BYTES
    })
  }

  const node: Libp2p<Services> = await createLibp2p<Services>({
    privateKey,
    addresses: { listen },
    transports: [transport === 'tcp' ? tcp() : memory()],
    // each Noise frame reaches the socket as one write, not two (noise-writes.ts), and the end
    // of each chunk read is found without constructing an error (noise-lengths.ts)
    connectionEncrypters: [quietLengthNoise(contiguousNoise())],
    ...(swarmKey !== undefined ? { connectionProtector: preSharedKey({ psk: swarmKey }) } : {}),
    connectionGater: guard.gater,
    // window updates once half the window is consumed, not after every data frame (yamux-window.ts)
    streamMuxers: [halfWindowYamux({
      // protocols (identify, gossipsub, channels) open streams right after a
      // connection is up; more than the default 10 resets the connection
      maxEarlyStreams: 64,
      maxInboundStreams: 1_024,
      maxOutboundStreams: 1_024,
      streamOptions: {
        // a paused stream (a channel whose handlers are all busy) stops
        // granting window, so the sender can still send up to one window; the
        // read buffer must hold that much or yamux resets the stream
        maxStreamWindowSize: 4 * 1024 * 1024,
        maxReadBufferLength: 8 * 1024 * 1024
      }
    })],
    connectionManager: {
      maxConnections: options.maxConnections ?? 300,
      inboundConnectionThreshold: options.inboundConnectionThreshold ?? 1_000,
      maxIncomingPendingConnections: 64
    },
    services
  })

  const peerId = node.peerId.toString()
  let channel: Channel
  try {
    channel = createChannel({ libp2p: node, log: loggerFor('channel') }, options)
  } catch (err) {
    // invalid channel options: do not leave a started node behind
    guard.stop()
    await node.stop()
    throw err
  }
  const gossip = createGossip({ pubsub: node.services.pubsub, peerId, log: loggerFor('gossip') }, { signing })
  log('started %s on %s', peerId, node.getMultiaddrs().map(ma => ma.toString()).join(', '))
  return new Libp2pTransportNode(node, channel, gossip, guard, log)
}

/**
 * @libp2p/gossipsub 17.1.x's stop() forgets its pending heartbeat timeout
 * without clearing it (a referenced timer of up to 1 s that then runs a
 * heartbeat on the stopped router). Read the timer, then stop: stop() marks the
 * router stopped synchronously, so no heartbeat can be rescheduled in between.
 * libp2p's own stop() later finds the router stopped and skips it.
 */
async function stopGossipsub (pubsub: GossipSub | undefined): Promise<void> {
  if (pubsub === undefined) {
    return
  }
  const internals = pubsub as unknown as {
    status?: { heartbeatTimeout?: ReturnType<typeof setTimeout> }
    stop?: () => Promise<void>
  }
  const heartbeat = internals.status?.heartbeatTimeout
  const stopping = typeof internals.stop === 'function' ? internals.stop() : Promise.resolve()
  clearTimeout(heartbeat)
  await stopping
}

/**
 * libp2p 3.3.x's address manager is not stopped with the node: the
 * 'transport:close' events of stop() arm a debounced peer-store update, a
 * referenced 1 s timer that keeps the process alive after stop(). Cancel it.
 * Reaches into libp2p internals (guarded: does nothing if the shape changes).
 */
function cancelAddressManagerDebounce (node: Libp2p<Services>): void {
  const internals = node as unknown as {
    components?: { addressManager?: { _updatePeerStoreAddresses?: { stop?: unknown } } }
  }
  const debounced = internals.components?.addressManager?._updatePeerStoreAddresses
  if (typeof debounced?.stop === 'function') {
    debounced.stop()
  }
}

/**
 * Lets the last traces of a libp2p shutdown clear before stop() resolves, so
 * that afterwards the process holds nothing of this node:
 * - queues (it-queue) that finish jobs during shutdown arm 1 ms debounce
 *   timers; a 1 ms timer armed after them fires after them;
 * - libp2p resolves stop() when the server and sockets emit 'close', which
 *   Node does before libuv releases the handles in the loop's close phase;
 *   two turns of the loop pass that phase.
 * Not a synchronisation sleep: each step waits for a known, bounded event.
 */
async function settleShutdown (): Promise<void> {
  await delay(1)
  await yieldToEventLoop()
  await yieldToEventLoop()
}

function toPeerId (peer: string): PeerId {
  try {
    return peerIdFromString(peer)
  } catch (err) {
    throw new PeerUnreachableError(`invalid peer id ${JSON.stringify(peer)}`, peer, { cause: err })
  }
}

function randomHex (bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex')
}

class Libp2pTransportNode implements TransportNode {
  readonly peerId: string
  readonly #node: Libp2p<Services>
  readonly #channel: Channel
  readonly #gossip: Gossip
  readonly #guard: ConnectionGuard
  readonly #log: ReturnType<typeof logger>
  readonly #peerListeners = new Set<{ event: 'peer:connect' | 'peer:disconnect', fn: (evt: CustomEvent<PeerId>) => void }>()
  #stopping: Promise<void> | undefined

  constructor (node: Libp2p<Services>, channel: Channel, gossip: Gossip, guard: ConnectionGuard, log: ReturnType<typeof logger>) {
    this.#node = node
    this.#channel = channel
    this.#gossip = gossip
    this.#guard = guard
    this.#log = log
    this.peerId = node.peerId.toString()
  }

  multiaddrs (): string[] {
    return this.#node.getMultiaddrs().map(ma => ma.toString())
  }

  async dial (addr: string, options: DialOptions = {}): Promise<string> {
    let target
    try {
      // A bare peer id dials through the peer store (addresses learnt by identify).
      target = addr.startsWith('/') ? multiaddr(addr) : toPeerId(addr)
    } catch (err) {
      throw new PeerUnreachableError(`invalid multiaddr ${JSON.stringify(addr)}`, addr, { cause: err })
    }
    const { signal } = options
    if (signal?.aborted === true) {
      throw new AbortError(undefined, { cause: signal.reason })
    }
    // an explicit timer rather than AbortSignal.timeout, so nothing outlives the call
    const controller = new AbortController()
    const timeoutMs = options.timeoutMs ?? 10_000
    const timer = setTimeout(() => { controller.abort(new Error(`dial timed out after ${timeoutMs} ms`)) }, timeoutMs)
    const onAbort = (): void => { controller.abort(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const connection = await this.#node.dial(target, { signal: controller.signal })
      return connection.remotePeer.toString()
    } catch (err) {
      if (signal !== undefined && isAborted(signal)) {
        throw new AbortError(undefined, { cause: signal.reason })
      }
      throw new PeerUnreachableError(`cannot dial ${addr}: ${err instanceof Error ? err.message : String(err)}`, addr, { cause: err })
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  async peerAddresses (peer: string): Promise<string[]> {
    try {
      const known = await this.#node.peerStore.get(toPeerId(peer))
      return known.addresses.map(a => a.multiaddr.toString())
    } catch {
      return [] // unknown peer or invalid id: nothing to offer
    }
  }

  async rememberAddresses (peer: string, addresses: readonly string[]): Promise<void> {
    let id: PeerId
    try { id = toPeerId(peer) } catch { return }
    const suffix = `/p2p/${peer}`
    const multiaddrs = []
    for (const a of addresses) {
      try { multiaddrs.push(multiaddr(a.endsWith(suffix) ? a.slice(0, -suffix.length) : a)) } catch { /* not a multiaddr: skipped */ }
    }
    if (multiaddrs.length === 0) return
    try {
      await this.#node.peerStore.merge(id, { multiaddrs })
    } catch (err) {
      this.#log('could not remember the addresses of %s: %s', peer, err)
    }
  }

  async peerProtocols (peer: string, options: { readonly waitMs?: number } = {}): Promise<string[]> {
    let id: PeerId
    try { id = toPeerId(peer) } catch { return [] }
    const known = async (): Promise<string[]> => {
      try { return [...(await this.#node.peerStore.get(id)).protocols] } catch { return [] } // not in the peer store
    }
    const waitMs = options.waitMs ?? 0
    const connection = this.#node.getConnections(id)[0]
    if (waitMs <= 0 || connection === undefined) return await known()
    // Asked, not looked up: the identify libp2p runs on its own may not have come back yet.
    try {
      return [...(await this.#node.services.identify.identify(connection, { signal: AbortSignal.timeout(waitMs) })).protocols]
    } catch {
      return await known()
    }
  }

  async hangUp (peer: string): Promise<void> {
    await this.#node.hangUp(toPeerId(peer))
  }

  connectedPeers (): string[] {
    return this.#node.getPeers().map(peer => peer.toString())
  }

  onPeerConnected (listener: (peer: string) => void): () => void {
    return this.#listen('peer:connect', listener)
  }

  onPeerDisconnected (listener: (peer: string) => void): () => void {
    return this.#listen('peer:disconnect', listener)
  }

  async ping (peer: string, options: { signal?: AbortSignal } = {}): Promise<number> {
    return await this.#node.services.ping.ping(toPeerId(peer), options)
  }

  subscribe (topic: string, handler: GossipHandler): () => void {
    return this.#gossip.subscribe(topic, handler)
  }

  async publish (topic: string, data: Uint8Array): Promise<number> {
    return await this.#gossip.publish(topic, data)
  }

  topicPeers (topic: string): string[] {
    return this.#gossip.topicPeers(topic)
  }

  async waitForTopicPeers (topic: string, n: number, options?: WaitForTopicPeersOptions): Promise<string[]> {
    return await this.#gossip.waitForTopicPeers(topic, n, options)
  }

  async handle (protocol: string, handler: ChannelHandler, options?: HandleOptions): Promise<void> {
    await this.#channel.handle(protocol, handler, options)
  }

  async unhandle (protocol: string): Promise<void> {
    await this.#channel.unhandle(protocol)
  }

  async request (peer: string, protocol: string, payload: Uint8Array, options?: RequestOptions): Promise<Uint8Array> {
    return await this.#channel.request(peer, protocol, payload, options)
  }

  async send (peer: string, protocol: string, payload: Uint8Array, options?: SendOptions): Promise<void> {
    await this.#channel.send(peer, protocol, payload, options)
  }

  stats (): TransportStats {
    return {
      channel: this.#channel.stats(),
      gossip: this.#gossip.stats(),
      connectedPeers: this.#node.getPeers().length,
      connections: this.#guard.stats()
    }
  }

  async stop (): Promise<void> {
    this.#stopping ??= this.#stop()
    await this.#stopping
  }

  async #stop (): Promise<void> {
    for (const { event, fn } of this.#peerListeners) {
      this.#node.removeEventListener(event, fn)
    }
    this.#peerListeners.clear()
    this.#gossip.stop()
    this.#guard.stop()
    await this.#channel.stop()
    await stopGossipsub(this.#node.services.pubsub)
    await this.#node.stop()
    cancelAddressManagerDebounce(this.#node)
    await settleShutdown()
    this.#log('stopped %s', this.peerId)
  }

  #listen (event: 'peer:connect' | 'peer:disconnect', listener: (peer: string) => void): () => void {
    const fn = (evt: CustomEvent<PeerId>): void => {
      try {
        listener(evt.detail.toString())
      } catch (err) {
        this.#log.error('%s listener threw - %s', event, err instanceof Error ? err.message : String(err))
      }
    }
    const entry = { event, fn }
    this.#peerListeners.add(entry)
    this.#node.addEventListener(event, fn)
    return () => {
      if (this.#peerListeners.delete(entry)) {
        this.#node.removeEventListener(event, fn)
      }
    }
  }
}
