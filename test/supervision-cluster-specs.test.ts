/**
 * The pure parts of supervision across the cluster: the children table's spec, placement (who
 * stands for a child, where children go), and a replicated server's spec and codecs run on
 * plain EventFold replicas, with no peer at all: a step that throws is a failure on every
 * replica, a request id is stepped once, the bookkeeping is bounded and survives its codecs.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { EventFold } from '../src/eventfold/event-fold.js'
import type { ConsistentOutput, EventId, EventSpec } from '../src/eventfold/types.js'
import { decodeWith, encodeWith } from '../src/codec/codec.js'
import { jsonCodec } from '../src/codec/json.js'
import { childrenSpec, type ChildrenEvent, type ChildrenState, type ChildTerms } from '../src/cluster-supervision/children-spec.js'
import { designate, rendezvous, ranking, replicasToAdd, shouldStand } from '../src/cluster-supervision/placement.js'
import { replicatedCodecs, replicatedSpec, quarantineRecord, type ReplicatedEvent, type ReplicatedState } from '../src/cluster-supervision/replicated-spec.js'
import { defineServer } from '../src/supervision/server.js'
import { propertyParameters } from './support/property.js'

const terms: ChildTerms = {
  server: 'kv',
  mode: 'replicated',
  restart: 'permanent',
  placement: { kind: 'spread' },
  replicas: 3,
  minReplicas: 2,
  local: { intensity: 1, periodMs: 5000, backoff: null, shutdown: 5000, startTimeoutMs: null, queueCapacity: 1024 }
}
const id = (counter: number, participant: string): EventId => ({ counter, participant })

/** Applies `events` (each with its creator) in order; returns the state and every output. */
function fold (events: Array<[ChildrenEvent, string]>, unjoins: Record<number, string> = {}): { state: ChildrenState, outputs: unknown[] } {
  let state = childrenSpec.init()
  const outputs: unknown[] = []
  events.forEach(([e, by], i) => {
    if (unjoins[i] !== undefined) state = childrenSpec.unjoin!(unjoins[i], state)
    const r = childrenSpec.apply(e, state, id(i + 1, by))
    outputs.push(r.output)
    if (r.ok) state = r.state
  })
  return { state, outputs }
}

test('the children table: a child declared again with the same terms is unchanged, with other terms a conflict', () => {
  const { state, outputs } = fold([
    [{ t: 'start', name: 'a', terms }, 'p1'],
    [{ t: 'start', name: 'a', terms: { ...terms, local: { ...terms.local } } }, 'p2'],
    [{ t: 'start', name: 'a', terms: { ...terms, replicas: 5 } }, 'p2']
  ])
  assert.deepEqual(outputs.slice(0, 2), [{ ok: true, created: true }, { ok: true, created: false }])
  assert.equal((outputs[2] as { error: string }).error, 'conflict')
  assert.deepEqual(state.children.a!.since, id(1, 'p1'))
})

test('the children table: the first found wins and names the generation; an unconfirmed founder\'s departure clears it, a confirmed one\'s does not', () => {
  const first = fold([
    [{ t: 'start', name: 'r', terms }, 'p1'],
    [{ t: 'found', name: 'r' }, 'p2'],
    [{ t: 'found', name: 'r' }, 'p3']
  ])
  assert.deepEqual(first.outputs.slice(1), [{ ok: true, founder: true, generation: id(2, 'p2') }, { ok: true, founder: false, generation: id(2, 'p2') }])
  const gone = childrenSpec.unjoin!('p2', first.state)
  assert.equal(gone.children.r!.generation, null, 'p2 left before confirming: another may found')
  const confirmed = childrenSpec.apply({ t: 'confirm', name: 'r', generation: id(2, 'p2') }, first.state, id(4, 'p2'))
  assert.ok(confirmed.ok)
  assert.deepEqual(childrenSpec.unjoin!('p2', confirmed.state).children.r!.generation, id(2, 'p2'), 'a confirmed generation stays')
  const stale = childrenSpec.apply({ t: 'confirm', name: 'r', generation: id(9, 'p9') }, first.state, id(5, 'p2'))
  assert.equal(stale.ok, false)
})

test('the children table: ended, restart and stop; malformed events change nothing', () => {
  const { state, outputs } = fold([
    [{ t: 'start', name: 'a', terms: { ...terms, mode: 'placed', replicas: 1, minReplicas: 1 } }, 'p1'],
    [{ t: 'ended', name: 'a', how: 'failed', reason: 'gave up' }, 'p1'],
    [{ t: 'restart', name: 'a' }, 'p2'],
    [{ t: 'found', name: 'a' }, 'p2'],
    [{ t: 'bogus', name: 'a' } as unknown as ChildrenEvent, 'p2'],
    [{ t: 'start', name: '', terms } as ChildrenEvent, 'p2'],
    [{ t: 'stop', name: 'nope' }, 'p2']
  ])
  assert.equal(state.children.a!.status, 'active')
  assert.deepEqual(outputs.slice(3).map(o => (o as { error: string }).error), ['stale', 'invalid', 'invalid', 'unknown'])
  const stopped = childrenSpec.apply({ t: 'stop', name: 'a' }, state, id(99, 'p1'))
  assert.ok(stopped.ok && stopped.state.children.a === undefined)
})

test('placement: spread designates children evenly over the members, whatever their number', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 40 }), (m, k) => {
    const members = Array.from({ length: m }, (_, i) => `peer${i}`)
    const children = Array.from({ length: k }, (_, i) => ({ record: { name: `c${i}`, placement: { kind: 'spread' as const }, since: id(i + 1, 'p') }, holder: undefined }))
    const load = new Map(members.map(p => [p, 0]))
    for (const p of designate(children, members).values()) load.set(p, load.get(p)! + 1)
    const counts = [...load.values()]
    return Math.max(...counts) - Math.min(...counts) <= 1 && counts.reduce((a, b) => a + b, 0) === k
  }), propertyParameters('spread is even', 200))
})

test('placement: a child with a holder is not designated again, and counts for its holder\'s load', () => {
  const members = ['a', 'b']
  const held = { record: { name: 'x', placement: { kind: 'spread' as const }, since: id(1, 'p') }, holder: 'a' }
  const free = { record: { name: 'y', placement: { kind: 'spread' as const }, since: id(2, 'p') }, holder: undefined }
  assert.deepEqual([...designate([held, free], members)], [['y', 'b']])
})

test('placement: a named peer first, others after it unless fallback is off; rendezvous orders differ per child', () => {
  const members = ['a', 'b', 'c', 'd']
  assert.deepEqual(ranking({ name: 'x', placement: { kind: 'peer', peer: 'c', fallback: true } }, members)[0], 'c')
  assert.deepEqual(ranking({ name: 'x', placement: { kind: 'peer', peer: 'c', fallback: false } }, members), ['c'])
  assert.deepEqual(ranking({ name: 'x', placement: { kind: 'peer', peer: 'z', fallback: false } }, members), [])
  const firsts = new Set(Array.from({ length: 40 }, (_, i) => rendezvous(`child-${i}`, members)[0]))
  assert.equal(firsts.size, 4, 'forty children do not all prefer the same peer')
  assert.deepEqual(rendezvous('x', members), rendezvous('x', [...members].reverse()), 'independent of the members\' order')
})

test('placement: the designated peer stands while nobody holds a child; then the holder and its standbys', () => {
  const members = ['a', 'b', 'c', 'd']
  const record = { name: 'x', placement: { kind: 'spread' as const }, status: 'active' as const }
  const stands = (holder: string | undefined, standbys: number): string[] => members.filter(self => shouldStand({ self, record, members, holder, designated: 'b', standbys }))
  assert.deepEqual(stands(undefined, 1), ['b'])
  const order = ranking(record, members).filter(m => m !== 'c')
  assert.deepEqual(stands('c', 1).sort(), ['c', order[0]!].sort())
  assert.deepEqual(stands('c', 2).sort(), ['c', order[0]!, order[1]!].sort())
  assert.deepEqual(members.filter(self => shouldStand({ self, record: { ...record, status: 'finished' }, members, holder: 'c', designated: 'b', standbys: 1 })), [])
  assert.deepEqual(members.filter(self => shouldStand({ self, record: { ...record, placement: { kind: 'any' } }, members, holder: undefined, designated: undefined, standbys: 1 })), members)
})

test('placement: a primary adds the members it lacks, in rendezvous order, up to its replicas', () => {
  const members = ['a', 'b', 'c', 'd', 'e']
  const add = replicasToAdd('r', 3, members, ['a'])
  assert.equal(add.length, 2)
  assert.ok(!add.includes('a'))
  assert.deepEqual(replicasToAdd('r', 3, members, ['a', 'gone', 'b', 'c']), [])
  assert.deepEqual(replicasToAdd('r', 3, members, ['a', 'gone']).length, 2, 'a departed participant does not count')
})

// ---------------------------------------------------------------------------------------------
// A replicated server's spec on plain EventFold replicas

type Input = { readonly op: 'add', readonly n: number } | { readonly op: 'boom' }
const adder = defineServer<Input, number, number>({
  init: () => 0,
  step: (input, total) => {
    if (input.op === 'boom') throw new RangeError('boom on purpose')
    return { state: total + input.n, output: total + input.n }
  }
})
type E = ReplicatedEvent<Input, number>
type S = ReplicatedState<number, number>

/** Three replicas of one group, fully connected; `sync` merges every fold into every other. */
function replicas (spec: EventSpec<E, S, unknown>): { folds: Array<EventFold<E, S, unknown>>, outputs: Map<string, Array<ConsistentOutput<unknown>>>, sync: () => void, event: (i: number, e: E) => ReturnType<EventFold<E, S, unknown>['event']> } {
  const a = EventFold.create<E, S, unknown>('g', 'a', spec)
  a.participate('b')
  a.participate('c')
  const folds = [a, EventFold.fromSnapshot(a.snapshot(), 'b', spec), EventFold.fromSnapshot(a.snapshot(), 'c', spec)]
  const names = ['a', 'b', 'c']
  const outputs = new Map(names.map(n => [n, [] as Array<ConsistentOutput<unknown>>]))
  const sync = (): void => {
    for (let round = 0; round < 4; round++) {
      for (const [i, to] of folds.entries()) {
        for (const [j, from] of folds.entries()) {
          if (from === to) continue
          // As the runtime does: the diff for this peer, believed first-hand; the whole fold when refused.
          const diff = from.diffFor(names[i]!)
          let r = diff === undefined ? undefined : to.mergeDiff(diff, { from: names[j]! })
          if (r === undefined || !r.ok) r = to.mergeFull(from.snapshot(), { from: names[j]! })
          if (r.ok) outputs.get(names[i]!)!.push(...r.outputs)
        }
      }
    }
  }
  sync()
  const event = (i: number, e: E): ReturnType<EventFold<E, S, unknown>['event']> => {
    const r = folds[i]!.event(e)
    outputs.get(names[i]!)!.push(...r.outputs)
    return r
  }
  return { folds, outputs, sync, event }
}

test('a replicated server\'s input whose step throws folds as a thrown failure on every replica, leaving the state as it was', () => {
  const spec = replicatedSpec(adder, { window: 8, maxQuarantined: 4 }) as EventSpec<E, S, unknown>
  const { folds, outputs, sync, event } = replicas(spec)
  event(0, { t: 'init', state: 0 })
  event(1, { t: 'input', request: 'r1', input: { op: 'add', n: 5 } })
  sync()
  const poison = event(2, { t: 'input', request: 'r2', input: { op: 'boom' } })
  assert.equal(poison.outcome.status, 'threw')
  sync()
  event(0, { t: 'input', request: 'r3', input: { op: 'add', n: 1 } })
  sync()
  for (const f of folds) {
    assert.deepEqual(f.infimumValue().server, { kind: 'running', state: 6 }, 'the poison never applied')
    assert.equal(f.infimumValue().steps, 2)
  }
  for (const [who, outs] of outputs) {
    const thrown = outs.find(o => o.id.counter === poison.id.counter && o.id.participant === poison.id.participant)
    assert.ok(thrown?.thrown !== undefined && /boom on purpose/.test(thrown.thrown), `${who} folded the poison as thrown: ${JSON.stringify(thrown)}`)
  }
})

test('a replicated server steps a request id once: a second copy answers with the first one\'s output', () => {
  const spec = replicatedSpec(adder, { window: 2, maxQuarantined: 4 })
  let s = spec.init()
  const step = (e: E): unknown => { const r = spec.apply(e, s); assert.ok(r.ok); s = r.state; return r.output }
  step({ t: 'init', state: 0 })
  assert.deepEqual(step({ t: 'input', request: 'x', input: { op: 'add', n: 2 } }), { kind: 'output', output: 2 })
  assert.deepEqual(step({ t: 'input', request: 'x', input: { op: 'add', n: 2 } }), { kind: 'output', output: 2 })
  assert.equal(s.steps, 1)
  step({ t: 'input', request: 'y', input: { op: 'add', n: 1 } })
  step({ t: 'input', request: 'z', input: { op: 'add', n: 1 } })
  assert.deepEqual(s.recent.map(r => r.request), ['y', 'z'], 'the window is bounded')
  assert.deepEqual(step({ t: 'init', state: 100 }), { kind: 'done' })
  assert.deepEqual(s.server, { kind: 'running', state: 4 }, 'a second init changes nothing')
})

test('quarantine records are kept once per request, the oldest dropped past the bound, the total counted; the codecs round-trip every part', () => {
  const spec = replicatedSpec(adder, { window: 4, maxQuarantined: 2 })
  let s = spec.init()
  const apply = (e: E): void => { const r = spec.apply(e, s); assert.ok(r.ok); s = r.state }
  apply({ t: 'init', state: 3 })
  apply({ t: 'input', request: 'a', input: { op: 'add', n: 1 } })
  for (const r of ['q1', 'q2', 'q2', 'q3']) apply({ t: 'quarantine', record: quarantineRecord(r, id(7, 'p'), 'boom\non purpose', new Uint8Array(2000)) })
  assert.deepEqual(s.quarantined.map(q => q.request), ['q2', 'q3'])
  assert.equal(s.quarantinedTotal, 3)
  assert.equal(s.quarantined[0]!.thrown, 'boom on purpose', 'one line')
  assert.ok(s.quarantined[0]!.truncated && s.quarantined[0]!.input.length === 1024)
  const codecs = replicatedCodecs({ input: jsonCodec as never, state: jsonCodec as never, output: jsonCodec as never })
  assert.deepEqual(decodeWith(codecs.state, encodeWith(codecs.state, s as never)), s)
  const events: E[] = [{ t: 'init', state: 1 }, { t: 'input', request: 'r', input: { op: 'add', n: 2 } }, { t: 'quarantine', record: s.quarantined[1]! }]
  for (const e of events) assert.deepEqual(decodeWith(codecs.event, encodeWith(codecs.event, e as never)), e)
  for (const o of [{ kind: 'done' }, { kind: 'uninitialised' }, { kind: 'output', output: { a: [1] } }] as const) assert.deepEqual(decodeWith(codecs.output, encodeWith(codecs.output, o as never)), o)
  assert.throws(() => decodeWith(codecs.event, Uint8Array.of(9)), { name: 'DecodeError' })
})
