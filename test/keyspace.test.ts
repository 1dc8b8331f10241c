/**
 * The keyspace over TCP: in-process peers on 127.0.0.1 running the example cache
 * (demo/cache/cache.ts). Routing from any peer, replication on the partition's owners and
 * nowhere else, the cluster-wide search, bad input, handoff under load when a peer joins, a
 * graceful stop that hands everything off first, and recovery of a peer's partitions from
 * disk.
 */
import { test, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLegion } from '../src/peer/start.js'
import type { Legion, LegionOptions } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { lmdbKeyValueStore } from '../src/storage/index.js'
import { cacheKeyspace, type Cache } from '../demo/cache/cache.js'
import { CacheLoad, missingOnReplicas } from './support/keyspace-load.js'
import { until } from './support/cluster.js'
import type { PartitionEvent } from '../src/keyspace/keyspace.js'

const noState: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
type Services = { cache: ReturnType<typeof cacheKeyspace> }
type CachePeer = Legion<null, number, number, Services>

const running: CachePeer[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
  await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
})

// Slow enough suspicion that a loaded machine (three copies of the suite at once) ejects nobody.
const fast = { heartbeatIntervalMs: 500, suspectAfterMs: 4000, stuckAfterMs: 10_000 }

function options (cluster: string, extra: Partial<LegionOptions<null, number, number, Services>> = {}, keyspace: Parameters<typeof cacheKeyspace>[0] = {}): Omit<LegionOptions<null, number, number, Services>, 'startup'> {
  return { cluster, spec: noState, services: { cache: cacheKeyspace({ partitions: 16, ...keyspace }) }, failureDetection: fast, propagation: { intervalMs: 250 }, ...extra }
}

async function startPeer (base: Omit<LegionOptions<null, number, number, Services>, 'startup'>, startup: LegionOptions<null, number, number, Services>['startup']): Promise<CachePeer> {
  const p = await startLegion({ ...base, startup } as LegionOptions<null, number, number, Services>)
  running.push(p)
  return p
}

async function cluster (n: number, name: string, keyspace: Parameters<typeof cacheKeyspace>[0] = {}): Promise<CachePeer[]> {
  const base = options(name, {}, keyspace)
  const first = await startPeer(base, { mode: 'new' })
  const peers = [first]
  for (let i = 1; i < n; i++) peers.push(await startPeer(base, { mode: 'join', peers: first.multiaddrs() }))
  await Promise.all(peers.map(async p => { await p.services.cache.whenSettled({ timeoutMs: 45_000 }) }))
  await until(peers as never[], () => peers.every(p => p.services.cache.table()?.members.length === n && p.services.cache.stats().movesInFlight === 0), `${n} members in every table, settled`, 45_000)
  return peers
}

const caches = (peers: readonly CachePeer[]): Cache[] => peers.map(p => p.services.cache)
const set = async (c: Cache, key: string, value: string): Promise<string | null> => await c.request(key, { op: 'set', value, tags: [key.split(':')[0]!] })

test('five peers, three replicas: any peer takes a request for any key, and each key is on the three owners of its partition and nowhere else', async () => {
  const peers = await cluster(5, 'ks-routing')
  const cs = caches(peers)
  for (let i = 0; i < 40; i++) assert.equal(await set(cs[i % 5]!, `k:${i}`, `v${i}`), null, 'a new key had no value')
  for (let i = 0; i < 40; i++) {
    assert.equal(await cs[(i + 2) % 5]!.request(`k:${i}`, { op: 'get' }), `v${i}`, 'read back through another peer')
    assert.equal(await cs[(i + 3) % 5]!.request(`k:${i}`, { op: 'get' }, { consistency: 'one' }), `v${i}`, 'and at once from one replica')
  }
  const selfs = peers.map(p => p.self)
  const writes = Array.from({ length: 40 }, (_, i) => ({ key: `k:${i}`, value: `v${i}` }))
  await until(peers as never[], () => missingOnReplicas(cs, selfs, writes).length === 0, 'every write settled on its three owners', 30_000)
  const table = cs[0]!.table()!
  const heldByOwnersOnly = (): boolean => writes.every(w => {
    const owners = table.assignments[cs[0]!.partitionOf(w.key)]!.owners
    return owners.length === 3 && peers.every((p, i) => cs[i]!.readLocal(w.key).held === owners.includes(p.self))
  })
  // Replicas that moved away during the formation leave their groups a moment after the moves.
  await until(peers as never[], heldByOwnersOnly, 'each key held by its three owners and nowhere else', 30_000)
  assert.ok(cs.every(c => c.stats().handoff.releasing.length === 0))
  assert.equal(cs.reduce((n, c) => n + c.stats().owned, 0), 16 * 3, 'sixteen partitions, three owners each')
  const served = cs.reduce((n, c) => n + c.stats().requests.served, 0)
  assert.equal(served, 120, 'every request was served exactly once, by one owner')
})

test('search scrolls every record once, in (tag, key) order, from the start, from a tag, and from a cursor; other keyspaces\' cursors are refused', async () => {
  const peers = await cluster(3, 'ks-search')
  const cs = caches(peers)
  const keys: string[] = []
  for (const tag of ['b', 'a', 'c']) for (let i = 0; i < 20; i++) keys.push(`${tag}:${String(i).padStart(2, '0')}`)
  await Promise.all(keys.map(async (k, i) => await set(cs[i % 3]!, k, k)))
  const all: Array<{ tag: string, key: string, cursor: string }> = []
  for await (const r of cs[1]!.search(undefined, { pageSize: 3 })) all.push(r)
  assert.deepEqual(all.map(r => `${r.tag}|${r.key}`), [...keys].sort().map(k => `${k[0]}|${k}`), 'every record once, in order, across partitions and pages')
  const fromB: string[] = []
  for await (const r of cs[2]!.search('b')) fromB.push(r.key)
  assert.deepEqual(fromB, keys.filter(k => k >= 'b').sort(), 'a tag: its records and everything after')
  const after: string[] = []
  for await (const r of cs[0]!.search({ after: all[9]!.cursor }, { pageSize: 4 })) after.push(r.key)
  assert.deepEqual(after, all.slice(10).map(r => r.key), 'a cursor: strictly after its record')
  const other = await startPeer(options('ks-search-other'), { mode: 'new' })
  assert.throws(() => other.services.cache.search({ after: all[0]!.cursor }), { name: 'ForeignCursorError' })
  assert.throws(() => cs[0]!.search({ after: 'garbage' }), { name: 'InvalidCursorError' })
  assert.throws(() => cs[0]!.search(42 as never), TypeError)
})

test('bad input: a key of the wrong type, an input the codec rejects, a handler that throws, malformed wire requests and a stopped peer get typed errors and change nothing', async () => {
  const peers = await cluster(3, 'ks-bad')
  const [a, b] = caches(peers) as [Cache, Cache]
  await set(a, 'x:1', 'one')
  await assert.rejects(a.request(42 as never, { op: 'get' }), TypeError)
  await assert.rejects(a.request('x:1', { op: 'set', value: undefined, tags: [] } as never), TypeError)
  await assert.rejects(a.request('x:1', { op: 'get' }, { consistency: 'all' as never }), TypeError)
  await assert.rejects(a.request('x:1', { op: 'set', value: 7, tags: [] } as never), { name: 'HandlerError' })
  await assert.rejects(b.request('x:1', { op: 'explode' } as never), { name: 'HandlerError' })
  assert.equal(await b.request('x:1', { op: 'get' }), 'one', 'nothing was applied')
  // Garbage on the keyspace's channels, from a peer of the cluster.
  const raw = { encode: (v: Uint8Array, w: { writeRaw: (b: Uint8Array) => void }) => { w.writeRaw(v) }, decode: (r: { readRaw: (n: number) => Uint8Array, remaining: number }) => r.readRaw(r.remaining) }
  const garbage = peers[0]!.channel({ name: 'keyspace/request', request: raw as never, reply: raw as never })
  await assert.rejects(garbage.call(peers[1]!.self, new Uint8Array([0xff, 0xff, 0xff, 0x01])), { name: 'RemoteError' })
  const search = peers[0]!.channel({ name: 'keyspace/search', request: raw as never, reply: raw as never })
  await assert.rejects(search.call(peers[2]!.self, new Uint8Array([1, 1, 255, 255, 255, 255, 15])), { name: 'RemoteError' })
  assert.equal(await a.request('x:1', { op: 'get' }), 'one', 'the cluster still serves')
  assert.equal(b.stats().requests.handlerErrors + a.stats().requests.handlerErrors + caches(peers)[2]!.stats().requests.handlerErrors, 2)
  await peers[2]!.stop({ leave: false })
  await assert.rejects(caches(peers)[2]!.request('x:1', { op: 'get' }), { name: 'StoppedError' })
})

test('a peer joining under write load: partitions move to it with no request failed or lost, a scroll across the moves skips and repeats nothing, and the moves are reported', async () => {
  // One transfer at a time per peer: the moves take long enough for the scroll to overlap them.
  const peers = await cluster(4, 'ks-join', { maxParallelMoves: 1 })
  const cs = caches(peers)
  const events: PartitionEvent[] = []
  cs[0]!.onPartitionEvent(e => { events.push(e) })
  const load = new CacheLoad([() => cs[0], () => cs[1], () => cs[2]], { prefix: 'j', max: 2000 })
  await until(peers as never[], () => load.acknowledged().length >= 100, 'some writes before the join', 30_000)
  // A scroll that starts before the join and goes on while partitions move, a page at a time.
  const before = new Set(load.acknowledged().map(w => w.key))
  const scroll = cs[3]!.search('j', { pageSize: 2 })
  const scrolled: string[] = []
  for (let i = 0; i < 10; i++) { const r = await scroll.next(); if (r.done !== true) scrolled.push(r.value.key) }
  const joiner = await startPeer(options('ks-join', {}, { maxParallelMoves: 1 }), { mode: 'join', peers: peers[0]!.multiaddrs() })
  const all = [...peers, joiner]
  await until(all as never[], () => cs[3]!.stats().movesInFlight > 0, 'moves in flight', 30_000)
  let duringMoves = 0
  for (;;) {
    const moving = cs[3]!.stats().movesInFlight > 0
    const r = await scroll.next()
    if (r.done === true) break
    scrolled.push(r.value.key)
    if (moving) duringMoves++
  }
  await until(all as never[], () => joiner.services.cache.stats().owned >= 8 && all.every(p => p.services.cache.stats().movesInFlight === 0), 'the joiner to own its share, every move done', 45_000)
  assert.equal(new Set(scrolled).size, scrolled.length, 'the scroll gave no record twice')
  assert.deepEqual(scrolled, [...scrolled].sort(), 'in order')
  for (const k of before) assert.ok(scrolled.includes(k), `the scroll skipped ${k}, written before it started`)
  assert.ok(duringMoves > 0, 'part of the scroll ran while partitions moved')
  await load.stop()
  assert.deepEqual(load.failures(), {}, 'no request failed during the moves')
  const acked = load.acknowledged()
  assert.ok(acked.length >= 30)
  const selfs = all.map(p => p.self)
  await until(all as never[], () => missingOnReplicas(caches(all), selfs, acked).length === 0, 'every acknowledged write on every replica', 30_000)
  const found: string[] = []
  for await (const r of cs[3]!.search('j', { pageSize: 7 })) found.push(r.key)
  assert.deepEqual(found, acked.map(w => w.key).sort(), 'the search finds every acknowledged key once')
  assert.ok(events.some(e => e.type === 'moved' && e.to.includes(joiner.self)), 'moves to the joiner were reported')
  const received = joiner.services.cache.stats().handoff.completed.received
  assert.ok(received >= 8, `the joiner received ${received} partitions`)
  assert.ok(cs.some(c => c.stats().handoff.completed.released > 0), 'old owners released what moved')
})

test('a graceful stop hands every partition off before the peer leaves: no request fails, nothing acknowledged is lost', { timeout: 120_000 }, async () => {
  const peers = await cluster(4, 'ks-drain', { replication: 2 })
  const cs = caches(peers)
  const load = new CacheLoad([() => cs[0], () => cs[1]], { prefix: 'd', max: 2000 })
  await until(peers as never[], () => load.acknowledged().length >= 30, 'some writes first', 30_000)
  const leaving = peers[3]!
  assert.ok(cs[3]!.stats().owned > 0)
  await leaving.stop()
  const left = peers.slice(0, 3)
  await until(left as never[], () => left.every(p => p.services.cache.table()?.members.length === 3), 'the leaver is gone from the table', 30_000)
  await until(left as never[], () => load.acknowledged().length >= 60, 'writes go on', 30_000)
  await load.stop()
  // What membership did meanwhile (the stayers': the leaver's stats are gone with it): a failure
  // here was a live peer ejected by suspicion once.
  const membership = left.map(p => { const c = p.stats().counters; return `${p.self.slice(-6)}: autoEjections ${c.autoEjections}, timesEjected ${c.timesEjected}, rejoins ${c.rejoins}` }).join('; ')
  assert.deepEqual(load.failures(), {}, `no request failed while it drained: ${load.failed()}; ${membership}`)
  const table = cs[0]!.table()!
  assert.ok(table.assignments.every(a => a.owners.length === 2 && !a.owners.includes(leaving.self)))
  await until(left as never[], () => missingOnReplicas(caches(left), left.map(p => p.self), load.acknowledged()).length === 0, 'every acknowledged write on both replicas', 30_000)
})

test('a peer restarted from its storage holds its partitions again at once and catches up on what it missed', async () => {
  const names = ['a', 'b', 'c']
  const paths = await Promise.all(names.map(async () => await mkdtemp(join(tmpdir(), 'legion-ks-'))))
  dirs.push(...paths)
  const base = (i: number): Omit<LegionOptions<null, number, number, Services>, 'startup'> => ({ ...options('ks-recover', {}, { partitions: 8 }) })
  const a = await startPeer({ ...base(0), storage: await lmdbKeyValueStore(paths[0]!) }, { mode: 'new' })
  const b = await startPeer({ ...base(1), storage: await lmdbKeyValueStore(paths[1]!) }, { mode: 'join', peers: a.multiaddrs() })
  let c = await startPeer({ ...base(2), storage: await lmdbKeyValueStore(paths[2]!) }, { mode: 'join', peers: a.multiaddrs() })
  await until([a, b, c] as never[], () => [a, b, c].every(p => p.services.cache.stats().owned === 8), 'three replicas of everything', 45_000)
  for (let i = 0; i < 20; i++) await set(a.services.cache, `r:${i}`, `before-${i}`)
  await until([a, b, c] as never[], () => missingOnReplicas(caches([a, b, c]), [a.self, b.self, c.self], Array.from({ length: 20 }, (_, i) => ({ key: `r:${i}`, value: `before-${i}` }))).length === 0, 'settled on c', 30_000)
  const cSelf = c.self
  await c.stop({ leave: false })
  // While c is down (not yet ejected), writes wait for its acknowledgement; a short timeout each.
  const pending = Array.from({ length: 5 }, async (_, i) => await set(b.services.cache, `r:${i}`, `after-${i}`).catch((e: Error) => e.name))
  c = await startPeer({ ...base(2), storage: await lmdbKeyValueStore(paths[2]!) }, { mode: 'recover', peers: a.multiaddrs() })
  assert.equal(c.self, cSelf)
  const membership = (): string => [a, b].map(p => { const n = p.stats().counters; return `${p.self.slice(-6)}: autoEjections ${n.autoEjections}, timesEjected ${n.timesEjected}` }).join('; ')
  assert.equal(c.services.cache.readLocal('r:10').held, true, `held from disk at once (c owns ${c.services.cache.stats().owned}, table members ${c.services.cache.table()?.members.length ?? 'none'}, partition ${c.services.cache.partitionOf('r:10')}; ${membership()})`)
  assert.equal(c.services.cache.readLocal('r:10').infimum?.value, 'before-10')
  const outcomes = await Promise.all(pending)
  assert.ok(outcomes.every(o => o === null || o.startsWith('before')), `writes made while c was down settled once it was back: ${JSON.stringify(outcomes)}`)
  const writes = Array.from({ length: 20 }, (_, i) => ({ key: `r:${i}`, value: i < 5 ? `after-${i}` : `before-${i}` }))
  await until([a, b, c] as never[], () => missingOnReplicas(caches([a, b, c]), [a.self, b.self, c.self], writes).length === 0, 'c caught up', 30_000)
})
