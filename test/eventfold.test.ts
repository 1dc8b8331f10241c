/**
 * Specifications of each EventFold operation, on small hand-built scenarios. The randomised
 * convergence properties are in eventfold-convergence.test.ts.
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import {
  BOTTOM, EventFold, type EventSpec, DiffTooNewError, DiffTooSparseError, DifferentOriginsError,
  type Diff, type MergeResult, compareEventIds
} from '../src/eventfold/index.js'

/** State: the events applied, in order, and who joined. Event 'fail' is a system error. */
interface Log { readonly applied: readonly string[], readonly members: readonly string[] }
const logSpec: EventSpec<string, Log, string> = {
  init: () => ({ applied: [], members: [] }),
  apply: (e, s) => e.startsWith('fail')
    ? { ok: false, output: `error:${e}` }
    : { ok: true, output: `${e}@${s.applied.length}`, state: { ...s, applied: [...s.applied, e] } },
  join: (p, s) => ({ ...s, members: [...s.members, p].sort() }),
  unjoin: (p, s) => ({ ...s, members: s.members.filter(m => m !== p) })
}
const options = { freezeStates: true }

function ok<O> (r: MergeResult<O>): { outputs: ReadonlyArray<{ id: unknown, output: O }>, propagate: boolean } {
  if (!r.ok) throw r.error
  return r
}

/** a creates the cluster, b joins through a: the join flow of the runtime. */
function twoPeers (): { a: EventFold<string, Log, string>, b: EventFold<string, Log, string> } {
  const a = EventFold.create('c', 'a', logSpec, options)
  a.participate('b')
  const b = EventFold.fromSnapshot(a.snapshot(), 'b', logSpec, options)
  b.acknowledge()
  ok(a.mergeFull(b.snapshot()))
  assert.deepEqual(a.infimumParticipants(), ['a', 'b'])
  return { a, b }
}

function sync (from: EventFold<string, Log, string>, to: EventFold<string, Log, string>): void {
  const diff = from.diffFor(to.self)
  if (diff === undefined) { ok(to.mergeFull(from.snapshot())); return }
  const r = to.mergeDiff(diff)
  if (!r.ok) ok(to.mergeFull(from.snapshot()))
}

describe('creating a fold', () => {
  test('a new fold has one participant, a bottom infimum and the join hook applied to it', () => {
    const f = EventFold.create('cluster', 'a', logSpec, options)
    assert.equal(f.origin, 'cluster')
    assert.deepEqual(f.infimumId(), BOTTOM)
    assert.deepEqual(f.infimumParticipants(), ['a'])
    assert.deepEqual(f.infimumValue(), { applied: [], members: ['a'] })
    assert.equal(f.outstandingCount, 0)
  })
})

describe('event', () => {
  test('with a single participant an event folds at once and reports its consistent output', () => {
    const f = EventFold.create('c', 'a', logSpec, options)
    const r = f.event('x')
    assert.equal(r.output, 'x@0')
    assert.deepEqual(r.outputs, [{ id: r.id, output: 'x@0' }])
    assert.deepEqual(f.infimumId(), r.id)
    assert.deepEqual(f.infimumValue().applied, ['x'])
    assert.equal(f.infimumDigest().count, 1)
  })

  test('ids are Lamport-style: one more than the largest counter known', () => {
    const { a, b } = twoPeers()
    const e1 = a.event('a1')
    sync(a, b)
    const e2 = b.event('b1')
    assert.equal(e2.id.counter, e1.id.counter + 1)
    assert.equal(e2.id.participant, 'b')
  })

  test('observeCounter raises the counter so a replaced fold never reuses an id', () => {
    const { a } = twoPeers()
    const before = a.event('x').id.counter
    const fresh = EventFold.fromSnapshot(EventFold.create('c', 'a', logSpec, options).snapshot(), 'a', logSpec, options)
    fresh.observeCounter(a.maxKnownCounter)
    assert.ok(fresh.event('y').id.counter > before)
  })

  test('with two participants an event stays outstanding until the other acknowledges it', () => {
    const { a, b } = twoPeers()
    const r = a.event('x')
    assert.deepEqual(r.outputs, [])
    assert.equal(a.outstandingCount, 1)
    assert.deepEqual(a.projectedValue().applied, ['x'])
    assert.deepEqual(a.infimumValue().applied, [])
    sync(a, b) // b merges and acknowledges
    assert.deepEqual(b.projectedValue().applied, ['x'])
    sync(b, a)
    assert.deepEqual(a.infimumValue().applied, ['x'])
    assert.equal(a.outstandingCount, 0)
  })

  test('the projection follows id order, not arrival order', () => {
    const { a, b } = twoPeers()
    const ea = a.event('a1') // same counter as eb; 'a' < 'b' orders it first
    const eb = b.event('b1')
    assert.equal(ea.id.counter, eb.id.counter)
    sync(b, a)
    assert.deepEqual(a.projectedValue().applied, ['a1', 'b1'])
    sync(a, b)
    assert.deepEqual(b.projectedValue().applied, ['a1', 'b1'])
  })

  test('a late event earlier in the order changes the projected output of later events', () => {
    const { a, b } = twoPeers()
    b.event('b1')
    a.event('a1')
    a.event('a2') // counter 2 for a's second event > b1's counter 1
    sync(b, a)
    assert.deepEqual(a.projectedValue().applied, ['a1', 'b1', 'a2'].sort((x, y) => x === 'a2' ? 1 : y === 'a2' ? -1 : x < y ? -1 : 1))
  })
})

describe('acknowledge and reduce', () => {
  test('acknowledging on behalf of every participant folds everything in id order with outputs', () => {
    const { a } = twoPeers()
    a.event('x')
    a.event('y')
    const r = a.acknowledge('b')
    assert.deepEqual(r.outputs.map(o => o.output), ['x@0', 'y@1'])
    assert.equal(r.propagate, true)
    assert.equal(a.acknowledge('b').propagate, false, 'nothing new to acknowledge')
  })

  test('events of a non-participant (renegade) are dropped when they reach the front', () => {
    const { a, b } = twoPeers()
    const c = EventFold.fromSnapshot(a.snapshot(), 'c', logSpec, options) // c never joined
    c.event('forged')
    b.event('held') // keeps the forged event from being at the front at first
    ok(a.mergeFull(c.snapshot()))
    assert.deepEqual(a.projectedValue().applied, [], 'the projection skips renegades too')
    sync(b, a)
    assert.deepEqual(a.projectedValue().applied, ['held'])
    sync(a, b)
    sync(b, a)
    assert.deepEqual(a.infimumValue().applied, ['held'])
    assert.equal(a.outstandingCount, 0)
  })

  test('a pending UnJoin counts as the ejected peer\'s acknowledgement', () => {
    const { a } = twoPeers()
    a.event('x')
    assert.equal(a.outstandingCount, 1)
    const r = a.disassociate('b')
    assert.deepEqual(r.outputs.map(o => o.output), ['x@0'])
    assert.deepEqual(a.infimumParticipants(), ['a'])
    assert.deepEqual(a.infimumValue().members, ['a'])
    assert.equal(a.outstandingCount, 0)
  })

  test('an UnJoin stands in for the ejected peer only once every remaining participant has acknowledged it', () => {
    // b's event reaches a but not d; d joined late (after e_b in the order) and ejects b.
    const { a, b } = twoPeers()
    a.event('x')
    a.participate('d')
    const d = EventFold.fromSnapshot(a.snapshot(), 'd', logSpec, options)
    d.acknowledge()
    ok(a.mergeFull(d.snapshot()))
    const eb = b.event('e_b')
    sync(b, a) // a holds e_b; d does not
    d.disassociate('b')
    assert.ok(d.infimumValue().applied.length === 0, 'd must not fold past e_b before a acknowledged the UnJoin')
    sync(d, a)
    sync(a, d)
    sync(d, a)
    assert.deepEqual(d.infimumValue(), a.infimumValue())
    assert.ok(a.infimumValue().applied.includes('e_b'))
    assert.ok(compareEventIds(d.infimumId(), eb.id) > 0)
  })

  test('a Join folds only once the joining peer has acknowledged it', () => {
    const a = EventFold.create('c', 'a', logSpec, options)
    a.participate('b')
    assert.equal(a.outstandingCount, 1)
    assert.deepEqual(a.projectedParticipants(), ['a', 'b'])
    assert.deepEqual(a.infimumParticipants(), ['a'])
    a.acknowledge('b')
    assert.deepEqual(a.infimumParticipants(), ['a', 'b'])
    assert.deepEqual(a.infimumValue().members, ['a', 'b'])
  })
})

describe('system errors', () => {
  test('with one participant a failing event folds at once as an error, leaving the state unchanged', () => {
    const f = EventFold.create('c', 'a', logSpec, options)
    const r = f.event('fail1')
    assert.equal(r.failed, true)
    assert.deepEqual(r.outputs.map(o => o.output), ['error:fail1'])
    assert.deepEqual(f.infimumValue().applied, [])
    assert.equal(f.isBlockedOnError(), false)
  })

  test('a failure blocks the fold until every participant has acknowledged the failure', () => {
    const { a, b } = twoPeers()
    a.event('fail1')
    a.event('y')
    a.acknowledge('b') // b acknowledged the events, but not yet the failure
    assert.equal(a.isBlockedOnError(), true)
    assert.deepEqual(a.infimumValue().applied, [])
    sync(a, b) // b learns of the error and acknowledges it
    sync(b, a)
    assert.equal(a.isBlockedOnError(), false)
    assert.deepEqual(a.infimumValue().applied, ['y'])
    sync(a, b)
    assert.deepEqual(b.infimumValue(), a.infimumValue())
  })
})

describe('diffs', () => {
  test('a peer whose Join has not folded gets no diff (a full merge is required)', () => {
    const a = EventFold.create('c', 'a', logSpec, options)
    a.participate('b')
    assert.equal(a.diffFor('b'), undefined)
    assert.equal(a.diffFor('nobody'), undefined)
  })

  test('a diff leaves out bodies the peer acknowledged, and never errors', () => {
    const { a, b } = twoPeers()
    a.event('x')
    a.acknowledge('b')
    b.event('y')
    sync(b, a)
    const diff = a.diffFor('b')!
    assert.ok(diff.events.every(e => e.delta === undefined))
  })

  test('a diff from another origin is refused and changes nothing', () => {
    const { a } = twoPeers()
    const other = EventFold.create('other', 'z', logSpec, options)
    const before = a.snapshot()
    const r = a.mergeDiff({ ...other.diffFor('z')!, origin: 'other' })
    assert.equal(r.ok, false)
    assert.ok(!r.ok && r.error instanceof DifferentOriginsError)
    assert.deepEqual(a.snapshot(), before)
    const f = a.mergeFull(other.snapshot())
    assert.ok(!f.ok && f.error.name === 'DifferentOriginsError')
  })

  test('a diff omitting a body unknown here is too sparse and changes nothing', () => {
    const { a, b } = twoPeers()
    b.event('y')
    const diff = b.diffFor('a')!
    const sparse: Diff<string, string> = { ...diff, events: diff.events.map(e => ({ ...e, delta: undefined })) }
    const before = a.snapshot()
    const r = a.mergeDiff(sparse)
    assert.ok(!r.ok && r.error instanceof DiffTooSparseError && r.error.reason === 'missing-body')
    assert.deepEqual(a.snapshot(), before)
  })

  test('a diff whose infimum is an event not held here is too new and changes nothing', () => {
    const { a, b } = twoPeers()
    const bLag = EventFold.fromSnapshot(b.snapshot(), 'b', logSpec, options)
    a.event('x')
    sync(a, b)
    sync(b, a) // x folded at a and b
    const before = bLag.snapshot()
    const r = bLag.mergeDiff(a.diffFor('b')!)
    assert.ok(!r.ok && r.error instanceof DiffTooNewError)
    assert.deepEqual(bLag.snapshot(), before)
    ok(bLag.mergeFull(a.snapshot()))
    assert.deepEqual(bLag.infimumValue(), a.infimumValue())
  })

  test('a remote infimum acts as acknowledgement by everyone of the events it covers', () => {
    const { a, b } = twoPeers()
    const y = b.event('y') // outstanding at b, acknowledged by b only
    sync(b, a) // a has y acknowledged by both and folds it
    assert.deepEqual(a.infimumId(), y.id)
    assert.equal(b.outstandingCount, 1)
    // a's diff carries no events, only its infimum: b folds y on that word alone.
    const diff = a.diffFor('b')!
    assert.equal(diff.events.length, 0)
    const r = ok(b.mergeDiff(diff))
    assert.deepEqual(r.outputs.map(o => o.id), [y.id])
    assert.deepEqual(b.infimumId(), a.infimumId())
  })

  test('the late joiner: a diff whose infimum hides an event the receiver never had is refused (digest)', () => {
    // DESIGN.md "A known trap": a and b add events concurrently, c joins via a.
    const { a, b } = twoPeers()
    const eb = b.event('e_b') // counter 3, acknowledged by b only so far
    a.event('e_a')
    const join = a.participate('c')
    assert.ok(join.id.counter > eb.id.counter)
    const c = EventFold.fromSnapshot(a.snapshot(), 'c', logSpec, options) // lacks e_b
    c.acknowledge()
    ok(a.mergeFull(c.snapshot()))
    // b gets a's events and acknowledges; a gets b's; both fold e_b and Join(c) without c.
    sync(a, b)
    sync(b, a)
    sync(a, b)
    assert.deepEqual(b.infimumParticipants(), ['a', 'b', 'c'])
    const diff = b.diffFor('c')
    assert.ok(diff !== undefined, "c's join has folded at b, so b offers a diff")
    const before = c.snapshot()
    const r = c.mergeDiff(diff)
    assert.ok(!r.ok && r.error instanceof DiffTooSparseError && r.error.reason === 'digest', 'the diff must be refused')
    assert.deepEqual(c.snapshot(), before)
    ok(c.mergeFull(b.snapshot()))
    assert.deepEqual(c.infimumValue(), b.infimumValue())
    assert.deepEqual(c.infimumValue().applied, b.infimumValue().applied)
    assert.ok(c.infimumValue().applied.includes('e_b'))
  })
})

describe('full merge', () => {
  test('takes the greater infimum and drops the local events it covers', () => {
    const { a, b } = twoPeers()
    a.event('x')
    sync(a, b)
    sync(b, a)
    const stale = EventFold.fromSnapshot(b.snapshot(), 'b', logSpec, options)
    a.event('y'); sync(a, b); sync(b, a)
    ok(stale.mergeFull(a.snapshot()))
    assert.deepEqual(stale.infimumId(), a.infimumId())
    assert.deepEqual(stale.infimumValue(), a.infimumValue())
    assert.equal(stale.outstandingCount, 0)
  })

  test('merging the same fold twice changes nothing the second time', () => {
    const { a, b } = twoPeers()
    b.event('y')
    const snap = b.snapshot()
    assert.equal(ok(a.mergeFull(snap)).propagate, true)
    assert.equal(ok(a.mergeFull(snap)).propagate, false)
  })
})

describe('participants and divergence', () => {
  test('all, projected and infimum participants during a join and an ejection', () => {
    const { a } = twoPeers()
    a.participate('c')
    a.disassociate('b')
    assert.deepEqual(a.infimumParticipants(), ['a', 'b'])
    assert.deepEqual(a.projectedParticipants(), ['a', 'c'])
    assert.deepEqual(a.allParticipants(), ['a', 'b', 'c'])
  })

  test('divergent peers are those that have not acknowledged the newest event, with their latest', () => {
    const { a, b } = twoPeers()
    const x = a.event('x')
    sync(a, b)
    sync(b, a)
    a.event('y')
    const d = a.divergent()
    assert.deepEqual([...d.keys()], ['b'])
    assert.deepEqual(d.get('b'), x.id)
  })
})

describe('immutability', () => {
  test('with freezeStates, an apply that mutates its input state throws instead of corrupting the infimum', () => {
    const bad: EventSpec<number, { n: number }, number> = {
      init: () => ({ n: 0 }),
      apply: (e, s) => { s.n += e; return { ok: true, output: s.n, state: s } }
    }
    const f = EventFold.create('c', 'a', bad, { freezeStates: true })
    assert.throws(() => f.event(1), TypeError)
  })

  test('Uint8Array values inside state are tolerated by freezing', () => {
    const spec: EventSpec<number, { b: Uint8Array }, number> = {
      init: () => ({ b: new Uint8Array(2) }),
      apply: (e, s) => ({ ok: true, output: e, state: { b: Uint8Array.of(e) } })
    }
    const f = EventFold.create('c', 'a', spec, { freezeStates: true })
    assert.equal(f.event(7).output, 7)
    void spec
  })
})
