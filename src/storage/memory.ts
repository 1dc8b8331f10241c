/**
 * An in-memory {@link PeerStorage}, for tests and for peers that need no durability. The record
 * lives in a {@link MemoryStore}, which outlives any one storage over it, so a test can close a
 * peer's storage and "restart" the peer on the same store. It is durable only as long as the
 * process lives. Depends on the storage contract only.
 *
 * @module
 */
import { copyPeerRecord, StorageClosedError } from './storage.js'
import type { PeerRecord, PeerStorage } from './storage.js'

/**
 * The bytes one memory storage holds, kept apart from the storage so that they survive its
 * `close` (the in-memory counterpart of a data directory). Reads and writes copy.
 */
export class MemoryStore {
  #record: PeerRecord | undefined

  /** A copy of the stored record, or `undefined` when nothing was saved. */
  read (): PeerRecord | undefined {
    return this.#record === undefined ? undefined : copyPeerRecord(this.#record)
  }

  /** Replaces the stored record with a copy of `record`. */
  write (record: PeerRecord): void {
    this.#record = copyPeerRecord(record)
  }
}

/** Options of {@link memoryStorage}. */
export interface MemoryStorageOptions {
  /**
   * The store to read and write; pass the store of a closed storage to reopen it.
   * @default a new, empty store
   */
  store?: MemoryStore
}

/** A {@link PeerStorage} held in memory; `store` is where its record lives. */
export interface MemoryStorage extends PeerStorage {
  /** The store this storage reads and writes (give it to another `memoryStorage` to reopen). */
  readonly store: MemoryStore
}

/**
 * Creates an in-memory peer storage. Saves complete synchronously (before the returned promise
 * settles), so concurrent saves are trivially applied in call order.
 *
 * @example
 * ```ts
 * const first = memoryStorage()
 * await first.save({ cluster: 'demo', privateKey, fold })
 * await first.close()
 * const again = memoryStorage({ store: first.store }) // sees the save above
 * ```
 *
 * @param options - see {@link MemoryStorageOptions}
 * @returns a storage over `options.store`, or over a new empty store
 */
export function memoryStorage (options: MemoryStorageOptions = {}): MemoryStorage {
  const store = options.store ?? new MemoryStore()
  let closed = false
  return {
    store,
    async load () {
      if (closed) throw new StorageClosedError()
      return store.read()
    },
    async save (record) {
      if (closed) throw new StorageClosedError()
      store.write(record)
    },
    async close () {
      closed = true
    }
  }
}
