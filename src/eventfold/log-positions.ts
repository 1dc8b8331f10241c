/**
 * One log's outstanding entries by position (`LogState.outstanding` in core.ts).
 *
 * @module
 */

/**
 * One log's outstanding entries by position. They come at the end (a log grows at its head)
 * and leave from the front (folding pops in id order, which is each log's order), so this is
 * an array with a moving start, not a map: a map made a 10,000-event merge take 1.7 times as
 * long. Positions put back before the first (renegades returned) or past a hole
 * are still right, only slower.
 */
export class LogPositions<T> {
  /** The position of `items[0]`. */
  #base = 0
  /** Entries live in `items[start..end)`; the array itself is kept when it empties. */
  #start = 0
  #end = 0
  #count = 0
  readonly #items: Array<T | undefined> = []

  /** How many entries it holds. */
  get size (): number { return this.#count }
  /** The smallest position it may hold an entry at. */
  get first (): number { return this.#base + this.#start }
  /** The largest position it may hold an entry at. */
  get last (): number { return this.#base + this.#end - 1 }

  get (position: number): T | undefined {
    const i = position - this.#base
    return i >= this.#start && i < this.#end ? this.#items[i] : undefined
  }

  set (position: number, item: T): void {
    const items = this.#items
    if (this.#count === 0) {
      this.#start = this.#end = 0
      this.#base = position
    } else if (position < this.#base + this.#start) {
      const live = items.slice(this.#start, this.#end)
      const gap = this.#base + this.#start - position
      items.length = 0
      for (let k = 0; k < gap; k++) items.push(undefined)
      for (const x of live) items.push(x)
      this.#start = 0
      this.#end = items.length
      this.#base = position
    }
    const i = position - this.#base
    for (let k = this.#end; k < i; k++) items[k] = undefined
    if (i < this.#end && items[i] !== undefined) this.#count--
    items[i] = item
    if (i >= this.#end) this.#end = i + 1
    this.#count++
  }

  /** Removes `item` from `position` (nothing if it is not there). */
  delete (position: number, item: T): void {
    const items = this.#items
    const i = position - this.#base
    if (i < this.#start || i >= this.#end || items[i] !== item) return
    items[i] = undefined
    this.#count--
    if (this.#count === 0) {
      this.#start = this.#end = 0
      if (items.length > 1024) items.length = 0 // a burst's storage is not kept for ever
      return
    }
    while (items[this.#start] === undefined) this.#start++
    if (this.#start > 1024 && this.#start * 2 > this.#end) {
      items.copyWithin(0, this.#start, this.#end)
      items.fill(undefined, this.#end - this.#start, this.#end)
      this.#end -= this.#start
      this.#base += this.#start
      this.#start = 0
    }
  }
}
