/**
 * Converting layout-1 data directories (one peer record, written by `lmdbStorage`) to layout 2
 * (the key-value store): in place on open, the old record readable through
 * `readLegacyPeerRecord`, damaged or unwanted conversions refused without a change, and a
 * SIGKILL at any moment of the conversion leaving a directory that one of the two adapters reads
 * in full.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { open } from 'lmdb'
import { assertSameRecord, sampleRecord } from '../src/storage/acceptance.js'
import type { KeyValueStore } from '../src/storage/key-value.js'
import { LEGACY_PEER_RECORD_NAMESPACE, legacyPeerRecordOperations, readLegacyPeerRecord } from '../src/storage/legacy-peer-record.js'
import { LMDB_LAYOUT, lmdbStorage } from '../src/storage/lmdb.js'
import { LMDB_KEY_VALUE_LAYOUT, lmdbKeyValueStore } from '../src/storage/lmdb-key-value.js'
import { memoryKeyValueStore } from '../src/storage/memory-key-value.js'
import type { PeerRecord } from '../src/storage/storage.js'
import { tupleKey } from '../src/storage/tuple-key.js'

const root = fileURLToPath(new URL('..', import.meta.url))

/** Runs `body` with a layout-1 directory holding `record` (or none), removed afterwards. */
async function withLayout1 (record: PeerRecord | undefined, body: (directory: string) => Promise<void>): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'legion-migration-'))
  const directory = join(base, 'peer')
  try {
    const storage = await lmdbStorage(directory)
    if (record !== undefined) await storage.save(record)
    await storage.close()
    await body(directory)
  } finally {
    await rm(base, { recursive: true, force: true })
  }
}

async function layoutOf (directory: string): Promise<string> {
  return (await readFile(join(directory, LMDB_LAYOUT.marker), 'utf8')).split('\n')[1]!
}

async function withStore (directory: string, body: (store: KeyValueStore) => Promise<void>): Promise<void> {
  const store = await lmdbKeyValueStore(directory)
  try {
    await body(store)
  } finally {
    await store.close()
  }
}

const LAYOUT_2_FILES = [LMDB_KEY_VALUE_LAYOUT.marker, LMDB_KEY_VALUE_LAYOUT.database, LMDB_KEY_VALUE_LAYOUT.lock].sort()

describe('layout-1 directories', () => {
  test('a directory written by lmdbStorage is converted in place on open, and its record reads back whole', async () => {
    const record = sampleRecord(4, 300_000, 'orders-ü')
    await withLayout1(record, async directory => {
      await withStore(directory, async store => {
        assertSameRecord(await readLegacyPeerRecord(store), record)
        await store.namespace('group/root').put(tupleKey('x'), Uint8Array.of(1))
      })
      assert.equal(await layoutOf(directory), 'layout 2')
      assert.deepEqual((await readdir(directory)).sort(), LAYOUT_2_FILES)
      await withStore(directory, async store => {
        assertSameRecord(await readLegacyPeerRecord(store), record)
        assert.deepEqual(await store.namespace('group/root').get(tupleKey('x')), Uint8Array.of(1))
      })
      await assert.rejects(lmdbStorage(directory), { name: 'StorageCorruptError', reason: 'unknown-version' })
    })
  })

  test('a directory that never saved converts to a store without a legacy record', async () => {
    await withLayout1(undefined, async directory => {
      await withStore(directory, async store => {
        assert.equal(await readLegacyPeerRecord(store), undefined)
      })
      assert.equal(await layoutOf(directory), 'layout 2')
    })
  })

  test('the legacy record is deleted by the batch that stores what replaces it', async () => {
    await withLayout1(sampleRecord(2, 1000), async directory => {
      await withStore(directory, async store => {
        await store.batch([
          { type: 'put', namespace: 'group/root', key: tupleKey('snapshot'), value: Uint8Array.of(9) },
          { type: 'delete-range', namespace: LEGACY_PEER_RECORD_NAMESPACE }
        ])
        assert.equal(await readLegacyPeerRecord(store), undefined)
      })
    })
  })

  test('a damaged record is refused with StorageCorruptError, and the directory stays layout 1 as it was', async () => {
    await withLayout1(sampleRecord(3, 5000), async directory => {
      const db = open<Uint8Array, string>({ path: join(directory, LMDB_LAYOUT.database), noSubdir: true, encoding: 'binary', overlappingSync: false })
      const damaged = new Uint8Array(db.get(LMDB_LAYOUT.key)!)
      damaged[300] = damaged[300]! ^ 0x01
      await db.put(LMDB_LAYOUT.key, damaged)
      await db.close()
      const before = (await readdir(directory)).sort()
      await assert.rejects(lmdbKeyValueStore(directory), { name: 'StorageCorruptError', reason: 'checksum' })
      assert.equal(await layoutOf(directory), 'layout 1')
      assert.deepEqual((await readdir(directory)).sort(), before)
      const old = await lmdbStorage(directory)
      await assert.rejects(old.load(), { name: 'StorageCorruptError', reason: 'checksum' })
      await old.close()
    })
  })

  test('migrate: false refuses the directory with LegacyLayoutError and changes nothing', async () => {
    const record = sampleRecord(5, 2000)
    await withLayout1(record, async directory => {
      await assert.rejects(lmdbKeyValueStore(directory, { migrate: false }), { name: 'LegacyLayoutError', layout: 1 })
      assert.equal(await layoutOf(directory), 'layout 1')
      const old = await lmdbStorage(directory)
      assertSameRecord(await old.load(), record)
      await old.close()
    })
  })

  test('the remains of a conversion that crashed before its commit are discarded and the conversion redone', async () => {
    const record = sampleRecord(6, 4000)
    await withLayout1(record, async directory => {
      await writeFile(join(directory, LMDB_KEY_VALUE_LAYOUT.database), new Uint8Array(4096).fill(0xaa))
      await withStore(directory, async store => { assertSameRecord(await readLegacyPeerRecord(store), record) })
    })
  })

  test('readLegacyPeerRecord works on any store, and refuses a record that lacks a field', async () => {
    const store = memoryKeyValueStore()
    const record = sampleRecord(7, 100)
    await store.batch(legacyPeerRecordOperations(record))
    assertSameRecord(await readLegacyPeerRecord(store), record)
    await store.namespace(LEGACY_PEER_RECORD_NAMESPACE).delete(tupleKey('fold'))
    await assert.rejects(readLegacyPeerRecord(store), { name: 'StorageCorruptError', reason: 'invalid' })
    await store.close()
  })
})

describe('layout-1 conversion under SIGKILL', () => {
  const steps = [
    { step: 'record-read', layout: 'layout 1' },
    { step: 'database-written', layout: 'layout 1' },
    { step: 'marker-switched', layout: 'layout 2' },
    { step: 'old-files-removed', layout: 'layout 2' }
  ]
  for (const { step, layout } of steps) {
    test(`killed right after step ${step}: the directory is ${layout}, readable in full, and converts on the next open`, { timeout: 60_000 }, async () => {
      const record = sampleRecord(8, 2 * 1024 * 1024, 'crash')
      await withLayout1(record, async directory => {
        const { signal } = await runChild(directory, `step:${step}`, undefined)
        assert.equal(signal, 'SIGKILL')
        await assertReadableAfterCrash(directory, record, layout)
      })
    })
  }

  test('killed at a random moment of a long conversion: the old or the new layout, each whole', { timeout: 120_000 }, async t => {
    const record = sampleRecord(9, 24 * 1024 * 1024, 'crash')
    // Calibration: how long a whole conversion takes in a child here, so kills land within it.
    let spanMs = 0
    await withLayout1(record, async directory => {
      const { opened, openingToOpenedMs } = await runChild(directory, 'timed', undefined)
      assert.ok(opened)
      spanMs = openingToOpenedMs
    })
    t.diagnostic(`a whole conversion took ${spanMs} ms in a child`)
    const seen: string[] = []
    const rounds = 6
    for (let round = 1; round <= rounds; round++) {
      await withLayout1(record, async directory => {
        // Stratified over a little more than the span, so the kills spread over every step and
        // one may land after the end (which must find the conversion complete).
        const delayMs = Math.floor((round - 1 + Math.random()) / rounds * spanMs * 1.2)
        const { signal, opened } = await runChild(directory, 'timed', delayMs)
        const layout = await layoutOf(directory)
        t.diagnostic(`round ${round}: killed ${delayMs} ms after opening began (${signal ?? 'exited'}, opened: ${String(opened)}): ${layout}`)
        seen.push(layout)
        await assertReadableAfterCrash(directory, record, layout)
      })
    }
    t.diagnostic(`layouts found after the kills: ${seen.join(', ')}`)
  })
})

/**
 * After a crash: the marker names `layout`; a layout-1 directory still loads `record` through
 * the old adapter; either way, the new adapter then opens it with `record` as legacy record and
 * no layout-1 file left.
 */
async function assertReadableAfterCrash (directory: string, record: PeerRecord, layout: string): Promise<void> {
  assert.equal(await layoutOf(directory), layout)
  if (layout === 'layout 1') {
    const old = await lmdbStorage(directory)
    assertSameRecord(await old.load(), record)
    await old.close()
  }
  await withStore(directory, async store => { assertSameRecord(await readLegacyPeerRecord(store), record) })
  assert.equal(await layoutOf(directory), 'layout 2')
  assert.deepEqual((await readdir(directory)).sort(), LAYOUT_2_FILES)
}

/**
 * Runs the migration child; with `killAfterMs`, SIGKILLs it that long after it printed
 * `opening` (unless it finished first).
 */
async function runChild (directory: string, mode: string, killAfterMs: number | undefined): Promise<{ signal: NodeJS.Signals | null, opened: boolean, openingToOpenedMs: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/migration-crash-child.ts'), directory, mode], {
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
  const guard = setTimeout(() => { child.kill('SIGKILL') }, 50_000)
  let killer: NodeJS.Timeout | undefined
  let opened = false
  let openingAt = performance.now()
  let openedAt = Number.NaN
  const lines = createInterface({ input: child.stdout })
  lines.on('line', line => {
    if (line === 'opening') {
      openingAt = performance.now()
      if (killAfterMs !== undefined) killer = setTimeout(() => { child.kill('SIGKILL') }, killAfterMs)
    }
    if (line === 'opened') {
      opened = true
      openedAt = performance.now()
    }
  })
  const { code, signal } = await exited
  clearTimeout(guard)
  clearTimeout(killer)
  lines.close()
  assert.ok(signal === 'SIGKILL' || code === 0, `child exited with code ${String(code)}: ${stderr}`)
  return { signal, opened, openingToOpenedMs: Math.round(openedAt - openingAt) }
}
