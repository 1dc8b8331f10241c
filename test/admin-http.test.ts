/**
 * The admin endpoint over HTTP against real peers (TCP on 127.0.0.1, endpoints on free loopback
 * ports): health and readiness from before the peer joins, the JSON views, guarded mutations,
 * plan-then-commit, the handler mounted in an application's own server, and bad input of every
 * kind answered with a clear error and never a crash.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { admin } from '../src/admin/index.js'
import { PROTOCOL_VERSION } from '../src/version.js'
import { startLegion } from '../src/peer/start.js'
import { defineService } from '../src/peer/services.js'
import { partitionTableSpec, type PartitionTable } from '../src/partitions/partition-table.js'
import { defineServer, startSupervision, supervisor, worker } from '../src/supervision/index.js'
import { adminCluster, request, stopPeers, TOKEN, urlOf, waitUntil, type AdminPeer } from './support/admin-cluster.js'

const running: AdminPeer[] = []
after(async () => { await stopPeers(running.splice(0)) })

async function cluster (...args: Parameters<typeof adminCluster>): Promise<AdminPeer[]> {
  const peers = await adminCluster(...args)
  running.push(...peers)
  return peers
}

test('/alive answers while the peer is still joining, /ready and the views say 503 until it is a member, and a failed start-up closes the port', async () => {
  // A join target that accepts TCP connections and never speaks: the join hangs until its timeout.
  const sockets = new Set<Socket>()
  const silent: Server = createServer(socket => { sockets.add(socket); socket.on('error', () => {}) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  const fakeId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const target = `/ip4/127.0.0.1/tcp/${(silent.address() as AddressInfo).port}/p2p/${fakeId}`
  let listening!: (url: string) => void
  const url = new Promise<string>(resolve => { listening = resolve })
  const starting = startLegion({
    cluster: 'admin-joining',
    spec: partitionTableSpec(4),
    startup: { mode: 'join', peers: [target] },
    joinTimeoutMs: 3000,
    services: { admin: admin({ onListening: listening }) }
  })
  const rejected = assert.rejects(starting, { name: 'JoinError' })
  try {
    const u = await url
    const alive = await request(`${u}/alive`)
    assert.equal(alive.status, 200)
    assert.deepEqual(alive.body, { alive: true, phase: 'starting' })
    const ready = await request(`${u}/ready`)
    assert.equal(ready.status, 503)
    assert.equal(ready.body.ready, false)
    assert.deepEqual(ready.body.checks, [{ name: 'member', ok: false, reason: 'this peer is starting' }])
    const members = await request(`${u}/members`)
    assert.equal(members.status, 503)
    assert.equal(members.body.error, 'NotMember')
    const status = await request(`${u}/status`)
    assert.equal(status.status, 200)
    assert.equal(status.body.phase, 'starting')
    await rejected
    await assert.rejects(fetch(`${u}/alive`), 'the port closes with the failed start-up')
  } finally {
    for (const s of sockets) s.destroy()
    silent.close()
  }
})

test('on a 3-peer cluster the endpoint shows status, members, partitions, groups, stats, contributed views, supervision trees and changes', async () => {
  const counter = defineServer<number, number, number>({ init: () => 0, step: (n, total) => ({ state: total + n, output: total + n }) })
  const tree = await startSupervision(supervisor('root', {}, [worker('counter', counter)]))
  after(async () => { await tree.stop() })
  const holders = defineService({
    name: 'registry',
    needs: ['views'],
    create: ({ views }) => { views.add('holders', { title: 'Elected holders', read: () => [{ name: 'leader', holder: 'someone' }] }); return {} }
  })
  const peers = await cluster(3, (i) => i === 0 ? { supervision: { main: tree } } : {})
  // The first peer also runs a service that contributes a view (as the registry layer will).
  const [a] = peers
  const withView = await startLegion({
    cluster: a!.clusterName,
    spec: partitionTableSpec(12),
    startup: { mode: 'join', peers: a!.multiaddrs() },
    failureDetection: { autoEject: false },
    services: { registry: holders, admin: admin() }
  })
  running.push(withView as unknown as AdminPeer)
  await waitUntil(() => peers.every(p => p.readState().participants.length === 4), '4 participants')
  // The failure detector watches a new member from its next heartbeat round on; until then the
  // member's silence is not known (and /members leaves it out).
  await waitUntil(() => a!.stats().silence.length === 3, 'a watches the three other members')
  const u = urlOf(peers[0]!)

  const status = await request(`${u}/status`)
  assert.equal(status.status, 200)
  assert.equal(status.body.self, a!.self)
  assert.equal(status.body.phase, 'member')
  assert.equal(status.body.ready, true)
  assert.equal(status.body.members, 4)
  assert.equal(status.body.protocol, PROTOCOL_VERSION)
  assert.equal(status.body.partitionTable, true)
  assert.deepEqual(status.body.supervision, ['main'])

  const members = await request(`${u}/members`)
  const list = members.body.members as Array<{ peer: string, self: boolean, status: string, silentForMs?: number }>
  assert.deepEqual(list.map(m => m.peer), [...peers.map(p => p.self), withView.self].sort())
  assert.deepEqual(list.filter(m => m.self).map(m => m.peer), [a!.self])
  assert.ok(list.every(m => m.status === 'alive'), JSON.stringify(list))
  assert.ok(list.filter(m => !m.self).every(m => typeof m.silentForMs === 'number'), 'how long each other member has been silent')

  const table = a!.readState().projected
  const partitions = await request(`${u}/partitions`)
  assert.equal(partitions.body.partitions, 12)
  assert.equal(partitions.body.version, table.version)
  assert.equal(partitions.body.balanced, true)
  assert.deepEqual(partitions.body.owners, table.owners)
  const one = await request(`${u}/partitions/5`)
  assert.deepEqual(one.body, { partition: 5, owner: table.owners[5], settledOwner: a!.readState().infimum.owners[5], version: table.version })

  const groups = await request(`${u}/groups`)
  assert.deepEqual((groups.body.groups as Array<{ id: string, held: boolean }>).map(g => [g.id, g.held]), [['', true]])
  const stats = await request(`${u}/stats`)
  assert.equal(stats.body.participants, 4)

  const viewUrl = urlOf(withView as unknown as AdminPeer)
  const views = await request(`${viewUrl}/views`)
  assert.deepEqual(views.body.views, [{ name: 'registry/holders', title: 'Elected holders', plans: false }])
  const holder = await request(`${viewUrl}/views/registry/holders`)
  assert.deepEqual(holder.body, { name: 'registry/holders', title: 'Elected holders', data: [{ name: 'leader', holder: 'someone' }] })

  const trees = await request(`${u}/supervision`)
  const [main] = trees.body.trees as Array<{ name: string, status: string, stats: { restarts: number }, root: { id: string, children: Array<{ id: string, restarts: number }> } }>
  assert.equal(main!.name, 'main')
  assert.equal(main!.status, 'running')
  assert.deepEqual(main!.root.children.map(c => [c.id, c.restarts]), [['counter', 0]])

  await waitUntil(async () => ((await request(`${u}/changes`)).body.changes as unknown[]).length > 0, 'a recorded change')
  const changes = (await request(`${u}/changes`)).body
  const kinds = (changes.changes as Array<{ kind: string, seq: number }>).map(c => c.kind)
  assert.ok(kinds.includes('member-added'), `the fourth peer's join is recorded: ${kinds.join(', ')}`)
  const latest = changes.latest as number
  assert.deepEqual((await request(`${u}/changes?after=${latest}`)).body.changes, [])

  const page = await request(`${u}/`)
  assert.match(String(page.body.text), /<title>Legion peer status<\/title>/)
  assert.doesNotMatch(String(page.body.text), /<script[^>]+src=|<link[^>]+href=/, 'the page loads nothing from elsewhere')
})

test('bad input gets a clear JSON error, never a crash: unknown routes, wrong methods, missing flag or token, malformed bodies, non-members', async () => {
  const [a, b] = await cluster(2, (i) => i === 0 ? { allowMutations: true, token: TOKEN, maxBodyBytes: 1024 } : {})
  const u = urlOf(a!)
  const readOnly = urlOf(b!)
  const cases: Array<[string, Promise<{ status: number, body: Record<string, unknown>, headers: Headers }>, number, string]> = [
    ['unknown route', request(`${u}/nope`), 404, 'NotFound'],
    ['unknown nested route', request(`${u}/members/x/y/z`), 404, 'NotFound'],
    ['POST to a view', request(`${u}/members`, { method: 'POST', body: {} }), 405, 'MethodNotAllowed'],
    ['GET of a mutation', request(`${u}/leave`), 405, 'MethodNotAllowed'],
    ['DELETE', request(`${u}/status`, { method: 'DELETE' }), 405, 'MethodNotAllowed'],
    ['a mutation where they are disabled', request(`${readOnly}/members/${a!.self}/eject`, { body: {}, token: TOKEN }), 403, 'MutationsDisabled'],
    ['a mutation without a token', request(`${u}/members/${b!.self}/eject`, { body: {} }), 403, 'BadToken'],
    ['a mutation with a wrong token', request(`${u}/leave`, { body: {}, token: 'wrong-token-0123456789' }), 403, 'BadToken'],
    ['malformed JSON', request(`${u}/commit`, { body: '{"change":', token: TOKEN }), 400, 'MalformedBody'],
    ['a body of another type', request(`${u}/plan`, { body: 'x', headers: { 'content-type': 'text/plain' } }), 415, 'UnsupportedMediaType'],
    ['a body too large', request(`${u}/plan`, { body: { type: 'rebalance', pad: 'x'.repeat(2000) } }), 413, 'BodyTooLarge'],
    ['a change of no known type', request(`${u}/plan`, { body: { type: 'explode' } }), 400, 'BadChange'],
    ['a commit without a version', request(`${u}/commit`, { body: { change: { type: 'rebalance' } }, token: TOKEN }), 400, 'BadChange'],
    ['ejecting a peer that is not a member', request(`${u}/members/12D3KooWNotAMember/eject`, { body: {}, token: TOKEN }), 404, 'NotMember'],
    ['ejecting itself', request(`${u}/members/${a!.self}/eject`, { body: {}, token: TOKEN }), 400, 'CannotEjectSelf'],
    ['moving to a non-member', request(`${u}/partitions/1/move`, { body: { to: 'nobody' }, token: TOKEN }), 404, 'NotMember'],
    ['a partition out of range', request(`${u}/partitions/99`), 404, 'NoSuchPartition'],
    ['a partition that is no number', request(`${u}/partitions/-1`), 400, 'BadPartition'],
    ['planning a leave of a non-member', request(`${u}/plan`, { body: { type: 'leave', peer: 'nobody' } }), 404, 'NotMember'],
    ['broken percent-encoding', request(`${u}/members/%E0%A4%A/eject`, { body: {}, token: TOKEN }), 400, 'BadPath'],
    ['an unknown view', request(`${u}/views/none/such`), 404, 'NoSuchView'],
    ['a bad changes cursor', request(`${u}/changes?after=abc`), 400, 'BadQuery']
  ]
  for (const [what, answer, status, error] of cases) {
    const r = await answer
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`)
    assert.equal(r.body.error, error, what)
    assert.equal(typeof r.body.message, 'string', what)
    if (status === 405) assert.ok((r.headers.get('allow') ?? '') !== '', `${what}: Allow names the methods`)
  }
  // A request that dies half-way (a socket closed mid-body) leaves the endpoint serving.
  await new Promise<void>((resolve) => {
    const { port } = new URL(u)
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.end(`POST /plan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ty`)
      socket.on('close', () => { resolve() })
    })
  })
  assert.equal((await request(`${u}/alive`)).status, 200)
  assert.equal((await request(`${readOnly}/alive`)).status, 200)
  assert.equal(a!.readState().participants.length, 2, 'nothing was changed')
})

test('a plan shows exactly which partitions a change moves, computed on the table it names; a commit at another version is refused, at the same one it does what was planned', async () => {
  const [a, b, c] = await cluster(3)
  const u = urlOf(a!)
  const before = a!.readState().projected

  // Leave (or eject) of c: its partitions, and only those, go to the others.
  const plan = (await request(`${u}/plan`, { body: { type: 'leave', peer: c!.self } })).body as { version: number, moves: Array<{ partition: number, from: string, to: string }>, after: { balanced: boolean, owned: Record<string, number> } }
  assert.equal(plan.version, before.version)
  assert.deepEqual(plan.moves.map(m => m.partition), before.owners.flatMap((o, p) => o === c!.self ? [p] : []))
  assert.ok(plan.moves.every(m => m.from === c!.self && m.to !== c!.self))
  assert.equal(plan.after.balanced, true)
  assert.deepEqual(Object.keys(plan.after.owned).sort(), [a!.self, b!.self].sort())

  // A join of a peer that does not exist yet can be planned, not committed.
  const join = await request(`${u}/plan`, { body: { type: 'join', peer: '12D3KooWFuture' } })
  assert.equal(join.status, 200)
  assert.equal((join.body.moves as unknown[]).length, 3, '12 partitions over 4 peers: 3 move to the newcomer')
  const joinCommit = await request(`${u}/commit`, { body: { change: { type: 'join', peer: '12D3KooWFuture' }, version: before.version }, token: TOKEN })
  assert.equal(joinCommit.status, 400)

  // A move planned, the table moved meanwhile (a rebalance committed by another peer), the stale commit refused.
  const move = (await request(`${u}/plan`, { body: { type: 'move', partition: 0, to: b!.self } })).body as { version: number, moves: unknown[] }
  assert.deepEqual(move.moves, before.owners[0] === b!.self ? [] : [{ partition: 0, from: before.owners[0], to: b!.self }])
  const moved = await request(`${urlOf(b!)}/partitions/1/move`, { body: { to: c!.self }, token: TOKEN })
  assert.equal(moved.status, 200, JSON.stringify(moved.body))
  await waitUntil(() => a!.readState().projected.version > before.version, 'the move to reach a')
  const stale = await request(`${u}/commit`, { body: { change: { type: 'move', partition: 0, to: b!.self }, version: move.version }, token: TOKEN })
  assert.equal(stale.status, 409)
  assert.equal(stale.body.error, 'PlanOutdated')

  // Planned again at the new version, and committed: the table ends as planned.
  const now = a!.readState().projected
  const rebalance = (await request(`${u}/plan`, { body: { type: 'rebalance' } })).body as { version: number, moves: Array<{ partition: number, from: string, to: string }> }
  const committed = await request(`${u}/commit`, { body: { change: { type: 'rebalance' }, version: rebalance.version }, token: TOKEN })
  assert.equal(committed.status, 200, JSON.stringify(committed.body))
  assert.deepEqual(committed.body.planned, rebalance.moves)
  const after = a!.readState().infimum as PartitionTable
  const expected = [...now.owners]
  for (const m of rebalance.moves) expected[m.partition] = m.to
  assert.deepEqual(after.owners, expected, 'the committed table is the planned one')

  // A leave of another peer commits as its ejection, moving what the plan said.
  const leave = (await request(`${u}/plan`, { body: { type: 'leave', peer: c!.self } })).body as { version: number, moves: Array<{ partition: number, to: string }> }
  const ejected = await request(`${u}/commit`, { body: { change: { type: 'leave', peer: c!.self }, version: leave.version }, token: TOKEN })
  assert.equal(ejected.status, 200, JSON.stringify(ejected.body))
  assert.equal(ejected.body.ejected, c!.self)
  await waitUntil(() => a!.readState().participants.length === 2, 'c to be out')
  const final = a!.readState().infimum
  for (const m of leave.moves) assert.equal(final.owners[m.partition], m.to, `partition ${m.partition} went where the plan said`)
})

test('eject removes a member, which /members and /changes show; leave answers 202 and the peer leaves the cluster and closes its port', async () => {
  const [a, b, c] = await cluster(3)
  const u = urlOf(a!)
  const ejected = await request(`${u}/members/${encodeURIComponent(c!.self)}/eject`, { body: {}, token: TOKEN })
  assert.equal(ejected.status, 200, JSON.stringify(ejected.body))
  assert.equal(ejected.body.ejected, c!.self)
  await waitUntil(async () => ((await request(`${u}/members`)).body.members as unknown[]).length === 2, 'two members listed')
  await waitUntil(async () => ((await request(`${u}/changes`)).body.changes as Array<{ kind: string, peer?: string }>).some(x => x.kind === 'member-removed' && x.peer === c!.self), 'the removal recorded')

  const bUrl = urlOf(b!)
  const left = await request(`${bUrl}/leave`, { body: {}, token: TOKEN })
  assert.equal(left.status, 202)
  assert.equal(left.body.leaving, b!.self)
  await waitUntil(() => a!.readState().participants.length === 1, 'b to have left')
  await waitUntil(async () => await fetch(`${bUrl}/alive`).then(() => false, () => true), 'b\'s endpoint to close')
})

test('mounted in the application\'s own server under a base path, the handler serves the same routes there and 404 elsewhere', async () => {
  const peer = await startLegion({
    cluster: `admin-mounted-${process.pid}`,
    spec: partitionTableSpec(4),
    startup: { mode: 'new' },
    services: { admin: admin({ listen: false, basePath: '/ops' }) }
  })
  running.push(peer as unknown as AdminPeer)
  assert.equal(peer.services.admin.url, undefined, 'no port of its own')
  const server = createHttpServer((req, res) => {
    if (req.url?.startsWith('/ops') === true) { peer.services.admin.handler(req, res); return }
    res.writeHead(200).end('the application')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  after(() => { server.close() })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  assert.equal((await request(`${base}/ops/ready`)).status, 200)
  assert.deepEqual(((await request(`${base}/ops/partitions`)).body.byOwner as Record<string, number[]>)[peer.self], [0, 1, 2, 3])
  const page = await fetch(`${base}/ops`, { redirect: 'manual' })
  assert.equal(page.status, 308, 'the page lives at /ops/, where its relative links work')
  assert.equal(page.headers.get('location'), '/ops/')
  assert.equal((await request(`${base}/other`)).body.text, 'the application')
  const eject = await request(`${base}/ops/leave`, { body: {}, token: TOKEN })
  assert.equal(eject.status, 403, 'read-only unless mutations are allowed')
})

test('wrong admin options are TypeErrors naming the option', () => {
  assert.throws(() => admin({ allowMutations: true }), /allowMutations needs options.token/)
  assert.throws(() => admin({ allowMutations: true, token: 'short' }), /options.token/)
  assert.throws(() => admin({ port: 70000 }), /options.port/)
  assert.throws(() => admin({ basePath: 'ops' }), /options.basePath/)
  assert.throws(() => admin({ supervision: { x: {} as never } }), /options.supervision.x/)
  assert.throws(() => admin(null as never), /options must be an object/)
})
