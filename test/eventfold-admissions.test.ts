/**
 * Admissions: a participant's events fold only as the incarnation that the Join admitting it
 * made (docs/ARCHITECTURE.md, "Admissions"). The keyspace's link cuts (R = 3, seed 1279) lost
 * writes when an incarnation's event, written under a Join that the others' history dropped,
 * folded after another Join of the same name, which admitted a new replica that never held it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EventFold, type EventSpec, type MergeResult } from '../src/eventfold/index.js'
import { decodeDiff, decodeEventFold, decodeStoredLog, encodeDiff, encodeEventFold, encodeStoredLog } from '../src/codec/index.js'
import { jsonCodecFor } from '../src/codec/json.js'

interface Log { readonly applied: readonly string[], readonly members: readonly string[] }
const spec: EventSpec<string, Log, string> = {
  init: () => ({ applied: [], members: [] }),
  apply: (e, s) => ({ ok: true, output: `${e}@${s.applied.length}`, state: { ...s, applied: [...s.applied, e] } }),
  join: (p, s) => ({ ...s, members: [...s.members, p].sort() }),
  unjoin: (p, s) => ({ ...s, members: s.members.filter(m => m !== p) })
}
const options = { freezeStates: true }
type Fold = EventFold<string, Log, string>
const codecs = { event: jsonCodecFor<string>(), state: jsonCodecFor<Log>(), output: jsonCodecFor<string>() }

function ok<O> (r: MergeResult<O>): void {
  if (!r.ok) throw r.error
}

/** Every snapshot and diff goes through the codec, as between peers. */
function full (from: Fold, to: Fold): void {
  ok(to.mergeFull(decodeEventFold(encodeEventFold(from.snapshot(), codecs), codecs)))
}

/**
 * a founds the fold and admits s; s admits p (Join `first`), and p's first replica writes
 * `writes` events under it. Cut off from s, a ejects it: its stand-in passes s's Join of p,
 * which a never held. a admits p again (Join `second`): p's second replica starts from a's fold.
 */
function twoIncarnations (writes: number): { a: Fold, p1: Fold, p2: Fold } {
  const a = EventFold.create('c', 'a', spec, options)
  a.participate('s')
  const s = EventFold.fromSnapshot(a.snapshot(), 's', spec, options)
  s.acknowledge()
  full(s, a)
  assert.deepEqual(a.infimumParticipants(), ['a', 's'])
  s.participate('p')
  const p1 = EventFold.fromSnapshot(s.snapshot(), 'p', spec, options)
  p1.acknowledge()
  for (let i = 0; i < writes; i++) p1.event(`w${i}`)
  a.disassociate('s')
  assert.deepEqual(a.infimumParticipants(), ['a'], 'a alone stood in for s')
  a.participate('p')
  const p2 = EventFold.fromSnapshot(a.snapshot(), 'p', spec, options)
  p2.acknowledge()
  full(p2, a)
  assert.deepEqual(a.infimumParticipants(), ['a', 'p'])
  return { a, p1, p2 }
}

test('the events of an incarnation whose Join was dropped do not fold after another Join of its name', () => {
  const { a, p1, p2 } = twoIncarnations(3)
  // p's first replica's writes reach a (ordered after the second Join: p1's clock ran ahead).
  full(p1, a)
  assert.deepEqual(a.infimumValue().applied, [], 'a folded none of them')
  assert.equal(a.outstandingCount, 0, 'they are renegades there')
  // a and p's second replica agree, and go on folding together.
  a.event('x')
  for (let round = 0; round < 3; round++) { full(a, p2); full(p2, a) }
  assert.deepEqual(a.infimumDigest(), p2.infimumDigest())
  assert.deepEqual(a.infimumValue().applied, ['x'])
  assert.deepEqual(p2.infimumValue().applied, ['x'])
})

test('a replica admitted again by another Join writes a new log, whose events fold', () => {
  const { a, p1 } = twoIncarnations(2)
  const before = p1.log
  // p's first replica takes a's fold, where the second Join admits it: it goes on as that incarnation.
  full(a, p1)
  p1.event('after')
  assert.notEqual(p1.log, before, 'a new log')
  for (let round = 0; round < 3; round++) { full(p1, a); full(a, p1) }
  assert.deepEqual(a.infimumValue().applied, ['after'], 'the new log folds, the old one does not')
  assert.deepEqual(p1.infimumDigest(), a.infimumDigest())
})

test('admissions travel in folds, diffs and stored logs', () => {
  const { a, p2 } = twoIncarnations(0)
  p2.event('y')
  const snapshot = p2.snapshot()
  assert.ok(snapshot.infimum.admissions !== undefined && snapshot.infimum.admissions.length === 2)
  const decoded = decodeEventFold(encodeEventFold(snapshot, codecs), codecs)
  assert.deepEqual(decoded.infimum.admissions, snapshot.infimum.admissions)
  assert.deepEqual(decoded.logs.map(l => l.admittedBy), snapshot.logs.map(l => l.admittedBy))
  const own = snapshot.logs.find(l => l.participant === 'p')!
  assert.equal(own.admittedBy?.participant, 'a', 'p\'s log names the Join a made')
  assert.deepEqual(decodeStoredLog(encodeStoredLog(own)).admittedBy, own.admittedBy)
  const diff = p2.diffFor('a')!
  const run = diff.runs.find(r => r.creator === 'p')!
  assert.deepEqual(run.admittedBy, own.admittedBy)
  assert.deepEqual(decodeDiff(encodeDiff(diff, codecs), codecs).runs.find(r => r.creator === 'p')?.admittedBy, own.admittedBy)
  // A fold without admissions (stored before them) reads as it did, and takes part as before.
  const legacy = { ...snapshot, infimum: { ...snapshot.infimum, admissions: undefined }, logs: snapshot.logs.map(({ admittedBy: _, ...l }) => l) }
  const bytes = encodeEventFold(legacy, codecs)
  assert.ok(bytes.length < encodeEventFold(snapshot, codecs).length)
  const old = EventFold.fromSnapshot(decodeEventFold(bytes, codecs), 'a', spec, options)
  full(old, a)
  a.acknowledge()
  assert.deepEqual(a.projectedValue().applied, ['y'])
})
