/**
 * Plans of the keyspace's layout (src/keyspace/plan.ts), on the pure ownership table: what a
 * leave or a join would move is what the table's own rebalancing then does once the moves
 * complete, a plan never changes the table it reads, and a change that would lose data says
 * which partitions.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { propertyParameters } from './support/property.js'
import { tableSpec, type KeyspaceTable, type TableEvent } from '../src/keyspace/table.js'
import { planMembershipChange, replicaSet, type KeyspacePlan } from '../src/keyspace/plan.js'

type Spec = ReturnType<typeof tableSpec>

function apply (s: Spec, t: KeyspaceTable, e: TableEvent): KeyspaceTable {
  const r = s.apply(e, t)
  assert.ok(r.ok)
  return r.state
}

/** Grants every founder and promotes every incoming replica, as live peers would. */
function settle (s: Spec, table: KeyspaceTable): KeyspaceTable {
  let t = table
  for (let round = 0; round < 10; round++) {
    const before = t
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

function cluster (s: Spec, peers: readonly string[]): KeyspaceTable {
  let t = s.init()
  for (const p of peers) t = settle(s, s.join!(p, t))
  return t
}

function plan (s: Spec, t: KeyspaceTable, change: { type: 'join' | 'leave', peer: string }): KeyspacePlan {
  const p = planMembershipChange(s, t, change)
  assert.ok(!('refused' in p), JSON.stringify(p))
  return p
}

describe('keyspace layout plans', () => {
  it('a leave moves every partition the peer held to others, and the plan is the layout the table reaches once the moves complete', () => {
    const s = tableSpec(16, 3)
    const t = cluster(s, ['a', 'b', 'c', 'd', 'e'])
    const snapshot = JSON.stringify(t)
    const p = plan(s, t, { type: 'leave', peer: 'c' })
    assert.equal(JSON.stringify(t), snapshot, 'planning changed nothing')
    const held = t.assignments.flatMap((a, i) => replicaSet(a).includes('c') ? [i] : [])
    assert.ok(held.length > 0)
    for (const i of held) assert.ok(p.moves.some(m => m.partition === i), `partition ${i} moves`)
    for (const m of p.moves) assert.ok(!m.after.includes('c'), 'the leaver is in no replica set afterwards')
    assert.ok(p.transfers >= held.length, 'each of its replicas is replaced')
    assert.deepEqual(p.lost, [])
    assert.equal(p.version, t.version)
    assert.equal(p.after.balanced, true)

    const done = settle(s, s.unjoin!('c', t))
    assert.deepEqual(done.assignments.map(a => [...a.owners].sort()), done.assignments.map((a, i) => p.moves.find(m => m.partition === i)?.after ?? replicaSet(t.assignments[i]!)),
      'the owners the table ends with are the plan\'s replica sets')
    assert.deepEqual(Object.fromEntries(done.members.map(m => [m, done.assignments.filter(a => a.owners.includes(m)).length])), { ...p.after.replicas })
  })

  it('a join moves exactly the joiner\'s share, all of it to the joiner', () => {
    const s = tableSpec(32, 3)
    const t = cluster(s, ['a', 'b', 'c', 'd'])
    const p = plan(s, t, { type: 'join', peer: 'e' })
    const share = p.after.replicas.e!
    assert.ok(share === Math.floor(32 * 3 / 5) || share === Math.ceil(32 * 3 / 5), `fair share, got ${share}`)
    assert.equal(p.transfers, share)
    for (const m of p.moves) assert.deepEqual(m.adding, ['e'])
    assert.equal(p.moves.reduce((n, m) => n + m.removing.length, 0), share, 'one replica released per replica added')
    const done = settle(s, s.join!('e', t))
    assert.equal(done.assignments.filter(a => a.owners.includes('e')).length, share)
  })

  it('a leave that takes the last replica of partitions says they would be unavailable until it comes back, not lost', () => {
    const s = tableSpec(8, 1)
    const t = cluster(s, ['a', 'b'])
    const p = plan(s, t, { type: 'leave', peer: 'a' })
    const mine = t.assignments.flatMap((a, i) => a.owners.includes('a') ? [i] : [])
    assert.ok(mine.length > 0)
    assert.deepEqual([p.unavailable, p.lost], [mine, []])
    for (const m of p.moves) {
      assert.equal(m.generation, t.assignments[m.partition]!.generation, 'the same generation: it waits for a')
      assert.deepEqual([m.after, m.adding, m.removing], [[], [], ['a']])
    }
  })

  it('refuses a leave of a non-member and a join of a member, with the reason', () => {
    const s = tableSpec(4, 2)
    const t = cluster(s, ['a', 'b'])
    assert.match((planMembershipChange(s, t, { type: 'leave', peer: 'z' }) as { refused: string }).refused, /not a member/)
    assert.match((planMembershipChange(s, t, { type: 'join', peer: 'a' }) as { refused: string }).refused, /member already/)
  })

  it('for any settled cluster and any member, the plan of its leave is what settling the table after its UnJoin gives', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 24 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 2, max: 6 }), fc.nat(),
      (partitions, replication, n, pick) => {
        const s = tableSpec(partitions, replication)
        const peers = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'].slice(0, n)
        const t = cluster(s, peers)
        const leaver = peers[pick % n]!
        const p = plan(s, t, { type: 'leave', peer: leaver })
        const done = settle(s, s.unjoin!(leaver, t))
        for (let i = 0; i < partitions; i++) {
          const expected = p.moves.find(m => m.partition === i)?.after ?? replicaSet(t.assignments[i]!)
          assert.deepEqual([...done.assignments[i]!.owners].sort(), expected, `partition ${i}`)
        }
      }), propertyParameters('the plan of a leave is the settled layout after its UnJoin', 200))
  })
})
