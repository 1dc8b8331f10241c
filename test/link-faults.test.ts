/**
 * Links failing under load, on stubs: whole peers over the in-memory network with a manual
 * clock (test/support/membership-sim.ts), every peer creating an event every 500 - 700 ms
 * while links flap, are cut during a join, or two at once. Each ends with the links healed and
 * checks that every peer converges with every participant back, that nothing acknowledged is
 * lost or folded twice, and that calls failed only by ejection. One link cut for good between
 * OS processes is test/broken-link.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { seededRandom } from './support/fake-network.js'
import { Load, Sim, type Peer } from './support/membership-sim.js'

for (const seed of [1, 2]) {
  test(`a link between two of four peers flapping under load (seed ${seed}): all converge, nothing acknowledged lost or doubled`, async () => {
    const sim = new Sim()
    const peers = await sim.cluster(4)
    const random = seededRandom(seed * 1000)
    const load = new Load(sim, 700)
    const [x, y] = [peers[1]!, peers[2]!]
    // Cut for 1-6 s (about the suspicion threshold of 3 s, either side), healed for 1-4 s.
    for (let round = 0; round < 12; round++) {
      sim.net.cutLink(x.self, y.self)
      await sim.pass(1000 + Math.floor(random.next() * 5000))
      sim.net.heal()
      await sim.pass(1000 + Math.floor(random.next() * 3000))
    }
    load.stop()
    await load.convergedWithNothingLost('all four converge')
    assert.ok(load.resolved.length > 300, `${load.resolved.length} calls resolved`)
    await sim.stop()
  })
}

for (const cut of ['the joiner and a participant it did not join through', 'its sponsor and another participant'] as const) {
  test(`a link between ${cut} cut for 7 s while a peer joins under load: the join completes, and all four converge with nothing acknowledged lost`, async () => {
    const sim = new Sim()
    const [a, , c] = await sim.cluster(3) as [Peer, Peer, Peer]
    const load = new Load(sim, 500)
    const key = await generateKeyPair('Ed25519')
    const joiner = peerIdFromPrivateKey(key).toString()
    if (cut === 'its sponsor and another participant') sim.net.cutLink(a.self, c.self)
    else sim.net.cutLink(joiner, c.self)
    const joining = sim.start({ mode: 'join', peers: a.multiaddrs() }, { privateKey: key })
    await sim.pass(7000)
    sim.net.heal()
    await sim.settle(joining, 'the join')
    const joinedAt = load.created
    await sim.until(() => load.created >= joinedAt + 40, 'ten more rounds of load')
    load.stop()
    await load.convergedWithNothingLost('all four converge')
    assert.ok(load.resolved.some(r => r.event.endsWith('-3')), 'the joiner\'s own events fold')
    await sim.stop()
  })
}

for (const shape of ['one peer cut from two others', 'two disjoint links'] as const) {
  test(`${shape} among five, for 15 s under load: the end of both links (or the larger end of each) is ejected and rejoins, and after healing all converge with nothing acknowledged lost`, async () => {
    const sim = new Sim()
    const peers = await sim.cluster(5)
    const [a, b, c, d] = [...peers].sort((p, q) => p.self < q.self ? -1 : 1) as [Peer, Peer, Peer, Peer, Peer]
    const load = new Load(sim, 500)
    // The smallest id cut from the next two: the broken-link rule ejects the end of more
    // broken links, the peer both links share, though the larger end of each is another.
    // Two disjoint links: the larger end of each.
    const shared = shape === 'one peer cut from two others'
    if (shared) { sim.net.cutLink(a.self, b.self); sim.net.cutLink(a.self, c.self) } else { sim.net.cutLink(a.self, b.self); sim.net.cutLink(c.self, d.self) }
    await sim.pass(15_000)
    const ejected = peers.filter(p => p.stats().counters.timesEjected > 0).map(p => p.self).sort()
    sim.net.heal()
    await sim.pass(5000)
    load.stop()
    await load.convergedWithNothingLost('all five converge')
    assert.deepEqual(ejected, (shared ? [a] : [b, d]).map(p => p.self).sort(), 'ejected during the cut: the end of both links, or the larger end of each')
    await sim.stop()
  })
}
