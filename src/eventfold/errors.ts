/**
 * Typed merge errors. A merge that fails leaves the local fold unchanged; each error names its
 * remedy in its doc comment. Every class sets `name`, so callers can test `err.name` even
 * across two copies of the package.
 *
 * @module
 */
import type { EventId } from './types.js'

/** Base class of every reason a merge was refused. */
export abstract class MergeError extends Error {
  /**
   * Whether a full merge (sending the whole EventFold instead of a diff) is the remedy.
   */
  abstract readonly needsFullMerge: boolean
}

/** The two folds belong to different clusters. Never mergeable; drop the message. */
export class DifferentOriginsError extends MergeError {
  /** Always `'DifferentOriginsError'`, so `err.name` identifies the error across package copies. */
  override readonly name = 'DifferentOriginsError'
  readonly needsFullMerge = false
  /** The local fold's origin. */
  readonly local: string
  /** The origin of the refused diff or fold. */
  readonly remote: string
  constructor (local: string, remote: string) {
    super(`cannot merge a fold of origin ${JSON.stringify(remote)} into one of origin ${JSON.stringify(local)}`)
    this.local = local
    this.remote = remote
  }
}

/**
 * The diff's infimum is an event the receiver does not hold: the sender folded events the
 * receiver has never seen. Remedy: a full merge.
 */
export class DiffTooNewError extends MergeError {
  /** Always `'DiffTooNewError'`, so `err.name` identifies the error across package copies. */
  override readonly name = 'DiffTooNewError'
  readonly needsFullMerge = true
  /** The diff's infimum id. */
  readonly diffInfimum: EventId
  /** The receiver's infimum id. */
  readonly localInfimum: EventId
  constructor (diffInfimum: EventId, localInfimum: EventId) {
    super(`diff infimum ${diffInfimum.counter}:${diffInfimum.participant} is newer than anything known locally (infimum ${localInfimum.counter}:${localInfimum.participant})`)
    this.diffInfimum = diffInfimum
    this.localInfimum = localInfimum
  }
}

/**
 * The diff leaves out something the receiver does not have: events of a creator's log before
 * the run it carries (reason `missing-body`; remedy: a sync, whose diff starts where the
 * receiver's acknowledgement says it stands), or (reason `digest`) events below the sender's
 * infimum, detected because folding up to the sender's infimum would not reproduce the
 * sender's infimum digest (remedy: a full merge).
 */
export class DiffTooSparseError extends MergeError {
  /** Always `'DiffTooSparseError'`, so `err.name` identifies the error across package copies. */
  override readonly name = 'DiffTooSparseError'
  readonly needsFullMerge = true
  /** `missing-body`: an omitted body is unknown here; `digest`: the infimum histories differ. */
  readonly reason: 'missing-body' | 'digest'
  /** The event concerned: the missing body's id or the diff's infimum id. */
  readonly eventId: EventId
  constructor (reason: 'missing-body' | 'digest', eventId: EventId) {
    super(reason === 'missing-body'
      ? `diff skips events of ${eventId.participant}'s log before ${eventId.counter}:${eventId.participant}, which are not held locally`
      : `folding up to ${eventId.counter}:${eventId.participant} would not reproduce the sender's infimum digest`)
    this.reason = reason
    this.eventId = eventId
  }
}

/**
 * A run of a creator's log does not chain to a head its creator signed (or carries no
 * signature): someone tried to create an event in another participant's name (or corrupted
 * one on the way). Nothing was merged.
 * Remedy: none from this sender; drop the message. An honest replica never sends one, so
 * asking the same sender again would only repeat it.
 */
export class ForgedEventError extends MergeError {
  /** Always `'ForgedEventError'`, so `err.name` identifies the error across package copies. */
  override readonly name = 'ForgedEventError'
  readonly needsFullMerge = false
  /** The last event of the run that did not check. */
  readonly eventId: EventId
  constructor (eventId: EventId) {
    super(`events of ${eventId.participant}'s log up to ${eventId.counter}:${eventId.participant} are not signed by their creator`)
    this.eventId = eventId
  }
}
