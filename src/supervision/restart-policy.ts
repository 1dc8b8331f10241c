/**
 * The restart policy of a supervisor as a pure function: given its flags, its restart history,
 * its children and one child's exit, {@link decideRestart} returns the new history and a
 * {@link RestartDecision}, a plain value saying which children to stop, which to start (in
 * which order, after what delay), which to remove, or that the supervisor must shut itself
 * down. No clock, no randomness, no I/O: the time of the exit and the jitter draw are part of
 * the {@link ChildExit} it is given.
 *
 * That is the seam for the cluster-wide layer: replicas that fold the same exits (with their
 * times and jitter) in the same order reach the same decisions, so a restart decided once in a
 * replicated fold is carried out once. `supervisor.ts` is the imperative shell that feeds this
 * function and carries its decisions out on one peer.
 *
 * Rules, after OTP's `supervisor` (and Akka's backoff):
 * 1. A child is restarted when it is `permanent`, or `transient` and its exit is abnormal.
 *    Otherwise it stays stopped (a `temporary` child is removed), and if it is significant the
 *    supervisor may shut down (`any_significant`, or `all_significant` once no other significant
 *    child is left).
 * 2. Every restart (of one child or of a group) is counted at its exit time; restarts older than
 *    `periodMs` are forgotten (a restart exactly `periodMs` old still counts). More than
 *    `intensity` restarts in the window: the supervisor gives up (reason `gave-up`).
 * 3. The group restarted is the child (`one_for_one`, `simple_one_for_one`), every child
 *    (`one_for_all`) or the child and those declared after it (`rest_for_one`). The group's
 *    other running children are stopped first, in reverse declaration order; then the group is
 *    started in declaration order, except its temporary children, which are removed.
 * 4. With backoff, the delay grows per restart of the exited child and starts over once that
 *    child had run `resetAfterMs` before exiting.
 *
 * @module
 */
import type { RestartType, SupervisorFlags, ResolvedBackoff } from './child-spec.js'
import { isAbnormalExit, type ExitReason } from './server.js'

/** One child as the policy sees it, in declaration order. */
export interface PolicyChild {
  /** The child's id. */
  readonly id: string
  /** Its restart type. */
  readonly restart: RestartType
  /** Whether it is significant. */
  readonly significant: boolean
  /**
   * `alive`: starting, running or stopping (must be stopped before a group restart);
   * `pending`: down and about to be restarted, or waiting out a backoff;
   * `stopped`: down with no restart planned.
   */
  readonly status: 'alive' | 'pending' | 'stopped'
  /** When it last finished starting, or `undefined` if it never did. */
  readonly startedAt: number | undefined
}

/** What a supervisor remembers between decisions. Plain data: it can be encoded and folded. */
export interface RestartHistory {
  /** Times of the restarts still inside the intensity window, oldest first. */
  readonly restarts: readonly number[]
  /** The backoff restart count of each child that has one. */
  readonly attempts: Readonly<Record<string, number>>
}

/** The history of a supervisor that never restarted anything. */
export const EMPTY_HISTORY: RestartHistory = Object.freeze({ restarts: Object.freeze([]), attempts: Object.freeze({}) })

/** One child's exit, with everything the decision depends on. */
export interface ChildExit {
  /** The child that exited. */
  readonly child: string
  /** Why. */
  readonly reason: ExitReason
  /** When, on the supervisor's clock. */
  readonly at: number
  /** A number in [0, 1) drawn for the backoff jitter. */
  readonly jitter: number
}

/**
 * What the supervisor does about one exit.
 * - `keep-stopped`: leave the child stopped; `remove` it from the supervisor if temporary.
 * - `restart`: stop `stop` (in that order), remove `remove`, wait `delayMs`, then start `start`
 *   (in that order). `attempt` is the exited child's backoff count used for the delay.
 * - `shut-down`: stop every child (reverse order) and exit with `reason`: `gave-up` when the
 *   intensity was exceeded, `shutdown` for an auto_shutdown.
 */
export type RestartDecision =
  | {
    /** Leave the child stopped. */
    readonly kind: 'keep-stopped'
    /** The child that exited. */
    readonly child: string
    /** Whether to remove it (a temporary child). */
    readonly remove: boolean
  }
  | {
    /** Restart a group of children. */
    readonly kind: 'restart'
    /** The child that exited. */
    readonly child: string
    /** Children to stop first, in this order. */
    readonly stop: readonly string[]
    /** Temporary children of the group, to remove. */
    readonly remove: readonly string[]
    /** Children to start, in this order, after `delayMs`. */
    readonly start: readonly string[]
    /** The backoff delay, in milliseconds (0 without backoff). */
    readonly delayMs: number
    /** The exited child's backoff count used for the delay. */
    readonly attempt: number
  }
  | {
    /** Stop every child and exit. */
    readonly kind: 'shut-down'
    /** The supervisor's exit reason: `gave-up` or `shutdown`. */
    readonly reason: ExitReason
  }

/** The outcome of {@link decideRestart}. */
export interface PolicyOutcome {
  /** The history to keep for the next decision. */
  readonly history: RestartHistory
  /** What to do. */
  readonly decision: RestartDecision
}

/**
 * Decides what a supervisor with `flags` and `history` does when `exit.child`, one of
 * `children` (declaration order), exits. Pure; see the module comment for the rules.
 * @throws RangeError if `exit.child` is not among `children`
 */
export function decideRestart (flags: SupervisorFlags, history: RestartHistory, children: readonly PolicyChild[], exit: ChildExit): PolicyOutcome {
  const index = children.findIndex((c) => c.id === exit.child)
  const child = children[index]
  if (child === undefined) throw new RangeError(`decideRestart: ${JSON.stringify(exit.child)} is not a child`)

  const restartIt = child.restart === 'permanent' || (child.restart === 'transient' && isAbnormalExit(exit.reason))
  if (!restartIt) {
    const remove = child.restart === 'temporary'
    if (child.significant && autoShutdownNow(flags, children, child.id)) {
      return { history, decision: { kind: 'shut-down', reason: { kind: 'shutdown' } } }
    }
    return { history, decision: { kind: 'keep-stopped', child: child.id, remove } }
  }

  const threshold = exit.at - flags.periodMs
  const restarts = [...history.restarts.filter((t) => t >= threshold), exit.at]
  if (restarts.length > flags.intensity) {
    return {
      history: { restarts, attempts: history.attempts },
      decision: { kind: 'shut-down', reason: { kind: 'gave-up', restarts: restarts.length, periodMs: flags.periodMs } }
    }
  }

  const group = flags.strategy === 'one_for_all'
    ? children
    : flags.strategy === 'rest_for_one' ? children.slice(index) : [child]
  const others = group.filter((c) => c.id !== child.id)
  const stop = others.filter((c) => c.status === 'alive').map((c) => c.id).reverse()
  const remove = others.filter((c) => c.restart === 'temporary').map((c) => c.id)
  const start = group.filter((c) => c.id === child.id || c.restart !== 'temporary').map((c) => c.id)

  let attempt = history.attempts[child.id] ?? 0
  const backoff = flags.backoff
  if (backoff !== undefined && child.startedAt !== undefined && exit.at - child.startedAt >= backoff.resetAfterMs) attempt = 0
  const delayMs = backoff === undefined ? 0 : backoffDelay(backoff, attempt, exit.jitter)
  const attempts = backoff === undefined ? history.attempts : { ...history.attempts, [child.id]: attempt + 1 }
  return {
    history: { restarts, attempts },
    decision: { kind: 'restart', child: child.id, stop, remove, start, delayMs, attempt }
  }
}

/**
 * The delay before restart number `attempt` (from 0) under `backoff`, with `jitter` in [0, 1):
 * `min(maxMs, minMs * factor^attempt) * (1 + randomFactor * jitter)`, rounded to a millisecond.
 */
export function backoffDelay (backoff: ResolvedBackoff, attempt: number, jitter: number): number {
  const base = Math.min(backoff.maxMs, backoff.minMs * Math.pow(backoff.factor, attempt))
  const clampedJitter = Math.min(Math.max(jitter, 0), 1)
  return Math.round(base * (1 + backoff.randomFactor * clampedJitter))
}

/** Forgets the backoff count of a child that left the supervisor. */
export function forgetChild (history: RestartHistory, id: string): RestartHistory {
  if (!(id in history.attempts)) return history
  const attempts = { ...history.attempts }
  delete attempts[id]
  return { restarts: history.restarts, attempts }
}

function autoShutdownNow (flags: SupervisorFlags, children: readonly PolicyChild[], ended: string): boolean {
  switch (flags.autoShutdown) {
    case 'never': return false
    case 'any_significant': return true
    case 'all_significant':
      return !children.some((c) => c.id !== ended && c.significant && c.status !== 'stopped')
  }
}
