/**
 * Pushing state and waiting for it to be merged: ejections and a leaving peer disseminate the
 * UnJoins they made, a group owner gives a new member the group's whole fold, and the
 * `periodic` propagation mode sends each interval. Serving merges each group's part on its own
 * and answers, per group, whether it merged, once what it merged is saved.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { DecodeLimits } from '../codec/codec.js'
import { MessageKind, peekKind } from '../codec/eventfold.js'
import type { Participant } from '../eventfold/types.js'
import { DEFAULT_CALL_TIMEOUT_MS } from './config.js'
import { Refused, type Inbound } from './inbound.js'
import type { MergeOutcome } from './group/replica.js'
import type { Intake } from './intake.js'
import type { Incarnation, Lifecycle, SomeReplica } from './lifecycle.js'
import type { Network } from './network.js'
import type { LegionCounters, WaitOptions } from './options.js'
import type { PersistenceGate } from './persistence.js'
import type { GroupPayload } from './protocol/fold-batch.js'
import type { RefusalCode } from './protocol/message.js'
import { PUSH_PROTOCOL, decodeFoldPush, decodePushAnswer, encodeFoldPush, encodePushAnswer, type PushResult } from './protocol/push.js'
import { RateLimiter } from './rate-limiter.js'

/** What push needs. */
export interface PushComponents {
  /** The network. */
  readonly network: Network
  /** The admission pipeline. */
  readonly inbound: Inbound
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Merges what is pushed. */
  readonly intake: Intake
  /** The save-before-send gate. */
  readonly persistence: PersistenceGate
  /** Whether `allowPeers` allows a peer now. */
  readonly allows: (peer: Participant) => boolean
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Message limits. */
  readonly limits: DecodeLimits
  /** The part's logger. */
  readonly log: Logger
  /** Clock for the rate limiter, in milliseconds. */
  readonly now: () => number
}

/** Pushes and serves pushes; see the module comment. */
export class Push {
  private readonly fullPushLimiter: RateLimiter

  constructor (private readonly components: PushComponents) {
    this.fullPushLimiter = new RateLimiter(20, 10, components.now)
  }

  /** Registers the protocol. */
  async start (): Promise<void> {
    await this.components.inbound.request(PUSH_PROTOCOL, 'members', decodeFoldPush, async (from, entries) => await this.serve(from, entries))
  }

  /**
   * The payloads of `replicas` for `peer` (a diff each, or the whole fold where a diff is not
   * enough), once what they show is saved. A replica replaced before it was saved is left out.
   */
  async payloadsFor (peer: Participant, replicas: readonly SomeReplica[], full = false): Promise<GroupPayload[]> {
    const entries: GroupPayload[] = []
    const shown: Array<{ replica: SomeReplica, version: number }> = []
    for (const replica of replicas) {
      const fold = replica.fold
      if (fold === undefined) continue
      entries.push({ group: replica.id, payload: replica.payloadFor(fold, peer, full).bytes })
      shown.push({ replica, version: replica.version })
    }
    const saved = await Promise.all(shown.map(async s => await this.components.persistence.persisted(s.replica, s.version)))
    return entries.filter((_, i) => saved[i])
  }

  /**
   * Pushes `entries` to `peer` and resolves with what it merged, or rejects (timeout,
   * unreachable, refused as a whole, or the incarnation changed meanwhile).
   */
  async push (peer: Participant, epoch: number, entries: readonly GroupPayload[], options: WaitOptions = {}): Promise<PushResult[]> {
    const c = this.components
    if (!c.allows(peer)) throw new Error(`${peer} is not allowed (allowPeers)`)
    const payload = encodeFoldPush(entries)
    c.inbound.countOut(payload)
    const answer = await c.network.request(peer, c.inbound.protocol(PUSH_PROTOCOL), payload, {
      timeoutMs: options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    })
    if (!c.inbound.admitAnswer(peer, answer, epoch, 'anyone')) throw new Error('the answer came too late (this peer rejoined or stopped)')
    const results = decodePushAnswer(answer, c.limits)
    if (!Array.isArray(results)) throw new Error(`refused (${results.code}): ${results.message}`)
    return results
  }

  /** om-legion's periodic propagation: every group `peer` takes part in, diff or whole fold. */
  async pushAll (peer: Participant, incarnation: Incarnation): Promise<void> {
    const replicas = [...incarnation.groups.values()].filter(r => r.isParticipant(peer))
    try {
      const entries = await this.payloadsFor(peer, replicas)
      if (this.components.lifecycle.incarnation !== incarnation || entries.length === 0) return
      await this.push(peer, incarnation.epoch, entries, { timeoutMs: DEFAULT_CALL_TIMEOUT_MS })
    } catch (err) {
      this.components.log('push to %s failed: %s', peer, err)
    }
  }

  private async serve (from: Participant, entries: readonly GroupPayload[]): Promise<Uint8Array> {
    const c = this.components
    const incarnation = c.lifecycle.incarnation
    if (incarnation === undefined) throw new Refused('not-ready', 'not a participant yet')
    const results: PushResult[] = []
    const touched: SomeReplica[] = []
    for (const { group, payload } of entries) {
      const replica = incarnation.groups.get(group)
      if (replica === undefined) { c.counters.droppedUnknownGroup++; results.push({ group, merged: false, code: 'unknown-group' }); continue }
      let kind: number
      try { kind = peekKind(payload) } catch { kind = -1 }
      if (kind !== MessageKind.diff && kind !== MessageKind.eventFold) {
        c.counters.droppedUndecodable++
        results.push({ group, merged: false, code: 'bad-request' })
        continue
      }
      if (kind === MessageKind.eventFold && !this.fullPushLimiter.take(from)) {
        c.counters.droppedRateLimited++
        results.push({ group, merged: false, code: 'rate-limited' })
        continue
      }
      const answer = replica.fold === undefined
        ? (kind === MessageKind.eventFold ? c.intake.adopt(replica, from, payload) : replica.definition.membership === 'managed' ? 'unknown-group' : 'not-participant')
        : answerOf(replica, from, c.intake.full(replica, from, kind === MessageKind.diff ? 'diff' : 'fold', payload))
      results.push(answer === 'merged' ? { group, merged: true } : { group, merged: false, code: answer })
      if (answer === 'merged') touched.push(replica)
    }
    const saved = await Promise.all(touched.map(async r => await c.persistence.persisted(r)))
    // A replica replaced before its save (its group forgotten, the peer rejoined or stopped)
    // holds nothing durable here: its merge is answered as refused, so the sender does not
    // count on it.
    const lost = new Set(touched.filter((_, i) => !saved[i]).map(r => r.id))
    return encodePushAnswer(results.map(r => lost.has(r.group) ? { group: r.group, merged: false, code: 'not-participant' } : r))
  }
}

/**
 * How a push answers one group's merge: what intake dropped unmerged (undecodable, of another
 * origin, a forged body) is a bad request, a sender outside the group is refused as such, and
 * everything else was merged (a diff refused as too new counts as merged: this peer pulls a
 * sync from the sender instead).
 */
function answerOf (replica: SomeReplica, from: Participant, outcome: MergeOutcome | undefined): 'merged' | RefusalCode {
  if (outcome === undefined) return replica.isParticipant(from) ? 'bad-request' : 'not-participant'
  return outcome.kind === 'wrong-origin' || outcome.kind === 'forged' ? 'bad-request' : 'merged'
}
