/**
 * Specification of children added and removed at run time (simple_one_for_one and dynamic
 * children of the other strategies) and of introspection: which children, their lifecycle,
 * restart counts, counts by kind, the whole tree.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  DuplicateChildError, ManualClock, startSupervision, supervisor, UnknownChildError, UnknownServerError, worker
} from '../src/supervision/index.js'
import { stub, track, until } from './support/supervision-stubs.js'

const T = { timeout: 10_000 }

test('simple_one_for_one: children added at run time, restarted one for one, removed when terminated', T, async () => {
  const clock = new ManualClock()
  const log: string[] = []
  const s = stub(log)
  const tree = await startSupervision(supervisor('root', {}, [supervisor('pool', { strategy: 'simple_one_for_one', intensity: 10 })]), { clock })
  assert.deepEqual(tree.whichChildren('pool'), [])
  await tree.startChild('pool', worker('w1', s))
  await tree.startChild('pool', worker('w2', s))
  await assert.rejects(tree.startChild('pool', worker('w1', s)), DuplicateChildError)
  await assert.rejects(tree.startChild('pool', worker('pool', s)), DuplicateChildError, 'ids are unique in the whole tree')
  assert.equal(await tree.call('w2', 'x'), 'x:1')
  await assert.rejects(tree.call('w1', 'crash'))
  await until(clock, () => tree.whichChildren('pool')[0]!.status.incarnation === 2, 'w1 restarted')
  assert.deepEqual(tree.whichChildren('pool').map((c) => [c.id, c.status.incarnation, c.restarts]), [['w1', 2, 1], ['w2', 1, 0]])
  await tree.terminateChild('pool', 'w1')
  assert.deepEqual(tree.whichChildren('pool').map((c) => c.id), ['w2'])
  await assert.rejects(tree.call('w1', 'x'), UnknownServerError)
  await tree.startChild('pool', worker('w1', s))
  assert.equal(await tree.call('w1', 'x'), 'x:1', 'an id freed by removal can be used again')
  await tree.stop()
})

test('simple_one_for_one stops its children all at once, not one after the other', T, async () => {
  const clock = new ManualClock()
  const never = async (): Promise<void> => await new Promise<void>(() => {})
  const s = stub([], { terminateGate: never })
  const tree = await startSupervision(supervisor('root', {}, [supervisor('pool', { strategy: 'simple_one_for_one' })]), { clock })
  for (const id of ['w1', 'w2', 'w3']) await tree.startChild('pool', worker(id, s, { shutdown: 1000 }))
  const stopping = track(tree.stop())
  await clock.advance(1000)
  await until(clock, () => stopping.state() === 'resolved', 'stopped')
  assert.equal(clock.now(), 1000, 'three hanging terminates cost one shutdown time, not three')
})

test('dynamic children of a one_for_one supervisor; restartChild and deleteChild act on stopped children only', T, async () => {
  const clock = new ManualClock()
  const log: string[] = []
  const s = stub(log)
  const tree = await startSupervision(supervisor('root', {}, [worker('a', s, { restart: 'transient' })]), { clock })
  await tree.startChild('root', supervisor('sub', {}, [worker('b', s), worker('c', s)]))
  assert.deepEqual(log, ['start a', 'start b', 'start c'], 'a subtree added at run time starts depth first')
  assert.equal(await tree.call('c', 'x'), 'x:1')
  assert.equal(await tree.restartChild('root', 'a'), 'not-stopped')
  assert.equal(await tree.call('a', 'stop'), 'stopping')
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'stopped', 'a stopped normally')
  assert.equal(await tree.restartChild('root', 'a'), 'restarted')
  assert.equal(await tree.call('a', 'x'), 'x:1')
  await tree.terminateChild('root', 'sub')
  assert.deepEqual(tree.whichChildren().map((c) => [c.id, c.status.kind]), [['a', 'running'], ['sub', 'stopped']], 'a permanent child is kept, stopped')
  assert.equal(await tree.deleteChild('root', 'a'), 'not-stopped')
  assert.equal(await tree.deleteChild('root', 'sub'), 'deleted')
  await assert.rejects(tree.call('b', 'x'), UnknownServerError, 'its subtree went with it')
  await tree.startChild('root', worker('b', s))
  assert.equal(await tree.call('b', 'x'), 'x:1', 'the subtree\'s ids are free again')
  await assert.rejects(tree.terminateChild('root', 'nobody'), UnknownChildError)
  assert.throws(() => tree.whichChildren('nobody'), UnknownChildError)
  await tree.stop()
})

test('a dynamic child whose init fails is not added, and a supervisor that restarts forgets its dynamic children', T, async () => {
  const clock = new ManualClock()
  const s = stub([])
  const bad = stub([], { initError: () => new Error('nope') })
  const tree = await startSupervision(supervisor('root', { strategy: 'one_for_all', intensity: 10 }, [
    worker('a', s), supervisor('sub', {}, [])
  ]), { clock })
  await assert.rejects(tree.startChild('sub', worker('bad', bad)), /nope/)
  assert.deepEqual(tree.whichChildren('sub'), [])
  await tree.startChild('sub', worker('d', s))
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren()[1]!.status.incarnation === 2, 'sub restarted by one_for_all')
  assert.deepEqual(tree.whichChildren('sub'), [], 'as OTP: a restarted supervisor starts from its declared children')
  await assert.rejects(tree.call('d', 'x'), UnknownServerError)
  await tree.startChild('sub', worker('d', s))
  await tree.stop()
})

test('introspection: children with their lifecycle and restarts, counts by kind, the whole tree', T, async () => {
  const clock = new ManualClock(1000)
  const s = stub([])
  const tree = await startSupervision(supervisor('root', { intensity: 10, backoff: { minMs: 50, maxMs: 50, randomFactor: 0 } }, [
    worker('a', s), supervisor('sub', { strategy: 'rest_for_one' }, [worker('b', s, { restart: 'temporary' })])
  ]), { clock })
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'restarting', 'a restarting')
  assert.deepEqual(tree.whichChildren(), [
    { id: 'a', kind: 'worker', restart: 'permanent', significant: false, restarts: 1, status: { kind: 'restarting', incarnation: 1, attempt: 0, delayMs: 50, restartAt: 1050 } },
    { id: 'sub', kind: 'supervisor', restart: 'permanent', significant: false, restarts: 0, status: { kind: 'running', incarnation: 1, since: 1000 } }
  ])
  assert.deepEqual(tree.countChildren(), { specs: 2, active: 1, supervisors: 1, workers: 1 })
  const info = tree.inspect()
  assert.equal(info.id, 'root')
  assert.equal(info.strategy, 'one_for_one')
  assert.equal(info.recentRestarts, 1)
  assert.deepEqual(info.children[1]!.subtree?.children.map((c) => [c.id, c.restart, c.status.kind]), [['b', 'temporary', 'running']])
  await clock.advance(50)
  await until(clock, () => tree.countChildren().active === 2, 'a running again')
  assert.deepEqual(tree.whichChildren()[0]!.status, { kind: 'running', incarnation: 2, since: 1050 })
  await tree.stop()
  assert.deepEqual(tree.whichChildren().map((c) => c.status.kind), ['stopped', 'stopped'])
})
