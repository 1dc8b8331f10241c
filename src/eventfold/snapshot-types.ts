/**
 * The EventFold as plain data: what a full merge sends and what storage persists (the
 * infimum, the logs, the outstanding events). Re-exported by types.ts.
 *
 * @module
 */
import type { EventId, InfimumDigest, OutstandingEvent, Participant } from './types.js'

/** The settled part of a fold: everything at or below `id` is identical on every replica. */
export interface InfimumSnapshot<S> {
  /** The id of the last event folded into the infimum. */
  readonly id: EventId
  /** Digest of every event folded so far. */
  readonly digest: InfimumDigest
  /** The participants after the last folded event, sorted. */
  readonly participants: readonly Participant[]
  /**
   * For each participant, the Join that admitted it ({@link BOTTOM} for the founder), sorted
   * by participant: only the events of the logs it writes as that incarnation fold (see
   * {@link CreatorLog.admittedBy}). A participant left out is one whose admission is not known
   * (a fold stored before protocol 11.0.0), whose logs all count as its own.
   * @default []
   */
  readonly admissions?: readonly Admission[]
  /** The state after the last folded event. */
  readonly state: S
}

/** The Join that admitted a participant, as an infimum records it. */
export interface Admission {
  /** The participant. */
  readonly participant: Participant
  /** Its Join's id; {@link BOTTOM} for the founder. */
  readonly join: EventId
}

/**
 * One of a participant's logs as a replica holds it: how many of its events (`seq`, a count),
 * the hash chain after the last one, and the participant's signature of that head, which lets
 * the replica relay the events to others.
 *
 * A participant writes one log at a time. It starts a new one at its first event in each new
 * fold it takes (it founds, joins or rejoins: a fold from another replica may hold less of
 * its earlier log than it sent), and goes on writing the one it wrote when it recovers its
 * fold from its own storage. Events of a log that can no longer fold anywhere are passed over
 * with the run's base (see {@link LogRun.base}). A log is named by `since`, the Lamport
 * counter of its first event.
 */
export interface CreatorLog {
  /** The participant whose events these are. */
  readonly participant: Participant
  /** Which of its logs: the counter of the log's first event. */
  readonly since: number
  /** How many of its events the replica holds (all of them, from the first). */
  readonly seq: number
  /** The chain hash after the last one; empty when the fold does not hash. */
  readonly hash: Uint8Array
  /** The participant's signature of this head, if the replica has it. */
  readonly signature?: Uint8Array | undefined
  /**
   * The Join that admitted the participant in the fold it writes this log in ({@link BOTTOM}
   * for the founder): the log's events fold only where that Join admitted it, so the events
   * of an incarnation whose Join was dropped never fold after another Join of the same name
   * (docs/ARCHITECTURE.md, "Admissions"). Left out when not known (a log stored before protocol
   * 11.0.0, or written before its creator took part): it then counts as any incarnation's.
   */
  readonly admittedBy?: EventId | undefined
  /**
   * The last event of the log before its outstanding ones, when it has outstanding ones that
   * are not its first (the events before them folded or were dropped): a receiver chains the
   * outstanding ones from there.
   */
  readonly base?: LogBase | undefined
}

/** The last event before a run of a log: its counter and the chain hash after it. */
export interface LogBase {
  /** Its Lamport counter (the creator is the log's). */
  readonly counter: number
  /** The chain hash after it. */
  readonly hash: Uint8Array
}

/** A whole EventFold as plain data: what a full merge sends and what storage persists. */
export interface EventFoldSnapshot<E, S, O> {
  /** The cluster's name; folds of different origins never merge. */
  readonly origin: string
  /** The settled value. */
  readonly infimum: InfimumSnapshot<S>
  /** Every log the replica holds events of, sorted by participant, then log. */
  readonly logs: readonly CreatorLog[]
  /**
   * Outstanding events in ascending id order. Each log's are the last ones of the log: their
   * `seq`s run without a gap up to its {@link CreatorLog.seq}.
   */
  readonly events: ReadonlyArray<OutstandingEvent<E, O>>
}
