/**
 * Time, injected. Everything in Legion that waits (call and `applyConsistent` timeouts,
 * suspicion, restart backoff, shutdown deadlines, restart-intensity windows) reads time and
 * sets timers through a {@link Clock}, never through `Date.now()` or `setTimeout` directly, so
 * the same code runs on real time ({@link systemClock}) and on a {@link ManualClock} that a test
 * advances by hand: a restart storm, a five-second shutdown deadline or a backoff of minutes
 * takes no wall time and happens in the same order on every run. The peer needs a little more
 * (`src/peer/clock.ts`: wall time for display, periodic timers, the end of the tick).
 *
 * @module
 */

/** A timer set through a {@link Clock}; cancelling twice, or after it fired, does nothing. */
export interface Timer {
  /** Stops the timer from firing. */
  cancel: () => void
}

/**
 * A monotonic source of milliseconds and one-shot timers. Implementations must fire timers in
 * order of their due time (and, for equal due times, in the order they were set).
 */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences mean anything. */
  now: () => number
  /** Calls `callback` once, `ms` milliseconds from now (at once for `ms <= 0`, but never synchronously). */
  setTimer: (ms: number, callback: () => void) => Timer
}

/** Real time: `performance.now()` and `setTimeout`. */
export const systemClock: Clock = Object.freeze({
  now: (): number => performance.now(),
  setTimer (ms: number, callback: () => void): Timer {
    const handle = setTimeout(callback, Math.max(0, ms))
    return { cancel: () => clearTimeout(handle) }
  }
})

interface ManualTimer {
  readonly at: number
  readonly seq: number
  readonly callback: () => void
  live: boolean
}

/** Lets every promise chain that is ready to run settle: one macrotask turn. */
function settle (): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/**
 * A clock that moves only when told to. Timers fire inside {@link ManualClock.advance}, in due
 * order, each with `now()` set to its due time, and after each one every promise chain that is
 * ready runs (one macrotask turn), so code that reacts to a timer by awaiting other promises
 * has settled before the next timer fires. Deterministic as long as what the timers trigger
 * does no real I/O.
 */
export class ManualClock implements Clock {
  #now: number
  #seq = 0
  readonly #timers: ManualTimer[] = []

  /** @param start - the time `now()` returns before any advance */
  constructor (start = 0) {
    this.#now = start
  }

  /** The current manual time. */
  now (): number {
    return this.#now
  }

  /** Schedules `callback` at `now() + max(0, ms)`. */
  setTimer (ms: number, callback: () => void): Timer {
    const timer: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, callback, live: true }
    // Kept sorted by (at, seq): insertion is linear, fine for the few timers a test holds.
    let i = this.#timers.length
    while (i > 0 && this.#timers[i - 1]!.at > timer.at) i--
    this.#timers.splice(i, 0, timer)
    return { cancel: () => { timer.live = false } }
  }

  /** How many timers are set and not yet fired or cancelled. */
  pendingTimers (): number {
    return this.#timers.filter((t) => t.live).length
  }

  /** Due time of the next live timer, if any. */
  nextTimerAt (): number | undefined {
    return this.#timers.find((t) => t.live)?.at
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way (including timers
   * those timers set), then lets pending promise chains settle. `advance(0)` only fires what is
   * already due and settles. A callback that throws is ignored, as a timer callback's error
   * would be lost on real time too. At most `maxTimers` fire, a bound against a timer that keeps
   * re-arming itself at zero delay.
   */
  async advance (ms: number, maxTimers = 100_000): Promise<void> {
    if (!(ms >= 0)) throw new TypeError('advance: ms must be a number >= 0')
    const target = this.#now + ms
    await settle()
    for (let fired = 0; fired < maxTimers; fired++) {
      const next = this.#timers[0]
      if (next === undefined || next.at > target) break
      this.#timers.shift()
      if (!next.live) continue
      next.live = false
      this.#now = Math.max(this.#now, next.at)
      try { next.callback() } catch { /* see the method comment */ }
      await settle()
    }
    this.#now = Math.max(this.#now, target)
    await settle()
  }
}
