/**
 * Ejection (src/peer/membership/ejection.ts) on stubs: what a settled history this peer does
 * not share means depends on the group it was shown in; a dissemination ends by its deadline
 * even when its changes are never saved.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Ejection } from '../src/peer/membership/ejection.js'
import { Lifecycle, type SomeReplica } from '../src/peer/lifecycle.js'
import type { LegionCounters } from '../src/peer/options.js'
import type { Push } from '../src/peer/push.js'
import type { GroupPayload } from '../src/peer/protocol/fold-batch.js'
import type { WaitOptions } from '../src/peer/options.js'
import { ManualClock } from '../src/time/clock.js'
import { within } from './support/deadline.js'

/** A peer `a` that is a member, with a cluster-wide group and a managed group `g` it is leaving. */
function member (): { ejection: Ejection, lifecycle: Lifecycle, counters: { timesEjected: number }, rejoins: number[], rejected: string[], forgotten: string[], log: string[] } {
  const lifecycle = new Lifecycle()
  const incarnation = lifecycle.newIncarnation()
  const rejected: string[] = []
  const replica = (id: string, participants: string[]): SomeReplica => ({
    id,
    divergedFrom: new Set<string>(),
    fold: { projectedParticipants: () => participants },
    rejectEjected: () => { rejected.push(id) }
  }) as unknown as SomeReplica
  incarnation.groups.set('', replica('', ['a', 'b', 'c']))
  incarnation.groups.set('g', replica('g', ['b', 'c'])) // a's own UnJoin is outstanding here
  lifecycle.becomeMember(incarnation)
  const counters = { timesEjected: 0, divergences: 0 }
  const rejoins: number[] = []
  const log: string[] = []
  const forgotten: string[] = []
  const logger = Object.assign((f: string, ...args: unknown[]) => { log.push(`${f} ${args.join(' ')}`) }, { error: () => {}, trace: () => {}, enabled: false })
  const ejection = new Ejection({
    self: 'a',
    lifecycle,
    push: {} as Push,
    allows: () => true,
    rejoin: () => { rejoins.push(1) },
    forget: (group) => { forgotten.push(group) },
    counters: counters as unknown as LegionCounters,
    clock: new ManualClock(),
    log: logger as never
  })
  return { ejection, lifecycle, counters, rejoins, rejected, forgotten, log }
}

test('a managed group settled without this peer (it left, or was removed) does not eject it from the cluster: it forgets its state of that group', () => {
  const m = member()
  const g = m.lifecycle.incarnation!.groups.get('g')!
  m.ejection.diverged(g, 'b', true, false)
  m.ejection.diverged(g, 'c', true, false)
  assert.equal(m.lifecycle.phase.kind, 'member', 'still a member of the cluster')
  assert.equal(m.counters.timesEjected, 0)
  assert.deepEqual(m.rejoins, [])
  assert.deepEqual(m.rejected, ['g', 'g'], 'what it waited for in g alone is answered: it can no longer fold here')
  assert.deepEqual(m.forgotten, ['g', 'g'], 'its stale state of g is forgotten: a participant may add it again')
  assert.match(m.log.join('\n'), /settled without this peer/)
})

test('the cluster-wide group settled without this peer ejects it; a different history in a managed group does, once two show it', () => {
  const m = member()
  m.ejection.diverged(m.lifecycle.incarnation!.groups.get('')!, 'b', true, false)
  assert.equal(m.lifecycle.phase.kind, 'ejected')
  assert.deepEqual(m.rejoins, [1])
  const n = member()
  const g = n.lifecycle.incarnation!.groups.get('g')!
  n.ejection.diverged(g, 'b', false, false)
  assert.equal(n.lifecycle.phase.kind, 'member', 'one participant\'s word is not enough')
  n.ejection.diverged(g, 'c', false, false)
  assert.equal(n.lifecycle.phase.kind, 'ejected', 'two show it: this peer rejoins to take their history')
  assert.equal(n.counters.timesEjected, 1)
})

/**
 * A member `a` of a cluster {a, b, c} whose pushes wait for saves the test controls: `save`
 * resolves every save wait begun so far; `pushes` records each push's options.
 */
function disseminating (): { ejection: Ejection, incarnation: ReturnType<Lifecycle['newIncarnation']>, clock: ManualClock, save: () => void, pushes: Array<{ peer: string, options: WaitOptions }> } {
  const lifecycle = new Lifecycle()
  const incarnation = lifecycle.newIncarnation()
  incarnation.groups.set('', { id: '', others: () => ['b', 'c'], isParticipant: () => true } as unknown as SomeReplica)
  lifecycle.becomeMember(incarnation)
  const clock = new ManualClock()
  let waiting: Array<() => void> = []
  const pushes: Array<{ peer: string, options: WaitOptions }> = []
  const entries: GroupPayload[] = [{ group: '', payload: new Uint8Array(1) }]
  const push = {
    payloadsFor: async () => { await new Promise<void>(resolve => { waiting.push(resolve) }); return entries },
    push: async (peer: string, _epoch: number, _entries: readonly GroupPayload[], options: WaitOptions) => {
      pushes.push({ peer, options })
      return [{ group: '', merged: true }]
    }
  } as unknown as Push
  const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })
  const ejection = new Ejection({
    self: 'a',
    lifecycle,
    push,
    allows: () => true,
    rejoin: () => {},
    forget: () => {},
    counters: {} as LegionCounters,
    clock,
    log: log as never
  })
  return { ejection, incarnation, clock, save: () => { const w = waiting; waiting = []; for (const f of w) f() }, pushes }
}

/**
 * A peer `a` whose cluster group has `cluster`'s participants (read each time); `start` makes
 * it a member and gives its Ejection, once the test has added its other groups.
 */
function withCluster (cluster: { settled: string[], projected: string[] }): { incarnation: ReturnType<Lifecycle['newIncarnation']>, start: () => Ejection } {
  const lifecycle = new Lifecycle()
  const incarnation = lifecycle.newIncarnation()
  incarnation.groups.set('', {
    id: '',
    fold: { projectedParticipants: () => cluster.projected, infimumParticipants: () => cluster.settled },
    isParticipant: (p: string) => cluster.projected.includes(p)
  } as unknown as SomeReplica)
  const start = (): Ejection => {
    lifecycle.becomeMember(incarnation)
    const logger = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })
    return new Ejection({ self: 'a', lifecycle, push: {} as Push, allows: () => true, rejoin: () => {}, forget: () => {}, counters: { timesEjected: 0 } as unknown as LegionCounters, clock: new ManualClock(), log: logger as never })
  }
  return { incarnation, start }
}

test('a peer leaves the managed groups once its UnJoin folded in the cluster\'s group, not while it is pending (it may never fold)', () => {
  // Link cuts on the keyspace, seed 21: two peers ejected each other; the loser's UnJoin of the
  // winner never folded in the cluster, but its copy in a partition's group, recorded by a third
  // peer while it was pending, folded among that group's fewer participants and split the group
  // from a peer that was still in the cluster.
  const cluster = { settled: ['a', 'b', 'c'], projected: ['a', 'c'] } // b's UnJoin pending
  const { incarnation, start } = withCluster(cluster)
  const unjoined: string[] = []
  incarnation.groups.set('g', {
    id: 'g',
    definition: { membership: 'managed' },
    fold: { disassociate: (p: string) => { unjoined.push(p); return {} }, hasJoined: () => true },
    others: () => ['b', 'c'].filter(p => !unjoined.includes(p)),
    afterUpdate: () => {}
  } as unknown as SomeReplica)
  const ejection = start()
  ejection.inspect(incarnation)
  assert.deepEqual(unjoined, [], 'no UnJoin of b in g while its UnJoin in the cluster is pending')
  cluster.settled = ['a', 'c'] // it folded
  ejection.inspect(incarnation)
  assert.deepEqual(unjoined, ['b'])
  ejection.inspect(incarnation)
  assert.deepEqual(unjoined, ['b'], 'once')
})

test('a replica of a managed group whose own Join has not folded there records no departures; a cluster-wide group\'s does', () => {
  // Harsh keyspace link cuts with R = 2, seed 325 (docs/RELIABILITY.md): two incoming replicas,
  // their Joins pending, recorded the UnJoins of both owners as those left the cluster, stood in
  // for both with no participant remaining to say what they held, and folded past a write the
  // owners had acknowledged; that history became the partition's.
  const cluster = { settled: ['a', 'c'], projected: ['a', 'c'] } // b left the cluster
  const { incarnation, start } = withCluster(cluster)
  const unjoined: string[] = []
  const replica = (id: string, membership: 'managed' | 'cluster', joined: boolean): SomeReplica => ({
    id,
    definition: { membership },
    fold: { disassociate: (p: string) => { unjoined.push(`${id}:${p}`); return {} }, hasJoined: () => joined },
    others: () => ['b', 'c'],
    afterUpdate: () => {}
  }) as unknown as SomeReplica
  incarnation.groups.set('joining', replica('joining', 'managed', false))
  incarnation.groups.set('joined', replica('joined', 'managed', true))
  incarnation.groups.set('wide', replica('wide', 'cluster', false))
  const ejection = start()
  ejection.inspect(incarnation)
  assert.deepEqual(unjoined.sort(), ['joined:b', 'wide:b'])
})

test('an automatic ejection\'s UnJoin carries quorum and an operator\'s does not; an operator may remove a peer whose automatic ejection is pending', async () => {
  // Harsh keyspace link cuts, seed 293 (docs/RELIABILITY.md): the failure detector's ejections
  // stand in only for a majority; eject() is the operator's way past that.
  const lifecycle = new Lifecycle()
  const incarnation = lifecycle.newIncarnation()
  const cluster = { settled: ['a', 'b', 'c', 'd'], projected: ['a', 'c', 'd'] } // b's automatic ejection pending
  const unjoins: Array<[string, boolean | undefined]> = []
  incarnation.groups.set('', {
    id: '',
    fold: { projectedParticipants: () => cluster.projected, infimumParticipants: () => cluster.settled, disassociate: (p: string, o?: { quorum?: boolean }) => { unjoins.push([p, o?.quorum]); return {} } },
    isParticipant: (p: string) => cluster.projected.includes(p),
    others: () => [],
    afterUpdate: () => {}
  } as unknown as SomeReplica)
  lifecycle.becomeMember(incarnation)
  const logger = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })
  const ejection = new Ejection({ self: 'a', lifecycle, push: { payloadsFor: async () => [] } as unknown as Push, allows: () => true, rejoin: () => {}, forget: () => {}, counters: { autoEjections: 0 } as unknown as LegionCounters, clock: new ManualClock(), log: logger as never })
  await ejection.ejectSuspect('b', () => 'silent', 1000)
  assert.deepEqual(unjoins, [], 'b\'s automatic ejection is already pending')
  await ejection.ejectSuspect('c', () => 'silent', 1000)
  await ejection.eject('b')
  assert.deepEqual(unjoins, [['c', true], ['b', false]])
  await assert.rejects(ejection.eject('z'), { name: 'NotParticipantError' })
})

test('a dissemination whose changes are never saved here ends at its deadline, every peer unreachable', async () => {
  const d = disseminating()
  const done = d.ejection.disseminate(d.incarnation, [], { timeoutMs: 1000 })
  await d.clock.advance(999)
  let settled = false
  void done.then(() => { settled = true })
  await d.clock.advance(0)
  assert.equal(settled, false, 'not before the deadline')
  await d.clock.advance(1)
  assert.deepEqual(await within(done, 5000, 'the dissemination'), { reached: [], unreachable: ['b', 'c'] })
  assert.deepEqual(d.pushes, [], 'nothing unsaved is sent')
})

test('a dissemination\'s pushes get what its save wait left of the deadline; an abort ends the save wait', async () => {
  const d = disseminating()
  const done = d.ejection.disseminate(d.incarnation, [], { timeoutMs: 1000 })
  await d.clock.advance(600)
  d.save()
  assert.deepEqual(await within(done, 5000, 'the dissemination'), { reached: ['b', 'c'], unreachable: [] })
  assert.deepEqual(d.pushes.map(p => [p.peer, p.options.timeoutMs]), [['b', 400], ['c', 400]])

  const e = disseminating()
  const controller = new AbortController()
  const aborted = e.ejection.disseminate(e.incarnation, [], { timeoutMs: 60_000, signal: controller.signal })
  await e.clock.advance(10)
  controller.abort()
  assert.deepEqual(await within(aborted, 5000, 'the aborted dissemination'), { reached: [], unreachable: ['b', 'c'] })
  assert.equal(e.clock.pendingTimers(), 0, 'its timer is cancelled')
})
