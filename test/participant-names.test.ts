/**
 * Participant fingerprints (codec format 3): what a sender abbreviates, and that a receiver
 * resolves only what it knows, unambiguously.
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { ParticipantFingerprints, tableHash } from '../src/peer/group/participant-names.js'
import { decodeDiff, encodeDiff, FINGERPRINT_BYTES, TABLE_HASH_BYTES, Writer } from '../src/codec/index.js'
import { jsonCodec } from '../src/codec/json.js'
import type { JsonValue } from '../src/codec/index.js'
import type { Diff } from '../src/eventfold/types.js'

const codecs = { event: jsonCodec, state: jsonCodec, output: jsonCodec }
// Peer ids are about 52 characters: much longer than a fingerprint.
const alice = '12D3KooWAliceAliceAliceAliceAliceAliceAliceAliceAlice'
const bob = '12D3KooWBobBobBobBobBobBobBobBobBobBobBobBobBobBobBob'
const carol = '12D3KooWCarolCarolCarolCarolCarolCarolCarolCarolCaro'
const dave = '12D3KooWDaveDaveDaveDaveDaveDaveDaveDaveDaveDaveDave'

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

  test('a table hash is the first 8 bytes of SHA-256 over the list written in full', () => {
    const w = new Writer(8)
    w.writeVarUint(2)
    w.writeString(alice)
    w.writeString(bob)
    assert.equal(TABLE_HASH_BYTES, 8)
    assert.deepEqual([...tableHash([alice, bob])], [...createHash('sha256').update(w.finish()).digest().subarray(0, 8)])
    // The length prefix keeps ["a\u0000b"] and ["a", "b"] apart however the names are joined.
    assert.notDeepEqual([...tableHash(['ab'])], [...tableHash(['a', 'b'])])
  })

  test('a list is named by hash only once every receiver acknowledged an infimum at or past the one where it became the sender\'s', () => {
    const names = new ParticipantFingerprints()
    const at = (counter: number): { counter: number, participant: string } => ({ counter, participant: alice })
    const noted = names.noteInfimum([alice, bob], at(5))
    assert.deepEqual(noted.since, at(5))
    assert.equal(names.noteInfimum([alice, bob], at(9)), noted, 'the same list keeps the infimum it was first seen at')
    const reported = new Map([[bob, at(5)], [carol, at(4)]])
    assert.equal(names.tableFor(noted, [bob], p => reported.get(p))?.hash, noted.table.hash)
    assert.equal(names.tableFor(noted, [bob, carol], p => reported.get(p)), undefined, 'carol may not know the list yet')
    assert.equal(names.tableFor(noted, [bob, dave], p => reported.get(p)), undefined, 'nothing taken from dave yet')
  })

  test('a receiver resolves a table hash against its recent infimum lists and the lists it is given, and nothing else', () => {
    const sender = new ParticipantFingerprints()
    const receiver = new ParticipantFingerprints()
    const list = [alice, bob, carol]
    const noted = sender.noteInfimum(list, { counter: 3, participant: alice })
    const diff: Diff<JsonValue, JsonValue> = {
      origin: 'c',
      acknowledgements: [{ participant: alice, infimumId: { counter: 3, participant: alice }, infimumDigest: { count: 3, hash: 1 }, joined: true, log: 1, unsettled: 0, holds: [{ participant: alice, since: 1, seq: 1 }, { participant: bob, since: 2, seq: 1 }, { participant: carol, since: 3, seq: 1 }], failures: [], departing: [] }],
      runs: []
    }
    const bytes = encodeDiff(diff, codecs, sender.sending('c', new Set(list), noted.table))
    // Three participants: 9 bytes of table instead of 25 by fingerprint.
    assert.equal(encodeDiff(diff, codecs, sender.sending('c', new Set(list))).length - bytes.length, 16)
    const known = [alice, bob, carol]
    assert.throws(() => decodeDiff(bytes, codecs, undefined, receiver.receiving('c', known)), { name: 'DecodeError', code: 'unknown-participant' })
    assert.deepStrictEqual(decodeDiff(bytes, codecs, undefined, receiver.receiving('c', known, () => [list])), diff, 'a list it is given (its projected participants)')
    receiver.noteInfimum(list, { counter: 3, participant: alice })
    for (const next of [[alice], [alice, bob], [bob], [bob, carol]]) receiver.noteInfimum(next, { counter: 9, participant: bob })
    assert.throws(() => decodeDiff(bytes, codecs, undefined, receiver.receiving('c', known)), { name: 'DecodeError', code: 'unknown-participant' }, 'four lists later it is forgotten')
    receiver.noteInfimum(list, { counter: 20, participant: bob })
    assert.deepStrictEqual(decodeDiff(bytes, codecs, undefined, receiver.receiving('c', known)), diff, 'one of its own recent lists')
  })

  test('contexts handed out again while nothing changed follow what did: the table named, the lists given, the participants known', () => {
    const names = new ParticipantFingerprints()
    const list = [alice, bob, carol]
    const noted = names.noteInfimum(list, { counter: 3, participant: alice })
    const diff: Diff<JsonValue, JsonValue> = {
      origin: 'c',
      acknowledgements: [{ participant: alice, infimumId: { counter: 3, participant: alice }, infimumDigest: { count: 3, hash: 1 }, joined: true, log: 1, unsettled: 0, holds: [{ participant: bob, since: 2, seq: 1 }, { participant: carol, since: 3, seq: 1 }], failures: [], departing: [] }],
      runs: []
    }
    // The same set object each time, as a replica passes its noted list's set.
    const shared = new Set(list)
    const byTable = encodeDiff(diff, codecs, names.sending('c', shared, noted.table))
    const byPrint = encodeDiff(diff, codecs, names.sending('c', shared))
    assert.equal(byPrint.length - byTable.length, 16, 'without the table, by fingerprint')
    assert.deepEqual(encodeDiff(diff, codecs, names.sending('c', shared, noted.table)), byTable, 'with it again, by table hash')
    const receiver = new ParticipantFingerprints()
    const known = [alice, bob]
    const given = (): ReadonlyArray<readonly string[]> => [list]
    assert.throws(() => decodeDiff(byPrint, codecs, undefined, receiver.receiving('c', known, given)), { name: 'DecodeError', code: 'unknown-participant' })
    known.push(carol)
    assert.deepStrictEqual(decodeDiff(byPrint, codecs, undefined, receiver.receiving('c', known, given)), diff, 'a participant known since')
    assert.deepStrictEqual(decodeDiff(byTable, codecs, undefined, receiver.receiving('c', known, given)), diff, 'the list given names the table')
    assert.throws(() => decodeDiff(byTable, codecs, undefined, receiver.receiving('c', known)), { name: 'DecodeError', code: 'unknown-participant' }, 'without the list, not')
  })
})
