/**
 * Supervision across the cluster on stubs: whole peers with the supervision service over the
 * in-memory network and one manual clock (test/support/supervision-sim.ts), so placement,
 * failover, hand-over, replicated servers and poison inputs are specified with deterministic
 * time and no sockets. Every test that moves a child checks that no two peers ever ran it at
 * once, and counts the restarts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SupervisionSim, SIM_DETECTION, inits, sup, type SPeer } from './support/supervision-sim.js'

test('placed children spread over the members and answer calls by name from every peer', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  const names = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6']
  for (const n of names) await sim.settle(sup(peers[0]!).startChild(n, { server: 'kv' }), `start ${n}`)
  await sim.until(() => names.every(n => sim.running(n).length === 1), 'every child runs')
  const perPeer = new Map<string, number>()
  for (const n of names) { const p = sim.running(n)[0]!.peer; perPeer.set(p, (perPeer.get(p) ?? 0) + 1) }
  assert.deepEqual([...perPeer.values()].sort(), [2, 2, 2], `two children per peer: ${JSON.stringify([...perPeer])}`)
  for (const [i, p] of peers.entries()) {
    assert.equal(await sim.settle(sup(p).call('c1', { op: 'put', key: `k${i}`, value: i }), `put from ${i}`), i)
  }
  assert.deepEqual(await sim.settle(sup(peers[2]!).call('c1', { op: 'all' }), 'all'), { k0: 0, k1: 1, k2: 2 })
  await sim.stop()
})

test('a child placed on a named peer runs there', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  const target = peers[2]!
  await sim.settle(sup(peers[0]!).startChild('pinned', { server: 'kv', placement: { kind: 'peer', peer: target.self } }), 'start')
  await sim.until(() => sim.running('pinned').length === 1, 'it runs')
  assert.equal(sim.running('pinned')[0]!.peer, target.self)
  assert.equal(sup(peers[1]!).whereis('pinned')?.peer, target.self)
  await sim.stop()
})

test('with placement any, every member stands and exactly one runs the child', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  await sim.settle(sup(peers[1]!).startChild('anywhere', { server: 'kv', placement: { kind: 'any' } }), 'start')
  await sim.until(() => sim.running('anywhere').length === 1, 'it runs')
  await sim.clock.advance(5000)
  assert.equal(sim.runs.filter(r => r.child === 'anywhere').length, 1)
  await sim.stop()
})

test('a call to a child nobody can run waits for its timeout (CallTimeoutError) or its signal (CallAbortedError)', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(2)
  await sim.settle(sup(peers[0]!).startChild('nowhere', { server: 'kv', placement: { kind: 'peer', peer: 'not-a-member', fallback: false } }), 'start')
  const began = sim.clock.now()
  await assert.rejects(sim.settle(sup(peers[1]!).call('nowhere', { op: 'all' }, { timeoutMs: 3000 }), 'the call'), { name: 'CallTimeoutError' })
  const took = sim.clock.now() - began
  assert.ok(took >= 3000 && took < 4000, `gave up after ${took} simulated ms`)
  const controller = new AbortController()
  const call = sup(peers[1]!).call('nowhere', { op: 'all' }, { timeoutMs: 30_000, signal: controller.signal })
  await sim.clock.advance(500)
  controller.abort()
  await assert.rejects(sim.settle(call, 'the aborted call'), { name: 'CallAbortedError' })
  assert.equal(sim.runs.length, 0, 'nobody ran it')
  await sim.stop()
})

test('when the host crashes, the child is restarted exactly once, on a surviving peer, after the failure detector ejected the host', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(5)
  await sim.settle(sup(peers[0]!).startChild('worker', { server: 'kv' }), 'start')
  await sim.until(() => sim.running('worker').length === 1, 'it runs')
  // The standby is queued once the first run is known.
  await sim.clock.advance(2000)
  const host = peers.find(p => p.self === sim.running('worker')[0]!.peer)!
  const before = sim.runs.length
  const crashedAt = sim.clock.now()
  sim.crash(host)
  await sim.until(() => sim.running('worker').length === 1, 'a survivor runs it')
  const failover = sim.clock.now() - crashedAt
  // The survivors heard the host's last heartbeat at most one interval before the crash, and
  // suspect it suspectAfterMs after that: not restarted before then.
  const earliest = SIM_DETECTION.suspectAfterMs - SIM_DETECTION.heartbeatIntervalMs
  assert.ok(failover > earliest, `restarted after ${failover} ms: once ejected, not before`)
  await sim.clock.advance(10_000)
  const after = sim.runs.slice(before)
  assert.equal(after.length, 1, `exactly one restart: ${JSON.stringify(after)}`)
  assert.notEqual(after[0]!.peer, host.self)
  const caller = peers.find(p => p !== host)!
  assert.equal(await sim.settle(sup(caller).call('worker', { op: 'put', key: 'a', value: 1 }), 'call the new host'), 1)
  sim.assertNoOverlap()
  await sim.stop()
})

test('a call made while the host is down waits through the failover and is answered by the new host', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  await sim.settle(sup(peers[0]!).startChild('w', { server: 'kv' }), 'start')
  await sim.until(() => sim.running('w').length === 1, 'it runs')
  const host = peers.find(p => p.self === sim.running('w')[0]!.peer)!
  const caller = peers.find(p => p !== host)!
  sim.crash(host)
  const answer = await sim.settle(sup(caller).call('w', { op: 'put', key: 'x', value: 7 }, { timeoutMs: 20_000 }), 'the call')
  assert.equal(answer, 7)
  await sim.stop()
})

test('stopping the host hands the child over with the state its terminate saved; the next host starts after it stopped', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  await sim.settle(sup(peers[0]!).startChild('store', { server: 'kv' }), 'start')
  await sim.until(() => sim.running('store').length === 1, 'it runs')
  const host = peers.find(p => p.self === sim.running('store')[0]!.peer)!
  const caller = peers.find(p => p !== host)!
  await sim.settle(sup(caller).call('store', { op: 'put', key: 'kept', value: 42 }), 'put')
  inits.length = 0
  await sim.settle(host.stop(), 'the host stops (leaving)')
  await sim.until(() => sim.running('store').length === 1, 'another peer runs it')
  assert.notEqual(sim.running('store')[0]!.peer, host.self)
  assert.deepEqual(inits.filter(i => i.child === 'store'), [{ child: 'store', restored: true }], 'the next init got the saved state')
  assert.equal(await sim.settle(sup(caller).call('store', { op: 'get', key: 'kept' }), 'get'), 42)
  sim.assertNoOverlap()
  await sim.stop()
})

test('a transient child that stops normally is finished: not restarted anywhere, and calls say it is stopped', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  await sim.settle(sup(peers[0]!).startChild('job', { server: 'kv', restart: 'transient' }), 'start')
  await sim.until(() => sim.running('job').length === 1, 'it runs')
  assert.equal(await sim.settle(sup(peers[1]!).call('job', { op: 'stop' }), 'stop it'), 'bye')
  await sim.until(() => sup(peers[2]!).whichChildren().find(c => c.name === 'job')?.status === 'finished', 'finished everywhere')
  await sim.clock.advance(10_000)
  assert.equal(sim.running('job').length, 0)
  assert.equal(sim.runs.filter(r => r.child === 'job').length, 1, 'never restarted')
  await assert.rejects(sim.settle(sup(peers[2]!).call('job', { op: 'all' }), 'call'), { name: 'ServerStoppedError' })
  await sim.settle(sup(peers[2]!).restartChild('job'), 'restart it')
  await sim.until(() => sim.running('job').length === 1, 'it runs again')
  await sim.stop()
})

test('a step that throws restarts the child on its host (ServerCrashedError); past its intensity the child is failed, not moved', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  await sim.settle(sup(peers[0]!).startChild('fragile', { server: 'kv', intensity: 1, periodMs: 60_000 }), 'start')
  await sim.until(() => sim.running('fragile').length === 1, 'it runs')
  const host = sim.running('fragile')[0]!.peer
  await assert.rejects(sim.settle(sup(peers[1]!).call('fragile', { op: 'crash' }), 'crash 1'), { name: 'ServerCrashedError' })
  assert.equal(await sim.settle(sup(peers[1]!).call('fragile', { op: 'put', key: 'a', value: 1 }), 'after the restart'), 1)
  assert.equal(sim.running('fragile')[0]!.peer, host, 'restarted on the same host')
  assert.equal(sup(peers.find(p => p.self === host)!).whichChildren().find(c => c.name === 'fragile')?.local?.restarts, 1)
  await assert.rejects(sim.settle(sup(peers[1]!).call('fragile', { op: 'crash' }), 'crash 2'), { name: 'ServerCrashedError' })
  await sim.until(() => sup(peers[0]!).whichChildren().find(c => c.name === 'fragile')?.status === 'failed', 'failed everywhere')
  await sim.clock.advance(10_000)
  assert.equal(sim.running('fragile').length, 0, 'not moved to another peer')
  assert.match(sup(peers[2]!).whichChildren().find(c => c.name === 'fragile')!.reason!, /gave up/)
  await sim.stop()
})

test('stopChild stops the child wherever it runs, and a name nobody declared is UnknownServerError', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  await sim.settle(sup(peers[0]!).startChild('temp', { server: 'kv' }), 'start')
  await sim.until(() => sim.running('temp').length === 1, 'it runs')
  await sim.settle(sup(peers[1]!).stopChild('temp'), 'stop it')
  await sim.until(() => sim.running('temp').length === 0 && peers.every(p => sup(p).whichChildren().length === 0), 'gone everywhere')
  await assert.rejects(sim.settle(sup(peers[0]!).call('temp', { op: 'all' }), 'call'), { name: 'UnknownServerError' })
  await assert.rejects(sim.settle(sup(peers[0]!).stopChild('nope'), 'stop'), { name: 'UnknownServerError' })
  await sim.stop()
})

test('declaring a child again with the same terms is a no-op; with other terms it is ChildConflictError', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(2)
  await sim.settle(sup(peers[0]!).startChild('x', { server: 'kv' }), 'start')
  await sim.settle(sup(peers[1]!).startChild('x', { server: 'kv' }), 'again')
  await assert.rejects(sim.settle(sup(peers[1]!).startChild('x', { server: 'kv', restart: 'transient' }), 'other terms'), { name: 'ChildConflictError' })
  await assert.rejects(sup(peers[0]!).startChild('y', { server: 'nope' as 'kv' }), TypeError)
  await sim.stop()
})

void (null as unknown as SPeer)

/** The peers whose replica of `name` is held, as they report it. */
function replicasOf (peers: readonly SPeer[], name: string): SPeer[] {
  return peers.filter(p => sup(p).whichChildren().find(c => c.name === name)?.replicas !== undefined)
}

test('a replicated server answers once every replica acknowledged the input; a crash of its primary loses no answered input', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(5)
  await sim.settle(sup(peers[0]!).startReplicated('ledger', { server: 'kv', replicas: 3 }), 'start')
  await sim.until(() => sim.running('ledger').length === 1, 'a primary runs')
  const caller = peers[4]!
  for (let i = 0; i < 5; i++) assert.equal(await sim.settle(sup(caller).call('ledger', { op: 'put', key: `k${i}`, value: i }), `put ${i}`), i)
  await sim.until(() => replicasOf(peers, 'ledger').length === 3, 'three replicas hold it')
  const primary = peers.find(p => p.self === sim.running('ledger')[0]!.peer)!
  assert.ok(replicasOf(peers, 'ledger').includes(primary), 'the primary is a replica')
  // Answered, then the primary crashes at once: a surviving replica takes over with every input.
  assert.equal(await sim.settle(sup(caller === primary ? peers[3]! : caller).call('ledger', { op: 'put', key: 'last', value: 99 }), 'the last put'), 99)
  const before = sim.runs.length
  sim.crash(primary)
  const survivor = peers.find(p => p !== primary)!
  const all = await sim.settle(sup(survivor).call('ledger', { op: 'all' }, { timeoutMs: 30_000 }), 'read through the new primary')
  assert.deepEqual(all, { k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, last: 99 })
  const next = sim.runs.slice(before)
  assert.equal(next.length, 1, `one new primary: ${JSON.stringify(next)}`)
  assert.ok(replicasOf([primary], 'ledger').length === 1 && next[0]!.peer !== primary.self)
  // The new primary brings the group back to three replicas among the survivors.
  await sim.until(() => replicasOf(peers.filter(p => p !== primary), 'ledger').filter(p => sup(p).whichChildren().find(c => c.name === 'ledger')!.replicas!.length === 3).length === 3, 'three replicas again')
  sim.assertNoOverlap()
  await sim.stop()
})

test('a poison input is quarantined on every replica: PoisonInputError for the caller, the state untouched, listed everywhere, never stepped again after a failover', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(5)
  await sim.settle(sup(peers[0]!).startReplicated('acct', { server: 'kv', replicas: 3 }), 'start')
  await sim.settle(sup(peers[1]!).call('acct', { op: 'put', key: 'a', value: 1 }), 'put')
  const err = await sim.settle(sup(peers[1]!).call('acct', { op: 'crash' }), 'the poison').then(() => undefined, (e: unknown) => e)
  assert.equal((err as Error).name, 'PoisonInputError', String(err))
  assert.match((err as Error).message, /poison: crash/)
  await sim.until(() => replicasOf(peers, 'acct').length === 3 && replicasOf(peers, 'acct').every(p => sup(p).whichChildren().find(c => c.name === 'acct')!.quarantinedTotal === 1), 'every replica holds the record')
  const quarantinedHere = sim.events.filter(e => e.event.type === 'quarantined').map(e => e.peer)
  assert.deepEqual(new Set(quarantinedHere), new Set(replicasOf(peers, 'acct').map(p => p.self)), 'reported by every replica')
  assert.deepEqual(await sim.settle(sup(peers[1]!).call('acct', { op: 'all' }), 'state'), { a: 1 }, 'the state is as before the poison')
  const outsider = peers.find(p => !replicasOf(peers, 'acct').includes(p))!
  const listed = await sim.settle(sup(outsider).quarantined('acct'), 'the list, from a peer that is no replica')
  assert.equal(listed.length, 1)
  assert.equal(listed[0]!.event.counter, (err as { eventId: { counter: number } }).eventId.counter)
  // Fail over: the new primary starts from the folded state, in which the poison never applied.
  const primary = peers.find(p => p.self === sim.running('acct')[0]!.peer)!
  sim.crash(primary)
  const survivor = peers.find(p => p !== primary)!
  assert.deepEqual(await sim.settle(sup(survivor).call('acct', { op: 'all' }, { timeoutMs: 30_000 }), 'after the failover'), { a: 1 })
  assert.equal(await sim.settle(sup(survivor).call('acct', { op: 'put', key: 'b', value: 2 }), 'put again'), 2)
  assert.equal((await sim.settle(sup(survivor).quarantined('acct'), 'still listed')).length, 1)
  await sim.stop()
})

test('a replicated call retried with the same request id is stepped once', async () => {
  const sim = new SupervisionSim()
  const peers = await sim.cluster(3)
  await sim.settle(sup(peers[0]!).startReplicated('counter', { server: 'kv', replicas: 3 }), 'start')
  await sim.settle(sup(peers[1]!).call('counter', { op: 'put', key: 'n', value: 1 }), 'put')
  const steps = (): number | undefined => sup(peers.find(p => p.self === sim.running('counter')[0]!.peer)!).whichChildren()[0]!.steps
  await sim.until(() => steps() === 1, 'one step settled')
  // A host that went silent makes callers try again with the same id: cut the caller's replies.
  const primary = sim.running('counter')[0]!.peer
  const caller = peers.find(p => p.self !== primary)!
  sim.net.cutLink(primary, caller.self, true)
  const call = sup(caller).call('counter', { op: 'put', key: 'n', value: 2 }, { timeoutMs: 8000 })
  await sim.clock.advance(2500) // one attempt lost its reply; the next is under way
  sim.net.heal()
  assert.equal(await sim.settle(call, 'the retried call'), 2)
  const primaryPeer = peers.find(p => p.self === primary)!
  assert.ok(sup(primaryPeer).stats().served >= 3, `the primary was asked twice for the second put (served ${sup(primaryPeer).stats().served})`)
  await sim.until(() => steps() === 2, 'settled')
  await sim.clock.advance(3000)
  assert.equal(steps(), 2, 'stepped once, not once per attempt')
  await sim.stop()
})
