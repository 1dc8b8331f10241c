/**
 * Merging what other peers send into this peer's group replicas: the pushed Diffs of a batch,
 * and the diffs or whole folds of sync answers and pushes. Each group's part of a message is
 * fenced on its own (the sender must be a participant of that group) and merged on its own;
 * what a merge finds is turned into action: a refused diff pulls a sync from the sender, a
 * first-hand divergence goes to membership, a forgery is dropped and logged.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import { decodeDiff, decodeEventFold } from '../codec/eventfold.js'
import { DecodeError } from '../codec/errors.js'
import type { DecodeLimits } from '../codec/codec.js'
import type { Participant } from '../eventfold/types.js'
import type { MergeOutcome } from './group/replica.js'
import type { Incarnation, SomeReplica } from './lifecycle.js'
import type { LegionCounters } from './options.js'
import type { GroupPayload } from './protocol/fold-batch.js'

/** What intake needs. */
export interface IntakeComponents {
  /** This peer. */
  readonly self: Participant
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Message limits. */
  readonly limits: DecodeLimits
  /** Pulls a sync of `group` from `peer`. */
  readonly requestSync: (peer: Participant, group: string, full: boolean) => void
  /** A first-hand merge from `from` showed a settled history this replica does not share. */
  readonly diverged: (replica: SomeReplica, from: Participant, ejected: boolean, threwHere: boolean) => void
  /** Intake's logger. */
  readonly log: Logger
  /** The peer's clock, in milliseconds. */
  readonly now: () => number
  /** Runs `callback` once after `ms` milliseconds (the peer's clock). */
  readonly setTimer: (ms: number, callback: () => void) => unknown
}

/**
 * How long a replica waiting for a group's state leaves the group's owner to push it before
 * pulling it from a participant whose batch arrived: the owner pushes the whole fold as it adds
 * the member, right after saving, and every participant's batches reach the new member at about
 * the same time, so pulling at the first batch moved the state twice (2.16x the state's bytes
 * when a sixth peer joined five, docs/BENCHMARKS.md). A push that failed or was rate-limited
 * costs the member this long.
 */
export const WAITING_PUSH_GRACE_MS = 1_000

/**
 * How long a replica waiting for a group's state pulls nothing after refusing a fold that
 * counted it in through a replica it no longer holds (see `adopt`): the participants' batches
 * go on reaching it until its readmission, and pulling the whole fold at each of them only to
 * refuse it again would move the state once per batch. The readmission comes as a push.
 */
export const REFUSED_PULL_BACKOFF_MS = 10_000

/** Merges what peers send; see the module comment. */
export class Intake {
  /** When a batch first reached each replica still waiting for its state. */
  private readonly waitingSince = new WeakMap<SomeReplica, number>()
  /** When each waiting replica last refused a fold that counted it in (see `adopt`). */
  private readonly refusedAt = new WeakMap<SomeReplica, number>()

  constructor (private readonly components: IntakeComponents) {}

  /** The pushed Diffs of a batch from `from`. */
  batch (incarnation: Incarnation, from: Participant, entries: readonly GroupPayload[]): void {
    const c = this.components
    for (const { group, payload } of entries) {
      const replica = incarnation.groups.get(group)
      const fold = replica?.fold
      if (replica === undefined) { c.counters.droppedUnknownGroup++; continue }
      if (fold === undefined) {
        // Waiting for this group's state: the owner that added this peer pushes it. Pull the
        // whole fold only once that push is late (WAITING_PUSH_GRACE_MS after the first
        // batch; later batches retry a pull that failed), from one participant at a time.
        const since = this.waitingSince.get(replica)
        const pull = (): void => {
          const refused = this.refusedAt.get(replica)
          if (replica.fold === undefined && replica.syncing.size === 0 && (refused === undefined || c.now() - refused >= REFUSED_PULL_BACKOFF_MS)) c.requestSync(from, group, true)
        }
        if (since === undefined) {
          this.waitingSince.set(replica, c.now())
          c.setTimer(WAITING_PUSH_GRACE_MS, pull)
        } else if (c.now() - since >= WAITING_PUSH_GRACE_MS) {
          pull()
        }
        continue
      }
      if (!replica.isParticipant(from)) { c.counters.droppedNonParticipant++; continue }
      let diff
      try {
        diff = replica.decodePushed(fold, payload)
      } catch (err) {
        // Well formed, but naming someone this fold has not seen yet: a sync names everyone.
        // Mostly a diff sent just after a membership change this peer has not merged, so it is
        // not counted as undecodable (which the heartbeat reports as a cause of holding back).
        if (err instanceof DecodeError && err.code === 'unknown-participant') {
          c.counters.droppedUnknownParticipants++
          c.log('a diff of group %s from %s names participants this fold does not know yet: pulling a sync', label(group), from)
          c.requestSync(from, group, false)
          continue
        }
        c.counters.droppedUndecodable++
        c.log('dropped an undecodable diff of group %s from %s: %s', label(group), from, err)
        continue
      }
      this.react(replica, from, replica.mergeDiff(fold, from, diff))
    }
  }

  /**
   * One group's diff or whole fold, in full form (a sync answer or a push), from `from`.
   * Returns what the merge found, or `undefined` if nothing was merged (not a participant,
   * undecodable).
   */
  full (replica: SomeReplica, from: Participant, kind: 'diff' | 'fold', bytes: Uint8Array): MergeOutcome | undefined {
    const c = this.components
    const fold = replica.fold
    if (fold === undefined || !replica.isParticipant(from)) { c.counters.droppedNonParticipant++; return undefined }
    let outcome: MergeOutcome
    try {
      outcome = kind === 'diff'
        ? replica.mergeDiff(fold, from, decodeDiff(bytes, replica.definition.codecs, c.limits))
        : replica.mergeFull(fold, from, decodeEventFold(bytes, replica.definition.codecs, c.limits))
    } catch (err) {
      c.counters.droppedUndecodable++
      c.log('dropped an undecodable %s of group %s from %s: %s', kind, label(replica.id), from, err)
      return undefined
    }
    this.react(replica, from, outcome)
    return outcome
  }

  /**
   * Takes the events of a whole fold that a rejoining participant `from` handed this peer, its
   * sponsor, before this peer's UnJoin stands in for `from`'s earlier incarnation (join.ts):
   * first-hand, and only while `from` is a projected participant here and this replica's own
   * Join has folded. The fold may well be settled on a history this peer does not share (that
   * is why `from` rejoins): its runs are taken, its acknowledgements only if it does share it,
   * and the divergence says nothing about this peer. Returns whether it merged.
   */
  handedOver (replica: SomeReplica, from: Participant, bytes: Uint8Array): boolean {
    const c = this.components
    const fold = replica.fold
    if (fold === undefined || !fold.hasJoined() || !replica.isParticipant(from)) return false
    let outcome: MergeOutcome
    try {
      outcome = replica.mergeFull(fold, from, decodeEventFold(bytes, replica.definition.codecs, c.limits), true)
    } catch (err) {
      c.counters.droppedUndecodable++
      c.log('dropped an undecodable fold of group %s handed over by %s: %s', label(replica.id), from, err)
      return false
    }
    if (outcome.kind === 'forged' || outcome.kind === 'wrong-origin') c.log('dropped the fold of group %s handed over by %s (%s)', label(replica.id), from, outcome.kind)
    return outcome.kind === 'merged' || outcome.kind === 'diverged'
  }

  /**
   * Takes a whole fold `from` sent for a group this peer waits to hold (a managed group it was
   * just added to): only if it names this peer as a participant (or a pending Join of it) and
   * `from` as a settled one. Trusting, like a joiner's first state. Returns `merged` if it
   * did, else how to refuse it.
   *
   * A managed group's fold that counts this peer in as a settled participant, with no Join of
   * it pending, is refused as `unknown-group` (this peer does not hold the group): it counts
   * this peer in through a replica this peer no longer holds (forgotten after it left the
   * group, or replaced by a rejoin), whose events and acknowledgements this one cannot stand
   * for. Acknowledging as that participant split groups: the new replica lacked an event of
   * its own old replica that others held (docs/RELIABILITY.md). The sender readmits it instead
   * (an UnJoin and a Join: `Group.participate`).
   */
  adopt (replica: SomeReplica, from: Participant, bytes: Uint8Array): 'merged' | 'not-participant' | 'unknown-group' {
    const c = this.components
    let snapshot
    try {
      snapshot = decodeEventFold(bytes, replica.definition.codecs, c.limits)
    } catch (err) {
      c.counters.droppedUndecodable++
      c.log('dropped an undecodable fold of group %s from %s: %s', label(replica.id), from, err)
      return 'not-participant'
    }
    if (snapshot.origin !== replica.definition.origin) { c.counters.droppedWrongCluster++; return 'not-participant' }
    const self = c.self
    const joining = snapshot.events.some(e => e.delta.kind === 'join' && e.delta.participant === self)
    const admitted = snapshot.infimum.participants.includes(self) || joining
    if (!admitted || !snapshot.infimum.participants.includes(from)) { c.counters.droppedNonParticipant++; return 'not-participant' }
    if (!joining && replica.definition.membership === 'managed') {
      c.log('refused the state of group %s from %s: it counts this peer in through a replica this peer no longer holds', label(replica.id), from)
      this.refusedAt.set(replica, c.now())
      return 'unknown-group'
    }
    try {
      replica.adopt(snapshot)
    } catch (err) {
      // A snapshot no fold would write: an event outside its creator's log, a log that does
      // not chain to its head.
      c.counters.droppedUndecodable++
      c.log('dropped an invalid fold of group %s from %s: %s', label(replica.id), from, err)
      return 'not-participant'
    }
    c.log('took the state of group %s from %s', label(replica.id), from)
    return 'merged'
  }

  private react (replica: SomeReplica, from: Participant, outcome: MergeOutcome): void {
    const c = this.components
    switch (outcome.kind) {
      case 'merged':
      case 'wrong-origin':
        return
      case 'refused':
        c.log('a diff of group %s from %s was refused (%s): pulling a sync', label(replica.id), from, outcome.reason)
        c.requestSync(from, replica.id, outcome.full)
        return
      case 'forged':
        // No sync and no retry: an honest peer never sends a forged body, so asking again would repeat it.
        c.log('dropped a message of group %s from %s: %s', label(replica.id), from, outcome.reason)
        return
      case 'diverged':
        c.diverged(replica, from, outcome.ejected, outcome.threwHere)
    }
  }
}

/** A group id for logs: the cluster's own group is `''`. */
export function label (group: string): string {
  return group === '' ? '(cluster)' : group
}
