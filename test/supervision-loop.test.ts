/**
 * Specification of the event loop's and the deadline queue's bookkeeping, below the tree: what
 * they keep must stay bounded by what is in flight, however many requests went through, and
 * deadlines expire in due order on a single timer.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../src/time/clock.js'
import { Deadlines } from '../src/supervision/deadlines.js'
import { EventLoop, type ServerHost } from '../src/supervision/event-loop.js'
import { jsonCodec, type Codec } from '../src/codec/index.js'

const T = { timeout: 20_000 }
const OPTIONS = { timeoutMs: 1000, overflow: 'reject' } as const

/** A host whose incarnation 1 runs while `running.value` is true, and echoes its input. */
function echoHost (running: { value: boolean }): ServerHost {
  return {
    id: 'echo',
    codecs: { input: jsonCodec as Codec<unknown>, output: jsonCodec as Codec<unknown> },
    admission: () => ({ kind: 'bind', incarnation: 1 }),
    isRunning: (incarnation) => running.value && incarnation === 1,
    step: (input) => ({ kind: 'answered', output: input })
  }
}

test('a mailbox keeps nothing of the requests it answered, one at a time or many in flight', T, async () => {
  const loop = new EventLoop(256, new ManualClock())
  loop.register(echoHost({ value: true }))
  for (let i = 0; i < 5000; i++) assert.equal(await loop.call('echo', i, false, OPTIONS), i)
  assert.equal(loop.retainedRequests(), 0)
  for (let round = 0; round < 20; round++) {
    const batch = Array.from({ length: 256 }, async (_, i) => await loop.call('echo', i, false, OPTIONS))
    assert.equal((await Promise.all(batch)).length, 256)
  }
  assert.equal(loop.retainedRequests(), 0)
  assert.equal(loop.queued, 0)
})

test('the tombstones of timed-out calls do not pile up while a server is not running', T, async () => {
  const clock = new ManualClock()
  const running = { value: false }
  const loop = new EventLoop(64, clock)
  loop.register(echoHost(running))
  let timedOut = 0
  for (let round = 0; round < 100; round++) {
    const calls = Array.from({ length: 64 }, async () => await loop.call('echo', round, false, { timeoutMs: 10, overflow: 'reject' }).catch(() => { timedOut++ }))
    await clock.advance(10)
    await Promise.all(calls)
    assert.ok(loop.retainedRequests() <= 64 * 3, `round ${round}: ${loop.retainedRequests()} retained`)
  }
  assert.equal(timedOut, 6400)
  running.value = true
  loop.runnable('echo')
  assert.equal(await loop.call('echo', 'after', false, OPTIONS), 'after')
})

test('deadlines expire in due order across timeouts, skip settled items, and use one timer at a time', T, async () => {
  const clock = new ManualClock()
  const live = new Set<string>()
  const expired: string[] = []
  const deadlines = new Deadlines<string>(clock, 16, (x) => live.has(x), (x) => { expired.push(`${x}@${clock.now()}`); live.delete(x) })
  const add = (x: string, ms: number): void => { live.add(x); deadlines.add(x, ms) }
  add('a', 300)
  add('b', 100)
  add('c', 300)
  add('d', 200)
  assert.equal(clock.pendingTimers(), 1)
  live.delete('c') // settled before its deadline
  deadlines.trim(300)
  await clock.advance(1000)
  assert.deepEqual(expired, ['b@100', 'd@200', 'a@300'])
  assert.equal(clock.pendingTimers(), 0)
})

test('a deadline lane with one stuck item does not keep every settled item behind it', T, async () => {
  const clock = new ManualClock()
  const live = new Set<number>()
  const deadlines = new Deadlines<number>(clock, 4, (x) => live.has(x), (x) => live.delete(x))
  live.add(-1)
  deadlines.add(-1, 1000) // stuck: live until its deadline
  let most = 0
  for (let i = 0; i < 100_000; i++) {
    live.add(i)
    deadlines.add(i, 1000)
    live.delete(i)
    deadlines.trim(1000)
    most = Math.max(most, deadlines.size())
  }
  assert.ok(most <= 2 * 4 + 1024 + 1, `at most ${most} entries held`)
  await clock.advance(1000)
  assert.equal(live.size, 0, 'the stuck item expired')
})
