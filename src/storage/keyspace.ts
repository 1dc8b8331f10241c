/**
 * The keyspace: the one implementation of the {@link KeyValueStore} contract, shared by every
 * adapter, so that namespacing, argument checks, the closed state, call order and paged scans
 * behave identically in memory and on disk. An adapter supplies only a {@link KeyValueDriver}:
 * a flat, bytewise-ordered map of physical keys with atomic writes. This module knows nothing
 * of files or of what values mean; the driver knows nothing of namespaces.
 *
 * Physical keys (what the driver stores):
 * ```
 * 0x00 ...                                     reserved for storage's own records (none yet)
 * 0x01 <key>                                   key <key> of the root view (path '')
 * 0x02 <segment> 0x00 0x01 <key>               key <key> of namespace <segment>
 * 0x02 <s1> 0x00 0x02 <s2> 0x00 0x01 <key>     key <key> of namespace <s1>/<s2>
 * ```
 * A view's own keys carry the tag 0x01 after its path and nested namespaces the tag 0x02, so
 * they never share a prefix. Segments are UTF-8 without 0x00 (see `isValidNamespaceName`), so
 * `<s> 0x00` is never a prefix of `<t> 0x00` for two different segments: no namespace's keys can
 * fall inside another's range. That is the whole isolation argument.
 *
 * @module
 */
import { KEY_VALUE_LIMITS, namespaceSegments } from './key-value.js'
import type { KeyBounds, KeyRange, KeyValueEntry, KeyValueOperation, KeyValueStore, KeyValueView } from './key-value.js'
import { StorageClosedError, StorageCorruptError } from './storage.js'

/** A page request to a driver: physical bounds `gte <= key < lt`, continuing after `after`. */
export interface DriverPageQuery {
  /** The lowest physical key to visit. */
  readonly gte: Uint8Array
  /** The physical key above the last one to visit. */
  readonly lt: Uint8Array
  /** The last key of the previous page: continue strictly after it (below it when `reverse`). */
  readonly after: Uint8Array | undefined
  /** Visit from the greatest key down. */
  readonly reverse: boolean
  /** The most entries to return (at least 1). */
  readonly limit: number
  /** Stop after the first entry that brings the values' total size to this many bytes. */
  readonly maxBytes: number
  /** Whether values are wanted; when false, entries carry empty values and are not checked. */
  readonly values: boolean
}

/** A write to the driver, on physical keys. */
export type DriverOperation =
  | { readonly type: 'put', readonly key: Uint8Array, readonly value: Uint8Array }
  | { readonly type: 'delete', readonly key: Uint8Array }
  | { readonly type: 'delete-range', readonly gte: Uint8Array, readonly lt: Uint8Array }

/**
 * What an adapter implements: a flat, bytewise-ordered map of physical keys. Internal to
 * storage (not part of the public API); the keyspace guarantees it is called only while open,
 * with checked arguments.
 */
export interface KeyValueDriver {
  /** The value under a physical key, as a fresh array; throws `StorageCorruptError` on damage. */
  get(key: Uint8Array): Uint8Array | undefined
  /** Up to `query.limit` entries in order; keys and values fresh arrays. */
  page(query: DriverPageQuery): KeyValueEntry[]
  /**
   * Applies `operations` atomically and durably, after every earlier `write`. Must read (copy)
   * the operations' bytes before returning, since the caller may mutate them afterwards.
   */
  write(operations: readonly DriverOperation[]): Promise<void>
  /** Releases the driver; called once, after every write settled. */
  close(): Promise<void>
}

/** Entries per page of a scan: large enough to amortise a seek, small enough to hold. */
const PAGE_ENTRIES = 512
/** Value bytes per page of a scan, so that large values do not inflate a page. */
const PAGE_BYTES = 1 << 20

const OWN_KEYS = 0x01
const NESTED = 0x02
const EMPTY = new Uint8Array(0)
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

type Lifecycle =
  | { readonly phase: 'open', readonly inFlight: Set<Promise<void>> }
  | { readonly phase: 'closing', readonly closed: Promise<void> }

/** The shared state of one store: its driver and whether it is open. Views hold a reference. */
class Keyspace {
  readonly #driver: KeyValueDriver
  #lifecycle: Lifecycle = { phase: 'open', inFlight: new Set() }

  constructor (driver: KeyValueDriver) {
    this.#driver = driver
  }

  get (key: Uint8Array): Uint8Array | undefined {
    this.ensureOpen()
    return this.#driver.get(key)
  }

  page (query: DriverPageQuery): KeyValueEntry[] {
    this.ensureOpen()
    return this.#driver.page(query)
  }

  write (operations: readonly DriverOperation[]): Promise<void> {
    const lifecycle = this.#lifecycle
    if (lifecycle.phase !== 'open') return Promise.reject(new StorageClosedError())
    let written: Promise<void>
    try {
      written = this.#driver.write(operations)
    } catch (err) {
      return Promise.reject(err)
    }
    lifecycle.inFlight.add(written)
    const forget = (): void => { lifecycle.inFlight.delete(written) }
    written.then(forget, forget)
    return written
  }

  /** Throws {@link StorageClosedError} once `close` was called. */
  ensureOpen (): void {
    if (this.#lifecycle.phase !== 'open') throw new StorageClosedError()
  }

  close (): Promise<void> {
    const lifecycle = this.#lifecycle
    if (lifecycle.phase === 'closing') return lifecycle.closed
    const pending = [...lifecycle.inFlight]
    const closed = (async () => {
      await Promise.allSettled(pending)
      await this.#driver.close()
    })()
    this.#lifecycle = { phase: 'closing', closed }
    return closed
  }
}

/** One namespace of a keyspace. `pathBytes` is the encoded path (empty for the root). */
class NamespaceView implements KeyValueView {
  readonly path: string
  protected readonly keyspace: Keyspace
  readonly #pathBytes: Uint8Array
  /** `pathBytes` followed by the own-keys tag: the physical prefix of this view's keys. */
  readonly #prefix: Uint8Array
  /**
   * The physical prefixes of nested namespaces that batches named, by name: a store's batches
   * name the same few namespaces again and again, and checking and encoding a name cost more
   * than the rest of a small operation. Emptied when it holds {@link MAX_CACHED_PREFIXES}.
   */
  readonly #nestedPrefixes = new Map<string, Uint8Array>()

  constructor (keyspace: Keyspace, path: string, pathBytes: Uint8Array) {
    this.keyspace = keyspace
    this.path = path
    this.#pathBytes = pathBytes
    this.#prefix = concat(pathBytes, Uint8Array.of(OWN_KEYS))
  }

  async get (key: Uint8Array): Promise<Uint8Array | undefined> {
    checkKey(key, 'key')
    return this.keyspace.get(concat(this.#prefix, key))
  }

  range (range: KeyRange = {}): AsyncIterable<KeyValueEntry> {
    if (typeof range !== 'object' || range === null) throw new TypeError('range must be an object')
    const { reverse = false, limit = Infinity } = range
    if (typeof reverse !== 'boolean') throw new TypeError('range.reverse must be a boolean')
    if (typeof limit !== 'number') throw new TypeError('range.limit must be a number')
    if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 0))) {
      throw new RangeError('range.limit must be a non-negative integer or Infinity')
    }
    const bounds = physicalBounds(this.#prefix, range, 'range')
    const keyspace = this.keyspace
    const strip = this.#prefix.length
    return {
      [Symbol.asyncIterator]: () => scan(keyspace, bounds, reverse, limit, strip)
    }
  }

  batch (operations: readonly KeyValueOperation[]): Promise<void> {
    let physical: DriverOperation[]
    try {
      if (!Array.isArray(operations)) throw new TypeError('operations must be an array')
      physical = operations.map((operation: KeyValueOperation, index) => this.#physical(operation, `operations[${index}]`))
    } catch (err) {
      return Promise.reject(err)
    }
    return this.keyspace.write(physical)
  }

  put (key: Uint8Array, value: Uint8Array): Promise<void> {
    try {
      checkKey(key, 'key')
      if (!(value instanceof Uint8Array)) throw new TypeError('value must be a Uint8Array')
    } catch (err) {
      return Promise.reject(err)
    }
    return this.keyspace.write([{ type: 'put', key: concat(this.#prefix, key), value }])
  }

  delete (key: Uint8Array): Promise<void> {
    try {
      checkKey(key, 'key')
    } catch (err) {
      return Promise.reject(err)
    }
    return this.keyspace.write([{ type: 'delete', key: concat(this.#prefix, key) }])
  }

  namespace (name: string): KeyValueView {
    const pathBytes = nestedPath(this.#pathBytes, name, 'name')
    return new NamespaceView(this.keyspace, this.path === '' ? name : `${this.path}/${name}`, pathBytes)
  }

  namespaces (): AsyncIterable<string> {
    const keyspace = this.keyspace
    const pathBytes = this.#pathBytes
    return {
      [Symbol.asyncIterator]: () => childNames(keyspace, pathBytes)
    }
  }

  /** The physical prefix of the keys of nested namespace `namespace` (checked once per name). */
  #nestedPrefix (namespace: string, name: string): Uint8Array {
    let prefix = this.#nestedPrefixes.get(namespace)
    if (prefix === undefined) {
      prefix = concat(nestedPath(this.#pathBytes, namespace, `${name}.namespace`), Uint8Array.of(OWN_KEYS))
      if (this.#nestedPrefixes.size >= MAX_CACHED_PREFIXES) this.#nestedPrefixes.clear()
      this.#nestedPrefixes.set(namespace, prefix)
    }
    return prefix
  }

  /** Checks one operation of a batch and turns it into a driver operation on physical keys. */
  #physical (operation: KeyValueOperation, name: string): DriverOperation {
    if (typeof operation !== 'object' || operation === null) throw new TypeError(`${name} must be an operation object`)
    const prefix = operation.namespace === undefined ? this.#prefix : this.#nestedPrefix(operation.namespace, name)
    switch (operation.type) {
      case 'put':
        checkKey(operation.key, `${name}.key`)
        if (!(operation.value instanceof Uint8Array)) throw new TypeError(`${name}.value must be a Uint8Array`)
        return { type: 'put', key: concat(prefix, operation.key), value: operation.value }
      case 'delete':
        checkKey(operation.key, `${name}.key`)
        return { type: 'delete', key: concat(prefix, operation.key) }
      case 'delete-range': {
        const range = operation.range ?? {}
        if (typeof range !== 'object' || range === null) throw new TypeError(`${name}.range must be an object`)
        const { gte, lt } = physicalBounds(prefix, range, `${name}.range`)
        return { type: 'delete-range', gte, lt }
      }
      default:
        throw new TypeError(`${name}.type must be 'put', 'delete' or 'delete-range'`)
    }
  }
}

/** The root view of a keyspace, which can close it. */
class RootStore extends NamespaceView implements KeyValueStore {
  close (): Promise<void> {
    return this.keyspace.close()
  }
}

/**
 * A {@link KeyValueStore} over `driver`: the adapters' common front.
 *
 * @param driver - the adapter's flat ordered map
 * @returns the root view of the store
 */
export function keyValueStoreOver (driver: KeyValueDriver): KeyValueStore {
  return new RootStore(new Keyspace(driver), '', EMPTY)
}

/**
 * The physical key prefix under which the store keeps the own keys of namespace `path`, for
 * tools that read a data directory behind the store's back (tests, forensics).
 *
 * @param path - a namespace path, `''` for the root
 * @returns the prefix bytes
 */
export function physicalPrefix (path: string): Uint8Array {
  const pathBytes = path === '' ? EMPTY : nestedPath(EMPTY, path, 'path')
  return concat(pathBytes, Uint8Array.of(OWN_KEYS))
}

async function * scan (keyspace: Keyspace, bounds: { gte: Uint8Array, lt: Uint8Array }, reverse: boolean, limit: number, strip: number): AsyncGenerator<KeyValueEntry> {
  keyspace.ensureOpen()
  if (compare(bounds.gte, bounds.lt) >= 0) return
  let after: Uint8Array | undefined
  let remaining = limit
  while (remaining > 0) {
    const page = keyspace.page({
      gte: bounds.gte,
      lt: bounds.lt,
      after,
      reverse,
      limit: Math.min(PAGE_ENTRIES, remaining),
      maxBytes: PAGE_BYTES,
      values: true
    })
    if (page.length === 0) return
    remaining -= page.length
    after = page[page.length - 1]!.key
    // A fresh, plain array per key: drivers may hand out Buffers, whose slice() would be a view.
    for (const entry of page) yield { key: new Uint8Array(entry.key.subarray(strip)), value: entry.value }
  }
}

async function * childNames (keyspace: Keyspace, pathBytes: Uint8Array): AsyncGenerator<string> {
  const start = pathBytes.length + 1
  let cursor = concat(pathBytes, Uint8Array.of(NESTED))
  const end = concat(pathBytes, Uint8Array.of(NESTED + 1))
  for (;;) {
    const [entry] = keyspace.page({ gte: cursor, lt: end, after: undefined, reverse: false, limit: 1, maxBytes: 0, values: false })
    if (entry === undefined) return
    const terminator = entry.key.indexOf(0, start)
    if (terminator < 0) throw new StorageCorruptError('invalid', 'a stored key has a namespace segment without its terminator')
    const segment = new Uint8Array(entry.key.subarray(start, terminator))
    let name: string
    try {
      name = utf8Decoder.decode(segment)
    } catch (cause) {
      throw new StorageCorruptError('invalid', 'a stored namespace name is not valid UTF-8', { cause })
    }
    yield name
    // Every key of namespace <segment> starts with <segment> 0x00: the next name is at or past <segment> 0x01.
    cursor = concat(pathBytes, Uint8Array.of(NESTED), segment, Uint8Array.of(1))
  }
}

/** Nested namespaces whose physical prefix one view keeps (see `NamespaceView`). */
const MAX_CACHED_PREFIXES = 64

/** `parent` extended by the segments of `name`, each as 0x02 <segment> 0x00. */
function nestedPath (parent: Uint8Array, name: string, argument: string): Uint8Array {
  const parts: Uint8Array[] = [parent]
  for (const segment of namespaceSegments(name, argument)) parts.push(Uint8Array.of(NESTED), segment, Uint8Array.of(0))
  const path = concat(...parts)
  if (path.length > KEY_VALUE_LIMITS.maxNamespacePathBytes) {
    throw new RangeError(`${argument}: the namespace path is ${path.length} bytes encoded; the limit is ${KEY_VALUE_LIMITS.maxNamespacePathBytes}`)
  }
  return path
}

/** The physical `[gte, lt)` of `bounds` within the keys starting with `prefix`. */
function physicalBounds (prefix: Uint8Array, bounds: KeyBounds, argument: string): { gte: Uint8Array, lt: Uint8Array } {
  const { prefix: keyPrefix, gte, lt } = bounds
  if (keyPrefix !== undefined) checkKey(keyPrefix, `${argument}.prefix`)
  if (gte !== undefined) checkKey(gte, `${argument}.gte`)
  if (lt !== undefined) checkKey(lt, `${argument}.lt`)
  // Within the view, every key is at least `prefix` and below `prefix` with its last byte + 1.
  let low = prefix
  let high = successor(prefix)!
  if (keyPrefix !== undefined) {
    low = concat(prefix, keyPrefix)
    high = successor(low) ?? high
  }
  if (gte !== undefined) low = max(low, concat(prefix, gte))
  if (lt !== undefined) high = min(high, concat(prefix, lt))
  return { gte: low, lt: high }
}

/** The least key greater than every key that starts with `bytes`, or undefined if none (all 0xff). */
function successor (bytes: Uint8Array): Uint8Array | undefined {
  let end = bytes.length
  while (end > 0 && bytes[end - 1] === 0xff) end--
  if (end === 0) return undefined
  const out = bytes.slice(0, end)
  out[end - 1] = out[end - 1]! + 1
  return out
}

function checkKey (key: Uint8Array, argument: string): void {
  if (!(key instanceof Uint8Array)) throw new TypeError(`${argument} must be a Uint8Array`)
  if (key.length > KEY_VALUE_LIMITS.maxKeyBytes) {
    throw new RangeError(`${argument} is ${key.length} bytes; the limit is ${KEY_VALUE_LIMITS.maxKeyBytes}`)
  }
}

function concat (...parts: Uint8Array[]): Uint8Array {
  let total = 0
  for (const part of parts) total += part.length
  const out = new Uint8Array(total)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/** Bytewise comparison, a prefix before every longer key. */
export function compare (a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}

function max (a: Uint8Array, b: Uint8Array): Uint8Array {
  return compare(a, b) >= 0 ? a : b
}

function min (a: Uint8Array, b: Uint8Array): Uint8Array {
  return compare(a, b) <= 0 ? a : b
}
