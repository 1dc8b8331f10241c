/**
 * The key-value storage contract: what a peer hosting many replicated folds ("groups") persists,
 * each group in its own namespace and each save only what changed. Keys and values are opaque
 * byte strings; keys are ordered bytewise. Adapters (`memory-key-value.ts`,
 * `lmdb-key-value.ts`) implement it through the shared keyspace (`keyspace.ts`), and
 * `runKeyValueStoreTests` in `./key-value-acceptance.js` is the suite any adapter must pass.
 * Storage never interprets keys or values; {@link tupleKey} (in `./tuple-key.js`) is an
 * optional way to build ordered keys from parts.
 *
 * The contract, in numbered promises every adapter keeps:
 * 1. **Order.** Keys compare bytewise, a shorter key before every longer key it is a prefix
 *    of. `range` visits keys in that order (or its reverse).
 * 2. **Namespaces.** `namespace(name)` is a view whose keys live apart from every other
 *    namespace's and from its parent's own keys: no key written through one view can be read,
 *    scanned or deleted through another. Views nest (`a.namespace('b')` is
 *    `namespace('a/b')`). See {@link isValidNamespaceName} for the rule on names.
 * 3. **Atomic, durable batches.** `batch` applies its operations, in the order given, all or
 *    none: a crash (kill -9) at any moment leaves either every operation of the batch or none
 *    of them. It resolves only once the batch would survive kill -9 (for a durable adapter:
 *    synced to disk).
 * 4. **Call order.** Batches on one store (through any of its views) are applied in the order
 *    `batch` (or `put` / `delete`) was called and resolve in that order; a batch called while
 *    others are in flight is applied after them.
 * 5. **Reads.** `get` and `range` reflect every batch that had resolved before they were
 *    called, and never part of a batch. A batch still in flight may or may not be visible.
 * 6. **Scans are bounded in memory, not snapshots.** `range` reads in pages of a bounded size,
 *    so a scan of a million keys holds one page at a time. Each key is visited at most once
 *    and in order; a key that stays unchanged during the scan is visited; keys written or
 *    deleted during the scan may or may not be seen. (Read a group's state before writing to
 *    it if the whole must be consistent.)
 * 7. **Copies.** Keys and values are copied when an operation is called and when a read
 *    returns: mutating an array later never changes what is stored or what another reader got.
 * 8. **Damage is reported, not returned.** A value that cannot be read back intact rejects with
 *    {@link StorageCorruptError}; nothing is repaired or overwritten.
 * 9. **Close.** `close()` waits for the batches already called, then releases the store; every
 *    later call on the store or any of its views rejects with {@link StorageClosedError}. It is
 *    idempotent.
 *
 * Arguments of the wrong type throw (or reject with) a `TypeError` naming the argument; keys,
 * bounds and names outside the limits of {@link KEY_VALUE_LIMITS} a `RangeError`.
 *
 * @module
 */
// Type-only imports: they put the names the TSDoc links to in scope, and load nothing.
import type { StorageClosedError, StorageCorruptError } from './storage.js'
import type { tupleKey } from './tuple-key.js'

/** One stored entry, as a scan returns it. */
export interface KeyValueEntry {
  /** The key, relative to the view that scanned it. */
  readonly key: Uint8Array
  /** The value. */
  readonly value: Uint8Array
}

/** Which keys an operation covers: the intersection of the given constraints. */
export interface KeyBounds {
  /**
   * Only keys that start with these bytes.
   * @default every key
   */
  readonly prefix?: Uint8Array
  /**
   * Only keys bytewise greater than or equal to this.
   * @default no lower bound
   */
  readonly gte?: Uint8Array
  /**
   * Only keys bytewise less than this.
   * @default no upper bound
   */
  readonly lt?: Uint8Array
}

/** Which keys a scan visits, in which direction, and how many at most. */
export interface KeyRange extends KeyBounds {
  /**
   * Visit keys from the greatest down.
   * @default false
   */
  readonly reverse?: boolean
  /**
   * The most entries to visit (a non-negative integer, or `Infinity`).
   * @default Infinity
   */
  readonly limit?: number
}

/**
 * One write of a batch. `namespace`, when given, is a namespace path relative to the view the
 * batch is called on (`'group/orders'`), so one atomic batch can write several namespaces.
 */
export type KeyValueOperation =
  | {
    /** Store `value` under `key`, replacing what was there. */
    readonly type: 'put'
    /** The key (at most {@link KEY_VALUE_LIMITS}.maxKeyBytes bytes). */
    readonly key: Uint8Array
    /** The value. */
    readonly value: Uint8Array
    /** A namespace below the view, or the view itself when absent. */
    readonly namespace?: string
  }
  | {
    /** Remove `key`; removing an absent key is not an error. */
    readonly type: 'delete'
    /** The key. */
    readonly key: Uint8Array
    /** A namespace below the view, or the view itself when absent. */
    readonly namespace?: string
  }
  | {
    /**
     * Remove every key of the namespace within `range` (all of them when `range` is absent).
     * Keys of namespaces nested below it are not touched.
     */
    readonly type: 'delete-range'
    /** The keys to remove. */
    readonly range?: KeyBounds
    /** A namespace below the view, or the view itself when absent. */
    readonly namespace?: string
  }

/**
 * A namespace of a key-value store: every key read or written through it lives in its own
 * keyspace (see the module comment for the promises every adapter keeps).
 */
export interface KeyValueView {
  /** The namespace path of this view, `''` for the store itself, e.g. `'group/orders'`. */
  readonly path: string
  /**
   * The value stored under `key`, a fresh copy, or `undefined`.
   * Rejects with {@link StorageCorruptError} when the value is damaged.
   */
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  /**
   * The entries within `range`, in key order (or reversed), read lazily in pages. Arguments are
   * checked when `range` is called; failures of reading (closed, damaged) reject `next()`.
   */
  range(range?: KeyRange): AsyncIterable<KeyValueEntry>
  /** Applies `operations` atomically and durably, in order (promises 3 and 4). */
  batch(operations: readonly KeyValueOperation[]): Promise<void>
  /** `batch([{ type: 'put', key, value }])`. */
  put(key: Uint8Array, value: Uint8Array): Promise<void>
  /** `batch([{ type: 'delete', key }])`. */
  delete(key: Uint8Array): Promise<void>
  /**
   * The view of the namespace `name` below this one; `name` may be a path (`'group/orders'`).
   * Creating a view writes nothing: a namespace exists once a key is stored in it.
   */
  namespace(name: string): KeyValueView
  /**
   * The names of the namespaces directly below this one that hold at least one key (their own
   * or a nested namespace's), in bytewise order of their UTF-8 names.
   */
  namespaces(): AsyncIterable<string>
}

/**
 * An open key-value store: the root view (path `''`) and the handle that closes it. Only the
 * store can be closed; views share its state.
 */
export interface KeyValueStore extends KeyValueView {
  /**
   * Waits for the batches already called, then releases the store; later calls on the store
   * or its views reject with {@link StorageClosedError}. Idempotent.
   */
  close(): Promise<void>
}

/**
 * The limits every adapter enforces, the same for all so that code tested on memory runs on
 * disk. The durable adapter's physical key is the encoded namespace path, one tag byte and the
 * key: at most 512 + 1 + 1024 bytes, under LMDB's limit of 1978.
 */
export const KEY_VALUE_LIMITS = {
  /** The longest key, bound or prefix, in bytes. */
  maxKeyBytes: 1024,
  /** The longest namespace name segment, in UTF-8 bytes. */
  maxNamespaceSegmentBytes: 128,
  /** The longest namespace path, counting two bytes of framing per segment. */
  maxNamespacePathBytes: 512
} as const

const utf8Encoder = new TextEncoder()

/**
 * Whether `segment` is a valid namespace name segment. A namespace name is one or more segments
 * joined by `/`; a segment is 1 to 128 bytes of UTF-8, well-formed (no lone surrogates), with
 * no `/` and no control character (U+0000 to U+001F, U+007F). So `'identity'`,
 * `'group/orders-7'` and `'group/Bestellungen-ü'` are valid; `''`, `'a//b'`, `'/a'` and
 * `'a\u0000b'` are not. Names are case-sensitive and compared bytewise.
 *
 * @param segment - one segment (no `/`)
 * @returns true when the segment is valid
 */
export function isValidNamespaceName (segment: string): boolean {
  if (typeof segment !== 'string' || segment.length === 0 || !segment.isWellFormed()) return false
  if (/[/\u0000-\u001f\u007f]/.test(segment)) return false
  return utf8Encoder.encode(segment).length <= KEY_VALUE_LIMITS.maxNamespaceSegmentBytes
}

/**
 * Splits and checks a namespace path.
 *
 * @param name - the path, e.g. `'group/orders'`
 * @param argument - the argument's name, for the error message
 * @returns the UTF-8 bytes of each segment
 * @throws TypeError when `name` is not a string; RangeError when a segment is invalid
 */
export function namespaceSegments (name: string, argument: string): Uint8Array[] {
  if (typeof name !== 'string') throw new TypeError(`${argument} must be a string`)
  const segments = name.split('/')
  for (const segment of segments) {
    if (!isValidNamespaceName(segment)) {
      throw new RangeError(`${argument} ${JSON.stringify(name)} is not a valid namespace name: segments are 1 to ${KEY_VALUE_LIMITS.maxNamespaceSegmentBytes} bytes of UTF-8 without "/" or control characters`)
    }
  }
  return segments.map(segment => utf8Encoder.encode(segment))
}
