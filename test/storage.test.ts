/**
 * Peer storage: the acceptance suite for the memory and lmdb adapters, then what only a durable
 * adapter must do — detect damage on disk, refuse foreign directories and other clusters'
 * data without writing, and keep every awaited save through a SIGKILL.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { open } from 'lmdb'
import { assertSameRecord, runStorageAcceptanceTests, sampleRecord } from '../src/storage/acceptance.js'
import { LMDB_LAYOUT, lmdbStorage } from '../src/storage/lmdb.js'
import { memoryStorage } from '../src/storage/memory.js'
import { openPeerStorageFor } from '../src/storage/storage.js'
import type { PeerStorage, StorageCorruptReason } from '../src/storage/storage.js'
import { crashRecord, crashRecordNumber } from './support/storage-crash-record.js'

const root = fileURLToPath(new URL('..', import.meta.url))

async function tempRoot (): Promise<string> {
  return await mkdtemp(join(tmpdir(), 'legion-storage-'))
}

runStorageAcceptanceTests('memory', async () => {
  const storage = memoryStorage()
  return {
    storage,
    reopen: async () => memoryStorage({ store: storage.store }),
    teardown: async () => {}
  }
})

runStorageAcceptanceTests('lmdb', async () => {
  const base = await tempRoot()
  const directory = join(base, 'peer')
  return {
    storage: await lmdbStorage(directory),
    reopen: async () => await lmdbStorage(directory),
    teardown: async () => { await rm(base, { recursive: true, force: true }) }
  }
})

/** Runs `body` with a fresh data directory (not yet created) that is removed afterwards. */
async function withDirectory (body: (directory: string) => Promise<void>): Promise<void> {
  const base = await tempRoot()
  try {
    await body(join(base, 'peer'))
  } finally {
    await rm(base, { recursive: true, force: true })
  }
}

/** Reads or rewrites the stored value behind the adapter's back (the storage must be closed). */
async function withRawDatabase<T> (directory: string, body: (get: () => Uint8Array | undefined, put: (value: Uint8Array) => Promise<void>) => Promise<T>): Promise<T> {
  const db = open<Uint8Array, string>({
    path: join(directory, LMDB_LAYOUT.database),
    noSubdir: true,
    encoding: 'binary',
    overlappingSync: false
  })
  try {
    return await body(
      () => { const value = db.get(LMDB_LAYOUT.key); return value === undefined ? undefined : new Uint8Array(value) },
      async value => { await db.put(LMDB_LAYOUT.key, value) }
    )
  } finally {
    await db.close()
  }
}

async function saveAndClose (directory: string, record = sampleRecord(1, 5000)): Promise<void> {
  const storage = await lmdbStorage(directory)
  await storage.save(record)
  await storage.close()
}

async function assertLoadCorrupt (directory: string, reason: StorageCorruptReason): Promise<void> {
  const storage = await lmdbStorage(directory)
  try {
    await assert.rejects(storage.load(), (err: unknown) => {
      assert.ok(err instanceof Error)
      assert.equal(err.name, 'StorageCorruptError')
      assert.equal((err as Error & { reason: string }).reason, reason)
      return true
    })
  } finally {
    await storage.close()
  }
}

describe('lmdb storage on disk', () => {
  test('a record with a flipped byte is refused on load with StorageCorruptError, and left as it was', async () => {
    await withDirectory(async directory => {
      await saveAndClose(directory)
      const damaged = await withRawDatabase(directory, async (get, put) => {
        const value = get()
        assert.ok(value !== undefined)
        value[200] = value[200]! ^ 0x01
        await put(value)
        return value
      })
      await assertLoadCorrupt(directory, 'checksum')
      const after = await withRawDatabase(directory, async get => get())
      assert.deepEqual(after, damaged)
    })
  })

  test('a truncated record is refused as truncated', async () => {
    await withDirectory(async directory => {
      await saveAndClose(directory)
      await withRawDatabase(directory, async (get, put) => { await put(get()!.subarray(0, 1000)) })
      await assertLoadCorrupt(directory, 'truncated')
    })
  })

  test('a record of an unknown format version is refused as unknown-version', async () => {
    await withDirectory(async directory => {
      await saveAndClose(directory)
      await withRawDatabase(directory, async (get, put) => {
        const value = get()!
        value[4] = 2
        await put(value)
      })
      await assertLoadCorrupt(directory, 'unknown-version')
    })
  })

  test('a database file that is not LMDB is refused on open, without crashing the process', async () => {
    await withDirectory(async directory => {
      await saveAndClose(directory)
      await rm(join(directory, LMDB_LAYOUT.lock), { force: true })
      await writeFile(join(directory, LMDB_LAYOUT.database), new Uint8Array(100_000).fill(3))
      await assert.rejects(lmdbStorage(directory), { name: 'StorageCorruptError', reason: 'bad-magic' })
      // Refusal released the directory: a later open is still judged on the file, not "in use".
      await assert.rejects(lmdbStorage(directory), { name: 'StorageCorruptError' })
    })
  })

  test('a non-empty directory without the marker is refused and nothing is created in it', async () => {
    await withDirectory(async directory => {
      await mkdir(directory)
      await writeFile(join(directory, 'notes.txt'), 'mine')
      await assert.rejects(lmdbStorage(directory), (err: unknown) => {
        assert.ok(err instanceof Error)
        assert.equal(err.name, 'ForeignDirectoryError')
        assert.equal((err as Error & { directory: string }).directory, directory)
        return true
      })
      assert.deepEqual(await readdir(directory), ['notes.txt'])
    })
  })

  test('a database without the marker (someone else\'s LMDB) is refused', async () => {
    await withDirectory(async directory => {
      await saveAndClose(directory)
      await rm(join(directory, LMDB_LAYOUT.marker))
      await assert.rejects(lmdbStorage(directory), { name: 'ForeignDirectoryError' })
    })
  })

  test('a marker of another layout version is refused as unknown-version; a foreign marker as foreign', async () => {
    await withDirectory(async directory => {
      await saveAndClose(directory)
      await writeFile(join(directory, LMDB_LAYOUT.marker), 'legion-peer-storage\nlayout 2\n')
      await assert.rejects(lmdbStorage(directory), { name: 'StorageCorruptError', reason: 'unknown-version' })
      await writeFile(join(directory, LMDB_LAYOUT.marker), 'something else\n')
      await assert.rejects(lmdbStorage(directory), { name: 'ForeignDirectoryError' })
    })
  })

  test('an empty directory is adopted; with create: false it is refused and a missing one is not created', async () => {
    await withDirectory(async directory => {
      await assert.rejects(lmdbStorage(directory, { create: false }), { code: 'ENOENT' })
      await mkdir(directory)
      await assert.rejects(lmdbStorage(directory, { create: false }), { name: 'ForeignDirectoryError' })
      assert.deepEqual(await readdir(directory), [])
      const storage = await lmdbStorage(directory)
      await storage.close()
      assert.deepEqual((await readdir(directory)).sort(), [LMDB_LAYOUT.marker, LMDB_LAYOUT.database, LMDB_LAYOUT.lock].sort())
      const again = await lmdbStorage(directory, { create: false })
      await again.close()
    })
  })

  test('a directory already open in this process is refused until it is closed', async () => {
    await withDirectory(async directory => {
      const storage = await lmdbStorage(directory)
      await assert.rejects(lmdbStorage(join(directory, '..', 'peer')), { name: 'StorageInUseError' })
      await storage.close()
      const again = await lmdbStorage(directory)
      await again.close()
    })
  })

  test('a data directory of another cluster is refused with WrongClusterError and its bytes are unchanged', async () => {
    await withDirectory(async directory => {
      await saveAndClose(directory, sampleRecord(9, 4000, 'alpha'))
      const before = await withRawDatabase(directory, async get => get())
      const storage = await lmdbStorage(directory)
      let bound: PeerStorage | undefined
      try {
        await assert.rejects(openPeerStorageFor(storage, 'beta'), { name: 'WrongClusterError', expected: 'beta', found: 'alpha' })
        bound = await openPeerStorageFor(storage, 'alpha')
        await assert.rejects(bound.save(sampleRecord(10, 10, 'beta')), { name: 'WrongClusterError' })
      } finally {
        await storage.close()
      }
      const after = await withRawDatabase(directory, async get => get())
      assert.deepEqual(after, before)
      const reopened = await lmdbStorage(directory)
      assertSameRecord(await reopened.load(), sampleRecord(9, 4000, 'alpha'))
      await reopened.close()
    })
  })

  test('every save the child reported as awaited survives SIGKILL at a random moment', { timeout: 120_000 }, async t => {
    await withDirectory(async directory => {
      let lastReported = 0
      for (let round = 1; round <= 4; round++) {
        const killAfter = 3 + Math.floor(Math.random() * 25)
        const reported = await runChildUntilKilled(directory, killAfter)
        t.diagnostic(`round ${round}: killed after ${reported.count} reported saves (asked for ${killAfter}), last reported ${reported.last}`)
        assert.ok(reported.count >= 3, `the child reported ${reported.count} saves before dying`)
        assert.ok(reported.last > lastReported)
        lastReported = reported.last

        const storage = await lmdbStorage(directory)
        try {
          const record = await storage.load() // throws StorageCorruptError on a torn record
          assert.ok(record !== undefined, 'no record survived although saves were reported')
          const n = crashRecordNumber(record)
          assert.ok(n >= lastReported, `loaded record ${n} is older than the last reported save ${lastReported}`)
          assertSameRecord(record, crashRecord(n))
          lastReported = n
        } finally {
          await storage.close()
        }
      }
    })
  })
})

/**
 * Starts the crash child on `directory` and SIGKILLs it as soon as it has reported `killAfter`
 * awaited saves. Resolves with how many saves it reported and the number of the last one.
 */
async function runChildUntilKilled (directory: string, killAfter: number): Promise<{ count: number, last: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/storage-crash-child.ts'), directory, '2000'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.on('exit', (code, signal) => { resolve({ code, signal }) })
  })
  // A guard, not synchronisation: a wedged child fails the test instead of hanging it.
  const guard = setTimeout(() => { child.kill('SIGKILL') }, 60_000)
  let count = 0
  let last = 0
  const lines = createInterface({ input: child.stdout })
  lines.on('line', line => {
    const match = /^saved (\d+)$/.exec(line)
    if (match === null) return
    count++
    last = Number(match[1])
    if (count === killAfter) child.kill('SIGKILL')
  })
  const { code, signal } = await exited
  clearTimeout(guard)
  lines.close()
  assert.equal(signal, 'SIGKILL', `child exited with code ${String(code)} before being killed: ${stderr}`)
  return { count, last }
}
