/**
 * What a peer tells about itself: `stats()` (counters, divergence, suspicion, stuck peers,
 * its own health), its Prometheus metrics (the counters read at scrape time, plus gauges of
 * the membership and the groups), and, when others report it stuck, its best guess at why.
 *
 * @module
 */
import type { Participant } from '../eventfold/types.js'
import type { TransportStats } from '../transport/node.js'
import type { GroupRegistry } from './group/groups.js'
import type { Heartbeats } from './membership/heartbeats.js'
import type { Incarnation, Lifecycle } from './lifecycle.js'
import type { Metrics } from './metrics.js'
import type { DivergentPeer, LegionCounters, LegionStats } from './options.js'
import { label } from './intake.js'

/** What observation needs. */
export interface ObserveComponents {
  /** This peer. */
  readonly self: Participant
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Every group definition. */
  readonly groups: GroupRegistry
  /** Suspicion, progress and health. */
  readonly heartbeats: Heartbeats
  /** While ejected: the participants this peer's last rejoin was refused for not reaching. */
  readonly cannotReach: () => readonly Participant[]
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** The transport's counters. */
  readonly transportStats: () => TransportStats
  /** The peer's metrics. */
  readonly metrics: Metrics
}

/** `stats()`, metrics and self-diagnosis; see the module comment. */
export class Observer {
  private undecodableSeen = 0

  constructor (private readonly components: ObserveComponents) {
    this.registerMetrics()
  }

  /** What `Legion.stats()` returns. */
  stats (): LegionStats {
    const c = this.components
    const incarnation = c.lifecycle.incarnation
    const cluster = incarnation?.groups.get('')?.fold
    if (incarnation === undefined || cluster === undefined) throw new Error('the peer is not a participant yet')
    const held = c.heartbeats.heldBack()
    const divergent: DivergentPeer[] = [...cluster.divergent()].filter(([peer]) => peer !== c.self).map(([peer, id]) => {
      const h = held.get(peer)
      return { peer, latestAcknowledged: id, sinceProgressMs: h?.group === '' ? h.sinceProgressMs : 0 }
    })
    let heldGroups = 0
    let outstanding = 0
    for (const r of incarnation.groups.values()) {
      if (r.fold === undefined) continue
      heldGroups++
      outstanding += r.fold.outstandingCount
    }
    const t = c.transportStats()
    return {
      self: c.self,
      participants: cluster.infimumParticipants().length,
      outstanding: cluster.outstandingCount,
      infimumId: cluster.infimumId(),
      divergent,
      suspected: c.heartbeats.suspected(),
      silence: c.heartbeats.silences(),
      stuck: c.heartbeats.stuckPeers(),
      brokenLinks: c.heartbeats.brokenLinks(),
      awaitingMajority: cluster.awaitingMajority(),
      health: c.heartbeats.selfHealth(),
      membership: c.lifecycle.phase.kind === 'ejected' ? 'ejected' : 'participant',
      cannotReach: c.lifecycle.phase.kind === 'ejected' ? [...c.cannotReach()] : [],
      groups: { defined: c.groups.all().length, held: heldGroups, outstanding },
      counters: { ...c.counters, droppedFrames: t.channel.droppedFrames, refusedConnections: t.connections.refused }
    }
  }

  /**
   * Why this peer may be holding the fold back, as far as it can tell: a group blocked on an
   * event that failed only here, messages it cannot decode, a group whose state it waits for.
   */
  diagnose (incarnation: Incarnation): string {
    const reasons: string[] = []
    for (const r of incarnation.groups.values()) {
      const fold = r.fold
      if (fold?.isBlockedOnError() === true) {
        const head = fold.outstandingEvents()[0]
        reasons.push(`group ${label(r.id)} is blocked at event ${head?.id.counter ?? '?'}:${head?.id.participant ?? '?'}, which failed here`)
      } else if (fold === undefined && r.definition.membership === 'cluster') {
        reasons.push(`it does not hold cluster-wide group ${label(r.id)}`)
      }
    }
    const undecodable = this.components.counters.droppedUndecodable
    if (undecodable > this.undecodableSeen) {
      reasons.push(`it dropped ${undecodable - this.undecodableSeen} message(s) it could not decode (another version of Legion, or of the application's codecs?)`)
    }
    this.undecodableSeen = undecodable
    return reasons.length > 0 ? reasons.join('; ') : 'no cause found here: its acknowledgements may not reach the others'
  }

  private registerMetrics (): void {
    const c = this.components
    const m = c.metrics
    const counter = (name: string, help: string, read: () => number): void => {
      m.counter(name, help, [], metric => { metric.reset(); metric.inc(read()) })
    }
    const k = c.counters
    counter('events_applied', 'Events applied on this peer (applyFast and applyConsistent).', () => k.eventsApplied)
    counter('events_folded', 'Events folded into an infimum on this peer.', () => k.eventsFolded)
    counter('merges', 'Diffs and whole folds merged.', () => k.diffMerges + k.fullMerges)
    counter('merge_refusals', 'Diffs refused as too new or too sparse (each followed by a sync).', () => k.mergeRefusals)
    counter('syncs_requested', 'Sync requests sent.', () => k.syncsRequested)
    counter('syncs_served', 'Sync requests answered.', () => k.syncsServed)
    counter('heads_signed', 'Signatures made of the heads of this peer\'s own logs (one per flush for all the groups it changed).', () => k.headsSigned)
    counter('save_failures', 'Saves to storage that failed; nothing they held was sent, and a later flush saves it again.', () => k.saveFailures)
    counter('flush_failures', 'Flushes that threw (a bug; the error is logged): what changed in that tick was not sent.', () => k.flushFailures)
    counter('received_bytes', 'Bytes received (streams and gossip).', () => k.bytesIn)
    counter('sent_bytes', 'Bytes sent (streams and gossip).', () => k.bytesOut)
    counter('received_messages', 'Messages received.', () => k.messagesIn)
    counter('sent_messages', 'Messages sent.', () => k.messagesOut)
    counter('heartbeats_sent', 'Heartbeats sent.', () => k.heartbeatsSent)
    counter('auto_ejections', 'Participants this peer ejected because a majority suspected them.', () => k.autoEjections)
    counter('times_ejected', 'Times this peer found it had been ejected.', () => k.timesEjected)
    counter('rejoins', 'Times this peer was admitted again after an ejection.', () => k.rejoins)
    counter('handed_over', 'Groups in which this peer, sponsoring a rejoin, took the events the asker handed over.', () => k.handedOver)
    m.counter('deferred_acknowledgements', 'Acknowledgements owed without hurry, per group and receiving peer: rode in a message sent anyway, or sent by the timer of the delay.', ['how'], metric => {
      metric.reset()
      metric.inc({ how: 'rode' }, k.acknowledgementsRode)
      metric.inc({ how: 'delayed' }, k.acknowledgementsDelayed)
    })
    m.counter('dropped_messages', 'Messages dropped, by reason.', ['reason'], metric => {
      metric.reset()
      const t = c.transportStats()
      const reasons: Record<string, number> = {
        undecodable: k.droppedUndecodable,
        wrong_cluster: k.droppedWrongCluster,
        non_participant: k.droppedNonParticipant,
        forged: k.droppedForged,
        denied: k.droppedDenied,
        rate_limited: k.droppedRateLimited,
        unknown_group: k.droppedUnknownGroup,
        unknown_participant: k.droppedUnknownParticipants,
        bad_frame: t.channel.droppedFrames
      }
      for (const [reason, n] of Object.entries(reasons)) metric.inc({ reason }, n)
    })
    m.counter('dropped_frames', 'Frames the transport refused or could not match, by reason.', ['reason'], metric => {
      metric.reset()
      const t = c.transportStats()
      metric.inc({ reason: 'malformed' }, t.channel.malformedFrames)
      metric.inc({ reason: 'oversized' }, t.channel.oversizedFrames)
      metric.inc({ reason: 'late_response' }, t.channel.lateResponses)
    })
    const gauge = (name: string, help: string, read: () => number): void => {
      m.gauge(name, help, [], metric => { metric.set(read()) })
    }
    const cluster = (): ReturnType<NonNullable<Incarnation['groups']['get']>> => c.lifecycle.incarnation?.groups.get('')
    gauge('participants', 'Settled participants of the cluster.', () => cluster()?.fold?.infimumParticipants().length ?? 0)
    gauge('suspected_peers', 'Participants this peer suspects of silence.', () => c.heartbeats.suspected().length)
    gauge('broken_links', 'Links between two other participants that this peer finds broken (both heard here, one reporting the other silent).', () => c.heartbeats.brokenLinks().length)
    gauge('stuck_peers', 'Participants this peer finds stuck.', () => c.heartbeats.stuckPeers().length)
    gauge('ejections_awaiting_majority', 'Participants whose automatic ejection waits here for a strict majority (this side of a split folds nothing new meanwhile; eject() ends it).', () => cluster()?.fold?.awaitingMajority().length ?? 0)
    gauge('outstanding_events', 'Events not yet folded, over every group held here.', () => {
      let n = 0
      for (const r of c.lifecycle.incarnation?.groups.values() ?? []) n += r.fold?.outstandingCount ?? 0
      return n
    })
    gauge('groups_held', 'Groups whose state this peer holds.', () => [...c.lifecycle.incarnation?.groups.values() ?? []].filter(r => r.fold !== undefined).length)
    gauge('ejected', '1 while this peer knows it is ejected and has not rejoined.', () => c.lifecycle.phase.kind === 'ejected' ? 1 : 0)
    gauge('cannot_reach', 'While ejected: participants its last rejoin was refused for not reaching (a broken link); it rejoins once it hears them.', () => c.lifecycle.phase.kind === 'ejected' ? c.cannotReach().length : 0)
  }
}
