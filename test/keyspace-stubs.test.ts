/**
 * The keyspace on stubs: whole peers over the in-memory network with a manual clock
 * (test/support/fake-network.ts), so crashes, ejections and what ownership does about them are
 * specified with deterministic time and no sockets. A crashed owner's partitions are
 * re-replicated once it is ejected, with every acknowledged write kept; a partition whose
 * every replica was ejected while alive is restored from its last owner's copy when that
 * owner is admitted again; one whose every replica crashed waits for its last owner, then is
 * reported lost and starts again from the default state.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startPeer } from '../src/peer/start.js'
import type { Legion } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { cacheKeyspace, type Cache } from '../demo/cache/cache.js'
import type { PartitionEvent } from '../src/keyspace/keyspace.js'
import { awaitsLastOwner } from '../src/keyspace/table.js'
import { PartitionUnavailableError, RequestTimeoutError } from '../src/keyspace/errors.js'
import { FakeNetwork, ManualClock, seededRandom, advanceUntil, advanceUntilSettled } from './support/fake-network.js'
import { settledWith } from './support/keyspace-load.js'

const noState: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
type Peer = Legion<null, number, number, { cache: ReturnType<typeof cacheKeyspace> }>

class Sim {
  readonly clock = new ManualClock()
  readonly net = new FakeNetwork(this.clock)
  readonly peers: Peer[] = []
  private seed = 7

  constructor (private readonly options: Parameters<typeof cacheKeyspace>[0] = {}) {}

  async start (startup: Parameters<typeof startPeer>[0]['startup']): Promise<Peer> {
    const peer = await startPeer<null, number, number, { cache: ReturnType<typeof cacheKeyspace> }>({
      cluster: 'keyspace-stubs',
      spec: noState,
      startup,
      services: { cache: cacheKeyspace({ partitions: 8, replication: 2, ...this.options }) },
      propagation: { intervalMs: 500 },
      failureDetection: { heartbeatIntervalMs: 500, suspectAfterMs: 2000, stuckAfterMs: 5000 }
    }, { network: async key => await this.net.node(key), clock: this.clock, random: seededRandom(this.seed++) })
    this.peers.push(peer)
    return peer
  }

  async cluster (n: number): Promise<Peer[]> {
    const first = await this.start({ mode: 'new' })
    for (let i = 1; i < n; i++) await this.start({ mode: 'join', peers: first.multiaddrs() })
    await this.until(() => this.peers.every(p => settledWith(p.services.cache, n)), `${n} members, every move done`)
    return [...this.peers]
  }

  async until (predicate: () => boolean, what: string, maxMs = 60_000): Promise<void> {
    await advanceUntil(this.clock, predicate, what, maxMs, 100)
  }

  async settle<T> (promise: Promise<T>, what: string, maxMs = 60_000): Promise<T> {
    return await advanceUntilSettled(this.clock, promise, what, maxMs, 100)
  }

  async stop (): Promise<void> {
    await Promise.all(this.peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
  }
}

async function set (sim: Sim, c: Cache, key: string, value: string): Promise<string | null> {
  return await sim.settle(c.request(key, { op: 'set', value, tags: [] }, { timeoutMs: 30_000 }), `set ${key}`)
}

/**
 * Four peers (R = 2); the last crashes while each of 16 keys is written again (first set to
 * `a<i>`, now to `b<i>`): writes to the partitions it owned wait for its ejection. Then every
 * key is written again (`c<i>`), and settles on both replicas once every partition has two
 * again. Returns how each write of `b<i>` ended and which keys were in the victim's partitions.
 */
async function crashUnderWrites (minReplicas: number) {
  const sim = new Sim({ minReplicas })
  try {
    const peers = await sim.cluster(4)
    const cs = peers.map(p => p.services.cache)
    for (let i = 0; i < 16; i++) await set(sim, cs[i % 4]!, `k:${i}`, `a${i}`)
    const victim = peers[3]!
    assert.ok(cs[3]!.stats().owned > 0)
    const before = cs[0]!.table()!
    const victims = Array.from({ length: 16 }, (_, i) => before.assignments[cs[0]!.partitionOf(`k:${i}`)]!.owners.includes(victim.self))
    sim.net.crash(victim.self)
    const pending = Array.from({ length: 16 }, async (_, i) => await cs[i % 3]!.request(`k:${i}`, { op: 'set', value: `b${i}`, tags: [] }, { timeoutMs: 30_000 }).then(v => v, (err: Error) => err))
    const outcomes = await sim.settle(Promise.all(pending), 'the writes during the crash')
    // Written again at once: one replica holds the victim's partitions until handoff adds
    // another, and an agreed request is not applied meanwhile (answered unavailable, retried).
    const again = await sim.settle(Promise.all(Array.from({ length: 16 }, async (_, i) => await cs[i % 3]!.request(`k:${i}`, { op: 'set', value: `c${i}`, tags: [] }, { timeoutMs: 30_000 }))), 'the writes after the crash')
    assert.deepEqual(again, Array.from({ length: 16 }, (_, i) => `b${i}`), 'each write after the crash is acknowledged, and saw the one before it')
    const live = peers.slice(0, 3)
    await sim.until(() => live.every(p => settledWith(p.services.cache, 3)), 'the victim is out and every partition has two replicas again')
    const table = cs[0]!.table()!
    for (let i = 0; i < 16; i++) {
      const owners = table.assignments[cs[0]!.partitionOf(`k:${i}`)]!.owners
      assert.equal(owners.length, 2)
      for (const o of owners) {
        const at = live.findIndex(x => x.self === o)
        await sim.until(() => cs[at]!.readLocal(`k:${i}`).infimum?.value === `c${i}`, `k:${i} settled on ${o}`)
      }
    }
    assert.ok(table.assignments.every(a => a.generation === 1), 'nothing was lost: one replica of each partition survived')
    return { outcomes, victims }
  } finally {
    await sim.stop()
  }
}

test('a crashed owner is ejected and its partitions re-replicated: a write that waited for it folds on one replica only, so it fails as of unknown outcome (minReplicas 2), stays applied, and ends on both replicas', async () => {
  const { outcomes, victims } = await crashUnderWrites(2)
  assert.ok(victims.some(v => v) && victims.some(v => !v), 'some keys in the victim\'s partitions, some not')
  outcomes.forEach((out, i) => {
    if (!victims[i]) assert.equal(out, `a${i}`, `k:${i} (not the victim's) is acknowledged`)
    else {
      assert.ok(out instanceof RequestTimeoutError, `k:${i} (the victim's): ${String(out)}`)
      assert.match(out.message, /folded on 1 replica\(s\) of the partition, fewer than the 2/)
    }
  })
})

test('with minReplicas 1, the writes that waited for a crashed owner are acknowledged by the one replica left, and every acknowledged write ends on both replicas', async () => {
  const { outcomes } = await crashUnderWrites(1)
  assert.deepEqual(outcomes, Array.from({ length: 16 }, (_, i) => `a${i}`), 'each write saw the value before it')
})

/**
 * Five peers (the three that are not partition 0's owners are a majority, which may eject the
 * two); partition 0's two owners (`pair`), the partitions only they hold (`doomed`), a key of
 * partition 0 set to 'precious', and the partition events a survivor reports from then on.
 */
async function doomedPair (sim: Sim) {
  const peers = await sim.cluster(5)
  const cs = peers.map(p => p.services.cache)
  const table = cs[0]!.table()!
  const pair = table.assignments[0]!.owners
  const doomed = table.assignments.flatMap((a, p) => a.owners.every(o => pair.includes(o)) ? [p] : [])
  let key = ''
  for (let i = 0; key === ''; i++) if (cs[0]!.partitionOf(`x:${i}`) === 0) key = `x:${i}`
  const survivors = peers.filter(p => !pair.includes(p.self))
  const survivor = survivors[0]!.services.cache
  await set(sim, survivor, key, 'precious')
  const events: PartitionEvent[] = []
  survivor.onPartitionEvent(e => { events.push(e) })
  return { peers, cs, pair, doomed, key, survivors, survivor, events }
}

test('a partition whose every replica was ejected while alive waits for its last owner, which restores it from its copy once admitted again: nothing is lost', async () => {
  const sim = new Sim()
  try {
    const { peers, cs, pair, doomed, key, survivors, survivor, events } = await doomedPair(sim)
    // The pair is cut off from the three others, which eject it (a majority) and are left
    // with partitions nobody serves; the pair itself stays up, holding them.
    for (const o of pair) for (const s of survivors) sim.net.cutLink(o, s.self)
    await sim.until(() => {
      const t = survivor.table()
      return t !== undefined && t.members.length === 3 && doomed.every(p => awaitsLastOwner(t, t.assignments[p]!))
    }, 'the survivors eject the pair; its partitions wait for their last owner')
    await assert.rejects(sim.settle(survivor.request(key, { op: 'get' }, { timeoutMs: 2000 }), 'a read while nobody serves'), PartitionUnavailableError)
    sim.net.heal()
    await sim.until(() => peers.every(p => settledWith(p.services.cache, 5)), 'the pair rejoins and every partition is served again')
    assert.deepEqual(events.filter(e => e.type === 'lost'), [], 'nothing was lost')
    for (const p of doomed) assert.equal(survivor.table()!.assignments[p]!.generation, 2, `partition ${p} goes on in a new generation, restored from its last owner`)
    for (const c of cs) assert.equal(await sim.settle(c.request(key, { op: 'get' }), 'a read of the restored key'), 'precious')
    const restored = cs.reduce((n, c) => n + c.stats().handoff.completed.restored, 0)
    assert.equal(restored, doomed.length, 'each doomed partition restored once')
  } finally {
    await sim.stop()
  }
})

test('a partition whose every replica crashed waits for its last owner, then is declared lost, and its keys start again from the default state in a new generation', async () => {
  const sim = new Sim({ lostAfterMs: 20_000 })
  try {
    // Two peers that together hold both replicas of some partitions crash.
    const { pair, doomed, key, survivors, survivor, events } = await doomedPair(sim)
    for (const p of pair) sim.net.crash(p)
    await sim.until(() => { const t = survivor.table(); return t !== undefined && t.members.length === 3 && awaitsLastOwner(t, t.assignments[0]!) }, 'the survivors eject the pair; partition 0 waits for its last owner')
    const waitingSince = sim.clock.now()
    await sim.until(() => survivors.every(p => settledWith(p.services.cache, 3)), 'the three survivors own everything', 90_000)
    assert.ok(sim.clock.now() - waitingSince >= 20_000 - 1000, 'not before lostAfterMs (give or take a recheck)')
    const lost = events.filter(e => e.type === 'lost').map(e => e.partition).sort((x, y) => x - y)
    assert.deepEqual(lost, doomed, 'exactly the partitions both of whose replicas crashed are reported lost')
    assert.ok(events.some(e => e.type === 'moved'), 'the others moved')
    assert.equal(survivor.table()!.assignments[0]!.generation, 2)
    assert.equal(await sim.settle(survivor.request(key, { op: 'get' }), 'a read of a lost key'), null, 'a lost key is back to its default')
    assert.equal(await set(sim, survivor, key, 'again'), null)
  } finally {
    await sim.stop()
  }
})

test('keys with one partition key share a partition and its owners, from every peer; a partitionKey that throws or returns no bytes fails the request with a TypeError, and nothing is sent', async () => {
  // The user before the first ':' picks the partition; keys under 'bad:' and 'throw:' misbehave.
  const sim = new Sim({
    partitions: 16,
    partitionKey: (key) => {
      if (key.startsWith('throw:')) throw new Error('no partition for this one')
      if (key.startsWith('bad:')) return 42 as unknown as string
      return key.slice(0, key.indexOf(':'))
    }
  })
  try {
    const peers = await sim.cluster(3)
    const cs = peers.map(p => p.services.cache)
    const users = Array.from({ length: 8 }, (_, i) => `user${i}`)
    const fields = ['profile', 'cart', 'settings']
    for (const u of users) {
      const partition = cs[0]!.partitionOf(`${u}:profile`)
      for (const c of cs) for (const f of fields) assert.equal(c.partitionOf(`${u}:${f}`), partition, `${u}:${f} on every peer`)
    }
    assert.ok(new Set(users.map(u => cs[0]!.partitionOf(`${u}:x`))).size > 2, 'users still spread over the partitions')
    for (const [i, u] of users.entries()) for (const f of fields) assert.equal(await set(sim, cs[i % 3]!, `${u}:${f}`, `${u}-${f}`), null)
    const table = cs[0]!.table()!
    for (const u of users) {
      const owners = table.assignments[cs[0]!.partitionOf(`${u}:profile`)]!.owners
      for (const f of fields) {
        for (const [i, p] of peers.entries()) {
          const read = cs[i]!.readLocal(`${u}:${f}`)
          if (owners.includes(p.self)) assert.deepEqual(read.held && read.projected, { value: `${u}-${f}`, tags: [] }, `${u}:${f} at its owner ${i}`)
          else assert.equal(read.held, false, `${u}:${f} not held by ${i}, not an owner`)
        }
      }
    }
    const before = cs.map(c => JSON.stringify(c.stats().requests))
    await assert.rejects(cs[1]!.request('throw:1', { op: 'set', value: 'v', tags: [] }), (err: Error) => err instanceof TypeError && /partitionKey threw: no partition for this one/.test(err.message))
    await assert.rejects(cs[1]!.request('bad:1', { op: 'set', value: 'v', tags: [] }), (err: Error) => err instanceof TypeError && /partitionKey must return a string or a Uint8Array, got number/.test(err.message))
    assert.throws(() => cs[2]!.partitionOf('throw:2'), TypeError)
    assert.deepEqual(cs.map(c => JSON.stringify(c.stats().requests)), before, 'nothing was sent or served, on any peer')
    assert.throws(() => cacheKeyspace({ partitionKey: 'user' as never }), /keyspace option partitionKey must be a function/)
  } finally {
    await sim.stop()
  }
})
