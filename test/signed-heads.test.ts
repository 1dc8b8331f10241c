/**
 * Specification of heads signed together (src/peer/event-signatures.ts, PROTOCOL.md 4.7): a
 * peer that changed several groups in one flush signs a hash tree over their heads once, and
 * each head's signature carries the proof that it is a leaf of the signed tree. Every head
 * checks, alone, with its group's verifier; nothing else does; and a relayed run signed that
 * way is taken by a third replica like one signed on its own.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { eventSignatures, peerSigner, signHeadsTogether, type HeadOfGroup } from '../src/peer/event-signatures.js'
import { MAX_HEADS_PER_SIGNATURE, MAX_SIGNATURE_BYTES, encodeHeadsRoot, type FoldCodecs } from '../src/codec/eventfold.js'
import { jsonCodec } from '../src/codec/json.js'
import { EventFold } from '../src/eventfold/event-fold.js'
import { ForgedEventError } from '../src/eventfold/errors.js'
import { BOTTOM, type EventSpec, type UnsignedHead } from '../src/eventfold/types.js'

const codecs = { event: jsonCodec, state: jsonCodec, output: jsonCodec } as unknown as FoldCodecs<number, number, number>
const spec: EventSpec<number, number, number> = { init: () => 0, apply: (e, s) => ({ ok: true, output: s + e, state: s + e }) }

async function keyFromSeed (byte: number): Promise<PrivateKey> {
  return generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(byte))
}

const hashOf = (text: string): Uint8Array => new Uint8Array(createHash('sha256').update(text).digest())
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

/** `count` heads of groups `g0`, `g1`, ..., each keeping the signature it is given. */
function heads (count: number): Array<HeadOfGroup & { signature?: Uint8Array }> {
  return Array.from({ length: count }, (_, i) => {
    const entry: HeadOfGroup & { signature?: Uint8Array } = {
      origin: `c\u0000g${i}`,
      head: { since: i + 1, seq: i + 2, head: hashOf(`head ${i}`), admittedBy: i % 2 === 0 ? undefined : { counter: i, participant: 'founder' }, sign: (signature) => { entry.signature = signature } }
    }
    return entry
  })
}

describe('heads signed together', async () => {
  const key = await keyFromSeed(1)
  const self = peerIdFromPrivateKey(key).toString()
  const signer = peerSigner(key)
  const verifierOf = (origin: string): ReturnType<typeof eventSignatures<number, number, number>> => eventSignatures(origin, self, signer, codecs)
  const checks = (origin: string, head: UnsignedHead, signature: Uint8Array, creator = self): boolean =>
    verifierOf(origin).verify(creator, head.since, head.seq, head.head, head.admittedBy, signature)

  test('every head of 2 to 64 signed together checks with its own group\'s verifier, with a proof of 1 to 6 hashes', () => {
    for (const count of [2, 3, 4, 5, 7, 8, 9, 17, 33, MAX_HEADS_PER_SIGNATURE]) {
      const all = heads(count)
      signHeadsTogether(signer, self, all)
      const depth = Math.ceil(Math.log2(count))
      for (const [i, { origin, head, signature }] of all.entries()) {
        assert.ok(signature !== undefined, `head ${i} of ${count} got no signature`)
        // A node without a sibling moves up unchanged: the last leaf of an odd count has fewer.
        assert.ok(signature.length >= 66 + 32 && signature.length <= 66 + 32 * depth && (signature.length - 66) % 32 === 0, `head ${i} of ${count}: ${signature.length} bytes`)
        assert.ok(signature.length <= MAX_SIGNATURE_BYTES)
        assert.ok(checks(origin, head, signature), `head ${i} of ${count} does not check`)
      }
      // One signature for all of them: the first 64 bytes are the same.
      assert.equal(new Set(all.map(h => hex(h.signature!.subarray(0, 64)))).size, 1)
    }
  })

  test('past 64 heads a new tree starts; one head alone is left to be signed on its own', () => {
    const all = heads(MAX_HEADS_PER_SIGNATURE + 3)
    signHeadsTogether(signer, self, all)
    assert.equal(new Set(all.map(h => hex(h.signature!.subarray(0, 64)))).size, 2)
    for (const { origin, head, signature } of all) assert.ok(checks(origin, head, signature!))
    const lastAlone = heads(MAX_HEADS_PER_SIGNATURE + 1)
    signHeadsTogether(signer, self, lastAlone)
    assert.equal(lastAlone[MAX_HEADS_PER_SIGNATURE]!.signature, undefined)
    const one = heads(1)
    signHeadsTogether(signer, self, one)
    assert.equal(one[0]!.signature, undefined)
  })

  test('a proof checks for no other head, group, creator, or with any byte changed', async () => {
    const all = heads(5)
    signHeadsTogether(signer, self, all)
    const [first, second] = all as [typeof all[0], typeof all[0]]
    const proof = first.signature!
    assert.ok(checks(first.origin, first.head, proof))
    // Another group's head, the same head in another group, another seq or hash.
    assert.equal(checks(second.origin, second.head, proof), false)
    assert.equal(checks(second.origin, first.head, proof), false)
    assert.equal(checks(first.origin, { ...first.head, seq: first.head.seq + 1 }, proof), false)
    assert.equal(checks(first.origin, { ...first.head, head: hashOf('other') }, proof), false)
    // The same head written as an incarnation it does not name, or without the one it names.
    assert.equal(checks(first.origin, { ...first.head, admittedBy: { counter: 1, participant: 'founder' } }, proof), false)
    assert.ok(second.head.admittedBy !== undefined && checks(second.origin, second.head, second.signature!))
    assert.equal(checks(second.origin, { ...second.head, admittedBy: undefined }, second.signature!), false)
    assert.equal(checks(second.origin, { ...second.head, admittedBy: { ...second.head.admittedBy, counter: second.head.admittedBy.counter + 1 } }, second.signature!), false)
    // Another creator.
    const other = peerIdFromPrivateKey(await keyFromSeed(2)).toString()
    assert.equal(checks(first.origin, first.head, proof, other), false)
    // Every single byte changed: the signature, the count, the index, every sibling hash.
    for (let at = 0; at < proof.length; at++) {
      const changed = Uint8Array.from(proof)
      changed[at]! ^= 0x01
      assert.equal(checks(first.origin, first.head, changed), false, `byte ${at} changed still checks`)
    }
    // Cut short, or a hash too many; a count below 2 or above 64; an index past the count.
    assert.equal(checks(first.origin, first.head, proof.subarray(0, proof.length - 32)), false)
    assert.equal(checks(first.origin, first.head, Uint8Array.of(...proof, ...new Uint8Array(32))), false)
    assert.equal(checks(first.origin, first.head, proof.subarray(0, 65)), false)
    for (const [count, index] of [[1, 0], [0, 0], [65, 0], [5, 5]] as const) {
      const changed = Uint8Array.from(proof)
      changed[64] = count
      changed[65] = index
      assert.equal(checks(first.origin, first.head, changed), false, `count ${count}, index ${index}`)
    }
    // A signature of the root alone (no proof) is not a signature of a head.
    const root = signer.sign(encodeHeadsRoot(5, hashOf('any')))
    assert.equal(checks(first.origin, first.head, root), false)
  })

  test('a head signed on its own still checks (64 bytes, as stored by earlier builds)', () => {
    const [only] = heads(1) as [HeadOfGroup]
    const plain = verifierOf(only.origin).sign(only.head.since, only.head.seq, only.head.head, only.head.admittedBy)
    assert.equal(plain.length, 64)
    assert.ok(checks(only.origin, only.head, plain))
    const admitted = { ...only.head, admittedBy: { counter: 4, participant: 'founder' } }
    const signed = verifierOf(only.origin).sign(admitted.since, admitted.seq, admitted.head, admitted.admittedBy)
    assert.ok(checks(only.origin, admitted, signed))
    assert.equal(checks(only.origin, only.head, signed), false, 'a head signed with its admission checks only with it')
    assert.equal(checks(only.origin, { ...admitted, admittedBy: { counter: 4, participant: 'other' } }, signed), false)
  })

  test('test vector (PROTOCOL.md 8.4): A signs the head of its log 1 written as the founder\'s incarnation', () => {
    const head = { since: 1, seq: 2, head: Buffer.from('aa5ed7daf45fbb61ddf959a8255f6f9e60e7bb64b26d6fe81e5f43128732b9a3', 'hex'), admittedBy: BOTTOM, sign: () => {} }
    const signature = verifierOf('demo').sign(head.since, head.seq, head.head, head.admittedBy)
    assert.equal(hex(signature), '6ef31ef16ac863dc732eae1fd1622be0184eac5ff65ed50934fe702b2c278aa95b585d7ecb92ec6706f1a690609e719c5a2fff9fa041a7915664b75aed1c300b')
    assert.ok(checks('demo', head, signature))
    assert.equal(checks('demo', { ...head, admittedBy: undefined }, signature), false)
  })

  test('test vector (PROTOCOL.md 8.4): A signs the heads of two groups together', () => {
    const SIGNATURE = '186c514da91e83b6a20fd6be16f6e955f975b0cfa58d4dcb082cbe604161829a8d2736a2aaa85ed68fe5d499de431c81d1c44e8fd0417a4da3f0f7efe969480e'
    const a = [
      { origin: 'demo', head: { since: 1, seq: 2, head: Buffer.from('aa5ed7daf45fbb61ddf959a8255f6f9e60e7bb64b26d6fe81e5f43128732b9a3', 'hex'), admittedBy: undefined, sign: () => {} } },
      { origin: 'demo\u0000svc/g', head: { since: 3, seq: 1, head: Buffer.from('bde47e67ef0e31a4cae0807a647ff5704f86c3e7be5545556524494e1d56bb08', 'hex'), admittedBy: undefined, sign: () => {} } }
    ]
    const proofs: string[] = []
    signHeadsTogether(signer, self, a.map(({ origin, head }) => ({ origin, head: { ...head, sign: (s: Uint8Array) => { proofs.push(hex(s)) } } })))
    assert.equal(self, '12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5')
    assert.deepEqual(proofs, [
      // The signature of the root 2edd...ea91, count 2, index 0, then the other leaf.
      SIGNATURE + '0200' + '96bdaa0ffaa19edb54ec833bf03add8aacb8d4ece1f7a446e02b06d05cfa420e',
      SIGNATURE + '0201' + 'cc0ccd6852c8b725c27363c027f8389d0d789e3c6ef5dde3fb5e490783245016'
    ])
  })
})

describe('a run whose head was signed together with others', async () => {
  const [aKey, bKey, cKey] = await Promise.all([keyFromSeed(1), keyFromSeed(2), keyFromSeed(3)])
  const [a, b, c] = [aKey, bKey, cKey].map(k => peerIdFromPrivateKey(k).toString()) as [string, string, string]
  const options = (key: PrivateKey, self: string, origin: string): { signatures: ReturnType<typeof eventSignatures<number, number, number>> } =>
    ({ signatures: eventSignatures(origin, self, peerSigner(key), codecs) })

  /** Groups `g1` and `g2` of a, b and c, with an event of a's in each, signed together. */
  function cluster (): { readonly at: Record<'a' | 'b' | 'c', EventFold<number, number, number>[]> } {
    const origins = ['c\u0000g1', 'c\u0000g2']
    const at = { a: [] as EventFold<number, number, number>[], b: [] as EventFold<number, number, number>[], c: [] as EventFold<number, number, number>[] }
    for (const origin of origins) {
      // The runtime's join flow: a joiner starts from its sponsor's fold and acknowledges.
      const fa = EventFold.create(origin, a, spec, options(aKey, a, origin))
      fa.participate(b)
      const fb = EventFold.fromSnapshot(fa.snapshot(), b, spec, options(bKey, b, origin))
      fb.acknowledge()
      assert.ok(fa.mergeFull(fb.snapshot()).ok)
      fa.participate(c)
      const fc = EventFold.fromSnapshot(fa.snapshot(), c, spec, options(cKey, c, origin))
      fc.acknowledge()
      for (let round = 0; round < 2; round++) {
        for (const [from, to] of [[fc, fa], [fa, fb], [fb, fa], [fa, fc], [fa, fb]] as const) assert.ok(to.mergeFull(from.snapshot()).ok)
      }
      for (const f of [fa, fb, fc]) assert.deepEqual(f.infimumParticipants().sort(), [a, b, c].sort())
      at.a.push(fa)
      at.b.push(fb)
      at.c.push(fc)
    }
    for (const f of at.a) f.event(5)
    signHeadsTogether(peerSigner(aKey), a, at.a.map((f, i) => ({ origin: origins[i]!, head: f.unsignedHead()! })))
    return { at }
  }

  test('b takes it first-hand from a, and c takes it relayed by b (its proof checked)', () => {
    const { at } = cluster()
    for (let g = 0; g < 2; g++) {
      const fromA = at.a[g]!.diffFor(b)!
      assert.ok(fromA.runs.some(r => r.creator === a && (r.signature?.length ?? 0) > 64), 'a\'s run carries no proof')
      assert.ok(at.b[g]!.mergeDiff(fromA, { from: a }).ok)
      const relayed = at.b[g]!.diffFor(c, { relay: true })!
      assert.ok(relayed.runs.some(r => r.creator === a), 'b relays no run of a\'s')
      assert.ok(at.c[g]!.mergeDiff(relayed, { from: b }).ok)
      assert.equal(at.c[g]!.projectedValue(), 5)
      assert.equal(at.b[g]!.lateForgedHeads, 0)
    }
  })

  test('c refuses it relayed with a proof of the other group', () => {
    const { at } = cluster()
    const [d1, d2] = [at.a[0]!.diffFor(c)!, at.a[1]!.diffFor(c)!]
    const proofOf2 = d2.runs.find(r => r.creator === a)!.signature
    const swapped = { ...d1, runs: d1.runs.map(r => r.creator === a ? { ...r, signature: proofOf2 } : r) }
    const result = at.c[0]!.mergeDiff(swapped, { from: b })
    assert.ok(!result.ok && result.error instanceof ForgedEventError)
    assert.equal(at.c[0]!.projectedValue(), 0)
  })
})
