/**
 * Specification of supervisor trees on stub servers with deterministic time (a ManualClock):
 * start and stop order, the strategies carried out, intensity windows and escalation, backoff,
 * restart types, shutdown deadlines (including a terminate that hangs), significant children.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  ChildStartError, ManualClock, ServerStoppedError, StartTimeoutError, startSupervision, supervisor, SupervisionStoppedError,
  UnknownServerError, worker, type SupervisionEvent, type SupervisionOptions, type SupervisorSpec
} from '../src/supervision/index.js'
import { gate, stub, track, until } from './support/supervision-stubs.js'

const T = { timeout: 10_000 }

async function start (root: SupervisorSpec, options: SupervisionOptions = {}): Promise<{
  tree: Awaited<ReturnType<typeof startSupervision>>, clock: ManualClock, events: SupervisionEvent[]
}> {
  const clock = (options.clock as ManualClock | undefined) ?? new ManualClock()
  const events: SupervisionEvent[] = []
  const tree = await startSupervision(root, { clock, onEvent: (e) => events.push(e), ...options })
  return { tree, clock, events }
}

function lifecycle (events: SupervisionEvent[]): string[] {
  return events.flatMap((e) => e.type === 'starting' || e.type === 'started' || e.type === 'terminating' || e.type === 'exited'
    ? [`${e.type} ${e.child}${e.type === 'exited' || e.type === 'terminating' ? ` ${e.reason.kind}` : ''}`]
    : [])
}

test('children start depth first, left to right; a tree stops in reverse order, depth first', T, async () => {
  const log: string[] = []
  const s = stub(log)
  const { tree, events } = await start(supervisor('root', {}, [
    worker('a', s),
    supervisor('s1', { strategy: 'one_for_all' }, [worker('b', s), worker('c', s)]),
    worker('d', s)
  ]))
  assert.deepEqual(lifecycle(events), [
    'starting root', 'starting a', 'started a', 'starting s1', 'starting b', 'started b', 'starting c', 'started c',
    'started s1', 'starting d', 'started d', 'started root'
  ])
  events.length = 0
  await tree.stop()
  assert.deepEqual(lifecycle(events), [
    'terminating root shutdown', 'terminating d shutdown', 'exited d shutdown', 'terminating s1 shutdown',
    'terminating c shutdown', 'exited c shutdown', 'terminating b shutdown', 'exited b shutdown', 'exited s1 shutdown',
    'terminating a shutdown', 'exited a shutdown', 'exited root shutdown'
  ])
  assert.deepEqual(tree.status(), { kind: 'stopped', reason: { kind: 'shutdown' } })
  await assert.rejects(tree.call('a', 'x'), SupervisionStoppedError)
})

test('one_for_all: a crash stops the other children in reverse order, then restarts all in order', T, async () => {
  const log: string[] = []
  const s = stub(log)
  const { tree, clock } = await start(supervisor('root', { strategy: 'one_for_all' }, [worker('a', s), worker('b', s), worker('c', s)]))
  log.length = 0
  assert.equal(await tree.call('a', 'x'), 'x:1')
  await assert.rejects(tree.call('b', 'crash'))
  await until(clock, () => tree.whichChildren().every((c) => c.status.kind === 'running' && c.status.incarnation === 2), 'all restarted')
  assert.deepEqual(log, ['stop b crashed', 'stop c shutdown', 'stop a shutdown', 'start a', 'start b', 'start c'])
  assert.equal(await tree.call('a', 'x'), 'x:1', 'a is a new incarnation with a fresh state')
  assert.deepEqual(tree.whichChildren().map((c) => [c.id, c.status.incarnation, c.restarts]), [['a', 2, 1], ['b', 2, 1], ['c', 2, 1]])
})

test('a supervisor over its intensity gives up, stops its children, and escalates to its parent, which restarts it', T, async () => {
  const log: string[] = []
  const s = stub(log)
  const { tree, clock, events } = await start(supervisor('root', { intensity: 5 }, [
    supervisor('s1', {}, [worker('a', s), worker('b', s)]),
    worker('c', s)
  ]))
  await assert.rejects(tree.call('a', 'crash'))
  await clock.advance(1000)
  await until(clock, () => tree.whichChildren('s1')[0]!.status.kind === 'running', 'a restarted')
  log.length = 0
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'running' && tree.whichChildren()[0]!.status.incarnation === 2, 's1 restarted')
  assert.deepEqual(log, ['stop a crashed', 'stop b shutdown', 'start a', 'start b'])
  const decisions = events.flatMap((e) => e.type === 'decided' ? [`${e.supervisor}: ${e.decision.kind} ${e.exit.child}`] : [])
  assert.deepEqual(decisions, ['s1: restart a', 's1: shut-down a', 'root: restart s1'])
  const gaveUp = events.find((e) => e.type === 'exited' && e.child === 's1')
  assert.deepEqual(gaveUp?.type === 'exited' && gaveUp.reason, { kind: 'gave-up', restarts: 2, periodMs: 5000 })
  assert.deepEqual(tree.whichChildren().map((c) => [c.id, c.status.incarnation, c.restarts]), [['s1', 2, 1], ['c', 1, 0]], 'c was left alone')
  assert.equal(tree.inspect().recentRestarts, 1)
  await tree.stop()
})

test('restarts older than the period are forgotten: crashes 5001 ms apart never exhaust intensity 1', T, async () => {
  const log: string[] = []
  const { tree, clock } = await start(supervisor('root', {}, [worker('a', stub(log))]))
  for (let i = 0; i < 4; i++) {
    await assert.rejects(tree.call('a', 'crash'))
    await until(clock, () => tree.whichChildren()[0]!.status.kind === 'running', `restart ${i + 1}`)
    await clock.advance(5001)
  }
  assert.equal(tree.whichChildren()[0]!.restarts, 4)
  await assert.rejects(tree.call('a', 'crash'))
  await clock.advance(5000)
  await assert.rejects(tree.call('a', 'crash'))
  assert.deepEqual(await tree.exited, { kind: 'gave-up', restarts: 2, periodMs: 5000 }, 'two within 5000 ms: the root gives up and the tree ends')
  assert.deepEqual(tree.status(), { kind: 'stopped', reason: { kind: 'gave-up', restarts: 2, periodMs: 5000 } })
  await assert.rejects(tree.call('a', 'x'), SupervisionStoppedError)
})

test('backoff: a crashed server waits out its delay (jitter from the injected random); calls wait for the new incarnation', T, async () => {
  const log: string[] = []
  const { tree, clock } = await start(
    supervisor('root', { intensity: 10, backoff: { minMs: 100, maxMs: 1000, randomFactor: 0.5 } }, [worker('a', stub(log))]),
    { random: () => 0.5 })
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'restarting', 'restarting')
  assert.deepEqual(tree.whichChildren()[0]!.status, { kind: 'restarting', incarnation: 1, attempt: 0, delayMs: 125, restartAt: 125 })
  const waiting = track(tree.call('a', 'x'))
  await clock.advance(124)
  assert.equal(waiting.state(), 'pending')
  assert.equal(tree.whichChildren()[0]!.status.kind, 'restarting')
  await clock.advance(1)
  await until(clock, () => waiting.state() === 'resolved', 'the waiting call answered')
  assert.equal(waiting.value(), 'x:1')
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'restarting', 'restarting again')
  assert.equal((tree.whichChildren()[0]!.status as { delayMs: number }).delayMs, 250, 'second quick crash: 200 * 1.25')
  await clock.advance(250)
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'running', 'running')
  await clock.advance(1000) // quiet for resetAfterMs (= maxMs)
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'restarting', 'restarting after a quiet period')
  assert.equal((tree.whichChildren()[0]!.status as { delayMs: number }).delayMs, 125, 'the backoff started over')
  await tree.stop()
  assert.equal(clock.pendingTimers(), 0, 'stopping cancels the pending restart')
})

test('restart types: permanent always, transient after abnormal exits only, temporary never (and removed)', T, async () => {
  const log: string[] = []
  const s = stub(log)
  const { tree, clock } = await start(supervisor('root', { intensity: 10 }, [
    worker('perm', s), worker('trans', s, { restart: 'transient' }), worker('temp', s, { restart: 'temporary' })
  ]))
  assert.equal(await tree.call('perm', 'stop'), 'stopping')
  await until(clock, () => tree.whichChildren()[0]!.status.incarnation === 2, 'perm restarted after a normal exit')
  await assert.rejects(tree.call('trans', 'crash'))
  await until(clock, () => tree.whichChildren()[1]!.status.incarnation === 2, 'trans restarted after a crash')
  assert.equal(await tree.call('trans', 'stop'), 'stopping')
  await until(clock, () => tree.whichChildren()[1]!.status.kind === 'stopped', 'trans stays stopped after a normal exit')
  assert.deepEqual(tree.whichChildren()[1]!.status, { kind: 'stopped', incarnation: 2, reason: { kind: 'normal' } })
  await assert.rejects(tree.call('trans', 'x'), ServerStoppedError)
  await assert.rejects(tree.call('temp', 'crash'))
  await until(clock, () => tree.whichChildren().length === 2, 'temp removed')
  await assert.rejects(tree.call('temp', 'x'), UnknownServerError)
  assert.equal(tree.hasServer('temp'), false)
  await tree.stop()
})

test('shutdown: a hanging terminate is abandoned at the shutdown time, brutal never calls terminate, infinity waits', T, async () => {
  const log: string[] = []
  const never = new Promise<void>(() => {})
  const slow = gate()
  const { tree, clock, events } = await start(supervisor('root', {}, [
    worker('a', stub(log, { terminateGate: async () => await never }), { shutdown: 1000 }),
    worker('b', stub(log), { shutdown: 'brutal' }),
    worker('c', stub(log, { terminateGate: async () => await slow.promise }), { shutdown: 'infinity' })
  ]))
  log.length = 0
  const stopping = track(tree.stop())
  await clock.advance(60_000)
  assert.equal(stopping.state(), 'pending', 'c waits as long as its terminate takes')
  assert.deepEqual(log, ['stop c shutdown'])
  slow.open()
  await until(clock, () => log.length === 2, 'a terminating')
  const startedStoppingA = clock.now()
  await clock.advance(999)
  assert.equal(stopping.state(), 'pending')
  await clock.advance(1)
  await until(clock, () => stopping.state() === 'resolved', 'stopped')
  assert.equal(clock.now() - startedStoppingA, 1000)
  assert.deepEqual(log, ['stop c shutdown', 'stop a shutdown'], "b's terminate never ran")
  const exits = events.flatMap((e) => e.type === 'exited' && e.kind === 'worker' ? [`${e.child} ${e.reason.kind}`] : [])
  assert.deepEqual(exits, ['c shutdown', 'b killed', 'a killed'])
})

test('a tree stop with timeoutMs kills whatever is still stopping at the deadline, and what remains without terminate', T, async () => {
  const log: string[] = []
  const never = async (): Promise<void> => await new Promise<void>(() => {})
  const { tree, clock } = await start(supervisor('root', {}, [
    worker('a', stub(log, { terminateGate: never }), { shutdown: 'infinity' }),
    worker('b', stub(log, { terminateGate: never }), { shutdown: 'infinity' })
  ]))
  log.length = 0
  const stopping = track(tree.stop({ timeoutMs: 500 }))
  await clock.advance(499)
  assert.equal(stopping.state(), 'pending')
  await clock.advance(1)
  await until(clock, () => stopping.state() === 'resolved', 'stopped at the deadline')
  assert.deepEqual(log, ['stop b shutdown'], 'a had no time left: killed without terminate')
  assert.deepEqual(tree.whichChildren().map((c) => c.status), [
    { kind: 'stopped', incarnation: 1, reason: { kind: 'killed' } },
    { kind: 'stopped', incarnation: 1, reason: { kind: 'killed' } }
  ])
})

test('a significant child ending shuts its supervisor down (auto_shutdown); a transient supervisor is then not restarted', T, async () => {
  const log: string[] = []
  const s = stub(log)
  const { tree, clock, events } = await start(supervisor('root', {}, [
    supervisor('job', { restart: 'transient', autoShutdown: 'any_significant' }, [
      worker('w', s, { restart: 'transient', significant: true }), worker('x', s)
    ]),
    worker('y', s)
  ]))
  log.length = 0
  assert.equal(await tree.call('w', 'stop'), 'stopping')
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'stopped', 'job stopped')
  assert.deepEqual(log, ['stop w normal', 'stop x shutdown'])
  assert.deepEqual(tree.whichChildren()[0]!.status, { kind: 'stopped', incarnation: 1, reason: { kind: 'shutdown' } })
  assert.equal(tree.whichChildren()[1]!.status.kind, 'running')
  const decisions = events.flatMap((e) => e.type === 'decided' ? [`${e.supervisor}: ${e.decision.kind} ${e.exit.child}`] : [])
  assert.deepEqual(decisions, ['job: shut-down w', 'root: keep-stopped job'])
  await assert.rejects(tree.call('x', 'x'), ServerStoppedError)
  await tree.stop()
})

test('a child that fails to start fails startSupervision, after the started ones were stopped in reverse order', T, async () => {
  const log: string[] = []
  const bad = stub(log, { initError: () => new Error('no database') })
  await assert.rejects(
    startSupervision(supervisor('root', {}, [worker('a', stub(log)), supervisor('s', {}, [worker('b', stub(log)), worker('c', bad)])]), { clock: new ManualClock() }),
    (err: unknown) => err instanceof ChildStartError && err.child === 'c' && (err.cause as Error).message === 'no database')
  assert.deepEqual(log, ['start a', 'start b', 'start c', 'stop b shutdown', 'stop a shutdown'])
})

test('an init that fails during a restart counts as a restart, until the supervisor gives up', T, async () => {
  const log: string[] = []
  const s = stub(log, { initError: (incarnation) => incarnation > 1 ? new Error('still broken') : undefined })
  const { tree, events } = await start(supervisor('root', { intensity: 3 }, [worker('a', s)]))
  await assert.rejects(tree.call('a', 'crash'))
  assert.deepEqual(await tree.exited, { kind: 'gave-up', restarts: 4, periodMs: 5000 })
  const crashes = events.flatMap((e) => e.type === 'crashed' ? [e.phase] : [])
  assert.deepEqual(crashes, ['step', 'init', 'init', 'init'])
})

test('a stop while a child is still starting waits for its init, then terminates it', T, async () => {
  const log: string[] = []
  const slowInit = gate()
  const clock = new ManualClock()
  const s = stub(log, { initGate: (incarnation) => incarnation === 2 ? slowInit.promise : undefined })
  const { tree } = await start(supervisor('root', { intensity: 5 }, [worker('a', s)]), { clock })
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'starting', 'restarting a is in init')
  const pendingCall = track(tree.call('a', 'x'))
  await clock.advance(0) // admitted, and bound to the incarnation in init
  assert.equal(tree.stats().queued, 1)
  const stopping = track(tree.stop())
  await clock.advance(0)
  assert.equal(stopping.state(), 'pending')
  slowInit.open()
  await until(clock, () => stopping.state() === 'resolved', 'stopped')
  assert.deepEqual(log.slice(-2), ['start a', 'stop a shutdown'])
  await until(clock, () => pendingCall.state() === 'rejected', 'the call rejected')
  assert.equal((pendingCall.error() as Error).name, 'ServerExitedError', 'the incarnation it waited for stopped before answering')
})

test('a listener that throws, and a step that returns a promise or no state, disturb nothing but that step', T, async () => {
  const clock = new ManualClock()
  const tree = await startSupervision(supervisor('root', { intensity: 10 }, [
    worker('odd', {
      init: () => 0,
      step: (input: string, n: number) => (input === 'async' ? Promise.resolve({ state: n, output: 1 }) : input === 'bare' ? 7 : { state: n, output: n }) as never
    })
  ]), { clock, onEvent: () => { throw new Error('listener bug') } })
  await assert.rejects(tree.call('odd', 'async'), /step must be synchronous/)
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'running', 'restarted')
  await assert.rejects(tree.call('odd', 'bare'), /step must return \{ state, output \}/)
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'running', 'restarted')
  assert.equal(await tree.call('odd', 'fine'), 0)
  await tree.stop()
})

test('an init that overruns its startTimeoutMs fails the start with StartTimeoutError', T, async () => {
  const clock = new ManualClock()
  const log: string[] = []
  const hanging = stub(log, { initGate: () => new Promise<void>(() => {}) })
  const starting = track(startSupervision(supervisor('root', {}, [worker('a', stub(log)), worker('b', hanging, { startTimeoutMs: 1000 })]), { clock }))
  await clock.advance(999)
  assert.equal(starting.state(), 'pending')
  await clock.advance(1)
  await until(clock, () => starting.state() === 'rejected', 'start failed')
  const err = starting.error()
  assert.ok(err instanceof ChildStartError)
  assert.equal(err.child, 'b')
  assert.ok(err.cause instanceof StartTimeoutError)
  assert.equal(err.cause.timeoutMs, 1000)
  assert.deepEqual(log, ['start a', 'start b', 'stop a shutdown'])
  assert.throws(() => worker('c', hanging, { startTimeoutMs: 0 }), /options\.startTimeoutMs/)
})

test('a child that exits while its later siblings are still starting is restarted once the start completes', T, async () => {
  const clock = new ManualClock()
  const log: string[] = []
  const held = gate()
  const { tree } = await start(supervisor('root', { strategy: 'one_for_all', intensity: 5 }, [
    worker('x', stub(log)),
    supervisor('s', { intensity: 5 }, [worker('a', stub(log)), worker('b', stub(log, { initGate: (i) => i === 2 ? held.promise : undefined }))])
  ]), { clock })
  await assert.rejects(tree.call('x', 'crash')) // one_for_all: x and s (a, b) restart
  await until(clock, () => tree.whichChildren('s')[1]!.status.kind === 'starting', 'b held in its second init')
  assert.equal(tree.whichChildren()[1]!.status.kind, 'starting', 's is still starting')
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren('s')[0]!.status.kind === 'down', 'a down, its decision waiting')
  held.open()
  await until(clock, () => tree.whichChildren('s')[0]!.status.kind === 'running' && tree.whichChildren('s')[0]!.status.incarnation === 3, 'a restarted')
  assert.equal(await tree.call('a', 'x'), 'x:1')
  await tree.stop()
})
