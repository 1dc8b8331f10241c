/**
 * The acceptance suite every {@link KeyValueStore} adapter must pass, written once against the
 * contract (`key-value.ts`, whose numbered promises the test names follow): an adapter's test
 * file calls {@link runKeyValueStoreTests} with a setup function and gets the whole
 * specification as `node:test` tests. What only a durable adapter must do (damage on disk,
 * crashes, directories, migration) is tested next to that adapter. Random cases come from a
 * fixed-seed generator, so a failure names a case that replays; the suite loads `node:test`
 * and stays out of the storage index.
 *
 * @module
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { KEY_VALUE_LIMITS } from './key-value.js'
import type { KeyRange, KeyValueEntry, KeyValueOperation, KeyValueStore, KeyValueView } from './key-value.js'

/** What {@link runKeyValueStoreTests} needs for one test: a fresh, empty store and how to reopen it. */
export interface KeyValueStoreFixture {
  /** An open store over empty data. */
  store: KeyValueStore
  /** Opens a new store over the same data (call after closing `store`). */
  reopen: () => Promise<KeyValueStore>
  /** Releases the data (temp directories etc.); called once per test, after the stores were closed. */
  teardown: () => Promise<void>
}

/**
 * Registers the key-value store acceptance tests under `describe(name)`. `setup` is called
 * once per test and must return an empty store.
 *
 * @example
 * ```ts
 * runKeyValueStoreTests('memory', async () => {
 *   const store = memoryKeyValueStore()
 *   return { store, reopen: async () => memoryKeyValueStore({ data: store.data }), teardown: async () => {} }
 * })
 * ```
 *
 * @param name - the adapter's name, for the test report
 * @param setup - creates fresh, empty data and a store over it
 */
export function runKeyValueStoreTests (name: string, setup: () => Promise<KeyValueStoreFixture>): void {
  /** Runs `body` on a fresh fixture; closes every store it opened and tears down. */
  async function withStore (body: (store: KeyValueStore, reopen: () => Promise<KeyValueStore>) => Promise<void>): Promise<void> {
    const fixture = await setup()
    const opened: KeyValueStore[] = [fixture.store]
    const reopen = async (): Promise<KeyValueStore> => {
      const store = await fixture.reopen()
      opened.push(store)
      return store
    }
    try {
      await body(fixture.store, reopen)
    } finally {
      for (const store of opened) await store.close()
      await fixture.teardown()
    }
  }

  describe(`key-value store acceptance: ${name}`, () => {
    test('an empty store has no values, no entries and no namespaces', async () => {
      await withStore(async store => {
        assert.equal(await store.get(bytes(1)), undefined)
        assert.deepEqual(await entries(store), [])
        assert.deepEqual(await names(store), [])
      })
    })

    test('a put value reads back with equal bytes, for empty, edge-byte and longest keys', async () => {
      await withStore(async store => {
        const longest = new Uint8Array(KEY_VALUE_LIMITS.maxKeyBytes).fill(0xff)
        const cases: Array<[Uint8Array, Uint8Array]> = [
          [bytes(), bytes(9)], [bytes(0), bytes()], [bytes(0, 0), bytes(1, 2)], [bytes(0xff), bytes(0, 0xff)], [longest, bytes(7)]
        ]
        await store.batch(cases.map(([key, value]) => ({ type: 'put', key, value })))
        for (const [key, value] of cases) assert.deepEqual(await store.get(key), value)
        assert.equal(await store.get(bytes(0, 1)), undefined)
      })
    })

    test('the last write of a key wins, within a batch and across batches; delete removes it', async () => {
      await withStore(async store => {
        await store.batch([put(bytes(1), bytes(1)), put(bytes(1), bytes(2)), put(bytes(2), bytes(1)), { type: 'delete', key: bytes(2) }])
        assert.deepEqual(await store.get(bytes(1)), bytes(2))
        assert.equal(await store.get(bytes(2)), undefined)
        await store.batch([{ type: 'delete', key: bytes(1) }, put(bytes(1), bytes(3))])
        assert.deepEqual(await store.get(bytes(1)), bytes(3))
        await store.delete(bytes(1))
        await store.delete(bytes(1)) // deleting an absent key is not an error
        assert.equal(await store.get(bytes(1)), undefined)
      })
    })

    test('1. range visits keys in bytewise order, a prefix before its extensions', async () => {
      await withStore(async store => {
        const keys = [bytes(0xff, 0xff), bytes(1), bytes(), bytes(0, 1), bytes(0x7f), bytes(0), bytes(0xff), bytes(0, 0), bytes(0x80)]
        await store.batch(keys.map(key => put(key, key)))
        const sorted = [...keys].sort(Buffer.compare)
        assert.deepEqual((await entries(store)).map(e => e.key), sorted)
        assert.deepEqual((await entries(store, { reverse: true })).map(e => e.key), [...sorted].reverse())
        for (const entry of await entries(store)) assert.deepEqual(entry.value, entry.key)
      })
    })

    test('1. range agrees with a sorted model for random keys, bounds, directions and limits', async () => {
      await withStore(async store => {
        const random = seeded(0x5eed)
        const alphabet = [0, 1, 2, 0x7f, 0xfe, 0xff]
        const randomKey = (): Uint8Array => Uint8Array.from({ length: random(5) }, () => alphabet[random(alphabet.length)]!)
        const model = new Map<string, Uint8Array>()
        const operations: KeyValueOperation[] = []
        for (let i = 0; i < 700; i++) {
          const key = randomKey()
          model.set(hex(key), key)
          operations.push(put(key, bytes(i & 0xff)))
        }
        await store.batch(operations)
        const modelKeys = [...model.values()].sort(Buffer.compare)
        for (let query = 0; query < 150; query++) {
          const range: { -readonly [K in keyof KeyRange]: KeyRange[K] } = {}
          if (random(3) === 0) range.prefix = randomKey()
          if (random(2) === 0) range.gte = randomKey()
          if (random(2) === 0) range.lt = randomKey()
          if (random(2) === 0) range.reverse = true
          if (random(3) === 0) range.limit = random(40)
          let expected = modelKeys.filter(key =>
            (range.prefix === undefined || Buffer.compare(key.subarray(0, range.prefix.length), range.prefix) === 0) &&
            (range.gte === undefined || Buffer.compare(key, range.gte) >= 0) &&
            (range.lt === undefined || Buffer.compare(key, range.lt) < 0))
          if (range.reverse === true) expected.reverse()
          if (range.limit !== undefined) expected = expected.slice(0, range.limit)
          const found = (await entries(store, range)).map(e => e.key)
          assert.deepEqual(found.map(hex), expected.map(hex), `query ${query}: ${describeRange(range)}`)
        }
      })
    })

    test('6. scans cross page boundaries in both directions, by count and by value size', async () => {
      await withStore(async store => {
        const view = store.namespace('pages')
        const count = 2100
        await view.batch(Array.from({ length: count }, (_, i) => put(u32(i), u32(i * 7))))
        const forward = await entries(view)
        assert.equal(forward.length, count)
        forward.forEach((entry, i) => { assert.deepEqual(entry.key, u32(i)); assert.deepEqual(entry.value, u32(i * 7)) })
        const backward = await entries(view, { reverse: true, lt: u32(1600), limit: 1100 })
        assert.deepEqual(backward.map(e => readU32(e.key)), Array.from({ length: 1100 }, (_, i) => 1599 - i))
        assert.equal((await entries(view, { gte: u32(511), limit: 513 })).length, 513)

        const large = store.namespace('large')
        const sizes = [600_000, 700_000, 10, 900_000, 650_000]
        await large.batch(sizes.map((size, i) => put(u32(i), filled(size, i))))
        for (const reverse of [false, true]) {
          const found = await entries(large, { reverse })
          const order = reverse ? [4, 3, 2, 1, 0] : [0, 1, 2, 3, 4]
          assert.deepEqual(found.map(e => readU32(e.key)), order)
          found.forEach((entry, i) => { assert.deepEqual(entry.value, filled(sizes[order[i]!]!, order[i]!)) })
        }
      })
    })

    test('6. a scan visits each key once, in order, and every untouched key, while keys are written and deleted', async () => {
      await withStore(async store => {
        await store.batch(Array.from({ length: 1500 }, (_, i) => put(u32(i * 2), bytes(1))))
        const seen: number[] = []
        for await (const entry of store.range()) {
          seen.push(readU32(entry.key))
          if (seen.length === 100) {
            await store.batch([
              { type: 'delete', key: u32(1000) }, { type: 'delete', key: u32(2000) }, { type: 'delete', key: u32(10) },
              put(u32(1001), bytes(2)), put(u32(11), bytes(2))
            ])
          }
        }
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i - 1]! < seen[i]!, `key ${seen[i]} after ${seen[i - 1]}`)
        const visited = new Set(seen)
        for (let i = 0; i < 1500; i++) {
          const key = i * 2
          if (key !== 1000 && key !== 2000 && key !== 10) assert.ok(visited.has(key), `untouched key ${key} was not visited`)
        }
        assert.ok(visited.has(10), 'a key deleted behind the cursor had been visited before')
      })
    })

    test('a range whose bounds exclude everything is empty', async () => {
      await withStore(async store => {
        await store.batch([put(bytes(1), bytes(1)), put(bytes(2), bytes(2)), put(bytes(3), bytes(3))])
        assert.deepEqual(await entries(store, { gte: bytes(3), lt: bytes(2) }), [])
        assert.deepEqual(await entries(store, { gte: bytes(2), lt: bytes(2) }), [])
        assert.deepEqual(await entries(store, { prefix: bytes(1), gte: bytes(2) }), [])
        assert.deepEqual(await entries(store, { prefix: bytes(4) }), [])
        assert.deepEqual(await entries(store, { limit: 0 }), [])
        assert.deepEqual((await entries(store, { prefix: bytes(2), reverse: true })).map(e => e.key), [bytes(2)])
      })
    })

    test('2. namespaces are isolated from each other and from their parent', async () => {
      await withStore(async store => {
        const paths = ['', 'a', 'a/b', 'ab', 'b', 'a/b/c', 'a\u00ff']
        const views = paths.map(path => path === '' ? store : store.namespace(path))
        await Promise.all(views.map(async (view, i) => { await view.put(bytes(1), bytes(i)) }))
        for (const [i, view] of views.entries()) {
          assert.deepEqual(await view.get(bytes(1)), bytes(i), `namespace ${JSON.stringify(paths[i])}`)
          assert.deepEqual((await entries(view)).map(e => [e.key, e.value]), [[bytes(1), bytes(i)]], `scan of ${JSON.stringify(paths[i])}`)
        }
        await store.namespace('a').batch([{ type: 'delete-range' }])
        assert.equal(await store.namespace('a').get(bytes(1)), undefined)
        assert.deepEqual(await store.namespace('a/b').get(bytes(1)), bytes(2), 'a nested namespace survives its parent\'s delete-range')
        assert.deepEqual(await store.get(bytes(1)), bytes(0))
      })
    })

    test('2. namespace paths nest, and a view\'s path says where it is', async () => {
      await withStore(async store => {
        const nested = store.namespace('group').namespace('orders')
        assert.equal(nested.path, 'group/orders')
        assert.equal(store.path, '')
        await nested.put(bytes(5), bytes(6))
        assert.deepEqual(await store.namespace('group/orders').get(bytes(5)), bytes(6))
        assert.equal(await store.namespace('group').get(bytes(5)), undefined)
      })
    })

    test('2. namespaces() lists the names directly below a view that hold keys, in bytewise order', async () => {
      await withStore(async store => {
        for (const path of ['b', 'a-b', 'ab', 'a', 'group/x', 'group/y/z', 'Zebra', 'ü']) await store.namespace(path).put(bytes(), bytes())
        assert.deepEqual(await names(store), ['Zebra', 'a', 'a-b', 'ab', 'b', 'group', 'ü'])
        assert.deepEqual(await names(store.namespace('group')), ['x', 'y'])
        assert.deepEqual(await names(store.namespace('a')), [])
        await store.namespace('ab').delete(bytes())
        assert.deepEqual(await names(store), ['Zebra', 'a', 'a-b', 'b', 'group', 'ü'])
      })
    })

    test('2. invalid namespace names are refused with a RangeError, non-strings with a TypeError', async () => {
      await withStore(async store => {
        for (const name of ['', 'a//b', '/a', 'a/', 'a\u0000b', 'tab\there', 'x'.repeat(129), '\ud800', 'a\u007f']) {
          assert.throws(() => store.namespace(name), RangeError, JSON.stringify(name))
        }
        assert.throws(() => store.namespace(Array.from({ length: 5 }, () => 'x'.repeat(128)).join('/')), RangeError)
        assert.throws(() => store.namespace(7 as unknown as string), TypeError)
        await assert.rejects(store.batch([{ type: 'put', key: bytes(), value: bytes(), namespace: 'a//b' }]), RangeError)
        assert.equal(store.namespace('x'.repeat(128)).path.length, 128)
      })
    })

    test('3. one batch writes several namespaces through relative paths', async () => {
      await withStore(async store => {
        await store.batch([
          { type: 'put', namespace: 'group/a', key: bytes(1), value: bytes(1) },
          { type: 'put', namespace: 'group/b', key: bytes(1), value: bytes(2) },
          { type: 'put', key: bytes(1), value: bytes(3) }
        ])
        await store.namespace('group').batch([{ type: 'delete', namespace: 'a', key: bytes(1) }, { type: 'put', key: bytes(1), value: bytes(4) }])
        assert.equal(await store.namespace('group/a').get(bytes(1)), undefined)
        assert.deepEqual(await store.namespace('group/b').get(bytes(1)), bytes(2))
        assert.deepEqual(await store.namespace('group').get(bytes(1)), bytes(4))
        assert.deepEqual(await store.get(bytes(1)), bytes(3))
      })
    })

    test('3. batches naming many namespaces, again and again, write each key into the namespace named', async () => {
      await withStore(async store => {
        // More names than a view might remember, then the first ones again.
        const names = Array.from({ length: 100 }, (_, i) => `g/n${i}`)
        for (const round of [0, 1]) {
          await store.batch(names.map((namespace, i) => ({ type: 'put' as const, namespace, key: bytes(round), value: bytes(i) })))
        }
        for (const [i, name] of names.entries()) {
          assert.deepEqual(await store.namespace(name).get(bytes(0)), bytes(i), name)
          assert.deepEqual(await store.namespace(name).get(bytes(1)), bytes(i), name)
        }
        await assert.rejects(store.batch([{ type: 'put', namespace: 'g/n0', key: bytes(2), value: bytes(0) }, { type: 'put', namespace: 'g//x', key: bytes(2), value: bytes(0) }]), RangeError)
        assert.equal(await store.namespace('g/n0').get(bytes(2)), undefined, 'a known name beside an invalid one writes nothing')
      })
    })

    test('3. a batch with an invalid operation is refused whole: nothing of it is written', async () => {
      await withStore(async store => {
        const bad: unknown[] = [
          { type: 'put', key: 'text', value: bytes() },
          { type: 'put', key: bytes(), value: [1] },
          { type: 'upsert', key: bytes(), value: bytes() },
          { type: 'put', key: new Uint8Array(KEY_VALUE_LIMITS.maxKeyBytes + 1), value: bytes() },
          { type: 'delete-range', range: { gte: 'a' } },
          null
        ]
        for (const [i, operation] of bad.entries()) {
          const operations = [put(bytes(1), bytes(i)), operation] as KeyValueOperation[]
          await assert.rejects(store.batch(operations), (err: unknown) => {
            assert.ok(err instanceof TypeError || err instanceof RangeError, `case ${i}: ${String(err)}`)
            assert.match((err as Error).message, /operations\[1\]/)
            return true
          })
          assert.equal(await store.get(bytes(1)), undefined, `case ${i} wrote part of a refused batch`)
        }
      })
    })

    test('3. delete-range removes the keys within its bounds, in one namespace only', async () => {
      await withStore(async store => {
        const view = store.namespace('n')
        await view.batch(Array.from({ length: 50 }, (_, i) => put(bytes(i), bytes(i))))
        await store.namespace('m').put(bytes(20), bytes(1))
        await view.batch([{ type: 'delete-range', range: { gte: bytes(10), lt: bytes(20) } }, put(bytes(15), bytes(99))])
        assert.deepEqual((await entries(view)).map(e => e.key[0]), [...Array.from({ length: 10 }, (_, i) => i), 15, ...Array.from({ length: 30 }, (_, i) => 20 + i)])
        await view.batch([{ type: 'delete-range', range: { prefix: bytes(15) } }])
        assert.equal(await view.get(bytes(15)), undefined)
        await view.batch([{ type: 'delete-range' }])
        assert.deepEqual(await entries(view), [])
        assert.deepEqual(await store.namespace('m').get(bytes(20)), bytes(1))
      })
    })

    test('4. batches are applied and resolve in call order, whatever view they go through', async () => {
      await withStore(async (store, reopen) => {
        const settled: number[] = []
        const calls: Array<Promise<void>> = []
        for (let i = 1; i <= 30; i++) {
          const view = i % 2 === 0 ? store : store.namespace('odd')
          calls.push(view.batch([put(bytes(1), bytes(i)), { type: 'put', namespace: i % 2 === 0 ? 'odd' : undefined, key: bytes(2), value: bytes(i) }])
            .then(() => { settled.push(i) }))
        }
        await Promise.all(calls)
        assert.deepEqual(settled, Array.from({ length: 30 }, (_, i) => i + 1))
        assert.deepEqual(await store.get(bytes(1)), bytes(30))
        assert.deepEqual(await store.namespace('odd').get(bytes(1)), bytes(29))
        assert.deepEqual(await store.namespace('odd').get(bytes(2)), bytes(30))
        await store.close()
        const again = await reopen()
        assert.deepEqual(await again.namespace('odd').get(bytes(2)), bytes(30))
      })
    })

    test('5. a reader sees a batch whole or not at all, and whole once it resolved', async () => {
      await withStore(async store => {
        const view = store.namespace('whole')
        const size = 400 // within one page of a scan, which one read sees at once
        let resolved = false
        const writing = view.batch(Array.from({ length: size }, (_, i) => put(u32(i), bytes(1)))).then(() => { resolved = true })
        const deadline = Date.now() + 10_000
        for (let poll = 0; !resolved && poll < 10_000 && Date.now() < deadline; poll++) {
          const count = (await entries(view)).length
          assert.ok(count === 0 || count === size, `a reader saw ${count} of the batch's ${size} keys`)
          await new Promise(resolve => setImmediate(resolve))
        }
        await writing
        assert.equal((await entries(view)).length, size)
      })
    })

    test('a store reopened after close sees every resolved batch', async () => {
      await withStore(async (store, reopen) => {
        await store.namespace('group/a').put(bytes(1), bytes(1))
        await store.put(bytes(2), bytes(2))
        await store.close()
        const again = await reopen()
        assert.deepEqual(await again.namespace('group/a').get(bytes(1)), bytes(1))
        assert.deepEqual(await names(again), ['group'])
        await again.batch([{ type: 'delete', key: bytes(2) }, put(bytes(3), bytes(3))])
        await again.close()
        const third = await reopen()
        assert.deepEqual((await entries(third)).map(e => e.key), [bytes(3)])
      })
    })

    test('9. a batch called just before close still completes', async () => {
      await withStore(async (store, reopen) => {
        const writing = store.put(bytes(4), bytes(4))
        const closed = store.close()
        await writing
        await closed
        assert.deepEqual(await (await reopen()).get(bytes(4)), bytes(4))
      })
    })

    test('7. keys and values are copied when passed and when returned', async () => {
      await withStore(async store => {
        const key = bytes(1, 2)
        const value = bytes(3, 4)
        const operations: KeyValueOperation[] = [{ type: 'put', key, value }]
        const writing = store.batch(operations)
        key.fill(9)
        value.fill(9)
        operations.length = 0
        await writing
        const read = await store.get(bytes(1, 2))
        assert.deepEqual(read, bytes(3, 4))
        read!.fill(7)
        const [entry] = await entries(store)
        assert.deepEqual(entry, { key: bytes(1, 2), value: bytes(3, 4) })
        entry!.key.fill(7)
        entry!.value.fill(7)
        assert.deepEqual(await entries(store), [{ key: bytes(1, 2), value: bytes(3, 4) }])
        const putValue = bytes(5)
        const putting = store.put(bytes(6), putValue)
        putValue[0] = 0
        await putting
        assert.deepEqual(await store.get(bytes(6)), bytes(5))
      })
    })

    test('9. after close every call on the store and its views rejects with StorageClosedError; close is idempotent', async () => {
      await withStore(async store => {
        const view = store.namespace('v')
        await view.put(bytes(1), bytes(1))
        const scan = store.namespace('v').range()[Symbol.asyncIterator]()
        await store.close()
        await store.close()
        const closed = { name: 'StorageClosedError' }
        for (const target of [store, view]) {
          await assert.rejects(target.get(bytes(1)), closed)
          await assert.rejects(target.put(bytes(1), bytes(1)), closed)
          await assert.rejects(target.delete(bytes(1)), closed)
          await assert.rejects(target.batch([]), closed)
          await assert.rejects(entries(target), closed)
          await assert.rejects(names(target), closed)
        }
        await assert.rejects(scan.next(), closed)
        await assert.rejects(store.namespace('w').get(bytes()), closed)
      })
    })

    test('an 8 MB value round-trips, also after reopening', async () => {
      await withStore(async (store, reopen) => {
        const value = filled(8 * 1024 * 1024, 3)
        await store.put(bytes(1), value)
        assert.deepEqual(await store.get(bytes(1)), value)
        await store.close()
        assert.deepEqual(await (await reopen()).get(bytes(1)), value)
      })
    })

    test('wrong argument types are a TypeError naming the argument; oversized keys and bad limits a RangeError', async () => {
      await withStore(async store => {
        const oversized = new Uint8Array(KEY_VALUE_LIMITS.maxKeyBytes + 1)
        await assert.rejects(store.get('k' as unknown as Uint8Array), { name: 'TypeError', message: /key/ })
        await assert.rejects(store.get(oversized), RangeError)
        await assert.rejects(store.put(bytes(), 'v' as unknown as Uint8Array), { name: 'TypeError', message: /value/ })
        await assert.rejects(store.batch('ops' as unknown as KeyValueOperation[]), { name: 'TypeError', message: /operations/ })
        assert.throws(() => store.range({ limit: -1 }), RangeError)
        assert.throws(() => store.range({ limit: 1.5 }), RangeError)
        assert.throws(() => store.range({ reverse: 'yes' as unknown as boolean }), { name: 'TypeError', message: /range\.reverse/ })
        assert.throws(() => store.range({ gte: oversized }), RangeError)
        assert.throws(() => store.range({ prefix: [1] as unknown as Uint8Array }), { name: 'TypeError', message: /range\.prefix/ })
      })
    })
  })
}

function put (key: Uint8Array, value: Uint8Array): KeyValueOperation {
  return { type: 'put', key, value }
}

function bytes (...values: number[]): Uint8Array {
  return Uint8Array.from(values)
}

/** A 4-byte big-endian key, so that numeric order is key order. */
function u32 (n: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n)
  return out
}

function readU32 (key: Uint8Array): number {
  return new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(0)
}

function filled (size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (seed * 31 + i * 7 + (i >>> 9)) & 0xff
  return out
}

function hex (key: Uint8Array): string {
  return Buffer.from(key).toString('hex')
}

function describeRange (range: KeyRange): string {
  return JSON.stringify(range, (_, value: unknown) => value instanceof Uint8Array ? `0x${hex(value)}` : value)
}

async function entries (view: KeyValueView, range?: KeyRange): Promise<KeyValueEntry[]> {
  const out: KeyValueEntry[] = []
  for await (const entry of view.range(range)) out.push(entry)
  return out
}

async function names (view: KeyValueView): Promise<string[]> {
  const out: string[] = []
  for await (const name of view.namespaces()) out.push(name)
  return out
}

/** A deterministic generator: `random(n)` is an integer in [0, n). */
function seeded (seed: number): (n: number) => number {
  let state = seed >>> 0
  return n => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state % n
  }
}
