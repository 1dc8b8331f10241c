/**
 * The in-memory {@link KeyValueStore}, for tests and for peers that need no durability. The
 * entries live in a {@link MemoryKeyValueData}, which outlives any one store over it, so a test
 * can close a peer's store and "restart" the peer on the same data; it is durable only as long
 * as the process lives. Batches are applied synchronously when called (before the returned
 * promise settles), which makes them trivially atomic and ordered. Depends on the keyspace and
 * the sorted key set only.
 *
 * @module
 */
import { keyValueStoreOver } from './keyspace.js'
import type { DriverOperation, DriverPageQuery, KeyValueDriver } from './keyspace.js'
import type { KeyValueEntry, KeyValueStore } from './key-value.js'
import { SortedKeys } from './sorted-keys.js'

/**
 * The entries of one memory store, kept apart from the store so that they survive its `close`
 * (the in-memory counterpart of a data directory). Keys are held as binary strings, in order.
 */
export class MemoryKeyValueData {
  /** @internal */
  readonly values = new Map<string, Uint8Array>()
  /** @internal */
  readonly order = new SortedKeys()

  /** How many entries are stored, over every namespace. */
  get size (): number {
    return this.values.size
  }
}

/** Options of {@link memoryKeyValueStore}. */
export interface MemoryKeyValueStoreOptions {
  /**
   * The entries to read and write; pass the `data` of a closed store to reopen it.
   * @default new, empty data
   */
  data?: MemoryKeyValueData
}

/** A {@link KeyValueStore} held in memory; `data` is where its entries live. */
export interface MemoryKeyValueStore extends KeyValueStore {
  /** The entries this store reads and writes (give them to another `memoryKeyValueStore` to reopen). */
  readonly data: MemoryKeyValueData
}

/**
 * Creates an in-memory key-value store.
 *
 * @example
 * ```ts
 * const first = memoryKeyValueStore()
 * await first.namespace('identity').put(tupleKey('cluster'), utf8('orders'))
 * await first.close()
 * const again = memoryKeyValueStore({ data: first.data }) // sees the put above
 * ```
 *
 * @param options - see {@link MemoryKeyValueStoreOptions}
 * @returns a store over `options.data`, or over new, empty data
 */
export function memoryKeyValueStore (options: MemoryKeyValueStoreOptions = {}): MemoryKeyValueStore {
  const data = options.data ?? new MemoryKeyValueData()
  if (!(data instanceof MemoryKeyValueData)) throw new TypeError('options.data must be a MemoryKeyValueData')
  const store = keyValueStoreOver(memoryDriver(data))
  return Object.assign(store, { data })
}

function memoryDriver (data: MemoryKeyValueData): KeyValueDriver {
  return {
    get (key) {
      const value = data.values.get(toBinary(key))
      return value === undefined ? undefined : new Uint8Array(value)
    },
    page (query) {
      return page(data, query)
    },
    async write (operations) {
      apply(data, operations)
    },
    async close () {}
  }
}

function page (data: MemoryKeyValueData, query: DriverPageQuery): KeyValueEntry[] {
  const gte = toBinary(query.gte)
  const lt = toBinary(query.lt)
  const keys = query.reverse
    ? data.order.descending(query.after === undefined ? lt : toBinary(query.after), false)
    : data.order.ascending(query.after === undefined ? gte : toBinary(query.after), query.after === undefined)
  const entries: KeyValueEntry[] = []
  let bytes = 0
  for (const key of keys) {
    if (query.reverse ? key < gte : key >= lt) break
    const value = query.values ? new Uint8Array(data.values.get(key)!) : new Uint8Array(0)
    entries.push({ key: fromBinary(key), value })
    bytes += value.length
    if (entries.length >= query.limit || bytes >= query.maxBytes) break
  }
  return entries
}

/** Applies a batch at once. The operations were checked by the keyspace, so nothing here throws. */
function apply (data: MemoryKeyValueData, operations: readonly DriverOperation[]): void {
  for (const operation of operations) {
    if (operation.type === 'put') {
      const key = toBinary(operation.key)
      data.values.set(key, new Uint8Array(operation.value))
      data.order.add(key)
    } else if (operation.type === 'delete') {
      const key = toBinary(operation.key)
      if (data.values.delete(key)) data.order.delete(key)
    } else {
      const lt = toBinary(operation.lt)
      const doomed: string[] = []
      for (const key of data.order.ascending(toBinary(operation.gte), true)) {
        if (key >= lt) break
        doomed.push(key)
      }
      for (const key of doomed) {
        data.values.delete(key)
        data.order.delete(key)
      }
    }
  }
}

function toBinary (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

function fromBinary (key: string): Uint8Array {
  const buffer = Buffer.from(key, 'latin1')
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}
