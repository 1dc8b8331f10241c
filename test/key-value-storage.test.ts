/**
 * Key-value storage: the acceptance suite for the memory and LMDB adapters, the tuple key
 * encoding, and what only the durable adapter must do — detect damage on disk, keep the
 * directory discipline, and keep every batch whole through a SIGKILL.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { open } from 'lmdb'
import { runKeyValueStoreTests } from '../src/storage/key-value-acceptance.js'
import { physicalPrefix } from '../src/storage/keyspace.js'
import { lmdbStorage } from '../src/storage/lmdb.js'
import { LMDB_KEY_VALUE_LAYOUT, lmdbKeyValueStore } from '../src/storage/lmdb-key-value.js'
import { memoryKeyValueStore } from '../src/storage/memory-key-value.js'
import type { StorageCorruptReason } from '../src/storage/storage.js'
import { readTupleKey, tupleKey } from '../src/storage/tuple-key.js'
import type { KeyPart } from '../src/storage/tuple-key.js'
import { assertWholeBatches } from './support/key-value-crash-batches.js'
import { propertyParameters } from './support/property.js'

const root = fileURLToPath(new URL('..', import.meta.url))

async function tempRoot (): Promise<string> {
  return await mkdtemp(join(tmpdir(), 'legion-kv-'))
}

runKeyValueStoreTests('memory', async () => {
  const store = memoryKeyValueStore()
  return { store, reopen: async () => memoryKeyValueStore({ data: store.data }), teardown: async () => {} }
})

runKeyValueStoreTests('lmdb', async () => {
  const base = await tempRoot()
  const directory = join(base, 'peer')
  return {
    store: await lmdbKeyValueStore(directory),
    reopen: async () => await lmdbKeyValueStore(directory),
    teardown: async () => { await rm(base, { recursive: true, force: true }) }
  }
})

/** Tuples compared part by part: numbers < strings < bytes; strings by code point. */
function compareTuples (a: KeyPart[], b: KeyPart[]): number {
  const rank = (part: KeyPart): number => typeof part === 'number' ? 0 : typeof part === 'string' ? 1 : 2
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!
    const y = b[i]!
    if (rank(x) !== rank(y)) return rank(x) - rank(y)
    let order: number
    if (typeof x === 'number') order = Math.sign(x - (y as number))
    else if (typeof x === 'string') order = compareCodePoints(x, y as string)
    else order = Buffer.compare(x, y as Uint8Array)
    if (order !== 0) return order
  }
  return a.length - b.length
}

function compareCodePoints (a: string, b: string): number {
  const x = [...a].map(c => c.codePointAt(0)!)
  const y = [...b].map(c => c.codePointAt(0)!)
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return x.length - y.length
}

const keyPart: fc.Arbitrary<KeyPart> = fc.oneof(
  fc.double({ noNaN: true }).map(n => (Object.is(n, -0) ? 0 : n)),
  fc.integer(),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom('', '\u0000', 'a', 'a\u0000', 'ab'),
  fc.uint8Array({ maxLength: 5 }),
  fc.constantFrom(Uint8Array.of(), Uint8Array.of(0), Uint8Array.of(0, 0xff), Uint8Array.of(0xff))
)
const tuple = fc.array(keyPart, { maxLength: 4 })

describe('tuple keys', () => {
  test('a tuple key decodes to its parts', () => {
    fc.assert(fc.property(tuple, parts => {
      assert.deepEqual(readTupleKey(tupleKey(...parts)), parts)
    }), propertyParameters('tuple key round trip', 300))
  })

  test('bytewise order of tuple keys is tuple order', () => {
    fc.assert(fc.property(tuple, tuple, (a, b) => {
      assert.equal(Math.sign(Buffer.compare(tupleKey(...a), tupleKey(...b))), Math.sign(compareTuples(a, b)))
    }), propertyParameters('tuple key order', 500))
  })

  test('the key of a tuple is a byte prefix of the key of every tuple that extends it, and of no other', () => {
    fc.assert(fc.property(tuple, tuple, (a, b) => {
      const whole = tupleKey(...a, ...b)
      const head = tupleKey(...a)
      assert.deepEqual(whole.subarray(0, head.length), head)
      const other = tupleKey(...b)
      const isPrefix = other.length <= head.length && Buffer.compare(head.subarray(0, other.length), other) === 0
      const tupleIsPrefix = b.length <= a.length && compareTuples(a.slice(0, b.length), b) === 0
      assert.equal(isPrefix, tupleIsPrefix)
    }), propertyParameters('tuple key prefixes', 300))
  })

  test('keys are the bytes stored data was written with (pinned: plain ASCII, UTF-8 with 0x00, long strings, bytes, numbers)', () => {
    const hex = (...parts: KeyPart[]): string => Buffer.from(tupleKey(...parts)).toString('hex')
    assert.equal(hex('g', 'e', 17, 'alice'), '306700003065000020c03100000000000030616c6963650000')
    assert.equal(hex('p:3.1', 's', -2.5, 'caf\u00e9\u0000\u{1F600}'), '30703a332e31000030730000203ffbffffffffffff30636166c3a900fff09f98800000')
    assert.equal(hex('x'.repeat(65) + '\u0000', Uint8Array.of(0, 1, 0xff, 0), 0, -Infinity, Infinity),
      '30' + '78'.repeat(65) + '00ff0000' + '4000ff01ff00ff0000' + '208000000000000000' + '20000fffffffffffff' + '20fff0000000000000')
    assert.equal(hex('', '\u0000', 'a\u0000b', 2 ** 53, Number.MIN_VALUE), '3000003000ff0000306100ff62000020c340000000000000208000000000000001')
  })

  test('numbers order numerically across signs and magnitudes; -0 is 0; NaN and lone surrogates are refused', () => {
    const numbers = [-Infinity, -1e300, -5, -1, -0.5, -Number.MIN_VALUE, 0, Number.MIN_VALUE, 0.5, 1, 2 ** 53, 1e300, Infinity]
    const keys = numbers.map(n => tupleKey(n))
    for (let i = 1; i < keys.length; i++) assert.ok(Buffer.compare(keys[i - 1]!, keys[i]!) < 0, `${numbers[i - 1]} before ${numbers[i]}`)
    assert.deepEqual(tupleKey(-0), tupleKey(0))
    assert.throws(() => tupleKey(Number.NaN), RangeError)
    assert.throws(() => tupleKey('\ud800'), TypeError)
    assert.throws(() => tupleKey(true as unknown as string), { name: 'TypeError', message: /parts\[0\]/ })
  })

  test('bytes that are not a tuple key are refused with KeyDecodeError', () => {
    for (const bad of [Uint8Array.of(0x99), Uint8Array.of(0x20, 1, 2), Uint8Array.of(0x30, 0x61), Uint8Array.of(0x30, 0xc3, 0x00)]) {
      assert.throws(() => readTupleKey(bad), { name: 'KeyDecodeError' })
    }
  })
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

/** Reads or rewrites a stored frame behind the store's back (the store must be closed). */
async function withRawDatabase (directory: string, body: (db: ReturnType<typeof openRaw>) => Promise<void>): Promise<void> {
  const db = openRaw(directory)
  try {
    await body(db)
  } finally {
    await db.close()
  }
}

function openRaw (directory: string) {
  return open<Uint8Array, Uint8Array>({
    path: join(directory, LMDB_KEY_VALUE_LAYOUT.database),
    noSubdir: true,
    encoding: 'binary',
    keyEncoding: 'binary',
    overlappingSync: false
  })
}

function physicalKey (namespace: string, key: Uint8Array): Uint8Array {
  return Buffer.concat([physicalPrefix(namespace), key])
}

async function assertCorrupt (directory: string, reason: StorageCorruptReason): Promise<void> {
  const store = await lmdbKeyValueStore(directory)
  try {
    const expected = { name: 'StorageCorruptError', reason }
    await assert.rejects(store.namespace('n').get(tupleKey('k')), expected)
    await assert.rejects((async () => { for await (const _ of store.namespace('n').range()) { /* reading is the test */ } })(), expected)
    assert.deepEqual(await store.namespace('n').get(tupleKey('other')), Uint8Array.of(5), 'an intact neighbour still reads')
  } finally {
    await store.close()
  }
}

async function storeAndClose (directory: string): Promise<void> {
  const store = await lmdbKeyValueStore(directory)
  await store.namespace('n').batch([
    { type: 'put', key: tupleKey('k'), value: new Uint8Array(3000).fill(7) },
    { type: 'put', key: tupleKey('other'), value: Uint8Array.of(5) }
  ])
  await store.close()
}

describe('lmdb key-value store on disk', () => {
  test('a value with a flipped byte is refused by get and by scans with StorageCorruptError, and left as it was', async () => {
    await withDirectory(async directory => {
      await storeAndClose(directory)
      let damaged: Uint8Array | undefined
      await withRawDatabase(directory, async db => {
        const frame = new Uint8Array(db.get(physicalKey('n', tupleKey('k')))!)
        frame[1000] = frame[1000]! ^ 0x10
        damaged = frame
        await db.put(physicalKey('n', tupleKey('k')), frame)
      })
      await assertCorrupt(directory, 'checksum')
      await withRawDatabase(directory, async db => { assert.deepEqual(new Uint8Array(db.get(physicalKey('n', tupleKey('k')))!), damaged) })
    })
  })

  test('a value moved under another key is refused: the checksum covers the key', async () => {
    await withDirectory(async directory => {
      await storeAndClose(directory)
      await withRawDatabase(directory, async db => {
        const frame = db.get(physicalKey('n', tupleKey('other')))!
        await db.put(physicalKey('n', tupleKey('k')), new Uint8Array(frame))
      })
      await assertCorrupt(directory, 'checksum')
    })
  })

  test('a truncated value and a frame of an unknown format are refused as such', async () => {
    await withDirectory(async directory => {
      await storeAndClose(directory)
      await withRawDatabase(directory, async db => { await db.put(physicalKey('n', tupleKey('k')), Uint8Array.of(1, 2, 3)) })
      await assertCorrupt(directory, 'truncated')
      await withRawDatabase(directory, async db => {
        const frame = new Uint8Array(db.get(physicalKey('n', tupleKey('other')))!)
        frame[0] = 2
        await db.put(physicalKey('n', tupleKey('k')), frame)
      })
      await assertCorrupt(directory, 'unknown-version')
    })
  })

  test('a new directory gets the layout-2 marker and files; foreign and unknown-layout directories are refused untouched', async () => {
    await withDirectory(async directory => {
      await assert.rejects(lmdbKeyValueStore(directory, { create: false }), { code: 'ENOENT' })
      const store = await lmdbKeyValueStore(directory)
      await store.close()
      assert.deepEqual((await readdir(directory)).sort(), [LMDB_KEY_VALUE_LAYOUT.marker, LMDB_KEY_VALUE_LAYOUT.database, LMDB_KEY_VALUE_LAYOUT.lock].sort())
      await writeFile(join(directory, LMDB_KEY_VALUE_LAYOUT.marker), 'legion-peer-storage\nlayout 3\n')
      await assert.rejects(lmdbKeyValueStore(directory), { name: 'StorageCorruptError', reason: 'unknown-version' })
      await writeFile(join(directory, LMDB_KEY_VALUE_LAYOUT.marker), 'something else\n')
      await assert.rejects(lmdbKeyValueStore(directory), { name: 'ForeignDirectoryError' })
    })
    await withDirectory(async directory => {
      await mkdir(directory)
      await writeFile(join(directory, 'notes.txt'), 'mine')
      await assert.rejects(lmdbKeyValueStore(directory), { name: 'ForeignDirectoryError', directory })
      assert.deepEqual(await readdir(directory), ['notes.txt'])
    })
  })

  test('the old adapter refuses a layout-2 directory instead of reading it as empty', async () => {
    await withDirectory(async directory => {
      await storeAndClose(directory)
      await assert.rejects(lmdbStorage(directory), { name: 'StorageCorruptError', reason: 'unknown-version' })
    })
  })

  test('a database file that is not LMDB is refused on open, without crashing the process', async () => {
    await withDirectory(async directory => {
      await storeAndClose(directory)
      await rm(join(directory, LMDB_KEY_VALUE_LAYOUT.lock), { force: true })
      await writeFile(join(directory, LMDB_KEY_VALUE_LAYOUT.database), new Uint8Array(100_000).fill(3))
      await assert.rejects(lmdbKeyValueStore(directory), { name: 'StorageCorruptError', reason: 'bad-magic' })
      await assert.rejects(lmdbKeyValueStore(directory), { name: 'StorageCorruptError' }, 'a refusal releases the directory')
    })
  })

  test('a directory open in this process is refused, through either adapter, until it is closed', async () => {
    await withDirectory(async directory => {
      const store = await lmdbKeyValueStore(directory)
      await assert.rejects(lmdbKeyValueStore(join(directory, '..', 'peer')), { name: 'StorageInUseError' })
      await assert.rejects(lmdbStorage(directory), { name: 'StorageInUseError' })
      await store.close()
      const again = await lmdbKeyValueStore(directory)
      await again.close()
    })
  })

  test('every batch survives SIGKILL whole or not at all, the survivors are a prefix, and none reported is lost', { timeout: 120_000 }, async t => {
    await withDirectory(async directory => {
      let lastReported = 0
      for (let round = 1; round <= 4; round++) {
        const killAfter = 3 + Math.floor(Math.random() * 25)
        const reported = await runChildUntilKilled(directory, killAfter)
        t.diagnostic(`round ${round}: killed after ${reported.count} committed batches (asked for ${killAfter}), last reported ${reported.last}`)
        assert.ok(reported.count >= 3, `the child reported ${reported.count} batches before dying`)
        lastReported = Math.max(lastReported, reported.last)

        const store = await lmdbKeyValueStore(directory)
        try {
          const head = await assertWholeBatches(store)
          assert.ok(head >= lastReported, `the store holds batches up to ${head}; ${lastReported} was reported committed`)
          t.diagnostic(`round ${round}: the store holds batches 1..${head}`)
          lastReported = head
        } finally {
          await store.close()
        }
      }
    })
  })
})

/**
 * Starts the crash child on `directory` and SIGKILLs it as soon as it has reported `killAfter`
 * committed batches. Resolves with how many it reported and the number of the last one.
 */
async function runChildUntilKilled (directory: string, killAfter: number): Promise<{ count: number, last: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test/support/key-value-crash-child.ts'), directory, '2000'], {
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
    const match = /^committed (\d+)$/.exec(line)
    if (match === null) return
    count++
    last = Math.max(last, Number(match[1]))
    if (count === killAfter) child.kill('SIGKILL')
  })
  const { code, signal } = await exited
  clearTimeout(guard)
  lines.close()
  assert.equal(signal, 'SIGKILL', `child exited with code ${String(code)} before being killed: ${stderr}`)
  return { count, last }
}
