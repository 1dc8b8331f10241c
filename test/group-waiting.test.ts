/**
 * A managed group's new member, before it holds the group's state, on the in-memory network
 * with a manual clock: every participant's batches reach it as soon as its Join is known,
 * and the one that added it pushes it the whole fold. It waits for that push before pulling
 * (WAITING_PUSH_GRACE_MS), and then pulls the whole fold from at most one participant at a
 * time, so the state is not shipped once per participant. A peer that no longer holds a group
 * the others still count it in is readmitted rather than taken for its old replica.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startPeer } from '../src/peer/start.js'
import { defineService } from '../src/peer/services.js'
import type { EventSpec } from '../src/eventfold/types.js'
import type { Legion, StartupMode } from '../src/peer/options.js'
import { FakeNetwork, ManualClock, seededRandom, settleTurns } from './support/fake-network.js'

const counter: EventSpec<number, number, number> = { init: () => 0, apply: (n, s) => ({ ok: true, output: s + n, state: s + n }) }

type WaitingPeer = Legion<number, number, number, { w: ReturnType<typeof waitingService> }>

function waitingService () {
  return defineService({
    name: 'w',
    needs: ['groups'],
    create: ({ groups }) => ({ group: groups.managed('g', { spec: counter }), found: () => { groups.found('g') }, forget: () => { groups.drop('g') } })
  })
}

/** Four peers on the in-memory network; a founds group g with b and c in it and one event settled. */
async function fourPeers (clock: ManualClock, net: FakeNetwork, peers: WaitingPeer[], propagationMs = 60_000): Promise<WaitingPeer[]> {
  const svc = waitingService()
  let seed = 1
  async function start (startup: StartupMode): Promise<WaitingPeer> {
    const p = await startPeer<number, number, number, { w: typeof svc }>({ cluster: 'waiting', spec: counter, startup, services: { w: svc }, propagation: { intervalMs: propagationMs } },
      { network: async key => await net.node(key), clock, random: seededRandom(seed++) })
    peers.push(p)
    return p
  }
  const a = await start({ mode: 'new' })
  for (let i = 0; i < 3; i++) await start({ mode: 'join', peers: a.multiaddrs() })
  const [, b, c] = peers
  a.services.w.found()
  for (const p of [b!, c!]) await a.services.w.group.participate(p.self)
  await settleTurns(200)
  await a.services.w.group.applyConsistent(1, { timeoutMs: 5000 })
  return peers
}

test('a new member of a managed group takes the state the owner pushes and pulls nothing, though every participant sends it batches', async () => {
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const peers: WaitingPeer[] = []
  try {
    const [a, , , d] = await fourPeers(clock, net, peers)
    const before = d!.stats().counters.syncsRequested
    const added = await a!.services.w.group.participate(d!.self, { timeoutMs: 1000 })
    assert.deepEqual(added.reached, [d!.self], 'the push arrived')
    await clock.advance(1500)
    await settleTurns(400)
    assert.equal(d!.services.w.group.held(), true, 'the new member holds the state')
    assert.equal(d!.stats().counters.syncsRequested - before, 0, 'the new member pulled no whole fold')
  } finally {
    await Promise.all(peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
  }
})

test('a new member of a managed group whose push is lost pulls the whole fold from one participant, however many send it batches', async () => {
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const peers: WaitingPeer[] = []
  try {
    const [a, , , d] = await fourPeers(clock, net, peers)
    const g = a!.services.w.group
    const before = d!.stats().counters.syncsRequested
    // The push of the one that adds d is lost: d gets the state from the others' batches.
    net.cutLink(a!.self, d!.self, true)
    const adding = g.participate(d!.self, { timeoutMs: 1000 }).catch(() => undefined)
    await clock.advance(1500)
    await settleTurns(400)
    const added = await adding
    assert.deepEqual(added?.reached ?? [], [], 'the push did not arrive')
    assert.equal(d!.services.w.group.held(), true, 'the new member holds the state')
    const pulled = d!.stats().counters.syncsRequested - before
    assert.equal(pulled, 1, `the new member pulled ${pulled} whole folds while it waited (two participants sent it batches)`)
  } finally {
    await Promise.all(peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
  }
})

test('a participant that forgot a managed group the others still count it in refuses a state that counts it in, and is readmitted (an UnJoin and a Join): every replica settles alike', async () => {
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const peers: WaitingPeer[] = []
  try {
    const [a, b, c] = await fourPeers(clock, net, peers, 1000)
    // b adds an event that reaches c but not a, then forgets the group (as a release does
    // after its own UnJoin, or a rejoin): a and c still count b in.
    net.cutLink(b!.self, a!.self, true)
    b!.services.w.group.applyFast(10)
    await clock.advance(100)
    await settleTurns(400)
    assert.equal(c!.services.w.group.readState().projected, 11, 'c holds b\'s event')
    assert.equal(a!.services.w.group.readState().projected, 1, 'a does not')
    b!.services.w.forget()
    assert.equal(b!.services.w.group.held(), false)
    net.heal()
    const added = await a!.services.w.group.participate(b!.self, { timeoutMs: 5000 })
    assert.deepEqual(added.reached, [b!.self], 'b takes a whole fold, after its readmission (a diff, or a fold counting in its old replica, is refused)')
    for (let i = 0; i < 10; i++) { await clock.advance(500); await settleTurns(400) }
    const states = [a!, b!, c!].map(p => p.services.w.group.readState())
    assert.ok(states.every(s => s.joined && s.outstanding === 0), JSON.stringify(states.map(s => [s.infimumId, s.outstanding, s.joined])))
    assert.deepEqual(new Set(states.map(s => `${s.infimumId.counter}:${s.infimumId.participant}=${String(s.infimum)}`)).size, 1, 'one settled history')
  } finally {
    await Promise.all(peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
  }
})

test('a managed group defined keepAcrossRejoin keeps the state of a replica it drops as a former one until the service lets it go; one not defined so keeps nothing', async () => {
  // A replica dropped on leaving may be a partition's only copy (docs/RELIABILITY.md, keyspace
  // link cuts with R = 2, seed 72).
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const svc = defineService({
    name: 'k',
    needs: ['groups'],
    create: ({ groups }) => ({ kept: groups.managed('kept', { spec: counter, keepAcrossRejoin: true }), plain: groups.managed('plain', { spec: counter }), groups })
  })
  const p = await startPeer<number, number, number, { k: typeof svc }>({ cluster: 'formers', spec: counter, startup: { mode: 'new' }, services: { k: svc } },
    { network: async key => await net.node(key), clock, random: seededRandom(1) })
  try {
    const { kept, plain, groups } = p.services.k
    groups.found('kept')
    groups.found('plain')
    await kept.applyConsistent(5, { timeoutMs: 1000 })
    await plain.applyConsistent(7, { timeoutMs: 1000 })
    groups.drop('kept')
    groups.drop('plain')
    assert.equal(kept.held(), false)
    assert.deepEqual(groups.formerState('kept'), { state: 5 })
    assert.equal(groups.formerState('plain'), undefined)
    assert.deepEqual(groups.formers(), ['kept'])
    groups.forgetFormer('kept')
    assert.equal(groups.formerState('kept'), undefined)
  } finally {
    await p.stop({ leave: false }).catch(() => {})
  }
})
