/**
 * Time and chance, injected. Every part of a peer that waits, times out, schedules work or
 * picks a random participant does it through a {@link Clock} and a {@link Random}, never
 * through `setTimeout`, `performance.now()` or `Math.random()` directly, so that the logic can
 * run under a test's manual clock with no sockets and no sleeps. {@link systemClock} and
 * {@link systemRandom} are what a real peer uses.
 *
 * @module
 */

/** A timer started by a {@link Clock}; pass it back to cancel it. */
export interface TimerHandle {
  /** Brand: a handle is opaque. */
  readonly __timer: unique symbol
}

/** The peer's view of time. */
export interface Clock {
  /**
   * Monotonic milliseconds, for every duration the peer measures (suspicion, stuck peers,
   * relay delays): a wall-clock jump must not make anyone suspect anyone.
   */
  now(): number
  /** Milliseconds since the Unix epoch, only for what is shown to people. */
  wallNow(): number
  /** Runs `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle
  /** Cancels a timer from {@link setTimeout} or {@link setInterval}; unknown handles are ignored. */
  clearTimer(handle: TimerHandle): void
  /** Runs `fn` every `ms` milliseconds until cleared. */
  setInterval(fn: () => void, ms: number): TimerHandle
  /**
   * Runs `fn` after the I/O callbacks already queued: the end of the current tick, so that
   * everything applied in one tick travels in one batch.
   */
  defer(fn: () => void): void
}

/** A source of uniform random numbers. */
export interface Random {
  /** A number in [0, 1). */
  next(): number
}

/** Picks one element of a non-empty array uniformly. */
export function pick<T> (random: Random, items: readonly T[]): T {
  return items[Math.min(items.length - 1, Math.floor(random.next() * items.length))]!
}

/** The clock of a real peer: `performance.now()`, `Date.now()`, Node's timers and `setImmediate`. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms) as unknown as TimerHandle,
  clearTimer: (handle: TimerHandle) => { clearTimeout(handle as unknown as ReturnType<typeof setTimeout>) },
  setInterval: (fn: () => void, ms: number) => setInterval(fn, ms) as unknown as TimerHandle,
  defer: (fn: () => void) => { setImmediate(fn) }
})

/** `Math.random()`. */
export const systemRandom: Random = Object.freeze({ next: () => Math.random() })
