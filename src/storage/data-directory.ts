/**
 * The data directory discipline both LMDB adapters share (layout 1, one peer record, in
 * `lmdb.ts`; layout 2, a key-value store, in `lmdb-key-value.ts`): a marker file says a
 * directory is ours and which layout it holds, foreign directories are refused before anything
 * is created in them, a directory is open at most once per process, and an LMDB file is checked
 * before LMDB maps it. File system and LMDB plumbing only; no knowledge of what is stored.
 *
 * The marker `LEGION-PEER` holds two lines, `legion-peer-storage` and `layout <n>`. It is
 * written to `LEGION-PEER.tmp`, synced and renamed, so it is always either absent or complete;
 * replacing it the same way is how a migration commits.
 *
 * @module
 */
import { closeSync, fsyncSync, openSync } from 'node:fs'
import { mkdir, open as openFile, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { open } from 'lmdb'
import type { RootDatabase } from 'lmdb'
import { StorageCorruptError } from './storage.js'
import { ForeignDirectoryError, StorageInUseError } from './directory-errors.js'

import { MARKER, MARKER_TEMP } from './directory-layout.js'

export { MARKER, MARKER_TEMP }
const MARKER_TITLE = 'legion-peer-storage'

/** LMDB's meta-page magic, 0xBEEFC0DE, at the end of the page header (24 bytes in LMDB 1.x, 16 in 0.9). */
const LMDB_MAGIC = 0xbeefc0de
const LMDB_MAGIC_OFFSETS = [24, 16]

/** Directories with an open storage in this process (resolved paths), whichever the adapter. */
const openDirectories = new Set<string>()

export { ForeignDirectoryError, StorageInUseError }

/**
 * Marks `dir` (a resolved path) as open in this process.
 *
 * @throws {@link StorageInUseError} when it already is
 */
export function claimDirectory (dir: string): void {
  if (openDirectories.has(dir)) throw new StorageInUseError(dir)
  openDirectories.add(dir)
}

/** Releases a directory claimed by {@link claimDirectory}. */
export function releaseDirectory (dir: string): void {
  openDirectories.delete(dir)
}

/**
 * What `dir` holds: the layout named by its marker, `'empty'` for a directory with no entries
 * but a leftover marker temp file (creating it if missing and `create` is set), or a
 * {@link ForeignDirectoryError} for anything else.
 *
 * @throws the file system's `ENOENT` error when `dir` is missing and `create` is false
 * @throws {@link ForeignDirectoryError} for a non-empty directory without our marker, an
 * empty one when `create` is false, or a marker that is not ours
 */
export async function inspectDirectory (dir: string, create: boolean): Promise<{ layout: string } | 'empty'> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    if (!isNotFound(err) || !create) throw err
    await mkdir(dir, { recursive: true })
    entries = []
  }
  if (entries.includes(MARKER)) return { layout: await readMarkerLayout(dir) }
  const foreign = entries.filter(name => name !== MARKER_TEMP)
  if (foreign.length > 0) {
    throw new ForeignDirectoryError(dir, `${dir} is not Legion peer storage (no ${MARKER} marker) and is not empty: found ${foreign.slice(0, 5).join(', ')}`)
  }
  if (!create) throw new ForeignDirectoryError(dir, `${dir} has no ${MARKER} marker and create is false`)
  return 'empty'
}

/** The `layout <n>` line of the marker, as written (e.g. `'1'`); throws if the marker is not ours. */
async function readMarkerLayout (dir: string): Promise<string> {
  const text = await readFile(join(dir, MARKER), 'utf8')
  const [title, layout] = text.split('\n')
  if (title !== MARKER_TITLE) throw new ForeignDirectoryError(dir, `${join(dir, MARKER)} is not a Legion marker`)
  return layout?.startsWith('layout ') === true ? layout.slice('layout '.length) : String(layout)
}

/**
 * Writes (or replaces) the marker of `dir` for `layout`: write, sync, rename, sync the
 * directory, so the marker is the old one or the new one, never a torn one.
 */
export async function writeMarker (dir: string, layout: number): Promise<void> {
  const temp = join(dir, MARKER_TEMP)
  const handle = await openFile(temp, 'w')
  try {
    await handle.writeFile(`${MARKER_TITLE}\nlayout ${layout}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, join(dir, MARKER))
  syncDirectory(dir)
}

/** Removes `names` from `dir` if present, then syncs the directory. */
export async function removeFiles (dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) await rm(join(dir, name), { force: true })
  syncDirectory(dir)
}

/** Whether `dir/name` exists. */
export async function fileExists (dir: string, name: string): Promise<boolean> {
  try {
    await stat(join(dir, name))
    return true
  } catch (err) {
    if (isNotFound(err)) return false
    throw err
  }
}

/**
 * LMDB trusts its file: opening one that is not an LMDB environment can crash the process
 * (segfault) instead of throwing. So before opening, check that an existing, non-empty file
 * starts with an LMDB meta page. (An empty file is one whose creation was interrupted; LMDB
 * initialises it.)
 *
 * @throws {@link StorageCorruptError} when the file is not an LMDB environment
 */
export async function checkDatabaseFile (path: string): Promise<void> {
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

/**
 * Opens an LMDB environment in one file with durable commits: syncing on (`noSync` false) and
 * `overlappingSync` off, so a commit returns only after `fdatasync`. LMDB is copy-on-write
 * with two meta pages, so a crash mid-commit leaves the previous commit readable.
 *
 * @param path - the environment file (checked with {@link checkDatabaseFile} first)
 * @param keyEncoding - `'binary'` for byte keys; absent for lmdb's default (string keys)
 */
export function openEnvironment<K extends string | Uint8Array> (path: string, keyEncoding?: 'binary'): RootDatabase<Uint8Array, K> {
  try {
    return open<Uint8Array, K>({
      path,
      noSubdir: true,
      encoding: 'binary',
      ...(keyEncoding === undefined ? {} : { keyEncoding }),
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

/** fsync a directory, so entries created, renamed or removed in it survive power loss. */
export function syncDirectory (dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** LMDB's own corruption reports, as a {@link StorageCorruptError}; undefined for other errors. */
export function asCorruptError (cause: unknown): StorageCorruptError | undefined {
  const message = cause instanceof Error ? cause.message : String(cause)
  if (/MDB_VERSION_MISMATCH/.test(message)) return new StorageCorruptError('unknown-version', `LMDB: ${message}`, { cause })
  if (/MDB_INVALID|MDB_CORRUPTED|MDB_PAGE_NOTFOUND|MDB_BAD_/.test(message)) return new StorageCorruptError('invalid', `LMDB: ${message}`, { cause })
  return undefined
}

/** Whether `err` is the file system's "no such file". */
export function isNotFound (err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOENT'
}
