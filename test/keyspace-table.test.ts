/**
 * The keyspace's ownership table (src/keyspace/table.ts) as a pure event spec: replicas per
 * partition, balance, handoff states (incoming, outgoing, promotion), founding by grant, lost
 * partitions and draining. Property tests drive random membership changes and handoff events
 * and check the invariants after every step; examples pin the individual rules.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { propertyParameters } from './support/property.js'
import { decodeWith, encodeWith } from '../src/codec/codec.js'
import { awaitsLastOwner, movesInFlight, rebalance, tableChanges, tableSpec, type KeyspaceTable, type TableEvent } from '../src/keyspace/table.js'
import { tableStateCodec } from '../src/keyspace/table-codec.js'

const PEERS = ['a', 'b', 'c', 'd', 'e', 'f', 'g'] as const

function spec (partitions: number, replication: number): ReturnType<typeof tableSpec> {
  return tableSpec(partitions, replication)
}

function apply (s: ReturnType<typeof tableSpec>, t: KeyspaceTable, e: TableEvent): KeyspaceTable {
  const r = s.apply(e, t)
  assert.ok(r.ok)
  return r.state
}

/**
 * Grants every founder and promotes every incoming replica, as live peers would; a partition
 * waiting for a last owner that is away is declared lost (its wait ran out).
 */
function settle (s: ReturnType<typeof tableSpec>, table: KeyspaceTable): KeyspaceTable {
  let t = table
  for (let round = 0; round < 10; round++) {
    const before = t
    const waiting = t.assignments.flatMap((a, p) => awaitsLastOwner(t, a) ? [[p, a.generation] as const] : [])
    if (waiting.length > 0) t = apply(s, t, { type: 'lost', peer: t.members[0]!, partitions: waiting })
    for (const m of t.members) {
      const found = t.assignments.flatMap((a, p) => a.founder === m ? [[p, a.generation] as const] : [])
      if (found.length > 0) t = apply(s, t, { type: 'found', peer: m, partitions: found })
      const ready = t.assignments.flatMap((a, p) => a.incoming.includes(m) ? [[p, a.generation] as const] : [])
      if (ready.length > 0) t = apply(s, t, { type: 'ready', peer: m, partitions: ready })
    }
    if (t === before) break
  }
  return t
}

/** The invariants every table keeps after every event. */
function checkInvariants (t: KeyspaceTable): void {
  const members = new Set(t.members)
  assert.deepEqual([...t.members], [...t.members].sort(), 'members sorted')
  for (const [p, a] of t.assignments.entries()) {
    const all = [...a.owners, ...a.incoming]
    assert.equal(new Set(all).size, all.length, `partition ${p}: a peer is an owner or incoming once`)
    for (const x of all) assert.ok(members.has(x), `partition ${p}: ${x} is a member`)
    for (const x of a.outgoing) assert.ok(a.owners.includes(x), `partition ${p}: outgoing ${x} still serves`)
    for (const x of a.abandoned) assert.ok(a.incoming.includes(x), `partition ${p}: abandoned ${x} is incoming`)
    if (a.founder !== null) assert.ok(a.owners.includes(a.founder), `partition ${p}: a founder owns its generation until it founds it`)
    if (a.lastOwner !== null) assert.ok(a.owners.length === 0 || a.founder === a.lastOwner.peer, `partition ${p}: a last owner is kept only while nobody serves, or while it restores its copy`)
    assert.ok(a.dataSince <= a.generation && (a.generation === 0) === (a.dataSince === 0), `partition ${p}: continues no later generation`)
    if (t.members.length > 0 && t.draining.length < t.members.length && !awaitsLastOwner(t, a)) {
      assert.ok(a.owners.length > 0 || a.incoming.length > 0, `partition ${p}: someone holds or receives it`)
    }
    if (a.incoming.length === 0) assert.equal(a.outgoing.length, 0, `partition ${p}: no outgoing without a move`)
  }
}

type Op =
  | { kind: 'join', peer: number }
  | { kind: 'leave', peer: number }
  | { kind: 'drain', peer: number }
  | { kind: 'ready', peer: number }
  | { kind: 'found', peer: number }
  | { kind: 'abandon', peer: number, partition: number }
  | { kind: 'lost', peer: number, partition: number }
  | { kind: 'resign', peer: number, partition: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.nat(PEERS.length - 1).map(peer => ({ kind: 'join' as const, peer })), weight: 4 },
  { arbitrary: fc.nat(PEERS.length - 1).map(peer => ({ kind: 'leave' as const, peer })), weight: 2 },
  { arbitrary: fc.nat(PEERS.length - 1).map(peer => ({ kind: 'drain' as const, peer })), weight: 1 },
  { arbitrary: fc.nat(PEERS.length - 1).map(peer => ({ kind: 'ready' as const, peer })), weight: 4 },
  { arbitrary: fc.nat(PEERS.length - 1).map(peer => ({ kind: 'found' as const, peer })), weight: 2 },
  { arbitrary: fc.record({ peer: fc.nat(PEERS.length - 1), partition: fc.nat(31) }).map(x => ({ kind: 'abandon' as const, ...x })), weight: 1 },
  { arbitrary: fc.record({ peer: fc.nat(PEERS.length - 1), partition: fc.nat(31) }).map(x => ({ kind: 'lost' as const, ...x })), weight: 1 },
  { arbitrary: fc.record({ peer: fc.nat(PEERS.length - 1), partition: fc.nat(31) }).map(x => ({ kind: 'resign' as const, ...x })), weight: 1 }
)

function run (s: ReturnType<typeof tableSpec>, ops: readonly Op[], check: (before: KeyspaceTable, after: KeyspaceTable, op: Op) => void): KeyspaceTable {
  let t = s.init()
  for (const op of ops) {
    const peer = PEERS[op.peer]!
    const before = t
    switch (op.kind) {
      case 'join': t = s.join!(peer, t); break
      case 'leave': t = s.unjoin!(peer, t); break
      case 'drain': t = apply(s, t, { type: 'drain', peer }); break
      case 'ready': t = apply(s, t, { type: 'ready', peer, partitions: t.assignments.flatMap((a, p) => a.incoming.includes(peer) ? [[p, a.generation] as const] : []) }); break
      case 'found': t = apply(s, t, { type: 'found', peer, partitions: t.assignments.flatMap((a, p) => a.founder === peer ? [[p, a.generation] as const] : []) }); break
      case 'abandon':
      case 'resign':
      case 'lost': {
        const a = t.assignments[op.partition % t.partitions]!
        t = apply(s, t, { type: op.kind, peer, partitions: [[op.partition % t.partitions, a.generation]] })
      }
    }
    check(before, t, op)
  }
  return t
}

describe('the ownership table', () => {
  it('keeps its invariants, versions every change and only changes when something happened, under any sequence of events', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 4 }), fc.array(opArb, { maxLength: 60 }), (partitions, replication, ops) => {
      const s = spec(partitions, replication)
      run(s, ops, (before, after) => {
        checkInvariants(after)
        if (after === before) return
        assert.equal(after.version, before.version + 1, 'one version per change')
        assert.notDeepEqual({ ...after, version: 0 }, { ...before, version: 0 }, 'a new version changes something')
      })
    }), propertyParameters('table invariants', 200))
  })

  it('never takes a partition from its serving owners except when they leave, abandon it, or a move completes', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 3 }), fc.array(opArb, { maxLength: 60 }), (partitions, replication, ops) => {
      const s = spec(partitions, replication)
      run(s, ops, (before, after, op) => {
        after.assignments.forEach((a, p) => {
          const b = before.assignments[p]!
          if (a.generation !== b.generation) return
          for (const o of b.owners) {
            if (a.owners.includes(o)) continue
            const left = op.kind === 'leave' && PEERS[op.peer] === o
            const gaveUp = (op.kind === 'abandon' || op.kind === 'resign') && PEERS[op.peer] === o
            const completed = b.outgoing.includes(o) && a.incoming.length === 0
            const shed = b.incoming.length === 0 && a.incoming.length === 0 && a.owners.length > 0 // a set over-full without any move: trimmed at once
            assert.ok(left || gaveUp || completed || shed, `partition ${p}: ${o} stopped serving on ${op.kind}`)
          }
        })
      })
    }), propertyParameters('serving owners kept', 200))
  })

  it('once every move completes, every partition has min(R, n) owners and every peer owns floor or ceil of its share', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 48 }), fc.integer({ min: 1, max: 4 }), fc.array(fc.nat(PEERS.length - 1), { minLength: 1, maxLength: 12 }), fc.array(fc.nat(PEERS.length - 1), { maxLength: 4 }), (partitions, replication, joins, leaves) => {
      const s = spec(partitions, replication)
      let t = s.init()
      for (const j of joins) t = settle(s, s.join!(PEERS[j]!, t))
      for (const l of leaves) t = settle(s, s.unjoin!(PEERS[l]!, t))
      if (t.members.length === 0) return
      const n = t.members.length
      const r = Math.min(replication, n)
      assert.equal(movesInFlight(t), 0)
      const load = new Map(t.members.map(m => [m, 0]))
      for (const a of t.assignments) {
        assert.equal(a.owners.length, r, 'r owners each')
        assert.equal(a.founder, null)
        for (const o of a.owners) load.set(o, load.get(o)! + 1)
      }
      const lo = Math.floor(partitions * r / n)
      for (const [m, c] of load) assert.ok(c >= lo && c <= lo + 1, `${m} owns ${c}, not within [${lo}, ${lo + 1}]`)
    }), propertyParameters('balanced after settling', 200))
  })

  it('a peer joining a settled table takes only its share: every other partition stays as it was', () => {
    const s = spec(64, 3)
    let t = s.init()
    for (const p of ['a', 'b', 'c', 'd', 'e']) t = settle(s, s.join!(p, t))
    const before = t
    t = s.join!('f', t)
    const moving = t.assignments.filter(a => a.incoming.length > 0)
    assert.equal(moving.length, Math.floor(64 * 3 / 6), 'f receives exactly its share (32 partitions)')
    for (const a of moving) assert.deepEqual(a.incoming, ['f'])
    t.assignments.forEach((a, p) => { if (a.incoming.length === 0) assert.deepEqual(a, before.assignments[p]) })
    // While the moves are in flight the old owners serve; promotion completes each move.
    for (const a of moving) { assert.equal(a.owners.length, 3); assert.equal(a.outgoing.length, 1) }
    t = settle(s, t)
    assert.equal(movesInFlight(t), 0)
    assert.equal(t.assignments.filter(a => a.owners.includes('f')).length, 32)
  })

  it('founding is granted once, to the founder; a founder that left and rejoined is never granted its old generation', () => {
    const s = spec(4, 2)
    let t = s.join!('a', s.init())
    assert.ok(t.assignments.every(a => a.founder === 'a' && a.generation === 1 && a.owners[0] === 'a'))
    const asked = t.assignments.map((a, p) => [p, a.generation] as const)
    const byOther = s.apply({ type: 'found', peer: 'b', partitions: asked }, s.join!('b', t))
    assert.deepEqual(byOther.ok ? byOther.output.partitions : undefined, [], 'only the founder is granted')
    // 'a' restarts without its state and rejoins: its UnJoin is ordered before its grant.
    let rejoined = s.join!('a', s.unjoin!('a', t))
    const late = s.apply({ type: 'found', peer: 'a', partitions: asked }, rejoined)
    assert.deepEqual(late.ok ? late.output.partitions : undefined, [], 'the old generation is not granted again')
    rejoined = late.ok ? late.state : rejoined
    assert.ok(rejoined.assignments.every(a => a.generation === 2), 'nobody held generation 1: a new generation')
    const first = s.apply({ type: 'found', peer: 'a', partitions: rejoined.assignments.map((a, p) => [p, a.generation] as const) }, rejoined)
    assert.deepEqual(first.ok ? first.output.partitions : undefined, [0, 1, 2, 3])
    const again = s.apply({ type: 'found', peer: 'a', partitions: rejoined.assignments.map((a, p) => [p, a.generation] as const) }, first.ok ? first.state : rejoined)
    assert.deepEqual(again.ok ? again.output.partitions : undefined, [], 'granted once')
  })

  it('a partition whose every replica left waits for its last owner; declared lost, it starts a new generation, reported as lost', () => {
    const s = spec(8, 2)
    let t = settle(s, s.join!('b', settle(s, s.join!('a', s.init()))))
    const before = t
    t = s.unjoin!('b', t)
    assert.ok(t.assignments.every(a => a.lastOwner === null), 'a still serves everything')
    t = s.unjoin!('a', t)
    assert.ok(t.assignments.every(a => a.owners.length === 0 && a.generation === 1), 'nobody is left to refound them yet')
    assert.ok(t.assignments.every(a => a.lastOwner?.peer === 'a' && a.lastOwner.generation === 1), 'a left last: it holds everything acknowledged')
    t = s.join!('c', t)
    assert.ok(t.assignments.every(a => awaitsLastOwner(t, a) && a.generation === 1 && a.incoming.length === 0), 'c takes nothing: the partitions wait for a')
    assert.equal(tableChanges(before, t).filter(c => c.type === 'lost').length, 0)
    const early = s.apply({ type: 'lost', peer: 'c', partitions: [[0, 2]] }, t)
    assert.ok(early.ok && early.state === t, 'a declaration of another generation changes nothing')
    t = apply(s, t, { type: 'lost', peer: 'c', partitions: t.assignments.map((a, p) => [p, a.generation] as const) })
    const lost = tableChanges(before, t).filter(c => c.type === 'lost')
    assert.equal(lost.length, 8, 'every partition lost')
    assert.ok(t.assignments.every(a => a.generation === 2 && a.founder === 'c' && a.dataSince === 2 && a.lastOwner === null))
    const again = s.apply({ type: 'lost', peer: 'c', partitions: t.assignments.map((a, p) => [p, a.generation] as const) }, t)
    assert.ok(again.ok && again.state === t, 'a partition that is not waiting cannot be declared lost')
  })

  it('a last owner admitted again founds the next generation from its copy: nothing reported lost; without a copy it abandons and the partition is lost', () => {
    const s = spec(4, 2)
    let t = settle(s, s.join!('b', settle(s, s.join!('a', s.init()))))
    const before = t
    t = s.unjoin!('a', s.unjoin!('b', t))
    t = s.join!('c', t)
    // a's readmission: its Join folds while the partitions wait for it.
    t = s.join!('a', t)
    for (const a of t.assignments) {
      assert.deepEqual([a.generation, a.owners, a.founder, a.dataSince], [2, ['a'], 'a', 1], 'a founds generation 2, continuing generation 1')
      assert.deepEqual(a.lastOwner, { peer: 'a', generation: 1 }, 'from its copy of generation 1')
      assert.equal(a.incoming.length, 1)
    }
    const changes = tableChanges(before, t)
    assert.equal(changes.filter(c => c.type === 'lost').length, 0, 'nothing lost')
    assert.equal(changes.filter(c => c.type === 'moved').length, 4, 'every partition moved to a')
    const promoteEarly = s.apply({ type: 'ready', peer: t.assignments[0]!.incoming[0]!, partitions: [[0, 2]] }, t)
    assert.ok(promoteEarly.ok && promoteEarly.state === t, 'nobody is ready before the founder founds')
    const founded = settle(s, t)
    assert.ok(founded.assignments.every(a => a.owners.length === 2 && a.lastOwner === null && a.dataSince === 1 && a.generation === 2))
    assert.equal(tableChanges(before, founded).filter(c => c.type === 'lost').length, 0)
    // a restarted without its storage: it has no copy, says so, and the partition is lost.
    const none = apply(s, t, { type: 'abandon', peer: 'a', partitions: [[0, 2]] })
    const n0 = none.assignments[0]!
    assert.deepEqual([n0.generation, n0.dataSince, n0.lastOwner], [3, 3, null], 'refounded empty')
    assert.equal(tableChanges(before, none).filter(c => c.type === 'lost').length, 1)
    // The founder left again before founding: its copy of generation 1 is still what is waited for.
    const away = s.unjoin!('a', t)
    assert.deepEqual(away.assignments[1]!.lastOwner, { peer: 'a', generation: 1 })
  })

  it('a partition whose owners all left waits for its incoming replicas; it is lost only when every one of them abandons it', () => {
    const s = spec(1, 3)
    let t = settle(s, s.join!('a', s.init()))
    t = s.join!('c', s.join!('b', t)) // b and c incoming
    assert.deepEqual(t.assignments[0]!.incoming, ['b', 'c'])
    t = s.unjoin!('a', t)
    const a = t.assignments[0]!
    assert.deepEqual([a.owners, a.incoming, a.generation], [[], ['b', 'c'], 1], 'pinned: waiting for an incoming replica that holds the state')
    t = apply(s, t, { type: 'abandon', peer: 'b', partitions: [[0, 1]] })
    assert.equal(t.assignments[0]!.generation, 1, 'c may still hold it')
    const c = apply(s, t, { type: 'ready', peer: 'c', partitions: [[0, 1]] })
    assert.deepEqual(c.assignments[0]!.owners, ['c'], 'c held it: promoted, nothing lost')
    const both = apply(s, t, { type: 'abandon', peer: 'c', partitions: [[0, 1]] })
    assert.ok(awaitsLastOwner(both, both.assignments[0]!), 'nobody here holds it: it waits for a, its last owner')
    const declared = apply(s, both, { type: 'lost', peer: 'b', partitions: [[0, 1]] })
    assert.equal(declared.assignments[0]!.generation, 2, 'declared lost: refounded')
    assert.equal(tableChanges(t, declared).filter(x => x.type === 'lost').length, 1)
  })

  it('an owner that holds only a former copy resigns: the last to serve becomes the last owner and restores the partition; a founder cannot resign', () => {
    const s = spec(1, 2)
    let t = settle(s, s.join!('b', settle(s, s.join!('a', s.init()))))
    assert.deepEqual(t.assignments[0]!.owners, ['a', 'b'])
    t = apply(s, t, { type: 'resign', peer: 'a', partitions: [[0, 1]] })
    assert.deepEqual([t.assignments[0]!.owners, t.assignments[0]!.lastOwner], [['b'], null], 'b still serves')
    t = settle(s, t)
    assert.deepEqual(t.assignments[0]!.owners.length, 2, 'refilled from b')
    const onlyB = s.unjoin!('a', t)
    const resigned = apply(s, onlyB, { type: 'resign', peer: 'b', partitions: [[0, 1]] })
    const r = resigned.assignments[0]!
    assert.deepEqual([r.generation, r.owners, r.founder, r.lastOwner, r.dataSince], [2, ['b'], 'b', { peer: 'b', generation: 1 }, 1], 'b restores generation 2 from its copy of 1 at once')
    assert.equal(tableChanges(onlyB, resigned).filter(c => c.type === 'lost').length, 0)
    const founderResigns = s.apply({ type: 'resign', peer: 'b', partitions: [[0, 2]] }, resigned)
    assert.ok(founderResigns.ok && founderResigns.state === resigned, 'a founder has nothing to resign')
  })

  it('a draining peer hands everything off and owns nothing once the moves complete; with R >= n it is released at once', () => {
    const s = spec(16, 2)
    let t = s.init()
    for (const p of ['a', 'b', 'c', 'd']) t = settle(s, s.join!(p, t))
    t = apply(s, t, { type: 'drain', peer: 'a' })
    assert.ok(t.assignments.some(x => x.outgoing.includes('a')), 'a still serves while its replacements arrive')
    t = settle(s, t)
    assert.ok(t.assignments.every(x => !x.owners.includes('a') && x.owners.length === 2))
    const three = spec(4, 3)
    let u = three.init()
    for (const p of ['a', 'b', 'c']) u = settle(three, three.join!(p, u))
    u = apply(three, u, { type: 'drain', peer: 'b' })
    assert.ok(u.assignments.every(x => !x.owners.includes('b') && x.owners.length === 2 && x.incoming.length === 0))
  })

  it('an owner that lost its copy abandons it; the partition is refilled from the other owners, not lost', () => {
    const s = spec(4, 2)
    let t = s.init()
    for (const p of ['a', 'b', 'c']) t = settle(s, s.join!(p, t))
    const p = t.assignments.findIndex(a => a.owners.includes('a'))
    const g = t.assignments[p]!.generation
    t = apply(s, t, { type: 'abandon', peer: 'a', partitions: [[p, g]] })
    const a = t.assignments[p]!
    assert.equal(a.generation, g, 'not lost')
    assert.ok(!a.owners.includes('a') && a.owners.length === 1 && a.incoming.length === 1)
  })

  it('malformed events change nothing and say why', () => {
    const s = spec(4, 2)
    const t = settle(s, s.join!('a', s.init()))
    for (const e of [null, 5, { type: 'ready' }, { type: 'ready', peer: 'a', partitions: 'x' }, { type: 'ready', peer: 'a', partitions: [[9, 1]] }, { type: 'bogus', peer: 'a', partitions: [] }]) {
      const r = s.apply(e as never, t)
      assert.ok(r.ok && r.state === t, JSON.stringify(e))
    }
    assert.throws(() => tableSpec(0, 1), RangeError)
    assert.throws(() => tableSpec(4, 0), RangeError)
  })

  it('rebalance is deterministic and idempotent on a settled table', () => {
    const s = spec(32, 3)
    let t = s.init()
    for (const p of ['e', 'a', 'd', 'b']) t = settle(s, s.join!(p, t))
    assert.deepEqual(rebalance(t), t)
  })

  it('the binary table codec round-trips and refuses tables naming non-members', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 3 }), fc.array(opArb, { maxLength: 40 }), (partitions, replication, ops) => {
      const t = run(spec(partitions, replication), ops, () => {})
      assert.deepEqual(decodeWith(tableStateCodec, encodeWith(tableStateCodec, t)), t)
    }), propertyParameters('table codec', 100))
    const s = spec(2, 1)
    const t = s.join!('a', s.init())
    const bytes = encodeWith(tableStateCodec, t)
    const broken = Uint8Array.from(bytes)
    broken[broken.length - 3] = 9 // founder index beyond the members
    assert.throws(() => decodeWith(tableStateCodec, broken), { name: 'DecodeError' })
    // A last owner that is not a member travels by id.
    const waiting = s.join!('b', s.unjoin!('a', settle(s, t)))
    assert.ok(waiting.assignments.every(a => a.lastOwner?.peer === 'a'))
    assert.deepEqual(decodeWith(tableStateCodec, encodeWith(tableStateCodec, waiting)), waiting)
    // Format 1 (before last owners): partitions 1, replication 1, version 3, members ['a'],
    // no draining; generation 2, owners [a], no incoming, outgoing or abandoned, no founder.
    const format1 = Uint8Array.from([1, 1, 3, 1, 1, 0x61, 0, 2, 1, 0, 0, 0, 0, 0])
    assert.deepEqual(decodeWith(tableStateCodec, format1), {
      partitions: 1, replication: 1, version: 3, members: ['a'], draining: [],
      assignments: [{ generation: 2, owners: ['a'], incoming: [], outgoing: [], abandoned: [], founder: null, lastOwner: null, dataSince: 2 }]
    })
    assert.throws(() => decodeWith(tableStateCodec, Uint8Array.from([0, 3, ...format1])), /format 3/)
  })
})
