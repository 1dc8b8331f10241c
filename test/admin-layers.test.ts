/**
 * The admin endpoint shows the layers that arrived after it: on a 3-peer cluster (TCP on
 * 127.0.0.1, endpoints on free loopback ports) running a keyspace (the example cache) and
 * discovery, the keyspace's and discovery's views and Prometheus metrics (scraped and parsed by
 * a Prometheus text parser, held to the naming rules), and the keyspace's layout plan
 * (`GET /services/<name>/plan`), checked against what the keyspace then does when the planned
 * peer is gone. Bad input to the new routes gets typed JSON errors.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { cacheKeyspace, type Cache } from '../demo/cache/cache.js'
import { discovery, type DiscoveryInstance } from '../src/discovery/service.js'
import type { JsonValue } from '../src/codec/json.js'
import { adminCluster, request, stopPeers, TOKEN, urlOf, waitUntil, type AdminPeer } from './support/admin-cluster.js'
import { checkNaming, histogram, scrape, value } from './support/prometheus.js'

const PARTITIONS = 16
const REPLICATION = 2
const running: AdminPeer[] = []
let peers: AdminPeer[] = []
after(async () => { await stopPeers(running.splice(0)) })

const cacheOf = (p: AdminPeer): Cache => (p.services as unknown as { cache: Cache }).cache
const discoveryOf = (p: AdminPeer): DiscoveryInstance<JsonValue, JsonValue> => (p.services as unknown as { discovery: DiscoveryInstance<JsonValue, JsonValue> }).discovery

async function freshPeerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

before(async () => {
  peers = await adminCluster(3, () => ({ allowMutations: true, token: TOKEN }), 12, () => ({
    cache: cacheKeyspace({ name: 'cache', partitions: PARTITIONS, replication: REPLICATION }),
    discovery: discovery()
  }))
  running.push(...peers)
  await Promise.all(peers.map(async p => { await cacheOf(p).whenSettled({ timeoutMs: 45_000 }) }))
  await waitUntil(() => peers.every(p => cacheOf(p).table()?.members.length === 3 && cacheOf(p).stats().movesInFlight === 0), 'every keyspace table with 3 members, settled', 45_000)
})

test('the keyspace and discovery show their views and metrics through the admin endpoint', async () => {
  const [a, b] = peers as [AdminPeer, AdminPeer, AdminPeer]
  const cache = cacheOf(a)
  for (let i = 0; i < 20; i++) await cache.request(`user:${i}`, { op: 'set', value: `v${i}`, tags: ['user'] })
  await assert.rejects(cache.request('user:bad', { op: 'bogus' } as never), { name: 'HandlerError' })
  discoveryOf(a).register('worker', { slots: 4 })
  discoveryOf(b).register('worker', { slots: 2 })
  const boss = discoveryOf(a).elect('boss', () => () => {})
  await boss.whenRunning({ timeoutMs: 15_000 })
  await waitUntil(() => peers.every(p => discoveryOf(p).lookup('worker').entries.length === 2 && discoveryOf(p).whereis('boss')?.peer === a.self), 'the registrations and the grant settled everywhere')

  // The views.
  const url = urlOf(a)
  const list = await request(`${url}/views`)
  assert.equal(list.status, 200)
  assert.deepEqual((list.body.views as Array<{ name: string, plans: boolean }>).map(v => [v.name, v.plans]), [
    ['cache/partitions', false], ['cache/table', true], ['cache/handoffs', false], ['discovery/holders', false], ['discovery/registry', false]
  ])
  const owned = cache.stats().owned
  const partitions = (await request(`${url}/views/cache/partitions`)).body.data as Array<{ partition: number, role: string, held: boolean, keys: number }>
  assert.equal(partitions.length, owned)
  assert.ok(partitions.every(r => r.role === 'owner' && r.held), JSON.stringify(partitions))
  const table = cache.table()!
  assert.deepEqual(partitions.map(r => r.partition), table.assignments.flatMap((x, p) => x.owners.includes(a.self) ? [p] : []))
  const tableView = (await request(`${url}/views/cache/table`)).body.data as { version: number, partitions: number, movesInFlight: number, unowned: number, underReplicated: number, byMember: Array<{ peer: string, owner: number }> }
  assert.equal(tableView.version, table.version)
  assert.deepEqual([tableView.partitions, tableView.movesInFlight, tableView.unowned, tableView.underReplicated], [PARTITIONS, 0, 0, 0])
  assert.deepEqual(tableView.byMember.map(m => m.peer), peers.map(p => p.self).sort())
  assert.equal(tableView.byMember.reduce((n, m) => n + m.owner, 0), PARTITIONS * REPLICATION)
  const handoffs = (await request(`${url}/views/cache/handoffs`)).body.data as { inProgress: unknown[], completed: Record<string, number> }
  assert.deepEqual(handoffs.inProgress, [])
  assert.deepEqual(Object.keys(handoffs.completed).sort(), ['abandoned', 'declaredLost', 'founded', 'received', 'released', 'restored', 'sent'])
  const holders = (await request(`${url}/views/discovery/holders`)).body.data
  assert.deepEqual((holders as Array<{ name: string, holder: string }>).map(h => [h.name, h.holder]), [['boss', a.self]])

  // The metrics: Prometheus's naming rules, and the values the keyspace and discovery report.
  const s = await scrape(url)
  checkNaming(s)
  const m = s.metrics
  const ks = { keyspace: 'cache' }
  assert.equal(value(m, 'legion_keyspace_partitions', { ...ks, role: 'owner' }), owned)
  assert.equal(value(m, 'legion_keyspace_partitions', { ...ks, role: 'outgoing' }), 0)
  assert.equal(value(m, 'legion_keyspace_partitions', { ...ks, role: 'incoming' }), 0)
  assert.equal(value(m, 'legion_keyspace_table_version', ks), table.version)
  for (const gauge of ['moves_in_flight', 'partitions_unowned', 'partitions_under_replicated', 'partitions_awaiting_last_owner']) assert.equal(value(m, `legion_keyspace_${gauge}`, ks), 0, gauge)
  for (const direction of ['receiving', 'sending', 'releasing']) assert.equal(value(m, 'legion_keyspace_handoffs_in_progress', { ...ks, direction }), 0)
  assert.equal(value(m, 'legion_keyspace_partitions_lost_total', ks), 0)
  for (const counter of ['restored', 'declared_lost']) assert.equal(value(m, `legion_keyspace_partitions_${counter}_total`, ks), 0, counter)
  assert.equal(histogram(m, 'legion_keyspace_request_seconds', { ...ks, outcome: 'ok' })?.count, 20, 'one observation per request made here')
  assert.equal(histogram(m, 'legion_keyspace_request_seconds', { ...ks, outcome: 'handler_error' })?.count, 1)
  // Owners' answers, summed over the peers: each request was answered once by one owner.
  const scrapes = await Promise.all(peers.map(async p => (await scrape(urlOf(p))).metrics))
  const served = (outcome: string): number => scrapes.reduce((n, x) => n + (value(x, 'legion_keyspace_requests_served_total', { ...ks, outcome }) ?? 0), 0)
  assert.equal(served('ok'), 20)
  assert.equal(served('handler_error'), 1)
  assert.equal(served('timeout') + served('bad_request'), 0)

  assert.equal(value(m, 'legion_discovery_names_held'), 1)
  assert.equal(value(scrapes[1]!, 'legion_discovery_names_held'), 0)
  assert.equal(value(m, 'legion_discovery_candidacies', { state: 'running' }), 1)
  assert.equal(value(m, 'legion_discovery_holder_runs_total'), 1)
  for (const x of scrapes) {
    assert.equal(value(x, 'legion_discovery_registrations', { state: 'enabled' }), 2)
    assert.equal(value(x, 'legion_discovery_elections', { state: 'held' }), 1)
    assert.equal(value(x, 'legion_discovery_grants_total'), 1, 'every peer saw the one grant settle')
  }
  // No series is labelled with an application's name: names are unbounded.
  assert.doesNotMatch(s.text, /"(boss|worker)"/)
  // Lookups are the application's calls: three lookups and two whereis on b, and nothing else.
  const before = (await scrape(urlOf(b))).metrics
  for (let i = 0; i < 3; i++) discoveryOf(b).lookup('worker')
  discoveryOf(b).whereis('boss')
  discoveryOf(b).whereis('boss')
  const afterwards = (await scrape(urlOf(b))).metrics
  const delta = (call: string): number => value(afterwards, 'legion_discovery_lookups_total', { call })! - value(before, 'legion_discovery_lookups_total', { call })!
  assert.deepEqual([delta('lookup'), delta('whereis')], [3, 2])
})

test('the routes of the layers answer bad input with typed JSON errors', async () => {
  const [a, , c] = peers as [AdminPeer, AdminPeer, AdminPeer]
  const url = urlOf(a)
  const stranger = await freshPeerId()
  const cases: Array<[string, number, string]> = [
    ['/services/nope/plan?leave=x', 404, 'NoSuchService'],
    [`/services/discovery/plan?leave=${c.self}`, 404, 'NoSuchService'],
    ['/services/cache/plan', 400, 'BadQuery'],
    [`/services/cache/plan?leave=${c.self}&join=${stranger}`, 400, 'BadQuery'],
    ['/services/cache/plan?leave=', 400, 'BadQuery'],
    [`/services/cache/plan?leave=${c.self}&leave=${a.self}`, 400, 'BadQuery'],
    ['/services/cache/plan?move=3', 400, 'BadQuery'],
    ['/services/cache/plan?leave=not-a-peer', 400, 'BadPeerId'],
    ['/services/cache/plan?join=not-a-peer', 400, 'BadPeerId'],
    [`/services/cache/plan?leave=${stranger}`, 404, 'NotMember'],
    [`/services/cache/plan?join=${c.self}`, 409, 'ChangeRefused'],
    ['/views/cache/nope', 404, 'NoSuchView'],
    ['/views/nope/partitions', 404, 'NoSuchView']
  ]
  for (const [path, status, error] of cases) {
    const r = await request(url + path)
    assert.deepEqual([r.status, r.body.error], [status, error], `${path}: ${JSON.stringify(r.body)}`)
    assert.equal(typeof r.body.message, 'string')
  }
  const listed = await request(`${url}/services/nope/plan?leave=x`)
  assert.match(listed.body.message as string, /these do: cache/)
  const post = await request(`${url}/services/cache/plan`, { body: {} })
  assert.deepEqual([post.status, post.body.error], [405, 'MethodNotAllowed'])

  // A join of a peer that is not there yet: it would take its fair share.
  const join = await request(`${url}/services/cache/plan?join=${stranger}`)
  assert.equal(join.status, 200, JSON.stringify(join.body))
  const replicas = (join.body.after as { replicas: Record<string, number> }).replicas
  assert.equal(replicas[stranger], join.body.transfers)
  assert.ok([Math.floor(PARTITIONS * REPLICATION / 4), Math.ceil(PARTITIONS * REPLICATION / 4)].includes(replicas[stranger]!))
})

test('the plan of a peer\'s leave is what the keyspace does once that peer is gone, and the handoff metrics count the transfers it planned', async () => {
  const [a, b, c] = peers as [AdminPeer, AdminPeer, AdminPeer]
  const url = urlOf(a)
  const before = cacheOf(a).table()!
  const r = await request(`${url}/services/cache/plan?leave=${c.self}`)
  assert.equal(r.status, 200, JSON.stringify(r.body))
  const plan = r.body as { service: string, version: number, transfers: number, lost: number[], moves: Array<{ partition: number, after: string[], adding: string[] }> }
  assert.equal(plan.service, 'cache')
  assert.equal(plan.version, before.version)
  const held = before.assignments.flatMap((x, p) => x.owners.includes(c.self) ? [p] : [])
  assert.deepEqual(plan.moves.map(m => m.partition), held, 'exactly the partitions c held move')
  assert.equal(plan.transfers, held.length, 'one transfer each: the remaining peer that lacks it')
  assert.deepEqual(plan.lost, [])

  const received = async (): Promise<number> => {
    const counts = await Promise.all([a, b].map(async p => value((await scrape(urlOf(p))).metrics, 'legion_keyspace_handoffs_completed_total', { keyspace: 'cache', direction: 'receiving' }) ?? 0))
    return counts.reduce((n, x) => n + x, 0)
  }
  const receivedBefore = await received()
  // c crashes, and an operator ejects it.
  await c.stop({ leave: false })
  const ejected = await request(`${url}/members/${c.self}/eject`, { body: {}, token: TOKEN })
  assert.equal(ejected.status, 200, JSON.stringify(ejected.body))
  await waitUntil(() => [a, b].every(p => {
    const t = cacheOf(p).table()
    return t !== undefined && t.members.length === 2 && t.assignments.every(x => x.incoming.length === 0 && x.owners.length > 0)
  }), 'the keyspace settled without c', 45_000)

  const done = cacheOf(a).table()!
  for (let p = 0; p < PARTITIONS; p++) {
    const planned = plan.moves.find(m => m.partition === p)?.after ?? [...before.assignments[p]!.owners].sort()
    assert.deepEqual([...done.assignments[p]!.owners].sort(), planned, `partition ${p}`)
  }
  await waitUntil(async () => await received() - receivedBefore === plan.transfers, `${plan.transfers} partitions received`)
})
