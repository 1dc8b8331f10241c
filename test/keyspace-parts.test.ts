/**
 * The keyspace's parts on stubs, without a network: the persistent map partitions keep their
 * keys in, a partition's replicated state (the spec built from the application, its codecs,
 * its slice of the index), search cursors, and routing (the order owners are tried in, and
 * what the router does with each answer) with a manual clock and stubbed owners.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { propertyParameters } from './support/property.js'
import { decodeWith, encodeWith } from '../src/codec/codec.js'
import { jsonCodec } from '../src/codec/json.js'
import { PersistentMap } from '../src/keyspace/persistent-map.js'
import { indexOf, keyIdOf, partitionCodecs, partitionSpec, recordsAfter, stringKeys, type KeyspaceApplication, type PartitionState } from '../src/keyspace/partition-state.js'
import { cursorFingerprint, decodeCursor, encodeCursor } from '../src/keyspace/search.js'
import { Router, candidates } from '../src/keyspace/router.js'
import { TableView, newKeyspaceCounters } from '../src/keyspace/context.js'
import { tableSpec, type KeyspaceTable } from '../src/keyspace/table.js'
import { requestCodec, requestReplyCodec, searchCodec, searchReplyCodec, type RequestMessage, type RequestReply } from '../src/keyspace/wire.js'
import { PeerUnreachableError } from '../src/transport/errors.js'
import { ManualClock } from './support/fake-network.js'
import type { Group } from '../src/peer/group/groups.js'
import type { ClusterState } from '../src/peer/options.js'
import { BOTTOM } from '../src/eventfold/types.js'

describe('the persistent map', () => {
  it('behaves like a Map under any sequence of sets and removes, never changes an earlier version, and iterates in an order that depends only on its keys', () => {
    const keyArb = fc.oneof(fc.string({ maxLength: 3 }), fc.constantFrom('Aa', 'BB', 'x', '')) // 'Aa'/'BB' share a Java-style hash, not ours
    const opArb = fc.tuple(fc.boolean(), keyArb, fc.integer())
    fc.assert(fc.property(fc.array(opArb, { maxLength: 200 }), ops => {
      let map = PersistentMap.empty<number>()
      const model = new Map<string, number>()
      const versions: Array<[PersistentMap<number>, string]> = []
      for (const [set, k, v] of ops) {
        map = set ? map.set(k, v) : map.remove(k)
        if (set) model.set(k, v); else model.delete(k)
        versions.push([map, JSON.stringify([...model].sort())])
        assert.equal(map.size, model.size)
        assert.equal(map.get(k), model.get(k))
      }
      for (const [m, expected] of versions) assert.equal(JSON.stringify([...m.entries()].sort()), expected, 'an old version is unchanged')
      const rebuilt = PersistentMap.from([...model].reverse())
      assert.deepEqual([...rebuilt.entries()], [...map.entries()], 'canonical order')
    }), propertyParameters('persistent map', 300))
  })

  it('returns itself for a set of the same value or a remove of an absent key', () => {
    const m = PersistentMap.empty<number>().set('a', 1)
    assert.equal(m.set('a', 1), m)
    assert.equal(m.remove('b'), m)
    assert.equal(m.remove('a').size, 0)
  })
})

type Input = { set?: string | null, fail?: boolean }
const app: KeyspaceApplication<string, Input, string | null, string | null> = {
  init: () => null,
  handle: (key, input, value) => { if (input.fail === true) throw new RangeError(`no ${key}`); return value },
  apply: (input, value) => input.set !== undefined ? input.set : value,
  index: (value) => value === null ? [] : [value.split(':')[0]!, 'all']
}
const codecs = { keys: stringKeys, input: jsonCodec, output: jsonCodec, state: jsonCodec } as never
const spec = partitionSpec(app, codecs)
const ev = (key: string, input: Input): { keyId: string, key: string, input: Input } => ({ keyId: keyIdOf(stringKeys.toBytes(key)), key, input })
function step (s: PartitionState<string | null>, key: string, input: Input): { state: PartitionState<string | null>, output: unknown } {
  const r = spec.apply([ev(key, input)], s)
  assert.ok(r.ok)
  assert.equal(r.output.length, 1)
  return { state: r.state, output: r.output[0] }
}

describe('a partition\'s state', () => {
  it('answers with the handler\'s output on the state before, keeps the state apply returns, and drops a key back in its default state', () => {
    let s = spec.init()
    let r = step(s, 'k', { set: 'x:1' })
    assert.deepEqual(r.output, { ok: true, output: null }, 'the output is computed on the state before')
    s = r.state
    assert.equal(s.get(keyIdOf(stringKeys.toBytes('k')))?.state, 'x:1')
    r = step(s, 'k', {})
    assert.deepEqual(r.output, { ok: true, output: 'x:1' })
    assert.equal(r.state, s, 'an input that changes nothing leaves the very same state')
    s = step(s, 'k', { set: null }).state
    assert.equal(s.size, 0, 'a key back at its default takes no space')
  })

  it('applies a batch of requests in order, each with its own output; one that throws changes nothing and the others apply', () => {
    const r = spec.apply([ev('k', { set: 'a:1' }), ev('k', { set: 'b:2', fail: true }), ev('k', {}), ev('j', { set: 'c:3' })], spec.init())
    assert.ok(r.ok)
    assert.deepEqual(r.output, [{ ok: true, output: null }, { ok: false, error: 'RangeError: no k' }, { ok: true, output: 'a:1' }, { ok: true, output: null }])
    assert.equal(r.state.get(keyIdOf(stringKeys.toBytes('k')))?.state, 'a:1')
    assert.equal(r.state.size, 2)
  })

  it('a handler that throws answers with the error and applies nothing', () => {
    const s = step(spec.init(), 'k', { set: 'a:1' }).state
    const r = step(s, 'k', { set: 'b:2', fail: true })
    assert.deepEqual(r.output, { ok: false, error: 'RangeError: no k' })
    assert.equal(r.state, s)
  })

  it('an apply whose state the codec cannot encode answers with an error and applies nothing', () => {
    const bad = partitionSpec({ ...app, apply: () => (() => 1) as never }, codecs)
    const r = bad.apply([ev('k', {})], bad.init())
    assert.ok(r.ok && r.output[0]?.ok === false && r.state.size === 0)
  })

  it('round-trips through its codecs, tags recomputed', () => {
    let s = spec.init()
    for (let i = 0; i < 50; i++) s = step(s, `key-${i}`, { set: `t${i % 3}:${i}` }).state
    const c = partitionCodecs(app, codecs)
    const back = decodeWith(c.state, encodeWith(c.state, s))
    assert.deepEqual([...back.entries()], [...s.entries()])
    const batch = [ev('é', { set: 'x' }), ev('k', {})]
    assert.deepEqual(decodeWith(c.event, encodeWith(c.event, batch)), batch)
    const outputs = [{ ok: false as const, error: 'boom' }, { ok: true as const, output: 'v' }]
    assert.deepEqual(decodeWith(c.output, encodeWith(c.output, outputs)), outputs)
    assert.throws(() => decodeWith(c.event, encodeWith(c.event, [])), { name: 'DecodeError' }, 'an event with no request')
  })

  it('lists its index records in (tag, key bytes) order and pages strictly after a position', () => {
    let s = spec.init()
    for (const [k, v] of [['b', 'x:1'], ['a', 'x:2'], ['c', 'y:3'], ['ab', 'x:4']] as const) s = step(s, k, { set: v }).state
    const index = indexOf(s)
    const show = (list: ReadonlyArray<{ tag: string, keyId: string }>): string[] => list.map(r => `${r.tag}/${r.keyId}`)
    assert.deepEqual(show(index), ['all/a', 'all/ab', 'all/b', 'all/c', 'x/a', 'x/ab', 'x/b', 'y/c'])
    assert.equal(indexOf(s), index, 'cached per state')
    assert.deepEqual(show(recordsAfter(index, { tag: 'x' }, 10).records), ['x/a', 'x/ab', 'x/b', 'y/c'], 'a tag alone: every record of the tag')
    assert.deepEqual(show(recordsAfter(index, { tag: 'x', keyId: 'ab' }, 10).records), ['x/b', 'y/c'], 'strictly after a record')
    const page = recordsAfter(index, { tag: 'all', keyId: 'a' }, 2)
    assert.deepEqual([show(page.records), page.done], [['all/ab', 'all/b'], false])
    assert.equal(recordsAfter(index, { tag: 'y', keyId: 'c' }, 5).done, true)
  })
})

describe('search cursors', () => {
  const fp = cursorFingerprint('cluster-a', 'keyspace')
  it('round-trip a record\'s position', () => {
    const cursor = encodeCursor(fp, 'tag', new Uint8Array([1, 2, 3]))
    assert.deepEqual(decodeCursor(fp, cursor), { tag: 'tag', key: new Uint8Array([1, 2, 3]) })
  })
  it('refuse a cursor of another cluster or keyspace, and anything that is not a cursor', () => {
    const cursor = encodeCursor(fp, 'tag', new Uint8Array([1]))
    assert.throws(() => decodeCursor(cursorFingerprint('cluster-b', 'keyspace'), cursor), { name: 'ForeignCursorError' })
    assert.throws(() => decodeCursor(cursorFingerprint('cluster-a', 'other'), cursor), { name: 'ForeignCursorError' })
    for (const bad of [42, '', 'not-a-cursor', cursor.slice(0, -3), `${cursor}AA`]) assert.throws(() => decodeCursor(fp, bad), { name: 'InvalidCursorError' }, String(bad))
  })
})

describe('the keyspace wire messages', () => {
  it('round-trip', () => {
    const m: RequestMessage = { version: 3, partition: 7, generation: 2, budgetMs: 900, consistency: 'one', key: new Uint8Array([1]), input: new Uint8Array([2, 3]) }
    assert.deepEqual(decodeWith(requestCodec, encodeWith(requestCodec, m)), m)
    for (const r of [{ kind: 'ok', output: new Uint8Array([9]) }, { kind: 'moved', version: 4, generation: 1, owners: ['a', 'b'] }, { kind: 'timeout', message: 'slow' }] as RequestReply[]) {
      assert.deepEqual(decodeWith(requestReplyCodec, encodeWith(requestReplyCodec, r)), r)
    }
    const s = { version: 1, budgetMs: 5, parts: [{ partition: 0, generation: 1, limit: 10, after: undefined }, { partition: 1, generation: 1, limit: 2, after: { tag: 't', key: new Uint8Array([4]) } }] }
    assert.deepEqual(decodeWith(searchCodec, encodeWith(searchCodec, s)), s)
    const sr = [{ kind: 'records' as const, partition: 0, done: true, records: [{ tag: 't', key: new Uint8Array([1]) }] }, { kind: 'unavailable' as const, partition: 1, message: 'no' }]
    assert.deepEqual(decodeWith(searchReplyCodec, encodeWith(searchReplyCodec, sr)), sr)
  })
  it('refuse malformed bytes with a DecodeError', () => {
    assert.throws(() => decodeWith(requestCodec, new Uint8Array([1, 2, 3])), { name: 'DecodeError' })
    assert.throws(() => decodeWith(requestReplyCodec, new Uint8Array([42])), { name: 'DecodeError' })
    assert.throws(() => decodeWith(searchCodec, new Uint8Array([0, 0, 1, 0, 0, 0])), { name: 'DecodeError' }, 'a limit of 0')
  })
})

describe('routing', () => {
  it('tries this peer first when it owns the partition, and otherwise the owner the partition\'s number picks, then the rest', () => {
    assert.deepEqual(candidates(['a', 'b', 'c'], 'b', 0), ['b', 'a', 'c'])
    assert.deepEqual(candidates(['a', 'b', 'c'], 'z', 1), ['b', 'c', 'a'])
    assert.deepEqual(candidates([], 'z', 1), [])
  })

  /** A router over a stub table at `table` and stub owners answering with `answer`. */
  function stubRouter (table: KeyspaceTable, answer: (peer: string, m: RequestMessage) => Promise<RequestReply>): { router: Router, clock: ManualClock, asked: string[] } {
    const clock = new ManualClock()
    const asked: string[] = []
    const state = (): ClusterState<KeyspaceTable> => ({ projected: table, infimum: table, infimumId: BOTTOM, participants: [], projectedParticipants: [], outstanding: 0, joined: true })
    const group = { held: () => true, readState: state, subscribe: () => () => {} } as unknown as Group<never, KeyspaceTable, never>
    const view = new TableView(group as never, clock)
    view.start()
    const router = new Router({
      self: 'z',
      clock,
      log: Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) as never,
      table: view,
      counters: newKeyspaceCounters(),
      send: async (peer, m) => { asked.push(peer); return await answer(peer, m) },
      local: async (m) => { asked.push('z'); return await answer('z', m) },
      isMember: () => true,
      onMembership: () => () => {}
    })
    return { router, clock, asked }
  }

  function tableWith (owners: string[]): KeyspaceTable {
    const s = tableSpec(1, owners.length)
    let t = s.init()
    for (const o of owners) t = s.join!(o, t)
    return { ...t, assignments: [{ generation: 1, owners, incoming: [], outgoing: [], abandoned: [], founder: null, lastOwner: null, dataSince: 1 }] }
  }

  it('follows a moved answer with a newer table to the owners it names, carrying that version', async () => {
    const t = tableWith(['a'])
    const versions: number[] = []
    const { router, asked } = stubRouter(t, async (peer, m) => {
      versions.push(m.version)
      return peer === 'a' ? { kind: 'moved', version: t.version + 1, generation: 1, owners: ['b'] } : { kind: 'ok', output: new Uint8Array([7]) }
    })
    assert.deepEqual(await router.route(0, new Uint8Array([1]), new Uint8Array(), 'agreed', 1000, undefined), new Uint8Array([7]))
    assert.deepEqual(asked, ['a', 'b'])
    assert.deepEqual(versions, [t.version, t.version + 1])
  })

  it('moves on to the next owner when one is unreachable or unavailable, and never resends after a timeout answer', async () => {
    const t = tableWith(['a', 'b', 'c'])
    const { router, asked } = stubRouter(t, async (peer) => {
      if (peer === 'b') throw new PeerUnreachableError('down', peer)
      if (peer === 'c') return { kind: 'unavailable', message: 'not yet' }
      return { kind: 'timeout', message: 'slow' }
    })
    await assert.rejects(router.route(0, new Uint8Array([1]), new Uint8Array(), 'agreed', 1000, undefined), { name: 'RequestTimeoutError' })
    assert.equal(asked.filter(p => p === 'a').length, 1, 'a timed-out request is not sent again')
  })

  it('gives up with PartitionUnavailableError at its deadline when no owner takes it, backing off between rounds', async () => {
    const t = tableWith(['a', 'b'])
    const { router, clock, asked } = stubRouter(t, async () => ({ kind: 'unavailable', message: 'not yet' }))
    const done = router.route(0, new Uint8Array([1]), new Uint8Array(), 'agreed', 2000, undefined)
    done.catch(() => {})
    await clock.advance(2500)
    await assert.rejects(done, { name: 'PartitionUnavailableError' })
    assert.ok(asked.length >= 4 && asked.length < 40, `${asked.length} attempts in 2 s, backing off`)
  })

  it('a handler error and a bad request are the caller\'s, at once', async () => {
    const t = tableWith(['a'])
    const { router } = stubRouter(t, async () => ({ kind: 'handler-error', message: 'boom' }))
    await assert.rejects(router.route(0, new Uint8Array([1]), new Uint8Array(), 'agreed', 1000, undefined), { name: 'HandlerError' })
    const bad = stubRouter(t, async () => ({ kind: 'bad-request', message: 'no' }))
    await assert.rejects(bad.router.route(0, new Uint8Array([1]), new Uint8Array(), 'agreed', 1000, undefined), { name: 'BadRequestError' })
  })

  it('an aborted request stops at once', async () => {
    const t = tableWith(['a'])
    const { router } = stubRouter(t, async () => ({ kind: 'unavailable', message: 'no' }))
    const ac = new AbortController()
    ac.abort()
    await assert.rejects(router.route(0, new Uint8Array([1]), new Uint8Array(), 'agreed', 1000, ac.signal), { name: 'AbortError' })
  })
})
