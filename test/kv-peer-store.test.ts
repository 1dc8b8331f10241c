/**
 * The peer store over a key-value store (`src/peer/kv-peer-store.ts`), driven directly: saves
 * of hand-built folds, read back with `load`. The runtime's use of it is covered by
 * peer-storage.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EventFold, type EventSpec, type MergeResult } from '../src/eventfold/index.js'
import { jsonCodec } from '../src/codec/index.js'
import { keyValuePeerStore } from '../src/peer/kv-peer-store.js'
import type { SomeReplica } from '../src/peer/lifecycle.js'
import type { PeerIdentity } from '../src/peer/persistence.js'
import type { KeyValueStore } from '../src/storage/key-value.js'
import { lmdbKeyValueStore } from '../src/storage/lmdb-key-value.js'
import { memoryKeyValueStore } from '../src/storage/memory-key-value.js'

const spec: EventSpec<string, string[], string> = {
  init: () => [],
  apply: (e, s) => ({ ok: true, output: e, state: [...s, e] })
}
const codecs = { event: jsonCodec, state: jsonCodec, output: jsonCodec }
const identity: PeerIdentity = { cluster: 'c', privateKey: new Uint8Array(32).fill(7) }

/** A fold of group `id` shared by a and b, with `outstanding` events of a that b has not seen. */
function replica (id: string, outstanding: number): SomeReplica {
  return pair(id, outstanding).replica
}

/** {@link replica}, and b's fold. */
function pair (id: string, outstanding: number): { replica: SomeReplica, b: EventFold<string, string[], string> } {
  const fold = EventFold.create(`c\u0000${id}`, 'a', spec)
  fold.participate('b')
  const b = EventFold.fromSnapshot(fold.snapshot(), 'b', spec)
  b.acknowledge()
  ok(fold.mergeFull(b.snapshot()))
  for (let i = 0; i < outstanding; i++) fold.event(`e${i}`)
  // The store reads only these three of a replica.
  return { replica: { id, fold, definition: { codecs } } as unknown as SomeReplica, b }
}

function ok (r: MergeResult<string>): void {
  if (!r.ok) throw r.error
}

/** The records `load` finds for group `id`: how many outstanding events and logs. */
async function storedCounts (store: KeyValueStore, id: string): Promise<{ events: number, logs: number, checkpoint: boolean } | undefined> {
  const loaded = await keyValuePeerStore(store).load()
  const group = loaded?.groups.get(id)
  if (group === undefined) return undefined
  assert.equal(group.kind, 'records')
  return { events: group.events.length, logs: group.logs.length, checkpoint: group.infimum.length > 0 }
}

test('a save writes a group\'s checkpoint, logs and outstanding events, and load reads them back', async () => {
  const store = memoryKeyValueStore()
  const peerStore = keyValuePeerStore(store)
  const g = replica('g', 3)
  await peerStore.save(identity, [g], [])
  assert.deepEqual(await storedCounts(store, 'g'), { events: 3, logs: g.fold!.snapshot().logs.length, checkpoint: true })
})

test('a group dropped and held again within one save is written whole after the drop', async () => {
  // The drop deletes every record of the group; the replica saved in the same batch must not be
  // compared with what was saved of it before, or the unchanged records are never written again.
  const store = memoryKeyValueStore()
  const peerStore = keyValuePeerStore(store)
  const g = replica('g', 3)
  await peerStore.save(identity, [g], [])
  const before = await storedCounts(store, 'g')
  await peerStore.save(identity, [g], ['g'])
  assert.deepEqual(await storedCounts(store, 'g'), before)
  // And the next save, with nothing changed, writes nothing and keeps them.
  await peerStore.save(identity, [g], [])
  assert.deepEqual(await storedCounts(store, 'g'), before)
})

test('a group dropped and not held is deleted, and others stay', async () => {
  const store = memoryKeyValueStore()
  const peerStore = keyValuePeerStore(store)
  const g = replica('g', 2)
  const h = replica('h', 1)
  await peerStore.save(identity, [g, h], [])
  await peerStore.save(identity, [h], ['g'])
  assert.equal(await storedCounts(store, 'g'), undefined)
  assert.equal((await storedCounts(store, 'h'))?.events, 1)
})

for (const adapter of ['memory', 'lmdb'] as const) {
  test(`after a restart (${adapter}), the records of events that folded since are deleted by the keys load read`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'legion-kv-peer-store-'))
    t.after(async () => { await rm(dir, { recursive: true, force: true }) })
    const store = adapter === 'memory' ? memoryKeyValueStore() : await lmdbKeyValueStore(dir)
    try {
      const { replica: g, b } = pair('g', 3)
      await keyValuePeerStore(store).save(identity, [g], [])
      assert.equal((await storedCounts(store, 'g'))?.events, 3)
      // A new store over the same records, as at a restart: it knows them only by what load read.
      const restarted = keyValuePeerStore(store)
      assert.notEqual(await restarted.load(), undefined)
      const fold = g.fold!
      ok(b.mergeFull(fold.snapshot()))
      b.acknowledge()
      ok(fold.mergeFull(b.snapshot()))
      assert.equal(fold.outstandingEvents().length, 0)
      await restarted.save(identity, [g], [])
      assert.deepEqual(await storedCounts(store, 'g'), { events: 0, logs: fold.snapshot().logs.length, checkpoint: true })
    } finally {
      await store.close()
    }
  })
}
