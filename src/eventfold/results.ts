/**
 * What the EventFold's updates report: the outcome of a new event, of a membership change, of
 * a merge. Plain data, like types.ts, kept apart from it because a merge's refusal is one of
 * the typed errors of errors.ts.
 *
 * @module
 */
import type { MergeError } from './errors.js'
import type { EventId, Participant, ThrownHook, UpdateResult } from './types.js'

/**
 * How a new event went on the projected value: immediate and possibly inconsistent (an
 * earlier event may still arrive and change it). `applied` and `failed` (a returned failure)
 * carry the output; `threw` carries what `apply` threw, since there is no output.
 */
export type ProjectedOutcome<O> =
  | {
    /** `apply` returned a success. */
    readonly status: 'applied'
    /** What the event produced. */
    readonly output: O
  }
  | {
    /** `apply` returned a failure. */
    readonly status: 'failed'
    /** What the failure reports. */
    readonly output: O
  }
  | {
    /** `apply` threw (or returned something that is not an `ApplyResult`). */
    readonly status: 'threw'
    /** What it threw, as thrown. */
    readonly error: unknown
    /** Its description, as the failure will carry it ({@link ThrownHook.message}). */
    readonly message: string
  }

/** What `EventFold.event` returns. */
export interface EventResult<O> extends UpdateResult<O> {
  /** The id given to the new event. */
  readonly id: EventId
  /** How the event went on the projected value. */
  readonly outcome: ProjectedOutcome<O>
}

/** What `EventFold.participate` and `EventFold.disassociate` return. */
export interface MembershipResult<O> extends UpdateResult<O> {
  /** The id of the Join or UnJoin event. */
  readonly id: EventId
}

/** The outcome of a merge: the update it made, or why it was refused (nothing changed). */
export type MergeResult<O> =
  | ({
    /** The merge was made. */
    readonly ok: true
    /**
     * Whether this replica acknowledged something it had not before: the only news of its
     * own a merge creates, which is all a runtime that sends every replica's messages to
     * every other replica needs to pass on.
     */
    readonly acknowledged: boolean
    /**
     * Who should be sent this replica's acknowledgement now rather than at the next
     * anti-entropy round, because they may be waiting for it to fold events of their own:
     * the creators of the events this merge added and of the outstanding events ordered
     * after the first of them (an earlier event arriving late may be what holds theirs back),
     * or every other participant when this replica now acknowledges a new failure (a failure
     * folds only once every participant has seen it) or a Join or UnJoin (membership changes
     * settle everywhere at once, not an anti-entropy round later). Never this replica.
     */
    readonly notify: readonly Participant[]
    /**
     * A first-hand full merge only (`MergeOptions.from`): the sender's infimum is ahead
     * of this replica's, or at the same id, and its history differs (this replica does not
     * hold that infimum event, or folding up to it would not reproduce its digest, even
     * allowing for the sender's own hooks that threw). The settled state was not taken, nor
     * the sender's acknowledgements. Among honest replicas this happens when this one was
     * ejected, when replicas folded past an ejected peer's event that reached only some of
     * them (see `standInMask`), or when this replica's hooks threw where the sender's ran
     * (`threwHere`); the runtime then rejoins once two participants show it (at once with
     * `threwHere`).
     */
    readonly diverged: boolean
    /**
     * Only with `diverged`: the sender's history is this replica's except for events whose
     * `apply`, `join` or `unjoin` threw here and ran there. This replica, not the sender, is
     * the odd one out (its hooks cannot compute the settled state), so the runtime can rejoin
     * on this one sender's word instead of waiting for a second.
     */
    readonly threwHere: boolean
  } & UpdateResult<O>)
  | {
    /** The merge was refused; the fold is unchanged. */
    readonly ok: false
    /** Why it was refused. */
    readonly error: MergeError
  }

