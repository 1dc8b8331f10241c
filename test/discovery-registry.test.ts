/**
 * The registry's rules as a pure EventSpec (src/discovery/registry-spec.ts): registrations,
 * FIFO elections, grants whose token is the granting event's id, departures, checkpoints
 * fenced by token, the journal, bad input. The same spec runs inside a real EventFold in the
 * last tests, so ids come from the fold itself.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { registrySpec, nameRecord, type RegistryEvent, type RegistryState, type ChangeRecord } from '../src/discovery/registry-spec.js'
import { compareEventIds, type EventId } from '../src/eventfold/types.js'
import { EventFold } from '../src/eventfold/event-fold.js'
import { encodeWith, decodeWith } from '../src/codec/codec.js'
import { jsonCodec } from '../src/codec/json.js'
import { propertyParameters } from './support/property.js'
import { holdersView, registryView } from '../src/discovery/views.js'

const settings = { journalLength: 8, maxNameBytes: 16, maxMetaBytes: 8, maxCheckpointBytes: 8 }
const spec = registrySpec(settings)
const meta = new Uint8Array([1])

/** Applies events in order, each with the next id of its creator; `join`/`unjoin` as hooks. */
class Script {
  state: RegistryState = spec.init()
  private counter = 0
  readonly outputs: unknown[] = []

  id (peer: string): EventId { return { counter: ++this.counter, participant: peer } }

  as (peer: string, e: RegistryEvent): EventId {
    const id = this.id(peer)
    const r = spec.apply(e, this.state, id)
    this.outputs.push(r.output)
    if (r.ok) this.state = r.state
    return id
  }

  join (peer: string): EventId { const id = this.id('sponsor'); this.state = spec.join!(peer, this.state, id); return id }
  unjoin (peer: string): EventId { const id = this.id('ejector'); this.state = spec.unjoin!(peer, this.state, id); return id }
  holder (name: string): { peer: string, token: EventId } | null { return nameRecord(this.state, name)?.election?.holder ?? null }
  queue (name: string): string[] { return nameRecord(this.state, name)?.election?.candidates.map(c => c.peer) ?? [] }
}

function members (...peers: string[]): Script {
  const s = new Script()
  for (const p of peers) s.join(p)
  return s
}

test('registrations: many per name and per peer, keyed by their creator, so a peer removes only its own', () => {
  const s = members('a', 'b')
  s.as('a', { t: 'register', name: 'worker', local: '1', meta, enabled: true })
  s.as('a', { t: 'register', name: 'worker', local: '2', meta, enabled: true })
  s.as('b', { t: 'register', name: 'worker', local: '1', meta, enabled: false })
  assert.deepEqual(nameRecord(s.state, 'worker')!.registrations.map(r => [r.key, r.enabled]), [['a/1', true], ['a/2', true], ['b/1', false]])
  s.as('b', { t: 'unregister', name: 'worker', local: '2' }) // b has no '2': a's is untouched
  assert.equal(nameRecord(s.state, 'worker')!.registrations.length, 3)
  s.as('a', { t: 'unregister', name: 'worker', local: '2' })
  assert.deepEqual(nameRecord(s.state, 'worker')!.registrations.map(r => r.key), ['a/1', 'b/1'])
})

test('an election grants its first candidate at once, with the candidacy\'s id as the fencing token, and queues the rest in order', () => {
  const s = members('a', 'b', 'c')
  const first = s.as('b', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('c', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('a', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  assert.deepEqual(s.holder('boss'), { peer: 'b', token: first })
  assert.deepEqual(s.queue('boss'), ['c', 'a'])
  s.as('b', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 }) // standing again changes nothing
  assert.deepEqual(s.queue('boss'), ['c', 'a'])
})

test('the next candidate is granted by the event that vacates: a resignation, or the holder\'s UnJoin, and tokens only grow', () => {
  const s = members('a', 'b', 'c')
  const t1 = s.as('a', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('b', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('c', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  const t2 = s.as('a', { t: 'withdraw', name: 'boss', requeue: true })
  assert.deepEqual(s.holder('boss'), { peer: 'b', token: t2 })
  assert.deepEqual(s.queue('boss'), ['c', 'a'], 'a requeued at the back')
  const t3 = s.unjoin('b')
  assert.deepEqual(s.holder('boss'), { peer: 'c', token: t3 })
  assert.ok(compareEventIds(t1, t2) < 0 && compareEventIds(t2, t3) < 0)
  const changes = s.state.journal.filter(c => c.name === 'boss').map(c => `${c.kind}:${'grant' in c ? c.grant.peer : ''}:${'cause' in c ? c.cause : ''}`)
  assert.deepEqual(changes, ['granted:a:', 'vacated:a:resigned', 'granted:b:', 'vacated:b:departed', 'granted:c:'])
})

test('a departed peer\'s registrations and candidacies go with its UnJoin', () => {
  const s = members('a', 'b')
  s.as('b', { t: 'register', name: 'worker', local: '1', meta, enabled: true })
  s.as('a', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('b', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  const gone = s.unjoin('b')
  assert.equal(nameRecord(s.state, 'worker'), undefined)
  assert.deepEqual(s.queue('boss'), [])
  assert.deepEqual(s.state.members, ['a'])
  const last = s.state.journal.find(c => c.kind === 'unregistered')
  assert.ok(last?.kind === 'unregistered' && last.cause === 'departed' && compareEventIds(last.id, gone) === 0)
})

test('nobody is granted while the group has fewer than minMembers members; the Join that reaches it grants', () => {
  const s = members('a')
  s.as('a', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 3 })
  s.join('b')
  assert.equal(s.holder('boss'), null)
  const third = s.join('c')
  assert.deepEqual(s.holder('boss'), { peer: 'a', token: third })
})

test('a candidacy on other terms than the standing ones is refused as a conflict and changes nothing', () => {
  const s = members('a', 'b')
  s.as('a', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  const before = s.state
  s.as('b', { t: 'candidate', name: 'boss', kind: 'other', minMembers: 1 })
  s.as('b', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 2 })
  assert.deepEqual(s.outputs.slice(-2), [{ ok: false, error: 'conflict', kind: 'k', minMembers: 1 }, { ok: false, error: 'conflict', kind: 'k', minMembers: 1 }])
  assert.equal(s.state, before)
})

test('a checkpoint is taken only from the current holder under its current token; a deposed holder\'s is fenced', () => {
  const s = members('a', 'b')
  const ta = s.as('a', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('b', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('a', { t: 'checkpoint', name: 'boss', token: ta, data: new Uint8Array([7]) })
  assert.deepEqual([...nameRecord(s.state, 'boss')!.election!.checkpoint!.data], [7])
  const tb = s.unjoin('a')
  s.as('a', { t: 'checkpoint', name: 'boss', token: ta, data: new Uint8Array([8]) }) // deposed
  s.as('b', { t: 'checkpoint', name: 'boss', token: ta, data: new Uint8Array([9]) }) // right peer, old token
  assert.deepEqual(s.outputs.slice(-2).map(o => (o as { error?: string }).error), ['fenced', 'fenced'])
  const ck = nameRecord(s.state, 'boss')!.election!.checkpoint!
  assert.deepEqual([...ck.data], [7], 'the successor starts from the last checkpoint its predecessor wrote')
  s.as('b', { t: 'checkpoint', name: 'boss', token: tb, data: new Uint8Array([10]) })
  assert.deepEqual([...nameRecord(s.state, 'boss')!.election!.checkpoint!.data], [10])
})

test('malformed events fold as invalid and change nothing: names empty or too long, oversized metadata, unknown types', () => {
  const s = members('a')
  const bad: unknown[] = [
    null, 42, { t: 'register', name: '', local: '1', meta, enabled: true }, { t: 'register', name: 'x'.repeat(17), local: '1', meta, enabled: true },
    { t: 'register', name: 'w', local: '1', meta: new Uint8Array(9), enabled: true }, { t: 'register', name: 'w', local: '1', meta: 'text', enabled: true },
    { t: 'register', name: 'w', local: '', meta, enabled: true }, { t: 'candidate', name: 'w', kind: 'k', minMembers: 0 },
    { t: 'checkpoint', name: 'w', token: { counter: 'x' }, data: meta }, { t: 'explode', name: 'w' }, { t: 'withdraw', name: 'w' }
  ]
  const before = s.state
  for (const e of bad) s.as('a', e as RegistryEvent)
  assert.ok(s.outputs.every(o => (o as { error?: string }).error === 'invalid'), JSON.stringify(s.outputs))
  assert.equal(s.state, before)
})

test('a name such as __proto__ or constructor is an ordinary name', () => {
  const s = members('a')
  s.as('a', { t: 'register', name: '__proto__', local: '1', meta, enabled: true })
  s.as('a', { t: 'candidate', name: 'constructor', kind: 'k', minMembers: 1 })
  assert.equal(nameRecord(s.state, '__proto__')!.registrations.length, 1)
  assert.equal(s.holder('constructor')?.peer, 'a')
  assert.equal(nameRecord(s.state, 'toString'), undefined)
  const decoded = decodeWith(jsonCodec, encodeWith(jsonCodec, s.state as never)) as unknown as RegistryState
  assert.equal(nameRecord(decoded, '__proto__')!.registrations.length, 1)
})

test('the journal numbers every change consecutively with the id that made it, and keeps only the last journalLength', () => {
  const s = members('a')
  const ids: EventId[] = []
  for (let i = 0; i < 12; i++) ids.push(s.as('a', { t: 'register', name: `n${i}`, local: '1', meta, enabled: true }))
  assert.equal(s.state.changes, 12)
  assert.deepEqual(s.state.journal.map(c => c.seq), [5, 6, 7, 8, 9, 10, 11, 12])
  assert.deepEqual(s.state.journal.map(c => c.id), ids.slice(4))
})

test('an UnJoin folds alike on a state built by events and on the same state decoded (names are visited in sorted order)', () => {
  const s = members('a', 'b', 'c')
  for (const name of ['zeta', 'alpha', 'mid']) {
    s.as('b', { t: 'candidate', name, kind: 'k', minMembers: 1 })
    s.as('c', { t: 'candidate', name, kind: 'k', minMembers: 1 })
    s.as('b', { t: 'register', name, local: '1', meta, enabled: true })
  }
  const decoded = decodeWith(jsonCodec, encodeWith(jsonCodec, s.state as never)) as unknown as RegistryState
  const id = { counter: 99, participant: 'a' }
  const built = spec.unjoin!('b', s.state, id)
  const fromDecoded = spec.unjoin!('b', decoded, id)
  assert.deepEqual(encodeWith(jsonCodec, built as never), encodeWith(jsonCodec, fromDecoded as never))
})

test('property: along any history, each name has at most one holder, granted from the front of its queue, and its tokens only grow', () => {
  const peers = ['a', 'b', 'c', 'd']
  const op = fc.oneof(
    fc.record({ k: fc.constant('candidate' as const), peer: fc.constantFrom(...peers), name: fc.constantFrom('x', 'y'), min: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ k: fc.constant('withdraw' as const), peer: fc.constantFrom(...peers), name: fc.constantFrom('x', 'y'), requeue: fc.boolean() }),
    fc.record({ k: fc.constant('join' as const), peer: fc.constantFrom(...peers) }),
    fc.record({ k: fc.constant('unjoin' as const), peer: fc.constantFrom(...peers) })
  )
  fc.assert(fc.property(fc.array(op, { maxLength: 60 }), ops => {
    const s = new Script()
    const seen: ChangeRecord[] = []
    for (const o of ops) {
      const before = s.state
      const queues = { x: s.queue('x'), y: s.queue('y') }
      if (o.k === 'candidate') s.as(o.peer, { t: 'candidate', name: o.name, kind: 'k', minMembers: o.min })
      else if (o.k === 'withdraw') s.as(o.peer, { t: 'withdraw', name: o.name, requeue: o.requeue })
      else if (o.k === 'join') s.join(o.peer)
      else s.unjoin(o.peer)
      const fresh = s.state.journal.filter(c => c.seq > before.changes)
      for (const c of fresh) {
        if (c.kind !== 'granted') continue
        const q = queues[c.name as 'x' | 'y'].filter(p => p !== (o.k === 'unjoin' || o.k === 'withdraw' ? o.peer : ''))
        const standing = (o.k === 'candidate' && q.length === 0) || (o.k === 'withdraw' && o.requeue) ? [...q, o.peer] : q
        assert.equal(c.grant.peer, standing[0], 'the grant goes to the front of the queue')
        assert.ok(s.state.members.length >= nameRecord(s.state, c.name)!.election!.minMembers, 'enough members')
      }
      seen.push(...fresh)
    }
    for (const name of ['x', 'y']) {
      let holder: string | undefined
      let last: EventId | undefined
      for (const c of seen.filter(c => c.name === name)) {
        if (c.kind === 'granted') {
          assert.equal(holder, undefined, 'never two holders')
          if (last !== undefined) assert.ok(compareEventIds(last, c.grant.token) < 0, 'tokens only grow')
          holder = c.grant.peer
          last = c.grant.token
        } else if (c.kind === 'vacated') {
          assert.equal(c.grant.peer, holder)
          holder = undefined
        }
      }
    }
  }), propertyParameters('registry elections', 300))
})

test('inside an EventFold, a grant\'s token is the id the fold gave the granting event, on every replica', () => {
  const a = EventFold.create('reg', 'a', spec, { freezeStates: true })
  a.participate('b')
  const b = EventFold.fromSnapshot(a.snapshot(), 'b', spec, { freezeStates: true })
  b.acknowledge()
  assert.ok(a.mergeFull(b.snapshot()).ok)
  const e = b.event({ t: 'candidate', name: 'boss', kind: 'k', minMembers: 2 })
  assert.ok(a.mergeDiff(b.diffFor('a')!).ok)
  assert.ok(b.mergeDiff(a.diffFor('b')!).ok)
  for (const f of [a, b]) assert.deepEqual(nameRecord(f.infimumValue(), 'boss')!.election!.holder, { peer: 'b', token: e.id })
})

test('operators see each election\'s holder and token and each name\'s registrations, from the settled state', () => {
  const s = members('a', 'b')
  const t = s.as('a', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('b', { t: 'candidate', name: 'boss', kind: 'k', minMembers: 1 })
  s.as('b', { t: 'register', name: 'worker', local: '1', meta, enabled: false })
  s.as('a', { t: 'register', name: 'worker', local: '1', meta, enabled: true })
  assert.deepEqual(holdersView(s.state, name => name === 'boss'), [{ name: 'boss', holder: 'a', token: `${t.counter}:a`, queued: 1, runningHere: true }])
  assert.deepEqual(registryView(s.state), [{ name: 'worker', registrations: 2, drained: 1, peers: 2 }])
})
