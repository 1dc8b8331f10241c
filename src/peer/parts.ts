/**
 * The wiring of a peer's parts: each is built with the narrow components it declares, and the
 * few cycles between them (a merge may pull a sync, a sync answer may show an ejection, an
 * ejection rejoins) are closed by late-bound callbacks, so no part holds another's internals.
 *
 * ```
 *  inbound ──► propagation ─┐        flush ──► persistence ──► PeerStore
 *     │        sync / push ─┼─► intake ──► group replicas ◄── group handles ◄── services
 *     │        outputs     ─┘      │
 *     ├──► membership (join, ejection, heartbeats ─► failure detector, progress)
 *     └──► messaging (call / cast channels)          observe (stats, metrics)
 * ```
 *
 * @module
 */
import type { Logger, PrivateKey } from '@libp2p/interface'
import type { DecodeLimits } from '../codec/codec.js'
import type { EventFoldOptions, Participant } from '../eventfold/types.js'
import type { TransportStats } from '../transport/node.js'
import type { PeerClock, Random } from './clock.js'
import { DEFAULT_CALL_TIMEOUT_MS, type PeerConfig } from './config.js'
import { Flusher } from './flush.js'
import type { GroupDefinition } from './group/definition.js'
import { GroupRegistry } from './group/groups.js'
import { Inbound } from './inbound.js'
import { Intake } from './intake.js'
import type { Lifecycle, SomeReplica } from './lifecycle.js'
import type { LoggerFactory } from './log.js'
import { Ejection } from './membership/ejection.js'
import { Heartbeats } from './membership/heartbeats.js'
import { Joining } from './membership/join.js'
import { Messaging } from './messaging.js'
import type { Metrics } from './metrics.js'
import type { Network } from './network.js'
import { Observer } from './observe.js'
import type { Dissemination, LegionCounters, WaitOptions } from './options.js'
import { OutputForwarding } from './outputs.js'
import { PersistenceGate, type PeerIdentity, type PeerStore } from './persistence.js'
import { Propagation } from './propagation.js'
import { Push } from './push.js'
import { Sync } from './sync.js'

/** What the parts are built from: the peer's settings and its shared, long-lived things. */
export interface PartInputs {
  readonly config: PeerConfig<unknown, unknown, unknown>
  readonly self: Participant
  readonly privateKey: PrivateKey
  readonly network: Network
  readonly lifecycle: Lifecycle
  readonly clock: PeerClock
  readonly random: Random
  readonly counters: LegionCounters
  readonly limits: DecodeLimits
  readonly metrics: Metrics
  readonly store: PeerStore | undefined
  readonly identity: () => PeerIdentity
  readonly foldOptions: <E, S, O>(definition: GroupDefinition<E, S, O>) => EventFoldOptions<E, O>
  readonly signHeads: (replicas: readonly SomeReplica[]) => void
  readonly transportStats: () => TransportStats
  readonly loggers: LoggerFactory
}

/** The parts of a peer. */
export interface Parts {
  readonly log: Logger
  readonly inbound: Inbound
  readonly persistence: PersistenceGate
  readonly flusher: Flusher
  readonly groups: GroupRegistry
  readonly intake: Intake
  readonly sync: Sync
  readonly push: Push
  readonly propagation: Propagation
  readonly outputs: OutputForwarding
  readonly ejection: Ejection
  readonly joining: Joining
  readonly heartbeats: Heartbeats
  readonly messaging: Messaging
  readonly observer: Observer
  /**
   * Forgets this peer's state of managed group `id` (after it left the group, or learnt that
   * the group settled without it): the group waits to be given a state again, and its
   * storage is deleted. A group defined `keepAcrossRejoin` keeps the fold as a former one.
   */
  readonly forgetGroup: (id: string) => void
}

/** Builds and wires the parts; see the module comment. */
export function buildParts (inputs: PartInputs): Parts {
  const { config, self, network, lifecycle, clock, random, counters, limits, loggers } = inputs
  const log = loggers('peer')
  const allows = (peer: Participant): boolean => {
    const allow = config.allowPeers
    if (allow === undefined) return true
    try { return allow(peer) === true } catch { return false }
  }
  const isMember = (peer: Participant): boolean => lifecycle.incarnation?.groups.get('')?.isParticipant(peer) === true
  const schedule = (replica?: SomeReplica): void => { flusher.schedule(replica) }
  const now = (): number => clock.now()

  const consistentSeconds = inputs.metrics.histogram('apply_consistent_seconds', 'Time from applyConsistent to its outcome (folded, or the error that ended the wait).', [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], ['outcome'])
  const outcomes: Readonly<Record<string, string>> = { ConsistencyTimeoutError: 'timeout', AbortError: 'aborted', EjectedError: 'ejected', StoppedError: 'stopped' }

  const inbound = new Inbound({ cluster: config.cluster, network, lifecycle, counters, limits, allows, heard: p => { heartbeats.heard(p) }, isMember, log: loggers('inbound') })
  const persistence = new PersistenceGate({ store: inputs.store, identity: inputs.identity, schedule, log: loggers('persistence'), failed: () => { counters.saveFailures++ } })
  const groups = new GroupRegistry({
    cluster: config.cluster,
    self: () => self,
    lifecycle,
    clock,
    counters,
    limits,
    foldOptions: inputs.foldOptions,
    schedule,
    log: loggers('groups'),
    membershipChange: async (replica, kind, peer, options) => await membershipChange(replica, kind, peer, options),
    consistentTook: (ms, failure) => { consistentSeconds.observe({ outcome: failure === undefined ? 'folded' : outcomes[failure] ?? 'error' }, ms / 1000) }
  }, {
    firstHand: config.mode === 'push',
    forwardOutputs: config.forwardOutputs,
    acknowledgeEveryone: config.acknowledge === 'everyone',
    acknowledgeLater: config.acknowledge === 'everyone' && config.acknowledgeDelayMs > 0,
    consistentTimeoutMs: 30_000
  })
  const intake = new Intake({
    self,
    counters,
    limits,
    requestSync: (peer, group, full) => { sync.request(peer, [{ group, full }]) },
    diverged: (replica, from, ejected, threwHere) => { ejection.diverged(replica, from, ejected, threwHere) },
    log: loggers('intake'),
    now,
    setTimer: (ms, callback) => clock.setTimer(ms, callback)
  })
  const sync = new Sync({
    network,
    inbound,
    lifecycle,
    intake,
    persistence,
    allows,
    witnessedMyJoin: p => heartbeats.witnessedMyJoin(p),
    refusedAsNonParticipant: (p, what) => { ejection.refusedAsNonParticipant(p, what) },
    counters,
    limits,
    log: loggers('sync'),
    now
  })
  const push = new Push({ network, inbound, lifecycle, intake, persistence, allows, counters, limits, log: loggers('push'), now })
  const propagation = new Propagation({
    self,
    network,
    inbound,
    lifecycle,
    intake,
    persistence,
    schedule,
    counters,
    signHeads: inputs.signHeads,
    requestSync: (peer, wants) => { sync.request(peer, wants) },
    push,
    allows,
    clock,
    random,
    log: loggers('propagation')
  }, { mode: config.mode, intervalMs: config.intervalMs, directFanout: config.directFanout, acknowledgeDelayMs: config.acknowledgeDelayMs })
  const outputs = new OutputForwarding({
    self,
    inbound,
    lifecycle,
    sendOneWay: (peer, protocol, payload) => { propagation.sendOneWay(peer, protocol, payload) },
    counters,
    limits,
    log: loggers('outputs')
  })
  const ejection = new Ejection({ self, lifecycle, push, allows, rejoin: () => { joining.rejoin() }, forget: forgetGroup, counters, clock, log: loggers('membership') })
  const joining = new Joining({
    self,
    network,
    inbound,
    lifecycle,
    groups,
    persistence,
    allows,
    incarnationChanged: () => { heartbeats.reset(); flusher.schedule() },
    unreachable: () => heartbeats.unreachable(),
    hears: peer => heartbeats.hears(peer),
    probe: async (peer, timeoutMs) => await heartbeats.probe(peer, timeoutMs),
    clock,
    random,
    counters,
    limits,
    takeHandedOver: (replica, from, fold) => intake.handedOver(replica, from, fold),
    log: loggers('membership')
  }, { joinTimeoutMs: config.joinTimeoutMs, rejoin: config.rejoin, rejoinBackoffMs: config.heartbeatIntervalMs, probeTimeoutMs: config.heartbeatIntervalMs, handOverBytes: Math.floor(config.maxMessageBytes / 2) })
  const autoEject = config.autoEject
  const heartbeats: Heartbeats = new Heartbeats({
    self,
    network,
    inbound,
    lifecycle,
    allows,
    ejectSuspect: (peer, grounds) => { if (autoEject !== false) void ejection.ejectSuspect(peer, grounds, autoEject.timeoutMs) },
    refusedAsNonParticipant: (p, what) => { ejection.refusedAsNonParticipant(p, what) },
    rejoin: () => { joining.rejoin() },
    reachAt: async (peer, addresses) => { await joining.reachAt(peer, addresses) },
    diagnose: (incarnation): string => observer.diagnose(incarnation),
    clock,
    counters,
    limits,
    log: loggers('membership')
  }, {
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    suspectAfterMs: config.suspectAfterMs,
    stuckAfterMs: config.stuckAfterMs,
    autoEject: autoEject === false ? false : { backupDelayMs: autoEject.backupDelayMs, stuck: autoEject.stuck },
    rejoin: config.rejoin
  })
  const flusher = new Flusher({
    clock,
    lifecycle,
    persistence,
    propagation,
    outputs,
    notify: (replica) => { groups.notify(replica) },
    inspect: (incarnation) => { ejection.inspect(incarnation) },
    failed: () => { counters.flushFailures++ },
    log: loggers('flush')
  })
  const messaging = new Messaging({
    self,
    network,
    inbound,
    lifecycle,
    others: () => lifecycle.incarnation?.groups.get('')?.others() ?? [],
    limits,
    log: loggers('messaging')
  })
  const observer: Observer = new Observer({ self, lifecycle, groups, heartbeats, cannotReach: () => joining.cannotReach(), counters, transportStats: inputs.transportStats, metrics: inputs.metrics })

  /** A managed group's owner adds or removes a participant, and tells the cluster. */
  async function membershipChange (replica: SomeReplica, kind: 'join' | 'unjoin', peer: Participant, options: WaitOptions): Promise<Dissemination> {
    const incarnation = lifecycle.incarnation!
    const fold = replica.fold!
    if (kind === 'unjoin') {
      if (!replica.isParticipant(peer)) return { reached: [], unreachable: [] }
      replica.afterUpdate(fold.disassociate(peer))
      return await ejection.disseminate(incarnation, [replica], options)
    }
    // Not a peer that is leaving or has left the cluster: its UnJoin reaches this group only
    // when a holder looks at it after that UnJoin folded (Ejection.inspect), and one that did
    // before this Join would leave the group waiting for the departed peer's acknowledgement.
    if (incarnation.groups.get('')?.isParticipant(peer) !== true) return { reached: [], unreachable: [peer] }
    if (!replica.isParticipant(peer)) replica.afterUpdate(fold.participate(peer))
    if (peer === self) return { reached: [self], unreachable: [] }
    try {
      const deadline = now() + (options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS)
      let results = await push.push(peer, incarnation.epoch, await push.payloadsFor(peer, [replica]), options)
      if (results.some(r => !r.merged && r.code === 'unknown-group') && replica.fold === fold && now() < deadline) {
        // The peer holds no replica of the group: it takes the whole fold. One this fold counts
        // in with no Join of it pending refused it: this fold counts it in through a replica it
        // no longer holds (it left the group and forgot it, or rejoined the cluster), so it is
        // readmitted first: an UnJoin, which stands in for that replica, and a Join.
        if (replica.isParticipant(peer) && !fold.outstandingEvents().some(e => e.delta.kind === 'join' && e.delta.participant === peer)) {
          log('readmitting %s to group %s: it no longer holds the replica this fold counts in', peer, replica.id)
          replica.afterUpdate(fold.disassociate(peer))
          replica.afterUpdate(fold.participate(peer))
        }
        results = await push.push(peer, incarnation.epoch, await push.payloadsFor(peer, [replica], true), { ...options, timeoutMs: Math.max(1, deadline - now()) })
      }
      return results.some(r => r.merged) ? { reached: [peer], unreachable: [] } : { reached: [], unreachable: [peer] }
    } catch (err) {
      log('giving %s the state of group %s failed: %s (it will pull it when it asks)', peer, replica.id, err)
      return { reached: [], unreachable: [peer] }
    }
  }

  function forgetGroup (id: string): void {
    const incarnation = lifecycle.incarnation
    const replica = incarnation?.groups.get(id)
    if (incarnation === undefined || replica === undefined) return
    // A replica dropped on leaving may be the only copy left (its move called back meanwhile,
    // the table then naming it a partition's last owner: keyspace link cuts, R = 2, seed 72):
    // the service decides what to keep (`ServiceGroups.forgetFormer`).
    if (replica.fold !== undefined && replica.definition.keepAcrossRejoin) incarnation.former.set(id, replica.fold)
    incarnation.groups.set(id, groups.waiting(replica.definition))
    persistence.drop(id)
  }

  return { log, inbound, persistence, flusher, groups, intake, sync, push, propagation, outputs, ejection, joining, heartbeats, messaging, observer, forgetGroup }
}
