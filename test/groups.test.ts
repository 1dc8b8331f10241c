/**
 * Replicated groups: a peer hosts many EventFolds, each with its own participants, over one
 * libp2p node (real peers over TCP on 127.0.0.1, in one process). Groups come from services
 * (test/support/rooms.ts: a managed group per room, a cluster-wide directory of rooms).
 */
import { test, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { startLegion } from '../src/peer/start.js'
import type { Legion } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { defineService } from '../src/peer/services.js'
import { rooms, type Rooms } from '../demo/rooms.js'
import { until } from './support/cluster.js'

const counter: EventSpec<number, number, number> = { init: () => 0, apply: (n, s) => ({ ok: true, output: s + n, state: s + n }) }
type RoomPeer = Legion<number, number, number, { rooms: ReturnType<typeof rooms> }>

const everyone: Array<Legion<number, number, number, never>> = []
async function stopEveryone (): Promise<void> {
  await Promise.all(everyone.splice(0).map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
}
afterEach(stopEveryone)
after(stopEveryone)

// Quick enough for the ejection test, slow enough that a loaded machine's stalls eject nobody.
const fast = { heartbeatIntervalMs: 500, suspectAfterMs: 3000, stuckAfterMs: 10_000 }

async function roomCluster (n: number): Promise<RoomPeer[]> {
  const base = { cluster: 'groups-test', spec: counter, services: { rooms: rooms() }, failureDetection: fast, propagation: { intervalMs: 250 } }
  const first = await startLegion({ ...base, startup: { mode: 'new' } })
  const peers: RoomPeer[] = [first]
  for (let i = 1; i < n; i++) peers.push(await startLegion({ ...base, startup: { mode: 'join', peers: first.multiaddrs() } }))
  everyone.push(...peers as never[])
  await until(peers as never[], () => peers.every(p => p.readState().participants.length === n), `${n} participants`, 30_000)
  return peers
}

function roomsOf (p: RoomPeer): Rooms {
  return p.services.rooms
}

test('two groups with different participants on the same peers converge independently; non-members hold nothing', async () => {
  const peers = await roomCluster(5)
  const [p0, p1, p2, p3, p4] = peers as [RoomPeer, RoomPeer, RoomPeer, RoomPeer, RoomPeer]
  await roomsOf(p0).create('r1', [p0.self, p1.self, p2.self])
  await roomsOf(p2).create('r2', [p2.self, p3.self, p4.self])
  const members = { r1: [p0, p1, p2], r2: [p2, p3, p4] }
  for (const [room, ms] of Object.entries(members)) {
    await until(peers as never[], () => ms.every(m => roomsOf(m).held(room)), `the members of ${room} hold it`, 15_000)
  }
  await Promise.all([
    ...[p0, p1, p2].map(async (m, i) => await roomsOf(m).say('r1', `r1-from-${i}`)),
    ...[p2, p3, p4].map(async (m, i) => await roomsOf(m).say('r2', `r2-from-${i}`))
  ])
  for (const [room, ms] of Object.entries(members)) {
    // A say resolves once its line settled at the sayer; the others learn it settled a
    // message later.
    await until(peers as never[], () => ms.every(m => roomsOf(m).transcript(room).length === 3), `every member of ${room} settled three lines`, 15_000)
    const logs = ms.map(m => JSON.stringify(roomsOf(m).transcript(room)))
    assert.equal(new Set(logs).size, 1, `${room}: every member has the same settled transcript`)
    assert.equal(roomsOf(ms[0]!).transcript(room).length, 3)
    assert.deepEqual([...roomsOf(ms[0]!).participants(room)].sort(), ms.map(m => m.self).sort())
  }
  assert.equal(roomsOf(p3).held('r1'), false, 'p3 is not in r1')
  assert.throws(() => roomsOf(p0).transcript('r2'), { name: 'GroupNotReadyError' })
  assert.deepEqual(roomsOf(p4).directory(), ['r1', 'r2'], 'the cluster-wide directory lists both rooms on every peer')
})

test('a group of 3 among 5 keeps settling after one of its members is killed and ejected from the cluster', async () => {
  const peers = await roomCluster(5)
  const [p0, p1, p2] = peers as [RoomPeer, RoomPeer, RoomPeer]
  await roomsOf(p0).create('trio', [p0.self, p1.self, p2.self])
  await until(peers as never[], () => [p0, p1, p2].every(m => roomsOf(m).held('trio')), 'the trio holds its room', 15_000)
  await roomsOf(p1).say('trio', 'before')
  await p1.stop({ leave: false }) // killed: it says nothing
  const survivors = peers.filter(p => p !== p1)
  await until(survivors as never[], () => survivors.every(p => !p.readState().participants.includes(p1.self)), 'p1 is ejected from the cluster', 20_000)
  await roomsOf(p2).say('trio', 'after', 10_000)
  assert.deepEqual([...roomsOf(p0).participants('trio')].sort(), [p0.self, p2.self].sort(), 'the ejection removed p1 from the room too')
  await until(survivors as never[], () => roomsOf(p0).transcript('trio').length === 2, 'p0 settles what p2 said')
  assert.deepEqual(roomsOf(p0).transcript('trio').map(l => l.text), ['before', 'after'])
})

test('1,000 groups on 3 peers: a joiner gets every cluster-wide group, events in some converge, and idle groups send nothing', async () => {
  const many = defineService({
    name: 'many',
    needs: ['groups'],
    create: ({ groups }) => {
      const gs = Array.from({ length: 1000 }, (_, i) => groups.clusterWide(`g${i}`, { spec: counter }))
      return { groups: gs }
    }
  })
  // Joining 1,001 groups takes a sponsor and a joiner a fraction of a second of CPU on a quiet
  // machine, several seconds under three test suites at once: suspicion after 15 s and stuck
  // after 60 s, so a stalled event loop does not get anyone ejected meanwhile (in one of three
  // suites run at once a peer of this test was ejected with the defaults; most likely reported
  // stuck while still acknowledging its 1,001 Joins after the default 10 s, not confirmed).
  const base = { cluster: 'groups-many', spec: counter, services: { many }, propagation: { intervalMs: 250 }, failureDetection: { suspectAfterMs: 15_000, stuckAfterMs: 60_000 }, joinTimeoutMs: 60_000 }
  const a = await startLegion({ ...base, startup: { mode: 'new' } })
  const b = await startLegion({ ...base, startup: { mode: 'join', peers: a.multiaddrs() } })
  const c = await startLegion({ ...base, startup: { mode: 'join', peers: a.multiaddrs() } })
  const peers = [a, b, c]
  everyone.push(...peers as never[])
  for (const p of peers) assert.equal(p.stats().groups.held, 1001)
  const touched = [7, 123, 456, 789, 999]
  await Promise.all(touched.map(async (i, k) => await peers[k % 3]!.services.many.groups[i]!.applyConsistent(i, { timeoutMs: 20_000 })))
    .catch((err: Error) => {
      // Once under heavy load (four test runs at once on 2 cores): what each peer saw then.
      const seen = peers.map(p => {
        const s = p.stats()
        const held = touched.map(i => { const r = p.services.many.groups[i]!.readState(); return `g${i}: infimum ${String(r.infimum)}, outstanding ${r.outstanding}` }).join(', ')
        return `${p.self.slice(-6)}: ${JSON.stringify({ participants: s.participants, suspected: s.suspected, stuck: s.stuck.length, outstandingGroups: s.groups.outstanding, ejections: s.counters.autoEjections, timesEjected: s.counters.timesEjected })} ${held}`
      })
      throw new Error(`${err.message}; ${seen.join('; ')}`, { cause: err })
    })
  await until(peers as never[], () => peers.every(p => touched.every(i => p.services.many.groups[i]!.readState().infimum === i && p.services.many.groups[i]!.readState().outstanding === 0)), 'the touched groups settle everywhere', 20_000)
  // Idle: with nothing outstanding, anti-entropy has nothing to pull.
  await until(peers as never[], () => peers.every(p => p.stats().groups.outstanding === 0), 'nothing outstanding anywhere', 20_000)
  const exchanged = (p: typeof a): string => { const c = p.stats().counters; return JSON.stringify([c.syncsRequested, c.syncsServed, c.diffMerges, c.fullMerges]) }
  // The last acknowledgements of the burst may still be re-announced to a peer that was behind
  // (once); wait for a quiet interval, bounded, before measuring the idle one.
  let before = peers.map(exchanged)
  for (let i = 0; i < 10; i++) {
    await new Promise(resolve => setTimeout(resolve, 600))
    const now = peers.map(exchanged)
    if (JSON.stringify(now) === JSON.stringify(before)) break
    before = now
  }
  const heartbeats = peers.map(p => p.stats().counters.heartbeatsSent)
  await new Promise(resolve => setTimeout(resolve, 1500)) // an idle period: several anti-entropy intervals
  peers.forEach((p, i) => {
    assert.equal(exchanged(p), before[i], 'while idle no group pulls, pushes or merges anything')
    assert.ok(p.stats().counters.heartbeatsSent > heartbeats[i]!, 'the peer was running: it sent heartbeats')
  })
})

test('a peer ejected while alive rejoins and gets every cluster-wide group back; the service re-adds it to its rooms', async () => {
  const peers = await roomCluster(3)
  const [p0, p1, p2] = peers as [RoomPeer, RoomPeer, RoomPeer]
  await roomsOf(p0).create('all', [p0.self, p1.self, p2.self])
  await until(peers as never[], () => peers.every(m => roomsOf(m).held('all')), 'everyone holds the room', 15_000)
  await roomsOf(p2).say('all', 'one')
  await p0.eject(p2.self)
  await until(peers as never[], () => p2.stats().counters.rejoins >= 1 && p2.stats().membership === 'participant', 'p2 rejoins', 20_000)
  assert.deepEqual(roomsOf(p2).directory(), ['all'], 'the cluster-wide directory came back with the rejoin')
  await until(peers as never[], () => roomsOf(p2).held('all'), 'the rooms service re-adds p2 to its room', 20_000)
  await roomsOf(p2).say('all', 'two', 10_000)
  await until(peers as never[], () => roomsOf(p0).transcript('all').length === 2, 'p0 settles what p2 said after its rejoin')
  assert.deepEqual(roomsOf(p0).transcript('all').map(l => l.text), ['one', 'two'])
})
