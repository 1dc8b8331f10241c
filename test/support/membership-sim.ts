/**
 * Whole peers of a string-log fold over the in-memory network with one manual clock
 * (test/support/fake-network.ts), for membership and link-fault tests: deterministic time, no
 * sockets. {@link Load} keeps every peer creating events and records how each call ended.
 */
import assert from 'node:assert/strict'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { startPeer } from '../../src/peer/start.js'
import type { Legion, LegionOptions } from '../../src/peer/options.js'
import type { EventSpec } from '../../src/eventfold/types.js'
import type { Timer } from '../../src/time/clock.js'
import { MemoryKeyValueData, memoryKeyValueStore, type MemoryKeyValueStore } from '../../src/storage/index.js'
import { FakeNetwork, ManualClock, seededRandom, advanceUntil, advanceUntilSettled } from './fake-network.js'

/** The fold's state: the events in fold order. */
export interface Log { readonly log: readonly string[] }

/** Appends each event; the output is its index in the log. */
export const spec: EventSpec<string, Log, number> = {
  init: () => ({ log: [] }),
  apply: (e, s) => ({ ok: true, output: s.log.length, state: { log: [...s.log, e] } })
}

/** A peer of the simulation. */
export type Peer = Legion<string, Log, number>

/** A cluster on one fake network and one manual clock. */
export class Sim {
  readonly clock = new ManualClock()
  readonly net = new FakeNetwork(this.clock)
  readonly peers: Peer[] = []
  /** Peers whose process crashed ({@link crash}): out of the simulation, stopped with it. */
  private readonly crashed: Peer[] = []
  private seed = 1

  /**
   * `keySeed`: derive each peer's key from it and the peer's start order, so that a run is
   * replayed exactly (the rules order peers by id); fresh keys without it.
   */
  constructor (private readonly extra: Partial<LegionOptions<string, Log, number>> = {}, private readonly keySeed?: number) {}

  async start (startup: LegionOptions<string, Log, number>['startup'], extra: Partial<LegionOptions<string, Log, number>> = {}): Promise<Peer> {
    const keyBytes = this.keySeed === undefined ? undefined : new Uint8Array(32).fill(this.seed, 0, 16).fill(this.keySeed % 256, 16, 24).fill(Math.floor(this.keySeed / 256) % 256, 24)
    return await this.launch(startup, { ...(keyBytes === undefined ? {} : { privateKey: await generateKeyPairFromSeed('Ed25519', keyBytes) }), ...extra })
  }

  /**
   * `peer`'s process dies: the network neither delivers nor carries anything of it again, and it
   * leaves the simulation (its object is stopped by {@link stop}); returns its storage as it was
   * at that moment, for {@link recover}.
   */
  crash (peer: Peer, storage: MemoryKeyValueStore): MemoryKeyValueStore {
    this.net.crash(peer.self)
    this.peers.splice(this.peers.indexOf(peer), 1)
    this.crashed.push(peer)
    const copy = new MemoryKeyValueData()
    for (const [key, value] of storage.data.values) { copy.values.set(key, new Uint8Array(value)); copy.order.add(key) }
    return memoryKeyValueStore({ data: copy })
  }

  /** A crashed peer's process starts again from `storage` (its identity is the saved one), reconnecting through `peers`. */
  async recover (storage: MemoryKeyValueStore, peers: readonly string[]): Promise<Peer> {
    return await this.launch({ mode: 'recover', peers }, { storage })
  }

  private async launch (startup: LegionOptions<string, Log, number>['startup'], extra: Partial<LegionOptions<string, Log, number>>): Promise<Peer> {
    const peer = await startPeer<string, Log, number, Record<never, never>>({
      cluster: 'membership',
      spec,
      startup,
      propagation: { intervalMs: 1000 },
      failureDetection: { heartbeatIntervalMs: 1000, suspectAfterMs: 3000, stuckAfterMs: 5000 },
      ...this.extra,
      ...extra
    }, { network: async key => await this.net.node(key), clock: this.clock, random: seededRandom(this.seed++) })
    this.peers.push(peer)
    return peer
  }

  /** Founds a cluster of `n` peers, each joining through the first; `each(i)` adds options of the i-th. */
  async cluster (n: number, each: (i: number) => Partial<LegionOptions<string, Log, number>> = () => ({})): Promise<Peer[]> {
    const first = await this.start({ mode: 'new' }, each(0))
    for (let i = 1; i < n; i++) await this.start({ mode: 'join', peers: first.multiaddrs() }, each(i))
    await this.until(() => this.peers.every(p => p.readState().participants.length === n), `${n} participants everywhere`)
    return [...this.peers]
  }

  /** Advances the clock until `predicate` holds, at most `maxMs` of simulated time. */
  async until (predicate: () => boolean, what: string, maxMs = 60_000): Promise<number> {
    return await advanceUntil(this.clock, predicate, what, maxMs, 250)
  }

  /** Advances the clock by `ms` of simulated time. */
  async pass (ms: number): Promise<void> {
    await advanceUntil(this.clock, () => false, `${ms} ms to pass`, ms, 250).catch(() => {})
  }

  /** Advances the clock until `promise` settles (at most `maxMs` simulated), and returns its value. */
  async settle<T> (promise: Promise<T>, what: string, maxMs = 60_000): Promise<T> {
    return await advanceUntilSettled(this.clock, promise, what, maxMs, 250)
  }

  async stop (): Promise<void> {
    await Promise.all([...this.peers, ...this.crashed].map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
  }
}

/**
 * Every `everyMs`, each peer of the simulation (those started later too) calls
 * `applyConsistent` with an event of its own, named `e<n>-<peer index>`.
 */
export class Load {
  /** Calls that resolved, with the index they resolved with. */
  readonly resolved: Array<{ readonly event: string, readonly output: number }> = []
  /** Calls that rejected, counted by error name. */
  readonly failures = new Map<string, number>()
  /** Events created so far. */
  created = 0
  private readonly timer: Timer

  constructor (private readonly sim: Sim, everyMs: number) {
    this.timer = sim.clock.every(everyMs, () => {
      for (const [i, p] of sim.peers.entries()) {
        const event = `e${this.created++}-${i}`
        p.applyConsistent(event, { timeoutMs: 20_000 }).then(output => { this.resolved.push({ event, output }) }, (err: Error) => { this.failures.set(err.name, (this.failures.get(err.name) ?? 0) + 1) })
      }
    })
  }

  stop (): void {
    this.timer.cancel()
  }

  /**
   * Waits until every peer lists every peer of the simulation as a participant, holds nothing
   * outstanding and has the same log; then checks that no event folded twice, that each
   * resolved call's event sits at the index it resolved with, that calls failed only with
   * `EjectedError` (a peer ejected while its calls were pending: their outcome is unknown),
   * and that no peer's flush threw.
   */
  async convergedWithNothingLost (what: string): Promise<readonly string[]> {
    const sim = this.sim
    const names = JSON.stringify(sim.peers.map(p => p.self).sort())
    const logOf = (p: Peer): string => JSON.stringify(p.readState().infimum.log)
    await sim.until(() => sim.peers.every(p => JSON.stringify(p.readState().projectedParticipants) === names && p.readState().outstanding === 0 && logOf(p) === logOf(sim.peers[0]!)), what, 120_000)
    const log = sim.peers[0]!.readState().infimum.log
    assert.equal(new Set(log).size, log.length, 'no event folded twice')
    for (const r of this.resolved) assert.equal(log[r.output], r.event, `${r.event} resolved with index ${r.output}`)
    assert.deepEqual([...this.failures.keys()].filter(name => name !== 'EjectedError'), [], `failures: ${JSON.stringify([...this.failures])}`)
    // A flush that threw is a bug even when the cluster got over it (legion:flush:error says which).
    assert.deepEqual(sim.peers.filter(p => p.stats().counters.flushFailures > 0).map(p => p.self), [], 'peers whose flush threw')
    return log
  }
}
