/**
 * One run of random link cuts (test/explore/link-cuts.test.ts): 4 - 6 simulated peers under
 * load (membership-sim.ts, a manual clock), six rounds of 1 - 4 links cut at once for 2 - 20 s,
 * healed for 1 - 5 s; then everything healed, and every peer must converge with every
 * participant back and nothing acknowledged lost or folded twice (every resolved call's event
 * at the index it resolved with). Calls that time out are counted, not failures: with some
 * patterns no voter hears a majority and sees the link, and the fold waits for the heal
 * (docs/ARCHITECTURE.md, "Broken links").
 *
 * The rules order peers by id, so the seed fixes the cuts and `keys` the peers' ids; without
 * `keys` they are fresh, and a seed fixes the cuts, not the outcome.
 */
import { seededRandom, type FakeNetwork } from './fake-network.js'
import { memoryKeyValueStore, type MemoryKeyValueStore } from '../../src/storage/index.js'
import { Load, Sim, type Peer } from './membership-sim.js'

/** A fold's outstanding events as the stall report shows them (the peer's internals). */
type FoldView = { outstandingEvents: () => Array<{ id: { counter: number, participant: string }, since: number, seq: number, delta: { kind: string }, acks: string[], standIn?: unknown }> }

const short = (id: string): string => id.slice(-6)

/** What each peer sees, for a failure's report. */
function views (peers: Peer[]): string[] {
  return peers.map((p, i) => {
    const s = p.stats()
    const fold = (p as unknown as { lifecycle: { incarnation?: { groups: Map<string, { fold?: FoldView }> } } }).lifecycle.incarnation?.groups.get('')?.fold
    const first = (fold?.outstandingEvents() ?? []).slice(0, 3).map(e =>
      `${e.id.counter}@${short(e.id.participant)} log ${e.since}/${e.seq} ${e.delta.kind} acks ${e.acks.map(short).join(',')}${e.standIn !== undefined ? ` standIn ${JSON.stringify(e.standIn)}` : ''}`)
    return `${i} ${short(p.self)}: ${s.membership}, participants ${p.readState().projectedParticipants.map(short).join(',')}, ` +
      `outstanding ${p.readState().outstanding}, log ${p.readState().infimum.log.length}, ejected ${s.counters.timesEjected}, ` +
      `divergent ${s.divergent.map(d => short(d.peer)).join(',')}, stuck ${s.stuck.map(d => short(d.peer)).join(',')}; first outstanding: ${first.join(' | ')}`
  })
}

/**
 * Cuts 1 - 4 random links among `peers` (one way, in a direction drawn at random, half of the
 * time when `oneWay`); returns them as `a-b` (both ways) or `a>b` (what a sends b is lost), by
 * index. The draws are the plan's: a seed replays the same cuts.
 */
export function cutRandomLinks (random: { next: () => number }, net: FakeNetwork, peers: readonly string[], oneWay: boolean): string[] {
  const n = peers.length
  const cut: string[] = []
  for (let k = 1 + Math.floor(random.next() * 4); k > 0; k--) {
    const a = Math.floor(random.next() * n)
    const b = (a + 1 + Math.floor(random.next() * (n - 1))) % n
    const one = oneWay && random.next() < 0.5
    net.cutLink(peers[a]!, peers[b]!, one)
    cut.push(one ? `${a}>${b}` : `${a}-${b}`)
  }
  return cut
}

/** What a run that converged reports. */
export interface LinkCutsReport {
  readonly peers: number
  /** Calls that resolved. */
  readonly resolved: number
  /** Calls that timed out while links were cut. */
  readonly timedOut: number
  /** Times a peer learnt it was ejected, summed over the peers. */
  readonly ejections: number
  /** The cuts, round by round. */
  readonly plan: readonly string[]
}

/** Options of {@link linkCutsRun}. */
export interface LinkCutsOptions {
  /** Cut each link one way only, in a direction drawn at random, half of the time. @default false */
  readonly oneWay?: boolean
  /** Rounds of cuts before the final heal. @default 6 */
  readonly rounds?: number
  /** Heal for 0.5 - 2 s between rounds instead of 1 - 5 s. @default false */
  readonly shortHeals?: boolean
  /** Peers in the cluster (the seed still draws a count first: runs without this option keep their plans). @default 4 - 6, drawn from the seed */
  readonly peers?: number
  /**
   * Peers keep their state in (memory) storage, and in half of the rounds one of them, drawn at
   * random, crashes as the links are cut and starts again from its storage as they heal.
   * @default false
   */
  readonly crashes?: boolean
  /**
   * Every message arrives after a delay of up to this many simulated ms, in order on each link
   * and protocol but not across them (`FakeNetwork.delay`). @default 0: each in the next turn
   */
  readonly delayMs?: number
}

/** Runs seed `seed` (peer keys from `keys` if given); throws, with every peer's view, unless all converge with nothing lost. */
export async function linkCutsRun (seed: number, keys?: number, options: LinkCutsOptions = {}): Promise<LinkCutsReport> {
  const random = seededRandom(seed * 7919)
  const drawn = 4 + Math.floor(random.next() * 3)
  const n = options.peers ?? drawn
  const sim = new Sim({}, keys === undefined ? undefined : keys * 1000 + seed)
  try {
    const stores: MemoryKeyValueStore[] = []
    const peers = await sim.cluster(n, () => {
      if (options.crashes !== true) return {}
      const storage = memoryKeyValueStore()
      stores.push(storage)
      return { storage }
    })
    // Once the cluster is up: starting peers wait for joins without advancing the clock.
    if (options.delayMs !== undefined && options.delayMs > 0) sim.net.delay(seededRandom(seed * 7919 + 1), options.delayMs)
    const load = new Load(sim, 600)
    const plan: string[] = []
    for (let round = 0; round < (options.rounds ?? 6); round++) {
      const cut = cutRandomLinks(random, sim.net, peers.map(p => p.self), options.oneWay === true)
      const hold = 2000 + Math.floor(random.next() * 18_000)
      const rest = options.shortHeals === true ? 500 + Math.floor(random.next() * 1500) : 1000 + Math.floor(random.next() * 4000)
      const crash = options.crashes === true && random.next() < 0.5 ? Math.floor(random.next() * n) : undefined
      plan.push(`${cut.join(',')} cut ${hold} ms${crash === undefined ? '' : `, ${crash} crashed`}, healed ${rest} ms`)
      const saved = crash === undefined ? undefined : sim.crash(peers[crash]!, stores[crash]!)
      await sim.pass(hold)
      if (crash !== undefined) {
        const through = peers.filter((_, i) => i !== crash).flatMap(p => p.multiaddrs())
        const again = await sim.settle(sim.recover(saved!, through), `${crash} recovers`)
        if (again.self !== peers[crash]!.self) throw new Error(`${crash} recovered as ${again.self}, not as ${peers[crash]!.self}`)
        peers[crash] = again
        stores[crash] = saved!
      }
      sim.net.heal()
      await sim.pass(rest)
    }
    load.stop()
    await sim.pass(20_000) // every call still pending resolves or times out (20 s)
    const timedOut = load.failures.get('ConsistencyTimeoutError') ?? 0
    load.failures.delete('ConsistencyTimeoutError')
    try {
      await load.convergedWithNothingLost(`all ${n} converge`)
    } catch (err) {
      // Where each call that resolved with another index sits in the log of peer 0.
      const log = peers[0]!.readState().infimum.log
      const moved = load.resolved.filter(r => log[r.output] !== r.event).map(r => `${r.event} resolved ${r.output}, at ${log.indexOf(r.event)}`)
      throw new Error(`${(err as Error).message}; ${n} peers; plan: ${plan.join('; ')}; calls resolved elsewhere in the log: ${moved.slice(0, 8).join(', ') || 'none'};\n${views(peers).join('\n')}`)
    }
    const ejections = peers.reduce((sum, p) => sum + p.stats().counters.timesEjected, 0)
    return { peers: n, resolved: load.resolved.length, timedOut, ejections, plan }
  } finally {
    await sim.stop()
  }
}
