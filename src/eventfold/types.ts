/**
 * Plain-data types of the EventFold: event ids, the user's event specification, deltas,
 * snapshots and diffs. Everything here is immutable data with no behaviour, so the codec and
 * the runtime can depend on it without depending on the fold's implementation.
 *
 * @module
 */

/**
 * A participant of the cluster, identified by a string (in the runtime: the libp2p peer id in
 * its canonical base58 form).
 */
export type Participant = string

/**
 * The totally ordered identity of an event: ordered by `counter`, then by `participant`.
 *
 * The special value {@link BOTTOM} (`counter` 0, `participant` "") sorts before every real
 * event; real events always have `counter >= 1`. Counters are Lamport-style: a participant's
 * next event takes one more than the largest counter it has seen, so ids are unique per
 * participant.
 */
export interface EventId {
  /** Lamport counter, `>= 1` for real events, `0` only for {@link BOTTOM}. */
  readonly counter: number
  /** The participant that created the event; `""` only for {@link BOTTOM}. */
  readonly participant: Participant
}

/** The event id before every other event. */
export const BOTTOM: EventId = Object.freeze({ counter: 0, participant: '' })

/** Whether `id` is {@link BOTTOM}. */
export function isBottom (id: EventId): boolean {
  return id.counter === 0
}

/** Compares two event ids: negative if `a < b`, 0 if equal, positive if `a > b`. */
export function compareEventIds (a: EventId, b: EventId): number {
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1
  if (a.participant === b.participant) return 0
  return a.participant < b.participant ? -1 : 1
}

/** A stable string form of an event id, usable as a map key: `"counter:participant"`. */
export function eventIdKey (id: EventId): string {
  return `${id.counter}:${id.participant}`
}

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
 * How a fold signs the events it creates and checks the signatures of events it receives,
 * so that no participant can create an event in another's name, even by relaying it.
 *
 * The fold stays pure: these are deterministic functions the runtime supplies (Ed25519 over
 * the encoding the protocol defines). Only bodies that carry the event are signed: user
 * events, Joins and UnJoins. An error carries only the failed event's output, so it cannot
 * be checked; see {@link MergeOptions.from} for how errors are believed.
 */
export interface EventSignatures<E, O> {
  /** The creator's signature of a new event this replica creates (`id.participant` is itself). */
  sign: (id: EventId, delta: SignedDelta<E, O>) => Uint8Array
  /** Whether `signature` is `id.participant`'s signature of this event. */
  verify: (id: EventId, delta: SignedDelta<E, O>, signature: Uint8Array) => boolean
}

/** The deltas that carry a signature: every kind but `error`. */
export type SignedDelta<E, O> = Exclude<Delta<E, O>, {
  /** An error: it does not carry the event, so it cannot carry the creator's signature. */
  readonly kind: 'error'
}>

/** Options of a merge. */
export interface MergeOptions {
  /**
   * The authenticated sender of what is merged. When given, the merge is **first-hand**: it
   * believes the sender only about the sender. Only the sender's acknowledgements are taken;
   * the sender's infimum counts as the sender's acknowledgement of every event up to it (not
   * as everyone's); a whole fold's infimum is not adopted; an error is taken only as the
   * sender's acknowledgement of a failure this replica already saw, never as news that an
   * event failed; and event bodies are taken only if their signatures check (when the fold
   * has {@link EventFoldOptions.signatures}). A participant then cannot acknowledge, fold or
   * fail anything in another's name.
   *
   * This needs every participant's own messages to reach every other participant, as push
   * propagation does, and a replica whose own Join has folded ({@link EventFold.hasJoined}):
   * before that, a joining replica may lack events the others folded without it, and must
   * take the settled state from them on trust.
   * @default undefined: the merge believes everything it is given (as the Haskell library does)
   */
  from?: Participant
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
   * Signs the events this replica creates and checks the signatures of events it receives:
   * an event body whose signature is missing or wrong is refused ({@link ForgedEventError}).
   * @default undefined: events are neither signed nor checked
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
  }
  | {
    /** A user event whose `apply` returned a failure. */
    readonly kind: 'error'
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

/** The settled part of a fold: everything at or below `id` is identical on every replica. */
export interface InfimumSnapshot<S> {
  /** The id of the last event folded into the infimum. */
  readonly id: EventId
  /** Digest of every event folded so far. */
  readonly digest: InfimumDigest
  /** The participants after the last folded event, sorted. */
  readonly participants: readonly Participant[]
  /** The state after the last folded event. */
  readonly state: S
}

/** An outstanding event with the participants that have acknowledged it (sorted). */
export interface OutstandingEvent<E, O> {
  /** The event's id. */
  readonly id: EventId
  /** What the event does. */
  readonly delta: Delta<E, O>
  /** Participants known to have acknowledged the event, sorted. */
  readonly acks: readonly Participant[]
  /** The creator's signature of the event (see {@link EventSignatures}), if it has one. */
  readonly signature?: Uint8Array | undefined
}

/** A whole EventFold as plain data: what a full merge sends and what storage persists. */
export interface EventFoldSnapshot<E, S, O> {
  /** The cluster's name; folds of different origins never merge. */
  readonly origin: string
  /** The settled value. */
  readonly infimum: InfimumSnapshot<S>
  /** Outstanding events in ascending id order. */
  readonly events: ReadonlyArray<OutstandingEvent<E, O>>
}

/**
 * An outstanding event inside a {@link Diff}. `delta` is left out when the diff's target has
 * already acknowledged the event (it must hold the body already).
 */
export interface DiffEvent<E, O> {
  /** The event's id. */
  readonly id: EventId
  /** The event body, or `undefined` when the target already has it. */
  readonly delta: Delta<E, O> | undefined
  /** Participants known to have acknowledged the event, sorted. */
  readonly acks: readonly Participant[]
  /** The creator's signature of the body (see {@link EventSignatures}), sent with the body. */
  readonly signature?: Uint8Array | undefined
}

/**
 * What one replica sends another that already shares its infimum's history: its outstanding
 * events (bodies the target acknowledged left out) and its infimum id and digest, which act
 * as an acknowledgement by everyone of every event up to that id.
 */
export interface Diff<E, O> {
  /** The cluster's name. */
  readonly origin: string
  /** The sender's infimum id. */
  readonly infimumId: EventId
  /** The sender's infimum digest. */
  readonly infimumDigest: InfimumDigest
  /** The sender's outstanding events in ascending id order. */
  readonly events: ReadonlyArray<DiffEvent<E, O>>
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
