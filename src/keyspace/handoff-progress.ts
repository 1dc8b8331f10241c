/**
 * What `stats()` shows of one peer's handoff (src/keyspace/handoff.ts): the partitions it
 * receives, sends and releases, and its totals since it started.
 *
 * @module
 */
import type { Participant } from '../eventfold/types.js'

/** A partition this peer is receiving (see {@link HandoffProgress}). */
export interface ReceivingPartition {
  /** The partition. */
  readonly partition: number
  /** Its generation. */
  readonly generation: number
  /** Waiting for the state, holding it but not caught up (its Join not settled), or announced ready. */
  readonly phase: 'waiting-for-state' | 'catching-up' | 'announced'
  /** Milliseconds since this peer was listed as incoming. */
  readonly sinceMs: number
}

/** A transfer this peer runs as a partition's coordinator (see {@link HandoffProgress}). */
export interface SendingPartition {
  /** The partition. */
  readonly partition: number
  /** The incoming replica. */
  readonly to: Participant
  /** Queued, sending (Join and push in flight), sent (waiting for its promotion), or retrying after a failure. */
  readonly phase: 'queued' | 'sending' | 'sent' | 'retrying'
  /** Attempts so far. */
  readonly attempts: number
  /** Milliseconds since the transfer was planned. */
  readonly sinceMs: number
}

/** A partition this peer is leaving (see {@link HandoffProgress}). */
export interface ReleasingPartition {
  /** The partition. */
  readonly partition: number
  /** Its generation. */
  readonly generation: number
  /** Draining (answering the requests it took, and waiting for a `ready` it announced to fold) or leaving the group. */
  readonly phase: 'draining' | 'leaving'
  /** Requests it took that are not answered yet. */
  readonly inFlight: number
  /** Milliseconds since it started leaving. */
  readonly sinceMs: number
}

/** What `stats()` shows of handoff on this peer. */
export interface HandoffProgress {
  /** Partitions this peer is receiving. */
  readonly receiving: readonly ReceivingPartition[]
  /** Transfers this peer runs (as a partition's coordinator). */
  readonly sending: readonly SendingPartition[]
  /** Partitions this peer is leaving, with the requests it still answers for them. */
  readonly releasing: readonly ReleasingPartition[]
  /** Totals since start. */
  readonly completed: {
    /** Partitions this peer received and was promoted for. */
    readonly received: number
    /** Transfers this peer completed (the receiver was promoted). */
    readonly sent: number
    /** Partitions this peer left. */
    readonly released: number
    /** Groups this peer founded. */
    readonly founded: number
    /** Partitions this peer abandoned. */
    readonly abandoned: number
    /** Generations this peer founded from its copy, as the partition's last owner (among `founded`). */
    readonly restored: number
    /** Partitions this peer declared lost after waiting for their last owner. */
    readonly declaredLost: number
  }
}
