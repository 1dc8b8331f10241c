/**
 * Who may take part in a cluster: the cluster secret (a libp2p private network) and the
 * allow-list of peer ids, seen from the runtime; and what a participant may not do in another
 * participant's name. Real peers over TCP on 127.0.0.1.
 * (The transport-level behaviour is in transport.test.ts, hostile frames in fuzz.test.ts.)
 */
import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startLegion } from '../src/peer/start.js'
import type { Legion, LegionOptions } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { stopAll } from './support/cluster.js'
import { EventFold } from '../src/eventfold/event-fold.js'
import type { Acknowledgement, Diff, EventFoldSnapshot, EventId, EventSignatures } from '../src/eventfold/types.js'
import { eventSignatures, peerSigner } from '../src/peer/event-signatures.js'
import { batchOf, protocolIds, pushOf, syncPayload, syncRequest } from './support/wire.js'
import { createTransportNode } from '../src/transport/index.js'
import { DEFAULT_DECODE_LIMITS, decodeEventFold, encodeDiff, encodeEventFold, jsonCodec, type FoldCodecs } from '../src/codec/index.js'
import { decodeSyncAnswer, encodeSyncRequest } from '../src/peer/protocol/sync.js'
import { decodePushAnswer } from '../src/peer/protocol/push.js'

const countSpec: EventSpec<number, number, number> = {
  init: () => 0,
  apply: (e, s) => ({ ok: true, output: s + e, state: s + e })
}
const countCodecs = { event: jsonCodec, state: jsonCodec, output: jsonCodec } as unknown as FoldCodecs<number, number, number>
const base: Omit<LegionOptions<number, number, number>, 'startup'> = { cluster: 'security-test', spec: countSpec, joinTimeoutMs: 10_000 }
type Peer = Legion<number, number, number>

const everyone: Peer[] = []
after(async () => { await stopAll(everyone) })
async function start (options: Partial<LegionOptions<number, number, number>> & Pick<LegionOptions<number, number, number>, 'startup'>): Promise<Peer> {
  const peer = await startLegion({ ...base, ...options })
  everyone.push(peer)
  return peer
}

/** Resolves once `predicate` holds, checking every few milliseconds; counters have no event. */
async function eventually (predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const secret = (): Uint8Array => crypto.getRandomValues(new Uint8Array(32))

describe('cluster secret', () => {
  test('a peer with the secret joins; one without it, or with another, fails with JoinError and is counted', async () => {
    const key = secret()
    const a = await start({ clusterSecret: key, startup: { mode: 'new' } })
    const b = await start({ clusterSecret: key, startup: { mode: 'join', peers: a.multiaddrs() } })
    assert.equal(await b.applyConsistent(5, { timeoutMs: 5_000 }), 5)
    assert.deepEqual(a.readState().participants, [a.self, b.self].sort())

    for (const clusterSecret of [undefined, secret()]) {
      await assert.rejects(startLegion({ ...base, ...(clusterSecret !== undefined ? { clusterSecret } : {}), startup: { mode: 'join', peers: a.multiaddrs() } }), (err: Error) => {
        assert.equal(err.name, 'JoinError')
        assert.match(err.message, /PeerUnreachableError/)
        return true
      })
    }
    // the member counts each refused connection once it has closed (at the latest when
    // libp2p's inbound upgrade timeout of 10 s ends it)
    await eventually(() => a.stats().counters.refusedConnections >= 2, 12_000, 'a counts both strangers')
    assert.deepEqual(a.readState().projectedParticipants, [a.self, b.self].sort())
    assert.equal(await a.applyConsistent(1, { timeoutMs: 5_000 }), 6)
    await stopAll([a, b])
  })
})

describe('allow-list', () => {
  test('a listed peer joins; an unlisted one fails with JoinError and is counted', async () => {
    const [ka, kb, kc] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
    const members = new Set([ka, kb].map(k => peerIdFromPrivateKey(k).toString()))
    const allowPeers = (peer: string): boolean => members.has(peer)
    const a = await start({ privateKey: ka, allowPeers, startup: { mode: 'new' } })
    const b = await start({ privateKey: kb, allowPeers, startup: { mode: 'join', peers: a.multiaddrs() } })
    assert.equal(await b.applyConsistent(2, { timeoutMs: 5_000 }), 2)

    await assert.rejects(startLegion({ ...base, privateKey: kc, startup: { mode: 'join', peers: a.multiaddrs() } }), { name: 'JoinError' })
    await eventually(() => a.stats().counters.refusedConnections >= 1, 5_000, 'a counts the refusal')
    assert.deepEqual(a.readState().projectedParticipants, [a.self, b.self].sort())

    // A list works the same way, and the application may grow the set a predicate reads.
    members.add(peerIdFromPrivateKey(kc).toString())
    const c = await start({ privateKey: kc, allowPeers: [...members], startup: { mode: 'join', peers: a.multiaddrs() } })
    assert.equal(await c.applyConsistent(3, { timeoutMs: 10_000 }), 5)
    await stopAll([a, b, c])
  })
})

describe('forgery', () => {
  /**
   * A participant's key on a raw libp2p node (it passes every fence) sends crafted diffs and
   * folds to a peer `a`. A third participant, `n`, is stopped without leaving, so nothing it
   * could acknowledge is real; automatic ejection is off so that it stays a participant.
   * Each forgery is followed by a wait until `a` has handled the message (a merge or a drop
   * counted), then `a`'s state is checked.
   */
  test('a participant cannot create, acknowledge, fold or fail events in another participant\'s name', async () => {
    const options = { failureDetection: { autoEject: false as const } }
    const a = await start({ ...options, startup: { mode: 'new' } })
    const nKey = await generateKeyPair('Ed25519')
    const insiderKey = await generateKeyPair('Ed25519')
    const n = await start({ ...options, privateKey: nKey, startup: { mode: 'join', peers: a.multiaddrs() } })
    const insider = await start({ ...options, privateKey: insiderKey, startup: { mode: 'join', peers: a.multiaddrs() } })
    await insider.applyConsistent(0, { timeoutMs: 10_000 })
    await n.applyConsistent(0, { timeoutMs: 10_000 })
    await eventually(() => a.readState().outstanding === 0 && a.readState().participants.length === 3, 10_000, 'both joins folded at a')
    await n.stop({ leave: false })
    await insider.stop({ leave: false })

    const ids = protocolIds('security-test')
    const forger = await createTransportNode({ privateKey: insiderKey, logPrefix: 'forger' })
    after(async () => { await forger.stop() })
    await forger.dial(a.multiaddrs()[0]!)
    const self = forger.peerId
    const nId = peerIdFromPrivateKey(nKey).toString()
    const signedBy = (key: typeof nKey): EventSignatures<number, number> => eventSignatures('security-test', peerIdFromPrivateKey(key).toString(), peerSigner(key), countCodecs)
    const fetch = async (): Promise<EventFoldSnapshot<number, number, number>> =>
      decodeEventFold(syncPayload(await forger.request(a.self, ids.sync, syncRequest()))!, countCodecs)
    let handled = 0
    const counted = (): number => { const c = a.stats().counters; return c.diffMerges + c.fullMerges + c.droppedForged }
    const deliver = async (diff: Diff<number, number>): Promise<void> => {
      handled = counted()
      await forger.send(a.self, ids.fold, batchOf(encodeDiff(diff, countCodecs)))
      await eventually(() => counted() > handled, 5_000, 'a handled the forged diff')
    }

    // a's event E: it needs a's, the insider's and n's acknowledgements; n is gone.
    a.applyFast(1)
    const snapshot = await fetch()
    const e = snapshot.events.find(x => x.delta.kind === 'event')!
    // The insider's replica holds E: its acknowledgement (a version vector) covers it.
    const replica = EventFold.fromSnapshot(snapshot, self, countSpec, { signatures: signedBy(insiderKey) })
    const own = replica.acknowledgement()
    const only = (...acknowledgements: Array<Acknowledgement<number>>): Diff<number, number> => ({ origin: 'security-test', acknowledgements, runs: [] })

    // 1. Acknowledging E for n: n's vector, relayed by the insider.
    await deliver(only(own, { ...own, participant: nId, log: 0, unsettled: 0 }))
    assert.equal(a.readState().outstanding, 1, 'E folded on an acknowledgement forged for n')

    // 2. An infimum past E, with the right digest (the insider folds E in its own replica,
    // acknowledging for n there): a takes it as the insider's acknowledgement only.
    replica.acknowledge()
    replica.acknowledge(nId)
    assert.deepStrictEqual(replica.infimumId(), e.id)
    await deliver(only(replica.acknowledgement()))
    assert.equal(a.readState().outstanding, 1, 'E folded on a forged infimum')

    // 3. A whole fold settled past E, with a settled value of its choosing: not adopted.
    handled = counted()
    const bogus = { ...replica.snapshot(), infimum: { ...replica.snapshot().infimum, state: 1_000 } }
    await forger.request(a.self, ids.push, pushOf(encodeEventFold(bogus, countCodecs)))
    await eventually(() => counted() > handled, 5_000, 'a handled the forged fold')
    assert.deepStrictEqual(a.readState().infimumId, snapshot.infimum.id, 'a adopted a forged settled state')
    assert.equal(a.readState().infimum, 0)

    // 4. E failed, says the insider: a does not turn it into an error (it would vanish from the projection).
    await deliver(only({ ...own, failures: [{ id: e.id, output: -1 }] }))
    assert.equal(a.readState().projected, 1, 'E became an error on the insider\'s word')

    // 5. Events in n's name, in a new log of n's: unsigned, its head signed by the insider, or
    // signed by n for another body, or for the same body written as another incarnation of n
    // (the Join that admitted it is signed with the head; a relayer naming another Join, or
    // none, would decide whether and as whom the events fold).
    const counter = replica.maxKnownCounter + 1
    const forged = { counter, delta: { kind: 'event' as const, event: 100 } }
    const nJoin = snapshot.infimum.admissions?.find(x => x.participant === nId)?.join
    assert.ok(nJoin !== undefined && nJoin.counter > 0, 'n\'s admission is not in a\'s fold')
    const headOf = (event: number): Uint8Array => signedBy(nKey).chain(new Uint8Array(0), { counter, participant: nId }, { kind: 'event', event })
    const run = (signature?: Uint8Array, admittedBy: EventId | null = nJoin): Diff<number, number> => ({ origin: 'security-test', acknowledgements: [own], runs: [{ creator: nId, since: counter, first: 1, events: [forged], ...(signature !== undefined ? { signature } : {}), ...(admittedBy !== null ? { admittedBy } : {}) }] })
    const dropped = a.stats().counters.droppedForged
    await deliver(run())
    await deliver(run(signedBy(insiderKey).sign(counter, 1, headOf(100), nJoin)))
    await deliver(run(signedBy(nKey).sign(counter, 1, headOf(99), nJoin)))
    await deliver(run(signedBy(nKey).sign(counter, 1, headOf(100), nJoin), { counter: nJoin.counter + 1, participant: nJoin.participant }))
    await deliver(run(signedBy(nKey).sign(counter, 1, headOf(100), nJoin), null))
    assert.equal(a.stats().counters.droppedForged, dropped + 5)
    assert.equal(a.readState().projected, 1, 'a took an event forged in n\'s name')

    // Control: n's own signed run, relayed by the insider (as repairs do), is taken.
    await deliver(run(signedBy(nKey).sign(counter, 1, headOf(100), nJoin)))
    assert.equal(a.readState().projected, 101, 'a refused a correctly signed relayed event')
    assert.equal(a.stats().counters.droppedForged, dropped + 5)
    assert.equal(a.readState().outstanding, 2)

    // 6. The insider's own run under a signature of another head: its own word, so a takes it
    // (the transport proved the sender), but hands it on to nobody, and counts the forgery then.
    const mine = replica.maxKnownCounter + 10
    const wrongHead = signedBy(insiderKey).sign(mine, 1, signedBy(insiderKey).chain(new Uint8Array(0), { counter: mine, participant: self }, { kind: 'event', event: 7 }), undefined)
    await deliver({ origin: 'security-test', acknowledgements: [own], runs: [{ creator: self, since: mine, first: 1, events: [{ counter: mine, delta: { kind: 'event', event: 1000 } }], signature: wrongHead }] })
    assert.equal(a.readState().projected, 1101, 'a refused the insider\'s own event')
    assert.equal(a.stats().counters.droppedForged, dropped + 5)
    const handedOn = await fetch()
    assert.ok(handedOn.events.every(x => x.id.counter !== mine), 'a handed on a run its creator signed wrongly')
    assert.equal(a.stats().counters.droppedForged, dropped + 6)
  })
})

describe('what a participant asks of a peer', () => {
  /** A peer `a`, and a raw libp2p node holding the key of `a`'s only other participant (stopped without leaving). */
  async function insiderOf (): Promise<{ a: Peer, forger: Awaited<ReturnType<typeof createTransportNode>>, key: Awaited<ReturnType<typeof generateKeyPair>> }> {
    const options = { failureDetection: { autoEject: false as const } }
    const a = await start({ ...options, startup: { mode: 'new' } })
    const key = await generateKeyPair('Ed25519')
    const insider = await start({ ...options, privateKey: key, startup: { mode: 'join', peers: a.multiaddrs() } })
    await insider.applyConsistent(1, { timeoutMs: 10_000 })
    await insider.stop({ leave: false })
    const forger = await createTransportNode({ privateKey: key, logPrefix: 'forger' })
    after(async () => { await forger.stop() })
    await forger.dial(a.multiaddrs()[0]!)
    return { a, forger, key }
  }

  test('a sync request naming one group many times is answered once for it, not once per want', async () => {
    const { a, forger } = await insiderOf()
    const ids = protocolIds('security-test')
    const one = decodeSyncAnswer(await forger.request(a.self, ids.sync, encodeSyncRequest([{ group: '', full: true }])), DEFAULT_DECODE_LIMITS)
    assert.ok(Array.isArray(one) && one.length === 1 && one[0]!.kind === 'fold')
    // Before, the peer encoded its whole fold once per want: a 2 MB request of a million
    // wants held it for 23 s and 1.6 GB (fuzz test, protocol 5); a larger fold, out of memory.
    const wants = Array.from({ length: 10_000 }, (_, i) => ({ group: '', full: i % 2 === 0 }))
    const bytes = await forger.request(a.self, ids.sync, encodeSyncRequest(wants))
    const many = decodeSyncAnswer(bytes, DEFAULT_DECODE_LIMITS)
    assert.ok(Array.isArray(many), `answered, not ${JSON.stringify(many)}`)
    assert.deepEqual(many.map(r => [r.group, r.kind]), [['', 'fold']], 'the first want of the group, answered once')
    assert.ok(bytes.length < 2 * syncPayload(await forger.request(a.self, ids.sync, syncRequest()))!.length + 64)
    await stopAll([a])
  })

  test('a pushed part that is undecodable, of another origin or forged is refused as a bad request, not answered merged', async () => {
    const { a, forger, key } = await insiderOf()
    const ids = protocolIds('security-test')
    const snapshot = decodeEventFold(syncPayload(await forger.request(a.self, ids.sync, syncRequest()))!, countCodecs)
    const push = async (payload: Uint8Array): Promise<unknown> => decodePushAnswer(await forger.request(a.self, ids.push, pushOf(payload)), DEFAULT_DECODE_LIMITS)
    const before = a.stats().counters

    // A Diff whose header reads but whose body does not.
    const good = encodeDiff({ origin: 'security-test', acknowledgements: [], runs: [] }, countCodecs)
    assert.deepEqual(await push(good.subarray(0, good.length - 1)), [{ group: '', merged: false, code: 'bad-request' }])
    // Another cluster's Diff.
    assert.deepEqual(await push(encodeDiff({ origin: 'elsewhere', acknowledgements: [], runs: [] }, countCodecs)), [{ group: '', merged: false, code: 'bad-request' }])
    // An event in a's name (a new log of a's) that a did not sign.
    const counter = snapshot.infimum.id.counter + 10
    const forged = { creator: a.self, since: counter, first: 1, events: [{ counter, delta: { kind: 'event' as const, event: 100 } }] }
    assert.deepEqual(await push(encodeDiff({ origin: 'security-test', acknowledgements: [], runs: [forged] }, countCodecs)), [{ group: '', merged: false, code: 'bad-request' }])
    const after = a.stats().counters
    assert.deepEqual([after.droppedUndecodable - before.droppedUndecodable, after.droppedWrongCluster - before.droppedWrongCluster, after.droppedForged - before.droppedForged], [1, 1, 1])
    assert.equal(a.readState().projected, 1)

    // Control: the participant's own signed event is merged.
    const replica = EventFold.fromSnapshot(snapshot, forger.peerId, countSpec, { signatures: eventSignatures('security-test', forger.peerId, peerSigner(key), countCodecs) })
    replica.event(41)
    assert.deepEqual(await push(encodeDiff(replica.diffFor(a.self, { relay: false })!, countCodecs)), [{ group: '', merged: true }])
    assert.equal(a.readState().projected, 42)
    await stopAll([a])
  })
})
