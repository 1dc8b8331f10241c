/**
 * The acceptance suite every {@link PeerStorage} adapter must pass, written once against the
 * contract (the automerge-repo pattern): an adapter's test file calls
 * {@link runStorageAcceptanceTests} with a setup function and gets the whole specification as
 * `node:test` tests. Adapter-specific behaviour (corruption on disk, crashes) is tested next to
 * the adapter, not here.
 *
 * @module
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { openPeerStorageFor } from './storage.js'
import type { PeerRecord, PeerStorage } from './storage.js'

/** What {@link runStorageAcceptanceTests} needs for one test: a fresh, empty storage and how to reopen it. */
export interface StorageAcceptanceFixture {
  /** An open storage over an empty store. */
  storage: PeerStorage
  /** Opens a new storage over the same store (call after closing `storage`). */
  reopen: () => Promise<PeerStorage>
  /** Releases the store (temp directories etc.); called once per test, after the storages were closed. */
  teardown: () => Promise<void>
}

/**
 * Registers the storage acceptance tests under `describe(name)`. `setup` is called once per
 * test and must return an empty store.
 *
 * @example
 * ```ts
 * runStorageAcceptanceTests('memory', async () => {
 *   const storage = memoryStorage()
 *   return { storage, reopen: async () => memoryStorage({ store: storage.store }), teardown: async () => {} }
 * })
 * ```
 *
 * @param name - the adapter's name, for the test report
 * @param setup - creates a fresh, empty store and a storage over it
 */
export function runStorageAcceptanceTests (name: string, setup: () => Promise<StorageAcceptanceFixture>): void {
  /** Runs `body` on a fresh fixture; closes every storage it opened and tears down. */
  async function withStorage (body: (storage: PeerStorage, reopen: () => Promise<PeerStorage>) => Promise<void>): Promise<void> {
    const fixture = await setup()
    const opened: PeerStorage[] = [fixture.storage]
    const reopen = async (): Promise<PeerStorage> => {
      const storage = await fixture.reopen()
      opened.push(storage)
      return storage
    }
    try {
      await body(fixture.storage, reopen)
    } finally {
      for (const storage of opened) await storage.close()
      await fixture.teardown()
    }
  }

  describe(`storage acceptance: ${name}`, () => {
    test('a storage that never saved loads undefined', async () => {
      await withStorage(async storage => {
        assert.equal(await storage.load(), undefined)
      })
    })

    test('a saved record loads back with equal bytes', async () => {
      await withStorage(async storage => {
        const record = sampleRecord(1, 1000, 'cluster-ü-名前')
        await storage.save(record)
        assertSameRecord(await storage.load(), record)
      })
    })

    test('empty byte fields and an empty cluster name round-trip', async () => {
      await withStorage(async storage => {
        const record: PeerRecord = { cluster: '', privateKey: new Uint8Array(0), fold: new Uint8Array(0) }
        await storage.save(record)
        assertSameRecord(await storage.load(), record)
      })
    })

    test('the last save wins', async () => {
      await withStorage(async storage => {
        for (let i = 1; i <= 5; i++) await storage.save(sampleRecord(i, 100 * i))
        assertSameRecord(await storage.load(), sampleRecord(5, 500))
      })
    })

    test('a storage reopened after close sees the last save', async () => {
      await withStorage(async (storage, reopen) => {
        await storage.save(sampleRecord(1, 64))
        await storage.save(sampleRecord(2, 128))
        await storage.close()
        const again = await reopen()
        assertSameRecord(await again.load(), sampleRecord(2, 128))
        await again.save(sampleRecord(3, 32))
        await again.close()
        assertSameRecord(await (await reopen()).load(), sampleRecord(3, 32))
      })
    })

    test('concurrent saves are serialised in call order: the last call is what stays', async () => {
      await withStorage(async (storage, reopen) => {
        const settled: number[] = []
        const saves: Array<Promise<void>> = []
        for (let i = 1; i <= 20; i++) {
          saves.push(storage.save(sampleRecord(i, 50 + i * 37)).then(() => { settled.push(i) }))
        }
        await Promise.all(saves)
        assert.deepEqual(settled, Array.from({ length: 20 }, (_, i) => i + 1), 'saves resolve in call order')
        assertSameRecord(await storage.load(), sampleRecord(20, 50 + 20 * 37))
        await storage.close()
        assertSameRecord(await (await reopen()).load(), sampleRecord(20, 50 + 20 * 37))
      })
    })

    test('a save called while earlier saves are in flight still lands last', async () => {
      await withStorage(async storage => {
        const first = storage.save(sampleRecord(1, 200_000))
        await Promise.resolve()
        const second = storage.save(sampleRecord(2, 10))
        await Promise.all([first, second])
        assertSameRecord(await storage.load(), sampleRecord(2, 10))
      })
    })

    test('a 20 MB fold round-trips, also after reopening', async () => {
      await withStorage(async (storage, reopen) => {
        const record = sampleRecord(7, 20 * 1024 * 1024)
        await storage.save(record)
        assertSameRecord(await storage.load(), record)
        await storage.close()
        assertSameRecord(await (await reopen()).load(), record)
      })
    })

    test('after close, load and save reject with StorageClosedError, and close is idempotent', async () => {
      await withStorage(async storage => {
        await storage.save(sampleRecord(1, 10))
        await storage.close()
        await storage.close()
        await assert.rejects(storage.load(), { name: 'StorageClosedError' })
        await assert.rejects(storage.save(sampleRecord(2, 10)), { name: 'StorageClosedError' })
        await storage.close()
      })
    })

    test('a save called just before close still completes', async () => {
      await withStorage(async (storage, reopen) => {
        const saved = storage.save(sampleRecord(4, 1000))
        const closed = storage.close()
        await saved
        await closed
        assertSameRecord(await (await reopen()).load(), sampleRecord(4, 1000))
      })
    })

    test('loaded bytes are copies: mutating them does not change what is stored', async () => {
      await withStorage(async storage => {
        await storage.save(sampleRecord(1, 100))
        const loaded = await storage.load()
        assert.ok(loaded !== undefined)
        loaded.fold.fill(0xee)
        loaded.privateKey.fill(0xee)
        assertSameRecord(await storage.load(), sampleRecord(1, 100))
      })
    })

    test('saved bytes are copied when save is called: later mutation does not change what is stored', async () => {
      await withStorage(async storage => {
        const record = sampleRecord(1, 100)
        const saving = storage.save(record)
        record.fold.fill(0xee)
        record.privateKey.fill(0xee)
        await saving
        assertSameRecord(await storage.load(), sampleRecord(1, 100))
      })
    })

    test('openPeerStorageFor refuses a record of another cluster and leaves it untouched', async () => {
      await withStorage(async (storage, reopen) => {
        const theirs = sampleRecord(3, 300, 'theirs')
        await storage.save(theirs)
        await assert.rejects(openPeerStorageFor(storage, 'ours'), (err: unknown) => {
          assert.ok(err instanceof Error)
          assert.equal(err.name, 'WrongClusterError')
          assert.equal((err as Error & { expected: string }).expected, 'ours')
          assert.equal((err as Error & { found: string }).found, 'theirs')
          return true
        })
        await storage.close()
        assertSameRecord(await (await reopen()).load(), theirs)
      })
    })

    test('openPeerStorageFor accepts an empty store or its own cluster, and refuses to save another cluster', async () => {
      await withStorage(async storage => {
        const bound = await openPeerStorageFor(storage, 'ours')
        assert.equal(bound.recovered, undefined)
        assert.equal(bound.cluster, 'ours')
        await bound.save(sampleRecord(1, 10, 'ours'))
        await assert.rejects(bound.save(sampleRecord(2, 10, 'theirs')), { name: 'WrongClusterError' })
        assertSameRecord(await bound.load(), sampleRecord(1, 10, 'ours'))
        const again = await openPeerStorageFor(storage, 'ours')
        assertSameRecord(again.recovered, sampleRecord(1, 10, 'ours'))
      })
    })
  })
}

/**
 * A deterministic record: `privateKey` and `fold` are filled from `seed`, `fold` has
 * `foldBytes` bytes. Equal arguments give equal records.
 */
export function sampleRecord (seed: number, foldBytes: number, cluster = 'acceptance'): PeerRecord {
  const privateKey = new Uint8Array(68)
  for (let i = 0; i < privateKey.length; i++) privateKey[i] = (seed * 31 + i * 7) & 0xff
  const fold = new Uint8Array(foldBytes)
  for (let i = 0; i < fold.length; i++) fold[i] = (seed * 13 + i * 5 + (i >>> 8)) & 0xff
  return { cluster, privateKey, fold }
}

/** Asserts `actual` is a record with the same cluster and the same bytes as `expected`. */
export function assertSameRecord (actual: PeerRecord | undefined, expected: PeerRecord): void {
  assert.ok(actual !== undefined, 'expected a stored record, found none')
  assert.equal(actual.cluster, expected.cluster)
  assert.ok(actual.privateKey instanceof Uint8Array, 'privateKey is a Uint8Array')
  assert.ok(actual.fold instanceof Uint8Array, 'fold is a Uint8Array')
  assert.ok(sameBytes(actual.privateKey, expected.privateKey), 'privateKey bytes differ')
  assert.equal(actual.fold.length, expected.fold.length, 'fold lengths differ')
  assert.ok(sameBytes(actual.fold, expected.fold), 'fold bytes differ')
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0
}
