/**
 * Sync (src/peer/sync.ts) on stubs: what a participant's refusal of one group in a sync answer
 * tells the asker. A cluster-wide group follows the cluster, so a participant that had merged
 * this peer's Join and refuses it there as a non-participant means this peer is out of that
 * group for good (its Join there was dropped, or it was removed): it rejoins, which adds it to
 * every cluster-wide group again. A managed group refusing it says nothing about the cluster.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Sync } from '../src/peer/sync.js'
import { Lifecycle, type SomeReplica } from '../src/peer/lifecycle.js'
import { encodeSyncAnswer, type SyncResult } from '../src/peer/protocol/sync.js'
import { DEFAULT_DECODE_LIMITS } from '../src/codec/codec.js'
import type { SyncComponents } from '../src/peer/sync.js'
import { within } from './support/deadline.js'

/** Peer `a`, a member holding the cluster's group, cluster-wide group `cw` and managed group `m`; `b` answers every sync with `answer`. */
function asker (answer: SyncResult[], witnessed: boolean): { sync: Sync, replicas: Map<string, SomeReplica>, refusals: string[] } {
  const lifecycle = new Lifecycle()
  const incarnation = lifecycle.newIncarnation()
  const replica = (id: string, membership: 'cluster' | 'managed'): SomeReplica => ({ id, definition: { id, membership }, syncing: new Set<string>(), fold: {} }) as unknown as SomeReplica
  incarnation.groups.set('', replica('', 'cluster'))
  incarnation.groups.set('cw', replica('cw', 'cluster'))
  incarnation.groups.set('m', replica('m', 'managed'))
  lifecycle.becomeMember(incarnation)
  const refusals: string[] = []
  const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })
  const components = {
    network: { request: async () => encodeSyncAnswer(answer) },
    inbound: { countOut: () => {}, protocol: (name: string) => name, admitAnswer: () => true },
    lifecycle,
    intake: { full: () => undefined, adopt: () => 'merged' },
    allows: () => true,
    witnessedMyJoin: () => witnessed,
    refusedAsNonParticipant: (peer: string, what: string) => { refusals.push(`${peer}: ${what}`) },
    counters: { syncsRequested: 0 },
    limits: DEFAULT_DECODE_LIMITS,
    log,
    now: () => 0
  } as unknown as SyncComponents
  return { sync: new Sync(components), replicas: incarnation.groups, refusals }
}

/** Asks `b` for `groups` and waits until the pull ended (every replica's `syncing` mark is cleared). */
async function pull (a: ReturnType<typeof asker>, groups: string[]): Promise<void> {
  a.sync.request('b', groups.map(group => ({ group, full: false })))
  assert.ok(groups.every(g => a.replicas.get(g)!.syncing.has('b')), 'the pull started')
  await within((async () => { while (groups.some(g => a.replicas.get(g)!.syncing.size > 0)) await new Promise(resolve => setImmediate(resolve)) })(), 5000, 'the pull ends')
}

test('a participant that merged this peer\'s Join refusing it in a cluster-wide group as a non-participant makes it rejoin', async () => {
  const a = asker([{ group: 'cw', kind: 'refused', code: 'not-participant' }], true)
  await pull(a, ['cw'])
  assert.deepEqual(a.refusals, ['b: a sync of group cw'])
})

test('the cluster\'s own group refused per group counts the same', async () => {
  const a = asker([{ group: '', kind: 'refused', code: 'not-participant' }], true)
  await pull(a, [''])
  assert.deepEqual(a.refusals, ['b: a sync of group (cluster)'])
})

test('a managed group refused as a non-participant, a cluster-wide one refused for another reason, or a refusal from a peer that had not merged this peer\'s Join does not make it rejoin', async () => {
  const managed = asker([{ group: 'm', kind: 'refused', code: 'not-participant' }], true)
  await pull(managed, ['m'])
  const other = asker([{ group: 'cw', kind: 'refused', code: 'unknown-group' }], true)
  await pull(other, ['cw'])
  const unwitnessed = asker([{ group: 'cw', kind: 'refused', code: 'not-participant' }], false)
  await pull(unwitnessed, ['cw'])
  assert.deepEqual([...managed.refusals, ...other.refusals, ...unwitnessed.refusals], [])
})
