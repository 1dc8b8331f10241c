/**
 * A peer's persistence over the key-value store: every group recovered, each save writing only
 * what changed, nothing acknowledged leaving before it is saved (per group), and data
 * directories of the previous format (one record per peer) taken over on recover.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startPeer } from '../src/peer/start.js'
import type { Legion } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { EventFold } from '../src/eventfold/event-fold.js'
import { encodeEventFold } from '../src/codec/eventfold.js'
import { jsonCodec } from '../src/codec/json.js'
import { defineService } from '../src/peer/services.js'
import { lmdbKeyValueStore, lmdbStorage, memoryKeyValueStore, type KeyValueOperation, type KeyValueStore } from '../src/storage/index.js'
import { FakeNetwork, ManualClock, advanceUntil, advanceUntilSettled, seededRandom, settleTurns } from './support/fake-network.js'
import { readTupleKey } from '../src/storage/tuple-key.js'

const logSpec: EventSpec<string, string[], number> = { init: () => [], apply: (e, s) => ({ ok: true, output: s.length, state: [...s, e] }) }
const notes = defineService({
  name: 'notes',
  needs: ['groups'],
  create: ({ groups }) => ({ book: groups.clusterWide('book', { spec: logSpec }) })
})
type Peer = Legion<string, string[], number, { notes: typeof notes }>

function world (): { start: (startup: Parameters<typeof startPeer>[0]['startup'], storage?: KeyValueStore) => Promise<Peer>, stop: () => Promise<void>, clock: ManualClock } {
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const peers: Peer[] = []
  let seed = 1
  return {
    clock,
    start: async (startup, storage) => {
      const p = await startPeer({ cluster: 'storage-test', spec: logSpec, services: { notes }, startup, ...(storage !== undefined ? { storage } : {}) }, { network: async k => await net.node(k), clock, random: seededRandom(seed++) })
      peers.push(p)
      return p
    },
    stop: async () => { await Promise.all(peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) })) }
  }
}

/** `inner` with its `batch` replaced by `batch`, and `extra` beside it. */
function withBatch<X extends object> (inner: KeyValueStore, batch: (ops: readonly KeyValueOperation[]) => Promise<void>, extra: X): KeyValueStore & X {
  return Object.assign(Object.create(inner) as KeyValueStore, {
    batch,
    namespace: (name: string) => inner.namespace(name),
    get: async (key: Uint8Array) => await inner.get(key),
    range: (range?: Parameters<KeyValueStore['range']>[0]) => inner.range(range),
    close: async () => { await inner.close() }
  }, extra)
}

/** A key-value store that records every batch, and can hold them until released. */
function recording (inner: KeyValueStore): KeyValueStore & { batches: KeyValueOperation[][], hold: () => () => void } {
  const batches: KeyValueOperation[][] = []
  let gate: Promise<void> = Promise.resolve()
  return withBatch(inner, async ops => { batches.push([...ops]); await gate; await inner.batch(ops) }, {
    batches,
    hold: () => { let open = (): void => {}; gate = new Promise<void>(resolve => { open = resolve }); return open }
  })
}

/** A key-value store whose next `n` batches fail, as on a full disk, after `fail(n)`. */
function failing (inner: KeyValueStore): KeyValueStore & { fail: (n: number) => void } {
  let left = 0
  return withBatch(inner, async ops => {
    if (left > 0) { left--; throw new Error('no space left on device') }
    await inner.batch(ops)
  }, { fail: (n: number) => { left = n } })
}

test('saves that fail send nothing they held, are counted, and are tried again until one succeeds', async () => {
  const w = world()
  const store = failing(memoryKeyValueStore())
  const a = await w.start({ mode: 'new' }, store)
  const b = await w.start({ mode: 'join', peers: a.multiaddrs() })
  await advanceUntilSettled(w.clock, b.applyConsistent('first', { timeoutMs: 5000 }), 'the first event')
  store.fail(3)
  const second = a.applyConsistent('second', { timeoutMs: 30_000 })
  await advanceUntil(w.clock, () => a.stats().counters.saveFailures >= 1, 'a failed save')
  assert.ok(!b.readState().projected.includes('second'), 'the event left a before it was saved')
  await advanceUntilSettled(w.clock, second, 'the event, once a save succeeds')
  assert.equal(a.stats().counters.saveFailures, 3)
  await advanceUntil(w.clock, () => b.readState().infimum.includes('second'), 'b folds the event')
  await w.stop()
})

test('a peer recovers every group it holds from its key-value store, as the same participant', async () => {
  const w = world()
  const a = await w.start({ mode: 'new' })
  const store = memoryKeyValueStore()
  const b = await w.start({ mode: 'join', peers: a.multiaddrs() }, store)
  await b.applyConsistent('cluster-note', { timeoutMs: 5000 })
  await b.services.notes.book.applyConsistent('book-note', { timeoutMs: 5000 })
  await b.stop({ leave: false })
  const again = await w.start({ mode: 'recover', peers: a.multiaddrs() }, memoryKeyValueStore({ data: store.data }))
  assert.equal(again.self, b.self)
  assert.deepEqual(again.readState().infimum, ['cluster-note'])
  assert.deepEqual(again.services.notes.book.readState().infimum, ['book-note'])
  await w.stop()
})

test('a save writes what changed (one event, its group\'s infimum), not the fold it belongs to', async () => {
  const w = world()
  const store = recording(memoryKeyValueStore())
  const a = await w.start({ mode: 'new' }, store)
  for (let i = 0; i < 300; i++) await a.services.notes.book.applyConsistent(`note-${i}`)
  store.batches.length = 0
  await a.services.notes.book.applyConsistent('one-more')
  await settleTurns() // the save runs at the end of the tick
  const ops = store.batches.flat()
  // the folded event, the infimum it reaches and the log it grew (or, now and then, a
  // checkpoint of the infimum and the deletion of the settled records it replaces, and the log)
  assert.ok(ops.length > 0 && ops.length <= 4, `${ops.length} operations: ${JSON.stringify(ops.map(o => [o.type, o.namespace]))}`)
  assert.ok(ops.every(o => o.namespace === 'groups'), 'only the group that changed is written')
  await w.stop()
})

test('what saves write does not grow with the settled state, and recovery folds the settled events back onto the checkpoint', async () => {
  const w = world()
  const inner = memoryKeyValueStore()
  const store = recording(inner)
  const a = await w.start({ mode: 'new' }, store)
  const note = (i: number): string => `note-${i}-${'x'.repeat(100)}`
  for (let i = 0; i < 100; i++) await a.services.notes.book.applyConsistent(note(i))
  await settleTurns()
  store.batches.length = 0
  for (let i = 100; i < 400; i++) {
    await a.services.notes.book.applyConsistent(note(i))
    await settleTurns(5) // the save of this event runs before the next one
  }
  const written = store.batches.flat().reduce((n, o) => n + (o.type === 'put' ? o.value.length : 0), 0)
  const stateBytes = JSON.stringify(a.services.notes.book.readState().infimum).length
  // 300 saves of about 150 bytes of events each, plus a checkpoint of the state now and then:
  // about 4x the final state. Rewriting the settled state at every save wrote 187x (8.3 MB).
  assert.equal(store.batches.length, 300, 'one save per event')
  assert.ok(written < 10 * stateBytes, `300 saves wrote ${written} bytes for a settled state of ${stateBytes}`)
  const expected = a.services.notes.book.readState().infimum
  await a.stop({ leave: false })
  const again = await w.start({ mode: 'recover' }, memoryKeyValueStore({ data: inner.data }))
  assert.deepEqual(again.services.notes.book.readState().infimum, expected)
  await again.services.notes.book.applyConsistent('after', { timeoutMs: 5000 })
  assert.equal(again.services.notes.book.readState().infimum.length, 401)
  await w.stop()
})

test('a peer recovered from settled records holds every log as it was: the runs it missed while down chain on, and none is refused', async () => {
  const w = world()
  const a = await w.start({ mode: 'new' })
  const store = memoryKeyValueStore()
  const b = await w.start({ mode: 'join', peers: a.multiaddrs() }, store)
  const note = (who: string, i: number): string => `${who}-${i}-${'x'.repeat(100)}`
  for (let i = 0; i < 30; i++) {
    await a.services.notes.book.applyConsistent(note('a', i), { timeoutMs: 5000 })
    await b.services.notes.book.applyConsistent(note('b', i), { timeoutMs: 5000 })
  }
  await advanceUntil(w.clock, () => b.services.notes.book.readState().infimum.length === 60, 'everything folded at b')
  await settleTurns()
  const settledCreators = new Set<string>()
  for await (const { key } of memoryKeyValueStore({ data: store.data }).namespace('groups').range()) {
    const parts = readTupleKey(key)
    if (parts[0] === 'notes/book' && parts[1] === 's') settledCreators.add(String(parts[3]))
  }
  assert.deepEqual([...settledCreators].sort(), [a.self, b.self].sort(), 'b saved events of both creators as settled records')
  const expected = b.services.notes.book.readState().infimum
  await b.stop({ leave: false })
  for (let i = 30; i < 35; i++) a.services.notes.book.applyFast(note('a', i)) // b misses these
  const again = await w.start({ mode: 'recover', peers: a.multiaddrs() }, memoryKeyValueStore({ data: store.data }))
  assert.deepEqual(again.services.notes.book.readState().infimum, expected, 'recovered: the checkpoint and the settled records')
  await advanceUntil(w.clock, () => again.services.notes.book.readState().projected.length === 65, 'what a wrote while b was down reached b')
  await again.services.notes.book.applyConsistent(note('b', 30), { timeoutMs: 5000 })
  await advanceUntil(w.clock, () => a.services.notes.book.readState().infimum.length === 66, 'a folded b\'s event after recovery')
  assert.deepEqual(again.services.notes.book.readState().infimum, a.services.notes.book.readState().infimum)
  // (A recovered peer asks for one sync whatever it saved; a log recovered wrong would show as
  // a run refused for a gap, or as forged.)
  const c = again.stats().counters
  assert.deepEqual({ mergeRefusals: c.mergeRefusals, droppedForged: c.droppedForged }, { mergeRefusals: 0, droppedForged: 0 })
  await w.stop()
})

test('a settled event record missing from storage is a corrupt data directory, not a state to run on', async () => {
  const w = world()
  const store = memoryKeyValueStore()
  const a = await w.start({ mode: 'new' }, store)
  const settledKeys = async (): Promise<Uint8Array[]> => {
    const keys: Uint8Array[] = []
    for await (const { key } of store.namespace('groups').range()) if (readTupleKey(key)[1] === 's') keys.push(key)
    return keys
  }
  // Until the last saves appended settled events rather than checkpointing.
  for (let i = 0; i < 200 && (await settledKeys()).length < 2; i++) {
    await a.services.notes.book.applyConsistent(`note-${i}-${'x'.repeat(100)}`)
    await settleTurns()
  }
  const settled = (await settledKeys())[0]
  assert.ok(settled !== undefined, 'the last events are stored as settled records')
  await a.stop({ leave: false })
  const reopened = memoryKeyValueStore({ data: store.data })
  await reopened.batch([{ type: 'delete', namespace: 'groups', key: settled }])
  await assert.rejects(w.start({ mode: 'recover' }, memoryKeyValueStore({ data: store.data })), (err: Error) => /settled events/.test(err.message) || /settled events/.test(String((err as { cause?: unknown }).cause)))
  await w.stop()
})

test('a format 5 data directory whose groups hold settled records is refused with LegacyFoldError; once the peer that wrote it saved a checkpoint, it migrates', async () => {
  // Written by main at 33826cd (format 5) with the notes service above: a 150-character note
  // in each group, then n0..n2 and c0..c2, one save each (the last ones appended as settled
  // records); then that build recovered the directory once (its first save checkpoints).
  type Records = Array<[string, string, string]>
  const fixture = JSON.parse(readFileSync(new URL('./fixtures/format5-settled-store.json', import.meta.url), 'utf8')) as { settled: Records, checkpointed: Records }
  const storeOf = async (records: Records): Promise<KeyValueStore> => {
    const store = memoryKeyValueStore()
    await store.batch(records.map(([namespace, key, value]) => ({ type: 'put' as const, namespace, key: Buffer.from(key, 'hex'), value: Buffer.from(value, 'hex') })))
    return store
  }
  assert.ok(fixture.settled.some(([namespace, key]) => namespace === 'groups' && readTupleKey(Buffer.from(key, 'hex'))[1] === 's'), 'the fixture holds settled records')
  const w = world()
  await assert.rejects(w.start({ mode: 'recover' }, await storeOf(fixture.settled)), (err: Error) => {
    const cause = (err as { cause?: unknown }).cause as { name?: string, settled?: number, outstanding?: number } | undefined
    return err.name === 'RecoverError' && cause?.name === 'LegacyFoldError' && cause.outstanding === 0 && cause.settled! > 0
  })
  const migrated = await w.start({ mode: 'recover' }, await storeOf(fixture.checkpointed))
  assert.deepEqual(migrated.services.notes.book.readState().infimum, ['x'.repeat(150), 'n0', 'n1', 'n2'])
  assert.deepEqual(migrated.readState().infimum, ['y'.repeat(150), 'c0', 'c1', 'c2'])
  await migrated.services.notes.book.applyConsistent('n3', { timeoutMs: 5000 })
  await w.stop()
})

test('no acknowledgement of a group leaves the peer before the batch holding it is saved', async () => {
  const w = world()
  const a = await w.start({ mode: 'new' })
  const store = recording(memoryKeyValueStore())
  const b = await w.start({ mode: 'join', peers: a.multiaddrs() }, store)
  await w.clock.advance(2000)
  const open = store.hold()
  const pending = a.services.notes.book.applyConsistent('needs-b', { timeoutMs: 60_000 })
  await w.clock.advance(3000) // b merges and acknowledges; several anti-entropy rounds pass
  assert.ok(b.services.notes.book.readState().projected.includes('needs-b'), 'b merged the event')
  assert.equal(a.services.notes.book.readState().outstanding, 1, 'b\'s acknowledgement left before b saved it')
  open()
  let folded = false
  void pending.then(() => { folded = true })
  for (let i = 0; i < 40 && !folded; i++) await w.clock.advance(250)
  assert.equal(folded, true, 'the acknowledgement leaves once saved')
  await w.stop()
})

/** A manual clock that, while `holding`, keeps the end-of-tick callbacks (the flush) for the test to run. */
class HeldFlushClock extends ManualClock {
  holding = false
  readonly held: Array<() => void> = []
  override defer (fn: () => void): void {
    if (this.holding) this.held.push(fn)
    else super.defer(fn)
  }
}

test('with nothing to save, a flush sends in the turn it runs; with storage, only once the save is done', async () => {
  for (const storage of [undefined, memoryKeyValueStore()]) {
    const clock = new HeldFlushClock()
    const net = new FakeNetwork(clock)
    const peers: Peer[] = []
    for (const [i, startup] of [{ mode: 'new' as const }, { mode: 'join' as const, peers: [] as string[] }].entries()) {
      const s = startup.mode === 'join' ? { ...startup, peers: peers[0]!.multiaddrs() } : startup
      peers.push(await startPeer({ cluster: 'gate-test', spec: logSpec, services: { notes }, startup: s, ...(i === 0 && storage !== undefined ? { storage } : {}) }, { network: async k => await net.node(k), clock, random: seededRandom(i + 1) }))
    }
    await advanceUntil(clock, () => peers.every(p => p.readState().participants.length === 2 && p.readState().outstanding === 0), 'both peers settled')
    const [a] = peers as [Peer]
    const sent = (): number => net.sentBy.get(a.self)?.get('fold') ?? 0
    clock.holding = true
    a.services.notes.book.applyFast('now')
    assert.equal(clock.held.length, 1, 'the flush waits for the end of the tick')
    const before = sent()
    clock.held.shift()!()
    if (storage === undefined) {
      assert.equal(sent() - before, 1, 'no storage: the batch left in the flush\'s own turn')
    } else {
      assert.equal(sent() - before, 0, 'storage: nothing leaves before the save')
      await settleTurns(5)
      assert.equal(sent() - before, 1, 'the batch left once saved')
    }
    clock.holding = false
    await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
  }
})

test('a data directory of the single-record format is taken over on recover: same identity, same state', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'legion-migrate-'))
  try {
    // What the previous version of Legion saved: one record holding a bare EventFold.
    const key = await generateKeyPair('Ed25519')
    const self = peerIdFromPrivateKey(key).toString()
    const fold = EventFold.create('storage-test', self, logSpec)
    fold.event('written-by-the-old-format')
    const codecs = { event: jsonCodec, state: jsonCodec, output: jsonCodec } as never
    const old = await lmdbStorage(dir)
    await old.save({ cluster: 'storage-test', privateKey: privateKeyToProtobuf(key), fold: encodeEventFold(fold.snapshot(), codecs) })
    await old.close()

    const w = world()
    const peer = await w.start({ mode: 'recover' }, await lmdbKeyValueStore(dir))
    assert.equal(peer.self, self)
    assert.deepEqual(peer.readState().infimum, ['written-by-the-old-format'])
    await peer.applyConsistent('written-by-the-new-one')
    await peer.stop({ leave: false })
    const reopened = await w.start({ mode: 'recover' }, await lmdbKeyValueStore(dir))
    assert.deepEqual(reopened.readState().infimum, ['written-by-the-old-format', 'written-by-the-new-one'])
    await w.stop()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
