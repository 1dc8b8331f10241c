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
  | { readonly kind: 'starting', readonly incarnation: number, readonly since: number }
  | { readonly kind: 'running', readonly incarnation: number, readonly since: number }
  | { readonly kind: 'stopping', readonly incarnation: number, readonly since: number, readonly reason: ExitReason }
  | { readonly kind: 'down', readonly incarnation: number, readonly reason: ExitReason }
  | { readonly kind: 'restarting', readonly incarnation: number, readonly attempt: number, readonly delayMs: number, readonly restartAt: number }
  | { readonly kind: 'stopped', readonly incarnation: number, readonly reason: ExitReason | undefined }

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
  readonly children: ReadonlyArray<ChildInfo & { readonly subtree?: SupervisorInfo }>
}

/**
 * What a tree reports, in the order it happens. `supervisor` is the id of the child's supervisor
 * (`undefined` for the root); `at` is the tree's clock.
 * - `starting` / `started`: a child begins and finishes starting;
 * - `crashed`: a worker's `step` or `init` threw (`input`: the input, for a step);
 * - `terminating`: a child is being stopped for `reason` (its `terminate` runs next);
 * - `exited`: a child is down, for `reason`;
 * - `decided`: a supervisor's restart decision for an exit (the plain value a replicated layer
 *   could fold);
 * - `callback-failed`: a worker's `terminate` or the save of its state failed (`error`); the
 *   exit goes on, and nothing is saved.
 */
export type SupervisionEvent =
  | { readonly type: 'starting', readonly at: number, readonly supervisor: string | undefined, readonly child: string, readonly kind: 'worker' | 'supervisor', readonly incarnation: number }
  | { readonly type: 'started', readonly at: number, readonly supervisor: string | undefined, readonly child: string, readonly kind: 'worker' | 'supervisor', readonly incarnation: number }
  | { readonly type: 'crashed', readonly at: number, readonly supervisor: string | undefined, readonly child: string, readonly incarnation: number, readonly phase: 'init' | 'step', readonly error: unknown, readonly input?: unknown }
  | { readonly type: 'terminating', readonly at: number, readonly supervisor: string | undefined, readonly child: string, readonly kind: 'worker' | 'supervisor', readonly incarnation: number, readonly reason: ExitReason }
  | { readonly type: 'exited', readonly at: number, readonly supervisor: string | undefined, readonly child: string, readonly kind: 'worker' | 'supervisor', readonly incarnation: number, readonly reason: ExitReason }
  | { readonly type: 'decided', readonly at: number, readonly supervisor: string, readonly exit: ChildExit, readonly decision: RestartDecision }
  | { readonly type: 'callback-failed', readonly at: number, readonly child: string | undefined, readonly callback: 'terminate' | 'save', readonly error: unknown }
