/**
 * A network partition across OS processes. Five peers (child processes on TCP loopback,
 * test/support/process-cluster.ts) share an append-only log and run `applyConsistent` load
 * throughout. The test cuts {A, B} from {C, D, E} (each side refuses the other's connections
 * and messages, through the runtime's `allowPeers`), then heals the cut, and checks:
 * - the majority ejects A and B on its own (failure detection, quorum) and keeps folding;
 * - the minority cannot fold anything: its `applyConsistent` times out, `applyFast` works;
 * - after healing, A and B find out they were ejected, rejoin, fold again, and all five
 *   converge;
 * - nothing acknowledged is lost or doubled: every `applyConsistent` that resolved anywhere is
 *   in the final log exactly once, at the index it resolved with.
 * Timings are printed as test diagnostics (docs/RELIABILITY.md reports them).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Load, converged, startCluster, waitFor, type PeerProcess } from './support/process-cluster.js'

const ids = (peers: PeerProcess[]): string[] => peers.map(p => p.self).sort()
const hasParticipants = (p: PeerProcess, expected: string[]): boolean =>
  JSON.stringify(p.state?.participants ?? []) === JSON.stringify(expected)

test('a partition {A,B} | {C,D,E}: the majority ejects A and B and keeps folding, the minority only times out, and after healing all five converge with no acknowledged event lost', { timeout: 120_000 }, async (t) => {
  const peers = await startCluster(t, 5, () => ({ summary: true }))
  const [a, b, c, d, e] = peers as [PeerProcess, PeerProcess, PeerProcess, PeerProcess, PeerProcess]
  const minority = [a, b]
  const majority = [c, d, e]
  const load = new Load({ timeoutMs: 2000, paceMs: 50 })
  for (const p of peers) load.add(p.name, () => p)
  const began = Date.now()
  await waitFor(() => peers.every(p => load.count(p.name, began, 'resolved') >= 3) || undefined, 'every peer to fold 3 events of its own')

  // The cut.
  const cutAt = Date.now()
  await Promise.all([
    ...minority.map(async p => await p.command('block', { peers: ids(majority) })),
    ...majority.map(async p => await p.command('block', { peers: ids(minority) }))
  ])
  const cut = Date.now()

  // The majority ejects A and B by itself, and keeps folding.
  await waitFor(() => majority.every(p => hasParticipants(p, ids(majority))) || undefined, 'C, D and E to eject A and B')
  const ejectedAt = Date.now()
  await waitFor(() => majority.every(p => load.count(p.name, ejectedAt, 'resolved') >= 5) || undefined, 'C, D and E each to fold 5 more events')

  // The minority cannot fold: it ejects nobody, its applyConsistent times out, applyFast works.
  await waitFor(() => minority.every(p => load.count(p.name, cut, 'ConsistencyTimeoutError') >= 2) || undefined, 'A and B each to see 2 applyConsistent time out')
  assert.equal(typeof await a.command<number>('applyFast', { event: 'A-fast-during-the-partition' }), 'number')
  await waitFor(() => a.state!.outstanding > 0 || undefined, 'A to hold its fast event')
  for (const p of minority) assert.ok(hasParticipants(p, ids(peers)), `${p.name} still counts all five: a minority ejects nobody`)

  // Heal: A and B learn they were ejected, rejoin, and fold again.
  const healAt = Date.now()
  await Promise.all(peers.map(async p => await p.command('block', { peers: [] })))
  await waitFor(() => peers.every(p => hasParticipants(p, ids(peers))) || undefined, 'A and B to rejoin: five participants everywhere')
  const rejoinedAt = Date.now()
  await waitFor(() => minority.every(p => load.count(p.name, rejoinedAt, 'resolved') >= 3) || undefined, 'A and B each to fold 3 events after rejoining')
  await load.stop()
  await converged(peers, 'after healing and stopping the load')
  const convergedAt = Date.now()

  // Every peer holds the same log; every resolved applyConsistent is in it once, where it said.
  const logs = await Promise.all(peers.map(async p => (await p.command<{ infimum: string[] }>('readState')).infimum))
  for (const [i, l] of logs.entries()) assert.deepEqual(l, logs[0], `${peers[i]!.name}'s log`)
  const log = logs[0]!
  assert.equal(new Set(log).size, log.length, 'no event folded twice')
  const resolved = load.resolved()
  for (const call of resolved) assert.equal(log[call.output!], call.event, `${call.event} resolved with index ${call.output}`)
  // The minority folded nothing while cut off; what it applied then is not in the log (its
  // fast event, its timed-out events): an ejected peer's unacknowledged events are dropped.
  const cutOff = load.calls.filter(c => minority.some(p => p.name === c.peer) && c.sentAt >= cut && c.sentAt < healAt)
  assert.ok(cutOff.every(c => c.output === undefined), 'no minority applyConsistent sent during the partition resolved')
  assert.ok(!log.includes('A-fast-during-the-partition'))
  for (const c of cutOff) assert.ok(!log.includes(c.event), `${c.event}, applied by the cut-off minority, is not in the log`)

  const ejectedErrors = load.calls.filter(c => c.error === 'EjectedError').length
  const other = load.calls.filter(c => c.error !== undefined && c.error !== 'EjectedError' && c.error !== 'ConsistencyTimeoutError')
  assert.deepEqual(other.map(c => `${c.event}: ${c.error}`), [], 'no other failure')
  t.diagnostic(`events: ${load.calls.length} applyConsistent, ${resolved.length} resolved and checked in a log of ${log.length}; ` +
    `${cutOff.length} sent by the minority while cut off, none resolved; ${ejectedErrors} rejected with EjectedError`)
  t.diagnostic(`timings (ms): cut applied ${cut - cutAt}; ejection of A and B folded on C, D, E ${ejectedAt - cut} after the cut; ` +
    `rejoin folded on all five ${rejoinedAt - healAt} after healing; converged ${convergedAt - healAt} after healing (load stopped at ${rejoinedAt - healAt}+)`)
  await Promise.all(peers.map(async p => { await p.stop() }))
})
