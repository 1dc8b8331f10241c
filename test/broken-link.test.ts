/**
 * Links broken between OS processes (asymmetric partitions): two peers refuse each other's
 * connections and messages (through `allowPeers`) while both reach everyone else. Neither can
 * acknowledge the other's events first-hand, and no majority suspects either, so before the
 * broken-link rule the fold stalled for good. Each test runs `applyConsistent` load on every
 * peer of five and checks that:
 * - the right peer is ejected: the end with the larger id of one broken link; the common end
 *   of two broken links, though its id is the smallest (ejecting the two ends it cannot reach
 *   would leave the peer with the bad network in and two healthy ones out);
 * - everyone else keeps folding, and nobody else is ejected;
 * - after the links heal, it rejoins and all five converge;
 * - nothing acknowledged is lost or doubled.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { LegionStats } from '../src/index.js'
import { Load, converged, startCluster, waitFor, whatEachCounted, whatEachSaw, type PeerProcess } from './support/process-cluster.js'

const ids = (peers: PeerProcess[]): string[] => peers.map(p => p.self).sort()

/**
 * Starts five peers with load, cuts the links `cut` picks among them (sorted by id), and checks
 * the outcome above for the peer `cut` names to be ejected.
 */
async function breakLinks (t: { after: (fn: () => void) => void, diagnostic: (message: string) => void },
  cut: (sorted: PeerProcess[]) => { links: Array<[PeerProcess, PeerProcess]>, ejected: PeerProcess }): Promise<void> {
  const peers = await startCluster(t, 5, () => ({ summary: true }))
  const { links, ejected } = cut([...peers].sort((p, q) => p.self < q.self ? -1 : 1))
  const ends = new Set(links.flat())
  const load = new Load({ timeoutMs: 3000, paceMs: 50 })
  t.after(() => { load.halt() })
  /** A failed wait's error, rethrown with what each peer saw since `since` and counted. */
  const explained = (since: number) => async (err: Error): Promise<never> => {
    throw new Error(`${err.message}; ${whatEachSaw(peers, load, since)}; ${await whatEachCounted(peers)}`)
  }
  for (const p of peers) load.add(p.name, () => p)
  const began = Date.now()
  await waitFor(() => peers.every(p => load.count(p.name, began, 'resolved') >= 3) || undefined, 'every peer to fold 3 events of its own', 60_000)

  /** Each peer's block list: the other ends of its cut links (none to heal). */
  const block = async (healed: boolean): Promise<void> => {
    await Promise.all([...ends].map(async p => await p.command('block', {
      peers: healed ? [] : links.filter(l => l.includes(p)).map(([u, v]) => (u === p ? v : u).self)
    })))
  }
  const cutAt = Date.now()
  await block(false)
  const stayers = peers.filter(p => p !== ejected)
  await waitFor(() => stayers.every(p => !(p.state?.participants ?? []).includes(ejected.self)) || undefined, `${ejected.name} to be ejected`, 60_000)
    .catch(explained(cutAt))
  const ejectedAt = Date.now()
  await waitFor(() => stayers.every(p => load.count(p.name, ejectedAt, 'resolved') >= 5) || undefined, 'everyone else to fold 5 more events', 60_000)
    .catch(explained(ejectedAt))
  // The ejected peer may be back meanwhile: it rejoins (backing off) while its links are down.
  const timesEjected = await Promise.all(stayers.map(async p => (await p.command<LegionStats>('stats')).counters.timesEjected))
  if (timesEjected.some(n => n !== 0)) assert.fail(`somebody else was ejected too: ${whatEachSaw(peers, load, cutAt)}; ${await whatEachCounted(peers)}`)

  await block(true)
  const healAt = Date.now()
  await waitFor(() => peers.every(p => JSON.stringify(p.state?.participants) === JSON.stringify(ids(peers))) || undefined, `${ejected.name} to rejoin once the links heal`, 90_000)
  const rejoinedAt = Date.now()
  await waitFor(() => load.count(ejected.name, rejoinedAt, 'resolved') >= 3 || undefined, `${ejected.name} to fold events again`, 60_000)
  await load.stop()
  await converged(peers, 'after healing and stopping the load', () => true, 60_000)

  const log = (await peers[0]!.command<{ infimum: string[] }>('readState')).infimum
  assert.equal(new Set(log).size, log.length, 'no event folded twice')
  for (const call of load.resolved()) assert.equal(log[call.output!], call.event, `${call.event} resolved with index ${call.output}`)
  assert.ok(peers.filter(p => !ends.has(p)).every(p => load.count(p.name, cutAt, 'resolved') > 0), 'the peers at no cut link never stopped folding')
  t.diagnostic(`${ejected.name} was ejected ${ejectedAt - cutAt} ms after the cut, rejoined ${rejoinedAt - healAt} ms after the heal; ${load.resolved().length} of ${load.calls.length} applyConsistent resolved and checked`)
  await Promise.all(peers.map(async p => { await p.stop() }))
}

test('a link cut between two of five processes: the larger end is ejected, the fold keeps settling, and after healing all five converge with no acknowledged event lost', { timeout: 150_000 }, async (t) => {
  await breakLinks(t, ([x, y]) => ({ links: [[x!, y!]], ejected: y! }))
})

test('a process cut from two of five: it is ejected, though its id is the smallest, and not the two it cannot reach; after healing all five converge with no acknowledged event lost', { timeout: 150_000 }, async (t) => {
  await breakLinks(t, ([x, y, z]) => ({ links: [[x!, y!], [x!, z!]], ejected: x! }))
})
