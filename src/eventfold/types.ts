/**
 * Plain-data types of the EventFold: event ids, the user's event specification, deltas,
 * snapshots and diffs. Everything here is immutable data with no behaviour, so the codec and
 * the runtime can depend on it without depending on the fold's implementation.
 *
 * @module
 */

import type { EventId, Participant } from './event-id.js'
import type { CreatorLog, LogBase } from './snapshot-types.js'

// Event ids live in their own module; every importer of the core's types still finds them here.
export { BOTTOM, compareEventIds, eventIdKey, isBottom, sameParticipants } from './event-id.js'
export type { Admission, CreatorLog, EventFoldSnapshot, InfimumSnapshot, LogBase } from './snapshot-types.js'
export type { EventId, Participant } from './event-id.js'

/**
 * The result of applying a user event to a state: either an output with the new state, or a
 * system error with an output (the event then changes nothing, and its output is reported
 * once every participant has seen the same failure).
 */
export type ApplyResult<S, O> =
  | {
    /** The event applied. */
    readonly ok: true
    /** What the event produced. */
    readonly output: O
    /** The state after the event. */
    readonly state: S
  }
  | {
    /** The event failed: a system error, which leaves the state unchanged. */
    readonly ok: false
    /** What the failure reports. */
    readonly output: O
  }

/**
 * The user's event specification: what an event does to the shared state.
 *
 * Rules the fold relies on:
 * 1. `apply`, `join` and `unjoin` are deterministic: the same arguments give the same result
 *    on every peer, and they may be called more than once for the same event (once for the
 *    projection, again when the event folds into the infimum, again when a late event forces
 *    the projection to be recomputed).
 * 2. They must not mutate the state they are given: they return a new state, which may share
 *    unchanged parts with the old one. The infimum and the projection share state objects, so
 *    a mutation would corrupt the settled value. Pass `freezeStates: true` in
 *    {@link EventFoldOptions} during development to turn violations into `TypeError`s.
 * 3. They should be total. One that throws (or an `apply` that returns something other than
 *    an {@link ApplyResult}) is survived, never propagated: an `apply` that throws makes the
 *    event a failure like a returned one, carrying the thrown error's message instead of an
 *    output; a `join` or `unjoin` that throws leaves the state as it was, while the membership
 *    change still happens, and marks the infimum digest so that replicas where it threw and
 *    replicas where it did not are told apart. Every throw is reported once per replica
 *    ({@link ThrownHook}). A hook that throws on some replicas only (an older version during
 *    a rolling upgrade) makes those replicas diverge from the others; see "System errors" in
 *    docs/ARCHITECTURE.md for how that resolves.
 * 4. Each receives the {@link EventId} of the event (user event, Join or UnJoin) it applies:
 *    fixed when the event was created, the same on every replica and in every call, and
 *    increasing along the fold's order, so a state may record when something became true (a
 *    grant's fencing token, a registration's version). It is {@link BOTTOM} for the founder's
 *    own `join` at creation. The fold always passes it; it is optional in the type only so
 *    that code calling a spec directly (a test, an example) need not invent one. Specs that
 *    do not need it ignore it.
 *
 * @typeParam E - the user's event type
 * @typeParam S - the state the events fold into
 * @typeParam O - the output an event produces
 */
export interface EventSpec<E, S, O> {
  /** The state of a fresh cluster. Called once, by {@link EventFold.create}; a throw propagates from there. */
  init: () => S
  /** Applies one event (whose id is `id`). Must be deterministic and must not mutate `state`. */
  apply: (event: E, state: S, id?: EventId) => ApplyResult<S, O>
  /**
   * Called when `participant` joins the cluster (its Join, of id `id`, folds).
   * @default the state unchanged
   */
  join?: (participant: Participant, state: S, id?: EventId) => S
  /**
   * Called when `participant` leaves or is ejected (its UnJoin, of id `id`, folds).
   * @default the state unchanged
   */
  unjoin?: (participant: Participant, state: S, id?: EventId) => S
}

/**
 * How a fold authenticates the logs of its participants, so that no participant can create an
 * event in another's name, even by relaying it, at the cost of one signature per batch rather
 * than one per event.
 *
 * Every participant's events form its own append-only log, linked by a hash chain: the hash
 * after an event is {@link chain} of the hash before it (empty before the first) and the
 * event. A creator signs the **head** of its log (how many events, the hash after the last)
 * once per batch it sends, and every receiver checks, for each run of a creator's events it
 * takes, that the chain from the hash it holds through the run ends at a head the creator
 * signed. A relayed body is therefore as good as one from its creator: it is linked to a
 * signed head. (A run its creator sends itself, merged first-hand, is checked only before
 * this replica hands it on: see {@link MergeOptions.from}.)
 *
 * The fold stays pure: these are deterministic functions the runtime supplies (SHA-256 and
 * Ed25519 over the encodings the protocol defines, bound to the fold's origin). Without them
 * a fold neither hashes nor signs, and believes every body it is given.
 */
export interface EventSignatures<E, O> {
  /** The chain hash after `previous` (empty before a log's first event) extended by one event. */
  chain: (previous: Uint8Array, id: EventId, delta: SignedDelta<E, O>) => Uint8Array
  /**
   * This replica's signature of the head of its own log `since`: `seq` events, the last ending
   * at `head`, written as the incarnation Join `admittedBy` admitted (`undefined`: not known).
   * The admission must be signed too: it decides which incarnation the log's events fold as.
   */
  sign: (since: number, seq: number, head: Uint8Array, admittedBy: EventId | undefined) => Uint8Array
  /** Whether `signature` is `creator`'s signature of the head of its log `since` written as `admittedBy`'s incarnation. */
  verify: (creator: Participant, since: number, seq: number, head: Uint8Array, admittedBy: EventId | undefined, signature: Uint8Array) => boolean
}

/**
 * The head of a replica's own log that it has not signed yet ({@link EventFold.unsignedHead}),
 * for a peer that signs the heads of several groups with one signature.
 */
export interface UnsignedHead {
  /** The log (the counter of its first event). */
  readonly since: number
  /** How many events of the log the head covers. */
  readonly seq: number
  /** The chain hash after the last of them. */
  readonly head: Uint8Array
  /** The Join that admitted this replica where it writes the log (`undefined`: not known), signed with the head. */
  readonly admittedBy: EventId | undefined
  /**
   * Keeps `signature` as the head's, as if {@link EventSignatures.sign} had made it; ignored
   * once the log has grown past this head. `verify` must accept it.
   */
  readonly sign: (signature: Uint8Array) => void
}

/**
 * The deltas a creator's log holds, and so what its hash chain covers: every kind but
 * `error` (a failure is an outcome a replica finds when folding, not something a creator
 * writes; an error keeps the event it failed, which stays in the log).
 */
export type SignedDelta<E, O> = Exclude<Delta<E, O>, {
  /** An error: an outcome found while folding, not an entry of a log. */
  readonly kind: 'error'
}>

/** Options of a merge. */
export interface MergeOptions {
  /**
   * The authenticated sender of what is merged. When given, the merge is **first-hand**: it
   * believes the sender only about the sender. Only the sender's acknowledgement (its version
   * vector, its infimum, the failures it acknowledges) is taken, never one it relays for
   * another participant; a whole fold's infimum is not adopted; a failure is taken only as
   * the sender's acknowledgement of a failure this replica already saw, never as news that an
   * event failed. Event bodies are taken from anyone, but only as runs of their creators'
   * logs that end at a head the creator signed (when the fold has
   * {@link EventFoldOptions.signatures}). A participant then cannot create, acknowledge, fold
   * or fail anything in another's name. A run of the sender's own log needs no signature
   * check to be the sender's (the transport proved who sent it, as it does for the
   * acknowledgement): its signature is kept unchecked and checked once, before the run is
   * handed on to anyone else.
   *
   * This needs every participant's own acknowledgements to reach every other participant, as
   * push propagation does, and a replica whose own Join has folded ({@link EventFold.hasJoined}):
   * before that, a joining replica may lack events the others folded without it, and must
   * take the settled state from them on trust.
   * @default undefined: the merge believes everything it is given (as the Haskell library does)
   */
  from?: Participant
}

/** Options of {@link EventFold.snapshot}. */
export interface SnapshotOptions {
  /**
   * Whether the snapshot checks the signatures of other participants' log heads this replica
   * has not checked yet (those taken first-hand from their creators, see
   * {@link MergeOptions.from}, or restored from a snapshot) and leaves out any that fail, as
   * anything handed to another replica must. A snapshot this replica keeps for itself (its
   * storage) may skip the checks: a fold restored from it checks them before it hands them on.
   * @default true
   */
  readonly checkSignatures?: boolean
}

/** Options of an EventFold that are not part of its replicated value. */
export interface EventFoldOptions<E = unknown, O = unknown> {
  /**
   * Deep-freeze every state returned by `init`, `apply`, `join` and `unjoin`, so that an
   * event spec that mutates its input state fails loudly with a `TypeError` instead of
   * silently corrupting the infimum (thrown inside a hook, it is handled and reported like
   * any throw: see {@link EventSpec}). Costs time proportional to the new parts of each state.
   * @default false
   */
  freezeStates?: boolean
  /**
   * Hash-chains every participant's log, signs the head of this replica's own and checks
   * every run of events it receives against its creator's signed head: a run that does not
   * check is refused ({@link ForgedEventError}).
   * @default undefined: logs are neither hashed, signed nor checked
   */
  signatures?: EventSignatures<E, O>
}

/**
 * One change in the fold's total order.
 * - `event`: a user event.
 * - `join` / `unjoin`: a participant enters or leaves.
 * - `error`: a user event whose `apply` failed (returned a failure, or threw); it folds
 *   (changing nothing) once every participant has acknowledged the failure (`errorAcks`).
 *   A returned failure carries its `output`; a thrown one carries `thrown`, a description of
 *   the error, since there is no output.
 */
export type Delta<E, O> =
  | {
    /** A user event. */
    readonly kind: 'event'
    /** The event. */
    readonly event: E
  }
  | {
    /** A participant enters. */
    readonly kind: 'join'
    /** The joining participant. */
    readonly participant: Participant
  }
  | {
    /** A participant leaves or is ejected. */
    readonly kind: 'unjoin'
    /** The departing participant. */
    readonly participant: Participant
    /**
     * Set on an ejection the failure detector decided (`EventFold.disassociate` with
     * `quorum`): until it folds, it stands in for the departing participant's
     * acknowledgements only while the participants no UnJoin removes are a strict majority of
     * the infimum's (those leaving of their own accord, or readmitted, aside), so two sides
     * of a split cannot each remove the other (docs/ARCHITECTURE.md, "Why a partition cannot
     * produce two clusters").
     */
    readonly quorum?: true
  }
  | {
    /** A user event whose `apply` returned a failure. */
    readonly kind: 'error'
    /** The event that failed: it stays in its creator's log, which its hash chain covers. */
    readonly event: E
    /** The failure's output. */
    readonly output: O
    /** Never set on a returned failure. */
    readonly thrown?: undefined
    /** Participants known to have seen the failure, sorted. */
    readonly errorAcks: readonly Participant[]
  }
  | {
    /** A user event whose `apply` threw. */
    readonly kind: 'error'
    /** The event that failed: it stays in its creator's log, which its hash chain covers. */
    readonly event: E
    /** A description of what `apply` threw (see {@link ThrownHook.message}); there is no output. */
    readonly thrown: string
    /** Never set on a thrown failure. */
    readonly output?: undefined
    /** Participants known to have seen the failure, sorted. */
    readonly errorAcks: readonly Participant[]
  }

/**
 * A summary of every event folded into an infimum: how many folded and a 53-bit hash chain
 * over their ids in order, marked where an event folded as a failure or a membership hook
 * threw. Two replicas whose infima have the same id but different digests have diverged; a
 * diff carries the sender's digest so the receiver can prove it holds every event the sender
 * folded, with the same outcomes (see "the late joiner" in docs/ARCHITECTURE.md).
 */
export interface InfimumDigest {
  /** Number of events folded since the fold was created. */
  readonly count: number
  /** Hash chain over the folded event ids and outcomes, an integer in [0, 2^53). */
  readonly hash: number
  /**
   * How many of the folded events had a hook throw on the replica that folded this history
   * alone: a Join or UnJoin whose `join` or `unjoin` threw (a failure whose `apply` threw
   * folds only once every participant failed it, so it is nobody's own). Left out when 0.
   * Two histories of the same length that differ, where only one of them has such throws,
   * differ because of them (directly, or through a state they left different): that one is
   * the odd one out.
   * @default 0
   */
  readonly throws?: number
}

/** Where an infimum stands: the id of the last event folded into it, and its digest. */
export interface SettledInfimum {
  /** The id of the last event folded. */
  readonly id: EventId
  /** Digest of every event folded so far. */
  readonly digest: InfimumDigest
}

/** An outstanding event with the participants that have acknowledged it (sorted). */
export interface OutstandingEvent<E, O> {
  /** The event's id. */
  readonly id: EventId
  /** The creator's log it belongs to (see {@link CreatorLog.since}). */
  readonly since: number
  /** Its position in that log: the log's first event is 1. */
  readonly seq: number
  /** What the event does (an error keeps the event that failed). */
  readonly delta: Delta<E, O>
  /** Participants known to have acknowledged the event, sorted. */
  readonly acks: readonly Participant[]
  /**
   * An UnJoin only: how much of each of the departing participant's logs, up to its last event
   * ordered before the UnJoin, the participants that acknowledged the UnJoin held. The UnJoin
   * stands in for the departing participant only on a replica that holds at least that much of
   * it (see the stand-in rule, docs/ARCHITECTURE.md). Left out when empty.
   * @default []
   */
  readonly standIn?: readonly LogPosition[]
}

/** A position in one of a participant's logs: its first `seq` events of log `since`. */
export interface LogPosition {
  /** The log (see {@link CreatorLog.since}). */
  readonly since: number
  /** How many of its events, from the first (`>= 1`). */
  readonly seq: number
}

/** A participant's position in another participant's log: it holds that log's first `seq` events. */
export interface VersionEntry {
  /** The creator of the log. */
  readonly participant: Participant
  /** Which of its logs. */
  readonly since: number
  /** How many of its events are held, from the first (`>= 1`). */
  readonly seq: number
}

/** A failure a participant acknowledges: the event that failed there, and how. */
export type FailureReport<O> =
  | {
    /** The event. */
    readonly id: EventId
    /** Its failure's output. */
    readonly output: O
    /** Never set with an output. */
    readonly thrown?: undefined
  }
  | {
    /** The event. */
    readonly id: EventId
    /** What its `apply` threw, described. */
    readonly thrown: string
    /** Never set on a thrown failure. */
    readonly output?: undefined
  }

/**
 * What a participant acknowledges, as a version vector: it holds every event of each listed
 * creator up to `seq` (and so has acknowledged them: holding an event is acknowledging it),
 * it has folded up to `infimumId`, and it has seen the listed events fail. O(participants)
 * numbers however many events are outstanding, and monotone: a newer acknowledgement of the
 * same participant never says less (it may list fewer logs: one whose events all folded there
 * no longer matters, and its infimum says it instead).
 */
export interface Acknowledgement<O> {
  /** Who acknowledges. */
  readonly participant: Participant
  /** Its infimum id. */
  readonly infimumId: EventId
  /** Its infimum digest. */
  readonly infimumDigest: InfimumDigest
  /**
   * Its own Join has folded there and no readmission of it is pending ({@link EventFold.hasJoined}:
   * it merges first-hand, and never skips an event of its own).
   */
  readonly joined: boolean
  /** The log it writes now (its `since`; 0 before its first event there). */
  readonly log: number
  /**
   * The position in that log of its last own event that has not folded there (0: none). A
   * replica takes this acknowledgement only once it holds that log up to there: its sender's
   * own events that may still fold are all there (see docs/ARCHITECTURE.md, "Acknowledgements
   * as version vectors").
   */
  readonly unsettled: number
  /**
   * What it holds of each log that still matters there (those with events outstanding there,
   * and the one each participant writes now), sorted by participant, then log; a log not
   * listed is held up to 0.
   */
  readonly holds: readonly VersionEntry[]
  /** The outstanding events that failed there, by id; it acknowledges each failure. */
  readonly failures: ReadonlyArray<FailureReport<O>>
  /**
   * For each UnJoin outstanding there (by id), how much of each of the departing
   * participant's logs it holds up to its last event ordered before the UnJoin (left out when
   * none is outstanding there), sorted by UnJoin, then log. A replica lets the UnJoin stand in for the departing
   * participant only once it holds that much too (the stand-in rule): events of the
   * departing participant ordered after its UnJoin (renegades) do not count, so nobody waits
   * for one that was dropped everywhere.
   */
  readonly departing: readonly DepartingPosition[]
}

/**
 * How much of one of a departing participant's logs an acknowledger holds, up to its last
 * event ordered before the UnJoin (see {@link Acknowledgement.departing}).
 */
export interface DepartingPosition {
  /** The UnJoin. */
  readonly unjoin: EventId
  /** Which of the departing participant's logs. */
  readonly since: number
  /** How many of its events are held, from the first (`>= 1`). */
  readonly seq: number
}

/** One event of a {@link LogRun}. */
export interface RunEvent<E, O> {
  /** Its Lamport counter (the id's participant is the run's creator). */
  readonly counter: number
  /** What it does. */
  readonly delta: SignedDelta<E, O>
}

/** Consecutive events of one creator's log, with the creator's signature of the head they end at. */
export interface LogRun<E, O> {
  /** Whose log. */
  readonly creator: Participant
  /** Which of its logs. */
  readonly since: number
  /** The position of the first event in the log (`>= 1`). */
  readonly first: number
  /** The events, in log order (their counters ascend). */
  readonly events: ReadonlyArray<RunEvent<E, O>>
  /** The creator's signature of its log's head after the last event, if the fold signs. */
  readonly signature?: Uint8Array | undefined
  /** The Join that admitted the creator where it writes this log (see {@link CreatorLog.admittedBy}). */
  readonly admittedBy?: EventId | undefined
  /**
   * The last event before the run, when the sender holds none of the events before the run
   * any more (they folded or were dropped there) and the receiver may hold less. A receiver
   * takes the run over a gap only when that event is at or below its infimum (or the infimum
   * it is adopting): every event in the gap has a lower id still, so none can fold there.
   */
  readonly base?: LogBase | undefined
}

/**
 * What one replica sends another: acknowledgements (the sender's first; a trusting receiver
 * also takes those it relays for others) and runs of logs the receiver may not hold yet. The
 * sender's infimum (in its acknowledgement) is proof of what it folded: the receiver checks,
 * with the infimum digest, that it holds the same events before counting on it.
 */
export interface Diff<E, O> {
  /** The cluster's name. */
  readonly origin: string
  /** Acknowledgements: the sender's first, then others it relays, sorted by participant. */
  readonly acknowledgements: ReadonlyArray<Acknowledgement<O>>
  /** Runs of events, at most one per log, sorted by creator, then log. */
  readonly runs: ReadonlyArray<LogRun<E, O>>
}

/**
 * A consistent output: what an event produced when it folded into the infimum. Either its
 * output (from a success or a returned failure), or, when its `apply` threw, a description
 * of the error (`thrown`) in place of an output. Test `thrown !== undefined` to tell them
 * apart.
 */
export type ConsistentOutput<O> =
  | {
    /** The event that folded. */
    readonly id: EventId
    /** Its output, identical on every replica. */
    readonly output: O
    /** Never set when there is an output. */
    readonly thrown?: undefined
  }
  | {
    /** The event that folded, as a failure. */
    readonly id: EventId
    /** What its `apply` threw, described (see {@link ThrownHook.message}). */
    readonly thrown: string
    /** Never set: a throw has no output. */
    readonly output?: undefined
  }

/** The hooks of an {@link EventSpec} that the fold calls for events, Joins and UnJoins. */
export type HookName = 'apply' | 'join' | 'unjoin'

/**
 * A hook of the user's {@link EventSpec} threw (or `apply` returned something that is not an
 * {@link ApplyResult}). The fold carried on without it: see rule 3 of {@link EventSpec}.
 * Each throw is reported once per replica, by the update during which it was first seen
 * ({@link UpdateResult.thrown}).
 */
export interface ThrownHook {
  /**
   * The user event, Join or UnJoin the hook was called for; {@link BOTTOM} for the founder's
   * own `join` in {@link EventFold.create}.
   */
  readonly id: EventId
  /** Which hook threw. */
  readonly hook: HookName
  /** What it threw, as thrown (for the log; it never travels). */
  readonly error: unknown
  /**
   * A one-line description of `error`: `name: message` for an `Error`, its string form for
   * anything else, at most 1024 UTF-16 code units, always well-formed. This is what a thrown
   * failure carries to other replicas.
   */
  readonly message: string
}

/**
 * What every update of a fold reports.
 */
export interface UpdateResult<O> {
  /** Outputs of the events this update folded into the infimum, in id order. */
  readonly outputs: ReadonlyArray<ConsistentOutput<O>>
  /**
   * Whether the fold changed in a way other replicas should learn about (new events, new
   * acknowledgements or a moved infimum).
   */
  readonly propagate: boolean
  /**
   * The hooks of the user's spec that threw for the first time on this replica since the
   * previous update: during this update, or during a read that recomputed the projection
   * ({@link EventFold.projectedValue}), or at {@link EventFold.create}. For logging and
   * counting; the fold has already handled each of them.
   */
  readonly thrown: readonly ThrownHook[]
}
