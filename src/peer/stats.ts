/**
 * What a peer reports about itself ({@link LegionStats}, `Legion.stats()`): the cluster as it
 * sees it, the health of the other participants, and counters since it started.
 *
 * @module
 */
import type { EventId, Participant } from '../eventfold/types.js'
import type { PeerSilence, SelfHealth, StuckPeer } from './membership/heartbeats.js'

/** A link between two other participants that this peer finds broken (see {@link LegionStats.brokenLinks}). */
export interface BrokenLink {
  /** The two ends, sorted. */
  readonly between: readonly [Participant, Participant]
  /** Milliseconds since this peer first saw it broken. */
  readonly sinceMs: number
}

/** A participant that an outstanding event waits for (it has not acknowledged it). */
export interface DivergentPeer {
  /** The participant. */
  readonly peer: Participant
  /** The newest event it is known to have acknowledged before the first one it holds back. */
  readonly latestAcknowledged: EventId
  /** Milliseconds since its acknowledgements last moved forward (as seen here). */
  readonly sinceProgressMs: number
}

/** Counters of one peer since it started. */
export interface LegionCounters {
  /** Events applied here (applyFast + applyConsistent). */
  eventsApplied: number
  /** Consistent outputs produced here. */
  eventsFolded: number
  /** Diffs merged. */
  diffMerges: number
  /** Whole folds merged. */
  fullMerges: number
  /** Diffs refused as too new or too sparse (each followed by a sync). */
  mergeRefusals: number
  /** Sync requests this peer sent. */
  syncsRequested: number
  /** Sync requests this peer answered. */
  syncsServed: number
  /** Consistent outputs sent to their events' creators. */
  outputsForwarded: number
  /** Messages dropped because they could not be decoded as what their protocol expects. */
  droppedUndecodable: number
  /** Messages dropped because they belong to another cluster. */
  droppedWrongCluster: number
  /** Messages dropped because their sender is not a participant. */
  droppedNonParticipant: number
  /**
   * Diffs and folds dropped because an event in them was not signed by its creator: a
   * participant tried to create or alter an event in another's name.
   */
  droppedForged: number
  /**
   * Times this peer found that participants had settled on a history it does not share, and
   * rejoined (see `MergeResult.diverged`). Also counted in `timesEjected`.
   */
  divergences: number
  /** Messages dropped, and requests refused, because `allowPeers` no longer allows their sender. */
  droppedDenied: number
  /** Heartbeats this peer sent. */
  heartbeatsSent: number
  /** Participants this peer ejected because a majority suspected them. */
  autoEjections: number
  /** Times this peer found that it had been ejected. */
  timesEjected: number
  /** Times this peer was admitted again after an ejection. */
  rejoins: number
  /**
   * Groups in which this peer, sponsoring a rejoin, took the events the asker handed over
   * before standing in for its earlier incarnation (docs/PROTOCOL.md 5.4).
   */
  handedOver: number
  /** Requests refused by the per-peer rate limit. */
  droppedRateLimited: number
  /** Frames dropped by the transport (oversized or malformed). */
  droppedFrames: number
  /**
   * Inbound connections refused by the transport: handshakes that never completed (a peer
   * without the {@link LegionBaseOptions.clusterSecret}, or not speaking libp2p) and peers
   * denied by {@link LegionBaseOptions.allowPeers}.
   */
  refusedConnections: number
  /** Bytes received (streams and gossip). */
  bytesIn: number
  /** Bytes sent (streams and gossip). */
  bytesOut: number
  /** Messages received (streams and gossip). */
  messagesIn: number
  /** Messages sent (streams and gossip). */
  messagesOut: number
  /** Group messages dropped because no group of their id is defined here. */
  droppedUnknownGroup: number
  /**
   * Diffs dropped because they name participants (by fingerprint or participant-table hash)
   * this fold has not seen yet; each pulls a sync, which names everyone. Mostly a race after a
   * membership change this peer has not merged yet, so not counted as undecodable.
   */
  droppedUnknownParticipants: number
  /**
   * Calls of the event spec's `apply`, `join` or `unjoin` that threw (each logged under
   * `legion:groups:error`): the event became a failure, or the membership changed without the
   * hook's state.
   */
  hookErrors: number
  /**
   * Acknowledgements owed without hurry (`propagation.acknowledgeDelayMs`) that went inside a
   * message this peer sent the same peer anyway, counted once per group and receiving peer.
   */
  acknowledgementsRode: number
  /**
   * Acknowledgements owed without hurry sent by the delay's timer (every debt goes once the
   * oldest is due) or as this peer stopped, per group and receiving peer.
   */
  acknowledgementsDelayed: number
  /**
   * Ed25519 signatures this peer made of the heads of its own logs: one per flush for every
   * group it changed in it, whichever the number (PROTOCOL.md 4.7).
   */
  headsSigned: number
  /**
   * Saves to storage that failed (the store's batch rejected: a full disk, an I/O error).
   * Nothing the failed save held left the peer; the next flush that visits its groups saves
   * them again.
   */
  saveFailures: number
  /**
   * Flushes that threw: what changed in those groups in that tick was not sent (their next
   * change is). Always a bug, whose error is logged under `legion:flush:error`: a batch this
   * peer cannot encode stops every batch it sends, and the cluster's folds wait for it.
   */
  flushFailures: number
}

/** What {@link Legion.stats} reports. */
export interface LegionStats {
  /** This peer. */
  readonly self: Participant
  /** Infimum participants of the cluster's group. */
  readonly participants: number
  /** Events of the cluster's group not yet folded. */
  readonly outstanding: number
  /** The infimum id of the cluster's group. */
  readonly infimumId: EventId
  /** Participants that an outstanding event of the cluster's group waits for. */
  readonly divergent: readonly DivergentPeer[]
  /** Participants this peer suspects of silence (nothing heard for longer than `suspectAfterMs`), sorted. */
  readonly suspected: readonly Participant[]
  /** How long each other participant has been silent, sorted by peer id (how long a suspect has been). */
  readonly silence: readonly PeerSilence[]
  /**
   * Participants this peer finds stuck: behind in some group with no progress for
   * `stuckAfterMs` while alive, with since when and, if they said, why.
   */
  readonly stuck: readonly StuckPeer[]
  /**
   * Links between two other participants that this peer finds broken: it hears both, and one
   * reports the other silent (both alive, neither reaching the other), as of its last
   * heartbeat tick, sorted. One end is ejected once a link has been broken for
   * `suspectAfterMs` (docs/ARCHITECTURE.md, "Broken links"); while it stays broken, that end's
   * rejoins end the same way.
   */
  readonly brokenLinks: readonly BrokenLink[]
  /**
   * Participants whose automatic ejection waits here for a strict majority of the cluster's
   * participants (docs/ARCHITECTURE.md, "Why a partition cannot produce two clusters"),
   * sorted. While any does, this side of a split folds nothing new; `eject()` of each (on the
   * side an operator wants to go on) removes them without one.
   */
  readonly awaitingMajority: readonly Participant[]
  /** Whether others report this peer as holding the fold back, and why it thinks so. */
  readonly health: SelfHealth
  /**
   * `participant`, or `ejected` between learning of its ejection and being admitted again
   * (for good with `failureDetection.rejoin: false`).
   */
  readonly membership: 'participant' | 'ejected'
  /**
   * While this peer is ejected and its last rejoin was refused because it cannot reach
   * participants its sponsor hears (a broken link: docs/ARCHITECTURE.md, "Broken links"): the
   * participants its request named unreachable (those it hears no longer), sorted. It rejoins
   * once it hears them again. Empty otherwise.
   */
  readonly cannotReach: readonly string[]
  /** The groups this peer defines: how many, how many it holds, their outstanding events. */
  readonly groups: {
    /** Groups defined on this peer (the cluster's own included). */
    readonly defined: number
    /** Groups whose state this peer holds. */
    readonly held: number
    /** Outstanding events over every group held. */
    readonly outstanding: number
  }
  /** Counters since start. */
  readonly counters: Readonly<LegionCounters>
}
