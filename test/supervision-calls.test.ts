/**
 * Specification of calls and casts through a tree's event loop: the bounded queue and its two
 * overflow behaviours, timeouts and aborts that withdraw a request (no late answer), requests
 * rejected at once when the incarnation they were bound to stops, encoded requests, ordering,
 * and the TypeErrors plain JavaScript callers get. Deterministic time: a ManualClock.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  BadInputError, BadOutputError, CallAbortedError, CallTimeoutError, ManualClock, QueueFullError, ServerCrashedError,
  ServerExitedError, ServerStoppedError, startSupervision, supervisor, UnknownServerError, worker,
  type SupervisionTree
} from '../src/supervision/index.js'
import { decodeWith, encodeWith, jsonCodec, Writer, type Codec } from '../src/codec/index.js'
import { gate, stub, track, until, type Gate } from './support/supervision-stubs.js'

const T = { timeout: 10_000 }

/**
 * A tree over one stub `a` whose second start waits on the returned gate, so that requests can
 * pile up for it: crash it, and everything called meanwhile waits for incarnation 2.
 */
async function heldServer (capacity: number, extra: { stepped?: string[], log?: string[] } = {}): Promise<{ tree: SupervisionTree, clock: ManualClock, held: Gate }> {
  const clock = new ManualClock()
  const held = gate()
  const s = stub(extra.log ?? [], { initGate: (i) => i === 2 ? held.promise : undefined, stepped: extra.stepped })
  const tree = await startSupervision(supervisor('root', { intensity: 10 }, [worker('a', s), worker('b', stub([]))]), { clock, queueCapacity: capacity })
  await assert.rejects(tree.call('a', 'crash'))
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'starting', 'a held in its second init')
  return { tree, clock, held }
}

test('a full queue refuses at once with QueueFullError by default; nothing admitted is lost', T, async () => {
  const { tree, clock, held } = await heldServer(2)
  const first = track(tree.call('a', 'one'))
  const second = track(tree.call('a', 'two'))
  await clock.advance(0)
  assert.equal(tree.stats().queued, 2)
  await assert.rejects(tree.call('a', 'three'), QueueFullError)
  await assert.rejects(tree.call('b', 'x'), QueueFullError, 'capacity is shared by every server of the tree')
  await assert.rejects(tree.cast('a', 'x'), QueueFullError)
  held.open()
  await until(clock, () => second.state() === 'resolved', 'both answered')
  assert.deepEqual([first.value(), second.value()], ['one:1', 'two:2'])
  assert.equal(tree.stats().refusedFull, 3)
  assert.equal(tree.stats().queued, 0)
  await tree.stop()
})

test("overflow 'wait' waits for space in FIFO order, and gives up with QueueFullError at its timeout", T, async () => {
  const { tree, clock, held } = await heldServer(1)
  const first = track(tree.call('a', 'one'))
  await clock.advance(0)
  const waiter1 = track(tree.call('b', 'w1', { overflow: 'wait', timeoutMs: 10_000 }))
  const waiter2 = track(tree.call('b', 'w2', { overflow: 'wait', timeoutMs: 10_000 }))
  const impatient = track(tree.call('b', 'w3', { overflow: 'wait', timeoutMs: 100 }))
  await clock.advance(100)
  assert.equal(impatient.state(), 'rejected')
  assert.ok(impatient.error() instanceof QueueFullError)
  assert.equal(waiter1.state(), 'pending')
  held.open()
  await until(clock, () => waiter2.state() === 'resolved', 'waiters admitted and answered')
  assert.deepEqual([first.value(), waiter1.value(), waiter2.value()], ['one:1', 'w1:1', 'w2:2'])
  await tree.stop()
})

test('a call that times out is withdrawn: it is never stepped afterwards and no answer comes late', T, async () => {
  const stepped: string[] = []
  const { tree, clock, held } = await heldServer(8, { stepped })
  stepped.length = 0
  const late = track(tree.call('a', 'late', { timeoutMs: 100 }))
  const patient = track(tree.call('a', 'patient', { timeoutMs: 10_000 }))
  await clock.advance(99)
  assert.equal(late.state(), 'pending')
  await clock.advance(1)
  assert.equal(late.state(), 'rejected')
  assert.ok(late.error() instanceof CallTimeoutError)
  assert.equal((late.error() as CallTimeoutError).timeoutMs, 100)
  assert.equal(tree.stats().queued, 1, 'its space was given back at once')
  held.open()
  await until(clock, () => patient.state() === 'resolved', 'the patient call answered')
  assert.deepEqual(stepped, ['patient'], 'the timed-out input never reached step')
  assert.equal(patient.value(), 'patient:1')
  assert.equal(late.state(), 'rejected')
  const stats = tree.stats()
  assert.equal(stats.timeouts, 1)
  assert.equal(stats.lateRepliesDropped, 0)
  await tree.stop()
})

test('an aborted call is withdrawn the same way; an already aborted signal is refused before queueing', T, async () => {
  const stepped: string[] = []
  const { tree, clock, held } = await heldServer(8, { stepped })
  stepped.length = 0
  const controller = new AbortController()
  const aborted = track(tree.call('a', 'aborted', { signal: controller.signal }))
  await clock.advance(0)
  controller.abort(new Error('user left'))
  await clock.advance(0)
  assert.ok(aborted.error() instanceof CallAbortedError)
  assert.equal(((aborted.error() as Error).cause as Error).message, 'user left')
  await assert.rejects(tree.call('a', 'x', { signal: controller.signal }), CallAbortedError)
  held.open()
  assert.equal(await tree.call('a', 'after'), 'after:1')
  assert.deepEqual(stepped, ['after'])
  await tree.stop()
})

test('calls queued behind a crashing input are rejected at once with ServerExitedError, not at their timeout', T, async () => {
  const clock = new ManualClock()
  const tree = await startSupervision(supervisor('root', { intensity: 10 }, [worker('a', stub([]))]), { clock })
  // All three are admitted before the loop steps any of them: bound to incarnation 1.
  const crash = track(tree.call('a', 'crash'))
  const behind1 = track(tree.call('a', 'x'))
  const behind2 = track(tree.call('a', 'y'))
  await until(clock, () => behind2.state() !== 'pending', 'settled')
  assert.equal(clock.now(), 0, 'no time passed: no timeout was involved')
  assert.ok(crash.error() instanceof ServerCrashedError)
  for (const t of [behind1, behind2]) {
    const err = t.error()
    assert.ok(err instanceof ServerExitedError)
    assert.equal(err.incarnation, 1)
    assert.equal(err.reason.kind, 'crashed')
  }
  assert.equal(await tree.call('a', 'z'), 'z:1', 'incarnation 2 answers new calls')
  await tree.stop()
})

test('a call waiting for an incarnation that its supervisor stops is rejected at once with ServerExitedError', T, async () => {
  const clock = new ManualClock()
  const held = gate()
  const tree = await startSupervision(supervisor('root', { strategy: 'one_for_all', intensity: 10 }, [
    worker('x', stub([])),
    supervisor('s', { intensity: 10 }, [worker('b', stub([], { initGate: (i) => i === 2 ? held.promise : undefined }))])
  ]), { clock })
  await assert.rejects(tree.call('b', 'crash'))
  await until(clock, () => tree.whichChildren('s')[0]!.status.kind === 'starting', 'b held in its second init')
  const onB = track(tree.call('b', 'waiting'))
  await clock.advance(0)
  await assert.rejects(tree.call('x', 'crash')) // one_for_all: the root stops s, which stops b while it starts
  await until(clock, () => onB.state() !== 'pending', 'the waiting call settled')
  const err = onB.error()
  assert.ok(err instanceof ServerExitedError)
  assert.equal(err.incarnation, 2)
  assert.equal(clock.now(), 0, 'at once, not at a timeout')
  held.open()
  await until(clock, () => tree.whichChildren().every((c) => c.status.kind === 'running' && c.status.incarnation === 2), 'x and s restarted')
  assert.equal(await tree.call('b', 'x'), 'x:1')
  await tree.stop()
})

test('a call waiting for a server that then stays stopped is rejected at once with ServerStoppedError', T, async () => {
  const clock = new ManualClock()
  const slowTerminate = gate()
  const tree = await startSupervision(supervisor('root', {}, [
    worker('t', stub([], { terminateGate: async () => await slowTerminate.promise }), { restart: 'transient' })
  ]), { clock })
  assert.equal(await tree.call('t', 'stop'), 'stopping')
  assert.equal(tree.whichChildren()[0]!.status.kind, 'stopping')
  const waiting = track(tree.call('t', 'x'))
  await clock.advance(0)
  assert.equal(waiting.state(), 'pending', 'waits for a next incarnation, which may come')
  slowTerminate.open()
  await until(clock, () => waiting.state() !== 'pending', 'settled once the supervisor decided')
  assert.ok(waiting.error() instanceof ServerStoppedError, 'a transient server that stopped normally stays stopped')
  await assert.rejects(tree.call('t', 'x'), ServerStoppedError)
  await tree.stop()
})

test('casts resolve once queued; their crashes are reported as events; unknown servers are refused', T, async () => {
  const clock = new ManualClock()
  const crashed: string[] = []
  const tree = await startSupervision(supervisor('root', { intensity: 10 }, [worker('a', stub([]))]), {
    clock, onEvent: (e) => { if (e.type === 'crashed') crashed.push(String(e.input)) }
  })
  await tree.cast('a', 'one')
  await tree.cast('a', 'crash')
  await until(clock, () => crashed.length === 1, 'the cast crashed a')
  assert.deepEqual(crashed, ['crash'])
  await assert.rejects(tree.cast('nobody', 'x'), UnknownServerError)
  await assert.rejects(tree.call('nobody', 'x'), UnknownServerError)
  await until(clock, () => tree.whichChildren()[0]!.status.kind === 'running', 'a restarted')
  assert.equal(await tree.call('a', 'x'), 'x:1')
  await tree.stop()
})

test('requests to one server are stepped in order; servers take turns', T, async () => {
  const clock = new ManualClock()
  const order: string[] = []
  const tree = await startSupervision(supervisor('root', {}, [worker('a', stub([], { stepped: order })), worker('b', stub([], { stepped: order }))]), { clock })
  const calls = ['a1', 'a2', 'a3', 'b1', 'b2'].map(async (x) => await tree.call(x[0]!, x))
  const answers = await Promise.all(calls)
  assert.deepEqual(answers, ['a1:1', 'a2:2', 'a3:3', 'b1:1', 'b2:2'])
  assert.deepEqual(order.filter((x) => x.startsWith('a')), ['a1', 'a2', 'a3'])
  assert.deepEqual(order.filter((x) => x.startsWith('b')), ['b1', 'b2'])
  assert.deepEqual(order.slice(0, 2), ['a1', 'b1'], 'b does not wait for all of a')
  await tree.stop()
})

test('encoded requests are decoded with the input codec at admission and answered in the output codec', T, async () => {
  const clock = new ManualClock()
  const stepped: string[] = []
  const strings: Codec<string> = {
    encode: (v, w) => { if (typeof v !== 'string') throw new TypeError('not a string'); w.writeString(v) },
    decode: (r, limits) => r.readString(limits.maxStringBytes)
  }
  const tree = await startSupervision(supervisor('root', {}, [
    worker('s', { ...stub([], { stepped }), codecs: { input: strings, output: strings } }),
    worker('j', stub([])), // default codecs: jsonCodec
    worker('bad', { init: () => 0, step: (_i: string, n: number) => ({ state: n + 1, output: 42 as unknown as string }), codecs: { input: strings, output: strings } })
  ]), { clock })
  const out = await tree.callEncoded('s', encodeWith(strings, 'hello'))
  assert.equal(decodeWith(strings, out), 'hello:1')
  assert.equal(decodeWith(jsonCodec, await tree.callEncoded('j', encodeWith(jsonCodec, 'x'))), 'x:1')
  await assert.rejects(tree.callEncoded('s', new Uint8Array([0xff, 0xff, 0xff])), BadInputError)
  const w = new Writer()
  w.writeString('trailing')
  w.writeUint8(1)
  await assert.rejects(tree.callEncoded('s', w.finish()), BadInputError)
  assert.deepEqual(stepped, ['hello'], 'bad input never reaches step')
  await assert.rejects(tree.callEncoded('bad', encodeWith(strings, 'x')), BadOutputError)
  assert.equal(tree.whichChildren()[2]!.status.kind, 'running', 'an output that does not encode does not crash the server')
  await tree.castEncoded('s', encodeWith(strings, 'cast'))
  await until(clock, () => stepped.length === 2, 'the cast stepped')
  await tree.stop()
})

test('plain JavaScript gets TypeErrors naming the argument', T, async () => {
  const tree = await startSupervision(supervisor('root', {}, [worker('a', stub([]))]), { clock: new ManualClock() })
  const loose = tree as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
  await assert.rejects(loose.call!(42, 'x'), /call: server must be a name or a ServerRef/)
  await assert.rejects(loose.call!('a', 'x', { timeoutMs: -1 }), /call: options\.timeoutMs/)
  await assert.rejects(loose.call!('a', 'x', { overflow: 'drop' }), /options\.overflow/)
  await assert.rejects(loose.call!('a', 'x', { signal: 'stop' }), /options\.signal/)
  await assert.rejects(loose.callEncoded!('a', 'text'), /callEncoded: input must be a Uint8Array/)
  await assert.rejects(startSupervision({} as never), /startSupervision: root/)
  await assert.rejects(startSupervision(supervisor('r', {}), { queueCapacity: 0 }), /queueCapacity/)
  await assert.rejects(startSupervision(supervisor('r', {}, [worker('x', stub([]))]), {}).then(async (t) => {
    await t.stop()
    await startSupervision(supervisor('r', {}, [supervisor('x', {}, [worker('x', stub([]))])]))
  }), /id "x" is used twice/)
  assert.throws(() => worker('w', { step: () => 1 } as never), /worker: server\.init must be a function/)
  await tree.stop()
})
