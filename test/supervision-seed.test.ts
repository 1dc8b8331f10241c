/**
 * The seed's example, reproduced: a key-value server with a deliberate crash, in a tree of a
 * one-for-one supervisor over `kv1` and a rest-for-one supervisor over `kv2`, `kv3`. The crash
 * of `kv2` restarts `kv2` and `kv3`, in the seed transcript's order, and leaves `kv1` alone.
 * (The seed prints "Calling kv2: Store x 1" before the servers start only because its client
 * thread races the event loop's start-up; here the tree is started before anyone calls.)
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { kvStore } from '../demo/kv-store.js'
import {
  ManualClock, ServerCrashedError, startSupervision, supervisor, worker, type SupervisionEvent
} from '../src/supervision/index.js'
import { until } from './support/supervision-stubs.js'

test("the seed's transcript: kv2's crash restarts kv2 then kv3, in order, and not kv1", { timeout: 10_000 }, async () => {
  const lines: string[] = []
  const events: SupervisionEvent[] = []
  const kv = kvStore((line) => lines.push(line))
  const clock = new ManualClock()
  const kv2 = worker('kv2', kv)
  const tree = await startSupervision(
    supervisor('root', { strategy: 'one_for_one' }, [
      worker('kv1', kv),
      supervisor('rest', { strategy: 'rest_for_one' }, [kv2, worker('kv3', kv)])
    ]),
    {
      queueCapacity: 128,
      clock,
      onEvent: (e) => {
        events.push(e)
        if (e.type === 'crashed') lines.push(`${e.child} threw: ${e.error instanceof Error ? e.error.message : String(e.error)}`)
      }
    })

  await tree.call(kv2, { op: 'store', key: 'x', value: 1 })
  const r0 = await tree.call(kv2, { op: 'lookup', key: 'x' })
  assert.deepEqual(r0, { result: 1 })

  await assert.rejects(tree.call(kv2, { op: 'lookup', key: 'crash' }), (err: unknown) => {
    assert.ok(err instanceof ServerCrashedError)
    assert.equal(err.server, 'kv2')
    assert.match(String((err.cause as Error).message), /division by zero/i)
    return true
  })
  const r1 = await tree.call(kv2, { op: 'lookup', key: 'x' })
  assert.deepEqual(r1, { result: null }, 'the restarted kv2 starts from an empty state, as in the seed')
  const r2 = await tree.call(kv2, { op: 'lookup', key: 'y' })
  assert.deepEqual(r2, { result: null })

  assert.deepEqual(lines, [
    'KV store starting: kv1',
    'KV store starting: kv2',
    'KV store starting: kv3',
    'kv2 threw: Division by zero',
    'KV store terminating: kv2',
    'KV store terminating: kv3',
    'KV store starting: kv2',
    'KV store starting: kv3'
  ])

  // The same story in the tree's own events: every worker start and stop, in order.
  const lifecycle = events
    .filter((e) => (e.type === 'starting' || e.type === 'terminating') && e.kind === 'worker')
    .map((e) => `${e.type} ${'child' in e ? e.child : ''}`)
  assert.deepEqual(lifecycle, [
    'starting kv1', 'starting kv2', 'starting kv3',
    'terminating kv2', 'terminating kv3',
    'starting kv2', 'starting kv3'
  ])
  const decided = events.find((e) => e.type === 'decided')
  assert.ok(decided !== undefined && decided.type === 'decided')
  assert.equal(decided.supervisor, 'rest')
  assert.deepEqual(decided.decision, { kind: 'restart', child: 'kv2', stop: ['kv3'], remove: [], start: ['kv2', 'kv3'], delayMs: 0, attempt: 0 })

  // kv2 answers as soon as it runs; kv3's start may still be finishing.
  await until(clock, () => tree.whichChildren('rest').every((c) => c.status.kind === 'running'), 'kv3 running')
  const root = tree.whichChildren()
  assert.equal(root[0]!.id, 'kv1')
  assert.deepEqual(root[0]!.status, { kind: 'running', incarnation: 1, since: 0 }, 'kv1 was left alone')
  assert.equal(root[0]!.restarts, 0)
  const rest = tree.whichChildren('rest')
  assert.deepEqual(rest.map((c) => [c.id, c.status.kind, c.status.incarnation, c.restarts]), [
    ['kv2', 'running', 2, 1],
    ['kv3', 'running', 2, 1]
  ])

  assert.deepEqual(await tree.stop(), { kind: 'shutdown' })
  assert.deepEqual(lines.slice(8), ['KV store terminating: kv3', 'KV store terminating: kv2', 'KV store terminating: kv1'],
    'a tree stops in reverse order, depth first')
})
