/**
 * What can be observed of a running supervision tree: each child's lifecycle as a tagged union
 * ({@link ChildStatus}), the introspection records built from it ({@link ChildInfo},
 * {@link SupervisorInfo}), and the {@link SupervisionEvent}s a tree reports as children start,
 * crash, stop and are restarted. Types only, plus the one function that tells whether a status
 * counts as alive; the worker and supervisor runners produce these values.
 *
 * @module
 */
import type { RestartType, Strategy } from './child-spec.js'
import type { ChildExit, RestartDecision } from './restart-policy.js'
import type { ExitReason } from './server.js'

/**
 * Where a child (worker or supervisor) is in its lifecycle. `incarnation` counts its starts (1
 * for the first); times are on the tree's clock.
 * - `starting`: `init` (or, for a supervisor, starting its children) is running;
 * - `running`: serving requests (a worker) or supervising (a supervisor);
 * - `stopping`: `terminate` (or stopping its children) is running, for `reason`;
 * - `down`: it exited for `reason` and its supervisor has not decided yet;
 * - `restarting`: its supervisor decided to restart it at `restartAt`, after `delayMs` of backoff
 *   (`attempt`: its backoff count used for that delay);
 * - `stopped`: not running and no restart planned; `reason` is `undefined` before the first start.
 */
export type ChildStatus =
  | {
    /** `init` (or starting the children) is running. */
    readonly kind: 'starting'
    /** Which start this is. */
    readonly incarnation: number
    /** When it began. */
    readonly since: number
  }
  | {
    /** Serving requests, or supervising. */
    readonly kind: 'running'
    /** Which start this is. */
    readonly incarnation: number
    /** When it finished starting. */
    readonly since: number
  }
  | {
    /** `terminate` (or stopping the children) is running. */
    readonly kind: 'stopping'
    /** The incarnation stopping. */
    readonly incarnation: number
    /** When it began. */
    readonly since: number
    /** Why it stops. */
    readonly reason: ExitReason
  }
  | {
    /** Exited; its supervisor has not decided yet. */
    readonly kind: 'down'
    /** The incarnation that exited. */
    readonly incarnation: number
    /** Why. */
    readonly reason: ExitReason
  }
  | {
    /** Waiting out its restart backoff. */
    readonly kind: 'restarting'
    /** The incarnation that exited last. */
    readonly incarnation: number
    /** The backoff count used for the delay. */
    readonly attempt: number
    /** The delay, in milliseconds. */
    readonly delayMs: number
    /** When the restart is due. */
    readonly restartAt: number
  }
  | {
    /** Not running, and no restart planned. */
    readonly kind: 'stopped'
    /** The incarnation that ran last (0 if none). */
    readonly incarnation: number
    /** Why it stopped; `undefined` before the first start. */
    readonly reason: ExitReason | undefined
  }

/** Whether a child in `status` is alive: starting, running or stopping. */
export function isAlive (status: ChildStatus): boolean {
  return status.kind === 'starting' || status.kind === 'running' || status.kind === 'stopping'
}

/** One child of a supervisor, as `whichChildren` reports it. */
export interface ChildInfo {
  /** The child's id (for a worker, the server's name). */
  readonly id: string
  /** Whether it is a server or a supervisor. */
  readonly kind: 'worker' | 'supervisor'
  /** Its restart type. */
  readonly restart: RestartType
  /** Whether it is significant. */
  readonly significant: boolean
  /** Where it is in its lifecycle. */
  readonly status: ChildStatus
  /** How many times its supervisor restarted it (since the supervisor itself last started). */
  readonly restarts: number
}

/** How many children a supervisor has, after OTP's `count_children`. */
export interface ChildCounts {
  /** All children. */
  readonly specs: number
  /** Children that are alive (starting, running or stopping). */
  readonly active: number
  /** Children that are supervisors. */
  readonly supervisors: number
  /** Children that are workers. */
  readonly workers: number
}

/** A supervisor and everything under it, as `inspect` reports it. */
export interface SupervisorInfo {
  /** The supervisor's id. */
  readonly id: string
  /** Its strategy. */
  readonly strategy: Strategy
  /** Its own lifecycle. */
  readonly status: ChildStatus
  /** Restarts it counted inside its intensity window. */
  readonly recentRestarts: number
  /** Its children, in declaration order; supervisors with their own subtrees. */
  readonly children: readonly SupervisedChildInfo[]
}

/** A child in {@link SupervisorInfo}: its {@link ChildInfo}, and for a supervisor its subtree. */
export interface SupervisedChildInfo extends ChildInfo {
  /** The child supervisor's own subtree (absent for workers). */
  readonly subtree?: SupervisorInfo
}

/** The fields of every event about one child. */
export interface ChildEventFields {
  /** When, on the tree's clock. */
  readonly at: number
  /** The id of the child's supervisor (`undefined` for the root). */
  readonly supervisor: string | undefined
  /** The child's id. */
  readonly child: string
  /** Which start of the child the event is about. */
  readonly incarnation: number
}

/** A child begins (`starting`) or finishes (`started`) starting. */
export interface ChildStartEvent extends ChildEventFields {
  /** Which of the two. */
  readonly type: 'starting' | 'started'
  /** Worker or supervisor. */
  readonly kind: 'worker' | 'supervisor'
}

/** A child is being stopped for `reason` (`terminating`; its `terminate` runs next), or is down (`exited`). */
export interface ChildStopEvent extends ChildEventFields {
  /** Which of the two. */
  readonly type: 'terminating' | 'exited'
  /** Worker or supervisor. */
  readonly kind: 'worker' | 'supervisor'
  /** Why it stops (for `exited`: the final reason, e.g. `killed` if `terminate` overran). */
  readonly reason: ExitReason
}

/** A worker's `step` or `init` threw. */
export interface ServerCrashEvent extends ChildEventFields {
  /** Always `'crashed'`. */
  readonly type: 'crashed'
  /** Which callback threw. */
  readonly phase: 'init' | 'step'
  /** What it threw. */
  readonly error: unknown
  /** The input that crashed the step (absent for `init`): the candidate for quarantine. */
  readonly input?: unknown
}

/** A supervisor's restart decision for one exit: the plain value a replicated layer could fold. */
export interface RestartDecidedEvent {
  /** Always `'decided'`. */
  readonly type: 'decided'
  /** When, on the tree's clock. */
  readonly at: number
  /** The supervisor that decided. */
  readonly supervisor: string
  /** The exit it decided on, with the time and jitter the decision used. */
  readonly exit: ChildExit
  /** What it decided. */
  readonly decision: RestartDecision
}

/** A worker's `terminate`, or the save of its state, failed; the exit goes on and nothing is saved. */
export interface CallbackFailedEvent {
  /** Always `'callback-failed'`. */
  readonly type: 'callback-failed'
  /** When, on the tree's clock. */
  readonly at: number
  /** The worker. */
  readonly child: string
  /** What failed. */
  readonly callback: 'terminate' | 'save'
  /** What it threw. */
  readonly error: unknown
}

/** What a tree reports, in the order it happens (through `SupervisionOptions.onEvent`). */
export type SupervisionEvent = ChildStartEvent | ChildStopEvent | ServerCrashEvent | RestartDecidedEvent | CallbackFailedEvent
