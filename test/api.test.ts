/**
 * The public API under misuse and at its edges (peers over the in-memory network and a manual
 * clock): arguments of the wrong type from plain JavaScript, option mistakes, start-up modes
 * that must not lose data, calls to oneself, typed channels, handlers that misbehave.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startPeer } from '../src/peer/start.js'
import type { Legion, LegionOptions } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { jsonCodec, jsonCodecFor } from '../src/codec/json.js'
import { messageChannel } from '../src/peer/messaging.js'
import { memoryStorage } from '../src/storage/index.js'
import { FakeNetwork, ManualClock, seededRandom } from './support/fake-network.js'

const spec: EventSpec<string, string[], number> = {
  init: () => [],
  apply: (e, s) => ({ ok: true, output: s.length, state: [...s, e] })
}
type Peer = Legion<string, string[], number>

function world (worldSpec: EventSpec<string, string[], number> = spec): { start: (options: Partial<LegionOptions<string, string[], number>> & Pick<LegionOptions<string, string[], number>, 'startup'>) => Promise<Peer>, peers: Peer[], stop: () => Promise<void>, settle: <T>(p: Promise<T>) => Promise<T> } {
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const peers: Peer[] = []
  let seed = 1
  return {
    peers,
    start: async (options) => {
      const p = await startPeer<string, string[], number, Record<never, never>>({ cluster: 'api', spec: worldSpec, ...options }, { network: async k => await net.node(k), clock, random: seededRandom(seed++) })
      peers.push(p)
      return p
    },
    stop: async () => { await Promise.all(peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) })) },
    /** Advances the manual clock (bounded: 60 simulated s) until `p` settles. */
    settle: async <T>(p: Promise<T>): Promise<T> => {
      let done = false
      const watched = p.finally(() => { done = true })
      watched.catch(() => {})
      for (let t = 0; t < 60_000 && !done; t += 250) await clock.advance(250)
      return await watched
    }
  }
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

test('messaging refuses payloads that are not bytes with a TypeError that says what was expected, before anything is sent', async () => {
  const w = world()
  const a = await w.start({ startup: { mode: 'new' } })
  const b = await w.start({ startup: { mode: 'join', peers: a.multiaddrs() } })
  const untyped = a as unknown as { call: (p: unknown, x: unknown) => Promise<unknown>, cast: (p: unknown, x: unknown) => Promise<unknown>, broadcast: (x: unknown) => Promise<unknown>, broadcall: (x: unknown) => Promise<unknown> }
  for (const bad of ['a string', { an: 'object' }, 42, undefined]) {
    await assert.rejects(untyped.call(b.self, bad), (err: Error) => err.name === 'TypeError' && /payload must be a Uint8Array/.test(err.message))
    await assert.rejects(untyped.cast(b.self, bad), { name: 'TypeError' })
    await assert.rejects(untyped.broadcast(bad), { name: 'TypeError' })
    await assert.rejects(untyped.broadcall(bad), { name: 'TypeError' })
  }
  await assert.rejects(untyped.call(42, enc('x')), (err: Error) => err.name === 'TypeError' && /peer must be a peer id/.test(err.message))
  await w.stop()
})

test('a handler that returns something other than bytes gives the caller a typed BadReplyError; one that throws, a RemoteError; none, a NoHandlerError', async () => {
  const w = world()
  const a = await w.start({ startup: { mode: 'new' } })
  const b = await w.start({
    startup: { mode: 'join', peers: a.multiaddrs() },
    onCall: ((_from: string, p: Uint8Array) => dec(p) === 'string' ? 'not bytes' : dec(p) === 'throw' ? (() => { throw new Error('no thanks') })() : enc('fine')) as never
  })
  await assert.rejects(a.call(b.self, enc('string')), (err: Error) => err.name === 'BadReplyError' && /not a Uint8Array/.test(err.message))
  await assert.rejects(a.call(b.self, enc('throw')), (err: Error) => err.name === 'RemoteError' && /no thanks/.test(err.message))
  assert.equal(dec(await a.call(b.self, enc('ok'))), 'fine')
  await assert.rejects(b.call(a.self, enc('anyone?')), { name: 'NoHandlerError' })
  await w.stop()
})

test('a call to the peer itself is dispatched locally, with the same semantics', async () => {
  const w = world()
  const a = await w.start({ startup: { mode: 'new' }, onCall: (from, p, ctx) => enc(`${from === ctx.from ? 'self-aware' : '?'}:${dec(p)}`) })
  assert.equal(dec(await a.call(a.self, enc('hello'))), 'self-aware:hello')
  const casts: string[] = []
  const b = await w.start({ startup: { mode: 'new' }, onCast: (_f, p) => { casts.push(dec(p)) } })
  await b.cast(b.self, enc('note to self'))
  assert.deepEqual(casts, ['note to self'])
  await w.stop()
})

test('typed channels carry values through their codecs, and handlers get the caller in a context', async () => {
  const w = world()
  const a = await w.start({ startup: { mode: 'new' } })
  const b = await w.start({ startup: { mode: 'join', peers: a.multiaddrs() } })
  const add = messageChannel({ name: 'add', request: jsonCodecFor<{ x: number, y: number }>(), reply: jsonCodecFor<{ sum: number, by: string }>() })
  b.channel(add).handle((req, ctx) => ({ sum: req.x + req.y, by: ctx.from }))
  assert.deepEqual(await a.channel(add).call(b.self, { x: 2, y: 3 }), { sum: 5, by: a.self })
  const results = await a.channel(add).broadcall({ x: 1, y: 1 })
  assert.deepEqual([...results.values()], [{ kind: 'reply', value: { sum: 2, by: a.self } }])
  await assert.rejects(a.channel(add).call(b.self, { x: 1, y: undefined } as never), (err: Error) => err.name === 'TypeError' && /cannot be encoded/.test(err.message))
  await assert.rejects(b.channel(add).call(a.self, { x: 1, y: 2 }), { name: 'NoHandlerError' }, 'a has no handler for add')
  assert.throws(() => messageChannel({ name: '', request: jsonCodec, reply: jsonCodec }), { name: 'TypeError' })
  await w.stop()
})

test('option mistakes from plain JavaScript are TypeErrors that name the option', async () => {
  const w = world()
  const bad: Array<[unknown, RegExp]> = [
    [{ cluster: 42, spec, startup: { mode: 'new' } }, /options\.cluster/],
    [{ cluster: 'x', startup: { mode: 'new' } }, /options\.spec/],
    [{ cluster: 'x', spec: { apply: spec.apply }, startup: { mode: 'new' } }, /options\.spec\.init/],
    [{ cluster: 'x', spec }, /options\.startup/],
    [{ cluster: 'x', spec, startup: { mode: 'join' } }, /options\.startup\.peers/],
    [{ cluster: 'x', spec, startup: { mode: 'join', peers: 'not-a-list' } }, /options\.startup\.peers/],
    [{ cluster: 'x', spec, startup: { mode: 'sideways' } }, /options\.startup\.mode/],
    [{ cluster: 'x', spec, startup: { mode: 'new' }, codecs: { event: jsonCodec } }, /options\.codecs\.state/],
    [{ cluster: 'x', spec, startup: { mode: 'new' }, failureDetection: { suspectAfterMs: -1 } }, /failureDetection\.suspectAfterMs/],
    [{ cluster: 'x', spec, startup: { mode: 'new' }, propagation: { acknowledgeDelayMs: -5 } }, /propagation\.acknowledgeDelayMs must be a number >= 0/],
    [{ cluster: 'x', spec, startup: { mode: 'new' }, propagation: { acknowledgeDelayMs: '50' } }, /propagation\.acknowledgeDelayMs/],
    [{ cluster: 'x', spec, startup: { mode: 'new' }, services: { s: { name: 's', needs: ['groups'], create: ({ groups }: { groups: { clusterWide: (id: string, o: unknown) => unknown } }) => groups.clusterWide('s/g', { spec, acknowledgeAtOnce: 'yes' }) } } }, /acknowledgeAtOnce must be a boolean/],
    [{ cluster: 'x', spec, startup: { mode: 'new' }, allowPeers: 'everyone' }, /options\.allowPeers/],
    [{ cluster: 'x', spec, startup: { mode: 'new' }, onCall: 'echo' }, /options\.onCall/],
    [{ cluster: 'x', spec, startup: { mode: 'new' }, services: { s: { create: 1 } } }, /options\.services\.s/],
    [null, /options object/]
  ]
  for (const [options, message] of bad) {
    await assert.rejects(startPeer(options as never, {}), (err: Error) => err.name === 'TypeError' && message.test(err.message), `${JSON.stringify(options)} should fail with ${String(message)}`)
  }
  await w.stop()
})

test('founding over a storage that holds a peer is refused unless asked to overwrite; auto recovers, joins or founds', async () => {
  const w = world()
  const a = await w.start({ startup: { mode: 'new' } })
  const storage = memoryStorage()
  const b = await w.start({ startup: { mode: 'join', peers: a.multiaddrs() }, storage })
  await b.stop({ leave: false })
  const saved = storage.store.read()
  await assert.rejects(w.start({ startup: { mode: 'new' }, storage: memoryStorage({ store: storage.store }) }), (err: Error) => err.name === 'ExistingStateError' && /recover it/.test(err.message))
  assert.deepEqual(storage.store.read(), saved, 'the refused start changed nothing')
  // auto: the storage holds this peer, so it recovers as the same participant.
  const again = await w.start({ startup: { mode: 'auto', peers: a.multiaddrs() }, storage: memoryStorage({ store: storage.store }) })
  assert.equal(again.self, b.self)
  await again.stop({ leave: false })
  // auto with empty storage joins; with nobody to join and found: true, it founds.
  const joiner = await w.start({ startup: { mode: 'auto', peers: a.multiaddrs() }, storage: memoryStorage() })
  assert.ok(joiner.readState().participants.includes(a.self))
  const founder = await w.start({ startup: { mode: 'auto', peers: [], found: true }, storage: memoryStorage() })
  assert.deepEqual(founder.readState().participants, [founder.self])
  assert.equal(founder.readState().joined, true, 'a founder\'s own Join has folded')
  await assert.rejects(w.start({ startup: { mode: 'auto', peers: [] }, storage: memoryStorage() }), { name: 'JoinError' })
  // overwrite: founds anew over the old peer.
  const fresh = await w.start({ startup: { mode: 'new', overwrite: true }, storage: memoryStorage({ store: storage.store }) })
  assert.notEqual(fresh.self, b.self)
  await w.stop()
})

test('an apply that throws is an EventApplyError to the caller, a failure everywhere, counted, and stalls nothing', async () => {
  const throwing: EventSpec<string, string[], number> = {
    init: () => [],
    apply: (e, s) => { if (e === 'bad') throw new RangeError('no bad events here'); return { ok: true, output: s.length, state: [...s, e] } }
  }
  const w = world(throwing)
  const a = await w.start({ startup: { mode: 'new' } })
  const b = await w.start({ startup: { mode: 'join', peers: a.multiaddrs() } })
  assert.throws(() => a.applyFast('bad'), (err: Error) => err.name === 'EventApplyError' && /RangeError: no bad events here/.test(err.message))
  await assert.rejects(w.settle(a.applyConsistent('bad')), (err: Error) => err.name === 'EventApplyError')
  assert.equal(a.applyFast('good'), 0, 'later events apply as if the failures changed nothing')
  assert.equal(await w.settle(a.applyConsistent('also-good')), 1)
  assert.deepEqual(a.readState().infimum, ['good', 'also-good'])
  assert.equal(a.stats().counters.hookErrors >= 2, true)
  assert.deepEqual(b.readState().projected, ['good', 'also-good'], 'b folded the failures as failures too')
  await w.stop()
})
