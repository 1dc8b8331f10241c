/**
 * Specifications of the partition table event spec (src/partitions/partition-table.ts):
 * balance, minimal movement, immutability, determinism, totality and the helper queries.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { propertyParameters } from './support/property.js'
import {
  MAX_PARTITIONS,
  fnv1a32,
  formatPartitionTable,
  isBalanced,
  ownerOf,
  partitionForKey,
  partitionTableSpec,
  partitionsOf,
  type PartitionTable,
  type PartitionTableEvent,
  type PartitionTableOutput
} from '../src/partitions/partition-table.js'
import type { ApplyResult, EventSpec } from '../src/eventfold/types.js'

type Spec = EventSpec<PartitionTableEvent, PartitionTable, PartitionTableOutput>

// ---------------------------------------------------------------------------------------------
// Operations and a runner
// ---------------------------------------------------------------------------------------------

/** Ids chosen to exercise string ordering: empty, case, non-ASCII, astral, prefixes. */
const POOL = ['peer-1', 'peer-2', 'a', 'ab', 'B', 'é', '😀', ''] as const

type Op =
  | { readonly kind: 'join', readonly id: string }
  | { readonly kind: 'leave', readonly pick: number }
  | { readonly kind: 'move', readonly partition: number, readonly pick: number }
  | { readonly kind: 'rebalance' }
  | { readonly kind: 'configure', readonly partitions: number }

const joinArb: fc.Arbitrary<Op> = fc.constantFrom(...POOL).map((id) => ({ kind: 'join' as const, id }))
const leaveArb: fc.Arbitrary<Op> = fc.nat().map((pick) => ({ kind: 'leave' as const, pick }))
const moveArb: fc.Arbitrary<Op> = fc.record({ partition: fc.nat(), pick: fc.nat() })
  .map(({ partition, pick }) => ({ kind: 'move' as const, partition, pick }))
const rebalanceArb: fc.Arbitrary<Op> = fc.constant({ kind: 'rebalance' as const })
const configureArb: fc.Arbitrary<Op> = fc.integer({ min: 1, max: 40 })
  .map((partitions) => ({ kind: 'configure' as const, partitions }))

const membershipOps = fc.array(fc.oneof(joinArb, leaveArb), { maxLength: 40 })
const anyOps = fc.array(
  fc.oneof(
    { arbitrary: joinArb, weight: 3 },
    { arbitrary: leaveArb, weight: 2 },
    { arbitrary: moveArb, weight: 4 },
    { arbitrary: rebalanceArb, weight: 1 },
    { arbitrary: configureArb, weight: 1 }
  ),
  { maxLength: 50 }
)
const partitionCount = fc.integer({ min: 1, max: 40 })

/** Turns an op into a concrete spec call against `state`. */
function step (spec: Spec, op: Op, state: PartitionTable): { state: PartitionTable, result?: ApplyResult<PartitionTable, PartitionTableOutput> } {
  const n = state.participants.length
  switch (op.kind) {
    case 'join':
      return { state: spec.join?.(op.id, state) ?? state }
    case 'leave': {
      const id = state.participants[op.pick % Math.max(1, n)]
      return { state: id === undefined ? state : spec.unjoin?.(id, state) ?? state }
    }
    case 'move': {
      const to = state.participants[op.pick % Math.max(1, n)] ?? 'nobody'
      return applied(spec.apply({ type: 'move', partition: op.partition % state.partitions, to }, state), state)
    }
    case 'rebalance':
      return applied(spec.apply({ type: 'rebalance' }, state), state)
    case 'configure':
      return applied(spec.apply({ type: 'configure', partitions: op.partitions }, state), state)
  }
}

function applied (result: ApplyResult<PartitionTable, PartitionTableOutput>, state: PartitionTable): { state: PartitionTable, result: ApplyResult<PartitionTable, PartitionTableOutput> } {
  return { state: result.ok ? result.state : state, result }
}

function run (spec: Spec, ops: readonly Op[]): PartitionTable {
  let state = spec.init()
  for (const op of ops) state = step(spec, op, state).state
  return state
}

// ---------------------------------------------------------------------------------------------
// Independent oracles
// ---------------------------------------------------------------------------------------------

function changes (a: PartitionTable, b: PartitionTable): number[] {
  const moved: number[] = []
  for (let i = 0; i < Math.max(a.partitions, b.partitions); i++) {
    if (i >= a.partitions || i >= b.partitions || a.owners[i] !== b.owners[i]) moved.push(i)
  }
  return moved
}

/**
 * Fewest owner changes that turn `owners` into a balanced assignment over `participants`,
 * by brute force over every choice of which `P mod n` participants get the `ceil` targets:
 * a participant holding `c` with target `t` must give up `max(0, c - t)`, and partitions of
 * non-participants (or nobody) must all move.
 */
function bruteForceMinimum (owners: ReadonlyArray<string | null>, participants: readonly string[]): number {
  const P = owners.length
  const n = participants.length
  if (n === 0) return owners.filter((o) => o !== null).length
  const held = participants.map((p) => owners.filter((o) => o === p).length)
  const orphaned = P - held.reduce((x, y) => x + y, 0)
  const q = Math.floor(P / n)
  const r = P % n
  let best = Infinity
  for (let mask = 0; mask < 1 << n; mask++) {
    let bits = 0
    for (let k = 0; k < n; k++) if ((mask & (1 << k)) !== 0) bits++
    if (bits !== r) continue
    let cost = orphaned
    for (let k = 0; k < n; k++) cost += Math.max(0, (held[k] ?? 0) - (q + ((mask & (1 << k)) !== 0 ? 1 : 0)))
    best = Math.min(best, cost)
  }
  return best
}

function counts (table: PartitionTable): number[] {
  return table.participants.map((p) => table.owners.filter((o) => o === p).length)
}

function assertBalanced (table: PartitionTable): void {
  assert.equal(table.owners.length, table.partitions)
  const n = table.participants.length
  assert.deepEqual([...table.participants], [...new Set(table.participants)].sort(), 'participants sorted, unique')
  if (n === 0) {
    assert.ok(table.owners.every((o) => o === null), 'no participants: all unowned')
    return
  }
  assert.ok(table.owners.every((o) => o !== null && table.participants.includes(o)), 'every owner is a participant')
  const q = Math.floor(table.partitions / n)
  for (const c of counts(table)) assert.ok(c === q || c === q + 1, `count ${c} not in {${q}, ${q + 1}}`)
  assert.ok(isBalanced(table))
}

function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** An equal value built in a different insertion order (keys reversed), with fresh arrays. */
function rebuilt<T> (value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => rebuilt(v)) as T
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, rebuilt(v)])) as T
  }
  return value
}

function withoutVersion (t: PartitionTable): unknown {
  return { partitions: t.partitions, owners: t.owners, participants: t.participants }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe('partition table: balance and minimal movement', () => {
  it('after any sequence of joins and leaves every participant owns floor(P/n) or ceil(P/n)', () => {
    fc.assert(fc.property(partitionCount, membershipOps, (P, ops) => {
      const spec = partitionTableSpec(P)
      let state = spec.init()
      const expected = new Set<string>()
      for (const op of ops) {
        if (op.kind === 'join') expected.add(op.id)
        if (op.kind === 'leave') {
          const id = state.participants[op.pick % Math.max(1, state.participants.length)]
          if (id !== undefined) expected.delete(id)
        }
        state = step(spec, op, state).state
        assertBalanced(state)
        assert.deepEqual([...state.participants], [...expected].sort())
      }
    }), propertyParameters('balanced after joins and leaves', 200))
  })

  it('every join, leave, rebalance and configure moves exactly the minimum number of partitions', () => {
    fc.assert(fc.property(partitionCount, anyOps, (P, ops) => {
      const spec = partitionTableSpec(P)
      let state = spec.init()
      for (const op of ops) {
        const before = state
        const { state: after, result } = step(spec, op, state)
        state = after
        // Manual moves may unbalance, by design; so may a no-op join of a present participant.
        if (op.kind === 'move' || (op.kind === 'join' && before.participants.includes(op.id))) continue
        assertBalanced(after)
        if (op.kind === 'configure') {
          const resized = Array.from({ length: after.partitions }, (_, i) => i < before.partitions ? (before.owners[i] ?? null) : null)
          const minimum = bruteForceMinimum(resized, after.participants)
          assert.equal(changes({ ...before, owners: resized, partitions: after.partitions }, after).length, minimum)
          assert.deepEqual(result?.ok === true ? result.output : undefined, { type: 'configured', partitions: op.partitions, moved: minimum })
        } else {
          const minimum = bruteForceMinimum(before.owners, after.participants)
          assert.equal(changes(before, after).length, minimum, `${op.kind} moved more than the minimum`)
          if (op.kind === 'rebalance') assert.deepEqual(result?.ok === true ? result.output : undefined, { type: 'rebalanced', moved: minimum })
        }
      }
    }), propertyParameters('minimal moves', 300))
  })

  it('from a balanced table a join moves partitions only to the joiner, and a leave moves only the departed participant\'s partitions', () => {
    fc.assert(fc.property(partitionCount, membershipOps, (P, ops) => {
      const spec = partitionTableSpec(P)
      let state = spec.init()
      for (const op of ops) {
        const before = state
        state = step(spec, op, state).state
        const moved = changes(before, state)
        if (op.kind === 'join' && !before.participants.includes(op.id)) {
          for (const i of moved) assert.equal(state.owners[i], op.id)
          if (before.participants.length > 0) {
            assert.equal(moved.length, Math.floor(P / state.participants.length), 'joiner receives floor(P/n)')
          }
        }
        if (op.kind === 'leave' && before.participants.length > 0) {
          const departed = before.participants.find((p) => !state.participants.includes(p))
          assert.deepEqual(moved, before.owners.flatMap((o, i) => o === departed ? [i] : []))
        }
      }
    }), propertyParameters('join/leave move only what they must', 200))
  })

  it('a move reassigns exactly one partition and a rebalance afterwards restores balance', () => {
    fc.assert(fc.property(partitionCount, anyOps, fc.nat(), fc.nat(), (P, ops, partition, pick) => {
      const spec = partitionTableSpec(P)
      const state = run(spec, [...ops, { kind: 'join', id: 'mover' }])
      const to = state.participants[pick % state.participants.length] ?? 'mover'
      const p = partition % state.partitions
      const r = spec.apply({ type: 'move', partition: p, to }, state)
      assert.ok(r.ok)
      assert.deepEqual(r.output, { type: 'moved', partition: p, from: state.owners[p], to })
      assert.equal(ownerOf(r.state, p), to)
      assert.deepEqual(changes(state, r.state), state.owners[p] === to ? [] : [p])
      const b = spec.apply({ type: 'rebalance' }, r.state)
      assert.ok(b.ok)
      assertBalanced(b.state)
    }), propertyParameters('move then rebalance', 200))
  })
})

describe('partition table: immutability, determinism, versions', () => {
  it('the spec never mutates its input state or event (deep-frozen inputs)', () => {
    fc.assert(fc.property(partitionCount, anyOps, anyOps, (P, prefix, ops) => {
      const spec = partitionTableSpec(P)
      let state = deepFreeze(run(spec, prefix))
      for (const op of ops) {
        const snapshot = JSON.stringify(state)
        const next = step(spec, op, state).state
        assert.equal(JSON.stringify(state), snapshot)
        state = deepFreeze(next)
      }
      // Every event type directly, with frozen events too.
      const events: PartitionTableEvent[] = [
        { type: 'rebalance' },
        { type: 'configure', partitions: P + 1 },
        { type: 'move', partition: 0, to: state.participants[0] ?? 'x' }
      ]
      for (const e of events) {
        const snapshot = JSON.stringify(state)
        spec.apply(deepFreeze(e), state)
        assert.equal(JSON.stringify(state), snapshot)
      }
    }), propertyParameters('no mutation', 200))
  })

  it('the same sequence gives the same table regardless of repetition, codec round trips or property insertion order', () => {
    fc.assert(fc.property(partitionCount, anyOps, (P, ops) => {
      const spec = partitionTableSpec(P)
      const direct = run(spec, ops)
      assert.deepEqual(run(spec, ops), direct)
      assert.deepEqual(run(partitionTableSpec(P), ops), direct)
      // As if every step happened on a different machine that decoded the state afresh.
      let state = spec.init()
      for (const op of ops) {
        const first = step(spec, op, state).state
        const again = step(spec, op, rebuilt(JSON.parse(JSON.stringify(state)) as PartitionTable)).state
        assert.deepEqual(again, first, 'called twice on equal states: equal results')
        state = rebuilt(JSON.parse(JSON.stringify(first)) as PartitionTable)
      }
      assert.deepEqual(state, direct)
      assert.deepEqual(JSON.parse(JSON.stringify(direct)), direct, 'state is JSON-like')
    }), propertyParameters('deterministic', 200))
  })

  it('joining the same participants in any order gives sorted participants and a balanced table', () => {
    fc.assert(fc.property(partitionCount, fc.uniqueArray(fc.string({ maxLength: 6 }), { minLength: 1, maxLength: 8 }), fc.nat(), (P, ids, seed) => {
      const spec = partitionTableSpec(P)
      const permuted = [...ids].sort((a, b) => (fnv1a32(new TextEncoder().encode(a + String(seed))) - fnv1a32(new TextEncoder().encode(b + String(seed)))) || (a < b ? -1 : a > b ? 1 : 0))
      const one = ids.reduce((s, id) => spec.join?.(id, s) ?? s, spec.init())
      const two = permuted.reduce((s, id) => spec.join?.(id, s) ?? s, spec.init())
      assertBalanced(one)
      assertBalanced(two)
      assert.deepEqual(one.participants, two.participants)
      assert.deepEqual([...counts(one)].sort(), [...counts(two)].sort())
      assert.equal(one.version, two.version)
    }), propertyParameters('insertion order', 200))
  })

  it('the version bumps by one exactly when the table changes', () => {
    fc.assert(fc.property(partitionCount, anyOps, (P, ops) => {
      const spec = partitionTableSpec(P)
      let state = spec.init()
      assert.equal(state.version, 0)
      for (const op of ops) {
        const next = step(spec, op, state).state
        const changed = JSON.stringify(withoutVersion(next)) !== JSON.stringify(withoutVersion(state))
        assert.equal(next.version, state.version + (changed ? 1 : 0))
        if (!changed) assert.equal(next, state, 'no change: same state object')
        state = next
      }
    }), propertyParameters('version', 200))
  })

  it('joining a present participant or removing an absent one changes nothing', () => {
    const spec = partitionTableSpec(4)
    const t = spec.join?.('a', spec.init()) ?? spec.init()
    assert.equal(spec.join?.('a', t), t)
    assert.equal(spec.unjoin?.('b', t), t)
    const empty = spec.unjoin?.('a', t)
    assert.deepEqual(empty?.owners, [null, null, null, null])
    assert.deepEqual(empty?.participants, [])
  })
})

describe('partition table: totality and system errors', () => {
  it('apply never throws on any value, and every failure is a system error', () => {
    fc.assert(fc.property(partitionCount, anyOps, fc.anything(), (P, ops, value) => {
      const spec = partitionTableSpec(P)
      const state = deepFreeze(run(spec, ops))
      const r = spec.apply(value as PartitionTableEvent, state)
      if (!r.ok) {
        assert.equal(r.output.type, 'error')
        assert.equal('state' in r, false)
      }
    }), propertyParameters('total on anything', 300))
  })

  it('invalid events give system errors', () => {
    fc.assert(fc.property(partitionCount, membershipOps, (P, ops) => {
      const spec = partitionTableSpec(P)
      const state = run(spec, [...ops, { kind: 'join', id: 'a' }])
      const invalid: unknown[] = [
        null, undefined, 42, 'rebalance', [], {}, { type: 'nope' }, { type: 7 },
        { type: 'move', partition: -1, to: 'a' },
        { type: 'move', partition: P, to: 'a' },
        { type: 'move', partition: 0.5, to: 'a' },
        { type: 'move', partition: Number.NaN, to: 'a' },
        { type: 'move', partition: '0', to: 'a' },
        { type: 'move', partition: 0, to: 'not-a-participant' },
        { type: 'move', partition: 0, to: 7 },
        { type: 'move', partition: 0 },
        { type: 'configure', partitions: 0 },
        { type: 'configure', partitions: -3 },
        { type: 'configure', partitions: 2.5 },
        { type: 'configure', partitions: MAX_PARTITIONS + 1 },
        { type: 'configure', partitions: Number.POSITIVE_INFINITY },
        { type: 'configure', partitions: '8' },
        { type: 'configure' }
      ]
      for (const e of invalid) {
        const r = spec.apply(e as PartitionTableEvent, state)
        assert.equal(r.ok, false, `expected a system error for ${String(JSON.stringify(e))}`)
        assert.equal(r.output.type, 'error')
      }
    }), propertyParameters('invalid events', 50))
  })

  it('partitionTableSpec rejects invalid partition counts', () => {
    for (const p of [0, -1, 1.5, Number.NaN, MAX_PARTITIONS + 1]) {
      assert.throws(() => partitionTableSpec(p), RangeError)
    }
    assert.equal(partitionTableSpec(MAX_PARTITIONS).init().owners.length, MAX_PARTITIONS)
  })
})

describe('partition table: queries', () => {
  it('fnv1a32 matches the reference vectors', () => {
    const enc = new TextEncoder()
    assert.equal(fnv1a32(new Uint8Array()), 0x811c9dc5)
    assert.equal(fnv1a32(enc.encode('a')), 0xe40c292c)
    assert.equal(fnv1a32(enc.encode('foobar')), 0xbf9cf968)
  })

  it('partitionForKey is in range and a string maps like its UTF-8 bytes', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: MAX_PARTITIONS }), fc.string({ unit: 'grapheme' }), (P, key) => {
      const table = partitionTableSpec(Math.min(P, 64)).init()
      const p = partitionForKey(table, key)
      assert.ok(Number.isInteger(p) && p >= 0 && p < table.partitions)
      assert.equal(partitionForKey(table, new TextEncoder().encode(key)), p)
    }), propertyParameters('partitionForKey', 200))
  })

  it('ownerOf and partitionsOf agree with the owners array', () => {
    fc.assert(fc.property(partitionCount, anyOps, (P, ops) => {
      const table = run(partitionTableSpec(P), ops)
      const all = table.participants.flatMap((p) => partitionsOf(table, p))
      assert.equal(all.length, table.owners.filter((o) => o !== null).length)
      for (const p of table.participants) for (const i of partitionsOf(table, p)) assert.equal(ownerOf(table, i), p)
      assert.equal(ownerOf(table, -1), null)
      assert.equal(ownerOf(table, table.partitions), null)
    }), propertyParameters('ownerOf/partitionsOf', 100))
  })

  it('formatPartitionTable renders one line per owner', () => {
    const spec = partitionTableSpec(8)
    let t = spec.init()
    assert.equal(formatPartitionTable(t), 'partition table v0: 8 partitions, 0 participants\n  (unowned)  8  0-7')
    for (const id of ['12D3KooWAbcdefQm3xYz', '12D3KooWZyxwvuAb12cd', 'c']) t = spec.join?.(id, t) ?? t
    const text = formatPartitionTable(t)
    const lines = text.split('\n')
    assert.equal(lines[0], 'partition table v3: 8 partitions, 3 participants')
    assert.equal(lines.length, 4)
    assert.match(text, /…Qm3xYz\s+[23]\s/)
    assert.match(text, /…Ab12cd\s+[23]\s/)
    assert.match(text, /\n {2}c\s+[23]\s/)
  })
})
