/**
 * How news leaves a peer and how losses are repaired.
 *
 * - **Batches.** At each flush, every group replica with news of this peer's own contributes
 *   one pushed Diff (every outstanding id with its acknowledgements, bodies as the relay policy
 *   says); the Diffs are grouped per receiving peer, so a peer gets one message per flush
 *   whatever the number of groups. Cluster-wide groups of clusters with at least
 *   `directFanout` participants are published once on the fold topic instead (gossipsub fans
 *   them out); managed groups are always sent directly (they have few participants).
 * - **Anti-entropy.** Every `intervalMs`, each group with outstanding events re-announces its
 *   acknowledgements and pulls a sync from a random participant of the group; a participant
 *   whose diff showed it missed acknowledgements of ours gets them again, alone. Pulls and
 *   re-announcements are grouped per peer. A quiet group costs nothing on the wire.
 * - **Periodic mode** (om-legion's own strategy, kept as a baseline): nothing is pushed; every
 *   `intervalMs` the peer pushes its diff (or whole fold) of every group to one random
 *   participant.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { Participant } from '../eventfold/types.js'
import { pick, type PeerClock, type Random } from './clock.js'
import type { Inbound } from './inbound.js'
import type { Intake } from './intake.js'
import type { Incarnation, Lifecycle, SomeReplica } from './lifecycle.js'
import type { Network } from './network.js'
import type { PersistenceGate } from './persistence.js'
import { FOLD_PROTOCOL, FOLD_TOPIC, decodeFoldBatch, encodeFoldBatch, type GroupPayload } from './protocol/fold-batch.js'
import type { SyncWant } from './protocol/sync.js'
import type { Push } from './push.js'

/** Settings of propagation. */
export interface PropagationSettings {
  /** `push` (default) or om-legion's `periodic`. */
  readonly mode: 'push' | 'periodic'
  /** Anti-entropy period (push) or send period (periodic), in milliseconds. */
  readonly intervalMs: number
  /** Clusters of fewer participants get cluster-wide batches directly; larger ones by gossip. */
  readonly directFanout: number
}

/** What propagation needs. */
export interface PropagationComponents {
  /** This peer. */
  readonly self: Participant
  /** The network. */
  readonly network: Network
  /** The admission pipeline. */
  readonly inbound: Inbound
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Merges what arrives. */
  readonly intake: Intake
  /** The save-before-send gate. */
  readonly persistence: PersistenceGate
  /** Pulls syncs, grouped per peer. */
  readonly requestSync: (peer: Participant, wants: readonly SyncWant[]) => void
  /** Pushes, for the periodic mode. */
  readonly push: Push
  /** Whether `allowPeers` allows a peer now. */
  readonly allows: (peer: Participant) => boolean
  /** Time. */
  readonly clock: PeerClock
  /** Chance. */
  readonly random: Random
  /** The part's logger. */
  readonly log: Logger
}

/** What a flush sends: batches per peer, and the gossip batch. */
export interface PreparedBatches {
  /** Direct batches, by receiving peer. */
  readonly direct: Map<Participant, GroupPayload[]>
  /** Cluster-wide groups published on the fold topic (large clusters). */
  readonly gossip: GroupPayload[]
}

/** Batches, fan-out and anti-entropy; see the module comment. */
export class Propagation {
  private unsubscribe: (() => void) | undefined

  constructor (private readonly components: PropagationComponents, private readonly settings: PropagationSettings) {}

  /** Registers the fold protocol and topic. */
  async start (): Promise<void> {
    const c = this.components
    const onBatch = (from: Participant, entries: GroupPayload[]): void => {
      const incarnation = c.lifecycle.incarnation
      if (incarnation !== undefined && c.lifecycle.phase.kind !== 'ejected') c.intake.batch(incarnation, from, entries)
    }
    await c.inbound.oneWay(FOLD_PROTOCOL, 'members', decodeFoldBatch, onBatch)
    this.unsubscribe = c.inbound.topic(FOLD_TOPIC, decodeFoldBatch, onBatch)
  }

  /** Stops listening to the topic. */
  stop (): void {
    this.unsubscribe?.()
  }

  /**
   * The batches of this flush: each replica with news contributes its Diff to each of its
   * other participants. Clears the news it takes. `undefined` in periodic mode (nothing is
   * pushed) or when nobody needs anything.
   */
  prepare (replicas: readonly SomeReplica[]): PreparedBatches | undefined {
    const withNews = replicas.filter(r => r.news && r.fold !== undefined)
    for (const r of withNews) r.news = false
    if (this.settings.mode !== 'push' || withNews.length === 0) return undefined
    const direct = new Map<Participant, GroupPayload[]>()
    const gossip: GroupPayload[] = []
    for (const replica of withNews) {
      const others = replica.others()
      if (others.length === 0) continue
      const entry = { group: replica.id, payload: replica.batchPayload(replica.fold!) }
      if (replica.definition.membership === 'cluster' && others.length >= this.settings.directFanout) { gossip.push(entry); continue }
      for (const peer of others) {
        let list = direct.get(peer)
        if (list === undefined) { list = []; direct.set(peer, list) }
        list.push(entry)
      }
    }
    return { direct, gossip }
  }

  /** Sends what {@link prepare} prepared (after the gate saved what it shows). */
  send (batches: PreparedBatches): void {
    const c = this.components
    const protocol = c.inbound.protocol(FOLD_PROTOCOL)
    for (const [peer, entries] of batches.direct) {
      const payload = encodeFoldBatch(entries)
      c.inbound.countOut(payload)
      this.sendOneWay(peer, protocol, payload)
    }
    if (batches.gossip.length > 0) {
      const payload = encodeFoldBatch(batches.gossip)
      c.inbound.countOut(payload)
      c.network.publish(c.inbound.protocol(FOLD_TOPIC), payload).catch(err => { c.log('publish failed: %s', err) })
    }
  }

  /**
   * Sends a one-way message, dialling the peer first (through the peer store) if this peer is
   * not connected yet: right after joins, a peer may learn of a participant before it has a
   * connection to it. Failures are logged; anti-entropy repairs what is lost.
   */
  sendOneWay (peer: Participant, protocol: string, payload: Uint8Array): void {
    void this.trySend(peer, protocol, payload)
  }

  private async trySend (peer: Participant, protocol: string, payload: Uint8Array): Promise<void> {
    const c = this.components
    if (!c.allows(peer)) return
    try {
      await c.network.send(peer, protocol, payload)
    } catch (first) {
      if (c.lifecycle.stopped) return
      try {
        await c.network.dial(peer, { timeoutMs: this.settings.intervalMs })
        await c.network.send(peer, protocol, payload)
      } catch (err) {
        c.log('sending to %s failed: %s (first try: %s)', peer, err, first)
      }
    }
  }

  /**
   * The anti-entropy tick: dials participants this peer is not connected to, then repairs
   * (push mode) or pushes (periodic mode); see the module comment.
   */
  tick (): void {
    const c = this.components
    const phase = c.lifecycle.phase
    if (phase.kind !== 'member') return
    const incarnation = phase.incarnation
    const cluster = incarnation.groups.get('')
    if (cluster === undefined) return
    const connected = new Set(c.network.connectedPeers())
    for (const p of cluster.others()) {
      if (!connected.has(p) && c.allows(p)) void c.network.dial(p, { timeoutMs: this.settings.intervalMs }).catch(() => {})
    }
    const reachable = (replica: SomeReplica): Participant[] => replica.others().filter(p => connected.has(p) && c.allows(p))
    if (this.settings.mode === 'periodic') {
      const peers = reachable(cluster)
      if (peers.length > 0) void c.push.pushAll(pick(c.random, peers), incarnation)
      return
    }
    const wants = new Map<Participant, SyncWant[]>()
    const behind = new Map<Participant, SomeReplica[]>()
    for (const replica of incarnation.groups.values()) {
      const fold = replica.fold
      if (fold === undefined) continue
      if (fold.outstandingCount === 0) {
        for (const peer of replica.behind) append(behind, peer, replica)
        replica.behind.clear()
        continue
      }
      // Re-announce acknowledgements to everyone, through a flush so they leave only once saved.
      replica.behind.clear()
      replica.announce()
      const peers = reachable(replica)
      if (peers.length > 0) append(wants, pick(c.random, peers), { group: replica.id, full: false })
    }
    for (const [peer, list] of wants) c.requestSync(peer, list)
    if (behind.size > 0) void this.reannounce(incarnation, behind)
  }

  /** Sends each peer that is behind the current diffs of its groups, once they are saved. */
  private async reannounce (incarnation: Incarnation, behind: Map<Participant, SomeReplica[]>): Promise<void> {
    const c = this.components
    const replicas = new Set([...behind.values()].flat())
    const payloads = new Map<SomeReplica, Uint8Array>()
    for (const r of replicas) payloads.set(r, r.batchPayload(r.fold!))
    await Promise.all([...replicas].map(async r => { await c.persistence.persisted(r) }))
    if (c.lifecycle.incarnation !== incarnation) return
    const protocol = c.inbound.protocol(FOLD_PROTOCOL)
    for (const [peer, list] of behind) {
      const payload = encodeFoldBatch(list.map(r => ({ group: r.id, payload: payloads.get(r)! })))
      c.inbound.countOut(payload)
      this.sendOneWay(peer, protocol, payload)
    }
  }
}

function append<K, V> (map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}
