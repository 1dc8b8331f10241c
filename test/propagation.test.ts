/**
 * Propagation on stubs (in-memory network, manual clock): what leaves a peer, in how many
 * messages, and when. Counts are of messages the network carried, by protocol.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startPeer } from '../src/peer/start.js'
import type { Legion } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { defineService } from '../src/peer/services.js'
import { FakeNetwork, ManualClock, seededRandom, settleTurns } from './support/fake-network.js'
import { decodeFoldBatch } from '../src/peer/protocol/fold-batch.js'
import { Reader, resolveDecodeLimits } from '../src/codec/index.js'

const counter: EventSpec<number, number, number> = { init: () => 0, apply: (n, s) => ({ ok: true, output: s + n, state: s + n }) }
const many = defineService({
  name: 'many',
  needs: ['groups'],
  create: ({ groups }) => ({
    groups: Array.from({ length: 20 }, (_, i) => groups.clusterWide(`g${i}`, { spec: counter })),
    prompt: groups.clusterWide('prompt', { spec: counter, acknowledgeAtOnce: true })
  })
})
type Peer = Legion<number, number, number, { many: typeof many }>

async function cluster (n: number, acknowledge?: 'everyone' | 'creators', acknowledgeDelayMs?: number, directFanout?: number): Promise<{ peers: Peer[], net: FakeNetwork, clock: ManualClock }> {
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const peers: Peer[] = []
  for (let i = 0; i < n; i++) {
    const startup = i === 0 ? { mode: 'new' as const } : { mode: 'join' as const, peers: peers[0]!.multiaddrs() }
    const propagation = { propagation: { acknowledge, acknowledgeDelayMs, directFanout } }
    peers.push(await startPeer({ cluster: 'propagation', spec: counter, services: { many }, startup, ...propagation }, { network: async k => await net.node(k), clock, random: seededRandom(i + 1) }))
  }
  for (let i = 0; i < 40 && !peers.every(p => p.stats().groups.outstanding === 0 && p.readState().participants.length === n); i++) await clock.advance(250)
  return { peers, net, clock }
}

test('everything applied in one tick, in any number of groups, leaves as one message per receiving peer', async () => {
  const { peers, net } = await cluster(3)
  const [a] = peers as [Peer]
  const sent = (): number => net.sentBy.get(a.self)?.get('fold') ?? 0
  const before = sent()
  for (const g of a.services.many.groups) g.applyFast(1)
  a.applyFast(1)
  await settleTurns()
  assert.equal(sent() - before, 2, '21 groups changed on a: one batch to each of the 2 others')
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('the heads of every group changed in one tick are signed once; a peer that gets those runs only relayed checks and takes them', async () => {
  const { peers, net, clock } = await cluster(3)
  const [a, b, c] = peers as [Peer, Peer, Peer]
  // Nothing of a's folds reaches c but through b (a sync answer of b's: a relay, checked).
  net.dropProtocolsTo(a.self, c.self, ['fold', 'sync', 'push'])
  const signedBefore = a.stats().counters.headsSigned
  const groups = a.services.many.groups
  for (const g of groups) g.applyFast(7)
  await settleTurns()
  assert.equal(a.stats().counters.headsSigned - signedBefore, 1, `${groups.length} groups changed in one tick: one signature`)
  const settled = (): boolean => [a, b, c].every(p => p.services.many.groups.every(g => g.readState().infimum === 7))
  for (let t = 0; t <= 10_000 && !settled(); t += 250) await clock.advance(250)
  assert.ok(settled(), 'every group settled everywhere')
  assert.equal(c.stats().counters.droppedForged, 0, 'c refused a relayed run')
  assert.ok(c.stats().counters.syncsRequested > 0, 'c took the runs from a sync')
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('a peer that takes an event acknowledges it to its creator first, before the participants that only keep up to date', async () => {
  const { peers, net } = await cluster(3, 'everyone', 0)
  // Each receiver lists its other participants sorted by id: with the creator sorting last,
  // a batch sent in that order would reach the creator last.
  const creator = [...peers].sort((x, y) => x.self < y.self ? 1 : x.self > y.self ? -1 : 0)[0]!
  const receivers = peers.filter(p => p !== creator)
  const sends = net.recordSends()
  creator.applyFast(1)
  await settleTurns()
  for (const r of receivers) {
    const folds = sends.filter(s => s.from === r.self && s.protocol === 'fold')
    assert.deepEqual(folds.map(s => s.to).slice(0, 2), [creator.self, receivers.find(o => o !== r)!.self], `${r.self.slice(-6)} acknowledges to the creator, then to the other`)
  }
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('a quiet cluster sends heartbeats only: no group is re-announced or synced while nothing is outstanding', async () => {
  const { peers, net, clock } = await cluster(3)
  const count = (): string => JSON.stringify(['fold', 'sync', 'push', 'outputs'].map(p => net.delivered.get(p) ?? 0))
  // After the joins, a peer that was behind may get its missed acknowledgements once more:
  // wait (bounded) for two quiet intervals before measuring.
  let before = count()
  for (let i = 0; i < 20; i++) { await clock.advance(2000); const now = count(); if (now === before) break; before = now }
  const heartbeats = net.delivered.get('heartbeat') ?? 0
  await clock.advance(10_000)
  assert.equal(count(), before, 'nothing but heartbeats in 10 s')
  assert.ok((net.delivered.get('heartbeat') ?? 0) - heartbeats >= 3 * 2 * 9, 'heartbeats kept going')
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('a batch lost on the way is repaired by anti-entropy within an interval or two, for every group it carried', async () => {
  const { peers, net, clock } = await cluster(3)
  const [a, b, c] = peers as [Peer, Peer, Peer]
  net.cutLink(a.self, c.self, true) // a's messages to c are lost, the rest flows
  const groups = a.services.many.groups.slice(0, 5)
  for (const g of groups) g.applyFast(7)
  await clock.advance(100)
  net.heal()
  let repairedAfter = -1
  for (let t = 0; t <= 5000 && repairedAfter < 0; t += 250) {
    if ([a, b, c].every(p => groups.every((_, i) => p.services.many.groups[i]!.readState().infimum === 7))) repairedAfter = t
    else await clock.advance(250)
  }
  assert.ok(repairedAfter >= 0 && repairedAfter <= 2500, `repaired after ${repairedAfter} ms`)
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('one event among n peers: (n-1) + (n-1)² fold messages with acknowledgements to everyone, 2(n-1) routed to creators, and everyone settles it either way', async () => {
  const cases = [
    { acknowledge: 'everyone', delay: 0, atOnce: 4 + 16, afterDelay: 4 + 16 },
    // The creator gets each acknowledgement at once, the others once the delay is up.
    { acknowledge: 'everyone', delay: 50, atOnce: 4 + 4, afterDelay: 4 + 16 },
    { acknowledge: 'creators', delay: 50, atOnce: 2 * 4, afterDelay: 2 * 4 }
  ] as const
  for (const { acknowledge, delay, atOnce, afterDelay } of cases) {
    const what = `${acknowledge}, ${delay} ms`
    const { peers, net, clock } = await cluster(5, acknowledge, delay)
    const folds = (): number => net.delivered.get('fold') ?? 0
    const before = folds()
    peers[0]!.applyFast(1)
    await settleTurns()
    assert.equal(folds() - before, atOnce, `${what}: the batch, then the acknowledgements`)
    assert.equal(peers[0]!.readState().infimum, 1, `${what}: the creator settled it after one round trip`)
    await clock.advance(delay)
    assert.equal(folds() - before, afterDelay, `${what}: the acknowledgements owed without hurry, once the delay is up`)
    if (acknowledge === 'everyone') assert.ok(peers.every(p => p.readState().infimum === 1), `${what}: every peer settled it once the delay is up`)
    // Routed to creators, the others settle once the acknowledgements reach them (an anti-entropy round).
    for (let i = 0; i < 8 && !peers.every(p => p.readState().infimum === 1); i++) await clock.advance(500)
    assert.ok(peers.every(p => p.readState().infimum === 1), `${what}: every peer settled it`)
    await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
  }
})

test('an acknowledgement owed without hurry goes with the next message to its peer, in any group, and never later than the delay', async () => {
  const { peers, net, clock } = await cluster(3, 'everyone', 50)
  const [a, b, c] = peers as [Peer, Peer, Peer]
  const sends = net.recordSends()
  const g1 = (p: Peer): number => p.services.many.groups[1]!.readState().infimum
  a.services.many.groups[1]!.applyFast(3)
  await settleTurns()
  assert.deepEqual(sends.filter(s => s.from === b.self && s.protocol.includes('fold')).map(s => s.to), [a.self], 'b acknowledged to the creator alone')
  assert.equal(g1(a), 3, 'the creator settled it')
  assert.equal(g1(c), 0, 'c still waits for b\'s acknowledgement')
  // c makes an event of another group before the delay is up: b's acknowledgement of it goes
  // to c at once, and b's acknowledgement of a's event rides along in the same message.
  await clock.advance(10)
  c.services.many.groups[2]!.applyFast(4)
  await settleTurns()
  const toC = sends.filter(s => s.from === b.self && s.to === c.self && s.protocol.includes('fold'))
  assert.equal(toC.length, 1, 'one message from b to c')
  assert.deepEqual(decodeFoldBatch(toC[0]!.payload, resolveDecodeLimits()).map(e => e.group).sort(), ['many/g1', 'many/g2'], 'carrying both groups')
  assert.equal(g1(c), 3, 'c settled a\'s event without waiting for the delay')
  assert.equal(b.stats().counters.acknowledgementsRode, 1, 'counted as riding along')
  assert.equal(b.stats().counters.acknowledgementsDelayed, 0)
  // Nothing is owed any more: the delay passes without another message from b to c.
  await clock.advance(100)
  assert.equal(sends.filter(s => s.from === b.self && s.to === c.self && s.protocol.includes('fold')).length, 1, 'no second message from b to c')
  assert.equal(b.stats().counters.acknowledgementsDelayed, 1, 'b\'s debt to a for c\'s event went by the timer')
  // Alone, a debt waits the delay and no longer: a's next event reaches b and c, and each
  // tells the other 50 ms later.
  const at = clock.now()
  a.services.many.groups[1]!.applyFast(5)
  await settleTurns()
  assert.ok(g1(b) === 3 && g1(c) === 3, 'b and c wait for each other\'s acknowledgement')
  await clock.advance(49)
  assert.ok(g1(b) === 3 && g1(c) === 3, 'still within the delay')
  await clock.advance(1)
  assert.ok(g1(b) === 8 && g1(c) === 8, `both settled ${clock.now() - at} ms after the event`)
  assert.equal(b.stats().counters.acknowledgementsDelayed, 2, 'and its debt to c now')
  // Debts of two groups arising 30 ms apart leave together when the older is due: one
  // wake-up and one message per peer, not one each.
  const bToC = (): typeof sends => sends.filter(s => s.from === b.self && s.to === c.self && s.protocol.includes('fold'))
  const sentBefore = bToC().length
  a.services.many.groups[5]!.applyFast(1)
  await settleTurns()
  await clock.advance(30)
  a.services.many.groups[6]!.applyFast(1)
  await settleTurns()
  await clock.advance(20)
  const paid = bToC().slice(sentBefore)
  assert.equal(paid.length, 1, 'one message from b to c')
  assert.deepEqual(decodeFoldBatch(paid[0]!.payload, resolveDecodeLimits()).map(e => e.group).sort(), ['many/g5', 'many/g6'])
  assert.equal(c.services.many.groups[6]!.readState().infimum, 1, 'the younger debt paid 20 ms after it arose')
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('the acknowledgement that completes an event is not re-announced; one that was lost is, to the peer still waiting', async () => {
  const { peers, net, clock } = await cluster(3)
  const [a, b, c] = peers as [Peer, Peer, Peer]
  const folds = (): number => net.delivered.get('fold') ?? 0
  // After the joins, wait (bounded) for a quiet interval.
  let before = folds()
  for (let i = 0; i < 20; i++) { await clock.advance(2000); const now = folds(); if (now === before) break; before = now }
  // Every acknowledgement of this event completes it somewhere; none shows its sender behind.
  const g = a.services.many.groups[3]!
  const start = folds()
  g.applyFast(5)
  await settleTurns()
  await clock.advance(50) // the acknowledgements between b and c, owed without hurry
  assert.ok(peers.every(p => p.services.many.groups[3]!.readState().infimum === 5), 'everyone settled it after one round')
  assert.equal(folds() - start, 2 + 4, 'the batch and the acknowledgements')
  await clock.advance(5000)
  assert.equal(folds() - start, 2 + 4, 'and nothing re-announced in five intervals')
  // b's acknowledgement to a is lost: a waits, re-announcing its own each interval, which shows
  // b (with nothing outstanding) that a is behind; b then re-sends its acknowledgement to a.
  net.cutLink(b.self, a.self, true)
  a.services.many.groups[4]!.applyFast(6)
  await settleTurns()
  await clock.advance(50)
  assert.equal(a.services.many.groups[4]!.readState().infimum, 0, 'a lacks b\'s acknowledgement')
  assert.equal(b.services.many.groups[4]!.readState().outstanding, 0, 'b has nothing outstanding')
  net.heal()
  for (let i = 0; i < 12 && a.services.many.groups[4]!.readState().infimum !== 6; i++) await clock.advance(250)
  assert.equal(a.services.many.groups[4]!.readState().infimum, 6, 'a settled it within three seconds of the link healing')
  assert.ok([b, c].every(p => p.services.many.groups[4]!.readState().infimum === 6))
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

/** How the pushed Diffs of a FoldBatch name participants: by table hash, by fingerprints, or all in full. */
function tableForms (batch: Uint8Array): Array<'hash' | 'fingerprints' | 'full'> {
  return decodeFoldBatch(batch, resolveDecodeLimits()).map(({ payload }) => {
    const r = new Reader(payload)
    r.readRaw(5) // magic, version, kind
    r.readString() // origin (left out: empty)
    for (let n = r.readVarUint(); n > 0; n--) r.readString()
    const c = r.readVarUint()
    return c % 2 === 1 ? 'hash' : c > 0 ? 'fingerprints' : 'full'
  })
}

test('pushed Diffs name the infimum participants by one table hash once every receiver has had the list; a joiner arriving mid-stream changes nothing of what settles', async () => {
  const { peers, net, clock } = await cluster(3)
  const round = async (value: number): Promise<void> => {
    for (const p of peers) p.applyFast(value)
    await settleTurns()
    await clock.advance(20)
  }
  // The first round after the joins goes by fingerprint: a peer's list changed at the last
  // Join, and the others' acknowledgements it holds may be from before that.
  await round(1)
  const sends = net.recordSends()
  for (let i = 0; i < 5; i++) await round(1)
  const forms = (): string[] => sends.filter(s => s.protocol === 'fold').flatMap(s => tableForms(s.payload))
  const settled = forms()
  assert.ok(settled.length >= 5 * 3 * 2, `${settled.length} pushed Diffs`)
  assert.deepEqual([...new Set(settled)], ['hash'], 'a settled cluster names its participants by table hash only')

  // A fourth peer joins while everyone keeps applying: whoever has the new list before the
  // others names it by fingerprint until their acknowledgements show they have it too.
  const joining = startPeer({ cluster: 'propagation', spec: counter, services: { many }, startup: { mode: 'join', peers: peers[0]!.multiaddrs() } }, { network: async k => await net.node(k), clock, random: seededRandom(99) })
  let joiner: Peer | undefined
  void joining.then(p => { joiner = p })
  for (let i = 0; i < 200 && joiner === undefined; i++) await round(1)
  assert.ok(joiner !== undefined, 'the fourth peer joined within 200 rounds')
  peers.push(joiner)
  for (let i = 0; i < 10; i++) await round(1)
  for (let i = 0; i < 40 && !peers.every(p => p.readState().participants.length === 4 && p.stats().groups.outstanding === 0); i++) await clock.advance(250)
  const infimum = peers[0]!.readState().infimum
  assert.ok(peers.every(p => p.readState().participants.length === 4 && p.readState().infimum === infimum && p.stats().groups.outstanding === 0), 'all four settled the same state')
  const unresolved = (p: (typeof peers)[number]): number => p.stats().counters.droppedUndecodable + p.stats().counters.droppedUnknownParticipants
  const dropped = peers.reduce((sum, p) => sum + unresolved(p), 0)
  assert.equal(dropped, 0, 'no receiver failed to resolve a name during the join')
  const before = sends.length
  for (let i = 0; i < 3; i++) await round(1)
  const after = sends.slice(before).filter(s => s.protocol === 'fold').flatMap(s => tableForms(s.payload))
  assert.ok(after.length >= 3 * 4 * 3, `${after.length} pushed Diffs among four`)
  assert.deepEqual([...new Set(after)], ['hash'], 'and the four-peer list goes by hash once everyone has it')
  assert.equal(peers.reduce((sum, p) => sum + unresolved(p), 0), 0, 'nor after it')
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('a peer that stops sends the acknowledgements it owes without hurry first', async () => {
  const { peers, net, clock } = await cluster(3, 'everyone', 50)
  const [a, b, c] = peers as [Peer, Peer, Peer]
  const sends = net.recordSends()
  a.services.many.groups[7]!.applyFast(9)
  await settleTurns()
  assert.equal(c.services.many.groups[7]!.readState().infimum, 0, 'c waits for b\'s acknowledgement')
  const toC = (): typeof sends => sends.filter(s => s.from === b.self && s.to === c.self && s.protocol.includes('fold'))
  assert.equal(toC().length, 0)
  const at = clock.now()
  await b.stop({ leave: false })
  assert.equal(clock.now(), at, 'no time passed')
  assert.deepEqual(toC().flatMap(s => decodeFoldBatch(s.payload, resolveDecodeLimits()).map(e => e.group)), ['many/g7'], 'b sent c its acknowledgement before it stopped')
  await settleTurns()
  assert.equal(clock.now(), at, 'still no time passed')
  assert.equal(c.services.many.groups[7]!.readState().infimum, 9, 'and c folded a\'s event with it')
  await Promise.all([a, c].map(async p => { await p.stop({ leave: false }) }))
})

test('a group defined with acknowledgeAtOnce settles everywhere a round trip after its event, whatever the delay', async () => {
  const { peers } = await cluster(3, 'everyone', 50)
  const [a, b, c] = peers as [Peer, Peer, Peer]
  a.services.many.groups[8]!.applyFast(4)
  await settleTurns()
  assert.ok([b, c].every(p => p.services.many.groups[8]!.readState().infimum === 0), 'another group waits for the delay')
  a.services.many.prompt.applyFast(4)
  await settleTurns()
  assert.ok([a, b, c].every(p => p.services.many.prompt.readState().infimum === 4), 'the prompt group settled on every peer')
  assert.ok([b, c].every(p => p.services.many.groups[8]!.readState().infimum === 4), 'and the other group\'s acknowledgements rode along')
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('where batches to everyone go on the topic, acknowledgements are published at once, not owed', async () => {
  const { peers, net } = await cluster(3, 'everyone', 50, 2)
  const [a, b, c] = peers as [Peer, Peer, Peer]
  const sends = net.recordSends()
  a.applyFast(6)
  await settleTurns()
  assert.ok([a, b, c].every(p => p.readState().infimum === 6), 'every peer settled it with no time passing')
  assert.equal(sends.filter(s => s.from !== a.self && s.protocol.includes('fold')).length, 0, 'no direct acknowledgements from b and c (they published theirs)')
  assert.equal(b.stats().counters.acknowledgementsDelayed + c.stats().counters.acknowledgementsDelayed, 0)
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
})

test('sends to a participant that cannot be reached share one dial and one wait, not one each', async () => {
  const { peers, net } = await cluster(3)
  const [a, , c] = peers as [Peer, Peer, Peer]
  await c.stop({ leave: false }) // gone without leaving: a participant still, and no connection
  const dials = (): number => net.dials.get(`${a.self}>${c.self}`) ?? 0
  const before = dials()
  // Thirty flushes, each with a batch for c, within one anti-entropy interval.
  for (let i = 0; i < 30; i++) { a.applyFast(1); await settleTurns() }
  assert.equal(dials() - before, 1, 'one attempt to reach c')
  await Promise.all([a, peers[1]!].map(async p => { await p.stop({ leave: false }) }))
})
