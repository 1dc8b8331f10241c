/**
 * The owner (src/keyspace/owner.ts) on stubs: an `agreed` request needs `minReplicas` replicas
 * of its partition (capped by the table's replication and members). Held by fewer, nothing is
 * applied and the answer is `unavailable` (the caller retries elsewhere or later); folded on
 * fewer (the others left meanwhile), the input stays applied but the answer is `timeout`: its
 * outcome is not known, since a replica alone may be one side of a split. Only replicas the
 * table lists as owners count: a partition whose owners all left is restored from the last
 * one's copy, which holds nothing folded without it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Owner } from '../src/keyspace/owner.js'
import { newKeyspaceCounters, type PartitionGroups, type TableView } from '../src/keyspace/context.js'
import type { KeyspaceTable, PartitionAssignment } from '../src/keyspace/table.js'
import type { PartitionOutput, PartitionRequest } from '../src/keyspace/partition-state.js'
import { stringKeys } from '../src/keyspace/partition-state.js'
import { jsonCodec } from '../src/codec/json.js'
import { DEFAULT_DECODE_LIMITS, encodeWith, type Codec } from '../src/codec/codec.js'
import type { RequestMessage } from '../src/keyspace/wire.js'
import { ManualClock, settleTurns } from './support/fake-network.js'

const assignment: PartitionAssignment = { generation: 1, owners: ['a', 'b', 'c'], incoming: [], outgoing: [], abandoned: [], founder: null, lastOwner: null, dataSince: 1 }

/** Owner `a` of partition 0 (R = 3 of members a - d); its group's participants are `settled` and `projected`. */
function ownerA (participants: { settled: string[], projected: string[] }, minReplicas = 2) {
  let table: KeyspaceTable = { partitions: 1, replication: 3, version: 1, members: ['a', 'b', 'c', 'd'], draining: [], assignments: [assignment] }
  const applied: unknown[] = []
  let fold: (() => void) | undefined
  const group = {
    held: () => true,
    participants: () => participants,
    applyFast: () => [],
    // Folds once the test says so; the participants may have changed by then.
    applyConsistent: async (batch: Array<PartitionRequest<string, unknown>>): Promise<Array<PartitionOutput<string>>> => {
      applied.push(...batch.map(r => r.input))
      await new Promise<void>(resolve => { fold = resolve })
      return batch.map(() => ({ ok: true, output: 'old value' }))
    }
  }
  const counters = newKeyspaceCounters()
  const clock = new ManualClock()
  const owner = new Owner<string, unknown, string, unknown>({
    self: 'a',
    clock,
    log: Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) as never,
    table: { current: () => table } as unknown as TableView,
    counters,
    groups: { get: () => group } as unknown as PartitionGroups<string, unknown, string, unknown>,
    keys: stringKeys,
    input: jsonCodec as unknown as Codec<unknown>,
    output: jsonCodec as unknown as Codec<string>,
    limits: DEFAULT_DECODE_LIMITS,
    minReplicas,
    idle: () => {}
  })
  const message = (input: string): RequestMessage => ({ version: 1, partition: 0, generation: 1, budgetMs: 10_000, consistency: 'agreed', key: new TextEncoder().encode('k'), input: encodeWith(jsonCodec, input) })
  return {
    owner,
    applied,
    counters,
    message,
    fold: () => { fold?.() },
    setParticipants: (p: { settled: string[], projected: string[] }) => { participants = p },
    setAssignment: (a: Partial<PartitionAssignment>) => { table = { ...table, version: table.version + 1, assignments: [{ ...table.assignments[0]!, ...a }] } }
  }
}

test('an agreed request to a partition held by fewer replicas than minReplicas is not applied: answered unavailable', async () => {
  // b and c left: their UnJoins are pending (not in the projected participants).
  const a = ownerA({ settled: ['a', 'b', 'c'], projected: ['a'] })
  const reply = await a.owner.request(a.message('x'))
  assert.equal(reply.kind, 'unavailable')
  assert.match((reply as { message: string }).message, /1 replica\(s\) of the partition hold it here, fewer than the 2/)
  assert.deepEqual(a.applied, [], 'nothing applied')
})

test('an agreed request whose input folded after the other replicas left is answered timeout (outcome unknown), and counted', async () => {
  const a = ownerA({ settled: ['a', 'b', 'c'], projected: ['a', 'b', 'c'] })
  const reply = a.owner.request(a.message('x'))
  await settleTurns(20)
  assert.deepEqual(a.applied, ['x'], 'applied while three replicas held it')
  a.setParticipants({ settled: ['a'], projected: ['a'] })
  a.fold()
  const r = await reply
  assert.equal(r.kind, 'timeout')
  assert.match((r as { message: string }).message, /folded on 1 replica\(s\) of the partition, fewer than the 2 .* stays applied/)
  assert.equal(a.counters.tooFewReplicas, 1)
})

test('two replicas of three are enough by default; with minReplicas 1 one is, and minReplicas is capped by the members', async () => {
  const two = ownerA({ settled: ['a', 'c'], projected: ['a', 'c'] })
  const r2 = two.owner.request(two.message('x'))
  await settleTurns(20)
  two.fold()
  assert.equal((await r2).kind, 'ok')
  const one = ownerA({ settled: ['a'], projected: ['a'] }, 1)
  const r1 = one.owner.request(one.message('x'))
  await settleTurns(20)
  one.fold()
  assert.equal((await r1).kind, 'ok')
  const capped = ownerA({ settled: ['a', 'b', 'c'], projected: ['a', 'b', 'c'] }, 9)
  const r9 = capped.owner.request(capped.message('x'))
  await settleTurns(20)
  capped.fold()
  assert.equal((await r9).kind, 'ok', 'capped by the replication (3)')
})

test('only replicas the table lists as owners count: an incoming replica holding the group does not', async () => {
  const a = ownerA({ settled: ['a', 'd'], projected: ['a', 'd'] })
  a.setAssignment({ owners: ['a'], incoming: ['d'] })
  const reply = await a.owner.request(a.message('x'))
  assert.equal(reply.kind, 'unavailable')
  assert.match((reply as { message: string }).message, /1 replica\(s\) of the partition hold it here, fewer than the 2/)
  assert.deepEqual(a.applied, [], 'nothing applied')
})

test('an agreed request whose input folded only on replicas the table no longer lists as owners is answered timeout: the partition restores from its last owner, which stood aside', async () => {
  // Harsh seed 214 with R = 2: both owners were ejected while the input waited; the table made
  // one of them the last owner (its copy restores the partition), and the input folded among a
  // releasing and an incoming replica, standing in for both owners: the restore lacked it.
  const a = ownerA({ settled: ['a', 'b', 'c', 'd'], projected: ['a', 'b', 'c', 'd'] })
  const reply = a.owner.request(a.message('x'))
  await settleTurns(20)
  assert.deepEqual(a.applied, ['x'])
  a.setAssignment({ owners: [], incoming: ['a', 'd'], lastOwner: { peer: 'b', generation: 1 } })
  a.setParticipants({ settled: ['a', 'b', 'c', 'd'], projected: ['a', 'd'] })
  a.fold()
  const r = await reply
  assert.equal(r.kind, 'timeout')
  assert.match((r as { message: string }).message, /folded on 0 replica\(s\) of the partition, fewer than the 2/)
  assert.equal(a.counters.tooFewReplicas, 1)
})
