/**
 * Time and chance for a peer, injected (see `src/time/clock.ts` for why). A peer needs a
 * little more than the shared {@link Clock}: periodic timers (anti-entropy, heartbeats), the
 * end of the current tick (the flush, so everything applied in one tick travels in one batch),
 * and wall time for what is shown to people. {@link systemPeerClock} and {@link systemRandom}
 * are what a real peer uses.
 *
 * @module
 */
import { systemClock, type Clock, type Timer } from '../time/clock.js'

export type { Clock, Timer }

/** The peer's view of time: the shared {@link Clock}, plus what a peer needs besides. */
export interface PeerClock extends Clock {
  /** Milliseconds since the Unix epoch, only for what is shown to people. */
  wallNow(): number
  /** Calls `callback` every `ms` milliseconds until the timer is cancelled. */
  every(ms: number, callback: () => void): Timer
  /**
   * Runs `callback` after the I/O callbacks already queued: the end of the current tick, so
   * that everything applied in one tick travels in one batch.
   */
  defer(callback: () => void): void
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
export const systemPeerClock: PeerClock = Object.freeze({
  now: systemClock.now,
  setTimer: systemClock.setTimer,
  wallNow: () => Date.now(),
  every (ms: number, callback: () => void): Timer {
    const handle = setInterval(callback, ms)
    return { cancel: () => { clearInterval(handle) } }
  },
  defer: (callback: () => void) => { setImmediate(callback) }
})

/** `Math.random()`. */
export const systemRandom: Random = Object.freeze({ next: () => Math.random() })
