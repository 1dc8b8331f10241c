/**
 * The public contract of supervision across the cluster: what `peer.services.supervision`
 * offers (children placed on peers and restarted elsewhere when their peer goes, replicated
 * servers, calls by name from any peer), its options and the values it reports. The
 * implementation is `service.ts`.
 *
 * @module
 */
import type { Participant, EventId } from '../eventfold/types.js'
import type { WaitOptions } from '../peer/options.js'
import type { BackoffOptions, Shutdown } from '../supervision/child-spec.js'
import type { ChildStatus, SupervisionEvent } from '../supervision/lifecycle.js'
import type { ServerSpec, ServerTypes } from '../supervision/server.js'
import type { QuarantineRecord } from './replicated-spec.js'

/**
 * The server definitions a cluster supervises, by name. Every peer's service must be given the
 * same names (a child names its server, and may run on any peer).
 */
export type ServerTable<Sv> = { readonly [K in keyof Sv]: Sv[K] extends ServerSpec<infer I, infer S, infer O> ? ServerSpec<I, S, O> : never }

/** The input type of a server definition. */
export type InputOf<T> = T extends ServerSpec<infer I, infer _S, infer _O> ? I : never
/** The output type of a server definition. */
export type OutputOf<T> = T extends ServerSpec<infer _I, infer _S, infer O> ? O : never

/**
 * Where a placed child runs:
 * - `spread`: on the member that holds the fewest children (ties broken per child by
 *   rendezvous hashing), and after a failover on the next peer of the child's rendezvous order;
 * - `any`: every member stands at once and the first candidacy to fold wins (quickest start,
 *   no balance);
 * - `peer`: on the named peer while it is a member; when it is not, on another (by rendezvous
 *   order) unless `fallback` is `false`, in which case the child waits for that peer.
 */
export type Placement =
  | {
    /** Balanced over the members. */
    readonly kind: 'spread'
  }
  | {
    /** Whichever member stands first. */
    readonly kind: 'any'
  }
  | {
    /** A named peer. */
    readonly kind: 'peer'
    /** The peer. */
    readonly peer: Participant
    /**
     * Run elsewhere while it is not a member.
     * @default true
     */
    readonly fallback?: boolean
  }

/** Options of {@link ClusterSupervision.startChild}. */
export interface PlacedChildOptions<K extends string> extends WaitOptions {
  /** The server definition it runs (a key of the service's `servers`). */
  readonly server: K
  /**
   * Where it runs.
   * @default { kind: 'spread' }
   */
  readonly placement?: Placement
  /**
   * `permanent`: restarted after any exit; `transient`: only after an abnormal one (a crash,
   * its host's departure). Temporary children exist only in single-peer trees.
   * @default 'permanent'
   */
  readonly restart?: 'permanent' | 'transient'
  /**
   * Restarts on its host within `periodMs` before the host's supervisor gives up and the child
   * is marked failed (not moved: a crash loop would follow it).
   * @default 1 (OTP's)
   */
  readonly intensity?: number
  /**
   * The window of `intensity`, in milliseconds.
   * @default 5000
   */
  readonly periodMs?: number
  /**
   * Restart backoff on its host.
   * @default undefined (restart at once)
   */
  readonly backoff?: BackoffOptions
  /**
   * How its host stops it (the grace time of `terminate`, in which a `persistence` server saves
   * its state for the next host).
   * @default 5000
   */
  readonly shutdown?: Shutdown
  /**
   * The longest its `init` may take, in milliseconds.
   * @default undefined (no limit)
   */
  readonly startTimeoutMs?: number
  /**
   * Requests admitted and not answered at once, on its host.
   * @default 1024
   */
  readonly queueCapacity?: number
}

/** Options of {@link ClusterSupervision.startReplicated}. */
export interface ReplicatedChildOptions<K extends string> extends WaitOptions {
  /** The server definition it runs (a key of the service's `servers`). */
  readonly server: K
  /**
   * How many peers hold its state (fewer while the cluster has fewer members).
   * @default 3
   */
  readonly replicas?: number
  /**
   * Settled replicas needed before a call is answered: an answered input is then held by at
   * least this many peers.
   * @default a majority of `replicas` (2 of 3)
   */
  readonly minReplicas?: number
}

/**
 * A typed address of a child: its name, plus its input and output types so that
 * `call(ref, input)` is checked. `startChild` and `startReplicated` return one.
 * @typeParam I - inputs
 * @typeParam O - outputs
 */
export interface ChildRef<I, O> {
  /** The child's name. */
  readonly name: string
  /** Present only in the type system. */
  readonly types?: ServerTypes<I, O>
}

/** Options of a call or cast to a child. */
export interface ClusterCallOptions {
  /**
   * Milliseconds to wait for the answer (for a cast: for its admission), a failover included.
   * @default the service's callTimeoutMs (5000)
   */
  readonly timeoutMs?: number
  /**
   * Withdraws the call when it fires (`CallAbortedError`).
   * @default undefined
   */
  readonly signal?: AbortSignal
}

/** Who runs a child: its election's settled holder and the grant's fencing token. */
export interface ChildHolder {
  /** The holder: a placed child's host, a replicated server's primary. */
  readonly peer: Participant
  /** The grant's token (see `FencingToken`). */
  readonly token: EventId
}

/** A placed child's server on the peer that runs it. */
export interface LocalServerInfo {
  /** Its lifecycle on that peer. */
  readonly status: ChildStatus
  /** Restarts by the supervisor on that peer since this run began. */
  readonly restarts: number
}

/** A child as this peer sees it (settled table and registry, plus what runs here). */
export interface ClusterChildInfo {
  /** The child's name. */
  readonly name: string
  /** Its server definition's name. */
  readonly server: string
  /** Placed or replicated. */
  readonly mode: 'placed' | 'replicated'
  /** Its restart type. */
  readonly restart: 'permanent' | 'transient'
  /** Whether it should run: `finished` (a transient server that stopped normally) and `failed` do not. */
  readonly status: 'active' | 'finished' | 'failed'
  /** Why it finished or failed. */
  readonly reason: string | undefined
  /** Its holder (the host of a placed child, the primary of a replicated one) and the grant's token. */
  readonly holder: ChildHolder | undefined
  /** Whether this peer runs it now. */
  readonly runningHere: boolean
  /** A placed child running here: its server's status on this peer (restarts included). */
  readonly local: LocalServerInfo | undefined
  /** A replicated child whose state this peer holds: the group's settled participants. */
  readonly replicas: readonly Participant[] | undefined
  /** A replicated child whose state this peer holds: inputs stepped and inputs quarantined. */
  readonly steps: number | undefined
  /** See `steps`. */
  readonly quarantinedTotal: number | undefined
}

/** A quarantined input of a replicated server, as {@link ClusterSupervision.quarantined} reports it. */
export type QuarantinedInput = QuarantineRecord

/** What happened on this peer, for `onEvent`. */
export type ClusterSupervisionEvent =
  | {
    /** This peer started running a child (a placed child's host, a replicated server's primary). */
    readonly type: 'run-started'
    /** The child. */
    readonly child: string
    /** Its mode. */
    readonly mode: 'placed' | 'replicated'
    /** The grant's token. */
    readonly token: EventId
  }
  | {
    /** This peer stopped running a child. */
    readonly type: 'run-stopped'
    /** The child. */
    readonly child: string
    /** The grant's token. */
    readonly token: EventId
  }
  | {
    /** A replica here settled a quarantine record (a tick or two after the caller got `PoisonInputError`). */
    readonly type: 'quarantined'
    /** The child. */
    readonly child: string
    /** The record. */
    readonly record: QuarantinedInput
  }
  | {
    /** An event of the local supervision of a placed child running here. */
    readonly type: 'local'
    /** The child. */
    readonly child: string
    /** The event. */
    readonly event: SupervisionEvent
  }

/** Counters of this peer's service since it started. */
export interface ClusterSupervisionStats {
  /** Children in the settled table. */
  readonly children: number
  /** Children this peer runs now. */
  readonly runningHere: number
  /** Runs this peer started. */
  readonly runsStarted: number
  /** Calls and casts this peer made. */
  readonly calls: number
  /** Calls and casts this peer answered as a holder. */
  readonly served: number
  /** Quarantine records the replicas here folded. */
  readonly quarantined: number
}

/** Options of {@link clusterSupervision}. Every peer of a cluster must pass the same. */
export interface ClusterSupervisionOptions<Sv> {
  /** The server definitions, by name (see {@link ServerTable}). */
  readonly servers: Sv
  /**
   * Peers that queue behind a placed child's holder, so that its departure grants the next at
   * once, in the same fold step as the holder's UnJoin.
   * @default 1
   */
  readonly standbys?: number
  /**
   * The timeout of calls and casts that do not give one, in milliseconds.
   * @default 5000
   */
  readonly callTimeoutMs?: number
  /**
   * Requests whose outputs a replicated server remembers, so that a call retried across a
   * failover is stepped once.
   * @default 256
   */
  readonly window?: number
  /**
   * Quarantine records a replicated server keeps (the total is always counted).
   * @default 64
   */
  readonly maxQuarantined?: number
  /**
   * Elections' lease windows and stop deadline (see `DiscoveryOptions`): the service runs its
   * own registry, one election per child.
   * @default the discovery defaults
   */
  readonly election?: {
    /** See `DiscoveryOptions.quorumWindowMs`. */
    readonly quorumWindowMs?: number
    /** See `DiscoveryOptions.linkWindowMs`. */
    readonly linkWindowMs?: number
    /** See `DiscoveryOptions.stopTimeoutMs`. */
    readonly stopTimeoutMs?: number
    /** See `DiscoveryOptions.maxCheckpointBytes`: the largest state a placed child hands over. */
    readonly maxCheckpointBytes?: number
  }
  /**
   * Receives every {@link ClusterSupervisionEvent} of this peer, synchronously. A listener that
   * throws is logged and otherwise ignored.
   * @default undefined
   */
  readonly onEvent?: (event: ClusterSupervisionEvent) => void
}

/** Supervision across the cluster, as `peer.services.supervision`. */
export interface ClusterSupervision<Sv> {
  /**
   * Adds a placed child (or finds it, declared with the same terms) and resolves once the table
   * says so everywhere it settled; the child starts on its host soon after.
   * @throws ChildConflictError when it exists with other terms
   * @throws TypeError for an unknown server or a bad option
   */
  startChild<K extends keyof Sv & string>(name: string, options: PlacedChildOptions<K>): Promise<ChildRef<InputOf<Sv[K]>, OutputOf<Sv[K]>>>
  /**
   * Adds a replicated server (or finds it): its state is a group among `replicas` peers, every
   * input an event of it. Resolves once the table settled it.
   * @throws ChildConflictError when it exists with other terms
   */
  startReplicated<K extends keyof Sv & string>(name: string, options: ReplicatedChildOptions<K>): Promise<ChildRef<InputOf<Sv[K]>, OutputOf<Sv[K]>>>
  /** Removes a child: its holder stops it (`terminate`), and nobody runs it again. */
  stopChild(name: string, options?: WaitOptions): Promise<void>
  /** Makes a finished or failed child active again. */
  restartChild(name: string, options?: WaitOptions): Promise<void>
  /**
   * Steps `input` on the child wherever it runs and resolves with its output; waits through a
   * failover within the timeout. Rejects with the single-peer call errors (`UnknownServerError`,
   * `CallTimeoutError`, `CallAbortedError`, `QueueFullError`, `ServerCrashedError`,
   * `ServerExitedError`, `ServerStoppedError`, `BadInputError`...) and, for replicated servers,
   * `PoisonInputError` and `ReplicasUnavailableError`.
   */
  call: (<I, O>(child: ChildRef<I, O>, input: I, options?: ClusterCallOptions) => Promise<O>) &
  ((child: string, input: unknown, options?: ClusterCallOptions) => Promise<unknown>)
  /** Delivers `input` to the child wherever it runs, resolving once its holder admitted it. */
  cast: (<I, O>(child: ChildRef<I, O>, input: I, options?: ClusterCallOptions) => Promise<void>) &
  ((child: string, input: unknown, options?: ClusterCallOptions) => Promise<void>)
  /** The child's holder and token, settled, if any. */
  whereis(name: string): ChildHolder | undefined
  /** Every child in the settled table, sorted by name. */
  whichChildren(): ClusterChildInfo[]
  /** A replicated server's quarantined inputs: from this peer's replica, else from its primary. */
  quarantined(name: string, options?: ClusterCallOptions): Promise<QuarantinedInput[]>
  /** Counters. */
  stats(): ClusterSupervisionStats
}
