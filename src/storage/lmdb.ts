/**
 * A durable {@link PeerStorage} in a data directory, on LMDB (the `lmdb` package). It persists
 * one record (cluster, private key, encoded fold) per directory, so a restarted peer resumes
 * as the same participant with the state it last saved. It knows nothing of what the bytes
 * mean; it guarantees only that a resolved save survives a crash and that damage is reported,
 * never returned. Depends on the storage contract, its record format and `lmdb` only.
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
import { closeSync, fsyncSync, openSync } from 'node:fs'
import { mkdir, open as openFile, readdir, readFile, rename, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { open } from 'lmdb'
import type { RootDatabase } from 'lmdb'
import { decodePeerRecord, encodePeerRecord } from './record-format.js'
import { StorageClosedError, StorageCorruptError } from './storage.js'
import type { PeerRecord, PeerStorage } from './storage.js'

/** Names of the files in a data directory; see the module comment. */
export const LMDB_LAYOUT = {
  /** The marker file that says a directory holds Legion peer storage. */
  marker: 'LEGION-PEER',
  /** The marker being written (renamed to `marker` once synced). */
  markerTemp: 'LEGION-PEER.tmp',
  /** The LMDB environment file. */
  database: 'peer.mdb',
  /** LMDB's lock file, next to the environment file. */
  lock: 'peer.mdb-lock',
  /** The key of the one record in the environment. */
  key: 'peer',
  /** The layout version the marker carries. */
  version: 1
} as const

const MARKER_TITLE = 'legion-peer-storage'
const MARKER_TEXT = `${MARKER_TITLE}\nlayout ${LMDB_LAYOUT.version}\n`
/** LMDB's meta-page magic, 0xBEEFC0DE, at the end of the page header (24 bytes in LMDB 1.x, 16 in 0.9). */
const LMDB_MAGIC = 0xbeefc0de
const LMDB_MAGIC_OFFSETS = [24, 16]

/** Directories with an open storage in this process (resolved paths). */
const openDirectories = new Set<string>()

/**
 * The directory is neither empty nor marked as Legion peer storage, so it was not opened and
 * nothing was created in it.
 */
export class ForeignDirectoryError extends Error {
  /** Always `'ForeignDirectoryError'`. */
  override readonly name = 'ForeignDirectoryError'
  /** The directory that was refused. */
  readonly directory: string

  /**
   * @param directory - the directory that was refused
   * @param message - why, for humans
   */
  constructor (directory: string, message: string) {
    super(message)
    this.directory = directory
  }
}

/**
 * The directory already has an open storage in this process: two peers writing one record would
 * silently replace each other's state. (Other processes are not detected.)
 */
export class StorageInUseError extends Error {
  /** Always `'StorageInUseError'`. */
  override readonly name = 'StorageInUseError'
  /** The directory already open. */
  readonly directory: string

  /** @param directory - the directory already open */
  constructor (directory: string) {
    super(`storage in ${directory} is already open in this process`)
    this.directory = directory
  }
}

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
  if (openDirectories.has(dir)) throw new StorageInUseError(dir)
  openDirectories.add(dir)
  let db: RootDatabase<Uint8Array, string>
  try {
    await prepareDirectory(dir, options.create ?? true)
    await checkDatabaseFile(join(dir, LMDB_LAYOUT.database))
    db = openEnvironment(join(dir, LMDB_LAYOUT.database))
    // The environment file may have just been created: make its directory entry durable too.
    syncDirectory(dir)
  } catch (err) {
    openDirectories.delete(dir)
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
          openDirectories.delete(dir)
        }
      })()
      return closing
    }
  }
}

function openEnvironment (path: string): RootDatabase<Uint8Array, string> {
  try {
    return open<Uint8Array, string>({
      path,
      noSubdir: true,
      encoding: 'binary',
      // Durability: every commit is synced before its promise resolves (see lmdbStorage).
      noSync: false,
      noMetaSync: false,
      overlappingSync: false,
      commitDelay: 0,
      maxDbs: 1
    })
  } catch (cause) {
    throw asCorruptError(cause) ?? cause
  }
}

/**
 * Makes sure `dir` is ours: has the marker (of a layout we read), or is absent/empty and then
 * gets one. Creates nothing in a directory that fails the check.
 */
async function prepareDirectory (dir: string, create: boolean): Promise<void> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    if (!isNotFound(err) || !create) throw err
    await mkdir(dir, { recursive: true })
    entries = []
  }
  if (entries.includes(LMDB_LAYOUT.marker)) {
    await checkMarker(dir)
    return
  }
  const foreign = entries.filter(name => name !== LMDB_LAYOUT.markerTemp)
  if (foreign.length > 0) {
    throw new ForeignDirectoryError(dir, `${dir} is not Legion peer storage (no ${LMDB_LAYOUT.marker} marker) and is not empty: found ${foreign.slice(0, 5).join(', ')}`)
  }
  if (!create) throw new ForeignDirectoryError(dir, `${dir} has no ${LMDB_LAYOUT.marker} marker and create is false`)
  // Write, sync, rename, sync the directory: the marker is either absent or complete.
  const temp = join(dir, LMDB_LAYOUT.markerTemp)
  const handle = await openFile(temp, 'w')
  try {
    await handle.writeFile(MARKER_TEXT)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, join(dir, LMDB_LAYOUT.marker))
  syncDirectory(dir)
}

async function checkMarker (dir: string): Promise<void> {
  const text = await readFile(join(dir, LMDB_LAYOUT.marker), 'utf8')
  const [title, layout] = text.split('\n')
  if (title !== MARKER_TITLE) {
    throw new ForeignDirectoryError(dir, `${join(dir, LMDB_LAYOUT.marker)} is not a Legion marker`)
  }
  if (layout !== `layout ${LMDB_LAYOUT.version}`) {
    throw new StorageCorruptError('unknown-version', `${dir} has storage ${String(layout)}; this build reads layout ${LMDB_LAYOUT.version}`)
  }
}

/**
 * LMDB trusts its file: opening one that is not an LMDB environment can crash the process
 * (segfault) instead of throwing. So before opening, check that an existing, non-empty file
 * starts with an LMDB meta page. (An empty file is one whose creation was interrupted; LMDB
 * initialises it.)
 */
async function checkDatabaseFile (path: string): Promise<void> {
  let size: number
  try {
    size = (await stat(path)).size
  } catch (err) {
    if (isNotFound(err)) return
    throw err
  }
  if (size === 0) return
  const handle = await openFile(path, 'r')
  try {
    const head = new Uint8Array(32)
    const { bytesRead } = await handle.read(head, 0, head.length, 0)
    const view = new DataView(head.buffer, 0, bytesRead)
    const isLmdb = LMDB_MAGIC_OFFSETS.some(offset => offset + 4 <= bytesRead && view.getUint32(offset, true) === LMDB_MAGIC)
    if (!isLmdb) {
      throw new StorageCorruptError(bytesRead < 28 ? 'truncated' : 'bad-magic', `${path} is not an LMDB environment file`)
    }
  } finally {
    await handle.close()
  }
}

/** fsync a directory, so entries created or renamed in it survive power loss. */
function syncDirectory (dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** LMDB's own corruption reports, as a {@link StorageCorruptError}; undefined for other errors. */
function asCorruptError (cause: unknown): StorageCorruptError | undefined {
  const message = cause instanceof Error ? cause.message : String(cause)
  if (/MDB_VERSION_MISMATCH/.test(message)) return new StorageCorruptError('unknown-version', `LMDB: ${message}`, { cause })
  if (/MDB_INVALID|MDB_CORRUPTED|MDB_PAGE_NOTFOUND|MDB_BAD_/.test(message)) return new StorageCorruptError('invalid', `LMDB: ${message}`, { cause })
  return undefined
}

function isNotFound (err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOENT'
}
