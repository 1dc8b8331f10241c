/**
 * Discovery and election on stubs: whole peers with the discovery service over the in-memory
 * network and one manual clock (test/support/discovery-sim.ts), so failover, partitions,
 * broken links and hand-overs are specified with deterministic time and no sockets. Every
 * election test checks with a recorder of runs that no two peers ever ran a name at once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compareEventIds } from '../src/eventfold/types.js'
import { jsonCodec, jsonCodecFor, type JsonValue } from '../src/codec/json.js'
import type { Codec } from '../src/codec/codec.js'
import { DecodeError } from '../src/codec/errors.js'
import { discovery } from '../src/discovery/service.js'
import { memoryKeyValueStore } from '../src/storage/index.js'
import type { RegistryWatchEvent, HolderEvent } from '../src/discovery/api.js'
import { DiscoverySim, Runs, SIM_DETECTION, text, type DPeer } from './support/discovery-sim.js'

const d = (p: DPeer): DPeer['services']['discovery'] => p.services.discovery

test('a registration is found by every peer\'s lookup, settled or projected, and goes with its peer\'s ejection', async () => {
  const sim = new DiscoverySim()
  const [a, b, c] = await sim.cluster(3) as [DPeer, DPeer, DPeer]
  const reg = d(c).register('worker', { slots: 4 })
  assert.equal(d(c).lookup('worker', { consistency: 'projected' }).entries.length, 1, 'projected at once on its own peer')
  const since = await sim.settle(reg.settled(), 'the registration settles')
  await sim.until(() => [a, b].every(p => d(p).lookup('worker').entries.length === 1), 'every peer finds it settled')
  const entry = d(a).lookup('worker').entries[0]!
  assert.deepEqual({ peer: entry.peer, meta: entry.meta, key: entry.key }, { peer: c.self, meta: { slots: 4 }, key: reg.key })
  assert.deepEqual(entry.since, since)
  sim.net.crash(c.self)
  const took = await sim.until(() => d(a).lookup('worker').entries.length === 0 && d(b).lookup('worker').entries.length === 0, 'the crashed peer\'s registration goes')
  // The others heard c's last heartbeat at most one interval before the crash.
  assert.ok(took > SIM_DETECTION.suspectAfterMs - SIM_DETECTION.heartbeatIntervalMs, `gone after ${took} ms: when the failure detector ejected it, not before`)
  await sim.stop()
})

test('a drained registration is left out of lookups unless asked for; update and unregister reach every peer', async () => {
  const sim = new DiscoverySim()
  const [a, b] = await sim.cluster(2) as [DPeer, DPeer]
  const reg = d(a).register('worker', 'v1')
  reg.drain()
  await sim.settle(reg.settled(), 'settled drained')
  await sim.until(() => d(b).lookup('worker', { includeDrained: true }).entries.length === 1, 'b sees it drained')
  assert.equal(d(b).lookup('worker').entries.length, 0)
  reg.enable()
  reg.update('v2')
  await sim.until(() => d(b).lookup('worker').entries[0]?.meta === 'v2', 'b sees the update')
  reg.unregister()
  await sim.until(() => d(b).lookup('worker', { includeDrained: true }).entries.length === 0, 'b sees it gone')
  await sim.stop()
})

test('a watcher sees a snapshot, then every change in fold order with consecutive sequence numbers and the ids that made them', async () => {
  const sim = new DiscoverySim()
  const [a, b, c] = await sim.cluster(3) as [DPeer, DPeer, DPeer]
  const seen: Array<RegistryWatchEvent<unknown>> = []
  d(b).watch('worker', e => { seen.push(e) })
  const r1 = d(a).register('worker', 1)
  const r2 = d(c).register('worker', 2)
  d(c).register('other', 3)
  await sim.settle(Promise.all([r1.settled(), r2.settled()]), 'both settle')
  r1.unregister()
  sim.net.crash(c.self)
  await sim.until(() => seen.filter(e => e.kind === 'unregistered').length === 2, 'both removals seen')
  assert.equal(seen[0]!.kind, 'snapshot')
  const changes = seen.slice(1) as Array<Exclude<RegistryWatchEvent<unknown>, { kind: 'snapshot' }>>
  assert.deepEqual(changes.map(e => e.kind), ['registered', 'registered', 'unregistered', 'unregistered'])
  for (let i = 1; i < changes.length; i++) {
    assert.ok(compareEventIds(changes[i - 1]!.id, changes[i]!.id) < 0, 'fold order')
  }
  const seqs = changes.map(e => e.seq)
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'sequence numbers increase')
  const last = changes[3]!
  assert.ok(last.kind === 'unregistered' && last.cause === 'departed' && last.entry.peer === c.self)
  await sim.stop()
})

test('elect: exactly one candidate runs, the first to stand; whereis and observe name it with its token', async () => {
  const sim = new DiscoverySim()
  const peers = await sim.cluster(3)
  const runs = new Runs(() => sim.clock.now())
  const observed: HolderEvent[] = []
  d(peers[2]!).observe('boss', e => { observed.push(e) })
  const first = d(peers[1]!).elect('boss', runs.start(peers[1]!.self))
  await sim.settle(first.whenStanding(), 'the first candidacy settles')
  for (const p of [peers[0]!, peers[2]!]) d(p).elect('boss', runs.start(p.self))
  const token = await sim.settle(first.whenRunning(), 'the first candidate runs')
  await sim.until(() => peers.every(p => d(p).whereis('boss')?.peer === peers[1]!.self), 'everyone knows the holder')
  await sim.clock.advance(5000)
  assert.deepEqual(runs.all.map(r => r.peer), [peers[1]!.self], 'only the holder ran')
  assert.deepEqual(d(peers[0]!).whereis('boss')!.token, token)
  assert.ok(d(peers[1]!).isHolder('boss', token) && !d(peers[0]!).isHolder('boss'))
  assert.ok(observed.some(e => e.kind === 'granted' && e.holder.peer === peers[1]!.self && compareEventIds(e.id, token) === 0))
  await sim.stop()
})

test('when the holder crashes, the next candidate in FIFO order runs once the failure detector ejected it', async () => {
  const sim = new DiscoverySim()
  const peers = await sim.cluster(5)
  const runs = new Runs(() => sim.clock.now())
  const order = [peers[3]!, peers[0]!, peers[4]!, peers[1]!, peers[2]!]
  for (const p of order) await sim.settle(d(p).elect('boss', runs.start(p.self)).whenStanding(), 'stand')
  await sim.until(() => runs.holder() === order[0]!.self, 'the first runs')
  const crashedAt = sim.clock.now()
  sim.net.crash(order[0]!.self)
  runs.all[0]!.stoppedAt = crashedAt // a crashed process stops acting at once
  await sim.until(() => runs.running().some(r => r.peer === order[1]!.self), 'the second in line runs')
  const failover = sim.clock.now() - crashedAt
  // Silence for suspectAfterMs since the last heartbeat heard (at most one interval before the
  // crash), noticed on a heartbeat tick, confirmed by the others' next reports.
  assert.ok(failover > SIM_DETECTION.suspectAfterMs - SIM_DETECTION.heartbeatIntervalMs && failover <= SIM_DETECTION.suspectAfterMs + 3 * SIM_DETECTION.heartbeatIntervalMs, `failover took ${failover} simulated ms`)
  runs.assertNoOverlap()
  await sim.stop()
})

test('a holder partitioned into the minority stops before the majority can eject it; the majority then elects the next, and tokens only grow', async () => {
  const sim = new DiscoverySim()
  const peers = await sim.cluster(5)
  const runs = new Runs(() => sim.clock.now())
  for (const p of peers) await sim.settle(d(p).elect('boss', runs.start(p.self)).whenStanding(), 'stand')
  await sim.until(() => runs.holder() !== undefined, 'someone runs')
  const holder = peers.find(p => p.self === runs.holder())!
  const buddy = peers.find(p => p !== holder)!
  const majority = peers.filter(p => p !== holder && p !== buddy)
  const cutAt = sim.clock.now()
  for (const m of majority) { sim.net.cutLink(holder.self, m.self); sim.net.cutLink(buddy.self, m.self) }
  await sim.until(() => runs.running().some(r => r.peer !== holder.self), 'the majority elects another')
  const old = runs.all.find(r => r.peer === holder.self)!
  const successor = runs.running().find(r => r.peer !== holder.self)!
  assert.ok(old.stoppedAt !== undefined && old.stoppedAt < cutAt + SIM_DETECTION.suspectAfterMs, `the old holder stopped ${old.stoppedAt! - cutAt} ms after the cut, before anyone could suspect it`)
  assert.ok(successor.startedAt > old.stoppedAt)
  assert.ok(majority.map(p => p.self).includes(successor.peer))
  assert.ok(compareEventIds(old.token, successor.token) < 0)
  // Heal: the old holder and its buddy rejoin and stand again, behind the others.
  sim.net.heal()
  await sim.until(() => peers.every(p => p.readState().participants.length === 5 && p.stats().membership === 'participant'), 'the minority rejoins')
  await sim.until(() => peers.every(p => d(p).whereis('boss')?.peer === successor.peer), 'everyone agrees on the successor')
  await sim.clock.advance(5000)
  assert.equal(runs.running().length, 1)
  runs.assertNoOverlap()
  await sim.stop()
})

test('a holder at the larger end of a broken link steps down before the broken-link rule ejects it', async () => {
  const sim = new DiscoverySim()
  const peers = await sim.cluster(5)
  const runs = new Runs(() => sim.clock.now())
  const holder = peers[4]! // the largest id: any broken link of its ejects it
  await sim.settle(d(holder).elect('boss', runs.start(holder.self)).whenStanding(), 'stand')
  for (const p of peers.slice(0, 4)) await sim.settle(d(p).elect('boss', runs.start(p.self)).whenStanding(), 'stand')
  await sim.until(() => runs.holder() === holder.self, 'the largest id runs')
  sim.net.cutLink(holder.self, peers[0]!.self)
  await sim.until(() => !peers[1]!.readState().projectedParticipants.includes(holder.self), 'the larger end is ejected')
  const ejectedAt = sim.clock.now()
  const old = runs.all.find(r => r.peer === holder.self)!
  assert.ok(old.stoppedAt !== undefined && old.stoppedAt < ejectedAt, `stopped at ${old.stoppedAt}, ejected by ${ejectedAt}`)
  await sim.until(() => runs.running().length === 1, 'the next one runs')
  runs.assertNoOverlap()
  await sim.stop()
})

test('resign hands over only after the holder\'s stop function finished; requeue stands again at the back', async () => {
  const sim = new DiscoverySim()
  const [a, b] = await sim.cluster(2) as [DPeer, DPeer]
  const runs = new Runs(() => sim.clock.now())
  let stoppedAt = -1
  const ca = d(a).elect('boss', (ctx) => {
    runs.start(a.self)(ctx)
    return async () => { await new Promise<void>(resolve => sim.clock.setTimer(700, resolve)); stoppedAt = sim.clock.now() }
  }, { kind: 'boss' })
  await sim.settle(ca.whenRunning(), 'a runs')
  const cb = d(b).elect('boss', runs.start(b.self), { kind: 'boss' })
  await sim.settle(cb.whenStanding(), 'b stands')
  await sim.settle(ca.resign({ requeue: true }), 'a resigns')
  await sim.settle(cb.whenRunning(), 'b runs')
  const bRun = runs.all.find(r => r.peer === b.self)!
  assert.ok(stoppedAt > 0 && bRun.startedAt >= stoppedAt, `b started at ${bRun.startedAt}, a's stop finished at ${stoppedAt}`)
  assert.equal(ca.status().kind, 'standing', 'a stands again, behind b')
  await sim.settle(cb.resign(), 'b resigns')
  await sim.settle(ca.whenRunning(), 'a runs again')
  assert.equal(cb.status().kind, 'closed')
  runs.assertNoOverlap()
  await sim.stop()
})

test('stopping a peer hands its names over with no overlap, even when it does not leave', async () => {
  const sim = new DiscoverySim()
  const [a, b, c] = await sim.cluster(3) as [DPeer, DPeer, DPeer]
  const runs = new Runs(() => sim.clock.now())
  await sim.settle(d(a).elect('boss', runs.start(a.self)).whenRunning(), 'a runs')
  await sim.settle(d(b).elect('boss', runs.start(b.self)).whenStanding(), 'b stands')
  d(c).elect('boss', runs.start(c.self))
  await sim.settle(a.stop({ leave: false }), 'a stops')
  await sim.until(() => runs.holder() === b.self, 'b takes over')
  runs.assertNoOverlap()
  await sim.stop()
})

test('nobody is elected before the cluster has minMembers members', async () => {
  const sim = new DiscoverySim()
  const a = await sim.settle(sim.start({ mode: 'new' }), 'a starts')
  const runs = new Runs(() => sim.clock.now())
  const ca = d(a).elect('boss', runs.start(a.self), { minMembers: 3 })
  await sim.settle(ca.whenStanding(), 'stands')
  await sim.settle(sim.start({ mode: 'join', peers: a.multiaddrs() }), 'b joins')
  await sim.clock.advance(3000)
  assert.equal(runs.all.length, 0)
  await sim.settle(sim.start({ mode: 'join', peers: a.multiaddrs() }), 'c joins')
  await sim.settle(ca.whenRunning(), 'runs once three are members')
  await sim.stop()
})

test('a successor starts from the checkpoint its predecessor wrote through the fold; the deposed holder\'s writes are fenced', async () => {
  const sim = new DiscoverySim()
  const [a, b] = await sim.cluster(2) as [DPeer, DPeer]
  const runs = new Runs(() => sim.clock.now())
  const ca = d(a).elect('counter', runs.start(a.self))
  await sim.settle(ca.whenRunning(), 'a runs')
  const aRun = runs.all[0]!
  assert.equal(aRun.context.checkpoint, undefined)
  await sim.settle(aRun.context.saveCheckpoint({ count: 41 }), 'a checkpoints')
  const cb = d(b).elect('counter', runs.start(b.self))
  await sim.settle(cb.whenStanding(), 'b stands')
  await sim.settle(ca.resign(), 'a resigns')
  await sim.settle(cb.whenRunning(), 'b runs')
  const bRun = runs.all.find(r => r.peer === b.self)!
  assert.deepEqual(bRun.context.checkpoint?.data, { count: 41 })
  assert.deepEqual(bRun.context.checkpoint?.token, aRun.token)
  await assert.rejects(sim.settle(aRun.context.saveCheckpoint({ count: 0 }), 'the deposed write'), { name: 'FencedError' })
  assert.ok(!d(b).isCurrent('counter', aRun.token) && d(a).isCurrent('counter', bRun.token))
  runs.assertNoOverlap()
  await sim.stop()
})

test('a call addressed to a name reaches the holder with its token; with no holder it fails, or waits when asked', async () => {
  const sim = new DiscoverySim()
  const [a, b] = await sim.cluster(2) as [DPeer, DPeer]
  const codecs = { request: jsonCodecFor<string>(), reply: jsonCodecFor<string>() }
  const boss = d(a).endpoint('boss', codecs)
  await assert.rejects(boss.call('early'), { name: 'NoHolderError' })
  for (const p of [a, b]) d(p).endpoint('boss', codecs).handle((job, ctx) => `${p === a ? 'a' : 'b'} did ${job} under ${text(ctx.token)}`)
  const waiting = boss.call('patient', { waitForHolder: true, timeoutMs: 20_000 })
  const cb = d(b).elect('boss', () => {})
  const token = await sim.settle(cb.whenRunning(), 'b runs')
  assert.equal(await sim.settle(waiting, 'the waiting call'), `b did patient under ${text(token)}`)
  assert.equal(await sim.settle(boss.call('now'), 'a call'), `b did now under ${text(token)}`)
  await sim.stop()
})

test('bad input: empty, oversized or non-string names, metadata the codec refuses, conflicting start functions', async () => {
  const sim = new DiscoverySim({ maxNameBytes: 32, maxMetaBytes: 64 })
  const calls: string[] = []
  const [a, b] = await sim.cluster(2) as [DPeer, DPeer]
  assert.throws(() => d(a).register('', 1), { name: 'RegistryInputError' })
  assert.throws(() => d(a).register('x'.repeat(33), 1), { name: 'RegistryInputError' })
  assert.throws(() => d(a).lookup(42 as unknown as string), TypeError)
  assert.throws(() => d(a).register('w', (() => 1) as unknown as number), { name: 'RegistryInputError' })
  assert.throws(() => d(a).register('w', 'y'.repeat(100)), { name: 'RegistryInputError' })
  assert.throws(() => d(a).elect('boss', 'not a function' as never), TypeError)
  assert.throws(() => d(a).elect('boss', () => {}, { minMembers: 0 }), TypeError)
  await sim.settle(d(a).elect('boss', () => { calls.push('one') }).whenRunning(), 'a runs')
  assert.throws(() => d(a).elect('boss', () => { calls.push('two') }), { name: 'ElectionConflictError' })
  const other = d(b).elect('boss', () => { calls.push('three') })
  await assert.rejects(sim.settle(other.whenStanding(), 'refused'), { name: 'ElectionConflictError' })
  assert.equal(other.status().kind, 'closed')
  await sim.stop()
})

test('metadata is optional; a registration whose metadata a peer cannot decode is left out of that peer\'s lookups, never thrown', async () => {
  const picky: Codec<JsonValue> = {
    encode: (v, w) => { jsonCodec.encode(v, w) },
    decode: (r, limits) => { const v = jsonCodec.decode(r, limits); if (v === 'poison') throw new DecodeError('invalid', 'unknown here'); return v }
  }
  const sim = new DiscoverySim()
  const a = await sim.settle(sim.start({ mode: 'new' }), 'a starts')
  const b = await sim.settle(sim.start({ mode: 'join', peers: a.multiaddrs() }, { services: { discovery: discovery({ metaCodec: picky }) } }), 'b joins')
  const plain = d(a).register('w')
  const poisoned = d(a).register('w', 'poison')
  await sim.settle(Promise.all([plain.settled(), poisoned.settled()]), 'both settle')
  await sim.until(() => d(b).lookup('w', { consistency: 'projected' }).entries.length > 0, 'b sees one')
  assert.equal(d(a).lookup('w').entries.length, 2)
  assert.deepEqual(d(b).lookup('w').entries.map(e => [e.key, e.meta]), [[plain.key, undefined]])
  await sim.stop()
})

test('a peer that recovers as the same participant drops what its previous process registered and held; the next candidate is granted', async () => {
  const sim = new DiscoverySim()
  const a = await sim.settle(sim.start({ mode: 'new' }), 'a starts')
  const store = memoryKeyValueStore()
  const b = await sim.settle(sim.start({ mode: 'join', peers: a.multiaddrs() }, { storage: store }), 'b joins')
  const c = await sim.settle(sim.start({ mode: 'join', peers: a.multiaddrs() }), 'c joins')
  await sim.until(() => [a, b, c].every(p => p.readState().participants.length === 3), 'three participants')
  d(b).register('worker', 'old')
  await sim.settle(d(b).elect('boss', () => {}, { kind: 'boss' }).whenRunning(), 'b holds boss')
  await sim.settle(d(c).elect('boss', () => {}, { kind: 'boss' }).whenStanding(), 'c stands')
  await sim.until(() => d(a).lookup('worker').entries.length === 1, 'a sees b\'s worker')
  // b's process dies; its storage, as it was, comes back under the same identity before anyone ejects it.
  sim.net.crash(b.self)
  const copy = memoryKeyValueStore()
  for await (const ns of store.namespaces()) for await (const e of store.namespace(ns).range()) await copy.namespace(ns).put(e.key, e.value)
  const again = await sim.settle(sim.start({ mode: 'recover', peers: a.multiaddrs() }, { storage: copy }), 'b recovers')
  assert.equal(again.self, b.self)
  await sim.until(() => d(a).whereis('boss')?.peer === c.self && d(a).lookup('worker').entries.length === 0, 'b\'s old entries are gone and c holds boss')
  assert.ok(a.readState().participants.includes(b.self), 'without b being ejected')
  d(again).register('worker', 'new')
  await sim.until(() => d(a).lookup('worker').entries.map(e => e.meta).join() === 'new', 'the new process registers again')
  await sim.stop()
})

test('a start function that throws closes its candidacy and the next candidate runs', async () => {
  const sim = new DiscoverySim()
  const [a, b] = await sim.cluster(2) as [DPeer, DPeer]
  const start = (peer: string) => (): void => { if (peer === a.self) throw new Error('cannot start') }
  const ca = d(a).elect('boss', start(a.self), { kind: 'boss' })
  await sim.until(() => ca.status().kind === 'closed', 'a closes')
  const status = ca.status()
  assert.ok(status.kind === 'closed' && status.error?.message === 'cannot start')
  const cb = d(b).elect('boss', start(b.self), { kind: 'boss' })
  await sim.settle(cb.whenRunning(), 'b runs')
  await sim.stop()
})

test('membership.liveness: a peer heard from over a one-way link has not answered, and answers stop counting when they stop', async () => {
  const sim = new DiscoverySim()
  const [a, b] = await sim.cluster(2) as [DPeer, DPeer]
  const live = (): ReturnType<typeof liveness> => liveness(a, b.self)
  await sim.clock.advance(2000)
  const before = live()
  assert.ok(before.answeredAt !== undefined && before.heardAt !== undefined && before.now - before.answeredAt <= 1000)
  sim.net.cutLink(a.self, b.self, true) // a's messages to b are lost; b's still reach a
  const cutAt = sim.clock.now()
  await sim.clock.advance(6500)
  const after = live()
  assert.ok(after.answeredAt! <= cutAt, 'b has answered none of a\'s heartbeats since the cut')
  assert.ok(after.heardAt! >= cutAt + 2000, `but a still hears b (last at ${after.heardAt! - cutAt} ms after the cut)`)
  await sim.stop()
})

/** The liveness reading `peer` has of `other`, through the discovery service's membership component. */
function liveness (peer: DPeer, other: string): { now: number, heardAt: number | undefined, answeredAt: number | undefined } {
  const membership = (d(peer) as unknown as { c: { membership: { liveness: () => { now: number, peers: Array<{ peer: string, heardAt?: number, answeredAt?: number }> } } } }).c.membership
  const reading = membership.liveness()
  const p = reading.peers.find(x => x.peer === other)!
  return { now: reading.now, heardAt: p.heardAt, answeredAt: p.answeredAt }
}
