/**
 * Becoming a participant, and making others ones.
 *
 * - **Joining** (start-up, and rejoining after an ejection): ask a participant (the sponsor)
 *   to admit this peer; its answer holds the whole fold of the cluster's group and of every
 *   cluster-wide group, and the addresses of the other participants. A rejoin keeps each
 *   group's Lamport counter, so no id of the previous membership is ever reused, and backs off
 *   (with jitter) after every rejoin that did not last, so a peer that keeps getting ejected
 *   does not churn the cluster. A rejoin request names the participants the asker cannot
 *   reach (those it hears no longer: the other end of a broken link, docs/ARCHITECTURE.md
 *   "Broken links"), and a sponsor that hears one of them
 *   refuses it (`cannot-reach`): admitted, the asker could not acknowledge their events nor
 *   they its, and their folds would stall until it was ejected again. It probes them first
 *   (a heartbeat out of turn): after a partition heals they are silent only because nothing
 *   was sent to them yet.
 * - **Sponsoring**: an earlier incarnation of the asker leaves every group first (UnJoin), so
 *   a restarted peer rejoins cleanly, past the largest counter that incarnation saw (the
 *   request says it), so none of its events is ordered after the readmission, and once the
 *   sponsor took the events a live asker handed over (the UnJoin stands in for that
 *   incarnation, which is sound only if the sponsor holds everything it created); then the asker
 *   joins the cluster's group and every cluster-wide group (Join); the answer is sent once all
 *   of that is saved. It refuses an asker that cannot reach a participant this peer hears (see
 *   above).
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { DecodeLimits } from '../../codec/codec.js'
import type { Participant } from '../../eventfold/types.js'
import type { PeerClock, Random } from '../clock.js'
import { JoinError, JoinRefusedError } from '../errors.js'
import { Refused, type Inbound } from '../inbound.js'
import type { Incarnation, Lifecycle, SomeReplica } from '../lifecycle.js'
import type { Network } from '../network.js'
import type { LegionCounters } from '../options.js'
import type { PersistenceGate } from '../persistence.js'
import type { GroupPayload } from '../protocol/fold-batch.js'
import { JOIN_PROTOCOL, decodeJoinAnswer, decodeJoinRequest, encodeJoinAccepted, encodeJoinRequest, type JoinRequest, type PeerAddresses } from '../protocol/join.js'
import { RateLimiter } from '../rate-limiter.js'
import { describeJoinFailure, isNegotiationFailure } from './join-failure.js'
import type { GroupRegistry } from '../group/groups.js'
import { label } from '../intake.js'

/** What joining and sponsoring need. */
export interface JoinComponents {
  /** This peer. */
  readonly self: Participant
  /** The network. */
  readonly network: Network
  /** The admission pipeline. */
  readonly inbound: Inbound
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Every group definition; builds replicas. */
  readonly groups: GroupRegistry
  /** The save-before-send gate. */
  readonly persistence: PersistenceGate
  /** Whether `allowPeers` allows a peer now. */
  readonly allows: (peer: Participant) => boolean
  /** A new incarnation became current: reset what belongs to the old one. */
  readonly incarnationChanged: () => void
  /**
   * The participants of this peer's last membership it cannot reach now (it hears them no
   * longer), sorted.
   */
  readonly unreachable: () => Participant[]
  /** Whether this peer hears `peer`, a participant, now (it is not silent here). */
  readonly hears: (peer: Participant) => boolean
  /**
   * Dials `peer` if need be and asks it for a heartbeat's answer within `timeoutMs`: an answer
   * counts as hearing it. `false`: no address of it is known, so it could not be tried.
   */
  readonly probe: (peer: Participant, timeoutMs: number) => Promise<boolean>
  /** Time. */
  readonly clock: PeerClock
  /** Chance (the rejoin backoff's jitter). */
  readonly random: Random
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Message limits. */
  readonly limits: DecodeLimits
  /**
   * Takes the events of a whole fold of `replica`'s group that a rejoining participant handed
   * over (`Intake.handedOver`); whether it merged.
   */
  readonly takeHandedOver: (replica: SomeReplica, from: Participant, fold: Uint8Array) => boolean
  /** The part's logger. */
  readonly log: Logger
}

/** Settings of joining. */
export interface JoinSettings {
  /** How long a join waits for an answer, per peer tried. */
  readonly joinTimeoutMs: number
  /** Whether an ejected peer asks to be admitted again. */
  readonly rejoin: boolean
  /** The shortest wait before a rejoin after one that did not last. */
  readonly rejoinBackoffMs: number
  /** How long a rejoin waits for the answer of a participant it has not heard from lately. */
  readonly probeTimeoutMs: number
  /** The most bytes of folds a rejoin request hands its sponsor (within the largest message). */
  readonly handOverBytes: number
}

const MAX_REJOIN_BACKOFF_MS = 60_000
/**
 * How far past its own largest counter a sponsor moves a group's counter for an asker's
 * earlier incarnation (a JoinRequest's `counter`): 2^24 events made while ejected is far more
 * than a peer writes, and an asker claiming more would need 2^28 admissions to use up the 2^52
 * counters a group has.
 */
const MAX_COUNTER_LEAP = 2 ** 24

/** Joining, rejoining and sponsoring; see the module comment. */
export class Joining {
  private readonly joinLimiter: RateLimiter
  private rejoining: Promise<void> | undefined
  /** Rejoins that did not last in a row, and the earliest time of the next attempt. */
  private backoff = { failures: 0, notBefore: 0, admittedAt: 0 }
  /** The last `cannot-reach` refusal: its message (logged once), and whom the request named. */
  private refusal = { message: '', unreachable: [] as readonly Participant[] }

  constructor (private readonly components: JoinComponents, private readonly settings: JoinSettings) {
    this.joinLimiter = new RateLimiter(5, 5, () => components.clock.now())
  }

  /** Registers the protocol. */
  async start (): Promise<void> {
    await this.components.inbound.request(JOIN_PROTOCOL, 'anyone', decodeJoinRequest, async (from, request) => await this.sponsor(from, request))
  }

  /**
   * Joins through the first of `addresses` that admits this peer, makes the new incarnation
   * current and returns it.
   * @throws JoinError with why each address failed
   */
  async join (addresses: readonly string[]): Promise<Incarnation> {
    const c = this.components
    const attempts = new Map<string, string>()
    const timeoutMs = this.settings.joinTimeoutMs
    for (const addr of addresses) {
      let sponsor: Participant | undefined
      try {
        sponsor = await c.network.dial(addr, { timeoutMs })
        const incarnation = await this.askToJoin(sponsor, timeoutMs, undefined, [])
        if (incarnation === undefined) { attempts.set(addr, 'the answer came after this peer stopped'); continue }
        return incarnation
      } catch (err) {
        // What the sponsor speaks tells another cluster from another version (asked: libp2p's own
        // identify may not have come back when the negotiation fails).
        const remote = sponsor === undefined || !isNegotiationFailure(err) ? [] : await c.network.peerProtocols(sponsor, { waitMs: 1000 }).catch(() => [])
        attempts.set(addr, describeJoinFailure(err, c.inbound.protocol(JOIN_PROTOCOL), remote))
      }
    }
    throw new JoinError(attempts)
  }

  /**
   * Asks `sponsor` to admit this peer; on success the new incarnation is current. Returns
   * `undefined` if this peer stopped (or was admitted by another) meanwhile.
   */
  private async askToJoin (sponsor: Participant, timeoutMs: number, previous: Incarnation | undefined, unreachable: readonly Participant[]): Promise<Incarnation | undefined> {
    const c = this.components
    let counter = 0
    for (const r of previous?.groups.values() ?? []) counter = Math.max(counter, r.fold?.maxKnownCounter ?? 0)
    const handed = previous === undefined ? [] : await this.handOver(previous, timeoutMs)
    const request = encodeJoinRequest({ addresses: c.network.multiaddrs(), unreachable, counter, handed })
    c.inbound.countOut(request)
    const bytes = await c.network.request(sponsor, c.inbound.protocol(JOIN_PROTOCOL), request, { timeoutMs })
    c.inbound.countIn(bytes)
    const answer = decodeJoinAnswer(bytes, c.limits)
    if (answer.kind === 'refusal') throw new JoinRefusedError(sponsor, answer.code, answer.message)
    if (c.lifecycle.stopped || (previous !== undefined && c.lifecycle.phase.kind !== 'ejected')) return undefined
    const incarnation = this.incarnationFrom(answer.groups, previous)
    c.lifecycle.becomeMember(incarnation)
    this.components.incarnationChanged()
    for (const p of answer.peers) if (p.id !== c.self && p.addresses.length > 0) void this.reachAt(p.id, p.addresses)
    return incarnation
  }

  /**
   * What a rejoin hands its sponsor: the whole fold of every group of the earlier incarnation
   * where this peer still takes part and holds events of its own that have not folded, once
   * saved (a fold restored from storage goes on writing its newest log, which must hold every
   * event that left). The sponsor's UnJoin of that incarnation stands in for it, which is
   * sound only if the sponsor holds every event it created (docs/ARCHITECTURE.md, "Ejection:
   * assumptions and known limits"); an event still on its way to a third peer could otherwise
   * fold there and not where the UnJoin stood in without it. Groups past `handOverBytes` are
   * left out (logged): their events are left to that assumption, as every rejoin's were before;
   * so are those of a fold not saved within `timeoutMs` (a failing disk must not hold the
   * rejoin up for good).
   */
  private async handOver (previous: Incarnation, timeoutMs: number): Promise<GroupPayload[]> {
    const c = this.components
    const shown: Array<{ replica: SomeReplica, version: number, payload: Uint8Array }> = []
    let bytes = 0
    for (const replica of previous.groups.values()) {
      const fold = replica.fold
      if (fold === undefined || !replica.isParticipant(c.self) || !fold.outstandingEvents().some(e => e.id.participant === c.self)) continue
      const payload = replica.encodedFold(fold)
      if (bytes + payload.length > this.settings.handOverBytes) {
        c.log('rejoining: the fold of group %s (%d bytes) does not fit in the request; its own events there are not handed over', label(replica.id), payload.length)
        continue
      }
      bytes += payload.length
      shown.push({ replica, version: replica.version, payload })
    }
    const saved = await Promise.all(shown.map(async s => await new Promise<boolean>(resolve => {
      const timer = c.clock.setTimer(timeoutMs, () => { resolve(false) })
      void c.persistence.persisted(s.replica, s.version).then(ok => { timer.cancel(); resolve(ok) })
    })))
    return shown.filter((_, i) => saved[i]).map(s => ({ group: s.replica.id, payload: s.payload }))
  }

  /**
   * A new incarnation from a sponsor's folds: every defined group it sent, and a waiting
   * replica for every other defined group (a managed group this peer may be added to again).
   */
  private incarnationFrom (payloads: readonly GroupPayload[], previous: Incarnation | undefined): Incarnation {
    const c = this.components
    if (!payloads.some(p => p.group === '')) throw new Error('the sponsor sent no fold of the cluster\'s group')
    const incarnation = c.lifecycle.newIncarnation()
    // What the previous admission held of groups kept across a rejoin, and what it still
    // kept of older ones it did not hold again.
    for (const [id, fold] of previous?.former ?? []) incarnation.former.set(id, fold)
    for (const [id, replica] of previous?.groups ?? []) {
      if (replica.fold !== undefined && c.groups.definition(id)?.keepAcrossRejoin === true) incarnation.former.set(id, replica.fold)
    }
    for (const { group, payload } of payloads) {
      const definition = c.groups.definition(group)
      if (definition === undefined) { c.log('the sponsor sent group %s, which this peer does not define: ignored', group); continue }
      const counter = previous?.groups.get(group)?.fold?.maxKnownCounter ?? 0
      incarnation.groups.set(group, c.groups.fromBytes(definition, payload, counter))
    }
    for (const definition of c.groups.all()) {
      if (incarnation.groups.has(definition.id)) continue
      if (definition.membership === 'cluster') c.log.error('the sponsor does not hold cluster-wide group %s: every peer of a cluster must define the same cluster-wide groups', definition.id)
      incarnation.groups.set(definition.id, c.groups.waiting(definition))
    }
    return incarnation
  }

  /** Asks to be admitted again (one attempt at a time, backing off); the heartbeat tick retries. */
  rejoin (): void {
    if (!this.settings.rejoin || this.rejoining !== undefined || this.components.lifecycle.stopped) return
    if (this.components.clock.now() < this.backoff.notBefore) return
    this.rejoining = this.tryRejoin().finally(() => { this.rejoining = undefined })
  }

  /**
   * Sends a join request to a participant of the membership that ejected this peer: one that
   * refused it as a non-participant, or, when its own UnJoin reached it, a participant of its
   * own fold. Never a peer that still counts it in (it may be on the same losing side).
   */
  private async tryRejoin (): Promise<void> {
    const c = this.components
    const phase = c.lifecycle.phase
    if (phase.kind !== 'ejected') return
    const previous = phase.incarnation
    const candidates = [...phase.sponsors]
    const cluster = previous.groups.get('')
    if (cluster !== undefined && !cluster.isParticipant(c.self)) candidates.push(...cluster.others())
    let unreachable = c.unreachable()
    if (unreachable.length > 0) {
      // Silence may only mean that nothing was sent yet (a partition just healed, its
      // connections closed): ask them first. The members' anti-entropy tick, which dials
      // participants, does not run for an ejected peer. One with no known address cannot be
      // asked, and is not named: nothing would ever tell this peer where to reach it, and it
      // would stay out for good (the join answer brings addresses).
      const untried = new Set<Participant>()
      await Promise.all(unreachable.map(async p => { if (!await c.probe(p, this.settings.probeTimeoutMs)) untried.add(p) }))
      unreachable = c.unreachable().filter(p => !untried.has(p))
    }
    for (const sponsor of new Set(candidates)) {
      if (c.lifecycle.phase.kind !== 'ejected') break
      if (sponsor === c.self || !c.allows(sponsor) || unreachable.includes(sponsor)) continue
      try {
        await c.network.dial(sponsor, { timeoutMs: this.settings.joinTimeoutMs })
        if (await this.askToJoin(sponsor, this.settings.joinTimeoutMs, previous, unreachable) === undefined) break
        c.counters.rejoins++
        this.noteRejoined()
        c.log('rejoined through %s', sponsor)
        break
      } catch (err) {
        if (err instanceof JoinRefusedError && err.code === 'cannot-reach') {
          // The cut link that got this peer ejected still holds: asking others gains nothing,
          // and the heartbeat tick asks again, so the rejoin follows the link's repair.
          if (err.message !== this.refusal.message) c.log.error('not rejoining yet: %s', err.message)
          this.refusal = { message: err.message, unreachable }
          return
        }
        c.log('rejoin through %s failed: %s', sponsor, err)
      }
    }
    this.refusal = { message: '', unreachable: [] } // no sponsor said cannot-reach this time
  }

  /** The participants this peer's last rejoin request named unreachable, if a sponsor refused it for them (`cannot-reach`). */
  cannotReach (): readonly Participant[] {
    return this.refusal.unreachable
  }

  /** A rejoin that follows a short membership backs off further; one after a long one starts over. */
  private noteRejoined (): void {
    const now = this.components.clock.now()
    const lasted = now - this.backoff.admittedAt
    this.backoff.failures = this.backoff.admittedAt > 0 && lasted < MAX_REJOIN_BACKOFF_MS ? this.backoff.failures + 1 : 0
    this.backoff.admittedAt = now
    const base = Math.min(MAX_REJOIN_BACKOFF_MS, this.settings.rejoinBackoffMs * 2 ** this.backoff.failures)
    this.backoff.notBefore = this.backoff.failures === 0 ? 0 : now + base * (0.5 + this.components.random.next() / 2)
  }

  /** The join handler: see the module comment. */
  private async sponsor (from: Participant, { addresses, unreachable, counter, handed }: JoinRequest): Promise<Uint8Array> {
    const c = this.components
    const phase = c.lifecycle.phase
    // An ejected peer's fold is stale: admitting someone into it would only strand them there.
    if (phase.kind !== 'member') throw new Refused('not-ready', 'this peer is not a participant now')
    if (!this.joinLimiter.take(from)) { c.counters.droppedRateLimited++; throw new Refused('rate-limited', 'too many joins') }
    const incarnation = phase.incarnation
    // A participant that this peer hears and the asker does not: a broken link. One this peer
    // does not hear either is more likely down, and is the failure detector's to judge.
    const cut = unreachable.filter(p => p !== from && p !== c.self && incarnation.groups.get('')!.isParticipant(p) && c.hears(p))
    if (cut.length > 0) throw new Refused('cannot-reach', `${from} cannot reach ${cut.join(', ')}, which ${c.self} hears: admitted, it would stall their folds`)
    const admitted: SomeReplica[] = []
    // Events handed over are taken only from an asker the cluster still counts in here, in
    // groups that count it in (`Intake.handedOver`): an ejected peer's are fenced as its
    // messages are, and the UnJoin that ejected it stood in for it on what its acknowledgers held.
    const folds = new Map(incarnation.groups.get('')!.isParticipant(from) ? handed.map(h => [h.group, h.payload]) : [])
    for (const replica of incarnation.groups.values()) {
      const fold = replica.fold
      if (fold === undefined) continue
      const follows = replica.id === '' || replica.definition.membership === 'cluster'
      // The asker's own events first, so the UnJoin below stands in only for what this peer holds.
      const theirs = folds.get(replica.id)
      if (theirs !== undefined && c.takeHandedOver(replica, from, theirs)) c.counters.handedOver++
      // Past every event the asker's earlier incarnation made (an ejected peer goes on writing
      // until it finds out, with its own counters, and a third peer may hold those events): an
      // event of it ordered after the Join below would count as the new incarnation's, which
      // never held it (the EventFold simulation with live ejections forked so). Bounded, so an
      // asker cannot use up the group's counters.
      fold.observeCounter(Math.min(counter, fold.maxKnownCounter + MAX_COUNTER_LEAP))
      // An earlier incarnation with the same id leaves first, so a restarted peer rejoins cleanly.
      if (follows || replica.isParticipant(from)) replica.afterUpdate(fold.disassociate(from))
      if (!follows) continue
      replica.afterUpdate(fold.participate(from))
      admitted.push(replica)
    }
    const cluster = incarnation.groups.get('')!
    const groups = admitted.map(r => ({ group: r.id, payload: r.encodedFold(r.fold!) }))
    groups.sort((a, b) => a.group < b.group ? -1 : a.group > b.group ? 1 : 0)
    const versions = admitted.map(r => r.version)
    const peers: PeerAddresses[] = await Promise.all(cluster.others().filter(p => p !== from).map(async id => ({ id, addresses: await c.network.peerAddresses(id) })))
    peers.push({ id: c.self, addresses: c.network.multiaddrs() })
    if (addresses.length > 0) void this.reachAt(from, addresses)
    const saved = await Promise.all(admitted.map(async (r, i) => await c.persistence.persisted(r, versions[i])))
    if (c.lifecycle.incarnation !== incarnation) throw new Refused('not-ready', 'this peer rejoined meanwhile')
    // A group dropped before its save: the answer would show state no storage here holds.
    if (saved.includes(false)) throw new Refused('not-ready', 'a group was dropped meanwhile')
    c.log('admitted %s', from)
    return encodeJoinAccepted(groups, peers)
  }

  /**
   * Remembers `peer`'s addresses, then dials the first that answers. Remembered, they let the
   * anti-entropy tick (which dials every participant it is not connected to, by id) and a
   * failed send try again: a participant learnt of from the fold has no address otherwise, so
   * a first dial lost under load would leave the two unconnected for good.
   */
  async reachAt (peer: Participant, addresses: readonly string[]): Promise<void> {
    await this.components.network.rememberAddresses(peer, addresses)
    await this.dialAny(addresses)
  }

  /** Dials the first address that answers. */
  private async dialAny (addresses: readonly string[]): Promise<boolean> {
    for (const a of addresses) {
      try { await this.components.network.dial(a, { timeoutMs: 5000 }); return true } catch { /* try the next address */ }
    }
    return false
  }
}
