/**
 * The admission pipeline every inbound message goes through, whatever its protocol: it is
 * counted; dropped (and the sender's connections closed) if `allowPeers` no longer allows the
 * sender; taken as evidence that the sender is alive; decoded with the peer's limits (an
 * undecodable message is counted and refused); fenced (a protocol that only participants may
 * use refuses anyone the cluster's projected participants do not include); and only then
 * handed to its part. Answers to this peer's own requests go through {@link Inbound.admitAnswer}.
 * Parts register handlers here instead of on the transport, so none of them repeats this.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { DecodeLimits } from '../codec/codec.js'
import { DecodeError } from '../codec/errors.js'
import type { Participant } from '../eventfold/types.js'
import type { Lifecycle } from './lifecycle.js'
import type { Network } from './network.js'
import type { LegionCounters } from './options.js'
import { encodeRefusal, protocolId, type RefusalCode } from './protocol/message.js'

/** What the pipeline needs. */
export interface InboundComponents {
  /** The cluster's name (every protocol id carries it). */
  readonly cluster: string
  /** The network. */
  readonly network: Network
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Message limits. */
  readonly limits: DecodeLimits
  /** Whether `allowPeers` allows a peer now. */
  readonly allows: (peer: Participant) => boolean
  /** Records that a peer was heard from (failure detection). */
  readonly heard: (peer: Participant) => void
  /** Whether a peer is a projected participant of the cluster. */
  readonly isMember: (peer: Participant) => boolean
  /** The pipeline's logger. */
  readonly log: Logger
}

/** Who may use a protocol. */
export type Fence = 'members' | 'anyone'

/** A request handler: the decoded request in, the encoded answer out. */
export type RequestHandler<T> = (from: Participant, request: T) => Promise<Uint8Array> | Uint8Array

/** A one-way handler. */
export type OneWayHandler<T> = (from: Participant, message: T) => void

/** A refusal, thrown by a handler to answer with it. */
export class Refused extends Error {
  override readonly name = 'Refused'
  constructor (readonly code: RefusalCode, message: string) {
    super(message)
  }
}

/** The admission pipeline; see the module comment. */
export class Inbound {
  constructor (private readonly components: InboundComponents) {}

  /** The full protocol id of `name` in this cluster. */
  protocol (name: string): string {
    return protocolId(this.components.cluster, name)
  }

  /**
   * Counts an incoming message and decides whether to look at it: not if `allowPeers` no
   * longer allows the sender (its connections are then closed). An admitted message is
   * evidence that its sender is alive.
   */
  admit (from: Participant, bytes: Uint8Array): boolean {
    const c = this.components
    c.counters.messagesIn++
    c.counters.bytesIn += bytes.length
    if (!c.allows(from)) {
      c.counters.droppedDenied++
      void c.network.hangUp(from).catch(() => {})
      return false
    }
    c.heard(from)
    return true
  }

  /**
   * Whether to look at `answer`, the answer of `peer` to a request made at `epoch`: not if
   * this peer stopped, rejoined since (the answer is about the old membership), or no longer
   * accepts `peer` (not allowed, or, when `fence` is `members`, not a participant).
   */
  admitAnswer (peer: Participant, answer: Uint8Array, epoch: number, fence: Fence = 'members'): boolean {
    const c = this.components
    c.counters.messagesIn++
    c.counters.bytesIn += answer.length
    if (c.lifecycle.stopped || c.lifecycle.incarnation?.epoch !== epoch || !c.allows(peer)) return false
    if (fence === 'members' && !c.isMember(peer)) { c.counters.droppedNonParticipant++; return false }
    c.heard(peer)
    return true
  }

  /** Counts a message this peer received outside the pipeline (an answer it read anyway). */
  countIn (bytes: Uint8Array): void {
    this.components.counters.messagesIn++
    this.components.counters.bytesIn += bytes.length
  }

  /** Counts a message this peer sends. */
  countOut (bytes: Uint8Array): void {
    this.components.counters.messagesOut++
    this.components.counters.bytesOut += bytes.length
  }

  /**
   * Registers a request/response protocol: admitted, decoded with `decode`, fenced, then
   * answered by `handler`. A handler may throw {@link Refused} to answer with a refusal.
   */
  async request<T> (name: string, fence: Fence, decode: (bytes: Uint8Array, limits: DecodeLimits) => T, handler: RequestHandler<T>): Promise<void> {
    const c = this.components
    await c.network.handle(this.protocol(name), async (from, payload) => {
      if (!this.admit(from, payload)) throw new Error('this peer does not accept messages from you (allowPeers)')
      let answer: Uint8Array
      const phase = c.lifecycle.phase.kind
      if (phase === 'stopped') answer = encodeRefusal('stopping', 'this peer is stopping')
      // A peer that is not a participant itself (starting, or ejected) has no view of the
      // membership to judge anyone by: it must not say "you are not a participant", which
      // the asker would take as news of its own ejection.
      else if (fence === 'members' && phase !== 'member' && phase !== 'leaving') answer = encodeRefusal('not-ready', 'this peer is not a participant now')
      else if (fence === 'members' && !c.isMember(from)) {
        c.counters.droppedNonParticipant++
        answer = encodeRefusal('not-participant', 'you are not a participant')
      } else {
        let request: T | undefined
        try {
          request = decode(payload, c.limits)
        } catch (err) {
          c.counters.droppedUndecodable++
          c.log('undecodable %s request from %s: %s', name, from, err)
          answer = encodeRefusal('bad-request', err instanceof DecodeError ? err.message : 'undecodable')
        }
        if (request !== undefined) {
          try {
            answer = await handler(from, request)
          } catch (err) {
            if (!(err instanceof Refused)) throw err
            answer = encodeRefusal(err.code, err.message)
          }
        }
      }
      this.countOut(answer!)
      return answer!
    })
  }

  /** Registers a one-way protocol: admitted, fenced, decoded, then handed to `handler`. */
  async oneWay<T> (name: string, fence: Fence, decode: (bytes: Uint8Array, limits: DecodeLimits) => T, handler: OneWayHandler<T>): Promise<void> {
    await this.components.network.handle(this.protocol(name), (from, payload) => {
      this.deliver(name, fence, from, payload, decode, handler)
      return undefined
    })
  }

  /** Subscribes to a gossip topic through the same pipeline as a one-way protocol. */
  topic<T> (name: string, decode: (bytes: Uint8Array, limits: DecodeLimits) => T, handler: OneWayHandler<T>): () => void {
    return this.components.network.subscribe(this.protocol(name), (from, payload) => {
      this.deliver(name, 'members', from, payload, decode, handler)
    })
  }

  private deliver<T> (name: string, fence: Fence, from: Participant, payload: Uint8Array, decode: (bytes: Uint8Array, limits: DecodeLimits) => T, handler: OneWayHandler<T>): void {
    const c = this.components
    if (!this.admit(from, payload) || c.lifecycle.stopped) return
    // Not a participant yet (a joiner's sponsor may send before its answer arrives): nothing
    // to merge into, and no sign of a misbehaving sender.
    if (c.lifecycle.phase.kind === 'starting') return
    if (fence === 'members' && !c.isMember(from)) {
      c.counters.droppedNonParticipant++
      c.log('dropped a %s message from non-participant %s', name, from)
      return
    }
    let message: T
    try {
      message = decode(payload, c.limits)
    } catch (err) {
      c.counters.droppedUndecodable++
      c.log('dropped an undecodable %s message from %s: %s', name, from, err)
      return
    }
    try {
      handler(from, message)
    } catch (err) {
      c.log.error('the %s handler threw on a message from %s: %s', name, from, err)
    }
  }
}
