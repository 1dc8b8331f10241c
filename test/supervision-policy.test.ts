/**
 * Specification of the pure restart policy (src/supervision/restart-policy.ts): restart types,
 * the three strategies' groups and orders, the intensity window with OTP's defaults, backoff with
 * jitter and its reset, and auto_shutdown. No clock, no runner: times are numbers.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { propertyParameters } from './support/property.js'
import {
  backoffDelay, decideRestart, EMPTY_HISTORY, supervisor,
  type ChildExit, type ExitReason, type PolicyChild, type RestartHistory, type SupervisorFlags, type SupervisorOptions
} from '../src/supervision/index.js'

const CRASH: ExitReason = { kind: 'crashed', phase: 'step', error: new Error('boom') }
const NORMAL: ExitReason = { kind: 'normal' }

function flags (options: SupervisorOptions = {}): SupervisorFlags {
  return supervisor('s', options).flags
}

function child (id: string, extra: Partial<PolicyChild> = {}): PolicyChild {
  return { id, restart: 'permanent', significant: false, status: 'alive', startedAt: 0, ...extra }
}

function exit (id: string, at = 0, reason: ExitReason = CRASH, jitter = 0): ChildExit {
  return { child: id, reason, at, jitter }
}

/** The exited child is down (`pending`) when its supervisor decides. */
function down (children: PolicyChild[], id: string): PolicyChild[] {
  return children.map((c) => c.id === id ? { ...c, status: 'pending' } : c)
}

test("OTP's defaults: one_for_one, intensity 1 in 5000 ms, no backoff, auto_shutdown never", () => {
  assert.deepEqual(flags(), { strategy: 'one_for_one', intensity: 1, periodMs: 5000, backoff: undefined, autoShutdown: 'never' })
})

test('a permanent child is restarted after any exit, a transient one only after an abnormal exit, a temporary one never', () => {
  const f = flags({ intensity: 10 })
  for (const reason of [CRASH, NORMAL, { kind: 'shutdown' } as const]) {
    const d = decideRestart(f, EMPTY_HISTORY, down([child('a')], 'a'), exit('a', 0, reason)).decision
    assert.equal(d.kind, 'restart', `permanent after ${reason.kind}`)
  }
  const transient = down([child('a', { restart: 'transient' })], 'a')
  assert.equal(decideRestart(f, EMPTY_HISTORY, transient, exit('a', 0, CRASH)).decision.kind, 'restart')
  assert.equal(decideRestart(f, EMPTY_HISTORY, transient, exit('a', 0, { kind: 'killed' })).decision.kind, 'restart')
  assert.deepEqual(decideRestart(f, EMPTY_HISTORY, transient, exit('a', 0, NORMAL)).decision, { kind: 'keep-stopped', child: 'a', remove: false })
  assert.deepEqual(decideRestart(f, EMPTY_HISTORY, transient, exit('a', 0, { kind: 'shutdown' })).decision, { kind: 'keep-stopped', child: 'a', remove: false })
  const temporary = down([child('a', { restart: 'temporary' })], 'a')
  assert.deepEqual(decideRestart(f, EMPTY_HISTORY, temporary, exit('a', 0, CRASH)).decision, { kind: 'keep-stopped', child: 'a', remove: true })
})

test('one_for_one restarts only the child that exited', () => {
  const children = down([child('a'), child('b'), child('c')], 'b')
  const { decision } = decideRestart(flags(), EMPTY_HISTORY, children, exit('b'))
  assert.deepEqual(decision, { kind: 'restart', child: 'b', stop: [], remove: [], start: ['b'], delayMs: 0, attempt: 0 })
})

test('one_for_all stops the other live children in reverse order, then starts all but the temporary ones in order', () => {
  const children = down([
    child('a'), child('b', { restart: 'temporary' }), child('c'), child('d', { status: 'stopped', restart: 'transient' }), child('e')
  ], 'c')
  const { decision } = decideRestart(flags({ strategy: 'one_for_all' }), EMPTY_HISTORY, children, exit('c'))
  assert.deepEqual(decision, { kind: 'restart', child: 'c', stop: ['e', 'b', 'a'], remove: ['b'], start: ['a', 'c', 'd', 'e'], delayMs: 0, attempt: 0 })
})

test('rest_for_one stops the live children declared after the one that exited, in reverse, and restarts it and them in order', () => {
  const children = down([child('a'), child('b'), child('c'), child('d', { status: 'pending' })], 'b')
  const { decision } = decideRestart(flags({ strategy: 'rest_for_one' }), EMPTY_HISTORY, children, exit('b'))
  assert.deepEqual(decision, { kind: 'restart', child: 'b', stop: ['c'], remove: [], start: ['b', 'c', 'd'], delayMs: 0, attempt: 0 })
})

test('the exit of a temporary child, or a normal exit of a transient one, leaves its siblings alone under every strategy', () => {
  for (const strategy of ['one_for_all', 'rest_for_one'] as const) {
    const children = down([child('a', { restart: 'temporary' }), child('b'), child('c', { restart: 'transient' })], 'a')
    assert.equal(decideRestart(flags({ strategy }), EMPTY_HISTORY, children, exit('a')).decision.kind, 'keep-stopped')
    const c = down(children, 'c')
    assert.equal(decideRestart(flags({ strategy }), EMPTY_HISTORY, c, exit('c', 0, NORMAL)).decision.kind, 'keep-stopped')
  }
})

test('with the default intensity, a second restart within 5000 ms (inclusive) gives up; one after 5000 ms does not', () => {
  const f = flags()
  const children = down([child('a')], 'a')
  const first = decideRestart(f, EMPTY_HISTORY, children, exit('a', 1000))
  assert.equal(first.decision.kind, 'restart')
  assert.deepEqual(first.history.restarts, [1000])
  const atEdge = decideRestart(f, first.history, children, exit('a', 6000))
  assert.deepEqual(atEdge.decision, { kind: 'shut-down', reason: { kind: 'gave-up', restarts: 2, periodMs: 5000 } })
  const after = decideRestart(f, first.history, children, exit('a', 6001))
  assert.equal(after.decision.kind, 'restart')
  assert.deepEqual(after.history.restarts, [6001], 'restarts older than the period are forgotten')
})

test('intensity 0 gives up on the first restart; a group restart counts as one restart', () => {
  assert.equal(decideRestart(flags({ intensity: 0 }), EMPTY_HISTORY, down([child('a')], 'a'), exit('a')).decision.kind, 'shut-down')
  const f = flags({ strategy: 'one_for_all', intensity: 1 })
  const once = decideRestart(f, EMPTY_HISTORY, down([child('a'), child('b'), child('c')], 'a'), exit('a'))
  assert.equal(once.decision.kind, 'restart')
  assert.deepEqual(once.history.restarts, [0])
})

test('backoff doubles from minMs up to maxMs, plus up to randomFactor of jitter', () => {
  const f = flags({ intensity: 100, backoff: { minMs: 100, maxMs: 1000, randomFactor: 0.5, resetAfterMs: 10_000 } })
  let history: RestartHistory = EMPTY_HISTORY
  const delays: number[] = []
  for (let i = 0; i < 6; i++) {
    const at = i * 10 // never running long enough to reset
    const out = decideRestart(f, history, down([child('a', { startedAt: at })], 'a'), exit('a', at))
    assert.equal(out.decision.kind, 'restart')
    if (out.decision.kind === 'restart') delays.push(out.decision.delayMs)
    history = out.history
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000])
  const jittered = decideRestart(f, EMPTY_HISTORY, down([child('a')], 'a'), exit('a', 0, CRASH, 0.5)).decision
  assert.equal(jittered.kind === 'restart' && jittered.delayMs, 125, '100 * (1 + 0.5 * 0.5)')
  assert.equal(backoffDelay(f.backoff!, 3, 0.999), 1200)
})

test('backoff starts over once the child ran resetAfterMs before exiting', () => {
  const f = flags({ intensity: 100, backoff: { minMs: 100, maxMs: 10_000, randomFactor: 0, resetAfterMs: 3000 } })
  let { history } = decideRestart(f, EMPTY_HISTORY, down([child('a', { startedAt: 0 })], 'a'), exit('a', 10))
  ;({ history } = decideRestart(f, history, down([child('a', { startedAt: 110 })], 'a'), exit('a', 120)))
  const third = decideRestart(f, history, down([child('a', { startedAt: 320 })], 'a'), exit('a', 330)).decision
  assert.equal(third.kind === 'restart' && third.delayMs, 400, 'third quick failure: 100 * 2^2')
  const quiet = decideRestart(f, history, down([child('a', { startedAt: 320 })], 'a'), exit('a', 3320)).decision
  assert.equal(quiet.kind === 'restart' && quiet.delayMs, 100, 'ran 3000 ms: back to minMs')
})

test('auto_shutdown: any_significant shuts down when a significant child ends; all_significant only with the last one', () => {
  const sig = (id: string, extra: Partial<PolicyChild> = {}): PolicyChild => child(id, { restart: 'transient', significant: true, ...extra })
  const any = flags({ autoShutdown: 'any_significant' })
  const children = down([sig('a'), sig('b'), child('c')], 'a')
  assert.deepEqual(decideRestart(any, EMPTY_HISTORY, children, exit('a', 0, NORMAL)).decision, { kind: 'shut-down', reason: { kind: 'shutdown' } })
  assert.equal(decideRestart(any, EMPTY_HISTORY, children, exit('a', 0, CRASH)).decision.kind, 'restart', 'a significant child that is restarted does not count')

  const all = flags({ autoShutdown: 'all_significant' })
  assert.deepEqual(decideRestart(all, EMPTY_HISTORY, children, exit('a', 0, NORMAL)).decision, { kind: 'keep-stopped', child: 'a', remove: false })
  const last = down([sig('a', { status: 'stopped' }), sig('b'), child('c')], 'b')
  assert.deepEqual(decideRestart(all, EMPTY_HISTORY, last, exit('b', 0, NORMAL)).decision, { kind: 'shut-down', reason: { kind: 'shutdown' } })
  const temporary = down([sig('a', { restart: 'temporary' })], 'a')
  assert.equal(decideRestart(any, EMPTY_HISTORY, temporary, exit('a', 0, CRASH)).decision.kind, 'shut-down', 'a temporary significant child ends on any exit')
})

test('invalid flags and child options are TypeErrors naming the option', () => {
  assert.throws(() => supervisor('s', { intensity: -1 }), /options\.intensity/)
  assert.throws(() => supervisor('s', { periodMs: 0 }), /options\.periodMs/)
  assert.throws(() => supervisor('s', { strategy: 'one_for_some' as 'one_for_one' }), /options\.strategy/)
  assert.throws(() => supervisor('s', { backoff: { minMs: 10, maxMs: 5 } }), /backoff\.maxMs/)
  assert.throws(() => supervisor('s', { significant: true }), /transient or temporary/)
  assert.throws(() => supervisor('s', {}, [supervisor('t', { restart: 'transient', significant: true })]), /autoShutdown is 'never'/)
  assert.throws(() => supervisor('s', { strategy: 'simple_one_for_one' }, [supervisor('t', {})]), /without children/)
  assert.throws(() => supervisor('s', {}, [supervisor('t', {}), supervisor('t', {})]), /two children with id "t"/)
  assert.throws(() => supervisor('s', { shutdown: -5 }), /options\.shutdown/)
})

test('property: decisions respect the window, the declaration order and the restart types', () => {
  const restartType = fc.constantFrom('permanent', 'transient', 'temporary' as const)
  const scenario = fc.record({
    strategy: fc.constantFrom('one_for_one', 'one_for_all', 'rest_for_one' as const),
    intensity: fc.integer({ min: 0, max: 4 }),
    periodMs: fc.integer({ min: 1, max: 5000 }),
    children: fc.array(fc.record({ restart: restartType, status: fc.constantFrom('alive', 'pending', 'stopped' as const) }), { minLength: 1, maxLength: 6 }),
    exits: fc.array(fc.record({ index: fc.nat(), gap: fc.integer({ min: 0, max: 3000 }), abnormal: fc.boolean() }), { minLength: 1, maxLength: 20 })
  })
  fc.assert(fc.property(scenario, (s) => {
    const f = flags({ strategy: s.strategy, intensity: s.intensity, periodMs: s.periodMs })
    const children = s.children.map((c, i) => child(`c${i}`, { restart: c.restart, status: c.status }))
    let history = EMPTY_HISTORY
    let at = 0
    for (const e of s.exits) {
      at += e.gap
      const exited = children[e.index % children.length]!
      const out = decideRestart(f, history, down(children, exited.id), exit(exited.id, at, e.abnormal ? CRASH : NORMAL))
      history = out.history
      const d = out.decision
      if (d.kind !== 'keep-stopped') {
        // Pruned when a restart is counted (a decision that restarts nothing leaves the history as it was).
        assert.ok(history.restarts.every((t) => t >= at - s.periodMs && t <= at), 'only restarts inside the window are kept')
        assert.ok(history.restarts.length <= s.intensity + 1)
      }
      if (d.kind === 'restart') {
        const position = (id: string): number => children.findIndex((c) => c.id === id)
        assert.ok(d.start.every((id, i) => i === 0 || position(id) > position(d.start[i - 1]!)), 'start in declaration order')
        assert.ok(d.stop.every((id, i) => i === 0 || position(id) < position(d.stop[i - 1]!)), 'stop in reverse order')
        assert.ok(!d.stop.includes(exited.id), 'the exited child is not stopped again')
        assert.ok(d.start.includes(exited.id))
        assert.ok(d.stop.every((id) => children[position(id)]!.status === 'alive'))
        assert.ok(d.start.every((id) => id === exited.id || children[position(id)]!.restart !== 'temporary'))
        assert.notEqual(exited.restart, 'temporary')
      } else if (d.kind === 'keep-stopped') {
        assert.ok(exited.restart === 'temporary' || (exited.restart === 'transient' && !e.abnormal))
        assert.equal(d.remove, exited.restart === 'temporary')
      } else {
        assert.deepEqual(d.reason, { kind: 'gave-up', restarts: s.intensity + 1, periodMs: s.periodMs })
        history = EMPTY_HISTORY // a supervisor that gave up starts over with an empty history
      }
    }
  }), propertyParameters('restart policy decisions', 300))
})
