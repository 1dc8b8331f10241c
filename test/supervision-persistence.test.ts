/**
 * Specification of state persistence across incarnations (the seed's "save and restore the state
 * in terminate and init"): the StateStore contract, run against both adapters, and what a tree
 * saves and restores, and when it does not.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  ChildStartError, defineServer, fileStateStore, ManualClock, memoryStateStore, startSupervision, supervisor, worker,
  type ServerSpec, type StateStore, type SupervisionEvent
} from '../src/supervision/index.js'
import { until } from './support/supervision-stubs.js'

const T = { timeout: 10_000 }

/** A counter that persists its count and crashes on `'crash'`; its terminate can be made to hang. */
function counter (options: { hangTerminate?: boolean } = {}): ServerSpec<string, number, number> {
  return defineServer<string, number, number>({
    init: ({ restored }) => restored ?? 0,
    step (input, n) {
      if (input === 'crash') throw new Error('crash requested')
      return { state: n + 1, output: n + 1 }
    },
    async terminate () {
      if (options.hangTerminate === true) await new Promise<void>(() => {})
    },
    persistence: {}
  })
}

async function withTempDir (body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'legion-supervision-'))
  try {
    await body(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The StateStore contract, for any adapter. */
async function storeContract (store: StateStore): Promise<void> {
  assert.equal(await store.load('missing'), undefined)
  await store.save('kv/1', new Uint8Array([1, 2, 3]))
  const loaded = await store.load('kv/1')
  assert.deepEqual(loaded, new Uint8Array([1, 2, 3]))
  loaded![0] = 99
  assert.deepEqual(await store.load('kv/1'), new Uint8Array([1, 2, 3]), 'loads are copies')
  const saved = new Uint8Array([4])
  await store.save('kv/1', saved)
  saved[0] = 5
  assert.deepEqual(await store.load('kv/1'), new Uint8Array([4]), 'a save replaces, and keeps a copy')
  await store.save('ключ ✓', new Uint8Array(0))
  assert.deepEqual(await store.load('ключ ✓'), new Uint8Array(0), 'any string key; empty bytes are not "missing"')
  await Promise.all([store.save('a', new Uint8Array([1])), store.save('b', new Uint8Array([2]))])
  assert.deepEqual([await store.load('a'), await store.load('b')], [new Uint8Array([1]), new Uint8Array([2])])
}

test('the memory state store keeps the StateStore contract', T, async () => {
  await storeContract(memoryStateStore())
})

test('the file state store keeps the StateStore contract, writes atomically and leaves no files aside', T, async () => {
  await withTempDir(async (dir) => {
    const store = fileStateStore(join(dir, 'states'))
    await storeContract(store)
    const files = await readdir(join(dir, 'states'))
    assert.ok(files.every((f) => f.endsWith('.state')), `only state files remain: ${files.join(', ')}`)
    await assert.rejects(store.save('x'.repeat(200), new Uint8Array(1)), RangeError)
    assert.equal(await fileStateStore(join(dir, 'never-written')).load('k'), undefined)
  })
})

test('a crash restarts from the state before the crashing input, which terminate saved', T, async () => {
  const clock = new ManualClock()
  const tree = await startSupervision(supervisor('root', { intensity: 10 }, [worker('count', counter())]), { clock })
  assert.equal(await tree.call('count', 'x'), 1)
  assert.equal(await tree.call('count', 'x'), 2)
  await assert.rejects(tree.call('count', 'crash'))
  await until(clock, () => tree.whichChildren()[0]!.status.incarnation === 2, 'restarted')
  assert.equal(await tree.call('count', 'x'), 3)
  await tree.stop()
})

test('a file store carries a server\'s state from one tree (one process) to the next', T, async () => {
  await withTempDir(async (dir) => {
    const first = await startSupervision(supervisor('root', {}, [worker('count', counter())]), { stateStore: fileStateStore(dir) })
    for (let i = 0; i < 5; i++) await first.call('count', 'x')
    await first.stop()
    const second = await startSupervision(supervisor('root', {}, [worker('count', counter())]), { stateStore: fileStateStore(dir) })
    assert.equal(await second.call('count', 'x'), 6)
    await second.stop()
  })
})

test('nothing is saved when terminate overruns its shutdown time or the shutdown is brutal', T, async () => {
  for (const [name, spec, shutdown] of [['overran', counter({ hangTerminate: true }), 100], ['brutal', counter(), 'brutal']] as const) {
    const clock = new ManualClock()
    const store = memoryStateStore()
    const tree = await startSupervision(supervisor('root', {}, [worker('count', spec, { shutdown })]), { clock, stateStore: store })
    await tree.call('count', 'x')
    const stopping = tree.stop()
    await clock.advance(100)
    await stopping
    assert.deepEqual(store.keys(), [], name)
  }
})

test('a save that fails is reported as an event; the server still stops', T, async () => {
  const events: SupervisionEvent[] = []
  const failing: StateStore = { load: async () => undefined, save: async () => { throw new Error('disk full') } }
  const tree = await startSupervision(supervisor('root', {}, [worker('count', counter())]), {
    clock: new ManualClock(), stateStore: failing, onEvent: (e) => events.push(e)
  })
  await tree.call('count', 'x')
  assert.deepEqual(await tree.stop(), { kind: 'shutdown' })
  const failed = events.find((e) => e.type === 'callback-failed')
  assert.ok(failed?.type === 'callback-failed')
  assert.equal(failed.callback, 'save')
  assert.equal((failed.error as Error).message, 'disk full')
})

test('saved state that no longer decodes makes init fail, with the DecodeError as cause', T, async () => {
  await withTempDir(async (dir) => {
    const store = fileStateStore(dir)
    await store.save('count', new Uint8Array([0xff]))
    await assert.rejects(
      startSupervision(supervisor('root', {}, [worker('count', counter())]), { stateStore: store }),
      (err: unknown) => err instanceof ChildStartError && (err.cause as Error).name === 'DecodeError')
  })
})
