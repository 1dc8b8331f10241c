/**
 * Topic broadcast over gossipsub, reduced to bytes in and bytes out.
 *
 * Wraps `@libp2p/gossipsub` so that callers see: a handler per topic receiving
 * `(from, data)`, a `publish` that reports how many peers it reached instead of
 * throwing when there are none yet, and an event-driven wait for topic peers.
 *
 * Signing policy (`GossipSigning`):
 * - `'strict-sign'` (default): every message carries the author's key and a
 *   signature checked by every receiver, so `from` is proven. Costs one
 *   Ed25519 sign per publish and one verify per message received: the further
 *   copies that other mesh peers forward are recognised by author and sequence
 *   number before their signature is checked ({@link signedMessageFastId}).
 * - `'strict-no-sign'`: no signature; roughly 3x faster delivery in clusters
 *   where CPU dominates. Gossipsub then identifies a message by the hash of
 *   its data, which would silently drop a second publish of identical bytes,
 *   so this module wraps the data in an envelope that makes every publish
 *   unique and names the author:
 *
 *   ```
 *   offset  size   field
 *   0       1      authorLength (1..128)
 *   1       n      author peer id, UTF-8 (its usual string form)
 *   1+n     8      sequence number, big-endian: 4 random bytes fixed per node,
 *                  then a 32-bit counter
 *   9+n     rest   data
 *   ```
 *
 *   `from` is then the author the envelope claims; it is not proven (any
 *   cluster member could forge it). Both ends of a cluster must use the same
 *   policy; gossipsub rejects messages of the other kind.
 *
 * @module
 */

import { TimeoutError, AbortError, GossipDisabledError } from './errors.js'
import type { GossipSub, GossipsubMessage } from '@libp2p/gossipsub'
import type { Logger } from '@libp2p/interface'

/**
 * Gossipsub's `fastMsgIdFn` for signed messages: the author's key and the sequence number,
 * which together name a signed message (they are what its message id is made of), read
 * before the signature is checked. Without it gossipsub checks the signature of every copy it
 * receives, and each message arrives once from every mesh peer that forwards it (up to a
 * dozen): 128 in-process peers spent most of their one thread checking signatures of copies
 * (docs/BENCHMARKS.md). Safe against forgery because gossipsub remembers a fast id only once
 * its message passed validation: a forged copy sent first is rejected and remembers nothing,
 * and a copy reusing a validated message's author and number is dropped undelivered. A
 * message without author or number (invalid under strict signing) gets the empty id, which
 * no validated message has.
 */
export function signedMessageFastId (message: { readonly from?: Uint8Array, readonly seqno?: Uint8Array }): string {
  const { from, seqno } = message
  if (from === undefined || seqno === undefined || from.length === 0 || seqno.length === 0) return ''
  return `${Buffer.from(from.buffer, from.byteOffset, from.byteLength).toString('base64')}:${Buffer.from(seqno.buffer, seqno.byteOffset, seqno.byteLength).toString('base64')}`
}

/** How gossip messages are authenticated; see the module documentation. */
export type GossipSigning = 'strict-sign' | 'strict-no-sign'

/**
 * Receives the messages published on a topic by other peers (never our own).
 * `from` is the author's peer id. `data` is owned by the handler. A throw or
 * rejection is logged and counted, and does not affect other handlers.
 */
export type GossipHandler = (from: string, data: Uint8Array) => void | Promise<void>

/** Options of {@link Gossip.waitForTopicPeers}. */
export interface WaitForTopicPeersOptions {
  /**
   * Reject with `TimeoutError` after this many milliseconds.
   *
   * @default 10_000
   */
  timeoutMs?: number
  /** Reject with `AbortError` when this fires. */
  signal?: AbortSignal
}

/** Counters of the gossip layer. */
export interface GossipStats {
  /** Calls to `publish`. */
  published: number
  /** Publishes that reached no peer (nobody subscribed yet, or no stream yet). */
  publishedToNobody: number
  /** Messages handed to at least one local handler. */
  delivered: number
  /** Received messages dropped because their envelope did not decode (strict-no-sign only). */
  malformed: number
  /** Handlers that threw or rejected. */
  handlerErrors: number
}

/** Publish/subscribe on topics. */
export interface Gossip {
  /**
   * Subscribes `handler` to `topic` and returns the function that removes it.
   * The node leaves the topic when its last handler is removed.
   */
  subscribe(topic: string, handler: GossipHandler): () => void
  /**
   * Publishes `data` on `topic` and resolves with the number of peers it was
   * sent to directly (0 when no peer has subscribed yet: the message is then
   * lost, not queued). Never throws for lack of peers.
   */
  publish(topic: string, data: Uint8Array): Promise<number>
  /**
   * Peers that `publish` on `topic` would reach now: known to be subscribed,
   * and our gossip stream to them is open.
   */
  topicPeers(topic: string): string[]
  /**
   * Resolves with {@link Gossip.topicPeers} once it holds at least `n` peers.
   * Woken by events (a peer's subscription arriving, our gossip stream to a
   * peer opening), never by polling. Both conditions matter: a peer's
   * subscription can arrive before our own stream to it is open, and a
   * publish in that gap reaches nobody. Rejects with `TimeoutError`, or
   * `AbortError` (signal, or transport stopped).
   */
  waitForTopicPeers(topic: string, n: number, options?: WaitForTopicPeersOptions): Promise<string[]>
  /** A snapshot of the counters. */
  stats(): GossipStats
  /** Removes every listener and rejects every pending wait. */
  stop(): void
}

/** What the gossip layer needs. */
export interface GossipComponents {
  /** The gossipsub service, or undefined when gossip is disabled. */
  pubsub: GossipSub | undefined
  /** Our own peer id (author field of unsigned envelopes). */
  peerId: string
  /** Namespaced logger, e.g. `legion:gossip`. */
  log: Logger
}

/** Tunables of the gossip layer. */
export interface GossipInit {
  /**
   * Message signing policy; must match the gossipsub service's.
   *
   * @default 'strict-sign'
   */
  signing?: GossipSigning
}

/** Creates a {@link Gossip} over a started gossipsub service. */
export function createGossip (components: GossipComponents, init: GossipInit = {}): Gossip {
  return components.pubsub === undefined
    ? new DisabledGossip()
    : new TopicGossip(components.pubsub, components.peerId, components.log, init.signing ?? 'strict-sign')
}

const MAX_AUTHOR_BYTES = 128
const SEQUENCE_BYTES = 8
const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { fatal: true })

/** Encodes the strict-no-sign envelope (see the module documentation). */
export function encodeUnsignedEnvelope (author: Uint8Array, sequenceHigh: number, sequenceLow: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + author.byteLength + SEQUENCE_BYTES + data.byteLength)
  out[0] = author.byteLength
  out.set(author, 1)
  const view = new DataView(out.buffer, out.byteOffset + 1 + author.byteLength, SEQUENCE_BYTES)
  view.setUint32(0, sequenceHigh)
  view.setUint32(4, sequenceLow)
  out.set(data, 1 + author.byteLength + SEQUENCE_BYTES)
  return out
}

/** A decoded strict-no-sign envelope. */
export interface UnsignedEnvelope {
  /** Peer id the envelope names as author (claimed, not proven). */
  author: string
  /** The published data (a view into the envelope). */
  data: Uint8Array
}

/** Decodes the strict-no-sign envelope; `undefined` when the bytes are not one. */
export function decodeUnsignedEnvelope (bytes: Uint8Array): UnsignedEnvelope | undefined {
  const authorLength = bytes[0]
  if (authorLength === undefined || authorLength === 0 || authorLength > MAX_AUTHOR_BYTES ||
      bytes.byteLength < 1 + authorLength + SEQUENCE_BYTES) {
    return undefined
  }
  let author: string
  try {
    author = textDecoder.decode(bytes.subarray(1, 1 + authorLength))
  } catch {
    return undefined
  }
  return { author, data: bytes.subarray(1 + authorLength + SEQUENCE_BYTES) }
}

/**
 * Makes `onOpen` run whenever gossipsub records a new outbound stream, and
 * returns gossipsub's map of them.
 *
 * Reaches into @libp2p/gossipsub 17.1.x internals (`streamsOutbound`, a Map
 * keyed by peer id string) because no event says when gossipsub can send to a
 * peer, and a peer's subscription routinely arrives before our own stream to
 * it is open. (Stream middleware, the public hook, is unusable in libp2p
 * 3.3.11: `Registrar.getMiddleware` hands out its stored array and every
 * inbound stream pushes its handler onto it.) If the shape is not as expected,
 * returns undefined and the caller falls back to subscriptions alone.
 */
function observeOutboundStreams (pubsub: GossipSub, onOpen: () => void): Map<string, unknown> | undefined {
  const streams = (pubsub as unknown as { streamsOutbound?: unknown }).streamsOutbound
  if (!(streams instanceof Map)) {
    return undefined
  }
  const map = streams as Map<string, unknown>
  const set = map.set.bind(map)
  // an own property shadowing Map.prototype.set, on this one instance only
  map.set = (key: string, value: unknown) => {
    set(key, value)
    onOpen()
    return map
  }
  return map
}

interface PendingWait {
  /** Resolves the wait if its condition now holds. */
  check(): void
  /** Rejects the wait. */
  fail(err: Error): void
}

class DisabledGossip implements Gossip {
  subscribe (): () => void { throw new GossipDisabledError() }
  async publish (): Promise<number> { throw new GossipDisabledError() }
  topicPeers (): string[] { return [] }
  async waitForTopicPeers (): Promise<string[]> { throw new GossipDisabledError() }
  stats (): GossipStats { return { published: 0, publishedToNobody: 0, delivered: 0, malformed: 0, handlerErrors: 0 } }
  stop (): void {}
}

class TopicGossip implements Gossip {
  readonly #pubsub: GossipSub
  /** gossipsub's internal map of open outbound streams, keyed by peer id; undefined if its shape changed. */
  readonly #outbound: Map<string, unknown> | undefined
  readonly #log: Logger
  readonly #signing: GossipSigning
  readonly #author: Uint8Array
  readonly #handlers = new Map<string, Set<GossipHandler>>()
  readonly #waits = new Set<PendingWait>()
  readonly #counters: GossipStats = { published: 0, publishedToNobody: 0, delivered: 0, malformed: 0, handlerErrors: 0 }
  readonly #onMessage = (evt: CustomEvent<GossipsubMessage>): void => { this.#deliver(evt.detail) }
  readonly #onSubscriptionChange = (): void => { this.#recheckWaits() }
  #sequenceHigh: number
  #sequenceLow = 0
  #stopped = false

  constructor (pubsub: GossipSub, peerId: string, log: Logger, signing: GossipSigning) {
    this.#pubsub = pubsub
    this.#outbound = observeOutboundStreams(pubsub, () => { this.#recheckWaits() })
    this.#log = log
    this.#signing = signing
    this.#author = textEncoder.encode(peerId)
    this.#sequenceHigh = crypto.getRandomValues(new Uint32Array(1))[0] ?? 0
    pubsub.addEventListener('gossipsub:message', this.#onMessage)
    pubsub.addEventListener('subscription-change', this.#onSubscriptionChange)
  }

  subscribe (topic: string, handler: GossipHandler): () => void {
    let set = this.#handlers.get(topic)
    if (set === undefined) {
      set = new Set()
      this.#handlers.set(topic, set)
      this.#pubsub.subscribe(topic)
    }
    // wrap so that subscribing the same function twice yields two independent subscriptions
    const entry: GossipHandler = (from, data) => handler(from, data)
    set.add(entry)
    return () => {
      const current = this.#handlers.get(topic)
      if (current?.delete(entry) === true && current.size === 0) {
        this.#handlers.delete(topic)
        if (!this.#stopped) {
          this.#pubsub.unsubscribe(topic)
        }
      }
    }
  }

  async publish (topic: string, data: Uint8Array): Promise<number> {
    if (this.#stopped) {
      return 0
    }
    this.#counters.published++
    const payload = this.#signing === 'strict-sign' ? data : this.#envelope(data)
    const result = await this.#pubsub.publish(topic, payload)
    if (result.recipients.length === 0) {
      this.#counters.publishedToNobody++
    }
    return result.recipients.length
  }

  topicPeers (topic: string): string[] {
    const subscribers = this.#pubsub.getSubscribers(topic).map(peer => peer.toString())
    const outbound = this.#outbound
    return outbound === undefined ? subscribers : subscribers.filter(peer => outbound.has(peer))
  }

  async waitForTopicPeers (topic: string, n: number, options: WaitForTopicPeersOptions = {}): Promise<string[]> {
    const { signal } = options
    const timeoutMs = options.timeoutMs ?? 10_000
    const now = this.topicPeers(topic)
    if (now.length >= n) {
      return now
    }
    if (signal?.aborted === true) {
      throw new AbortError(undefined, { cause: signal.reason })
    }
    if (this.#stopped) {
      throw new AbortError('transport stopped')
    }
    return await new Promise<string[]>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#waits.delete(wait)
      }
      const wait: PendingWait = {
        check: () => {
          const peers = this.topicPeers(topic)
          if (peers.length >= n) {
            done()
            resolve(peers)
          }
        },
        fail: (err) => {
          done()
          reject(err)
        }
      }
      const onAbort = (): void => { wait.fail(new AbortError(undefined, { cause: signal?.reason })) }
      const timer = setTimeout(() => {
        wait.fail(new TimeoutError(`fewer than ${n} reachable peers on topic ${topic} after ${timeoutMs} ms (have ${this.topicPeers(topic).length})`, timeoutMs))
      }, timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waits.add(wait)
    })
  }

  stats (): GossipStats {
    return { ...this.#counters }
  }

  stop (): void {
    if (this.#stopped) {
      return
    }
    this.#stopped = true
    this.#pubsub.removeEventListener('gossipsub:message', this.#onMessage)
    this.#pubsub.removeEventListener('subscription-change', this.#onSubscriptionChange)
    for (const wait of [...this.#waits]) {
      wait.fail(new AbortError('transport stopped'))
    }
    this.#handlers.clear()
  }

  #recheckWaits (): void {
    for (const wait of [...this.#waits]) {
      wait.check()
    }
  }

  #envelope (data: Uint8Array): Uint8Array {
    this.#sequenceLow = (this.#sequenceLow + 1) >>> 0
    if (this.#sequenceLow === 0) {
      this.#sequenceHigh = (this.#sequenceHigh + 1) >>> 0
    }
    return encodeUnsignedEnvelope(this.#author, this.#sequenceHigh, this.#sequenceLow, data)
  }

  #deliver ({ msg }: GossipsubMessage): void {
    const handlers = this.#handlers.get(msg.topic)
    if (handlers === undefined || handlers.size === 0) {
      return
    }
    let from: string
    let data: Uint8Array
    if (msg.type === 'signed') {
      from = msg.from.toString()
      data = msg.data
    } else {
      const decoded = decodeUnsignedEnvelope(msg.data)
      if (decoded === undefined) {
        this.#counters.malformed++
        this.#log('dropped a gossip message on %s with a malformed envelope', msg.topic)
        return
      }
      from = decoded.author
      data = decoded.data
    }
    this.#counters.delivered++
    for (const handler of handlers) {
      try {
        const result = handler(from, data)
        if (result instanceof Promise) {
          result.catch((err: unknown) => { this.#handlerFailed(msg.topic, err) })
        }
      } catch (err) {
        this.#handlerFailed(msg.topic, err)
      }
    }
  }

  #handlerFailed (topic: string, err: unknown): void {
    this.#counters.handlerErrors++
    this.#log('gossip handler on %s failed - %s', topic, err instanceof Error ? err.message : String(err))
  }
}
