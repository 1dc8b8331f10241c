/**
 * The participant table of one replica: every participant it has seen (creators,
 * acknowledgers, joined and departed members) interned to an index, a single-bit `bigint`
 * mask and a cached 32-bit hash. Acknowledgement sets, the infimum participants and the
 * pending UnJoins are masks over this table, so "has everyone acknowledged?" is one AND and
 * one comparison. The table only grows: an index is never reused.
 *
 * @module
 */
import { participantHash } from './digest.js'
import type { Participant } from './types.js'

/** Sorted lists kept by {@link ParticipantTable.list} at most; past this it starts over. */
const MAX_LISTED_MASKS = 64

/** Interned participants; see the module comment. */
export class ParticipantTable {
  /** Index to participant, in the order first seen. Shared with callers: never modified in place. */
  readonly names: Participant[] = []
  private readonly index = new Map<Participant, number>()
  private readonly bits: bigint[] = []
  private readonly hashes: number[] = []
  /** Masks of participant lists already converted (see `mask`). */
  private readonly masks = new WeakMap<readonly Participant[], bigint>()
  /**
   * Sorted lists of masks already listed (see `list`). An index's bit never changes, so an entry
   * never goes stale; the few masks a replica lists (its infimum and projected participants)
   * are asked for on every message it takes or sends.
   */
  private readonly lists = new Map<bigint, readonly Participant[]>()

  /** The index of `p`, interning it if new. */
  intern (p: Participant): number {
    let i = this.index.get(p)
    if (i === undefined) {
      i = this.names.length
      this.names.push(p)
      this.index.set(p, i)
      this.bits.push(1n << BigInt(i))
      this.hashes.push(participantHash(p))
    }
    return i
  }

  /** The index of `p`, or `undefined` if it was never seen. */
  indexOf (p: Participant): number | undefined {
    return this.index.get(p)
  }

  /** The participant at index `i`. */
  name (i: number): Participant {
    return this.names[i]!
  }

  /** The single-bit mask of index `i`. */
  bit (i: number): bigint {
    return this.bits[i]!
  }

  /** The digest hash of index `i`'s participant. */
  hash (i: number): number {
    return this.hashes[i]!
  }

  /** The participants of a mask, sorted. */
  list (mask: bigint): Participant[] {
    const known = this.lists.get(mask)
    if (known !== undefined) return known.slice()
    const out: Participant[] = []
    for (let i = 0, rest = mask; rest !== 0n && i < this.names.length; i++) {
      const bit = this.bits[i]!
      if ((rest & bit) !== 0n) { out.push(this.names[i]!); rest &= ~bit }
    }
    out.sort()
    // Bounded: masks come from the wire too (acknowledgement sets), and a fold lives long.
    if (this.lists.size >= MAX_LISTED_MASKS) this.lists.clear()
    this.lists.set(mask, out.slice())
    return out
  }

  /** {@link list}, remembered in `cache` for the length of one operation (equal sets share one array). */
  cachedList (mask: bigint, cache: Map<bigint, Participant[]>): Participant[] {
    let list = cache.get(mask)
    if (list === undefined) { list = this.list(mask); cache.set(mask, list) }
    return list
  }

  /** The mask of a list of participants, interning those not seen yet. */
  mask (list: readonly Participant[]): bigint {
    // Decoders hand out one array per distinct set in a message, and an interned participant
    // keeps its bit for good, so a list's mask can be remembered.
    let mask = this.masks.get(list)
    if (mask !== undefined) return mask
    mask = 0n
    for (const p of list) mask |= this.bits[this.intern(p)]!
    this.masks.set(list, mask)
    return mask
  }
}

/** How many participants `mask` names. */
export function sizeOf (mask: bigint): number {
  let n = 0
  for (let rest = mask; rest !== 0n; rest &= rest - 1n) n++
  return n
}

/**
 * Collects participant indexes into 32-bit words and makes one mask of them at the end:
 * each `|=` on a `bigint` allocates, and a mask built bit by bit over n participants
 * allocated n times. One builder is reused (`take` starts it over), so that building a mask
 * allocates only the mask.
 */
export class MaskBuilder {
  readonly #words: number[] = []
  #empty = true

  /** Whether no index was added since the last `take`. */
  get empty (): boolean {
    return this.#empty
  }

  /** Adds participant index `i`. */
  add (i: number): void {
    const w = i >>> 5
    while (this.#words.length <= w) this.#words.push(0)
    this.#words[w] = this.#words[w]! | (1 << (i & 31))
    this.#empty = false
  }

  /**
   * The mask of the indexes added since the last `take` (bit i is participant index i, as in
   * {@link ParticipantTable.bit}); the builder starts over empty.
   */
  take (): bigint {
    let mask = 0n
    const words = this.#words
    for (let w = 0; w < words.length; w++) {
      const word = words[w]!
      if (word !== 0) {
        mask |= BigInt(word >>> 0) << BigInt(32 * w)
        words[w] = 0
      }
    }
    this.#empty = true
    return mask
  }
}
