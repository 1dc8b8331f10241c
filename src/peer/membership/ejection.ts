/**
 * Leaving the cluster, in both directions: ejecting a participant (by hand, or because a
 * majority suspects it), leaving gracefully on `stop()`, and learning that this peer itself
 * was ejected.
 *
 * - **Eject** records the peer's UnJoin in the cluster's group, then pushes it to every other
 *   participant and waits for them to merge it. Once it folds, every holder of another group
 *   the peer takes part in records its UnJoin there too (it stands in for its acknowledgements,
 *   so no group waits for it; `inspect`).
 * - **Learning of one's own ejection**: this peer's UnJoin reached it; a participant that had
 *   merged its Join refused it as a non-participant; or, merging first-hand, two participants
 *   (or the only other one) showed it a settled history it does not share (a managed group
 *   settled without it only takes it out of that group). It then rejects
 *   every pending `applyConsistent` with `EjectedError` and, if configured to, rejoins.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { Participant } from '../../eventfold/types.js'
import type { Clock } from '../../time/clock.js'
import { NotParticipantError } from '../errors.js'
import type { Incarnation, Lifecycle, SomeReplica } from '../lifecycle.js'
import type { Dissemination, LegionCounters, WaitOptions } from '../options.js'
import type { Push } from '../push.js'
import { DEFAULT_CALL_TIMEOUT_MS } from '../config.js'
import { label } from '../intake.js'

/** What ejection needs. */
export interface EjectionComponents {
  /** This peer. */
  readonly self: Participant
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Pushes changes and waits for their merge. */
  readonly push: Push
  /** Whether `allowPeers` allows a peer now. */
  readonly allows: (peer: Participant) => boolean
  /** Asks to be admitted again (membership's join part). */
  readonly rejoin: () => void
  /** Forgets this peer's state of a managed group (see `Parts.forgetGroup`). */
  readonly forget: (group: string) => void
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Time, for the deadline of a dissemination. */
  readonly clock: Clock
  /** The part's logger. */
  readonly log: Logger
}

/** Ejections, leaving, and learning of one's own ejection; see the module comment. */
export class Ejection {
  private readonly ejecting = new Set<Participant>()

  constructor (private readonly components: EjectionComponents) {}

  /**
   * Removes `peer` from the cluster: its UnJoin in the cluster's group, pushed to every other
   * participant. Resolves once they merged it (or could not be reached in time). The other
   * groups it takes part in follow once that UnJoin folds ({@link inspect}).
   *
   * An operator's ejection needs no majority (the UnJoin has no `quorum`): the survivor of a
   * pair, or the side of an even split the operator chooses, goes on. It may also remove a
   * peer whose automatic ejection waits for a majority.
   */
  async eject (peer: Participant, options: WaitOptions = {}): Promise<Dissemination> {
    return await this.remove(peer, options, false)
  }

  private async remove (peer: Participant, options: WaitOptions, quorum: boolean): Promise<Dissemination> {
    const incarnation = this.memberIncarnation()
    const cluster = incarnation.groups.get('')!
    if (peer === this.components.self) throw new NotParticipantError(peer, 'is this peer: use stop() to leave')
    // An operator may remove a peer whose automatic ejection waits for a majority: no longer
    // a projected participant, but still one of the infimum's.
    const removable = cluster.isParticipant(peer) || (!quorum && cluster.fold?.infimumParticipants().includes(peer) === true)
    if (!removable) throw new NotParticipantError(peer)
    cluster.afterUpdate(cluster.fold!.disassociate(peer, { quorum }))
    const touched = [cluster]
    // No hang-up once disseminated: the ejected peer learns of its ejection from the refusals
    // of its next messages, and by then it may be rejoining, through this peer or another.
    // Closing its connection here cut off its join request in flight (answered by nobody until
    // the request timed out) and its new incarnation's streams (docs/RELIABILITY.md).
    return await this.disseminate(incarnation, touched, options)
  }

  /**
   * Ejects a participant a majority suspects (at most one ejection of a peer at a time). The
   * UnJoin has `quorum`: it stands in only while a strict majority of the participants
   * remains, since the suspicion is this side's view (two sides of a split each ejected the
   * other: harsh keyspace link cuts, seed 293).
   */
  async ejectSuspect (peer: Participant, grounds: () => string, timeoutMs: number): Promise<void> {
    if (this.ejecting.has(peer)) return
    this.ejecting.add(peer)
    try {
      this.components.log('ejecting %s: %s', peer, grounds())
      const incarnation = this.components.lifecycle.incarnation
      if (incarnation?.groups.get('')?.isParticipant(peer) !== true) return
      const done = this.remove(peer, { timeoutMs }, true)
      this.components.counters.autoEjections++
      await done
    } catch (err) {
      this.components.log('automatic ejection of %s failed: %s', peer, err)
    } finally {
      this.ejecting.delete(peer)
    }
  }

  /** `stop()` leaves: this peer's UnJoin everywhere, pushed to the others, waited for. */
  async leave (timeoutMs: number): Promise<void> {
    const c = this.components
    const phase = c.lifecycle.phase
    if (phase.kind !== 'member') return
    const incarnation = phase.incarnation
    if (incarnation.groups.get('')!.others().length === 0) return
    c.lifecycle.beginLeaving()
    const touched = this.unjoinEverywhere(incarnation, c.self)
    await this.disseminate(incarnation, touched, { timeoutMs }).catch(err => { c.log('leaving: %s', err) })
  }

  /** Records `peer`'s UnJoin in every group of `incarnation` it takes part in. */
  private unjoinEverywhere (incarnation: Incarnation, peer: Participant): SomeReplica[] {
    const touched: SomeReplica[] = []
    for (const replica of incarnation.groups.values()) {
      const fold = replica.fold
      if (fold === undefined || !replica.isParticipant(peer)) continue
      replica.afterUpdate(fold.disassociate(peer))
      touched.push(replica)
    }
    return touched
  }

  /**
   * Pushes the changes of `touched` to every other participant of the cluster (each gets
   * the groups it takes part in) and waits for their answers. `timeoutMs` bounds the whole:
   * the wait until the changes are saved here (nothing is sent before: save before telling)
   * and the pushes after it; a peer not answered by then counts as unreachable, as does
   * every peer once `signal` fires.
   */
  async disseminate (incarnation: Incarnation, touched: readonly SomeReplica[], options: WaitOptions): Promise<Dissemination> {
    const c = this.components
    const cluster = incarnation.groups.get('')!
    const targets = cluster.others()
    const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
    const deadline = c.clock.now() + timeoutMs
    // One timer and one abort listener for every target: each target's save wait races them.
    let expire = (): void => {}
    const expired = new Promise<undefined>(resolve => { expire = () => { resolve(undefined) } })
    const timer = c.clock.setTimer(timeoutMs, expire)
    options.signal?.addEventListener('abort', expire, { once: true })
    if (options.signal?.aborted === true) expire()
    try {
      const results = await Promise.all(targets.map(async peer => {
        if (!c.allows(peer)) return false
        try {
          const entries = await Promise.race([c.push.payloadsFor(peer, touched.filter(r => r.isParticipant(peer) || r === cluster)), expired])
          if (entries === undefined) {
            c.log('push to %s: not sent, its changes were not saved here in time', peer)
            return false
          }
          if (entries.length === 0) return true
          const remaining = deadline - c.clock.now()
          if (remaining <= 0) return false
          const merged = await c.push.push(peer, incarnation.epoch, entries, { timeoutMs: remaining, ...(options.signal !== undefined ? { signal: options.signal } : {}) })
          return merged.some(m => m.group === '' && m.merged) || !entries.some(e => e.group === '')
        } catch (err) {
          c.log('push to %s failed: %s', peer, err)
          return false
        }
      }))
      return {
        reached: targets.filter((_, i) => results[i] === true),
        unreachable: targets.filter((_, i) => results[i] !== true)
      }
    } finally {
      timer.cancel()
      options.signal?.removeEventListener('abort', expire)
    }
  }

  /**
   * Before a flush sends anything: this peer's own UnJoin reached it (without a later Join),
   * so it was ejected; and a peer that left the cluster leaves every group this peer holds.
   * Every holder records that UnJoin; the fold dedups it by meaning, so concurrent ones only
   * cost a message.
   *
   * "Left" means its UnJoin **folded** in the cluster's group (and no Join of it is pending),
   * not merely that one is pending: a pending UnJoin may never fold (two peers that eject each
   * other: the first UnJoin ordered wins, and the loser's, made after its own, is dropped), and
   * a managed group has fewer participants to agree, so its copy of that UnJoin could fold
   * there and split the group from a peer that is still in the cluster. It did: link cuts on
   * the keyspace, seed 21 (docs/RELIABILITY.md).
   */
  inspect (incarnation: Incarnation): void {
    const cluster = incarnation.groups.get('')
    if (this.components.lifecycle.phase.kind !== 'member' || cluster?.fold === undefined) return
    if (!cluster.isParticipant(this.components.self)) { this.ejected('its own UnJoin reached it'); return }
    // Only when the cluster's membership changed: walking every group costs what they number.
    const settled = cluster.fold.infimumParticipants()
    const members = `${settled.join(',')}|${cluster.fold.projectedParticipants().join(',')}`
    if (members === this.checkedAt.members && incarnation === this.checkedAt.incarnation) return
    this.checkedAt = { incarnation, members }
    const stays = new Set(settled)
    const left = (peer: Participant): boolean => !stays.has(peer) && !cluster.isParticipant(peer)
    for (const replica of incarnation.groups.values()) {
      const fold = replica.fold
      if (fold === undefined || replica === cluster) continue
      // In a managed group, only a replica whose own Join folded there records departures: a
      // joiner's UnJoins of every participant it knows let it stand in for all of them on a
      // guess (none remains to say what they held), and its history, lacking what they
      // acknowledged since it last heard from them, became the partition's (keyspace link
      // cuts, R = 2, seed 325). With none of them joined left, the service decides (the
      // keyspace's incoming replicas abandon, and the last owner restores).
      if (replica.definition.membership === 'managed' && !fold.hasJoined()) continue
      for (const peer of replica.others()) {
        if (left(peer)) replica.afterUpdate(fold.disassociate(peer))
      }
    }
  }

  private checkedAt: { incarnation: Incarnation | undefined, members: string } = { incarnation: undefined, members: '' }

  /** `peer`, which had merged this peer's latest Join, refused it as a non-participant. */
  refusedAsNonParticipant (peer: Participant, what: string): void {
    this.components.lifecycle.addSponsor(peer)
    this.ejected(`${peer} refused ${what}: not a participant`, [peer])
  }

  /**
   * A first-hand merge of `replica` from `from` showed a settled history this peer does not
   * share. A settled state of the cluster's group without this peer proves it was ejected (the
   * sender's word, but a participant may eject anyone openly anyway); of a managed group, that
   * it is out of that group only. Otherwise it is the ejected-peer race of
   * `standInMask` (or a lie): this peer cannot take a settled state on one participant's
   * word, so it waits until two (or the only other one) show it, then rejoins through them.
   */
  diverged (replica: SomeReplica, from: Participant, ejected: boolean, threwHere: boolean): void {
    const c = this.components
    if (ejected && replica.id === '') { this.ejected(`${from}'s settled state no longer lists it`, [from]); return }
    if (ejected) {
      // A managed group settled without this peer: it left the group (a released partition:
      // its own UnJoin folded at the others, who went on without it, before it folded here) or
      // was removed from it. That is the group's business, not the cluster's: leaving the
      // cluster for it would fail every request this peer holds elsewhere. What it was still
      // waiting for in the group can no longer fold here, and its state there is stale: it is
      // forgotten, so that the group reads as not held and a participant may add this peer
      // again (it then takes the state anew, as any new member does).
      replica.rejectEjected()
      c.forget(replica.id)
      c.log('group %s settled without this peer (at %s): it is no longer a participant there; its state is forgotten', label(replica.id), from)
      return
    }
    replica.divergedFrom.add(from)
    // Witnesses count among the participants that remain (one whose UnJoin is pending may never
    // answer); when the difference is this peer's own hooks that threw, one fold is enough:
    // those hooks cannot compute the settled state, so waiting for a second proves nothing.
    const others = replica.fold?.projectedParticipants().filter(p => p !== c.self).length ?? 0
    if (!threwHere && replica.divergedFrom.size < Math.min(2, others)) return
    const sponsors = [...replica.divergedFrom]
    replica.divergedFrom.clear()
    c.counters.divergences++
    c.log('participants settled group %s on a history this peer does not share%s: rejoining', label(replica.id), threwHere ? ' (its own hooks threw)' : '')
    this.ejected('participants settled on a history it does not share', sponsors)
  }

  /**
   * This peer learnt that it is no longer a participant. Pending `applyConsistent` calls
   * reject with `EjectedError` (their outcome is unknown: see the error), and the peer
   * rejoins if configured to.
   */
  ejected (reason: string, sponsors: Participant[] = []): void {
    const c = this.components
    if (!c.lifecycle.becomeEjected(reason, sponsors)) return
    c.counters.timesEjected++
    c.log('this peer was ejected (%s)', reason)
    for (const replica of c.lifecycle.incarnation?.groups.values() ?? []) replica.rejectEjected()
    c.rejoin()
  }

  private memberIncarnation (): Incarnation {
    const phase = this.components.lifecycle.phase
    if (phase.kind === 'member') return phase.incarnation
    throw new NotParticipantError(this.components.self, phase.kind === 'ejected' ? 'was ejected and has not rejoined' : 'is not a participant now')
  }
}
