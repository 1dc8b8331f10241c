/**
 * A link broken between two of five OS processes (an asymmetric partition): A and B refuse each
 * other's connections and messages (through `allowPeers`), while both reach C, D and E. Neither
 * can acknowledge the other's events first-hand, and no majority suspects either, so before
 * the broken-link rule the fold stalled for good. The test runs `applyConsistent` load on every
 * peer and checks that:
 * - the end of the link with the larger id is ejected, and everyone else keeps folding;
 * - after the link heals, it rejoins and all five converge;
 * - nothing acknowledged is lost or doubled.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Load, converged, startCluster, waitFor, whatEachCounted, whatEachSaw, type PeerProcess } from './support/process-cluster.js'

const ids = (peers: PeerProcess[]): string[] => peers.map(p => p.self).sort()

test('a link cut between two of five processes: the larger end is ejected, the fold keeps settling, and after healing all five converge with no acknowledged event lost', { timeout: 150_000 }, async (t) => {
  const peers = await startCluster(t, 5, () => ({ summary: true }))
  const [x, y] = [...peers].sort((p, q) => p.self < q.self ? -1 : 1).slice(0, 2) as [PeerProcess, PeerProcess]
  const larger = x.self < y.self ? y : x
  const others = peers.filter(p => p !== x && p !== y)
  const load = new Load({ timeoutMs: 3000, paceMs: 50 })
  /** A failed wait's error, rethrown with what each peer saw since `since` and counted. */
  const explained = (since: number) => async (err: Error): Promise<never> => {
    throw new Error(`${err.message}; ${whatEachSaw(peers, load, since)}; ${await whatEachCounted(peers)}`)
  }
  for (const p of peers) load.add(p.name, () => p)
  const began = Date.now()
  await waitFor(() => peers.every(p => load.count(p.name, began, 'resolved') >= 3) || undefined, 'every peer to fold 3 events of its own', 60_000)

  const cutAt = Date.now()
  await Promise.all([x.command('block', { peers: [y.self] }), y.command('block', { peers: [x.self] })])
  const stayers = peers.filter(p => p !== larger)
  await waitFor(() => stayers.every(p => !(p.state?.participants ?? []).includes(larger.self)) || undefined, `${larger.name}, the larger end of the broken link, to be ejected`, 60_000)
    .catch(explained(cutAt))
  const ejectedAt = Date.now()
  await waitFor(() => stayers.every(p => load.count(p.name, ejectedAt, 'resolved') >= 5) || undefined, 'everyone else to fold 5 more events', 60_000)
    .catch(explained(ejectedAt))

  await Promise.all([x.command('block', { peers: [] }), y.command('block', { peers: [] })])
  const healAt = Date.now()
  await waitFor(() => peers.every(p => JSON.stringify(p.state?.participants) === JSON.stringify(ids(peers))) || undefined, `${larger.name} to rejoin once the link heals`, 90_000)
  const rejoinedAt = Date.now()
  await waitFor(() => load.count(larger.name, rejoinedAt, 'resolved') >= 3 || undefined, `${larger.name} to fold events again`, 60_000)
  await load.stop()
  await converged(peers, 'after healing and stopping the load', () => true, 60_000)

  const log = (await peers[0]!.command<{ infimum: string[] }>('readState')).infimum
  assert.equal(new Set(log).size, log.length, 'no event folded twice')
  for (const call of load.resolved()) assert.equal(log[call.output!], call.event, `${call.event} resolved with index ${call.output}`)
  assert.ok(others.every(p => load.count(p.name, cutAt, 'resolved') > 0), 'the others never stopped folding')
  t.diagnostic(`the larger end was ejected ${ejectedAt - cutAt} ms after the cut, rejoined ${rejoinedAt - healAt} ms after the heal; ${load.resolved().length} of ${load.calls.length} applyConsistent resolved and checked`)
  await Promise.all(peers.map(async p => { await p.stop() }))
})
