/**
 * The durable {@link KeyValueStore}: a data directory in layout 2, on LMDB (the `lmdb`
 * package). Every promise of the contract (`key-value.ts`) holds, and a resolved batch has
 * reached the disk (synced), so it survives kill -9 and, as far as the OS and device honour
 * fsync, power loss. It knows nothing of what keys and values mean. Depends on the keyspace, the
 * LMDB driver, the data directory discipline and the layout migration only.
 *
 * Directory layout (layout version 2):
 * ```
 * <directory>/LEGION-PEER        marker: "legion-peer-storage\nlayout 2\n"; says the directory is ours
 * <directory>/store.mdb          LMDB environment (one file): physical keys (keyspace.ts) to
 *                                checksummed value frames (lmdb-driver.ts)
 * <directory>/store.mdb-lock     LMDB's lock file (reader table), recreated as needed
 * <directory>/LEGION-PEER.tmp    only transiently, while the marker is being written
 * ```
 * Opening a directory:
 * - absent or empty: created as layout 2 (unless `create` is false);
 * - marker layout 2: opened (removing `peer.mdb` and `peer.mdb-lock` if a conversion left them);
 * - marker layout 1 (written by `lmdbStorage`): converted in place first, crash-safely (see
 *   `layout-migration.ts`); the old record is then readable with `readLegacyPeerRecord`. With
 *   `migrate: false`, refused with {@link LegacyLayoutError} and left untouched;
 * - a marker of another layout: refused with `StorageCorruptError` (`unknown-version`);
 * - anything else that is not empty: refused with `ForeignDirectoryError`, nothing created.
 * A directory is open at most once per process, whichever adapter opened it
 * (`StorageInUseError`).
 *
 * Concurrency: batches are committed in call order; batches called in the same event turn
 * share one commit (and one fsync), each still all or nothing. A scan reads pages through
 * short read transactions, so a long scan never holds back LMDB's page reuse.
 *
 * @module
 */
import { join, resolve } from 'node:path'
import {
  checkDatabaseFile,
  claimDirectory,
  inspectDirectory,
  openEnvironment,
  releaseDirectory,
  syncDirectory,
  writeMarker
} from './data-directory.js'
import type { KeyValueStore } from './key-value.js'
import { keyValueStoreOver } from './keyspace.js'
import { migrateLayout1, removeLayout1Files } from './layout-migration.js'
import type { MigrationStep } from './layout-migration.js'
import { LMDB_KEY_VALUE_LAYOUT, lmdbDriver } from './lmdb-driver.js'
import { StorageCorruptError } from './storage.js'

export { LMDB_KEY_VALUE_LAYOUT } from './directory-layout.js'

/**
 * The directory holds an older layout and the caller asked not to convert it
 * (`migrate: false`). Nothing was changed. Open it with `migrate: true` (the default) to
 * convert it in place, or with the adapter of that layout (`lmdbStorage` for layout 1).
 */
export class LegacyLayoutError extends Error {
  /** Always `'LegacyLayoutError'`. */
  override readonly name = 'LegacyLayoutError'
  /** The directory that was refused. */
  readonly directory: string
  /** The layout its marker names. */
  readonly layout: number

  /**
   * @param directory - the directory that was refused
   * @param layout - the layout its marker names
   */
  constructor (directory: string, layout: number) {
    super(`${directory} holds storage layout ${layout}; open it with migrate: true to convert it to layout ${LMDB_KEY_VALUE_LAYOUT.version} in place, or with lmdbStorage to keep layout ${layout}`)
    this.directory = directory
    this.layout = layout
  }
}

/** Options of {@link lmdbKeyValueStore}. */
export interface LmdbKeyValueStoreOptions {
  /**
   * Create the directory (and its parents) if it does not exist, and initialise an empty one.
   * When false, a missing directory fails with the file system's `ENOENT` error and one without
   * the marker with `ForeignDirectoryError`.
   * @default true
   */
  create?: boolean
  /**
   * Convert a layout-1 directory (written by `lmdbStorage`) in place. When false, such a
   * directory is refused with {@link LegacyLayoutError} and left as it is.
   * @default true
   */
  migrate?: boolean
}

/**
 * Opens (creating it if needed, converting a layout-1 directory) the key-value store in
 * `directory`. See the module comment for the layout and what opening does.
 *
 * @example
 * ```ts
 * const store = await lmdbKeyValueStore('./data/peer-1')
 * const orders = store.namespace('group/orders')
 * await orders.batch([
 *   { type: 'put', key: tupleKey('event', 17), value: body },
 *   { type: 'delete', key: tupleKey('event', 3) }
 * ]) // resolves once synced to disk
 * for await (const { key, value } of orders.range({ prefix: tupleKey('event') })) { ... }
 * await store.close()
 * ```
 *
 * @param directory - the peer's data directory
 * @param options - see {@link LmdbKeyValueStoreOptions}
 * @returns the open store
 * @throws `ForeignDirectoryError` when the directory holds other files and no marker
 * @throws `StorageCorruptError` when the marker names an unknown layout, a database file is not
 * an LMDB file, or the layout-1 record to convert is damaged
 * @throws `StorageInUseError` when this process already has the directory open
 * @throws {@link LegacyLayoutError} for a layout-1 directory with `migrate: false`
 */
export async function lmdbKeyValueStore (directory: string, options: LmdbKeyValueStoreOptions = {}): Promise<KeyValueStore> {
  return await openLmdbKeyValueStore(directory, options)
}

/**
 * {@link lmdbKeyValueStore} with a hook into the layout conversion, for the crash tests (which
 * kill the process between steps). Not part of the public API.
 *
 * @param directory - the data directory
 * @param options - see {@link LmdbKeyValueStoreOptions}
 * @param afterMigrationStep - called after each completed step of a conversion
 */
export async function openLmdbKeyValueStore (directory: string, options: LmdbKeyValueStoreOptions, afterMigrationStep?: (step: MigrationStep) => void): Promise<KeyValueStore> {
  if (typeof directory !== 'string') throw new TypeError('directory must be a string')
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  const dir = resolve(directory)
  claimDirectory(dir)
  try {
    const found = await inspectDirectory(dir, options.create ?? true)
    if (found === 'empty') {
      await writeMarker(dir, LMDB_KEY_VALUE_LAYOUT.version)
    } else if (found.layout === '1') {
      if (options.migrate === false) throw new LegacyLayoutError(dir, 1)
      await migrateLayout1(dir, afterMigrationStep)
    } else if (found.layout === String(LMDB_KEY_VALUE_LAYOUT.version)) {
      await removeLayout1Files(dir)
    } else {
      throw new StorageCorruptError('unknown-version', `${dir} has storage layout ${found.layout}; this build reads layouts 1 (converting it) and ${LMDB_KEY_VALUE_LAYOUT.version}`)
    }
    const database = join(dir, LMDB_KEY_VALUE_LAYOUT.database)
    await checkDatabaseFile(database)
    const db = openEnvironment<Uint8Array>(database, 'binary')
    // The environment file may have just been created: make its directory entry durable too.
    syncDirectory(dir)
    return keyValueStoreOver(lmdbDriver(db, () => { releaseDirectory(dir) }))
  } catch (err) {
    releaseDirectory(dir)
    throw err
  }
}
