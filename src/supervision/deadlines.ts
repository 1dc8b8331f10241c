/**
 * Call deadlines without one timer per call. Setting and clearing a timer for every call cost
 * more than the rest of a call through the event loop together, so deadlines wait in one FIFO
 * per distinct timeout (within a FIFO they fall due in order, since the clock is monotonic), and
 * a single clock timer is armed at the earliest deadline still waiting. An item that settled
 * before its deadline is not removed at once: it is skipped when it reaches the head of its FIFO,
 * {@link Deadlines.trim} drops such heads as items settle, and a FIFO that grew past twice the
 * most items that can be live at once (plus a margin) is filtered, so one call stuck at the head
 * cannot make a FIFO hold every call made during its timeout.
 *
 * @module
 */
import type { Clock, Timer } from '../time/clock.js'

/** One FIFO: items and their due times in two parallel arrays (no object per deadline). */
interface Lane<T> {
  items: T[]
  ats: number[]
  head: number
}

/** Deadlines of items; `onExpire` is called once for each item still live at its deadline. */
export class Deadlines<T> {
  readonly #clock: Clock
  readonly #isLive: (item: T) => boolean
  readonly #onExpire: (item: T) => void
  readonly #lanes = new Map<number, Lane<T>>()
  #timer: Timer | undefined
  #armedAt = Infinity

  readonly #filterAbove: number

  /** @param maxLive - the most items that can be live at once (the queue's capacity) */
  constructor (clock: Clock, maxLive: number, isLive: (item: T) => boolean, onExpire: (item: T) => void) {
    this.#clock = clock
    this.#isLive = isLive
    this.#onExpire = onExpire
    this.#filterAbove = 2 * maxLive + 1024
  }

  /** Expires `item` `timeoutMs` from now unless it is no longer live by then. */
  add (item: T, timeoutMs: number): void {
    const at = this.#clock.now() + timeoutMs
    let lane = this.#lanes.get(timeoutMs)
    if (lane === undefined) {
      lane = { items: [], ats: [], head: 0 }
      this.#lanes.set(timeoutMs, lane)
    }
    lane.items.push(item)
    lane.ats.push(at)
    if (lane.items.length > this.#filterAbove) this.#filter(lane)
    if (at < this.#armedAt) this.#arm(at)
  }

  /** Drops the settled items at the head of the FIFO of `timeoutMs` (call after one settles). */
  trim (timeoutMs: number): void {
    const lane = this.#lanes.get(timeoutMs)
    if (lane === undefined) return
    while (lane.head < lane.items.length && !this.#isLive(lane.items[lane.head]!)) lane.head++
    this.#compact(lane)
  }

  /** Entries held across lanes, settled ones not yet dropped included (for tests). */
  size (): number {
    let n = 0
    for (const lane of this.#lanes.values()) n += lane.items.length
    return n
  }

  /** Forgets every deadline and cancels the timer. */
  clear (): void {
    this.#timer?.cancel()
    this.#timer = undefined
    this.#armedAt = Infinity
    this.#lanes.clear()
  }

  #arm (at: number): void {
    this.#timer?.cancel()
    this.#armedAt = at
    this.#timer = this.#clock.setTimer(at - this.#clock.now(), () => this.#fire())
  }

  #fire (): void {
    this.#timer = undefined
    this.#armedAt = Infinity
    const now = this.#clock.now()
    let next = Infinity
    for (const [timeoutMs, lane] of [...this.#lanes]) {
      while (lane.head < lane.items.length) {
        const item = lane.items[lane.head]!
        const at = lane.ats[lane.head]!
        if (!this.#isLive(item)) {
          lane.head++
        } else if (at <= now) {
          lane.head++
          this.#onExpire(item)
        } else {
          next = Math.min(next, at)
          break
        }
      }
      this.#compact(lane)
      // Empty lanes are kept between calls (one per distinct timeout), and dropped here.
      if (lane.items.length === 0) this.#lanes.delete(timeoutMs)
    }
    if (next < this.#armedAt) this.#arm(next)
  }

  /** Keeps only the live items of a lane (at most `maxLive`: linear, and rare). */
  #filter (lane: Lane<T>): void {
    const items: T[] = []
    const ats: number[] = []
    for (let i = lane.head; i < lane.items.length; i++) {
      if (this.#isLive(lane.items[i]!)) {
        items.push(lane.items[i]!)
        ats.push(lane.ats[i]!)
      }
    }
    lane.items = items
    lane.ats = ats
    lane.head = 0
  }

  /** Empties a drained lane in place, or drops its dead head once it is most of the lane. */
  #compact (lane: Lane<T>): void {
    if (lane.head === lane.items.length) {
      lane.items.length = 0
      lane.ats.length = 0
      lane.head = 0
    } else if (lane.head > 1024 && lane.head * 2 > lane.items.length) {
      lane.items = lane.items.slice(lane.head)
      lane.ats = lane.ats.slice(lane.head)
      lane.head = 0
    }
  }
}
