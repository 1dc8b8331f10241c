/**
 * Membership on stubs: whole peers over the in-memory network with a manual clock, so that
 * suspicion, stuck participants, ejection, broken links and address exchange are specified
 * with deterministic time and no sockets (test/support/fake-network.ts).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Codec } from '../src/codec/codec.js'
import { jsonCodec } from '../src/codec/json.js'
import { DecodeError } from '../src/codec/errors.js'
import { describeJoinFailure } from '../src/peer/membership/join-failure.js'
import type { OperatorControl } from '../src/peer/operator.js'
import { membersView } from '../src/admin/views.js'
import { PeerUnreachableError } from '../src/transport/errors.js'
import { settleTurns } from './support/fake-network.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { Sim, spec, type Log, type Peer } from './support/membership-sim.js'

test('a participant that goes silent is suspected after suspectAfterMs and ejected by the majority', async () => {
  const sim = new Sim()
  const [a, b, c] = await sim.cluster(3) as [Peer, Peer, Peer]
  sim.net.crash(c.self)
  const took = await sim.until(() => a.readState().participants.length === 2 && b.readState().participants.length === 2, 'c is ejected')
  assert.ok(took > 3000, `ejected after ${took} simulated ms, not before suspectAfterMs`)
  assert.deepEqual(a.stats().suspected, [], 'an ejected peer is no longer listed as suspected')
  assert.equal(a.stats().counters.autoEjections + b.stats().counters.autoEjections >= 1, true)
  await sim.stop()
})

test('a participant that dies is ejected about suspectAfterMs after the voters last heard it, not a heartbeat interval later', async () => {
  const sim = new Sim()
  const peers = await sim.cluster(5)
  const [a, , , , e] = peers as [Peer, Peer, Peer, Peer, Peer]
  // Crash e just after a heartbeat round, so that every voter heard it a moment ago.
  await sim.clock.advance(1000 - (sim.clock.now() % 1000) + 20)
  await settleTurns()
  sim.net.crash(e.self)
  const crashedAt = sim.clock.now()
  const others = peers.filter(p => p !== e)
  let ejectedAt: number | undefined
  for (let i = 0; i < 400 && ejectedAt === undefined; i++) {
    await sim.clock.advance(25)
    await settleTurns()
    if (others.every(p => !p.readState().participants.includes(e.self))) ejectedAt = sim.clock.now()
  }
  assert.ok(ejectedAt !== undefined, 'e is ejected within 10 simulated seconds')
  const took = ejectedAt - crashedAt
  // suspectAfterMs is 3000 and heartbeats go every 1000 ms: checked only on the regular tick,
  // each voter would notice up to 1000 ms late.
  assert.ok(took > 2900 && took < 3600, `ejected ${took} ms after the crash`)
  assert.ok(a.stats().counters.autoEjections + others.reduce((n, p) => n + p.stats().counters.autoEjections, 0) >= 1)
  await sim.stop()
})

test('a stall of the whole process (every peer of it) longer than suspectAfterMs ejects nobody; a peer that died meanwhile is still ejected', async () => {
  const sim = new Sim()
  const peers = await sim.cluster(5)
  const [a, , , , e] = peers as [Peer, Peer, Peer, Peer, Peer]
  await sim.clock.advance(2000)
  // Every peer shares the stalled event loop: on waking, each one's timers run before
  // anything queued for it is read. Without discounting its own pause, each would find all the
  // others silent for 5 s, and they would eject one another.
  sim.clock.stall(5000)
  await sim.clock.advance(10_000)
  for (const p of peers) {
    assert.equal(p.readState().participants.length, 5, `${p.self.slice(-6)} still has five participants`)
    assert.equal(p.stats().counters.autoEjections, 0)
  }
  // A dead peer: its silence counts only while the others can listen.
  sim.net.crash(e.self)
  sim.clock.stall(5000)
  const others = peers.filter(p => p !== e)
  const took = await sim.until(() => others.every(p => !p.readState().participants.includes(e.self)), 'e is ejected')
  assert.ok(took > 1500 && took < 5000, `e ejected ${took} ms after the stall ended`)
  assert.equal(a.readState().participants.length, 4)
  await sim.stop()
})

test('a participant that cannot decode what it is sent is reported stuck by the others, and says why itself', async () => {
  // c's event codec refuses 'poison': it cannot merge batches that carry it, so it never
  // acknowledges, while it keeps answering heartbeats. (Stuck peers are not ejected here, so
  // the report stays to be read.)
  const picky: Codec<string> = {
    encode: (v, w) => { jsonCodec.encode(v, w) },
    decode: (r, limits) => { const v = jsonCodec.decode(r, limits); if (v === 'poison') throw new DecodeError('invalid', 'this version does not know poison'); return v as string }
  }
  const sim = new Sim({ failureDetection: { heartbeatIntervalMs: 1000, suspectAfterMs: 3000, stuckAfterMs: 5000, autoEject: { stuck: false } } })
  const [a, b] = await sim.cluster(2) as [Peer, Peer]
  const c = await sim.start({ mode: 'join', peers: a.multiaddrs() }, { codecs: { event: picky, state: jsonCodec as unknown as Codec<Log>, output: jsonCodec as unknown as Codec<number> } })
  await sim.until(() => [a, b, c].every(p => p.readState().participants.length === 3), 'three participants')
  void a.applyConsistent('poison', { timeoutMs: 120_000 }).catch(() => {})
  await sim.until(() => [a, b].every(p => p.stats().stuck.some(s => s.peer === c.self)), 'a and b find c stuck')
  const stuck = a.stats().stuck.find(s => s.peer === c.self)!
  assert.ok(stuck.sinceProgressMs >= 5000, `stuck for ${stuck.sinceProgressMs} ms`)
  await sim.until(() => c.stats().health.kind === 'stuck', 'c learns that it is stuck')
  const health = c.stats().health
  assert.ok(health.kind === 'stuck' && /could not decode/.test(health.reason), `c says why: ${JSON.stringify(health)}`)
  assert.deepEqual(health.kind === 'stuck' ? health.reportedBy : [], [a.self, b.self].sort())
  await sim.until(() => /could not decode/.test(a.stats().stuck.find(s => s.peer === c.self)?.reason ?? ''), 'a shows why, as c said in its heartbeat')
  assert.equal(a.readState().projectedParticipants.length, 3, 'with autoEject.stuck off, nobody ejects c')
  await sim.stop()
})

test('a participant whose acknowledgements are lost while its heartbeats arrive is ejected as stuck, which unblocks the fold; nobody hangs up on it', async () => {
  const sim = new Sim()
  const [a, b, c] = await sim.cluster(3) as [Peer, Peer, Peer]
  sim.net.dropProtocols(c.self, ['fold', 'sync', 'push', 'outputs'])
  const pending = a.applyConsistent('x', { timeoutMs: 120_000 })
  const took = await sim.until(() => [a, b].every(p => !p.readState().projectedParticipants.includes(c.self)), 'c is ejected')
  assert.ok(took >= 5000, `ejected after ${took} ms: not before stuckAfterMs`)
  assert.deepEqual([a, b].map(p => p.stats().suspected), [[], []], 'c was never silent')
  // Its connections stay open: its rejoin (through either of them) may be on them already.
  assert.deepEqual([a, b].map(p => sim.net.hangUps.get(`${p.self}>${c.self}`) ?? 0), [0, 0], 'nobody hung up on c')
  assert.equal(await sim.settle(pending, 'the event folds'), 0)
  await sim.stop()
})

test('a participant whose acknowledgements are lost on one link only, while it keeps creating events, is found stuck by the peer it cannot reach', async () => {
  // c's own events are acknowledged by c wherever they arrive (relayed by b, at a): "the
  // newest event" kept moving at a while a's fold waited for c's acknowledgement of a's event.
  const sim = new Sim()
  const [a, b, c] = await sim.cluster(3) as [Peer, Peer, Peer]
  sim.net.dropProtocolsTo(c.self, a.self, ['fold', 'sync', 'push', 'outputs'])
  const pending = a.applyConsistent('from-a', { timeoutMs: 120_000 }).catch((err: Error) => err)
  let created = 0
  const every = sim.clock.every(500, () => { c.applyFast(`from-c-${created++}`) })
  const took = await sim.until(() => a.stats().stuck.some(s => s.peer === c.self), 'a finds c stuck')
  assert.ok(took >= 5000, `found after ${took} ms: not before stuckAfterMs`)
  assert.ok(created >= 10, `c kept creating events (${created})`)
  assert.ok(a.readState().outstanding > created / 2, 'and a holds them outstanding: its fold waits for c')
  assert.deepEqual(a.stats().divergent.map(d => d.peer), [c.self])
  assert.deepEqual(a.stats().divergent[0]!.latestAcknowledged, a.stats().infimumId, 'c acknowledged nothing a holds outstanding')
  await sim.until(() => c.stats().health.kind === 'stuck', 'c learns that a finds it stuck')
  const health = c.stats().health
  assert.deepEqual(health.kind === 'stuck' ? health.reportedBy : [], [a.self])
  assert.deepEqual(b.stats().stuck, [], 'b, which c reaches, finds nobody stuck')
  every.cancel()
  void pending
  await sim.stop()
})

test('a participant whose batches are lost on one link is pulled from by the peer whose fold waits for it, which keeps settling', async () => {
  // The fold protocol alone fails from c to a (a stream that swallows what is written to it):
  // a's sync requests to c, and their answers, still get through.
  const sim = new Sim()
  const [a, b, c] = await sim.cluster(3) as [Peer, Peer, Peer]
  sim.net.dropProtocolsTo(c.self, a.self, ['fold'])
  const pulls = a.stats().counters.syncsRequested
  const fromA = a.applyConsistent('from-a', { timeoutMs: 120_000 })
  const fromC = Array.from({ length: 5 }, (_, i) => c.applyConsistent(`from-c-${i}`, { timeoutMs: 120_000 }))
  const outputs = await sim.settle(Promise.all([fromA, ...fromC]), 'every event folds at its creator')
  assert.deepEqual([...outputs].sort(), [0, 1, 2, 3, 4, 5])
  const took = await sim.until(() => a.readState().outstanding === 0 && a.readState().infimum.log.length === 6, 'a settles every event')
  assert.ok(took <= 10_000, `settled at a ${took} ms after the last creator: within a few anti-entropy rounds`)
  assert.ok(a.stats().counters.syncsRequested > pulls, 'a pulled from c')
  assert.deepEqual([a, b, c].map(p => p.readState().infimum.log), [0, 1, 2].map(() => a.readState().infimum.log))
  assert.ok([a, b].every(p => p.readState().projectedParticipants.length === 3), 'nobody was ejected')
  await sim.stop()
})

test('two peers that join at the same moment through different sponsors find each other and the fold keeps settling', async () => {
  const sim = new Sim()
  const [a, b] = await sim.cluster(3) as [Peer, Peer, Peer]
  const [x, y] = await Promise.all([
    sim.start({ mode: 'join', peers: a.multiaddrs() }),
    sim.start({ mode: 'join', peers: b.multiaddrs() })
  ])
  await sim.until(() => sim.peers.every(p => p.readState().participants.length === 5), 'five participants everywhere')
  const outputs = await sim.settle(Promise.all([x!.applyConsistent('from-x', { timeoutMs: 60_000 }), y!.applyConsistent('from-y', { timeoutMs: 60_000 })]), 'both events fold')
  assert.deepEqual([...outputs].sort(), [0, 1])
  await sim.until(() => sim.peers.every(p => p.readState().outstanding === 0 && p.readState().infimum.log.length === 2), 'every peer folded both events')
  assert.ok(sim.peers.every(p => p.stats().counters.timesEjected === 0), 'nobody was ejected')
  await sim.stop()
})

test('a joiner whose first dial to a participant fails reaches it at a later anti-entropy round, long before anyone suspects anyone', async () => {
  // Neither knows the other's address but from the sponsor's answer to the joiner: without it
  // remembered, the two would stay apart until suspicion made their heartbeats ask for it.
  const sim = new Sim({ failureDetection: { heartbeatIntervalMs: 1000, suspectAfterMs: 60_000, stuckAfterMs: 120_000 } })
  const [a, b] = await sim.cluster(2) as [Peer, Peer]
  const key = await generateKeyPair('Ed25519')
  sim.net.cutLink(b.self, peerIdFromPrivateKey(key).toString())
  await sim.start({ mode: 'join', peers: a.multiaddrs() }, { privateKey: key })
  await settleTurns()
  assert.equal(b.readState().outstanding, 1, 'at b, c\'s Join waits for c\'s acknowledgement')
  sim.net.heal()
  const took = await sim.until(() => sim.peers.every(p => p.readState().participants.length === 3 && p.readState().outstanding === 0), 'every peer settled c\'s Join')
  assert.ok(took <= 5_000, `settled ${took} ms after the link healed (anti-entropy every 1,000 ms)`)
  assert.ok(sim.peers.every(p => p.stats().suspected.length === 0), 'and nobody suspected anyone')
  await sim.stop()
})

test('a link broken between two of five participants does not stall the fold: the larger id is ejected, and may rejoin once it heals', async () => {
  const sim = new Sim()
  const peers = await sim.cluster(5)
  const [p, q] = [...peers].sort((u, v) => u.self < v.self ? -1 : 1).slice(3) as [Peer, Peer]
  sim.net.cutLink(p.self, q.self)
  const others = peers.filter(x => x !== p && x !== q)
  const folded = others[0]!.applyConsistent('across-the-break', { timeoutMs: 120_000 })
  await sim.until(() => others.every(o => !o.readState().projectedParticipants.includes(q.self)), 'the larger end of the broken link is ejected')
  assert.equal(typeof await sim.settle(folded, 'the event folds'), 'number', 'the fold settles without it')
  assert.ok(others.every(o => o.readState().projectedParticipants.includes(p.self)), 'the smaller end stays')
  sim.net.heal()
  await sim.until(() => peers.every(x => x.readState().participants.length === 5 && x.stats().membership === 'participant'), 'it rejoins once the link heals')
  await sim.stop()
})

test('a participant cut from two of five is ejected, not the two it cannot reach, though its id is the smallest; it stays out while the links stay cut, and rejoins once they heal', async () => {
  const sim = new Sim()
  const peers = await sim.cluster(5)
  const [x, y, z] = [...peers].sort((u, v) => u.self < v.self ? -1 : 1) as [Peer, Peer, Peer]
  sim.net.cutLink(x.self, y.self)
  sim.net.cutLink(x.self, z.self)
  const others = peers.filter(p => p !== x)
  const bystanders = others.filter(p => p !== y && p !== z)
  const folded = others[0]!.applyConsistent('across-the-breaks', { timeoutMs: 120_000 })
  // The two that hear all three see both links, in stats() and in the admin endpoint's members.
  await sim.until(() => bystanders.every(b => b.stats().brokenLinks.length === 2), 'the peers that hear all three see both broken links')
  for (const b of bystanders) {
    assert.deepEqual(b.stats().brokenLinks.map(l => l.between), [[x.self, y.self], [x.self, z.self]])
    const members = membersView({ stats: () => b.stats(), clusterState: () => b.readState() } as unknown as OperatorControl).members
    assert.deepEqual(members.filter(m => m.unreachable !== undefined).map(m => [m.peer, m.unreachable]), [[x.self, [y.self, z.self]], [y.self, [x.self]], [z.self, [x.self]]].sort((u, v) => u[0]! < v[0]! ? -1 : 1))
  }
  // An end may see the other link for a moment (x not silent to it yet, the other end's report
  // already in), never its own: it does not hear the other end.
  assert.ok([y, z].every(p => p.stats().brokenLinks.every(l => !l.between.includes(p.self))), 'an end never sees its own broken link')
  await sim.until(() => others.every(o => !o.readState().projectedParticipants.includes(x.self)), 'the end of both broken links is ejected')
  assert.ok(others.every(o => o.stats().brokenLinks.length === 0), 'with it out, no broken link among the members')
  assert.equal(typeof await sim.settle(folded, 'the event folds'), 'number', 'the fold settles without it')
  assert.ok(others.every(o => o.readState().participants.length === 4), 'the four others all stay')
  assert.ok(others.every(o => o.stats().counters.timesEjected === 0), 'and none of them was ever ejected')
  // While the links stay cut it probes y and z at every tick, gets no answer, asks to rejoin
  // naming them unreachable, and is refused: admitted, it would stall y's and z's folds until
  // it was ejected again.
  await sim.pass(30_000)
  assert.equal(x.stats().counters.rejoins, 0, 'no rejoin while the links stay cut')
  assert.equal(x.stats().counters.timesEjected, 1)
  assert.equal(x.stats().membership, 'ejected')
  assert.deepEqual(x.stats().cannotReach, [y.self, z.self].sort(), 'it says why it stays out')
  const registry = (x as unknown as { metrics: { registry: import('prom-client').Registry } }).metrics.registry
  assert.match(await registry.getSingleMetricAsString('legion_cannot_reach'), /^legion_cannot_reach 2$/m)
  for (const p of [y, z]) assert.equal(typeof await sim.settle(p.applyConsistent('meanwhile', { timeoutMs: 120_000 }), 'an end folds meanwhile', 2000), 'number', 'the peers it cannot reach fold within 2 s')
  sim.net.heal()
  const took = await sim.until(() => peers.every(p => p.readState().participants.length === 5 && p.stats().membership === 'participant'), 'it rejoins once the links heal')
  // Its next rejoin attempt (a heartbeat interval at most) first probes y and z, which answer
  // now; then it asks, and its Join folds.
  assert.ok(took <= 3000, `rejoined ${took} simulated ms after the heal`)
  assert.equal(x.stats().counters.rejoins, 1)
  assert.deepEqual(x.stats().cannotReach, [])
  await sim.stop()
})

test('a participant cut from three of six, so that it hears only half the cluster, is ejected and stays out while the links stay cut', async () => {
  const sim = new Sim()
  const peers = await sim.cluster(6)
  const sorted = [...peers].sort((u, v) => u.self < v.self ? -1 : 1)
  const x = sorted[0]!
  const far = sorted.slice(1, 4)
  for (const p of far) sim.net.cutLink(x.self, p.self)
  const others = peers.filter(p => p !== x)
  await sim.until(() => others.every(o => !o.readState().projectedParticipants.includes(x.self)), 'the end of the three broken links is ejected')
  // It hears three of six, itself counted: no majority, yet it must not rejoin, or each of the
  // three it cannot reach would wait for its acknowledgements until it was ejected again.
  await sim.pass(30_000)
  assert.equal(x.stats().counters.rejoins, 0, 'no rejoin while the links stay cut')
  assert.deepEqual(x.stats().cannotReach, far.map(p => p.self), 'it says why it stays out')
  for (const p of far) assert.equal(typeof await sim.settle(p.applyConsistent('meanwhile', { timeoutMs: 120_000 }), 'a far end folds meanwhile', 2000), 'number', 'the peers it cannot reach fold within 2 s')
  assert.ok(others.every(o => o.stats().counters.timesEjected === 0), 'none of the others was ever ejected')
  sim.net.heal()
  await sim.until(() => peers.every(p => p.readState().participants.length === 6 && p.stats().membership === 'participant'), 'it rejoins once the links heal')
  assert.equal(x.stats().counters.rejoins, 1)
  await sim.stop()
})

test('a peer ejected at a broken link rejoins while the link is still cut once the other end is no longer a participant', async () => {
  const sim = new Sim()
  const peers = await sim.cluster(5)
  const [p, q] = [...peers].sort((u, v) => u.self < v.self ? -1 : 1).slice(3) as [Peer, Peer]
  sim.net.cutLink(p.self, q.self)
  const others = peers.filter(x => x !== q)
  await sim.until(() => others.every(o => !o.readState().projectedParticipants.includes(q.self)), 'the larger end of the broken link is ejected')
  await sim.pass(10_000)
  assert.equal(q.stats().counters.rejoins, 0, 'refused while p, which it cannot reach, is a participant the others hear')
  // p dies: the others find it silent and eject it, and q, which never heard it again, is
  // admitted although the link is still cut.
  sim.net.crash(p.self)
  const stayers = others.filter(x => x !== p)
  await sim.until(() => stayers.every(o => !o.readState().projectedParticipants.includes(p.self)), 'the dead end is ejected')
  await sim.until(() => [...stayers, q].every(x => x.readState().participants.length === 4 && x.stats().membership === 'participant'), 'q rejoins without p')
  assert.equal(q.stats().counters.rejoins, 1)
  await sim.stop()
})

test('a peer restarted under the same id answers nothing it cannot judge: nobody takes its refusals for an ejection', async () => {
  const sim = new Sim({ failureDetection: { heartbeatIntervalMs: 1000, suspectAfterMs: 3000, autoEject: false } })
  const [a, b, c] = await sim.cluster(3) as [Peer, Peer, Peer]
  const key = (c as unknown as { privateKey: import('@libp2p/interface').PrivateKey }).privateKey
  sim.net.crash(c.self)
  void a.applyFast('while-c-was-down')
  await sim.clock.advance(2000)
  // The restarted process is up, and connected to b, long before it has joined: b loses its
  // join answer, so it waits there, heartbeated by b, until it tries a.
  sim.net.dropProtocols(b.self, ['join'])
  const restarted = await sim.settle(sim.start({ mode: 'join', peers: [...b.multiaddrs(), ...a.multiaddrs()] }, { privateKey: key, joinTimeoutMs: 5000 }), 'the restarted peer joins through a')
  assert.equal(restarted.self, c.self)
  await sim.until(() => [a, b, restarted].every(p => p.readState().outstanding === 0 && p.readState().infimum.log.length === 1), 'the cluster converges with the restarted peer')
  assert.ok([a, b].every(p => p.stats().counters.timesEjected === 0), 'nobody believed itself ejected')
  await sim.stop()
})

test('a participant that rejoins after its own hooks threw hands its sponsor the events only it holds, so they fold everywhere instead of being lost', async () => {
  const sim = new Sim()
  // x runs an older apply that throws on 'boom' where the others' runs (a rolling upgrade).
  const older: EventSpec<string, Log, number> = { init: spec.init, apply: (e, s) => { if (e === 'boom') throw new Error('unknown event'); return spec.apply(e, s) } }
  const [a, b, x] = await sim.cluster(3, i => i === 2 ? { spec: older } : {}) as [Peer, Peer, Peer]
  // Until the others answer syncs again, x cannot see their settled state, only that they
  // saw no failure where it did: it goes on as a participant.
  sim.net.dropProtocols(a.self, ['sync'])
  sim.net.dropProtocols(b.self, ['sync'])
  await sim.settle(a.applyConsistent('boom'), 'boom folds at a')
  await sim.until(() => b.readState().infimum.log.includes('boom'), 'boom folds at b')
  assert.equal(x.stats().membership, 'participant')
  // Then x's batches are lost, while its syncs, joins and heartbeats go through: its event
  // reaches nobody before x rejoins.
  sim.net.dropProtocols(x.self, ['fold'])
  x.applyFast('mine')
  await sim.pass(2000)
  assert.ok([a, b].every(p => !p.readState().projected.log.includes('mine')), 'x\'s event reached nobody in two anti-entropy rounds')
  sim.net.dropProtocols(a.self, [])
  sim.net.dropProtocols(b.self, [])
  await sim.until(() => x.stats().counters.rejoins === 1 && x.stats().membership === 'participant', 'x finds its hooks threw where the others ran, and rejoins')
  assert.ok(x.stats().counters.divergences >= 1)
  sim.net.dropProtocols(x.self, [])
  await sim.until(() => [a, b, x].every(p => p.readState().outstanding === 0 && p.readState().infimum.log.includes('mine')), 'x\'s event folds everywhere')
  assert.equal(a.stats().counters.handedOver + b.stats().counters.handedOver, 1, 'x handed its sponsor the fold holding its own event')
  assert.equal(a.readState().infimum.log.filter(e => e === 'mine').length, 1, 'x\'s event folded once')
  for (const p of [b, x]) assert.deepEqual(p.readState().infimum.log, a.readState().infimum.log, 'the same history everywhere')
  await sim.stop()
})

test('a failed join says which of another cluster, another protocol version or no Legion peer the sponsor is', () => {
  const own = '/legion/a%20b%2Fc/join/7.0.0'
  const negotiation = new PeerUnreachableError('cannot open /legion/a%20b%2Fc/join/7.0.0 to x: could not negotiate it', 'x')
  assert.equal(describeJoinFailure(new Error('timed out'), own, []), 'Error: timed out', 'not a negotiation: said as it is')
  assert.match(describeJoinFailure(negotiation, own, ['/ipfs/id/1.0.0', '/legion/a%20b%2Fc/join/6.0.0']),
    /speaks Legion protocol 6\.0\.0 of cluster "a b\/c", this peer 7\.0\.0; peers of different protocol versions never exchange a message/)
  assert.match(describeJoinFailure(negotiation, own, ['/legion/prod/join/7.0.0', '/legion/prod/fold/7.0.0']), /it is a member of cluster "prod", not "a b\/c"$/)
  assert.match(describeJoinFailure(negotiation, own, ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0']), /it is not a Legion peer/)
  assert.match(describeJoinFailure(negotiation, own, []), /another cluster, another Legion version, or not a Legion peer/, 'nothing known: every reason')
})

