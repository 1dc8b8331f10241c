/**
 * Discovery and election between real peers over TCP on 127.0.0.1, in one process: the seed's
 * boss and workers in miniature (a boss elected among the workers delegates jobs to them
 * through their registrations), typed metadata through a codec, a graceful leave handing the
 * boss over, and the lookup cache following every change.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { startLegion } from '../src/peer/start.js'
import type { Legion } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { compareEventIds } from '../src/eventfold/types.js'
import { jsonCodecFor } from '../src/codec/json.js'
import type { Codec } from '../src/codec/codec.js'
import { discovery } from '../src/discovery/service.js'
import { until } from './support/cluster.js'

const spec: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
/** Worker metadata: a class instance, so it needs its own codec. */
class Slots { constructor (readonly n: number) {} }
const slotsCodec: Codec<Slots> = {
  encode: (v, w) => { w.writeVarUint(v.n) },
  decode: (r) => new Slots(r.readVarUint())
}
const service = (): ReturnType<typeof discovery<Slots, string[]>> => discovery<Slots, string[]>({ metaCodec: slotsCodec, checkpointCodec: jsonCodecFor<string[]>() })
type Peer = Legion<null, number, number, { discovery: ReturnType<typeof service> }>

const everyone: Peer[] = []
after(async () => { await Promise.all(everyone.map(async p => { await p.stop({ leave: false }).catch(() => {}) })) })

const fast = { heartbeatIntervalMs: 250, suspectAfterMs: 1500, stuckAfterMs: 5000 }

async function cluster (n: number): Promise<Peer[]> {
  const base = { cluster: `discovery-tcp-${process.pid}`, spec, services: { discovery: service() }, failureDetection: fast, propagation: { intervalMs: 250 } }
  const first = await startLegion({ ...base, startup: { mode: 'new' } })
  const peers: Peer[] = [first]
  for (let i = 1; i < n; i++) peers.push(await startLegion({ ...base, startup: { mode: 'join', peers: first.multiaddrs() } }))
  everyone.push(...peers)
  await until(peers as never[], () => peers.every(p => p.readState().participants.length === n), `${n} participants`)
  return peers
}

test('over TCP: a boss elected among workers delegates jobs to the registered workers; when it leaves, the next one goes on', async () => {
  const peers = await cluster(3)
  const jobs = { request: jsonCodecFor<string>(), reply: jsonCodecFor<string>() }
  const done: string[] = []
  for (const p of peers) {
    const d = p.services.discovery
    d.register('worker', new Slots(2))
    p.channel({ name: 'work', request: jobs.request, reply: jobs.reply }).handle((job) => { done.push(`${p.self.slice(-4)}:${job}`); return 'ok' })
    d.endpoint('boss', jobs).handle(async (job, ctx) => {
      const workers = d.lookup('worker').entries.filter(w => w.peer !== p.self)
      const worker = workers[done.length % workers.length]!
      await p.channel({ name: 'work', request: jobs.request, reply: jobs.reply }).call(worker.peer, job)
      return `delegated ${job} to ${worker.peer.slice(-4)} under ${ctx.token.counter}`
    })
    d.elect('boss', async (ctx) => { await ctx.saveCheckpoint([...(ctx.checkpoint?.data ?? []), p.self]) }, { kind: 'boss' })
  }
  await until(peers as never[], () => peers.every(p => p.services.discovery.lookup('worker').entries.length === 3), 'every worker visible everywhere')
  assert.ok(peers[0]!.services.discovery.lookup('worker').entries.every(e => e.meta instanceof Slots && e.meta.n === 2), 'metadata decoded by its codec')
  const submitter = peers[2]!.services.discovery.endpoint('boss', jobs)
  const first = await submitter.call('job-1', { waitForHolder: true, timeoutMs: 10_000 })
  assert.match(first, /^delegated job-1 to/)
  const boss = peers[0]!.services.discovery.whereis('boss')!
  const bossPeer = peers.find(p => p.self === boss.peer)!
  await bossPeer.stop() // leaves gracefully: hands the boss over
  const rest = peers.filter(p => p !== bossPeer)
  await until(rest as never[], () => rest.every(p => { const h = p.services.discovery.whereis('boss'); return h !== undefined && h.peer !== boss.peer }), 'a new boss', 10_000)
  const submitter2 = rest[rest.length - 1]!.services.discovery.endpoint('boss', jobs)
  const second = await submitter2.call('job-2', { waitForHolder: true, timeoutMs: 10_000 })
  assert.match(second, /^delegated job-2 to/)
  const next = rest[0]!.services.discovery.whereis('boss')!
  assert.ok(compareEventIds(boss.token, next.token) < 0, 'the new grant\'s token is higher')
  await until(rest as never[], () => rest.every(p => p.services.discovery.lookup('worker').entries.length === 2), 'the departed worker is gone everywhere')
  assert.ok(done.length >= 2)
})

test('over TCP: a lookup is answered from the local replica, and a watcher on another peer sees the registration settle', async () => {
  const peers = await cluster(2)
  const [a, b] = peers as [Peer, Peer]
  const seen: string[] = []
  b.services.discovery.watch('cache', e => { seen.push(e.kind) })
  const reg = a.services.discovery.register('cache', new Slots(8))
  const since = await reg.settled({ timeoutMs: 10_000 })
  await until(peers as never[], () => seen.includes('registered'), 'b\'s watcher sees it')
  const found = b.services.discovery.lookup('cache')
  assert.equal(found.entries[0]?.peer, a.self)
  assert.deepEqual(found.entries[0]?.since, since)
  assert.ok(compareEventIds(found.asOf, since) >= 0, 'valid as of an id at or after the registration')
  assert.deepEqual(seen.slice(0, 2), ['snapshot', 'registered'])
})
