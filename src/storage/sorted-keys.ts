/**
 * An ordered set of keys for the memory adapter, so that a scan can seek to any key and walk in
 * either direction without sorting or copying the whole set. Keys are "binary strings" (one
 * character per byte, 0..255), for which JavaScript's `<` is exactly bytewise order.
 *
 * Layout: sorted chunks of at most {@link MAX_CHUNK} keys plus each chunk's last key. Finding a
 * key is a binary search over chunks and one within a chunk; inserting moves at most one chunk's
 * worth of entries (splitting it in two when full), so a million random inserts cost about
 * what they cost in a balanced tree, with far less code. Pure data structure, no I/O.
 *
 * @module
 */

/** Chunks split in two above this many keys. */
const MAX_CHUNK = 1024

/** A position: chunk index and index within the chunk. */
interface Position { chunk: number, index: number }

/** A sorted set of binary-string keys. */
export class SortedKeys {
  readonly #chunks: string[][] = []
  /** The last (greatest) key of each chunk, for the binary search over chunks. */
  readonly #lasts: string[] = []
  #size = 0

  /** How many keys the set holds. */
  get size (): number {
    return this.#size
  }

  /** Adds `key`; returns false when it was already present. */
  add (key: string): boolean {
    if (this.#chunks.length === 0) {
      this.#chunks.push([key])
      this.#lasts.push(key)
      this.#size = 1
      return true
    }
    const chunkIndex = Math.min(this.#chunkFor(key), this.#chunks.length - 1)
    const chunk = this.#chunks[chunkIndex]!
    const index = lowerBound(chunk, key)
    if (chunk[index] === key) return false
    chunk.splice(index, 0, key)
    this.#size++
    if (chunk.length > MAX_CHUNK) {
      const upper = chunk.splice(chunk.length >>> 1)
      this.#chunks.splice(chunkIndex + 1, 0, upper)
      this.#lasts.splice(chunkIndex + 1, 0, upper[upper.length - 1]!)
    }
    this.#lasts[chunkIndex] = chunk[chunk.length - 1]!
    return true
  }

  /** Removes `key`; returns false when it was absent. */
  delete (key: string): boolean {
    const chunkIndex = this.#chunkFor(key)
    const chunk = this.#chunks[chunkIndex]
    if (chunk === undefined) return false
    const index = lowerBound(chunk, key)
    if (chunk[index] !== key) return false
    chunk.splice(index, 1)
    this.#size--
    if (chunk.length === 0) {
      this.#chunks.splice(chunkIndex, 1)
      this.#lasts.splice(chunkIndex, 1)
    } else {
      this.#lasts[chunkIndex] = chunk[chunk.length - 1]!
    }
    return true
  }

  /**
   * The keys in ascending order starting at `start` (included when `inclusive`), for as long as
   * the caller iterates. The set must not change while the iterator is in use.
   */
  * ascending (start: string, inclusive: boolean): Generator<string> {
    let position = this.#lowerBound(start)
    const first = this.#at(position)
    if (first !== undefined && !inclusive && first === start) position = this.#next(position)
    for (let key = this.#at(position); key !== undefined; key = this.#at(position)) {
      yield key
      position = this.#next(position)
    }
  }

  /**
   * The keys in descending order starting at `start` (included when `inclusive`), for as long
   * as the caller iterates. The set must not change while the iterator is in use.
   */
  * descending (start: string, inclusive: boolean): Generator<string> {
    let position = this.#lowerBound(start)
    if (!(inclusive && this.#at(position) === start)) position = this.#previous(position)
    for (let key = this.#at(position); key !== undefined; key = this.#at(position)) {
      yield key
      position = this.#previous(position)
    }
  }

  /** The index of the first chunk whose last key is >= `key` (the chunk count if none). */
  #chunkFor (key: string): number {
    return lowerBound(this.#lasts, key)
  }

  /** The position of the first key >= `key` (past the end if none). */
  #lowerBound (key: string): Position {
    const chunk = this.#chunkFor(key)
    if (chunk === this.#chunks.length) return { chunk, index: 0 }
    return { chunk, index: lowerBound(this.#chunks[chunk]!, key) }
  }

  #at (position: Position): string | undefined {
    return this.#chunks[position.chunk]?.[position.index]
  }

  #next ({ chunk, index }: Position): Position {
    return index + 1 < this.#chunks[chunk]!.length ? { chunk, index: index + 1 } : { chunk: chunk + 1, index: 0 }
  }

  /** The position before `position`; chunk -1 when there is none. */
  #previous ({ chunk, index }: Position): Position {
    if (index > 0) return { chunk, index: index - 1 }
    if (chunk === 0) return { chunk: -1, index: 0 }
    return { chunk: chunk - 1, index: this.#chunks[chunk - 1]!.length - 1 }
  }
}

/** The index of the first element of sorted `keys` that is >= `key` (`keys.length` if none). */
function lowerBound (keys: readonly string[], key: string): number {
  let low = 0
  let high = keys.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (keys[middle]! < key) low = middle + 1
    else high = middle
  }
  return low
}
