/**
 * Learning of one's own ejection (src/peer/membership/ejection.ts) on stubs: what a settled
 * history this peer does not share means depends on the group it was shown in.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Ejection } from '../src/peer/membership/ejection.js'
import { Lifecycle, type SomeReplica } from '../src/peer/lifecycle.js'
import type { LegionCounters } from '../src/peer/options.js'
import type { Network } from '../src/peer/network.js'
import type { Push } from '../src/peer/push.js'

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
    network: {} as Network,
    push: {} as Push,
    allows: () => true,
    rejoin: () => { rejoins.push(1) },
    forget: (group) => { forgotten.push(group) },
    counters: counters as unknown as LegionCounters,
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
