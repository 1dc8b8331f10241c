/**
 * How news leaves a peer and how losses are repaired.
 *
 * - **Batches, and who gets what** (acknowledgement routing; docs/ARCHITECTURE.md). At each
 *   flush, a group replica this peer made events or memberships in contributes one pushed
 *   Diff to every other participant: its acknowledgement (a version vector) and the events of
 *   its own log not sent before, under one signature. A replica that only took others' events
 *   contributes its acknowledgement alone: to everyone by default (at once to the creators of
 *   those events and of the events ordered after them, `MergeResult.notify`, who may be
 *   waiting for it; to the others with the next batch this peer sends them anyway, in any
 *   group, or `acknowledgeDelayMs` later at the latest: the newest acknowledgement says all
 *   the earlier ones did, so several travel as one), or, with
 *   `acknowledge: 'creators'`, only to the creators of those events (and of the events ordered
 *   after them: `MergeResult.notify`), who may be waiting for it to fold them. Then an event
 *   costs `2(n-1)` frames, not `(n-1) + (n-1)²`; the creator folds it after one round trip,
 *   and every other participant once the acknowledgements reach it in the next anti-entropy
 *   round. The Diffs are grouped per receiving peer, so a peer gets one message
 *   per flush whatever the number of groups; peers that get the same Diffs share one encoding,
 *   and the creators that may be waiting for this peer's acknowledgement get theirs first
 *   (each write can hand the core to the peer it wakes). Batches to everyone of cluster-wide groups of
 *   clusters with at least `directFanout` participants are published once on the fold topic
 *   instead (gossipsub fans them out); managed groups are always sent directly.
 * - **Anti-entropy.** Every `intervalMs`, each group with outstanding events re-announces its
 *   acknowledgement to everyone, and pulls a sync from a participant whose acknowledgement
 *   shows events this peer does not hold (a lost batch) and from each participant its fold has
 *   waited for since the previous round without progress (`EventFold.divergent`: an
 *   acknowledgement that reaches everyone but this peer); a participant whose acknowledgement
 *   showed it missed ours gets ours again, alone. Pulls and re-announcements are grouped per
 *   peer. A quiet group costs nothing on the wire.
 * - **Periodic mode** (om-legion's own strategy, kept as a baseline): nothing is pushed; every
 *   `intervalMs` the peer pushes its diff (or whole fold) of every group to one random
 *   participant.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import { eventIdKey, type Participant } from '../eventfold/types.js'
import { pick, type PeerClock, type Random } from './clock.js'
import type { Timer } from '../time/clock.js'
import type { Inbound } from './inbound.js'
import type { Intake } from './intake.js'
import type { LegionCounters } from './options.js'
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
  /**
   * How long an acknowledgement owed to participants that are not waiting for it
   * (`GroupReplica.acknowledgeLater`) may wait for a message going to them anyway.
   */
  readonly acknowledgeDelayMs: number
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
  /** Asks for a flush at the end of the tick (of `replica` among others). */
  readonly schedule: (replica?: SomeReplica) => void
  /** The peer's counters (acknowledgements owed without hurry, and how they left). */
  readonly counters: LegionCounters
  /**
   * Signs the unsigned heads of this peer's own logs in `replicas` together, before their runs
   * are encoded (one signature per flush rather than per group and flush).
   */
  readonly signHeads: (replicas: readonly SomeReplica[]) => void
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

/** Participants owed a replica's acknowledgement without hurry, since when (`acknowledgeDelayMs`). */
interface Debt {
  readonly since: number
  readonly peers: Set<Participant>
}

/** Batches, fan-out and anti-entropy; see the module comment. */
export class Propagation {
  private unsubscribe: (() => void) | undefined
  /** Acknowledgements owed without hurry, by replica; paid by {@link prepare}. */
  private readonly debts = new Map<SomeReplica, Debt>()
  private debtTimer: Timer | undefined
  /** The debt timer fired: the next flush pays every debt, due or not (one wake-up per delay). */
  private payEveryDebt = false
  /** Sends not yet handed to the transport (or failed), once {@link tracking}: a stopping peer waits for them. */
  private readonly sending = new Set<Promise<void>>()
  /** Sends are tracked in {@link sending} (from a stopping peer's last flush on; not before, to keep sends cheap). */
  private tracking = false
  /** Sends waiting for a connection to their peer ({@link connection}): given up on at stop. */
  private readonly waiting = new Set<() => void>()
  /** The attempt to connect to each peer that sends are waiting for ({@link connection}). */
  private readonly connecting = new Map<Participant, Promise<void>>()
  /** The peer is stopping ({@link sent}): a send that finds no connection does not wait for one. */
  private draining = false
  /** Per replica with outstanding events at the last tick: whom its fold waited for, at which mark. */
  private heldBack = new Map<SomeReplica, Map<Participant, string>>()

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

  /**
   * Whether acknowledgements are owed without hurry; if so, the next flush pays them all (a
   * peer about to stop sends what it owes first), and {@link sent} can wait for its sends.
   */
  payEveryDebtNext (): boolean {
    if (this.debts.size === 0) return false
    this.payEveryDebt = true
    this.tracking = true
    return true
  }

  /** Stops listening to the topic, and forgets the acknowledgements owed. */
  stop (): void {
    for (const giveUp of [...this.waiting]) giveUp()
    this.unsubscribe?.()
    this.debtTimer?.cancel()
    this.debtTimer = undefined
    this.debts.clear()
  }

  /**
   * The batches of this flush: each replica that owes everyone a batch contributes its Diff to
   * each of its other participants; one that owes only its acknowledgement, to those it owes
   * it now; and an acknowledgement owed without hurry goes to each peer that gets a message of
   * this flush anyway, and to all it is owed to once `acknowledgeDelayMs` is up. Clears what it
   * takes. `undefined` in periodic mode (nothing is pushed) or when nobody needs anything.
   */
  prepare (replicas: readonly SomeReplica[]): PreparedBatches | undefined {
    const everyDebt = this.payEveryDebt
    this.payEveryDebt = false
    const withNews = replicas.filter(r => r.news && r.fold !== undefined)
    const owed = withNews.map(r => ({ replica: r, broadcast: r.broadcast, to: [...r.ackTo], later: r.acknowledgeLater }))
    for (const r of withNews) r.clearNews()
    if (this.settings.mode !== 'push' || (withNews.length === 0 && this.debts.size === 0)) return undefined
    if (withNews.length > 1) this.components.signHeads(withNews)
    const now = this.components.clock.now()
    const direct = new Map<Participant, GroupPayload[]>()
    const gossip: GroupPayload[] = []
    const acknowledgements = new Map<SomeReplica, GroupPayload>()
    const acknowledgement = (replica: SomeReplica): GroupPayload => {
      let entry = acknowledgements.get(replica)
      if (entry === undefined) { entry = { group: replica.id, payload: replica.acknowledgementPayload(replica.fold!) }; acknowledgements.set(replica, entry) }
      return entry
    }
    for (const { replica, broadcast, to, later } of owed) {
      const others = replica.others()
      if (others.length === 0) continue
      const gossiping = replica.definition.membership === 'cluster' && others.length >= this.settings.directFanout
      // Published on the topic, one message reaches everyone: waiting would save nothing, and
      // direct acknowledgements to the creators would add messages.
      if (broadcast || (later && gossiping)) {
        // The batch to everyone carries the acknowledgement: nothing is owed any more.
        this.debts.delete(replica)
        const entry = { group: replica.id, payload: replica.broadcastPayload(replica.fold!) }
        if (gossiping) { gossip.push(entry); continue }
        for (const peer of others) append(direct, peer, entry)
        continue
      }
      const participants = new Set(others)
      const recipients = to.filter(p => participants.has(p))
      if (recipients.length > 0) {
        const entry = acknowledgement(replica)
        for (const peer of recipients) append(direct, peer, entry)
      }
      // What is owed now is owed to the others than those it went to: none when every other
      // participant was waiting for it (two participants, or every other one a creator).
      let debt = this.debts.get(replica)
      if (later && debt === undefined) { debt = { since: now, peers: new Set() }; this.debts.set(replica, debt) }
      if (debt === undefined) continue
      if (later) for (const peer of others) debt.peers.add(peer)
      for (const peer of recipients) debt.peers.delete(peer)
      if (debt.peers.size === 0) this.debts.delete(replica)
    }
    if (this.debts.size > 0) this.payDebts(direct, new Set(replicas), now, everyDebt, acknowledgement)
    if (direct.size === 0 && gossip.length === 0) return undefined
    return { direct: waitingFirst(direct, owed), gossip }
  }

  /**
   * Adds each acknowledgement owed without hurry to the batch of every peer it is owed to once
   * it is due, then to the batch of every peer it is owed to that gets a message anyway (due
   * ones first, so that they can carry the others); then sets the timer for the next one due. Only replicas whose state is
   * saved, or is saved by this flush, take part (nothing leaves before it is saved).
   */
  private payDebts (direct: Map<Participant, GroupPayload[]>, flushed: ReadonlySet<SomeReplica>, now: number, everyDebt: boolean, acknowledgement: (replica: SomeReplica) => GroupPayload): void {
    const groups = this.components.lifecycle.incarnation?.groups
    const payable: Array<[SomeReplica, Debt]> = []
    for (const [replica, debt] of this.debts) {
      if (groups?.get(replica.id) !== replica || replica.fold === undefined) { this.debts.delete(replica); continue }
      if (!flushed.has(replica) && replica.savedVersion < replica.version) continue
      if (!everyDebt && now - debt.since < this.settings.acknowledgeDelayMs) { payable.push([replica, debt]); continue }
      this.debts.delete(replica)
      this.components.counters.acknowledgementsDelayed += debt.peers.size
      this.pay(replica, debt.peers, direct, acknowledgement)
    }
    if (direct.size > 0) {
      for (const [replica, debt] of payable) {
        const riding = [...debt.peers].filter(peer => direct.has(peer))
        if (riding.length === 0) continue
        for (const peer of riding) debt.peers.delete(peer)
        this.components.counters.acknowledgementsRode += riding.length
        if (debt.peers.size === 0) this.debts.delete(replica)
        this.pay(replica, riding, direct, acknowledgement)
      }
    }
    this.armDebtTimer(now)
  }

  /** Adds `replica`'s acknowledgement to the batch of each of `peers` still among its participants. */
  private pay (replica: SomeReplica, peers: Iterable<Participant>, direct: Map<Participant, GroupPayload[]>, acknowledgement: (replica: SomeReplica) => GroupPayload): void {
    const members = new Set(replica.others())
    for (const peer of peers) if (members.has(peer)) append(direct, peer, acknowledgement(replica))
  }

  /**
   * Wakes the flush when the oldest acknowledgement owed without hurry is due; that flush pays
   * every debt, due or not, so that debts of many groups arising one after the other (a
   * keyspace's partitions under sequential requests) cost one wake-up per delay, not one each.
   */
  private armDebtTimer (now: number): void {
    if (this.debts.size === 0) { this.debtTimer?.cancel(); this.debtTimer = undefined; return }
    if (this.debtTimer !== undefined) return
    let oldest = Infinity
    for (const debt of this.debts.values()) oldest = Math.min(oldest, debt.since)
    this.debtTimer = this.components.clock.setTimer(oldest + this.settings.acknowledgeDelayMs - now, () => {
      this.debtTimer = undefined
      if (this.components.lifecycle.stopped || this.debts.size === 0) return
      this.payEveryDebt = true
      for (const replica of this.debts.keys()) this.components.schedule(replica)
    })
  }

  /**
   * Sends what {@link prepare} prepared (after the gate saved what it shows). Peers that get the
   * same entries (a batch to everyone, the usual case) share one encoding of them.
   */
  send (batches: PreparedBatches): void {
    const c = this.components
    const protocol = c.inbound.protocol(FOLD_PROTOCOL)
    const encoded = new Map<string, Uint8Array>()
    const numbers = new Map<GroupPayload, number>()
    for (const [peer, entries] of batches.direct) {
      const key = entries.map(e => {
        let n = numbers.get(e)
        if (n === undefined) { n = numbers.size; numbers.set(e, n) }
        return n
      }).join(',')
      let payload = encoded.get(key)
      if (payload === undefined) { payload = encodeFoldBatch(entries); encoded.set(key, payload) }
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
   * not connected yet, or waiting for its connection ({@link connection}): right after joins, a peer
   * may learn of a participant before it has a connection to it. Failures are logged;
   * anti-entropy repairs what is lost.
   */
  sendOneWay (peer: Participant, protocol: string, payload: Uint8Array): void {
    const sending = this.trySend(peer, protocol, payload)
    if (!this.tracking) return
    this.sending.add(sending)
    void sending.finally(() => { this.sending.delete(sending) })
  }

  /**
   * Resolves once every send begun since {@link payEveryDebtNext} was handed to the transport or
   * failed, or after `timeoutMs`: a stopping peer's last flush (the acknowledgements it owed)
   * must not be cut off by its transport closing. Sends waiting for a connection give up, now
   * and from now on.
   */
  async sent (timeoutMs: number): Promise<void> {
    this.draining = true
    for (const giveUp of [...this.waiting]) giveUp()
    if (this.sending.size === 0) return
    let timer: Timer | undefined
    await Promise.race([
      Promise.allSettled([...this.sending]),
      new Promise<void>(resolve => { timer = this.components.clock.setTimer(timeoutMs, resolve) })
    ])
    timer?.cancel()
  }

  private async trySend (peer: Participant, protocol: string, payload: Uint8Array): Promise<void> {
    const c = this.components
    if (!c.allows(peer)) return
    try {
      await c.network.send(peer, protocol, payload)
    } catch (first) {
      if (c.lifecycle.stopped) return
      try {
        await this.connection(peer)
        await c.network.send(peer, protocol, payload)
      } catch (err) {
        c.log('sending to %s failed: %s (first try: %s)', peer, err, first)
      }
    }
  }

  /**
   * Dials `peer`, within `intervalMs`. A participant known from the fold alone has no address
   * here yet: a joiner, to the participants that learn of it from its sponsor's batch, and
   * those participants, to the joiner until its dials to them (from the sponsor's list) are
   * through. One of the two is dialling the other at that moment, so this waits for that
   * connection instead of losing the message (the joiner's first acknowledgement, which the
   * others need to fold its Join). Shared by every send to `peer` meanwhile: one dial, one
   * wait, however many messages (a dead peer under load costs one attempt per interval, not
   * one per message).
   */
  private async connection (peer: Participant): Promise<void> {
    let attempt = this.connecting.get(peer)
    if (attempt === undefined) {
      attempt = this.reach(peer).finally(() => { this.connecting.delete(peer) })
      this.connecting.set(peer, attempt)
    }
    await attempt
  }

  /** One attempt of {@link connection}: a dial, then, if it fails, the wait. Throws the dial's error if neither connects. */
  private async reach (peer: Participant): Promise<void> {
    const c = this.components
    const within = this.settings.intervalMs
    // Listening before the dial: the other side's connection may open while it fails.
    let settle!: (connected: boolean) => void
    const outcome = new Promise<boolean>(resolve => { settle = resolve })
    const unsubscribe = c.network.onPeerConnected(p => { if (p === peer) settle(true) })
    const giveUp = (): void => { settle(false) }
    let timer: Timer | undefined
    try {
      try {
        await c.network.dial(peer, { timeoutMs: within })
        return
      } catch (err) {
        if (c.network.connectedPeers().includes(peer)) return
        if (this.draining) throw err
        timer = c.clock.setTimer(within, giveUp)
        this.waiting.add(giveUp)
        if (!await outcome) throw err
      }
    } finally {
      unsubscribe()
      timer?.cancel()
      this.waiting.delete(giveUp)
    }
  }

  /**
   * The anti-entropy tick: dials participants this peer is not connected to, then repairs
   * (push mode) or pushes (periodic mode); see the module comment.
   */
  tick (): void {
    const c = this.components
    const phase = c.lifecycle.phase
    if (phase.kind !== 'member') { this.heldBack.clear(); return }
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
    const heldBack = new Map<SomeReplica, Map<Participant, string>>()
    for (const replica of incarnation.groups.values()) {
      const fold = replica.fold
      if (fold === undefined) continue
      // A lost batch shows as an acknowledgement holding events this peer does not hold (also
      // when nothing is outstanding here: the lost batch may have been all there was).
      const peers = new Set(reachable(replica))
      const ahead = fold.aheadOfThis().find(p => peers.has(p))
      if (ahead !== undefined) append(wants, ahead, { group: replica.id, full: false })
      if (fold.outstandingCount === 0) {
        for (const peer of replica.behind) append(behind, peer, replica)
        replica.behind.clear()
        continue
      }
      // A participant this fold has waited for since the last round, at the same mark, is asked
      // directly: its acknowledgement may reach everyone but this peer (a one-way fault of one
      // link or stream), and a sync's answer comes back on this peer's own request.
      const before = this.heldBack.get(replica)
      const marks = new Map<Participant, string>()
      for (const [peer, mark] of fold.divergent()) {
        if (!peers.has(peer)) continue
        const key = eventIdKey(mark)
        marks.set(peer, key)
        if (before?.get(peer) === key && peer !== ahead) append(wants, peer, { group: replica.id, full: false })
      }
      if (marks.size > 0) heldBack.set(replica, marks)
      // Re-announce the acknowledgement to everyone, through a flush so it leaves only once saved.
      replica.behind.clear()
      replica.announce()
    }
    this.heldBack = heldBack
    for (const [peer, list] of wants) c.requestSync(peer, list)
    if (behind.size > 0) void this.reannounce(incarnation, behind)
  }

  /** Sends each peer that is behind this peer's acknowledgement in its groups, once it is saved. */
  private async reannounce (incarnation: Incarnation, behind: Map<Participant, SomeReplica[]>): Promise<void> {
    const c = this.components
    const replicas = new Set([...behind.values()].flat())
    const payloads = new Map<SomeReplica, Uint8Array>()
    for (const r of replicas) payloads.set(r, r.acknowledgementPayload(r.fold!))
    await Promise.all([...replicas].map(async r => { if (!await c.persistence.persisted(r)) payloads.delete(r) }))
    if (c.lifecycle.incarnation !== incarnation) return
    const protocol = c.inbound.protocol(FOLD_PROTOCOL)
    for (const [peer, all] of behind) {
      // A replica replaced before its save (its group forgotten) has nothing to announce.
      const list = all.filter(r => payloads.has(r))
      if (list.length === 0) continue
      const payload = encodeFoldBatch(list.map(r => ({ group: r.id, payload: payloads.get(r)! })))
      c.inbound.countOut(payload)
      this.sendOneWay(peer, protocol, payload)
    }
  }
}

/**
 * `direct` with the peers that may be waiting for this peer's acknowledgement (the creators of
 * what it just took, `ackTo`) first: each write to a peer is a system call that may hand the
 * core to the peer it wakes, so the batch a creator's `applyConsistent` waits for leaves
 * before those that only keep the others up to date.
 */
function waitingFirst (direct: Map<Participant, GroupPayload[]>, owed: ReadonlyArray<{ readonly to: readonly Participant[] }>): Map<Participant, GroupPayload[]> {
  if (direct.size < 2) return direct
  const waiting = new Set<Participant>()
  for (const o of owed) for (const peer of o.to) waiting.add(peer)
  if (waiting.size === 0) return direct
  const ordered = new Map<Participant, GroupPayload[]>()
  for (const peer of waiting) {
    const entries = direct.get(peer)
    if (entries !== undefined) ordered.set(peer, entries)
  }
  for (const [peer, entries] of direct) if (!ordered.has(peer)) ordered.set(peer, entries)
  return ordered
}

function append<K, V> (map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}
