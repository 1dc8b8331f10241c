/**
 * The contract between a supervisor and its children, whatever they are: a {@link ChildRunner}
 * starts, stops within a deadline, and is told what its supervisor decided after it went down.
 * Workers (`worker.ts`) and supervisors (`supervisor.ts`) both implement it, which is what lets
 * trees nest. A later, cluster-wide layer can implement it for a child placed on another peer
 * (start and stop become requests to that peer; its exits arrive as folded events).
 *
 * Also the {@link RunnerContext} every runner shares within one tree, and the deadline and
 * callback-isolation helpers they use.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import type { Shutdown } from './child-spec.js'
import type { Clock } from '../time/clock.js'
import type { EventLoop } from './event-loop.js'
import type { ChildStatus, SupervisionEvent } from './lifecycle.js'
import type { ExitReason } from './server.js'
import type { StateStore } from './state-store.js'

const log = logger('legion:supervision')

/** What every runner of one tree shares. */
export interface RunnerContext {
  /** The tree's clock. */
  readonly clock: Clock
  /** The tree's random source, in [0, 1). */
  readonly random: () => number
  /** The tree's event loop. */
  readonly loop: EventLoop
  /** Where servers' states are saved. */
  readonly store: StateStore
  /** Every id in use in the tree: the static tree's, plus those of children added at run time. */
  readonly ids: Set<string>
  /** Reports an event (never throws). */
  readonly emit: (event: SupervisionEvent) => void
}

/** Called when a child goes down on its own (not when its supervisor stopped it). */
export type ExitListener = (child: ChildRunner, incarnation: number, reason: ExitReason) => void

/** A child as its supervisor drives it. */
export interface ChildRunner {
  /** Its id. */
  readonly id: string
  /** Worker or supervisor. */
  readonly kind: 'worker' | 'supervisor'
  /** Its current (or last) incarnation; 0 before the first start. */
  readonly incarnation: number
  /** Its lifecycle now. */
  status: () => ChildStatus
  /**
   * Starts a new incarnation. Resolves once it runs (or once a stop took over); rejects with a
   * `ChildStartError` if it could not start, leaving the child `down`.
   */
  start: () => Promise<void>
  /**
   * Stops the current incarnation by its supervisor's will, abandoning whatever is still running
   * at `deadline` (a time on the tree's clock; `Infinity` waits forever). Resolves with the exit
   * reason once the child is `down` (or at once if it was not alive).
   */
  stop: (deadline: number) => Promise<ExitReason>
  /** The supervisor decided to restart it (from `down`). */
  markRestarting: (attempt: number, delayMs: number, restartAt: number) => void
  /** The supervisor decided to leave it stopped (from `down` or `restarting`). */
  markStopped: () => void
  /** The child joins its supervisor's children: a worker becomes addressable by name. */
  attach: () => void
  /** The child leaves its supervisor's children: unregister whatever it registered. */
  detach: () => void
}

/** The absolute deadline for stopping a child with `shutdown`, within `outer`. */
export function shutdownDeadline (clock: Clock, shutdown: Shutdown, outer: number): number {
  const own = shutdown === 'infinity' ? Infinity : shutdown === 'brutal' ? clock.now() : clock.now() + shutdown
  return Math.min(own, outer)
}

/** The outcome of {@link raceDeadline}. */
export type RaceOutcome<T> = { readonly kind: 'done', readonly value: T } | { readonly kind: 'failed', readonly error: unknown } | { readonly kind: 'overran' }

/**
 * Waits for `work` until `deadline` on `clock`. Never rejects: an error of `work` is returned, and
 * a `work` that overruns is abandoned (its later outcome is ignored and any error swallowed).
 */
export async function raceDeadline<T> (clock: Clock, work: Promise<T>, deadline: number): Promise<RaceOutcome<T>> {
  const guarded: Promise<RaceOutcome<T>> = work.then(
    (value) => ({ kind: 'done', value }),
    (error: unknown) => ({ kind: 'failed', error })
  )
  if (deadline === Infinity) return await guarded
  let timer: { cancel: () => void } | undefined
  const overran = new Promise<RaceOutcome<T>>((resolve) => {
    timer = clock.setTimer(deadline - clock.now(), () => resolve({ kind: 'overran' }))
  })
  const outcome = await Promise.race([guarded, overran])
  timer?.cancel()
  return outcome
}

/** Calls a user's event listener; a listener that throws is logged, never propagated. */
export function safeEmitter (listener: ((event: SupervisionEvent) => void) | undefined): (event: SupervisionEvent) => void {
  if (listener === undefined) return () => {}
  return (event) => {
    try {
      listener(event)
    } catch (err) {
      log.error('onEvent listener threw on %s: %e', event.type, err)
    }
  }
}
