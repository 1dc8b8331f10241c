/**
 * Links broken between OS processes (asymmetric partitions): two peers refuse each other's
 * connections and messages (through `allowPeers`) while both reach everyone else. Neither can
 * acknowledge the other's events first-hand, and no majority suspects either, so before the
 * broken-link rule the fold stalled for good. Each test runs `applyConsistent` load on every
 * peer of five (six in one) and checks that:
 * - the right peer is ejected: the end with the larger id of one broken link, or of each of two
 *   disjoint ones; the common end of two broken links, though its id is the smallest (ejecting
 *   the two ends it cannot reach would leave the peer with the bad network in and two healthy
 *   ones out), and so the common end of three among six; the participant at the other end of
 *   a joiner's link cut from before its join (the joiner is admitted: a first join names
 *   nobody unreachable), when its id is the larger;
 * - everyone else keeps folding, and nobody else is ejected;
 * - the ejected peer does not rejoin while its links are cut (its sponsors refuse it: it
 *   cannot reach participants they hear), so no rejoin stalls the peers it cannot reach;
 * - after the links heal, it rejoins and all converge;
 * - nothing acknowledged is lost or doubled.
 * Another test lets one link flap, cut and healed again and again for times around the
 * suspicion threshold, on a schedule from a seed printed before the run; replay it with
 * `LEGION_SEED=<seed> node --import tsx --test --test-name-pattern=flapping test/broken-link.test.ts`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { FailureDetectionOptions, LegionStats } from '../src/index.js'
import { seededRandom } from './support/fake-network.js'
import { Load, PeerProcess, converged, startCluster, waitFor, whatEachCounted, whatEachSaw } from './support/process-cluster.js'

type TestContext = { after: (fn: () => void) => void, diagnostic: (message: string) => void }

/** How long links stay cut after the ejection and the others' progress. */
const HOLD_MS = 8000

const ids = (peers: PeerProcess[]): string[] => peers.map(p => p.self).sort()
const byId = (peers: PeerProcess[]): PeerProcess[] => [...peers].sort((p, q) => p.self < q.self ? -1 : 1)

/** `n` peers (five by default) with load on each, every one of which folded a few events of its own. */
async function withLoad (t: TestContext, n = 5, failureDetection: FailureDetectionOptions = {}): Promise<{ peers: PeerProcess[], load: Load, explained: (since: number) => (err: Error) => Promise<never> }> {
  // Each peer's ejection log lines (who it ejected, and why) go into a failure's report.
  const peers = await startCluster(t, n, () => ({ summary: true, debug: 'legion:membership', failureDetection }))
  const load = new Load({ timeoutMs: 3000, paceMs: 50 })
  t.after(() => { load.halt() })
  /** A failed wait's error, rethrown with what each peer saw since `since`, counted and ejected. */
  const explained = (since: number) => async (err: Error): Promise<never> => {
    throw new Error(`${err.message}; ${whatEachSaw(peers, load, since)}; ${await whatEachCounted(peers)}; ${ejectionsMade(peers)}`)
  }
  for (const p of peers) load.add(p.name, () => p)
  const began = Date.now()
  await waitFor(() => peers.every(p => load.count(p.name, began, 'resolved') >= 3) || undefined, 'every peer to fold 3 events of its own', 60_000)
  return { peers, load, explained }
}

/** Cuts `links` (`cut`) or heals every link of their ends (`heal`). */
async function setLinks (links: Array<[PeerProcess, PeerProcess]>, how: 'cut' | 'heal'): Promise<void> {
  const ends = new Set(links.flat())
  await Promise.all([...ends].map(async p => await p.command('block', {
    peers: how === 'heal' ? [] : links.filter(l => l.includes(p)).map(([u, v]) => (u === p ? v : u).self)
  })))
}

/** Fails if any of `peers` was ever ejected. */
async function neverEjected (peers: PeerProcess[], everyone: PeerProcess[], load: Load, since: number): Promise<void> {
  const timesEjected = await Promise.all(peers.map(async p => (await p.command<LegionStats>('stats')).counters.timesEjected))
  if (timesEjected.some(n => n !== 0)) assert.fail(`one of ${peers.map(p => p.name).join(', ')} was ejected: ${whatEachSaw(everyone, load, since)}; ${await whatEachCounted(everyone)}; ${ejectionsMade(everyone)}`)
}

/** The automatic ejections `p` made (whom, and why), from its debug lines. */
function ejections (p: PeerProcess): string[] {
  return p.recentLog.filter(l => l.includes(' ejecting ')).map(l => l.slice(l.indexOf(' ejecting ') + ' ejecting '.length))
}

/** The latest ejections each peer made, for a failure's report. */
function ejectionsMade (peers: PeerProcess[]): string {
  return peers.map(p => `${p.name} ejected: ${ejections(p).slice(-10).join(' | ') || 'nobody'}`).join('; ')
}

/**
 * With every link healed: waits for all peers to be participants and `back` to fold again,
 * stops the load, and checks that they converge on one log holding every resolved event
 * once, at the index it resolved with. Returns when `back` rejoined.
 */
async function healedWithNothingLost (peers: PeerProcess[], load: Load, back: PeerProcess[]): Promise<number> {
  await waitFor(() => peers.every(p => JSON.stringify(p.state?.participants) === JSON.stringify(ids(peers))) || undefined, `${back.map(p => p.name).join(', ')} to rejoin once the links heal`, 90_000)
  const rejoinedAt = Date.now()
  await waitFor(() => back.every(p => load.count(p.name, rejoinedAt, 'resolved') >= 3) || undefined, `${back.map(p => p.name).join(', ')} to fold events again`, 60_000)
  await load.stop()
  await converged(peers, 'after healing and stopping the load', () => true, 60_000)
  const log = (await peers[0]!.command<{ infimum: string[] }>('readState')).infimum
  assert.equal(new Set(log).size, log.length, 'no event folded twice')
  for (const call of load.resolved()) assert.equal(log[call.output!], call.event, `${call.event} resolved with index ${call.output}`)
  return rejoinedAt
}

/** Cuts the links `cut` picks among `n` peers (sorted by id) for good, and checks the outcome above for the peers it names. */
async function breakLinks (t: TestContext, cut: (sorted: PeerProcess[]) => { links: Array<[PeerProcess, PeerProcess]>, ejected: PeerProcess[] }, n = 5): Promise<void> {
  const cluster = await withLoad(t, n)
  const { links, ejected } = cut(byId(cluster.peers))
  const cutAt = Date.now()
  await setLinks(links, 'cut')
  await ejectedUntilHealed(t, { ...cluster, links, ejected, cutAt })
}

/**
 * With `links` cut since `cutAt`: waits for `ejected` to be ejected and the others to fold on,
 * holds the cut, checks the outcome above, heals, and checks that all converge.
 */
async function ejectedUntilHealed (t: TestContext, { peers, load, explained, links, ejected, cutAt }: {
  peers: PeerProcess[], load: Load, explained: (since: number) => (err: Error) => Promise<never>, links: Array<[PeerProcess, PeerProcess]>, ejected: PeerProcess[], cutAt: number
}): Promise<void> {
  const names = ejected.map(p => p.name).join(' and ')
  const ends = new Set(links.flat())
  const stayers = peers.filter(p => !ejected.includes(p))
  // A participant first (a joiner's Join may still be on its way) at every stayer that can
  // reach it, then out of every stayer's view, the first possibly some seconds before the second.
  const inView = (e: PeerProcess): boolean => stayers.every(p => links.some(l => l.includes(p) && l.includes(e)) || (p.state?.participants ?? []).includes(e.self))
  await waitFor(() => ejected.every(inView) || undefined, `${names} to be a participant everywhere`, 60_000).catch(explained(cutAt))
  const seenOut = new Set<PeerProcess>()
  await waitFor(() => {
    for (const e of ejected) if (stayers.every(p => !(p.state?.participants ?? []).includes(e.self))) seenOut.add(e)
    return seenOut.size === ejected.length || undefined
  }, `${names} to be ejected`, 60_000).catch(explained(cutAt))
  const ejectedAt = Date.now()
  await waitFor(() => stayers.every(p => load.count(p.name, ejectedAt, 'resolved') >= 5) || undefined, 'everyone else to fold 5 more events', 60_000)
    .catch(explained(ejectedAt))
  // The cut lasts a while longer (the fault's duration, not a wait for anything): the ejected
  // end asks to rejoin at every tick and is refused, so the peers it cannot reach never wait
  // for it. Admitted, it would stall their folds until ejected again, about 6 s each time.
  const holdFrom = Date.now()
  await new Promise(resolve => setTimeout(resolve, HOLD_MS))
  const far = [...ends].filter(p => !ejected.includes(p))
  const failed = far.map(p => load.calls.filter(c => c.peer === p.name && c.sentAt >= holdFrom && c.error !== undefined).length)
  const stats = await Promise.all(ejected.map(async p => await p.command<LegionStats>('stats')))
  const rejoins = stats.map(s => s.counters.rejoins)
  if (rejoins.some(n => n !== 0) || failed.some(n => n !== 0)) {
    assert.fail(`while the links stayed cut, ${names} rejoined ${rejoins.join(', ')} times and ${far.map((p, i) => `${p.name} failed ${failed[i]!} calls`).join(', ')}: ${whatEachSaw(peers, load, holdFrom)}; ${await whatEachCounted(peers)}; ${ejectionsMade(peers)}`)
  }
  assert.ok(far.every(p => load.count(p.name, holdFrom, 'resolved') > 0), 'the peers it cannot reach fold meanwhile')
  // And it says why it stays out: whom it cannot reach.
  ejected.forEach((e, i) => { assert.deepEqual(stats[i]!.cannotReach, ids(links.filter(l => l.includes(e)).map(([u, v]) => u === e ? v : u)), `${e.name}'s stats().cannotReach`) })
  await neverEjected(stayers, peers, load, cutAt)

  await setLinks(links, 'heal')
  const healAt = Date.now()
  const rejoinedAt = await healedWithNothingLost(peers, load, ejected)
  assert.ok(peers.filter(p => !ends.has(p)).every(p => load.count(p.name, cutAt, 'resolved') > 0), 'the peers at no cut link never stopped folding')
  const made = peers.map(p => `${p.name} ${ejections(p).length}`).join(', ')
  t.diagnostic(`${names} ejected ${ejectedAt - cutAt} ms after the cut, back ${rejoinedAt - healAt} ms after the heal; ${load.resolved().length} of ${load.calls.length} applyConsistent resolved and checked; while the cut held ${HOLD_MS} ms more, ${far.map(p => `${p.name} resolved ${load.count(p.name, holdFrom, 'resolved')}`).join(', ')}; ejections made (logged): ${made}`)
  await Promise.all(peers.map(async p => { await p.stop() }))
}

test('a link cut between two of five processes: the larger end is ejected, the fold keeps settling, and after healing all five converge with no acknowledged event lost', { timeout: 150_000 }, async (t) => {
  await breakLinks(t, ([x, y]) => ({ links: [[x!, y!]], ejected: [y!] }))
})

test('a process cut from two of five: it is ejected, though its id is the smallest, and not the two it cannot reach; after healing all five converge with no acknowledged event lost', { timeout: 150_000 }, async (t) => {
  await breakLinks(t, ([x, y, z]) => ({ links: [[x!, y!], [x!, z!]], ejected: [x!] }))
})

test('a process cut from three of six, so that it hears only half the cluster: it is ejected and stays out while cut; after healing all six converge with no acknowledged event lost', { timeout: 150_000 }, async (t) => {
  await breakLinks(t, ([x, y, z, w]) => ({ links: [[x!, y!], [x!, z!], [x!, w!]], ejected: [x!] }), 6)
})

test('a process that joins while its link to one participant is cut: it is admitted, the larger end of the link (the participant) is ejected and stays out, and after healing all five converge with no acknowledged event lost', { timeout: 150_000 }, async (t) => {
  // A process started under load is slow for its first seconds (its code not yet optimised),
  // and three copies of the suite on two cores once kept the joiner silent for 3.5 s right
  // after its admission: the majority then ejected it, rightly, for silence, before the
  // broken-link rule this test is about could act. Twice the default suspicion leaves that
  // rule the same, only slower.
  const failureDetection = { suspectAfterMs: 6000 }
  const cluster = await withLoad(t, 4, failureDetection)
  const { peers, load } = cluster
  // The other end: not the sponsor (A), so that the joiner learns of it only from the sponsor's
  // answer; and with a larger id than the joiner's, so that it is the one ejected: an
  // established participant kept out while the link is cut, which must then find the joiner
  // it never reached (found so: it had no address to dial it by when the link healed).
  let key = await generateKeyPair('Ed25519')
  for (let i = 0; i < 100 && !peers.slice(1).some(p => p.self > peerIdFromPrivateKey(key).toString()); i++) key = await generateKeyPair('Ed25519')
  const joinerId = peerIdFromPrivateKey(key).toString()
  const other = peers.slice(1).find(p => p.self > joinerId)
  assert.ok(other !== undefined, 'a key whose id is smaller than a participant\'s')
  const cutAt = Date.now()
  await other.command('block', { peers: [joinerId] })
  const joiner = await new PeerProcess('E', {
    cluster: peers[0]!.env.cluster,
    join: peers[0]!.address,
    privateKeyHex: Buffer.from(privateKeyToProtobuf(key)).toString('hex'),
    summary: true,
    debug: 'legion:membership',
    failureDetection,
    extra: { block: [other.self] }
  }).ready()
  peers.push(joiner) // the array the failure reports read
  load.add(joiner.name, () => joiner)
  // A first join names nobody unreachable (the joiner knows no participant before the answer),
  // so it is admitted; then the link is broken like any other, and its larger end goes.
  await ejectedUntilHealed(t, { ...cluster, links: [[other, joiner]], ejected: [other], cutAt })
})

test('two disjoint links cut among five processes: the larger end of each is ejected, the other three keep folding, and after healing all five converge with no acknowledged event lost', { timeout: 150_000 }, async (t) => {
  await breakLinks(t, ([a, b, c, d]) => ({ links: [[a!, b!], [c!, d!]], ejected: [b!, d!] }))
})

test('a link between two of five processes flapping under load: nobody else is ejected, the others keep folding, and after healing all five converge with no acknowledged event lost', { timeout: 180_000 }, async (t) => {
  const seed = process.env.LEGION_SEED !== undefined && process.env.LEGION_SEED !== '' ? Number(process.env.LEGION_SEED) : (Math.random() * 0x7fffffff) | 0
  t.diagnostic(`seed=${seed}`)
  const random = seededRandom(seed)
  const { peers, load } = await withLoad(t)
  const sorted = byId(peers)
  const first = Math.floor(random.next() * 5)
  const link: [PeerProcess, PeerProcess] = [sorted[first]!, sorted[(first + 1 + Math.floor(random.next() * 4)) % 5]!]
  const others = peers.filter(p => !link.includes(p))
  const cutAt = Date.now()
  const schedule: string[] = []
  for (let i = 0; i < 6; i++) {
    // Fault timing, not synchronisation: cuts from well under to about the time after which
    // an end is ejected (a report of silence after 3 s, then the link seen for 3 s more).
    const downMs = Math.round(500 + random.next() * 5500)
    const upMs = Math.round(300 + random.next() * 1700)
    schedule.push(`${downMs}/${upMs}`)
    await setLinks([link], 'cut')
    await new Promise(resolve => setTimeout(resolve, downMs))
    await setLinks([link], 'heal')
    await new Promise(resolve => setTimeout(resolve, upMs))
  }
  const healAt = Date.now()
  await neverEjected(others, peers, load, cutAt)
  const ejections = (await Promise.all(link.map(async p => (await p.command<LegionStats>('stats')).counters.timesEjected))).reduce((a, b) => a + b, 0)
  const rejoinedAt = await healedWithNothingLost(peers, load, link)
  assert.ok(others.every(p => load.count(p.name, cutAt, 'resolved') > 0), 'the peers at no cut link folded meanwhile')
  t.diagnostic(`${link[0].name}–${link[1].name} cut and healed (ms) ${schedule.join(', ')}; ${ejections} ejections of its ends; all five back ${rejoinedAt - healAt} ms after the last heal; ${load.resolved().length} of ${load.calls.length} applyConsistent resolved and checked`)
  await Promise.all(peers.map(async p => { await p.stop() }))
})
