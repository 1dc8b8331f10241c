/**
 * Liveness and progress: every `heartbeatIntervalMs` a peer sends each other participant a
 * heartbeat with whom it suspects (silent, or stuck holding the fold back) and whether it knows
 * itself to be stuck, and asks the failure detector whom to eject. Heartbeat answers carry
 * the addresses of the participants the sender suspects, when the answering peer knows them:
 * two peers that joined through different sponsors at the same moment learn of each other's
 * addresses this way.
 *
 * What a tick does (docs/ARCHITECTURE.md, "Failure detection and automatic ejection"):
 * 1. closes connections `allowPeers` no longer allows;
 * 2. watches the cluster's projected participants, reads the outstanding Joins (a Join not seen
 *    before vouches that its peer was alive; this peer's own latest Join says who merged it);
 * 3. observes, in every group with outstanding events, who is behind and since when (stuck
 *    participants count as suspected for ejection, unless configured otherwise);
 * 4. sends the heartbeats; an ejected peer keeps sending them (their refusals name
 *    participants that can admit it again) and retries its rejoin;
 * 5. ejects whom a strict majority suspects (also checked as soon as a report arrives).
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { DecodeLimits } from '../../codec/codec.js'
import { eventIdKey, type Participant } from '../../eventfold/types.js'
import type { PeerClock, Timer } from '../clock.js'
import type { Inbound } from '../inbound.js'
import type { Incarnation, Lifecycle } from '../lifecycle.js'
import type { Network } from '../network.js'
import type { LegionCounters } from '../options.js'
import { HEARTBEAT_PROTOCOL, decodeHeartbeat, decodeHeartbeatAnswer, encodeHeartbeat, encodeHeartbeatAnswer, type Heartbeat, type Suspicion } from '../protocol/heartbeat.js'
import type { PeerAddresses } from '../protocol/join.js'
import { label } from '../intake.js'
import { FailureDetector } from './failure-detector.js'
import { ProgressTracker, type HeldBack } from './progress.js'
import type { BrokenLink } from '../stats.js'

/** What heartbeats need. */
export interface HeartbeatComponents {
  /** This peer. */
  readonly self: Participant
  /** The network. */
  readonly network: Network
  /** The admission pipeline. */
  readonly inbound: Inbound
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Whether `allowPeers` allows a peer now. */
  readonly allows: (peer: Participant) => boolean
  /** Ejects a suspect (at most one ejection per peer at a time); `grounds` says why, for the log. */
  readonly ejectSuspect: (peer: Participant, grounds: () => string) => void
  /** `peer`, which had merged this peer's latest Join, refused it as a non-participant. */
  readonly refusedAsNonParticipant: (peer: Participant, what: string) => void
  /** Asks to be admitted again. */
  readonly rejoin: () => void
  /** Remembers where `peer` listens, then dials the first address that answers. */
  readonly reachAt: (peer: Participant, addresses: readonly string[]) => Promise<void>
  /** Why this peer may be holding the fold back, if it can tell. */
  readonly diagnose: (incarnation: Incarnation) => string
  /** Time. */
  readonly clock: PeerClock
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Message limits. */
  readonly limits: DecodeLimits
  /** The part's logger. */
  readonly log: Logger
}

/**
 * The least lateness of a timer taken as a pause of this peer (see `Heartbeats.discountPause`);
 * below it, a late timer is ordinary scheduling noise.
 */
const PAUSE_FLOOR_MS = 50

/** Settings of failure detection. */
export interface HeartbeatSettings {
  /** Period of heartbeats. */
  readonly heartbeatIntervalMs: number
  /** Silence after which a participant is suspected. */
  readonly suspectAfterMs: number
  /** Time without progress after which a participant behind is stuck. */
  readonly stuckAfterMs: number
  /** Automatic ejection: off, or how (and whether stuck participants count). */
  readonly autoEject: false | { readonly backupDelayMs: number, readonly stuck: boolean }
  /** Whether an ejected peer rejoins. */
  readonly rejoin: boolean
}

/** What this peer knows of its own progress. */
export type SelfHealth =
  | {
    /** No participant reports this peer as stuck. */
    readonly kind: 'ok'
  }
  | {
    /** Participants report this peer as holding the fold back. */
    readonly kind: 'stuck'
    /** Why, as far as this peer can tell. */
    readonly reason: string
    /** The participants whose latest heartbeat reported it. */
    readonly reportedBy: readonly Participant[]
  }

/** How long a participant has been silent, as this peer sees it. */
export interface PeerSilence {
  /** The participant. */
  readonly peer: Participant
  /** Milliseconds since this peer last heard anything from it (heartbeat, diff, answer...). */
  readonly silentForMs: number
}

/** A participant this peer finds stuck. */
export interface StuckPeer extends HeldBack {
  /** The participant. */
  readonly peer: Participant
  /** Why, as the participant itself says in its heartbeats (when it knows). */
  readonly reason: string | undefined
}

/**
 * One other participant as this peer's failure detector sees it. Times are `clock.now()`
 * values of this peer.
 */
export interface PeerContact {
  /** The participant. */
  readonly peer: Participant
  /** When this peer last heard anything from it (`undefined`: it is not watched yet). */
  readonly heardAt: number | undefined
  /**
   * When this peer sent the latest heartbeat that the participant answered as a participant
   * (a refusal does not count): proof that it heard from this peer at or after that time,
   * which hearing from it (`heardAt`) is not when a link works one way only. `undefined`: no
   * heartbeat answered yet in this membership.
   */
  readonly answeredAt: number | undefined
}

/** Heartbeats, suspicion, stuck participants and automatic ejection; see the module comment. */
export class Heartbeats {
  readonly detector: FailureDetector
  private readonly progress = new ProgressTracker()
  private readonly inFlight = new Set<Participant>()
  /** Per participant: the send time of the latest heartbeat it answered as a participant. */
  private readonly answered = new Map<Participant, number>()
  /**
   * Per participant that has not merged this peer's latest Join: the send time of the first
   * heartbeat of an unbroken run it refused as a non-participant's (see `refusedTooLong`).
   */
  private readonly refusedSince = new Map<Participant, number>()
  /** Per participant: whether its latest heartbeat named this peer stuck, and its own stuck reason. */
  private readonly heardStatus = new Map<Participant, { namesMeStuck: boolean, ownReason: string | undefined }>()
  private health: SelfHealth = { kind: 'ok' }
  private stuck: ReadonlySet<Participant> = new Set()
  /** The participants this peer last reported silent. */
  private reportedSilent: ReadonlySet<Participant> = new Set()
  /** A tick brought forward to the moment a participant turns silent (see `watchSilence`). */
  private silenceTimer: Timer | undefined
  /** When the regular tick last ran (`clock.now()`), if it has. */
  private lastRegularTick: number | undefined
  /** Up to when this peer's own pauses have been discounted (see `discountPause`). */
  private listenedUntil = -Infinity

  constructor (private readonly components: HeartbeatComponents, private readonly settings: HeartbeatSettings) {
    this.detector = new FailureDetector(components.self, {
      suspectAfterMs: settings.suspectAfterMs,
      backupDelayMs: settings.autoEject === false ? 0 : settings.autoEject.backupDelayMs,
      reportFreshMs: settings.heartbeatIntervalMs
    })
  }

  /** Registers the protocol. */
  async start (): Promise<void> {
    await this.components.inbound.request(HEARTBEAT_PROTOCOL, 'members', decodeHeartbeat, async (from, h) => await this.answer(from, h))
  }

  /** Records that `peer` was heard from. */
  heard (peer: Participant): void {
    this.detector.heard(peer, this.components.clock.now())
  }

  /** Cancels the tick brought forward, if any (the peer stops). */
  stop (): void {
    this.silenceTimer?.cancel()
    this.silenceTimer = undefined
  }

  /** A new incarnation: what was known of the old membership no longer applies. */
  reset (): void {
    this.detector.reset()
    this.answered.clear()
    this.refusedSince.clear()
    this.progress.reset()
    this.heardStatus.clear()
    this.health = { kind: 'ok' }
    this.stuck = new Set()
  }

  /** Whether `peer` had merged this peer's latest Join (so its refusal means an ejection). */
  witnessedMyJoin (peer: Participant): boolean {
    const w = this.components.lifecycle.incarnation?.joinWitnesses
    return w === 'all' || w?.has(peer) === true
  }

  /** The regular tick, every `heartbeatIntervalMs`: discounts how late it runs, then ticks. */
  onInterval (): void {
    const now = this.components.clock.now()
    this.discountPause(now)
    this.lastRegularTick = now
    this.tick()
  }

  /**
   * A timer due at `dueAt` (or the regular tick, overdue) running only `now` means this peer's
   * event loop could not run since then: what arrived meanwhile may still wait unread in its
   * sockets, and timers run before the poll for I/O. Without this, a peer whose process stalled
   * (a long synchronous task, a starved CPU) suspects everyone on waking up, and a majority of
   * peers sharing one stalled process ejects a live one. That time is taken out of every
   * silence and hold counted (Cassandra's failure detector discounts its own pauses in the same
   * spirit). Each stretch of time is discounted once.
   */
  private discountPause (now: number, dueAt?: number): void {
    const regularDue = this.lastRegularTick === undefined ? undefined : this.lastRegularTick + this.settings.heartbeatIntervalMs
    const due = Math.min(dueAt ?? Infinity, regularDue ?? Infinity)
    const pause = now - Math.max(due, this.listenedUntil)
    this.listenedUntil = Math.max(this.listenedUntil, now)
    if (!(pause >= PAUSE_FLOOR_MS)) return
    this.detector.discount(pause, now)
    this.progress.discount(pause, now)
    if (pause >= this.settings.suspectAfterMs / 2) this.components.log('this peer could not listen for %d ms (its event loop was blocked or starved); not counted as anyone\'s silence', Math.round(pause))
  }

  /** One heartbeat tick; see the module comment. */
  tick (): void {
    const c = this.components
    const phase = c.lifecycle.phase
    if (phase.kind !== 'member' && phase.kind !== 'ejected') return
    for (const p of c.network.connectedPeers()) if (!c.allows(p)) void c.network.hangUp(p).catch(() => {})
    if (phase.kind === 'ejected' && !this.settings.rejoin) return // out for good: nothing to detect or ask
    const incarnation = phase.incarnation
    const cluster = incarnation.groups.get('')?.fold
    if (cluster === undefined) return
    const now = c.clock.now() // monotonic: a wall-clock jump must not make everyone suspect
    const projected = cluster.projectedParticipants()
    this.detector.watch(projected, now)
    this.scanJoins(incarnation, now)
    this.observeProgress(incarnation, now)
    const members = new Set(projected)
    for (const p of [...this.answered.keys()]) if (!members.has(p)) this.answered.delete(p)
    const silent = this.detector.suspects(now).filter(p => this.detector.isSilent(p, now))
    this.reportedSilent = new Set(silent)
    const suspects: Suspicion[] = [
      ...silent.map(peer => ({ peer, reason: 'silent' as const })),
      ...[...this.stuck].filter(p => members.has(p) && !silent.includes(p)).map(peer => ({ peer, reason: 'stuck' as const }))
    ]
    this.updateHealth(incarnation)
    const payload = encodeHeartbeat({ suspects, stuck: this.health.kind === 'stuck' ? this.health.reason : undefined })
    for (const peer of projected) if (peer !== c.self && c.allows(peer)) void this.send(peer, payload, incarnation.epoch)
    if (phase.kind === 'ejected') { c.rejoin(); return }
    if (this.settings.autoEject !== false) {
      this.ejectEach(this.detector.toEject(cluster.infimumParticipants(), projected, now), cluster.infimumParticipants(), now)
    } else {
      this.detector.brokenLinks(cluster.infimumParticipants(), now) // seen for stats(), though nobody is ejected for them
    }
    this.watchSilence(now)
  }

  /**
   * Brings the next tick forward to the moment a participant turns silent, when that comes
   * before the next regular tick: a peer that dies is then suspected (and reported to the
   * others, whose reports make the majority) `suspectAfterMs` after it was last heard, not up to
   * a heartbeat interval later at each voter. Nothing is sent early unless someone did turn
   * silent meanwhile.
   */
  private watchSilence (now: number): void {
    this.silenceTimer?.cancel()
    this.silenceTimer = undefined
    const at = this.detector.nextSilence(now)
    if (at === undefined || at >= now + this.settings.heartbeatIntervalMs) return
    this.silenceTimer = this.components.clock.setTimer(at - now, () => {
      this.silenceTimer = undefined
      const later = this.components.clock.now()
      this.discountPause(later, at)
      const newlySilent = this.detector.suspects(later).some(p => this.detector.isSilent(p, later) && !this.reportedSilent.has(p))
      if (newlySilent) this.tick()
      else this.watchSilence(later)
    })
  }

  /**
   * Reads the outstanding Joins of the cluster's group: a Join not seen before vouches that
   * its peer was alive a moment ago (its sponsor just heard from it), so a peer restarted
   * under the same id is not ejected on its earlier self's silence; and this peer's own
   * latest Join tells which participants have merged it: all of them once it has folded.
   */
  private scanJoins (incarnation: Incarnation, now: number): void {
    const fold = incarnation.groups.get('')!.fold!
    const seen = new Set<string>()
    let mine: readonly Participant[] | undefined
    for (const e of fold.outstandingEvents()) {
      if (e.delta.kind !== 'join') continue
      const key = eventIdKey(e.id)
      seen.add(key)
      if (!incarnation.seenJoins.has(key)) this.detector.heard(e.delta.participant, now)
      if (e.delta.participant === this.components.self) mine = e.acks
    }
    incarnation.seenJoins = seen
    incarnation.joinWitnesses = mine !== undefined ? new Set(mine) : fold.infimumParticipants().includes(this.components.self) ? 'all' : new Set()
  }

  private observeProgress (incarnation: Incarnation, now: number): void {
    this.progress.beginRound()
    for (const replica of incarnation.groups.values()) {
      const fold = replica.fold
      if (fold === undefined || fold.outstandingCount === 0) continue
      const behind = fold.divergent()
      behind.delete(this.components.self)
      this.progress.observe(replica.id, behind, now)
    }
    this.progress.endRound()
    this.stuck = this.progress.stuck(now, this.settings.stuckAfterMs)
    const autoEject = this.settings.autoEject
    this.detector.setStuck(autoEject !== false && autoEject.stuck ? this.stuck : new Set())
  }

  /** This peer is stuck if a participant's latest heartbeat says so; it then says why. */
  private updateHealth (incarnation: Incarnation): void {
    const reportedBy = [...this.heardStatus].filter(([, s]) => s.namesMeStuck).map(([p]) => p).sort()
    if (reportedBy.length === 0) { this.health = { kind: 'ok' }; return }
    const reason = this.components.diagnose(incarnation)
    if (this.health.kind !== 'stuck' || this.health.reason !== reason) this.components.log.error('%s report(s) this peer holds the fold back: %s', reportedBy.join(', '), reason)
    this.health = { kind: 'stuck', reason, reportedBy }
  }

  private async send (peer: Participant, payload: Uint8Array, epoch: number): Promise<void> {
    const c = this.components
    if (this.inFlight.has(peer)) return
    this.inFlight.add(peer)
    const witnessed = this.witnessedMyJoin(peer)
    try {
      c.counters.heartbeatsSent++
      c.inbound.countOut(payload)
      const sentAt = c.clock.now()
      const answer = await c.network.request(peer, c.inbound.protocol(HEARTBEAT_PROTOCOL), payload, { timeoutMs: this.settings.suspectAfterMs })
      if (!c.inbound.admitAnswer(peer, answer, epoch)) return
      const m = decodeHeartbeatAnswer(answer, c.limits)
      if (Array.isArray(m) && sentAt > (this.answered.get(peer) ?? -Infinity)) this.answered.set(peer, sentAt)
      if (!Array.isArray(m)) {
        if (m.code !== 'not-participant') return
        if (!witnessed && !this.refusedTooLong(peer, sentAt)) { c.log('%s does not know this peer as a participant (yet)', peer); return }
        c.refusedAsNonParticipant(peer, witnessed ? 'its heartbeat' : `its heartbeats for ${sentAt - this.refusedSince.get(peer)!} ms without merging its latest Join`)
        return
      }
      this.refusedSince.delete(peer)
      const connected = new Set(c.network.connectedPeers())
      // Remembered even if the dial fails or is not allowed now: a peer ejected at a broken link
      // dials the other end by id to hear it again, and may have no other address of it
      // (ARCHITECTURE.md, "Broken links"); nor may one that never reached it.
      for (const p of m) {
        if (p.id === c.self || connected.has(p.id)) continue
        if (c.allows(p.id)) void c.reachAt(p.id, p.addresses)
        else void c.network.rememberAddresses(p.id, p.addresses).catch(() => {})
      }
    } catch (err) {
      c.log('heartbeat to %s failed: %s', peer, err)
    } finally {
      this.inFlight.delete(peer)
    }
  }

  /**
   * Whether `peer`, which has not merged this peer's latest Join, has refused its heartbeats
   * as a non-participant's for `suspectAfterMs`, the latest one sent at `sentAt`. A refusal
   * from such a peer is normally a Join still on its way there, and is not taken for an
   * ejection; one that lasts means the Join will not arrive. Found with random link cuts
   * (docs/RELIABILITY.md): two peers cut off together were ejected by the other two, each was
   * readmitted by the other in a fold that could never settle, and every refusal of the two
   * that went on was ignored for good, since neither had merged those Joins.
   */
  private refusedTooLong (peer: Participant, sentAt: number): boolean {
    const since = this.refusedSince.get(peer)
    if (since === undefined) { this.refusedSince.set(peer, sentAt); return false }
    return sentAt - since >= this.settings.suspectAfterMs
  }

  private async answer (from: Participant, h: Heartbeat): Promise<Uint8Array> {
    const c = this.components
    // An ejected peer's view of the membership is stale: it gives no verdict on anyone.
    if (c.lifecycle.phase.kind !== 'member') return encodeHeartbeatAnswer([])
    const autoEject = this.settings.autoEject
    const counted = h.suspects.filter(s => s.reason === 'silent' || (autoEject !== false && autoEject.stuck)).map(s => s.peer)
    // I/O callbacks can run before the overdue timers after a stall: discount it here too.
    const now = c.clock.now()
    this.discountPause(now)
    this.detector.report(from, counted, now, h.suspects.filter(s => s.reason === 'silent').map(s => s.peer))
    if (counted.length > 0) this.ejectWhomMajoritySuspects()
    this.heardStatus.set(from, { namesMeStuck: h.suspects.some(s => s.peer === c.self && s.reason === 'stuck'), ownReason: h.stuck })
    const addresses: PeerAddresses[] = []
    for (const s of h.suspects.slice(0, 64)) {
      if (s.peer === from || s.peer === c.self) continue
      const known = await c.network.peerAddresses(s.peer).catch(() => [])
      if (known.length > 0) addresses.push({ id: s.peer, addresses: known })
    }
    return encodeHeartbeatAnswer(addresses)
  }

  /**
   * Ejects whom a strict majority suspects, now: a report that completes a majority need not
   * wait for this peer's next tick (which checks too), a heartbeat interval sooner.
   */
  private ejectWhomMajoritySuspects (): void {
    const c = this.components
    const phase = c.lifecycle.phase
    if (this.settings.autoEject === false || phase.kind !== 'member') return
    const cluster = phase.incarnation.groups.get('')?.fold
    if (cluster === undefined) return
    const now = c.clock.now()
    this.ejectEach(this.detector.toEject(cluster.infimumParticipants(), cluster.projectedParticipants(), now), cluster.infimumParticipants(), now)
  }

  /** Ejects each of `peers`, saying why (for the log): who suspected it of what, and for how long it held which group back here. */
  private ejectEach (peers: readonly Participant[], voters: readonly Participant[], now: number): void {
    const c = this.components
    for (const peer of peers) {
      c.ejectSuspect(peer, () => {
        const held = this.progress.heldBack(now).get(peer)
        const hold = held === undefined ? '' : `; here it has held group ${JSON.stringify(held.group)} back for ${Math.round(held.sinceProgressMs)} ms`
        return `${this.detector.grounds(peer, voters, now)}${hold}`
      })
    }
  }

  /** Participants this peer suspects of silence now, among the cluster's projected participants. */
  suspected (): Participant[] {
    const now = this.components.clock.now()
    const members = new Set(this.components.lifecycle.incarnation?.groups.get('')?.others() ?? [])
    return this.detector.suspects(now).filter(p => members.has(p) && this.detector.isSilent(p, now))
  }

  /**
   * The participants of this peer's membership (stale, once it is ejected) that it hears no
   * longer, sorted: what a rejoin request names as unreachable. Its heartbeats go on while it
   * is ejected, and their answers, refusals included, are what it hears. Naming is safe however
   * few it hears: a sponsor refuses only for a named peer that it hears itself, so a partition
   * (the sponsor on this side hears none of the other) or a dead peer holds nobody back, and
   * the join probes each one first, so a pause or a fresh start is not taken for a cut.
   */
  unreachable (): Participant[] {
    const now = this.components.clock.now()
    const others = this.components.lifecycle.incarnation?.groups.get('')?.others() ?? []
    return others.filter(p => this.detector.isSilent(p, now)).sort()
  }

  /**
   * Dials `peer` if need be and sends it a heartbeat out of turn, waiting at most `timeoutMs`
   * for the answer: whatever it answers (a refusal too) counts as hearing it. For a rejoin:
   * after a partition heals, a peer is silent only because nothing was sent to it yet. Returns
   * `false` if it could not even try: not connected, and no address known.
   */
  async probe (peer: Participant, timeoutMs: number): Promise<boolean> {
    const c = this.components
    const incarnation = c.lifecycle.incarnation
    if (incarnation === undefined || !c.allows(peer)) return true
    const connected = c.network.connectedPeers().includes(peer)
    if (!connected && (await c.network.peerAddresses(peer).catch(() => [])).length === 0) return false
    try {
      if (!connected) await c.network.dial(peer, { timeoutMs })
      const payload = encodeHeartbeat({ suspects: [], stuck: undefined })
      c.counters.heartbeatsSent++
      c.inbound.countOut(payload)
      const answer = await c.network.request(peer, c.inbound.protocol(HEARTBEAT_PROTOCOL), payload, { timeoutMs })
      c.inbound.admitAnswer(peer, answer, incarnation.epoch)
    } catch (err) {
      c.log('probe of %s failed: %s', peer, err)
    }
    return true
  }

  /** Whether this peer hears `peer` now: it is watched and not silent. */
  hears (peer: Participant): boolean {
    const now = this.components.clock.now()
    return this.detector.silenceOf(peer, now) !== undefined && !this.detector.isSilent(peer, now)
  }

  /** The links between two other participants found broken at the last tick, sorted, each with how long. */
  brokenLinks (): BrokenLink[] {
    const now = this.components.clock.now()
    const members = new Set(this.components.lifecycle.incarnation?.groups.get('')?.others() ?? [])
    return this.detector.seenBrokenLinks()
      .filter(l => l.ends.every(p => members.has(p)))
      .map(l => ({ between: l.ends, sinceMs: now - l.since }))
      .sort((x, y) => x.between.join('\n') < y.between.join('\n') ? -1 : 1) // ends sorted, never equal
  }

  /** How long each other participant has been silent (nothing heard from it), by peer id, sorted. */
  silences (): PeerSilence[] {
    const now = this.components.clock.now()
    const others = [...this.components.lifecycle.incarnation?.groups.get('')?.others() ?? []].sort()
    return others.flatMap(peer => {
      const silentForMs = this.detector.silenceOf(peer, now)
      return silentForMs === undefined ? [] : [{ peer, silentForMs }]
    })
  }

  /** Participants this peer finds stuck, with how long and (if they said) why. */
  stuckPeers (): StuckPeer[] {
    const now = this.components.clock.now()
    const members = new Set(this.components.lifecycle.incarnation?.groups.get('')?.others() ?? [])
    const held = this.progress.heldBack(now)
    return [...this.stuck].filter(p => members.has(p)).sort().map(peer => ({
      peer,
      ...held.get(peer)!,
      reason: this.heardStatus.get(peer)?.ownReason
    }))
  }

  /** Each participant behind somewhere, with how long its acknowledgements have not moved. */
  heldBack (): Map<Participant, HeldBack> {
    return this.progress.heldBack(this.components.clock.now())
  }

  /** Every other projected participant of the cluster, with when it was heard from and when it answered. */
  contacts (): PeerContact[] {
    const now = this.components.clock.now()
    const others = this.components.lifecycle.incarnation?.groups.get('')?.others() ?? []
    return others.sort().map(peer => {
      const silence = this.detector.silenceOf(peer, now)
      return { peer, heardAt: silence === undefined ? undefined : now - silence, answeredAt: this.answered.get(peer) }
    })
  }

  /** What this peer knows of its own progress. */
  selfHealth (): SelfHealth {
    return this.health
  }
}

/** A short description of where a group is blocked, for logs. */
export function blockedAt (group: string, counter: number, participant: Participant): string {
  return `group ${label(group)}: blocked at event ${counter}:${participant}`
}
