/**
 * Specifications of each EventFold operation, on small hand-built scenarios. The randomised
 * convergence properties are in eventfold-convergence.test.ts.
 */
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import {
  BOTTOM, EventFold, type EventSpec, DiffTooNewError, DiffTooSparseError, DifferentOriginsError, ForgedEventError,
  type Acknowledgement, type Diff, type EventFoldSnapshot, type EventId, type EventSignatures, type FailureReport, type LogRun, type MergeResult, type Participant, compareEventIds
} from '../src/eventfold/index.js'
import { encodeDiff } from '../src/codec/index.js'
import { jsonCodecFor } from '../src/codec/json.js'

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

function ok<O> (r: MergeResult<O>): Exclude<MergeResult<O>, { ok: false }> {
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

/**
 * `from`'s diff for `to` with `from`'s acknowledgement claiming more: that it holds `to`'s log
 * as `to` holds it now (what `from` would say once `to`'s events reached it), and `failures`.
 */
function claiming (from: EventFold<string, Log, string>, to: EventFold<string, Log, string>, failures: Array<FailureReport<string>> = []): Diff<string, string> {
  const diff = from.diffFor(to.self)!
  const own = diff.acknowledgements[0]!
  const holds = [...own.holds.filter(h => h.participant !== to.self), { participant: to.self, since: to.log, seq: to.held(to.self) }]
  holds.sort((x, y) => x.participant < y.participant ? -1 : x.participant > y.participant ? 1 : x.since - y.since)
  return { ...diff, acknowledgements: [{ ...own, holds, failures }] }
}

function sync<S> (from: EventFold<string, S, string>, to: EventFold<string, S, string>): void {
  const diff = from.diffFor(to.self)
  if (diff === undefined) { ok(to.mergeFull(from.snapshot())); return }
  const r = to.mergeDiff(diff)
  if (!r.ok) ok(to.mergeFull(from.snapshot()))
}

/** A cluster of `names`, the first creating it and adding the others one by one, all settled. */
function peers<N extends readonly string[]> (names: N): { [K in keyof N]: EventFold<string, Log, string> } {
  const all = [EventFold.create('c', names[0]!, logSpec, options)]
  for (const name of names.slice(1)) {
    all[0]!.participate(name)
    for (const f of all.slice(1)) sync(all[0]!, f)
    const joiner = EventFold.fromSnapshot(all[0]!.snapshot(), name, logSpec, options)
    joiner.acknowledge()
    all.push(joiner)
    for (let round = 0; round < 3; round++) for (const f of all) for (const t of all) if (f !== t) sync(f, t)
  }
  for (const f of all) assert.deepEqual(f.infimumParticipants(), [...names].sort())
  return all as { [K in keyof N]: EventFold<string, Log, string> }
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
    assert.deepEqual(r.outcome, { status: 'applied', output: 'x@0' })
    assert.deepEqual(r.outputs, [{ id: r.id, output: 'x@0' }])
    assert.deepEqual(r.thrown, [])
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

  test('apply, join and unjoin receive the id of the event they apply, the same in the projection and at the fold', () => {
    const seen: string[] = []
    const key = (id: EventId | undefined): string => id === undefined ? 'none' : `${id.counter}:${id.participant}`
    const spec: EventSpec<string, string[], string> = {
      init: () => [],
      apply: (e, s, id) => { seen.push(`${e}@${key(id)}`); return { ok: true, output: key(id), state: [...s, `${e}@${key(id)}`] } },
      join: (p, s, id) => [...s, `join ${p}@${key(id)}`],
      unjoin: (p, s, id) => [...s, `unjoin ${p}@${key(id)}`]
    }
    const a = EventFold.create('c', 'a', spec, options)
    assert.deepEqual(a.infimumValue(), ['join a@0:'], 'the founder joins at BOTTOM')
    const join = a.participate('b')
    const b = EventFold.fromSnapshot(a.snapshot(), 'b', spec, options)
    b.acknowledge()
    ok(a.mergeFull(b.snapshot()))
    const e = b.event('x')
    assert.deepEqual(e.outcome, { status: 'applied', output: key(e.id) }, 'the projected output already knows the id')
    sync(b, a)
    sync(a, b)
    const unjoin = a.disassociate('b')
    a.acknowledge('b')
    assert.deepEqual(a.infimumValue(), ['join a@0:', `join b@${key(join.id)}`, `x@${key(e.id)}`, `unjoin b@${key(unjoin.id)}`])
    assert.ok(seen.every(s => s === `x@${key(e.id)}`), `every application of x saw its id: ${seen.join(', ')}`)
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

  test('a renegade whose creator\'s Join arrives late is put back and folds', () => {
    const { a, b } = twoPeers()
    b.participate('c') // the Join of c, in b's log
    const c = EventFold.fromSnapshot(b.snapshot(), 'c', logSpec, options)
    c.event('early')
    // a takes c's own log before b's log brings the Join: c is no participant there yet.
    const onlyC = c.diffFor('a')!
    ok(a.mergeDiff({ ...onlyC, runs: onlyC.runs.filter(r => r.creator === 'c') }))
    assert.equal(a.outstandingCount, 0, 'set aside as a renegade')
    sync(b, a) // the Join arrives: the event is put back after it
    assert.deepEqual(a.projectedValue().applied, ['early'])
    for (let round = 0; round < 4; round++) { sync(a, b); sync(b, c); sync(c, a); sync(a, c); sync(c, b); sync(b, a) }
    assert.deepEqual(a.infimumValue().applied, ['early'])
    assert.deepEqual(b.infimumValue(), a.infimumValue())
    assert.deepEqual(c.infimumValue(), a.infimumValue())
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

  test('an ejection with quorum stands in only while a strict majority remains: two sides of a split each ejecting the other fold nothing new', () => {
    // The keyspace's link cuts, seed 293 (docs/RELIABILITY.md): of four peers, each side of two
    // had the failure detector eject the other two; both folded on, and became two clusters.
    const [a, b, c, d] = peers(['a', 'b', 'c', 'd'] as const)
    a.disassociate('c', { quorum: true })
    b.disassociate('d', { quorum: true })
    c.disassociate('a', { quorum: true })
    d.disassociate('b', { quorum: true })
    const x = a.event('x')
    const y = c.event('y')
    for (let round = 0; round < 3; round++) { sync(a, b); sync(b, a); sync(c, d); sync(d, c) }
    for (const f of [a, b, c, d]) {
      assert.deepEqual(f.infimumParticipants(), ['a', 'b', 'c', 'd'], `${f.self} keeps every participant`)
      assert.deepEqual(f.infimumValue().applied, [], `${f.self} folds nothing new`)
    }
    assert.deepEqual(a.awaitingMajority(), ['c', 'd'], 'what an operator is told')
    assert.deepEqual(c.awaitingMajority(), ['a', 'b'])
    assert.deepEqual(a.projectedParticipants(), ['a', 'b'])
    // The split heals: the four UnJoins fold in their order, and every replica agrees.
    const all = [a, b, c, d]
    for (let round = 0; round < 4; round++) for (const from of all) for (const to of all) if (from !== to) sync(from, to)
    const settled = a.infimumParticipants()
    assert.deepEqual(settled, ['a', 'b'], 'the first ejection ordered, of c, folded; the ones c and d made are dropped with them')
    assert.deepEqual(b.infimumDigest(), a.infimumDigest())
    assert.deepEqual(a.infimumValue().applied, ['x'], 'x folded; y, made by c after the UnJoin that removed it, never does')
    assert.ok(compareEventIds(a.infimumId(), x.id) >= 0)
    void y
  })

  test('with a strict majority left an ejection with quorum stands in; without one only an UnJoin without quorum does (an operator\'s, or a leaver\'s)', () => {
    const [a, b, c] = peers(['a', 'b', 'c'] as const)
    a.disassociate('c', { quorum: true })
    a.event('x')
    sync(a, b)
    sync(b, a)
    assert.deepEqual(a.infimumParticipants(), ['a', 'b'], '2 of 3 remain: c is removed')
    assert.deepEqual(a.awaitingMajority(), [])
    assert.deepEqual(a.infimumValue().applied, ['x'])
    void c
    const pair = twoPeers()
    pair.a.disassociate('b', { quorum: true })
    pair.a.event('y')
    assert.deepEqual(pair.a.infimumParticipants(), ['a', 'b'], '1 of 2 is no majority')
    assert.deepEqual(pair.a.awaitingMajority(), ['b'])
    pair.a.disassociate('b')
    assert.deepEqual(pair.a.infimumParticipants(), ['a'], 'an operator\'s ejection needs none')
    assert.deepEqual(pair.a.infimumValue().applied, ['y'])
    // A participant leaving of its own accord is not counted: of a, b and c (d left), a and b
    // are a majority.
    const [e, f, g, h] = peers(['a', 'b', 'c', 'd'] as const)
    h.disassociate('d')
    sync(h, e)
    sync(h, f)
    e.disassociate('c', { quorum: true })
    for (let round = 0; round < 3; round++) { sync(e, f); sync(f, e) }
    assert.deepEqual(e.infimumParticipants(), ['a', 'b'])
    void g
  })

  test('a joiner that takes every participant as departed does not fold past an event one of them held', () => {
    // The keyspace's link cuts, R = 2, seed 34 (docs/RELIABILITY.md): w, joining, was cut off
    // from both participants and disassociated them; it stood in for both and folded past b's
    // write, which a held and b had folded, and its longer history later replaced theirs.
    const { a, b } = twoPeers()
    a.participate('w')
    const w = EventFold.fromSnapshot(a.snapshot(), 'w', logSpec, options)
    w.acknowledge()
    const k = b.event('k')
    sync(b, a) // a holds k and acknowledges it
    ok(w.mergeDiff(a.diffFor('b')!)) // a's word reaches w (in the diff a has for b), k does not
    w.disassociate('a')
    w.disassociate('b')
    assert.ok(compareEventIds(w.infimumId(), k.id) < 0, 'w must not fold past k, which a said it held')
    assert.deepEqual(w.infimumParticipants(), ['a', 'b'])
    sync(a, w) // k arrives
    assert.deepEqual(w.infimumParticipants(), ['w'])
    assert.deepEqual(w.infimumValue().applied, ['k'])
  })

  test('an acknowledgement kept waiting is dropped once a newer one of its sender is taken, even holding less', () => {
    // The keyspace's link cuts, seed 103 (docs/RELIABILITY.md): a waiting acknowledgement of a
    // participant, older by infimum but larger in total than its taken ones, stayed for good
    // and was read as the participant's newest word.
    const { a, b } = twoPeers()
    const own = b.diffFor('a')!.acknowledgements[0]!
    // Waits at a: its sender says its Join has not folded there, while a counts it in with no
    // readmission known. It claims more of a's log than a holds, which a reads as a's lag.
    const waiting = { ...own, joined: false, holds: [...own.holds.filter(h => h.participant !== 'a'), { participant: 'a', since: 1, seq: 50 }].sort((x, y) => x.participant < y.participant ? -1 : 1) }
    ok(a.mergeDiff({ origin: 'c', acknowledgements: [waiting], runs: [] }))
    assert.deepEqual(a.aheadOfThis(), ['b'])
    a.event('x')
    for (let round = 0; round < 3; round++) { sync(a, b); sync(b, a) }
    assert.deepEqual(a.infimumValue().applied, ['x'])
    assert.ok(compareEventIds(a.acknowledgedInfimumOf('b')!, own.infimumId) > 0, 'b acknowledged a newer infimum')
    assert.deepEqual(a.aheadOfThis(), [], 'the waiting acknowledgement is gone')
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
    assert.deepEqual(r.outcome, { status: 'failed', output: 'error:fail1' })
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

describe('hooks that throw', () => {
  /** logSpec, except that `apply` throws for events starting with "boom", and the hooks for `badJoin`/`badUnjoin`. */
  function throwingLog (badJoin?: string, badUnjoin?: string): EventSpec<string, Log, string> {
    return {
      init: logSpec.init,
      apply: (e, s) => {
        if (e.startsWith('boom')) throw new RangeError(`cannot ${e}`)
        return logSpec.apply(e, s)
      },
      join: (p, s) => { if (p === badJoin) throw new Error(`no welcome for ${p}`); return logSpec.join!(p, s) },
      unjoin: (p, s) => { if (p === badUnjoin) throw new Error(`no farewell for ${p}`); return logSpec.unjoin!(p, s) }
    }
  }

  test('an apply that throws makes the event a failure carrying the message, and the throw is reported once', () => {
    const f = EventFold.create('c', 'a', throwingLog(), options)
    const r = f.event('boom1')
    assert.equal(r.outcome.status, 'threw')
    assert.ok(r.outcome.status === 'threw' && r.outcome.error instanceof RangeError)
    assert.deepEqual(r.outputs, [{ id: r.id, thrown: 'RangeError: cannot boom1' }], 'one participant: it folds at once, as a failure')
    assert.equal(r.thrown.length, 1)
    assert.deepEqual({ ...r.thrown[0]!, error: undefined }, { id: r.id, hook: 'apply', error: undefined, message: 'RangeError: cannot boom1' })
    assert.deepEqual(f.infimumValue().applied, [])
    assert.deepEqual(f.event('x').outcome, { status: 'applied', output: 'x@0' }, 'later events are not affected')
  })

  test('with several participants the thrown failure travels in place of an output, is reported once, and reads never throw', () => {
    const spec = throwingLog()
    const a = EventFold.create('c', 'a', spec, options)
    a.participate('b')
    const b = EventFold.fromSnapshot(a.snapshot(), 'b', spec, options)
    b.acknowledge()
    ok(a.mergeFull(b.snapshot()))
    const r = a.event('boom2')
    assert.equal(r.thrown.length, 1)
    assert.deepEqual(a.event('late').thrown, [], 'the projection is valid: nothing is applied again')
    assert.doesNotThrow(() => a.projectedValue())
    // b's apply throws too; the failure folds once each has failed it and heard that the other has.
    for (let round = 0; round < 4; round++) { sync(a, b); sync(b, a) }
    for (const f of [a, b]) assert.equal(f.outstandingCount, 0)
    assert.deepEqual(a.infimumValue(), b.infimumValue())
    assert.deepEqual(a.infimumValue().applied, ['late'])
  })

  test('a thrown failure reported by another replica does not turn a local event into one, even trusting', () => {
    const { a, b } = twoPeers()
    const x = a.event('x')
    ok(a.mergeDiff(claiming(b, a, [{ id: x.id, thrown: 'Error: not here' }])))
    assert.deepEqual(a.infimumValue().applied, ['x'], 'acknowledged by both, it folded as it applies here')
    // A returned failure still is "a failure anywhere is a failure everywhere" when trusting.
    const y = a.event('y')
    ok(a.mergeDiff(claiming(b, a, [{ id: y.id, output: 'no' }])))
    assert.deepEqual(a.infimumValue().applied, ['x'])
    assert.equal(a.outstandingCount, 0)
  })

  test('an apply that returns something other than an ApplyResult is handled as a throw', () => {
    const odd = { init: () => 0, apply: () => undefined } as unknown as EventSpec<number, number, number>
    const r = EventFold.create('c', 'a', odd, options).event(1)
    assert.ok(r.outcome.status === 'threw' && r.outcome.error instanceof TypeError)
    assert.match(r.outcome.message, /^TypeError: apply returned undefined/)
  })

  test('a thrown value of any kind is described in one bounded, well-formed line', () => {
    const throwing = (value: unknown): string => {
      const spec: EventSpec<number, number, number> = { init: () => 0, apply: () => { throw value } }
      const r = EventFold.create('c', 'a', spec, options).event(1)
      return r.outcome.status === 'threw' ? r.outcome.message : assert.fail('it threw')
    }
    assert.equal(throwing('plain'), 'plain')
    assert.equal(throwing(42), '42')
    assert.equal(throwing(Object.create(null)), 'a thrown object that cannot be described')
    assert.equal(throwing({ toString () { throw new Error('nope') } }), 'a thrown object that cannot be described')
    assert.equal(throwing(new Error('two\nlines')), 'Error: two lines')
    const long = throwing(new Error('x'.repeat(5000) + '\uD83D\uDE00'))
    assert.equal(long.length, 1024)
    assert.ok(long.isWellFormed())
    assert.ok(throwing('\uD800 lone').isWellFormed())
  })

  test('a join or unjoin hook that throws: the membership still changes, the state does not, and the digest says so', () => {
    const a = EventFold.create('c', 'a', throwingLog('b', 'b'), options)
    const joined = a.participate('b')
    assert.deepEqual(joined.thrown.map(t => t.hook), ['join'], 'the projection ran the hook and it threw')
    a.acknowledge('b')
    assert.deepEqual(a.infimumParticipants(), ['a', 'b'])
    assert.deepEqual(a.infimumValue().members, ['a'], 'the hook left the state as it was')
    assert.equal(a.infimumDigest().throws, 1)
    const left = a.disassociate('b')
    assert.deepEqual(left.thrown.map(t => t.hook), ['unjoin'])
    assert.deepEqual(a.infimumParticipants(), ['a'], 'an ejection happens whatever the hook does')
    assert.equal(a.infimumDigest().throws, 2)
    // The same history where the hooks ran differs from it only in outcome: same count, other hash.
    const plain = EventFold.create('c', 'a', logSpec, options)
    plain.participate('b')
    plain.acknowledge('b')
    plain.disassociate('b')
    assert.equal(plain.infimumDigest().count, a.infimumDigest().count)
    assert.notEqual(plain.infimumDigest().hash, a.infimumDigest().hash)
    assert.equal(plain.infimumDigest().throws, undefined)
  })

  test('the founder\'s own join hook that throws is reported by the first update', () => {
    const a = EventFold.create('c', 'a', throwingLog('a'), options)
    assert.deepEqual(a.infimumValue(), { applied: [], members: [] })
    const r = a.event('x')
    assert.deepEqual(r.thrown.map(t => ({ id: t.id, hook: t.hook })), [{ id: BOTTOM, hook: 'join' }])
    assert.deepEqual(a.event('y').thrown, [])
  })

  /** a, b and c, all joined, merging first-hand from then on; b runs `specB`. */
  function trio (specB: EventSpec<string, Log, string>): Record<'a' | 'b' | 'c', EventFold<string, Log, string>> {
    const a = EventFold.create('c', 'a', logSpec, options)
    a.participate('b')
    a.participate('c')
    const b = EventFold.fromSnapshot(a.snapshot(), 'b', specB, options)
    const c = EventFold.fromSnapshot(a.snapshot(), 'c', logSpec, options)
    b.acknowledge()
    c.acknowledge()
    for (let round = 0; round < 3; round++) for (const [x, y] of [[b, a], [c, a], [a, b], [a, c]] as const) ok(y.mergeFull(x.snapshot()))
    for (const f of [a, b, c]) assert.equal(f.hasJoined(), true)
    return { a, b, c }
  }
  const firstHand = (from: EventFold<string, Log, string>, to: EventFold<string, Log, string>): MergeResult<string> =>
    to.mergeFull(from.snapshot(), { from: from.self })

  test('a throw first seen while a read recomputes the projection is reported by the next update', () => {
    const { a, b } = trio(throwingLog())
    const boom = a.event('boom') // a and b create events concurrently: b's is ordered after a's
    const y = b.event('y')
    assert.ok(compareEventIds(boom.id, y.id) < 0)
    const merged = ok(firstHand(a, b)) // inserted before y: the projection is recomputed later, lazily
    assert.deepEqual(merged.thrown, [])
    assert.doesNotThrow(() => b.projectedValue())
    const r = b.acknowledge()
    assert.deepEqual(r.thrown.map(t => ({ id: t.id, hook: t.hook })), [{ id: boom.id, hook: 'apply' }])
    assert.deepEqual(b.acknowledge().thrown, [], 'reported once')
  })

  test('first-hand, the replica whose apply threw finds itself the odd one out; the others fold on its acknowledgement', () => {
    const { a, b, c } = trio(throwingLog())
    a.event('boom')
    for (let round = 0; round < 2; round++) for (const [x, y] of [[a, b], [a, c], [b, a], [c, a], [b, c], [c, b]] as const) ok(firstHand(x, y))
    assert.deepEqual(a.infimumValue().applied, ['boom'], 'a and c applied it: b acknowledged it, which is all they need')
    assert.deepEqual(c.infimumValue(), a.infimumValue())
    assert.equal(b.outstandingCount, 1, 'b cannot fold it: a\'s and c\'s word on it comes only with their settled state')
    const r = firstHand(a, b)
    assert.ok(r.ok && r.diverged && r.threwHere, 'b is told that its own hook makes the difference')
    const control = firstHand(b, a)
    assert.ok(control.ok && !control.diverged, 'b\'s settled state is behind: nothing to tell a')
  })

  test('first-hand, a replica whose join hook threw is told so, and the others take its infimum as its acknowledgement', () => {
    const { a, b, c } = trio(throwingLog('d'))
    a.participate('d')
    const d = EventFold.fromSnapshot(a.snapshot(), 'd', logSpec, options)
    d.acknowledge()
    ok(firstHand(a, b))
    ok(firstHand(a, c))
    ok(firstHand(c, b))
    ok(firstHand(d, b))
    assert.deepEqual(b.infimumParticipants(), ['a', 'b', 'c', 'd'], 'b had every acknowledgement and folded the Join...')
    assert.deepEqual(b.infimumValue().members, ['a', 'b', 'c'], '...without its hook')
    assert.equal(b.infimumDigest().throws, 1)
    // b's acknowledgement of the Join now exists only as its infimum, settled on another outcome.
    const fromB = ok(firstHand(b, a))
    assert.equal(fromB.diverged, false, 'the difference is b\'s own throw, not a\'s history')
    ok(firstHand(c, a))
    ok(firstHand(d, a))
    assert.deepEqual(a.infimumValue().members, ['a', 'b', 'c', 'd'], 'a folded the Join on b\'s infimum, with the hook')
    const toB = ok(firstHand(a, b))
    assert.ok(toB.diverged && toB.threwHere, 'at the same id, b is told that its hook makes the difference')
  })

  test('first-hand, a whole fold settled at the same id on another history is divergence', () => {
    const { a } = trio(logSpec)
    // Another replica of a's (a fold replaced, say) folds p then q; a itself folds only q', at the same id.
    const other = EventFold.fromSnapshot(a.snapshot(), 'a', logSpec, options)
    other.event('p')
    other.event('q')
    a.observeCounter(a.maxKnownCounter + 1)
    a.event('q2')
    for (const f of [a, other]) { f.acknowledge('b'); f.acknowledge('c') }
    assert.deepEqual(other.infimumId(), a.infimumId())
    assert.notEqual(other.infimumDigest().count, a.infimumDigest().count)
    const seen = ok(a.mergeFull(other.snapshot(), { from: 'b' }))
    assert.equal(seen.diverged, true)
    assert.equal(seen.threwHere, false)
    assert.deepEqual(a.infimumValue().applied, ['q2'], 'nothing settled was taken')
  })
})

describe('late events before an Error', () => {
  test('an event is not folded, nor found to fail, on the word of a participant whose own earlier event is still on its way', () => {
    // The loss the first try at routing acknowledgements to creators showed (docs/ARCHITECTURE.md,
    // "Why acknowledgements used to go to everyone"): a creates x, then acknowledges b's later
    // event; c learns of that acknowledgement before x reaches it. Folding on it, c would go
    // past x, drop it as below its infimum when it comes, and diverge from a and b. Here the
    // event also fails on a state that depends on x: c must fold it on the state with x.
    const spec: EventSpec<string, Log, string> = {
      ...logSpec,
      apply: (e, s) => e.startsWith('fail') ? { ok: false, output: `error:${e} after ${s.applied.length}` } : logSpec.apply(e, s)
    }
    const a = EventFold.create('c', 'a', spec, options)
    a.participate('b')
    a.participate('c')
    const b = EventFold.fromSnapshot(a.snapshot(), 'b', spec, options)
    const c = EventFold.fromSnapshot(a.snapshot(), 'c', spec, options)
    for (const f of [a, b, c]) { f.acknowledge('a'); f.acknowledge('b'); f.acknowledge('c') }
    const x = a.event('x')
    const fail = b.event('fail')
    assert.ok(compareEventIds(x.id, fail.id) < 0, 'a\'s event is ordered first')
    ok(a.mergeDiff(b.diffFor('a')!)) // a now holds fail: its acknowledgement says so, and that it holds x
    const relayed: Diff<string, string> = { origin: 'c', acknowledgements: [b.acknowledgement(), a.acknowledgement()], runs: b.diffFor('c')!.runs }
    ok(c.mergeDiff(relayed))
    assert.equal(c.isBlockedOnError(), false, 'a\'s acknowledgement waits: c does not hold a\'s log as far as a did')
    assert.equal(c.infimumValue().applied.length, 0)
    ok(c.mergeDiff(a.diffFor('c')!))
    assert.equal(c.isBlockedOnError(), false, 'now a\'s word counts, but x still waits for b\'s')
    const outputs: string[] = []
    const record = (r: MergeResult<string>): void => { for (const o of ok(r).outputs) outputs.push(`${o.id.participant}:${o.output ?? o.thrown ?? ''}`) }
    for (let round = 0; round < 3; round++) {
      for (const [f, t] of [[a, b], [b, a], [a, c], [c, a], [b, c], [c, b]] as const) {
        const diff = f.diffFor(t.self)!
        const r = t.mergeDiff(diff)
        if (t === c) record(r)
      }
    }
    assert.deepEqual(outputs, ['a:x@0', 'b:error:fail after 1'], 'c folds x, then the failure on the state x left')
    for (const f of [a, b, c]) {
      assert.equal(f.outstandingCount, 0)
      assert.deepEqual(f.infimumValue().applied, ['x'])
      assert.deepEqual(f.infimumDigest(), a.infimumDigest())
    }
  })
})

describe('acknowledgements as version vectors', () => {
  test('regression (the first try at routing acknowledgements to creators): a replica never folds an event on the word of a participant whose earlier event it lacks', () => {
    // docs/ARCHITECTURE.md, "How data flows": participant A creates e, then acknowledges C's
    // later event f; C learns that everyone acknowledged f and tells X; X folds f before A's
    // own message with e reaches it, and then drops e as below its infimum: lost. With
    // per-creator logs, A's acknowledgement says how far A's own log goes, and X takes it only
    // once it holds A's log that far.
    const a = EventFold.create('c', 'a', logSpec, options)
    for (const p of ['c', 'x']) a.participate(p)
    const c = EventFold.fromSnapshot(a.snapshot(), 'c', logSpec, options)
    const x = EventFold.fromSnapshot(a.snapshot(), 'x', logSpec, options)
    for (const f of [a, c, x]) for (const p of ['a', 'c', 'x']) f.acknowledge(p)
    const e = a.event('e') // its batch to x is lost
    ok(c.mergeDiff(a.diffFor('c')!)) // ...but it reaches c
    const f = c.event('f')
    assert.ok(compareEventIds(e.id, f.id) < 0, 'e is ordered before f')
    ok(a.mergeDiff(c.diffFor('a')!, { from: 'c' })) // a acknowledges f, with e in its own log
    ok(x.mergeDiff({ origin: 'c', acknowledgements: [c.acknowledgement()], runs: c.diffFor('x', { relay: false })!.runs.filter(r => r.creator === 'c') }, { from: 'c' }))
    ok(c.mergeDiff(x.diffFor('c')!, { from: 'x' }))
    ok(c.mergeDiff(a.diffFor('c')!, { from: 'a' }))
    assert.deepEqual(c.outstandingEvents().find(o => o.id.counter === f.id.counter)!.acks, ['a', 'c', 'x'], 'everyone acknowledged f')
    assert.deepEqual(c.infimumValue().applied, [], 'c cannot fold: e, before f, waits for x')
    // C tells X that everyone acknowledged f: its own acknowledgement, and A's, relayed (trusting, so X believes the relay).
    const told: Diff<string, string> = { origin: 'c', acknowledgements: [c.acknowledgement(), a.acknowledgement()], runs: [] }
    ok(x.mergeDiff(told))
    assert.deepEqual(x.infimumValue().applied, [], 'x folds nothing: A\'s acknowledgement waits until x holds A\'s log as far as A did')
    assert.equal(x.outstandingCount, 1)
    assert.deepEqual(new Set(x.aheadOfThis()), new Set(['a', 'c']), 'x knows whom to ask for what it lacks')
    ok(x.mergeDiff(a.diffFor('x')!, { from: 'a' })) // e arrives at last
    assert.deepEqual(x.infimumValue().applied, ['e', 'f'], 'e folds, then f: nothing lost')
    ok(c.mergeDiff(x.diffFor('c')!, { from: 'x' }))
    assert.deepEqual(c.infimumValue(), x.infimumValue())
    assert.deepEqual(c.infimumDigest(), x.infimumDigest())
  })

  test('an acknowledgement costs one number per log, however many events are outstanding', () => {
    const { a, b } = twoPeers()
    for (let i = 0; i < 50; i++) b.event(`y${i}`)
    ok(a.mergeDiff(b.diffFor('a')!))
    const ack = a.acknowledgement()
    assert.deepEqual(ack.holds.map(h => h.participant), ['a', 'b'])
    assert.deepEqual(ack.holds.find(h => h.participant === 'b')!.seq, b.held('b'))
  })
})

describe('diffs', () => {
  test('a peer whose Join has not folded gets no diff (a full merge is required)', () => {
    const a = EventFold.create('c', 'a', logSpec, options)
    a.participate('b')
    assert.equal(a.diffFor('b'), undefined)
    assert.equal(a.diffFor('nobody'), undefined)
  })

  test('a diff carries only the runs of logs the peer\'s acknowledgement does not show it holding', () => {
    const { a, b } = twoPeers()
    a.event('x')
    sync(a, b)
    b.event('y')
    sync(b, a)
    const z = a.event('z')
    const diff = a.diffFor('b')!
    assert.deepEqual(diff.runs.map(r => ({ creator: r.creator, first: r.first, events: r.events.map(e => e.counter) })), [{ creator: 'a', first: a.held('a'), events: [z.id.counter] }])
    assert.deepEqual(diff.acknowledgements.map(k => k.participant), ['a', 'b'], 'its own acknowledgement first, then those it relays')
    assert.equal(a.diffFor('b', { relay: false })!.acknowledgements.length, 1)
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

  test('a diff whose run of its sender\'s log skips events not held here is too sparse and changes nothing', () => {
    const { a, b } = twoPeers()
    b.event('y1')
    b.event('y2')
    const diff = b.diffFor('a')!
    const run = diff.runs[0]!
    const skipping: Diff<string, string> = { ...diff, runs: [{ ...run, first: run.first + 1, events: run.events.slice(1) }] }
    const before = a.snapshot()
    const r = a.mergeDiff(skipping)
    assert.ok(!r.ok && r.error instanceof DiffTooSparseError && r.error.reason === 'missing-body')
    assert.deepEqual(a.snapshot(), before)
    ok(a.mergeDiff(diff))
    assert.equal(a.held('b'), 2)
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
    // a's diff carries no events, only its acknowledgement: b folds y on that word alone.
    const diff = a.diffFor('b')!
    assert.equal(diff.runs.length, 0)
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

  test('a renegade waits for nobody: a participant that has not acknowledged it does not hold the fold back', () => {
    const { a, b } = twoPeers()
    a.participate('d')
    const d = EventFold.fromSnapshot(a.snapshot(), 'd', logSpec, options)
    d.acknowledge()
    for (let round = 0; round < 3; round++) { sync(d, a); sync(a, b); sync(b, a); sync(a, d) }
    assert.deepEqual(a.infimumParticipants(), ['a', 'b', 'd'])
    const x = a.event('x')
    sync(a, b)
    sync(b, a) // b acknowledged x; x waits for d
    const c = EventFold.fromSnapshot(a.snapshot(), 'c', logSpec, options) // c never joined
    c.event('forged')
    ok(a.mergeFull(c.snapshot()))
    assert.equal(a.outstandingCount, 2, 'x, and the renegade behind it')
    const held = a.divergent()
    assert.deepEqual([...held.keys()], ['d'], 'b has not acknowledged the renegade, which reduce sets aside without anyone\'s word')
    assert.deepEqual(held.get('d'), a.infimumId())
    sync(a, d)
    sync(d, a)
    assert.equal(a.outstandingCount, 0, 'x folded and the renegade was set aside')
    assert.equal(a.divergent().size, 0)
    assert.ok(compareEventIds(a.infimumId(), x.id) >= 0)
  })

  test('a participant that acknowledged a newer event of its own but not an older one still holds the fold back, at the infimum', () => {
    const { a, b } = twoPeers()
    const x = a.event('x')
    const y = b.event('y') // b has not seen x: y takes the same counter, and 'b' sorts after 'a'
    assert.ok(compareEventIds(y.id, x.id) > 0)
    sync(b, a)
    assert.equal(a.outstandingCount, 2)
    const d = a.divergent()
    assert.deepEqual([...d.keys()], ['b'], 'b acknowledged the newest event (its own) but not x, which cannot fold without it')
    assert.deepEqual(d.get('b'), a.infimumId())
    sync(a, b)
    sync(b, a)
    assert.equal(a.outstandingCount, 0)
    assert.equal(a.divergent().size, 0)
  })
})

describe('immutability', () => {
  test('with freezeStates, an apply that mutates its input state fails with the TypeError instead of corrupting the infimum', () => {
    const bad: EventSpec<number, { n: number }, number> = {
      init: () => ({ n: 0 }),
      apply: (e, s) => { s.n += e; return { ok: true, output: s.n, state: s } }
    }
    const f = EventFold.create('c', 'a', bad, { freezeStates: true })
    const r = f.event(1)
    assert.equal(r.outcome.status, 'threw')
    assert.ok(r.outcome.status === 'threw' && r.outcome.error instanceof TypeError)
    assert.deepEqual(r.thrown.map(t => t.hook), ['apply'])
    assert.deepEqual(f.infimumValue(), { n: 0 })
  })

  test('Uint8Array values inside state are tolerated by freezing', () => {
    const spec: EventSpec<number, { b: Uint8Array }, number> = {
      init: () => ({ b: new Uint8Array(2) }),
      apply: (e, s) => ({ ok: true, output: e, state: { b: Uint8Array.of(e) } })
    }
    const f = EventFold.create('c', 'a', spec, { freezeStates: true })
    assert.deepEqual(f.event(7).outcome, { status: 'applied', output: 7 })
    void spec
  })
})

describe('first-hand merges and signatures', () => {
  // A toy signature: a keyed hash with a secret per participant. Real folds use SHA-256 chains
  // and Ed25519 (peer/event-signatures.ts); what is tested here is that the fold obeys the verdict.
  const secrets = new Map([['a', 'sa'], ['b', 'sb'], ['c', 'sc'], ['d', 'sd']])
  const keyed = (p: string, since: number, seq: number, head: Uint8Array, admittedBy: EventId | undefined): Uint8Array =>
    createHash('sha256').update(`${secrets.get(p) ?? 'none'}|${since}|${seq}|${admittedBy === undefined ? '-' : `${admittedBy.counter}:${admittedBy.participant}`}|`).update(head).digest()
  /** Signature checks made by each participant's fold. */
  const checks = new Map<Participant, number>()
  const signaturesOf = (self: Participant): EventSignatures<string, string> => ({
    chain: (previous, id, delta) => createHash('sha256').update(previous).update(`|${id.counter}|${id.participant}|${JSON.stringify(delta)}`).digest(),
    sign: (since, seq, head, admittedBy) => keyed(self, since, seq, head, admittedBy),
    verify: (creator, since, seq, head, admittedBy, signature) => {
      checks.set(self, (checks.get(self) ?? 0) + 1)
      return Buffer.from(keyed(creator, since, seq, head, admittedBy)).equals(signature)
    }
  })
  const signed = (self: Participant): typeof options & { signatures: EventSignatures<string, string> } => ({ ...options, signatures: signaturesOf(self) })

  /** a, b and c, all joined, all signing. */
  function threePeers (): Record<'a' | 'b' | 'c', EventFold<string, Log, string>> {
    const [a, b, c] = joinedPeers(['a', 'b', 'c'])
    return { a: a!, b: b!, c: c! }
  }

  /** The named participants, all joined through the first, all signing. */
  function joinedPeers (names: readonly Participant[]): Array<EventFold<string, Log, string>> {
    const a = EventFold.create('c', names[0]!, logSpec, signed(names[0]!))
    for (const p of names.slice(1)) a.participate(p)
    const joiners = names.slice(1).map(p => EventFold.fromSnapshot(a.snapshot(), p, logSpec, signed(p)))
    assert.equal(joiners[0]!.hasJoined(), false, 'a joiner has not joined until its Join folds')
    for (const j of joiners) j.acknowledge()
    for (let round = 0; round < 3; round++) for (const j of joiners) { sync(j, a); sync(a, j) }
    for (let round = 0; round < 3; round++) for (const j of joiners) sync(a, j)
    const all = [a, ...joiners]
    for (const f of all) {
      assert.deepEqual(f.infimumParticipants(), [...names].sort())
      assert.equal(f.hasJoined(), true)
    }
    return all
  }

  test('first-hand, a diff gives only its sender\'s acknowledgement, not those it relays', () => {
    const { a, b, c } = threePeers()
    const x = a.event('x')
    const forgedForC: Acknowledgement<string> = { ...c.acknowledgement(), holds: claiming(c, a).acknowledgements[0]!.holds }
    const forged: Diff<string, string> = { ...claiming(b, a), acknowledgements: [claiming(b, a).acknowledgements[0]!, forgedForC] }
    ok(a.mergeDiff(forged, { from: 'b' }))
    assert.equal(a.outstandingCount, 1, 'folded on an acknowledgement forged for c')
    assert.deepEqual(a.outstandingEvents()[0]!.acks, ['a', 'b'])
    assert.deepEqual(a.outstandingEvents()[0]!.id, x.id)
    ok(a.mergeDiff(forged)) // control: believing everything, it folds
    assert.equal(a.outstandingCount, 0)
  })

  test('first-hand, a remote infimum is its sender\'s acknowledgement only; a whole fold\'s is not adopted', () => {
    const { a, b, c } = threePeers()
    const x = a.event('x')
    sync(a, b)
    b.acknowledge('c') // b folds x on c's behalf in its own replica
    assert.deepEqual(b.infimumId(), x.id)
    ok(a.mergeDiff(b.diffFor('a')!, { from: 'b' }))
    assert.equal(a.outstandingCount, 1)
    ok(a.mergeFull({ ...b.snapshot(), infimum: { ...b.snapshot().infimum, state: { applied: ['bogus'], members: [] } } }, { from: 'b' }))
    assert.equal(a.outstandingCount, 1)
    assert.deepEqual(a.infimumValue().applied, [])
    // c's own word completes it.
    sync(a, c)
    ok(a.mergeDiff(c.diffFor('a')!, { from: 'c' }))
    assert.deepEqual(a.infimumId(), x.id)
    assert.deepEqual(a.infimumValue().applied, ['x'])
  })

  test('first-hand, a failure reported by another does not turn a local event into an error', () => {
    const { a, b } = threePeers()
    const x = a.event('x')
    const diff = claiming(b, a, [{ id: x.id, output: 'no' }])
    ok(a.mergeDiff(diff, { from: 'b' }))
    assert.deepEqual(a.projectedValue().applied, ['x'])
    ok(a.mergeDiff(diff)) // control
    assert.deepEqual(a.projectedValue().applied, [])
  })

  test('a run that does not chain to its creator\'s signed head, or names another admission than it signed, is refused with nothing changed; a relayed signed run is taken', () => {
    const { a, c } = threePeers()
    c.event('y')
    const relayed = c.diffFor('a')!
    const run = relayed.runs[0]!
    assert.ok(run.signature !== undefined, 'one signature for the run, however many events it carries')
    assert.ok(run.admittedBy !== undefined, 'c\'s new log names the Join that admitted c')
    const { admittedBy: _, ...unadmitted } = run
    const attempts: Array<Diff<string, string>> = [
      { ...relayed, runs: [{ ...run, signature: undefined }] },
      { ...relayed, runs: [{ ...run, events: [{ ...run.events[0]!, delta: { kind: 'event', event: 'z' } }] }] },
      { ...relayed, runs: [{ ...run, signature: keyed('b', run.since, run.first, new Uint8Array(32), run.admittedBy) }] },
      // The same body and signature as another incarnation's log, or as one of no known incarnation.
      { ...relayed, runs: [{ ...run, admittedBy: { counter: run.admittedBy.counter + 1, participant: run.admittedBy.participant } }] },
      { ...relayed, runs: [unadmitted] }
    ]
    const before = JSON.stringify(a.snapshot())
    for (const diff of attempts) {
      const r = a.mergeDiff(diff, { from: 'b' })
      assert.equal(r.ok, false)
      if (!r.ok) assert.ok(r.error instanceof ForgedEventError)
      assert.equal(JSON.stringify(a.snapshot()), before)
    }
    const snapshot = c.snapshot()
    const log = snapshot.logs.find(l => l.participant === 'c')!
    const tampered = { ...snapshot, logs: snapshot.logs.map(l => l === log ? { ...l, signature: keyed('b', l.since, l.seq, l.hash, l.admittedBy) } : l) }
    const full = a.mergeFull(tampered, { from: 'b' })
    assert.ok(!full.ok && full.error instanceof ForgedEventError, 'a whole fold\'s runs are checked the same way')
    ok(a.mergeDiff(relayed, { from: 'b' })) // c's run relayed by b, as a sync answer would
    assert.deepEqual(a.projectedValue().applied, ['y'])
    assert.deepEqual(a.outstandingEvents()[0]!.acks, ['a', 'c'], 'its creator holds it; nobody else\'s word was taken')
  })

  test('a replica restored from a snapshot signs its own heads again: a stored signature that no longer checks (11.0.0 did not sign the admission) is not handed on', () => {
    const { a, b, c } = threePeers()
    c.event('y')
    const stored = c.snapshot()
    const own = stored.logs.find(l => l.participant === 'c' && l.signature !== undefined)!
    assert.ok(own.admittedBy !== undefined)
    const stale = keyed('c', own.since, own.seq, own.hash, undefined) // c's own key, without the admission
    const restored = EventFold.fromSnapshot({ ...stored, logs: stored.logs.map(l => l === own ? { ...l, signature: stale } : l) }, 'c', logSpec, signed('c'))
    // Relayed by a to b, so checked there: b takes it, as it would not take the stale head.
    ok(a.mergeDiff(restored.diffFor('a')!, { from: 'c' }))
    const relayed = a.diffFor('b')!
    assert.ok(relayed.runs.some(r => r.creator === 'c'), 'a hands c\'s run on')
    ok(b.mergeDiff(relayed, { from: 'a' }))
    assert.deepEqual(b.projectedValue().applied, ['y'])
    assert.equal(a.lateForgedHeads, 0)
  })

  test('a run of the sender\'s own log is taken first-hand unchecked; its signature is checked once, before it is handed on, and a bad one keeps it from travelling', () => {
    const { a, b, c } = threePeers()
    const checked = (): number => checks.get('a') ?? 0
    c.event('y')
    const before = checked()
    ok(a.mergeDiff(c.diffFor('a')!, { from: 'c' }))
    assert.equal(checked(), before, 'c\'s own run, from c: the transport proved its author')
    assert.deepEqual(a.projectedValue().applied, ['y'])
    const relay = a.diffFor('b')!
    assert.ok(relay.runs.some(r => r.creator === 'c'), 'a hands c\'s run on to b, which lacks it')
    assert.equal(checked(), before + 1, 'checked before it is handed on')
    a.diffFor('b')
    a.snapshot()
    assert.equal(checked(), before + 1, 'and only once')
    ok(b.mergeDiff(relay, { from: 'a' }))
    assert.deepEqual(b.projectedValue().applied, ['y'])

    // c signs a head badly (or lies): a takes c's own events from c, but hands none of them on,
    // neither in a diff nor in a whole fold, where b would refuse them as forged.
    c.event('z')
    const bad = c.diffFor('a')!
    ok(a.mergeDiff({ ...bad, runs: bad.runs.map(r => ({ ...r, signature: keyed('b', r.since, r.first, new Uint8Array(32), r.admittedBy) })) }, { from: 'c' }))
    assert.deepEqual(a.projectedValue().applied, ['y', 'z'])
    const stored = a.snapshot({ checkSignatures: false })
    assert.ok(stored.events.some(e => e.id.participant === 'c'), 'a snapshot kept here keeps the unchecked run')
    assert.equal(checked(), before + 1)
    assert.equal(a.lateForgedHeads, 0)
    const next = a.diffFor('b')
    assert.ok(next === undefined || next.runs.every(r => r.creator !== 'c'), 'a run nobody could check is not relayed')
    assert.equal(a.lateForgedHeads, 1, 'and the forgery by its own creator is counted')
    if (next !== undefined) ok(b.mergeDiff(next, { from: 'a' }))
    const full = a.snapshot()
    assert.ok(full.events.every(e => e.id.participant !== 'c') && full.logs.every(l => l.participant !== 'c'))
    assert.equal(a.lateForgedHeads, 1, 'once')
    ok(b.mergeFull(full, { from: 'a' }))
    ok(b.mergeDiff(c.diffFor('b')!, { from: 'c' }))
    assert.deepEqual(b.projectedValue().applied, ['y', 'z'], 'b has z from its creator')
  })

  test('a creator\'s own run whose ids do not ascend past its held head, or repeat a held id, is refused with nothing changed, signed or not', () => {
    const { a, c } = threePeers()
    const y = c.event('y')
    const diff = c.diffFor('a')!
    ok(a.mergeDiff(diff, { from: 'c' }))
    const run = diff.runs.find(r => r.creator === 'c')!
    const before = JSON.stringify(a.snapshot({ checkSignatures: false }))
    const attempts: Array<LogRun<string, string>> = [
      { ...run, first: 2, events: [{ counter: y.id.counter, delta: { kind: 'event', event: 'again' } }] },
      { ...run, first: 2, events: [{ counter: y.id.counter - 1, delta: { kind: 'event', event: 'earlier' } }] },
      { ...run, since: y.id.counter + 100, first: 1, events: [{ counter: y.id.counter, delta: { kind: 'event', event: 'other log' } }] }
    ]
    for (const bad of attempts) {
      for (const options of [{ from: 'c' }, {}]) {
        const r = a.mergeDiff({ ...diff, runs: [bad] }, options)
        assert.ok(!r.ok && r.error instanceof ForgedEventError, JSON.stringify(bad.events))
        assert.equal(JSON.stringify(a.snapshot({ checkSignatures: false })), before)
      }
    }
  })

  test('first-hand, a failure reported for an event not held here changes nothing; a whole fold gives the event, not its failure', () => {
    const { a, b } = threePeers()
    const fail = b.event('fail')
    const failed = b.snapshot() // b holds fail as an event; make a fold that calls it failed
    const asError = { ...failed, events: failed.events.map(e => ({ ...e, delta: { kind: 'error' as const, event: 'fail', output: 'no', errorAcks: ['a', 'b', 'c'] } })) }
    const onlyWord: Diff<string, string> = { origin: 'c', acknowledgements: [{ ...b.acknowledgement(), holds: [], failures: [{ id: fail.id, output: 'no' }] }], runs: [] }
    ok(a.mergeDiff(onlyWord, { from: 'b' }))
    assert.equal(a.outstandingCount, 0)
    ok(a.mergeFull(asError, { from: 'b' }))
    assert.deepEqual(a.outstandingEvents().map(e => e.delta.kind), ['event'])
  })

  /** `to` merges what `from` would send it, first-hand, with a full merge when a diff will not do. */
  function pass (from: EventFold<string, Log, string>, to: EventFold<string, Log, string>): MergeResult<string> {
    const diff = from.diffFor(to.self)
    const r = diff === undefined ? undefined : to.mergeDiff(diff, { from: from.self })
    return r === undefined || (!r.ok && r.error.needsFullMerge) ? to.mergeFull(from.snapshot(), { from: from.self }) : r
  }

  test('first-hand, an infimum past an event that will fail here is the same history: the digest check predicts the failure', () => {
    // Issue 11, item 1 in miniature. c rejoins through a while a failure is outstanding, so
    // c's new replica holds fail1 as an error that still lacks b's acknowledgement and fail2
    // as an event its fold has not reached. b, with c's pending UnJoin standing in for c,
    // folds both as errors. b's infimum is the only way b's acknowledgement of fail1 reaches
    // c first-hand; it must not be mistaken for a different history because fail2 has not
    // failed here yet.
    const { a, b, c } = threePeers()
    b.event('fail1')
    b.event('fail2')
    for (const [x, y] of [[b, a], [b, c], [a, b], [c, b], [a, c], [c, a]] as const) ok(pass(x, y))
    for (const f of [a, b, c]) assert.equal(f.isBlockedOnError(), true)
    a.disassociate('c')
    a.participate('c')
    const c2 = EventFold.fromSnapshot(a.snapshot(), 'c', logSpec, signed('c'))
    c2.acknowledge()
    assert.deepEqual(c2.outstandingEvents().map(e => e.delta.kind), ['error', 'event', 'unjoin', 'join'])
    ok(pass(a, b))
    ok(pass(b, a))
    ok(pass(a, b))
    assert.deepEqual(b.outstandingEvents().map(e => e.delta.kind), ['join'], 'b folded both failures and the UnJoin')
    const r = pass(b, c2)
    assert.ok(r.ok)
    assert.equal(r.diverged, false, 'the same history was taken for a different one')
    assert.deepEqual(r.outputs.map(o => o.output), ['error:fail1'], 'b\'s infimum acknowledged fail1\'s failure')
    assert.equal(c2.isBlockedOnError(), true, 'fail2 failed here in turn, and waits for the others\' word on it')
    for (let round = 0; round < 3; round++) for (const [x, y] of [[a, b], [b, a], [a, c2], [c2, a], [b, c2], [c2, b]] as const) ok(pass(x, y))
    for (const f of [a, b, c2]) {
      assert.equal(f.outstandingCount, 0)
      assert.deepEqual(f.infimumDigest(), a.infimumDigest())
      assert.deepEqual(f.infimumValue(), a.infimumValue())
    }
  })

  test('a readmitted participant\'s acknowledgement counts only where its readmission is known: a replica that does not know it yet does not fold past the old incarnation\'s event', () => {
    // The link-cuts fork (docs/RELIABILITY.md) in miniature. c's event ec reaches only b; d's
    // event x, ordered after ec, reaches a and b, and b acknowledges it to d before ec reaches
    // b. a then readmits c (ejected, alive), whose new replica starts from a's fold: it holds
    // x, not ec. Its first acknowledgement reaches d before a's UnJoin and Join do. Taking it,
    // d held everyone's acknowledgement of x and folded x past ec, which b holds and the
    // others fold before x: one event, two consistent outputs.
    const [a, b, c, d] = joinedPeers(['a', 'b', 'c', 'd'])
    const ec = c!.event('ec')
    const x = d!.event('x')
    assert.ok(compareEventIds(ec.id, x.id) < 0)
    ok(pass(d!, b!))
    ok(pass(b!, d!))
    ok(pass(c!, b!))
    ok(pass(d!, a!))
    ok(pass(a!, d!))
    assert.deepEqual(d!.outstandingEvents().map(e => e.acks), [['a', 'b', 'd']])
    a!.disassociate('c')
    a!.participate('c')
    const c2 = EventFold.fromSnapshot(a!.snapshot(), 'c', logSpec, signed('c'))
    c2.acknowledge()
    assert.equal(c2.hasJoined(), false)
    assert.equal(c2.acknowledgement().joined, false)
    // Its acknowledgement alone (a batch of its own carries no runs of a's log).
    const r = ok(d!.mergeDiff({ ...c2.diffFor('d')!, runs: [] }, { from: 'c' }))
    assert.deepEqual(r.outputs, [], 'd folded x on the word of c\'s new incarnation')
    // Its whole fold says the same: it holds the readmission, so its word counts only after it.
    const whole = ok(d!.mergeFull(c2.snapshot(), { from: 'c' }))
    assert.deepEqual(whole.outputs, [], 'd folded x on the whole fold of c\'s new incarnation')
    // Everyone still converges, with ec before x.
    const all = [a!, b!, c2, d!]
    for (let round = 0; round < 6; round++) for (const f of all) for (const g of all) if (f !== g) ok(pass(f, g))
    for (const f of all) {
      assert.equal(f.outstandingCount, 0, `${f.self} converged`)
      assert.deepEqual(f.infimumDigest(), a!.infimumDigest())
      assert.deepEqual(f.infimumValue().applied, ['ec', 'x'])
    }
  })

  test('a readmitted replica\'s whole fold does not hand on its own acknowledgement of what precedes its readmission: a joiner starting from it does not fold past the old incarnation\'s event', () => {
    // The fork of link cuts with delays and crashes (seed 52, docs/RELIABILITY.md) in
    // miniature. c's event ec reaches only b; d's event x, ordered after ec, reaches everyone
    // else, and a holds every acknowledgement of x but c's. a readmits c, whose new replica starts from a's fold: it holds x, not ec, and
    // acknowledges x, which its own fold does not count (its readmission is pending). It then
    // sponsors e. e's fold starts from c's, which listed c among x's acknowledgers: e held
    // everyone's acknowledgement of x and folded x without ec, which the others fold before x.
    const [a, b, c, d] = joinedPeers(['a', 'b', 'c', 'd'])
    const ec = c!.event('ec')
    const x = d!.event('x')
    assert.ok(compareEventIds(ec.id, x.id) < 0)
    ok(pass(c!, b!))
    ok(pass(d!, b!))
    ok(pass(d!, a!))
    // b's acknowledgement alone (its batch with ec does not arrive).
    ok(a!.mergeDiff({ ...b!.diffFor('a')!, runs: [] }, { from: 'b' }))
    a!.disassociate('c')
    a!.participate('c')
    const c2 = EventFold.fromSnapshot(a!.snapshot(), 'c', logSpec, signed('c'))
    c2.acknowledge()
    assert.equal(c2.outstandingEvents().some(o => compareEventIds(o.id, ec.id) === 0), false, 'c\'s new replica lacks ec')
    const acksOfX = (f: EventFold<string, Log, string>): readonly string[] => f.outstandingEvents().find(o => compareEventIds(o.id, x.id) === 0)?.acks ?? []
    assert.deepEqual(acksOfX(c2), ['a', 'b', 'd'], 'its whole fold lists the others\' acknowledgements of x, not its own')
    c2.participate('e')
    const e = EventFold.fromSnapshot(c2.snapshot(), 'e', logSpec, signed('e'))
    e.acknowledge()
    assert.deepEqual(e.infimumValue().applied, [], 'e folded x without ec')
    // Everyone converges, with ec before x.
    const all = [a!, b!, c2, d!, e]
    for (let round = 0; round < 8; round++) for (const f of all) for (const g of all) if (f !== g) ok(pass(f, g))
    for (const f of all) {
      assert.equal(f.outstandingCount, 0, `${f.self} converged`)
      assert.deepEqual(f.infimumDigest(), a!.infimumDigest())
      assert.deepEqual(f.infimumValue().applied, ['ec', 'x'])
    }
  })

  test('a replica that learnt a participant\'s newer log before its older one still lists what it held of them before an UnJoin in ascending order: its acknowledgement encodes', () => {
    // Link cuts seed 188 (harsh, keys 4) stalled for good on it: a replica held the logs of
    // the departing peer in the order it learnt them (a newer incarnation's first), its
    // acknowledgement listed the UnJoin's positions in that order, the codec refused it, and
    // no batch or push of that replica left again.
    const [a, b, c, x] = joinedPeers(['a', 'b', 'c', 'x'])
    x!.event('old')
    ok(pass(x!, a!))
    a!.disassociate('x')
    a!.participate('x')
    const x2 = EventFold.fromSnapshot(a!.snapshot(), 'x', logSpec, signed('x'))
    x2.acknowledge()
    x2.event('new')
    // b hears of the new incarnation's log first, alone (a run of it, no acknowledgement)...
    const fresh = x2.diffFor('b')!
    const newer = Math.max(...fresh.runs.filter(r => r.creator === 'x').map(r => r.since))
    ok(b!.mergeDiff({ ...fresh, acknowledgements: [], runs: fresh.runs.filter(r => r.creator === 'x' && r.since === newer) }, { from: 'x' }))
    // ...then of everything, and all of it folds.
    const all = [a!, b!, c!, x2]
    for (let round = 0; round < 6; round++) for (const f of all) for (const g of all) if (f !== g) ok(pass(f, g))
    for (const f of all) assert.deepEqual(f.infimumValue().applied, ['old', 'new'], `${f.self} folded both logs`)
    a!.disassociate('x') // outstanding at b until c acknowledges it
    ok(pass(a!, b!))
    const ack = b!.acknowledgement()
    const sinces = ack.departing.map(d => d.since)
    assert.ok(sinces.length >= 2, `b held two of x's logs before the UnJoin (${JSON.stringify(ack.departing)})`)
    assert.deepEqual(sinces, [...sinces].sort((p, q) => p - q), 'ascending by log')
    const codecs = { event: jsonCodecFor<string>(), state: jsonCodecFor<Log>(), output: jsonCodecFor<string>() }
    assert.ok(encodeDiff(b!.diffFor('a')!, codecs).length > 0)
  })

  test('an UnJoin needs the leaver\'s events only as far as the remaining participants held them: one that departs too may have held events nobody remaining can send', () => {
    // The link-cuts stall (docs/RELIABILITY.md) in miniature. c's event ec reaches only b; a
    // ejects c, and b's acknowledgement of that UnJoin reaches a (its batch with ec does not),
    // so the UnJoin's stand-in positions at a name ec. Then b is ejected too. d never heard of
    // ec and folds both UnJoins; a waited for ec, which only b ever held, for good.
    const [a, b, c, d] = joinedPeers(['a', 'b', 'c', 'd'])
    const ec = c!.event('ec')
    a!.event('pa') // so that the UnJoin is ordered after ec
    ok(pass(c!, b!))
    a!.disassociate('c')
    ok(pass(a!, b!))
    ok(pass(a!, d!))
    const fromB = b!.diffFor('a')!
    ok(a!.mergeDiff({ ...fromB, runs: fromB.runs.filter(r => r.creator !== 'c') }, { from: 'b' }))
    ok(pass(d!, a!))
    const unjoinC = a!.outstandingEvents().find(e => e.delta.kind === 'unjoin')!
    assert.ok(compareEventIds(ec.id, unjoinC.id) < 0)
    assert.ok((unjoinC.standIn ?? []).some(p => p.seq >= b!.held('c')), 'b\'s positions name ec')
    assert.ok(a!.held('c') < b!.held('c'), 'a lacks ec')
    d!.disassociate('b')
    const all = [a!, d!]
    for (let round = 0; round < 4; round++) for (const [f, g] of [[a!, d!], [d!, a!]] as const) ok(pass(f, g))
    for (const f of all) {
      assert.equal(f.outstandingCount, 0, `${f.self} folded both UnJoins`)
      assert.deepEqual(f.infimumParticipants(), ['a', 'd'])
      assert.deepEqual(f.infimumDigest(), d!.infimumDigest())
      assert.deepEqual(f.infimumValue().applied, ['pa'], `${f.self} folded no event of c's`)
    }
    assert.ok(compareEventIds(ec.id, a!.infimumId()) < 0)
  })

  test('first-hand, a whole fold settled on a history this replica does not share reports divergence and takes nothing settled', () => {
    const { a, b } = threePeers()
    const settled = a.infimumId()
    const y = b.event('y') // never reaches a
    b.acknowledge('a')
    b.acknowledge('c')
    assert.deepEqual(b.infimumId(), y.id)
    const r = a.mergeFull(b.snapshot(), { from: 'b' })
    assert.ok(r.ok && r.diverged)
    assert.deepEqual(a.infimumId(), settled)
    assert.deepEqual(a.infimumValue().applied, [])
    const same = ok(a.mergeFull(a.snapshot(), { from: 'b' })) as { diverged?: boolean }
    assert.equal(same.diverged, false)
  })
})

describe('the settled record (a store that saves the events that moved the infimum)', () => {
  // Signing folds, so that a log recovered wrong shows: a run whose chain does not continue the
  // held head is refused.
  const signing = (self: Participant): typeof options & { signatures: EventSignatures<string, string> } => ({
    ...options,
    signatures: {
      chain: (previous, id, delta) => createHash('sha256').update(previous).update(`|${id.counter}|${id.participant}|${JSON.stringify(delta)}`).digest(),
      sign: (since, seq, head, admittedBy) => createHash('sha256').update(`${self}|${since}|${seq}|${admittedBy?.counter}|`).update(head).digest(),
      verify: (creator, since, seq, head, admittedBy, signature) => createHash('sha256').update(`${creator}|${since}|${seq}|${admittedBy?.counter}|`).update(head).digest().equals(signature)
    }
  })
  function signedPair (): { a: EventFold<string, Log, string>, b: EventFold<string, Log, string> } {
    const a = EventFold.create('c', 'a', logSpec, signing('a'))
    a.participate('b')
    const b = EventFold.fromSnapshot(a.snapshot(), 'b', logSpec, signing('b'))
    b.acknowledge()
    ok(a.mergeFull(b.snapshot()))
    assert.deepEqual(a.infimumParticipants(), ['a', 'b'])
    return { a, b }
  }
  /** What a store keeps: the infimum of a checkpoint, with the logs and outstanding events as they stand now. */
  const saved = (checkpoint: EventFoldSnapshot<string, Log, string>, now: EventFold<string, Log, string>): EventFoldSnapshot<string, Log, string> =>
    ({ ...now.snapshot(), infimum: checkpoint.infimum })

  test('events folded since a checkpoint, folded again onto it under the logs saved after them, give the same fold: infimum, digest, state, logs and outstanding events, failures and joins included', () => {
    const { a, b } = signedPair()
    assert.equal(a.takeSettled(), undefined, 'the first call starts the record')
    const checkpoint = a.snapshot()
    a.event('x')
    a.event('fail-1')
    a.participate('c')
    b.event('y')
    sync(b, a)
    sync(a, b)
    sync(b, a)
    a.acknowledge('c')
    a.event('z')
    sync(a, b)
    sync(b, a)
    b.event('w') // outstanding: c has not acknowledged it
    sync(b, a)
    const settled = a.takeSettled()!
    assert.ok(settled.some(e => e.delta.kind === 'error') && settled.some(e => e.delta.kind === 'join'), `a failure and a join folded: ${settled.map(e => e.delta.kind).join(', ')}`)
    assert.ok(settled.every(e => e.seq >= 1 && e.since >= 1), 'each with its place in its creator\'s log')
    assert.ok(a.outstandingCount > 0)
    assert.deepEqual(a.takeSettled(), [], 'taken once')
    const again = EventFold.fromSnapshot(saved(checkpoint, a), 'a', logSpec, signing('a'))
    const reached = again.refoldSettled(settled, a.infimumId())
    assert.deepEqual(reached, { id: a.infimumId(), digest: a.infimumDigest() })
    assert.deepEqual(again.snapshot(), a.snapshot(), 'the same infimum, logs (heads, bases, signatures) and outstanding events')
    assert.deepEqual(again.takeSettled(), undefined, 'a refolded record is not news: the store has it')
  })

  test('an outstanding Error of a rebuilt fold carries the failure computed on the infimum it follows, not on the checkpoint\'s', () => {
    const counting: EventSpec<string, Log, string> = { ...logSpec, apply: (e, s) => e.startsWith('fail') ? { ok: false, output: `error:${e}@${s.applied.length}` } : logSpec.apply(e, s) }
    const a = EventFold.create('c', 'a', counting, options)
    a.participate('b')
    a.acknowledge('b')
    a.takeSettled()
    const checkpoint = a.snapshot()
    for (const e of ['x', 'y', 'fail']) a.event(e)
    a.acknowledge('b') // x and y fold; the failure waits for b's word on it
    assert.ok(a.isBlockedOnError())
    assert.deepEqual(a.outstandingEvents().map(e => e.delta.kind === 'error' ? e.delta.output : e.delta.kind), ['error:fail@2'])
    const again = EventFold.fromSnapshot(saved(checkpoint, a), 'a', counting, options)
    again.refoldSettled(a.takeSettled()!, a.infimumId())
    assert.deepEqual(again.snapshot(), a.snapshot())
  })

  test('runs sent after recovery chain onto the logs a refold left, both ways', () => {
    const { a, b } = signedPair()
    a.takeSettled()
    const checkpoint = a.snapshot()
    for (const e of ['x', 'y']) a.event(e)
    for (const e of ['p', 'q']) b.event(e)
    for (let i = 0; i < 3; i++) { sync(a, b); sync(b, a) }
    assert.equal(a.outstandingCount, 0, 'everything folded at a')
    const again = EventFold.fromSnapshot(saved(checkpoint, a), 'a', logSpec, signing('a'))
    again.refoldSettled(a.takeSettled()!, a.infimumId())
    again.resumeLog()
    again.acknowledge()
    b.event('r')
    ok(again.mergeDiff(b.diffFor('a')!))
    again.event('s')
    ok(b.mergeDiff(again.diffFor('b')!))
    for (let i = 0; i < 3; i++) { sync(again, b); sync(b, again) }
    assert.deepEqual([...again.infimumValue().applied].sort(), ['p', 'q', 'r', 's', 'x', 'y'], 'what b sent after recovery, and what the recovered a sent, folded')
    assert.deepEqual(b.infimumValue(), again.infimumValue())
    assert.deepEqual(b.infimumDigest(), again.infimumDigest())
    assert.equal(again.outstandingCount, 0)
  })

  test('an infimum taken whole from another replica ends the record: the store must checkpoint', () => {
    const { a, b } = twoPeers()
    b.takeSettled()
    a.event('x')
    a.acknowledge('b') // folded at a; b never saw x
    ok(b.mergeFull(a.snapshot()))
    assert.deepEqual(b.infimumValue(), a.infimumValue(), 'b took a\'s infimum')
    assert.equal(b.takeSettled(), undefined, 'what moved the infimum is not in the record')
    assert.deepEqual(b.takeSettled(), [], 'the record starts again')
  })

  test('an infimum taken at the same id and count (the same events, where this replica\'s hook threw) ends the record too', () => {
    // b's join hook throws for c, a's does not: the Join of c folds on both, with other digests
    // of the same count, and b takes a's (its own throw makes it the odd one out).
    const throwing: EventSpec<string, Log, string> = { ...logSpec, join: (p, s) => { if (p === 'c') throw new Error('no c here'); return logSpec.join!(p, s) } }
    const { a } = twoPeers()
    const b = EventFold.fromSnapshot(a.snapshot(), 'b', throwing, options)
    b.acknowledge()
    ok(a.mergeFull(b.snapshot()))
    b.takeSettled()
    a.participate('c')
    sync(a, b)
    a.acknowledge('c')
    b.acknowledge('c')
    sync(a, b) // b folds the Join first (its hook throws), then a on b's word (a's does not)
    sync(b, a)
    assert.deepEqual(a.infimumId(), b.infimumId(), 'both folded the Join')
    assert.equal(b.infimumDigest().count, a.infimumDigest().count)
    assert.notDeepEqual(b.infimumDigest(), a.infimumDigest(), 'with other outcomes')
    ok(b.mergeFull(a.snapshot()))
    assert.deepEqual(b.infimumDigest(), a.infimumDigest(), 'b took a\'s infimum')
    assert.deepEqual(b.infimumValue(), a.infimumValue())
    assert.equal(b.takeSettled(), undefined, 'the Join b folded is not what its infimum holds')
  })

  test('a settled record with an event missing does not reach the saved digest', () => {
    const { a } = twoPeers()
    a.takeSettled()
    const checkpoint = a.snapshot()
    for (const e of ['x', 'y', 'z']) a.event(e)
    a.acknowledge('b')
    const settled = a.takeSettled()!
    assert.equal(settled.length, 3)
    const again = EventFold.fromSnapshot(saved(checkpoint, a), 'a', logSpec, options)
    const reached = again.refoldSettled([settled[0]!, settled[2]!], a.infimumId())
    assert.notDeepEqual(reached.digest, a.infimumDigest())
  })

  test('a settled event its log does not hold as settled, or outside the record\'s span, is refused as no record a fold writes', () => {
    const { a } = twoPeers()
    a.takeSettled()
    const checkpoint = a.snapshot()
    for (const e of ['x', 'y']) a.event(e)
    a.acknowledge('b')
    const settled = a.takeSettled()!
    // The logs as they stood at the checkpoint: the events had not left them yet.
    const early = EventFold.fromSnapshot(checkpoint, 'a', logSpec, options)
    assert.throws(() => early.refoldSettled(settled, a.infimumId()), TypeError)
    const again = EventFold.fromSnapshot(saved(checkpoint, a), 'a', logSpec, options)
    assert.throws(() => again.refoldSettled(settled, settled[0]!.id), TypeError)
  })
})
