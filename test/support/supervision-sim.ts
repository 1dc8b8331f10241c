/**
 * Test support: whole peers running the cluster supervision service over the in-memory network
 * with one manual clock (test/support/fake-network.ts), the test servers they all define, and a
 * log of every run any peer starts or stops (from the service's `onEvent`) with the time of
 * the simulation's clock, so a test can count restarts and check that runs never overlapped.
 */
import assert from 'node:assert/strict'
import { startPeer } from '../../src/peer/start.js'
import type { Legion, LegionOptions } from '../../src/peer/options.js'
import type { EventSpec } from '../../src/eventfold/types.js'
import { clusterSupervision } from '../../src/cluster-supervision/service.js'
import type { ClusterSupervisionEvent } from '../../src/cluster-supervision/api.js'
import { defineServer } from '../../src/supervision/server.js'
import { FakeNetwork, ManualClock, seededRandom, advanceUntil, advanceUntilSettled } from './fake-network.js'

const spec: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }

/** Inputs of the test key-value server. */
export type KvInput =
  | { readonly op: 'put', readonly key: string, readonly value: number }
  | { readonly op: 'get', readonly key: string }
  | { readonly op: 'all' }
  | { readonly op: 'crash' }
  | { readonly op: 'stop' }

/** Starts of the key-value server's `init`, by peer (what a test counts restarts with). */
export const inits: Array<{ readonly child: string, readonly restored: boolean }> = []

/** A key-value server: `crash` throws, `stop` asks to stop; its state is saved at terminate. */
export const kv = defineServer<KvInput, Record<string, number>, unknown>({
  init: ({ name, restored }) => { inits.push({ child: name, restored: restored !== undefined }); return restored ?? {} },
  step: (input, state) => {
    switch (input.op) {
      case 'put': return { state: { ...state, [input.key]: input.value }, output: input.value }
      case 'get': return { state, output: state[input.key] ?? null }
      case 'all': return { state, output: state }
      case 'crash': throw new Error(`poison: ${input.op}`)
      case 'stop': return { state, output: 'bye', stop: true }
    }
  },
  persistence: {}
})

/** The servers every simulated peer defines. */
export const servers = { kv }
type Services = { supervision: ReturnType<typeof clusterSupervision<typeof servers>> }
/** A simulated peer. */
export type SPeer = Legion<null, number, number, Services>

/** Failure detection of the simulations: heartbeats every second, suspicion after 3 s. */
export const SIM_DETECTION = { heartbeatIntervalMs: 1000, suspectAfterMs: 3000, stuckAfterMs: 10_000 }

/** One run as a peer reported it, on the simulation's clock. */
export interface SimRun { readonly peer: string, readonly child: string, readonly token: string, readonly start: number, end: number | undefined }

/** A cluster on one fake network and one manual clock. */
export class SupervisionSim {
  readonly clock = new ManualClock()
  readonly net = new FakeNetwork(this.clock)
  readonly peers: SPeer[] = []
  readonly runs: SimRun[] = []
  readonly events: Array<{ peer: string, event: ClusterSupervisionEvent }> = []
  private seed = 1

  constructor (private readonly options: { standbys?: number } = {}) {}

  async start (startup: LegionOptions<null, number, number, Services>['startup']): Promise<SPeer> {
    let self = ''
    const peer = await startPeer<null, number, number, Services>({
      cluster: 'supervision-sim',
      spec,
      startup,
      propagation: { intervalMs: 1000 },
      failureDetection: SIM_DETECTION,
      services: { supervision: clusterSupervision({ servers, ...this.options, onEvent: e => { this.record(self, e) } }) }
    }, { network: async key => await this.net.node(key), clock: this.clock, random: seededRandom(this.seed++) })
    self = peer.self
    this.peers.push(peer)
    return peer
  }

  private record (peer: string, event: ClusterSupervisionEvent): void {
    this.events.push({ peer, event })
    if (event.type === 'run-started') this.runs.push({ peer, child: event.child, token: `${event.token.counter}:${event.token.participant}`, start: this.clock.now(), end: undefined })
    if (event.type === 'run-stopped') {
      const run = this.runs.find(r => r.peer === peer && r.child === event.child && r.end === undefined)
      if (run !== undefined) run.end = this.clock.now()
    }
  }

  /** Founds a cluster of `n` peers, each joining through the first; returns them sorted by id. */
  async cluster (n: number): Promise<SPeer[]> {
    const first = await this.settle(this.start({ mode: 'new' }), 'the founder starts')
    for (let i = 1; i < n; i++) await this.settle(this.start({ mode: 'join', peers: first.multiaddrs() }), `peer ${i} joins`)
    await this.until(() => this.peers.every(p => p.readState().participants.length === n), `${n} participants everywhere`)
    return [...this.peers].sort((a, b) => a.self < b.self ? -1 : 1)
  }

  /** Crashes `peer` (it neither sends nor receives again); its runs end now. */
  crash (peer: SPeer): void {
    this.net.crash(peer.self)
    for (const r of this.runs) if (r.peer === peer.self && r.end === undefined) r.end = this.clock.now()
  }

  /** The runs of `child` going on now, on peers not crashed. */
  running (child: string): SimRun[] {
    return this.runs.filter(r => r.child === child && r.end === undefined)
  }

  /** Advances the clock until `predicate` holds, at most `maxMs` of simulated time; returns the time it took. */
  async until (predicate: () => boolean, what: string, maxMs = 60_000): Promise<number> {
    return await advanceUntil(this.clock, predicate, what, maxMs, 50)
  }

  /** Advances the clock until `promise` settles (at most `maxMs` simulated) and returns its outcome. */
  async settle<T> (promise: Promise<T>, what: string, maxMs = 60_000): Promise<T> {
    return await advanceUntilSettled(this.clock, promise, what, maxMs, 50)
  }

  /**
   * Asserts that no two peers ever ran the same child at once: every run ended before any later
   * run of the child started (runs are recorded in the order they started, all in one process).
   */
  assertNoOverlap (): void {
    this.runs.forEach((a, i) => {
      for (const b of this.runs.slice(i + 1)) {
        if (a.child !== b.child || a.peer === b.peer) continue
        assert.ok(a.end !== undefined && a.end <= b.start, `${a.peer} ran ${a.child} [${a.start}, ${a.end}] and ${b.peer} started it at ${b.start}`)
      }
    })
  }

  async stop (): Promise<void> {
    await this.settle(Promise.all(this.peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) })), 'every peer stops')
  }
}

/** The supervision service of `peer`. */
export function sup (peer: SPeer): SPeer['services']['supervision'] {
  return peer.services.supervision
}
