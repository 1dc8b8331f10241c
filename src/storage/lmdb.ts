/**
 * A durable {@link PeerStorage} in a data directory, on LMDB (the `lmdb` package). It persists
 * one record (cluster, private key, encoded fold) per directory, so a restarted peer resumes
 * as the same participant with the state it last saved. It knows nothing of what the bytes
 * mean; it guarantees only that a resolved save survives a crash and that damage is reported,
 * never returned. Depends on the storage contract, its record format, the data directory
 * discipline (`data-directory.ts`) and `lmdb` only.
 *
 * This is the format the runtime uses today. Its successor, layout 2 (a key-value store, in
 * `lmdb-key-value.ts`), converts a layout-1 directory when it opens one; this adapter refuses a
 * directory already converted (`StorageCorruptError`, reason `unknown-version`).
 *
 * Directory layout (layout version 1):
 * ```
 * <directory>/LEGION-PEER        marker: "legion-peer-storage\nlayout 1\n"; says the directory is ours
 * <directory>/peer.mdb           LMDB environment (one file), key "peer" = the encoded record
 * <directory>/peer.mdb-lock      LMDB's lock file (reader table), recreated as needed
 * <directory>/LEGION-PEER.tmp    only transiently, while the marker is being created
 * ```
 * The record is encoded by {@link encodePeerRecord} (magic, format version, SHA-256 checksum).
 *
 * Opening refuses, with {@link ForeignDirectoryError} and without creating anything, a
 * directory that has no marker and is not empty: a typo in a path must not scatter files into
 * someone's home directory, nor adopt data of another program. A directory that has the marker
 * is ours; files in it other than the ones above are left alone.
 *
 * @module
 */
import { join, resolve } from 'node:path'
import type { RootDatabase } from 'lmdb'
import {
  asCorruptError,
  checkDatabaseFile,
  claimDirectory,
  inspectDirectory,
  MARKER,
  MARKER_TEMP,
  openEnvironment,
  releaseDirectory,
  syncDirectory,
  writeMarker
} from './data-directory.js'
import { decodePeerRecord, encodePeerRecord } from './record-format.js'
import { StorageClosedError, StorageCorruptError } from './storage.js'
import type { PeerStorage } from './storage.js'

export { ForeignDirectoryError, StorageInUseError } from './directory-errors.js'

/** Names of the files in a data directory; see the module comment. */
export const LMDB_LAYOUT = {
  /** The marker file that says a directory holds Legion peer storage. */
  marker: MARKER,
  /** The marker being written (renamed to `marker` once synced). */
  markerTemp: MARKER_TEMP,
  /** The LMDB environment file. */
  database: 'peer.mdb',
  /** LMDB's lock file, next to the environment file. */
  lock: 'peer.mdb-lock',
  /** The key of the one record in the environment. */
  key: 'peer',
  /** The layout version the marker carries. */
  version: 1
} as const

/** Options of {@link lmdbStorage}. */
export interface LmdbStorageOptions {
  /**
   * Create the directory (and its parents) if it does not exist, and initialise an empty one.
   * When false, a missing directory fails with the file system's `ENOENT` error and one without
   * the marker with {@link ForeignDirectoryError}.
   * @default true
   */
  create?: boolean
}

/**
 * Opens (creating it if needed) the peer storage in `directory`.
 *
 * Durability: the environment is opened with syncing on (`noSync` false) and with
 * `overlappingSync` off, so an LMDB commit returns only after `fdatasync`; `save` additionally
 * awaits `db.flushed`. A resolved `save` has therefore reached the disk, not just the page cache:
 * it survives kill -9 and, as far as the OS and device honour fsync, power loss. LMDB is
 * copy-on-write with two meta pages, so a crash mid-save leaves the previous record readable.
 * Saves called in the same event turn are committed in one transaction in call order (the last
 * one wins), which also makes bursts of saves cheap.
 *
 * @example
 * ```ts
 * const storage = await lmdbStorage('./data/peer-1')
 * const record = await storage.load() // undefined on first start
 * await storage.save({ cluster: 'orders', privateKey, fold })
 * await storage.close()
 * ```
 *
 * @param directory - the peer's data directory
 * @param options - see {@link LmdbStorageOptions}
 * @returns the open storage
 * @throws {@link ForeignDirectoryError} when the directory holds other files and no marker
 * @throws {@link StorageCorruptError} when the marker names an unknown layout or the database
 * file is not an LMDB file
 * @throws {@link StorageInUseError} when this process already has the directory open
 */
export async function lmdbStorage (directory: string, options: LmdbStorageOptions = {}): Promise<PeerStorage> {
  const dir = resolve(directory)
  claimDirectory(dir)
  let db: RootDatabase<Uint8Array, string>
  try {
    await prepareDirectory(dir, options.create ?? true)
    await checkDatabaseFile(join(dir, LMDB_LAYOUT.database))
    db = openEnvironment<string>(join(dir, LMDB_LAYOUT.database))
    // The environment file may have just been created: make its directory entry durable too.
    syncDirectory(dir)
  } catch (err) {
    releaseDirectory(dir)
    throw err
  }

  let closing: Promise<void> | undefined
  const inFlight = new Set<Promise<unknown>>()

  return {
    async load () {
      if (closing !== undefined) throw new StorageClosedError()
      let stored: Uint8Array | undefined
      try {
        stored = db.get(LMDB_LAYOUT.key)
      } catch (cause) {
        throw asCorruptError(cause) ?? cause
      }
      return stored === undefined ? undefined : decodePeerRecord(stored)
    },
    save (record) {
      if (closing !== undefined) return Promise.reject(new StorageClosedError())
      let written: Promise<boolean>
      try {
        // Encoded and queued synchronously, so LMDB applies saves in call order.
        written = db.put(LMDB_LAYOUT.key, encodePeerRecord(record))
      } catch (err) {
        return Promise.reject(err)
      }
      const saved = (async () => {
        await written
        await db.flushed
      })()
      inFlight.add(saved)
      const forget = (): void => { inFlight.delete(saved) }
      saved.then(forget, forget)
      return saved
    },
    close () {
      closing ??= (async () => {
        try {
          await Promise.allSettled([...inFlight])
          await db.close()
        } finally {
          releaseDirectory(dir)
        }
      })()
      return closing
    }
  }
}

/**
 * Makes sure `dir` is ours: has the marker of layout 1, or is absent/empty and then gets one.
 * Creates nothing in a directory that fails the check.
 */
async function prepareDirectory (dir: string, create: boolean): Promise<void> {
  const found = await inspectDirectory(dir, create)
  if (found === 'empty') {
    await writeMarker(dir, LMDB_LAYOUT.version)
  } else if (found.layout !== String(LMDB_LAYOUT.version)) {
    throw new StorageCorruptError('unknown-version', `${dir} has storage layout ${found.layout}; this adapter reads layout ${LMDB_LAYOUT.version} (open layout 2 with lmdbKeyValueStore)`)
  }
}
