/**
 * Participant fingerprints (codec format 3): what a sender abbreviates, and that a receiver
 * resolves only what it knows, unambiguously.
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { ParticipantFingerprints } from '../src/peer/group/participant-names.js'
import { decodeDiff, encodeDiff, FINGERPRINT_BYTES } from '../src/codec/index.js'
import { jsonCodec } from '../src/codec/json.js'
import type { JsonValue } from '../src/codec/index.js'
import type { Diff } from '../src/eventfold/types.js'

const codecs = { event: jsonCodec, state: jsonCodec, output: jsonCodec }
// Peer ids are about 52 characters: much longer than a fingerprint.
const alice = '12D3KooWAliceAliceAliceAliceAliceAliceAliceAliceAlice'
const bob = '12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBobBobBob'

describe('participant fingerprints', () => {
  test('a fingerprint is the first 8 bytes of SHA-256 over the peer id', () => {
    const fp = new ParticipantFingerprints().of(alice)
    assert.equal(fp.length, FINGERPRINT_BYTES)
    assert.deepEqual([...fp], [...createHash('sha256').update(alice).digest().subarray(0, 8)])
  })

  test('only shared participants are abbreviated, and only known ones resolve', () => {
    const names = new ParticipantFingerprints()
    const diff: Diff<JsonValue, JsonValue> = {
      origin: 'c',
      acknowledgements: [{
        participant: alice,
        infimumId: { counter: 0, participant: '' },
        infimumDigest: { count: 0, hash: 0 },
        joined: true,
        log: 1,
        unsettled: 1,
        holds: [{ participant: alice, since: 1, seq: 1 }],
        failures: [],
        departing: []
      }],
      runs: [{ creator: alice, since: 1, first: 1, events: [{ counter: 1, delta: { kind: 'join', participant: bob } }] }]
    }
    const bytes = encodeDiff(diff, codecs, names.sending('c', new Set([alice, bob])))
    const partial = encodeDiff(diff, codecs, names.sending('c', new Set([alice])))
    assert.ok(bytes.length < partial.length && partial.length < encodeDiff(diff, codecs).length)
    const known: string[] = [bob, alice]
    assert.deepStrictEqual(decodeDiff(bytes, codecs, undefined, names.receiving('c', known)), diff)
    // A receiver that has not seen "bob" cannot read it: it must ask for a sync.
    assert.throws(() => decodeDiff(bytes, codecs, undefined, new ParticipantFingerprints().receiving('c', [alice])), { name: 'DecodeError', code: 'unknown-participant' })
    assert.deepStrictEqual(decodeDiff(partial, codecs, undefined, new ParticipantFingerprints().receiving('c', [alice])), diff)
  })

  test('the resolver follows a growing list of known participants', () => {
    const names = new ParticipantFingerprints()
    const known: string[] = [alice]
    const fpBob = names.of(bob)
    assert.equal(names.receiving('c', known).resolve!(fpBob), undefined)
    known.push(bob)
    assert.equal(names.receiving('c', known).resolve!(fpBob), bob)
    assert.equal(names.receiving('c', known).resolve!(names.of(alice)), alice)
  })
})
