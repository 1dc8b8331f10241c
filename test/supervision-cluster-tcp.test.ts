/**
 * Supervision across the cluster between real peers over TCP on 127.0.0.1, in one process: a
 * placed child called by name from every peer and handed over, with its saved state, when its
 * host leaves; a replicated server among three replicas answering from every peer, refusing a
 * poison input with `PoisonInputError` and listing it; bad input and unknown children as typed
 * errors at the caller; the service's metrics and its registry's, apart, on the admin endpoint.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { startLegion } from '../src/peer/start.js'
import type { Legion } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { clusterSupervision } from '../src/cluster-supervision/service.js'
import { defineServer } from '../src/supervision/server.js'
import { until } from './support/cluster.js'
import { adminCluster, request, stopPeers, urlOf, waitUntil, type AdminPeer } from './support/admin-cluster.js'
import { checkNaming, scrape, value } from './support/prometheus.js'

const spec: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
type Input = { readonly op: 'add', readonly n: number } | { readonly op: 'total' } | { readonly op: 'poison' }
const counter = defineServer<Input, number, number>({
  init: ({ restored }) => restored ?? 0,
  step: (input, total) => {
    if (input.op === 'poison') throw new Error('poisoned on purpose')
    return input.op === 'add' ? { state: total + input.n, output: total + input.n } : { state: total, output: total }
  },
  persistence: {}
})
const service = (): ReturnType<typeof clusterSupervision<{ counter: typeof counter }>> => clusterSupervision({ servers: { counter } })
type Peer = Legion<null, number, number, { supervision: ReturnType<typeof service> }>

const everyone: Peer[] = []
after(async () => { await Promise.all(everyone.map(async p => { await p.stop({ leave: false }).catch(() => {}) })) })

const fast = { heartbeatIntervalMs: 250, suspectAfterMs: 1500, stuckAfterMs: 5000 }

async function cluster (n: number): Promise<Peer[]> {
  const base = { cluster: `supervision-tcp-${process.pid}-${everyone.length}`, spec, services: { supervision: service() }, failureDetection: fast, propagation: { intervalMs: 250 } }
  const first = await startLegion({ ...base, startup: { mode: 'new' } })
  const peers: Peer[] = [first]
  for (let i = 1; i < n; i++) peers.push(await startLegion({ ...base, startup: { mode: 'join', peers: first.multiaddrs() } }))
  everyone.push(...peers)
  await until(peers as never[], () => peers.every(p => p.readState().participants.length === n), `${n} participants`)
  return peers
}

test('over TCP: a placed child answers calls by name from every peer, and its host\'s leave hands it to another peer with its state', async () => {
  const peers = await cluster(3)
  const ref = await peers[0]!.services.supervision.startChild('tally', { server: 'counter', timeoutMs: 10_000 })
  for (const p of peers) assert.ok(await p.services.supervision.call(ref, { op: 'add', n: 1 }, { timeoutMs: 10_000 }) >= 1)
  assert.equal(await peers[1]!.services.supervision.call(ref, { op: 'total' }), 3)
  const host = peers.find(p => p.self === peers[0]!.services.supervision.whereis('tally')?.peer)!
  await host.stop()
  const rest = peers.filter(p => p !== host)
  await until(rest as never[], () => rest.every(p => { const h = p.services.supervision.whereis('tally'); return h !== undefined && h.peer !== host.self }), 'a new host', 10_000)
  assert.equal(await rest[0]!.services.supervision.call(ref, { op: 'total' }, { timeoutMs: 10_000 }), 3, 'the state its terminate saved')
  assert.ok(rest.some(p => p.services.supervision.whichChildren()[0]!.runningHere))
})

test('over TCP: a replicated server answers from every peer once three replicas acknowledged; a poison input is refused everywhere and listed', async () => {
  const peers = await cluster(4)
  const ref = await peers[3]!.services.supervision.startReplicated('ledger', { server: 'counter', replicas: 3, timeoutMs: 10_000 })
  let expected = 0
  for (const p of peers) { expected += 2; assert.equal(await p.services.supervision.call(ref, { op: 'add', n: 2 }, { timeoutMs: 10_000 }), expected) }
  await assert.rejects(peers[1]!.services.supervision.call(ref, { op: 'poison' }, { timeoutMs: 10_000 }), (err: Error) => err.name === 'PoisonInputError' && /poisoned on purpose/.test(err.message))
  assert.equal(await peers[2]!.services.supervision.call(ref, { op: 'total' }, { timeoutMs: 10_000 }), expected, 'the poison left the state alone')
  // peers[0] reads its own replica, which settles the record once the other replicas'
  // acknowledgements reach it: they go to the record's creator at once and to everyone at the
  // next anti-entropy round (codec format 6), so it may list it an interval after the caller.
  let listed = await peers[0]!.services.supervision.quarantined('ledger', { timeoutMs: 10_000 })
  const deadline = Date.now() + 10_000
  while (listed.length === 0 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 50))
    listed = await peers[0]!.services.supervision.quarantined('ledger', { timeoutMs: 10_000 })
  }
  assert.equal(listed.length, 1)
  assert.match(listed[0]!.thrown, /poisoned on purpose/)
  await until(peers as never[], () => peers.filter(p => p.services.supervision.whichChildren()[0]?.quarantinedTotal === 1).length === 3, 'three replicas hold the record')
})

test('over TCP: an input the codec refuses is BadInputError and a child nobody declared is UnknownServerError, at the caller', async () => {
  const peers = await cluster(2)
  await peers[0]!.services.supervision.startChild('c', { server: 'counter', timeoutMs: 10_000 })
  await assert.rejects(peers[1]!.services.supervision.call('c', { op: 'add', n: () => 1 }), { name: 'BadInputError' })
  await assert.rejects(peers[1]!.services.supervision.call('nobody', { op: 'total' }), { name: 'UnknownServerError' })
  const aborted = new AbortController()
  aborted.abort()
  await assert.rejects(peers[1]!.services.supervision.call('c', { op: 'total' }, { signal: aborted.signal }), { name: 'CallAbortedError' })
})

test('over TCP: the admin endpoint shows the service\'s metrics and its registry\'s apart (legion_supervision_registry_...), by Prometheus\'s naming rules, and its views', async () => {
  const peers = await adminCluster(3, undefined, 12, () => ({ supervision: service() }))
  try {
    const sup = (p: AdminPeer): Peer['services']['supervision'] => (p.services as unknown as Peer['services']).supervision
    const ref = await sup(peers[0]!).startReplicated('ledger', { server: 'counter', replicas: 3, timeoutMs: 10_000 })
    assert.equal(await sup(peers[1]!).call(ref, { op: 'add', n: 4 }, { timeoutMs: 10_000 }), 4)
    await assert.rejects(sup(peers[2]!).call(ref, { op: 'poison' }, { timeoutMs: 10_000 }), { name: 'PoisonInputError' })
    await waitUntil(() => peers.every(p => sup(p).whichChildren()[0]?.quarantinedTotal === 1), 'every replica settled the quarantine record')
    const primary = peers.find(p => p.self === sup(peers[0]!).whereis('ledger')?.peer)!
    const scrapes = await Promise.all(peers.map(async p => await scrape(urlOf(p))))
    for (const s of scrapes) checkNaming(s)
    const sum = (name: string): number => scrapes.reduce((n, s) => n + (value(s.metrics, name) ?? 0), 0)
    assert.equal(sum('legion_supervision_registry_names_held'), 1, 'one primary holds the child\'s name')
    assert.equal(value(scrapes[peers.indexOf(primary)]!.metrics, 'legion_supervision_registry_names_held'), 1)
    assert.equal(value(scrapes[peers.indexOf(primary)]!.metrics, 'legion_supervision_children_running'), 1)
    assert.ok(scrapes.every(s => value(s.metrics, 'legion_supervision_quarantined_total') === 1), 'every replica counted the record')
    assert.ok(scrapes.every(s => s.metrics.legion_discovery_names_held === undefined), 'no discovery service here: nothing under its prefix')
    const views = (await request(`${urlOf(peers[1]!)}/views`)).body.views as Array<{ name: string }>
    assert.deepEqual(views.map(v => v.name).filter(n => n.startsWith('supervision/')).sort(), ['supervision/children', 'supervision/holders', 'supervision/registry'])
  } finally {
    await stopPeers(peers)
  }
})
