/**
 * The LMDB driver of the key-value store: a flat, bytewise-ordered map of physical keys in one
 * LMDB environment (binary keys, LMDB's default memcmp order), with every value framed by a
 * checksum. It is what `lmdb-key-value.ts` opens on a layout-2 data directory and what the
 * layout migration writes through; it knows nothing of directories or namespaces.
 *
 * Value frame (what LMDB stores under a physical key):
 * ```
 * offset  size  field
 * 0       1     frame format (1)
 * 1       4     CRC-32C, big-endian, of: the physical key, the format byte, the value
 * 5       n     the value
 * ```
 * Why a checksum although LMDB is crash-safe: LMDB's copy-on-write commits guarantee that a
 * crash leaves the last commit intact, but LMDB checks nothing it reads back, so a bit flipped
 * on disk (or a file damaged by a copy) would be returned as data. The checksum turns that into
 * `StorageCorruptError`. It covers the key as well, so a value found under a damaged key is not
 * mistaken for that key's value.
 *
 * Writes: each batch runs in an LMDB child transaction (`childTransaction`), so a batch that
 * fails midway is rolled back alone; lmdb-js queues transactions in call order and commits
 * those of one event turn together, and a commit returns only after `fdatasync` (see
 * `openEnvironment`). A batch resolves after its commit and `db.flushed`.
 *
 * @module
 */
import type { RootDatabase } from 'lmdb'
import { LMDB_KEY_VALUE_LAYOUT } from './directory-layout.js'
import { crc32cFinish, crc32cStart, crc32cUpdate } from './crc32c.js'
import { asCorruptError } from './data-directory.js'
import type { KeyValueEntry } from './key-value.js'
import type { DriverOperation, DriverPageQuery, KeyValueDriver } from './keyspace.js'
import { StorageCorruptError } from './storage.js'

export { LMDB_KEY_VALUE_LAYOUT }

/** The frame format {@link frameValue} writes and the only one {@link openFrame} reads. */
export const VALUE_FRAME_FORMAT = 1
const FRAME_HEADER = 5
const EMPTY = new Uint8Array(0)
/** Keys removed per step of a range deletion, so that a huge range is not collected at once. */
const DELETE_STEP = 1000

/** The physical key store of one LMDB environment. */
export type KeyValueDatabase = RootDatabase<Uint8Array, Uint8Array>

/**
 * A driver over `db`. `release` runs once the environment is closed (the adapter releases its
 * directory there).
 */
export function lmdbDriver (db: KeyValueDatabase, release: () => void): KeyValueDriver {
  return {
    get (key) {
      let stored: Uint8Array | undefined
      try {
        // A buffer lmdb reuses for the next read: openFrame copies the value out at once.
        stored = db.getBinaryFast(key)
      } catch (cause) {
        throw asCorruptError(cause) ?? cause
      }
      return stored === undefined ? undefined : openFrame(key, stored)
    },
    page (query) {
      return page(db, query)
    },
    write (operations) {
      return write(db, operations)
    },
    async close () {
      try {
        await db.close()
      } finally {
        release()
      }
    }
  }
}

function page (db: KeyValueDatabase, query: DriverPageQuery): KeyValueEntry[] {
  // lmdb-js ranges: `start` is where the walk begins (the upper end when reversed), `end` is
  // exclusive unless `inclusiveEnd`. A reversed walk starts strictly below `lt` (or `after`).
  const options = query.reverse
    ? { start: query.after ?? query.lt, exclusiveStart: true, end: query.gte, inclusiveEnd: true, reverse: true, limit: query.limit }
    : { start: query.after ?? query.gte, exclusiveStart: query.after !== undefined, end: query.lt, limit: query.limit }
  const entries: KeyValueEntry[] = []
  let bytes = 0
  try {
    if (query.values) {
      for (const { key, value } of db.getRange(options)) {
        const opened = openFrame(key, value)
        entries.push({ key: new Uint8Array(key), value: opened })
        bytes += opened.length
        if (entries.length >= query.limit || bytes >= query.maxBytes) break
      }
    } else {
      for (const key of db.getKeys(options)) {
        entries.push({ key: new Uint8Array(key), value: EMPTY })
        if (entries.length >= query.limit) break
      }
    }
  } catch (cause) {
    throw cause instanceof StorageCorruptError ? cause : (asCorruptError(cause) ?? cause)
  }
  return entries
}

async function write (db: KeyValueDatabase, operations: readonly DriverOperation[]): Promise<void> {
  // Framed now, while the caller's arrays still hold what was passed (the transaction runs later).
  const framed = operations.map(operation => operation.type === 'put'
    ? { type: 'put' as const, key: operation.key, value: frameValue(operation.key, operation.value) }
    : operation)
  try {
    await db.childTransaction(() => {
      for (const operation of framed) {
        if (operation.type === 'put') {
          db.putSync(operation.key, operation.value)
        } else if (operation.type === 'delete') {
          db.removeSync(operation.key)
        } else {
          deleteRange(db, operation.gte, operation.lt)
        }
      }
    })
    await db.flushed
  } catch (cause) {
    throw asCorruptError(cause) ?? cause
  }
}

/** Inside a write transaction: removes every key in `[gte, lt)`, a bounded step at a time. */
function deleteRange (db: KeyValueDatabase, gte: Uint8Array, lt: Uint8Array): void {
  for (;;) {
    const keys = Array.from(db.getKeys({ start: gte, end: lt, limit: DELETE_STEP }))
    if (keys.length === 0) return
    for (const key of keys) db.removeSync(key)
  }
}

/**
 * Frames `value` for storage under physical key `key` (see the module comment).
 *
 * @returns a fresh array: format byte, checksum, copy of the value
 */
export function frameValue (key: Uint8Array, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + value.length)
  out[0] = VALUE_FRAME_FORMAT
  out.set(value, FRAME_HEADER)
  const sum = checksum(key, out)
  out[1] = sum >>> 24
  out[2] = (sum >>> 16) & 0xff
  out[3] = (sum >>> 8) & 0xff
  out[4] = sum & 0xff
  return out
}

/**
 * The value inside a stored frame, as a fresh array.
 *
 * @throws {@link StorageCorruptError} when the frame is truncated, of an unknown format, or
 * does not match its checksum
 */
export function openFrame (key: Uint8Array, stored: Uint8Array): Uint8Array {
  if (stored.length < FRAME_HEADER) {
    throw new StorageCorruptError('truncated', `a stored value is ${stored.length} bytes, shorter than its frame header`)
  }
  if (stored[0] !== VALUE_FRAME_FORMAT) {
    throw new StorageCorruptError('unknown-version', `a stored value has frame format ${String(stored[0])}; this build reads format ${VALUE_FRAME_FORMAT}`)
  }
  const found = ((stored[1]! << 24) | (stored[2]! << 16) | (stored[3]! << 8) | stored[4]!) >>> 0
  if (found !== checksum(key, stored)) throw new StorageCorruptError('checksum', 'a stored value does not match its checksum')
  // Copied into a plain array: lmdb hands out Buffers (whose slice() is a view), some of them reused.
  return new Uint8Array(stored.subarray(FRAME_HEADER, stored.length))
}

/** CRC-32C of the key, the format byte and the value of `frame` (skipping the checksum field). */
function checksum (key: Uint8Array, frame: Uint8Array): number {
  let state = crc32cUpdate(crc32cStart(), key)
  state = crc32cUpdate(state, frame.subarray(0, 1))
  state = crc32cUpdate(state, frame.subarray(FRAME_HEADER, frame.length))
  return crc32cFinish(state)
}
