/**
 * The public contract of discovery and election: what `peer.services.discovery` offers, the
 * handles it returns and the events it reports. The implementation is `service.ts`; the
 * replicated rules are `registry-spec.ts`.
 *
 * @module
 */
import type { Codec } from '../codec/codec.js'
import type { EventId, Participant } from '../eventfold/types.js'
import type { WaitOptions } from '../peer/options.js'

/**
 * Which replica state a read uses: `'settled'` (the infimum: every participant acknowledged it,
 * it never changes back) or `'projected'` (every event known here applied: newest, but a
 * late event may still change it).
 */
export type LookupConsistency = 'settled' | 'projected'

/**
 * A fencing token: the id of the folded event that granted a name. Tokens of one name only
 * grow (compare them with `compareEventIds`), and every peer knows each one.
 */
export type FencingToken = EventId

/** Options of the discovery service. Every peer of a cluster must pass the same. */
export interface DiscoveryOptions<M, C> {
  /**
   * How registration metadata travels and is kept.
   * @default jsonCodec (metadata must be a `JsonValue`)
   */
  readonly metaCodec?: Codec<M>
  /**
   * How checkpoints travel and are kept.
   * @default jsonCodec (checkpoints must be `JsonValue`s)
   */
  readonly checkpointCodec?: Codec<C>
  /**
   * Longest name, in UTF-8 bytes.
   * @default 256
   */
  readonly maxNameBytes?: number
  /**
   * Largest encoded metadata of one registration, in bytes.
   * @default 16384
   */
  readonly maxMetaBytes?: number
  /**
   * Largest encoded checkpoint, in bytes.
   * @default 262144
   */
  readonly maxCheckpointBytes?: number
  /**
   * Registry changes kept for watchers. A watcher that falls further behind than this (its
   * peer folded more changes between two notifications) gets a fresh snapshot instead.
   * @default 256
   */
  readonly journalLength?: number
  /**
   * A holder acts only while a majority of the participants answered one of its heartbeats
   * sent within this many milliseconds (see docs/ARCHITECTURE.md, "Discovery and election").
   * Must stay below `failureDetection.suspectAfterMs` by more than the timer lateness and
   * stalls to tolerate, and above two heartbeat intervals (or the holder steps down whenever
   * one heartbeat is late).
   * @default suspectAfterMs − max(250, suspectAfterMs / 3)
   */
  readonly quorumWindowMs?: number
  /**
   * A holder acts only while every participant with a smaller id answered one of its
   * heartbeats sent within this many milliseconds (the broken-link rule ejects the larger end).
   * @default 2 × suspectAfterMs − max(250, suspectAfterMs / 3)
   */
  readonly linkWindowMs?: number
  /**
   * How long stopping a holder waits for its start function (and the stop function it
   * returned) to finish before going on without it (logged).
   * @default 5000
   */
  readonly stopTimeoutMs?: number
}

/** One registration, as lookups and watchers see it. */
export interface ServiceEntry<M> {
  /** `<peer>/<local>`: unique under the name. */
  readonly key: string
  /** The registering peer. */
  readonly peer: Participant
  /** The metadata (`undefined` when registered without). */
  readonly meta: M | undefined
  /** `false` while drained. */
  readonly enabled: boolean
  /** The event that made this version true. */
  readonly since: EventId
}

/** What {@link Discovery.lookup} answers. */
export interface Lookup<M> {
  /** The name. */
  readonly name: string
  /** The state it was read from. */
  readonly consistency: LookupConsistency
  /** The settled event id the answer is valid as of (for projected reads: the settled part under it). */
  readonly asOf: EventId
  /** The registrations, sorted by key. */
  readonly entries: ReadonlyArray<ServiceEntry<M>>
}

/** Options of {@link Discovery.lookup}. */
export interface LookupOptions {
  /**
   * The state to read.
   * @default 'settled'
   */
  readonly consistency?: LookupConsistency
  /**
   * Include drained registrations.
   * @default false
   */
  readonly includeDrained?: boolean
}

/**
 * What a registry watcher is told, in fold order: first a `snapshot`, then every change with
 * the id of the event that made it true and its sequence number in the registry's journal
 * (increasing; consecutive across all names, so a watcher of one name sees gaps that are other
 * names' changes). A watcher whose
 * peer folded more changes at once than the journal keeps gets a new `snapshot` with `reset`.
 */
export type RegistryWatchEvent<M> =
  | {
    /** The registrations under the name as of `asOf`. */
    readonly kind: 'snapshot'
    /** The name. */
    readonly name: string
    /** The settled id the snapshot is valid as of. */
    readonly asOf: EventId
    /** The sequence number of the last change it includes. */
    readonly seq: number
    /** Whether it replaces changes that could not be delivered one by one. */
    readonly reset: boolean
    /** The registrations (drained ones included). */
    readonly entries: ReadonlyArray<ServiceEntry<M>>
  }
  | {
    /** A registration appeared or changed (metadata, drain flag). */
    readonly kind: 'registered'
    /** The name. */
    readonly name: string
    /** The event that made it true. */
    readonly id: EventId
    /** Its sequence number. */
    readonly seq: number
    /** The registration as it is now. */
    readonly entry: ServiceEntry<M>
  }
  | {
    /** A registration went away. */
    readonly kind: 'unregistered'
    /** The name. */
    readonly name: string
    /** The event that removed it (an unregister, or its peer's UnJoin). */
    readonly id: EventId
    /** Its sequence number. */
    readonly seq: number
    /** The registration as it was. */
    readonly entry: ServiceEntry<M>
    /** Unregistered by its peer, or gone with its peer (left or ejected). */
    readonly cause: 'unregistered' | 'departed'
  }

/** The holder of a name. */
export interface Holder {
  /** The name. */
  readonly name: string
  /** The peer granted it. */
  readonly peer: Participant
  /** The grant's fencing token. */
  readonly token: FencingToken
}

/** What an observer of a name's holder is told, in fold order: first `current`, then every change. */
export type HolderEvent =
  | {
    /** The holder as of `asOf` (also after a gap, with `reset`). */
    readonly kind: 'current'
    /** The holder, if any. */
    readonly holder: Holder | undefined
    /** The settled id this is valid as of. */
    readonly asOf: EventId
    /** The sequence number of the last change it includes. */
    readonly seq: number
    /** Whether it replaces changes that could not be delivered one by one. */
    readonly reset: boolean
  }
  | {
    /** A peer was granted the name. */
    readonly kind: 'granted'
    /** The new holder. */
    readonly holder: Holder
    /** The granting event (the token). */
    readonly id: EventId
    /** Its sequence number. */
    readonly seq: number
  }
  | {
    /** The holder gave the name up or departed. */
    readonly kind: 'vacated'
    /** The holder that was. */
    readonly holder: Holder
    /** It resigned, or it left or was ejected. */
    readonly cause: 'resigned' | 'departed'
    /** The event. */
    readonly id: EventId
    /** Its sequence number. */
    readonly seq: number
  }

/** A checkpoint a holder wrote through the fold. */
export interface Checkpoint<C> {
  /** The data. */
  readonly data: C
  /** The token of the holder that wrote it. */
  readonly token: FencingToken
  /** The checkpoint event's id. */
  readonly at: EventId
}

/** What a holder's start function is given. */
export interface HolderContext<C> {
  /** The name held. */
  readonly name: string
  /** The grant's fencing token: pass it to resources so they can refuse a deposed holder. */
  readonly token: FencingToken
  /**
   * Fires when this peer must stop acting as the holder: it resigned or stops, it lost its
   * lease (it cannot confirm that a majority still hears it), or it learnt it was ejected.
   */
  readonly signal: AbortSignal
  /** The latest checkpoint (written by this holder or an earlier one) when it started. */
  readonly checkpoint: Checkpoint<C> | undefined
  /** Whether this peer still holds the name now (its grant settled and its lease valid). */
  holding(): boolean
  /**
   * Writes a checkpoint for whoever holds the name next; resolves once it folded.
   * @throws FencedError when this holder was deposed before it folded
   */
  saveCheckpoint(data: C, options?: WaitOptions): Promise<void>
}

/** Called when the candidate must stop acting; may be async. */
export type StopFunction = () => void | Promise<void>

/**
 * Runs the holder's work when this peer is granted a name. It may run until `ctx.signal`
 * fires, or set things up and return a {@link StopFunction}. It runs again if the grant comes
 * back (a lease regained before anyone else was elected, or a later grant).
 */
export type StartFunction<C> = (ctx: HolderContext<C>) => void | StopFunction | Promise<void | StopFunction>

/** Options of {@link Discovery.elect}. */
export interface ElectOptions {
  /**
   * What the candidates of the name run; candidates with another kind are refused
   * ({@link ElectionConflictError}).
   * @default a fingerprint of the start function's source text
   */
  readonly kind?: string
  /**
   * Nobody is granted the name while the cluster has fewer members.
   * @default 1
   */
  readonly minMembers?: number
}

/** Where a candidacy stands on this peer. */
export type CandidacyStatus =
  | {
    /** Queued, or granted but not running (no lease). */
    readonly kind: 'standing'
  }
  | {
    /** This peer runs the start function. */
    readonly kind: 'running'
    /** The grant's token. */
    readonly token: FencingToken
  }
  | {
    /** The start function is being stopped. */
    readonly kind: 'stopping'
    /** The grant's token. */
    readonly token: FencingToken
  }
  | {
    /** It runs nothing more. */
    readonly kind: 'closed'
    /** Why: resigned, the service stopped, refused (conflict) or the start function failed. */
    readonly reason: string
    /** The error that closed it, if one did. */
    readonly error?: Error
  }

/** A candidacy of this peer, from {@link Discovery.elect}. */
export interface Candidacy {
  /** The name. */
  readonly name: string
  /** Where it stands now. */
  status(): CandidacyStatus
  /** Resolves once the candidacy settled in the registry; rejects with `ElectionConflictError` if it was refused. */
  whenStanding(options?: WaitOptions): Promise<void>
  /** Resolves with the token once this peer runs the start function. */
  whenRunning(options?: WaitOptions): Promise<FencingToken>
  /**
   * Stops running (if it runs), then withdraws from the election, so the next candidate is
   * granted only after this one stopped; `requeue` stands again at the back of the queue.
   * Resolves once the withdrawal settled (or `timeoutMs` passed).
   */
  resign(options?: WaitOptions & { readonly requeue?: boolean }): Promise<void>
}

/** A registration of this peer, from {@link Discovery.register}. */
export interface Registration<M> {
  /** The name. */
  readonly name: string
  /** `<peer>/<local>`. */
  readonly key: string
  /** The metadata (`undefined` when registered without). */
  readonly meta: M | undefined
  /** `false` while drained. */
  readonly enabled: boolean
  /** Replaces the metadata. */
  update(meta: M | undefined): void
  /** Drains it: lookups leave it out unless asked (it stays registered). */
  drain(): void
  /** Undoes a drain. */
  enable(): void
  /** Removes it. */
  unregister(): void
  /** Resolves with the event id once this version of it is settled here. */
  settled(options?: WaitOptions): Promise<EventId>
}

/** Options of a call addressed to a name. */
export interface HolderCallOptions extends WaitOptions {
  /**
   * While nobody holds the name (or the holder does not answer), wait for one until the
   * timeout instead of failing with `NoHolderError` at once.
   * @default false
   */
  readonly waitForHolder?: boolean
}

/** What a holder's call handler is told besides the request. */
export interface HolderCallContext {
  /** The caller. */
  readonly from: Participant
  /** The name. */
  readonly name: string
  /** The token under which this peer holds it. */
  readonly token: FencingToken
}

/** Calls and casts addressed to whoever holds a name, from {@link Discovery.endpoint}. */
export interface HolderEndpoint<Req, Rep> {
  /** The name. */
  readonly name: string
  /**
   * Calls the holder and resolves with its reply.
   * @throws NoHolderError when nobody holds the name (or, with `waitForHolder`, none answered in time)
   */
  call(request: Req, options?: HolderCallOptions): Promise<Rep>
  /** Sends a message to the holder without waiting for an answer; `NoHolderError` when there is none. */
  cast(message: Req, options?: HolderCallOptions): Promise<void>
  /** Sets this peer's handler of calls while it runs as the holder; returns the remover. */
  handle(handler: (request: Req, context: HolderCallContext) => Rep | Promise<Rep>): () => void
  /** Sets this peer's handler of casts while it runs as the holder; returns the remover. */
  onCast(handler: (message: Req, context: HolderCallContext) => void): () => void
}

/** Discovery and election, as `peer.services.discovery`. */
export interface Discovery<M, C> {
  /**
   * Offers a service under `name` (many registrations per name, per peer too), with optional
   * metadata. A registration whose metadata another peer's codec cannot read is left out of
   * that peer's lookups (logged there).
   * @throws RegistryInputError for an empty or oversized name, or metadata the codec refuses or that is too large
   */
  register(name: string, meta?: M, options?: { readonly enabled?: boolean }): Registration<M>
  /** The registrations under `name`, from this peer's replica (no network round trip). */
  lookup(name: string, options?: LookupOptions): Lookup<M>
  /** Every registration change under `name`, in fold order; returns the function that stops it. */
  watch(name: string, listener: (event: RegistryWatchEvent<M>) => void): () => void
  /** Stands for `name`: `start` runs on this peer while it holds the name. */
  elect(name: string, start: StartFunction<C>, options?: ElectOptions): Candidacy
  /**
   * The holder of `name`, if any.
   * @param options.consistency - default `'settled'` (the grant holders act on)
   */
  whereis(name: string, options?: { readonly consistency?: LookupConsistency }): Holder | undefined
  /** Every change of `name`'s holder, in fold order; returns the function that stops it. */
  observe(name: string, listener: (event: HolderEvent) => void): () => void
  /** Whether this peer holds `name` now (granted, lease valid, running), optionally under `token`. */
  isHolder(name: string, token?: FencingToken): boolean
  /** Whether `token` is the current settled grant of `name`: a resource's fencing check. */
  isCurrent(name: string, token: FencingToken): boolean
  /** Calls and casts addressed to whoever holds `name`. */
  endpoint<Req, Rep>(name: string, codecs: { readonly request: Codec<Req>, readonly reply: Codec<Rep> }): HolderEndpoint<Req, Rep>
}
