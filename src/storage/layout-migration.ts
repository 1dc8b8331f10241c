/**
 * Converts a layout-1 data directory (one peer record in `peer.mdb`, written by `lmdb.ts`) into
 * layout 2 (a key-value store in `store.mdb`) in place, crash-safely: the marker file is the
 * single commit point, so a crash at any moment leaves a directory that one of the two adapters
 * reads in full. Called by `lmdb-key-value.ts` with the directory claimed; nothing else.
 *
 * Steps, and what a crash after each leaves:
 * 1. Remove `store.mdb` and its lock file if present: they can only be the remains of an
 *    earlier conversion that crashed before step 4 (the marker still says layout 1).
 * 2. Read and check the layout-1 record (a damaged record stops here with
 *    `StorageCorruptError`; the directory is unchanged).
 * 3. Write the record's fields into a new `store.mdb` in one synced commit
 *    (`legacy-peer-record.ts` says where), close it and sync the directory.
 *    Crash up to here: marker layout 1, `peer.mdb` intact; `lmdbStorage` reads the old record,
 *    and the next conversion starts again at step 1.
 * 4. Replace the marker with `layout 2` (write, sync, rename, sync the directory). This is
 *    the commit: from here on the directory is layout 2 and `store.mdb` is complete.
 * 5. Remove `peer.mdb` and its lock file. Crash between 4 and 5: the layout-2 adapter removes
 *    them when it next opens the directory.
 *
 * @module
 */
import { join } from 'node:path'
import { asCorruptError, checkDatabaseFile, fileExists, openEnvironment, removeFiles, syncDirectory, writeMarker } from './data-directory.js'
import { keyValueStoreOver } from './keyspace.js'
import { legacyPeerRecordOperations } from './legacy-peer-record.js'
import { LMDB_LAYOUT } from './lmdb.js'
import { LMDB_KEY_VALUE_LAYOUT, lmdbDriver } from './lmdb-driver.js'
import { decodePeerRecord } from './record-format.js'
import type { PeerRecord } from './storage.js'

/** A step of the conversion that has just completed (for the crash tests' hook). */
export type MigrationStep = 'record-read' | 'database-written' | 'marker-switched' | 'old-files-removed'

/**
 * Converts the layout-1 directory `dir` to layout 2 (see the module comment). The caller has
 * claimed the directory and checked that its marker says layout 1.
 *
 * @param dir - the resolved data directory
 * @param afterStep - called after each step; the crash tests kill the process there
 * @throws `StorageCorruptError` when the layout-1 record or database file is damaged
 */
export async function migrateLayout1 (dir: string, afterStep: (step: MigrationStep) => void = () => {}): Promise<void> {
  await removeIfPresent(dir, [LMDB_KEY_VALUE_LAYOUT.database, LMDB_KEY_VALUE_LAYOUT.lock])
  const record = await readLayout1Record(dir)
  afterStep('record-read')

  const database = join(dir, LMDB_KEY_VALUE_LAYOUT.database)
  const store = keyValueStoreOver(lmdbDriver(openEnvironment<Uint8Array>(database, 'binary'), () => {}))
  try {
    if (record !== undefined) await store.batch(legacyPeerRecordOperations(record))
  } finally {
    await store.close()
  }
  syncDirectory(dir)
  afterStep('database-written')

  await writeMarker(dir, LMDB_KEY_VALUE_LAYOUT.version)
  afterStep('marker-switched')

  await removeLayout1Files(dir)
  afterStep('old-files-removed')
}

/**
 * Removes the layout-1 files of a directory whose marker already says layout 2 (the remains of
 * a conversion that crashed after its commit). Does nothing, and syncs nothing, when absent.
 */
export async function removeLayout1Files (dir: string): Promise<void> {
  await removeIfPresent(dir, [LMDB_LAYOUT.database, LMDB_LAYOUT.lock])
}

async function removeIfPresent (dir: string, names: readonly string[]): Promise<void> {
  const present: string[] = []
  for (const name of names) if (await fileExists(dir, name)) present.push(name)
  if (present.length > 0) await removeFiles(dir, present)
}

/** The record in `dir/peer.mdb`, or undefined when none was saved (or the file is missing). */
async function readLayout1Record (dir: string): Promise<PeerRecord | undefined> {
  const path = join(dir, LMDB_LAYOUT.database)
  if (!(await fileExists(dir, LMDB_LAYOUT.database))) return undefined
  await checkDatabaseFile(path)
  const db = openEnvironment<string>(path)
  try {
    let stored: Uint8Array | undefined
    try {
      stored = db.get(LMDB_LAYOUT.key)
    } catch (cause) {
      throw asCorruptError(cause) ?? cause
    }
    return stored === undefined ? undefined : decodePeerRecord(stored)
  } finally {
    await db.close()
  }
}
