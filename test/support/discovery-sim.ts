/**
 * Test support: whole peers running the discovery service over the in-memory network with one
 * manual clock (test/support/fake-network.ts), and a recorder of holder runs that checks no two
 * peers ever ran a name at the same moment.
 */
import assert from 'node:assert/strict'
import { startPeer } from '../../src/peer/start.js'
import type { Legion, LegionOptions } from '../../src/peer/options.js'
import type { EventSpec } from '../../src/eventfold/types.js'
import { compareEventIds, type EventId } from '../../src/eventfold/types.js'
import { discovery } from '../../src/discovery/service.js'
import type { DiscoveryOptions, FencingToken, HolderContext, StartFunction } from '../../src/discovery/api.js'
import type { JsonValue } from '../../src/codec/json.js'
import { FakeNetwork, ManualClock, seededRandom, advanceUntil, advanceUntilSettled } from './fake-network.js'

const spec: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
type Services = { discovery: ReturnType<typeof discovery<JsonValue, JsonValue>> }
/** A peer with the discovery service. */
export type DPeer = Legion<null, number, number, Services>

/** Failure detection of the simulations: heartbeats every second, suspicion after 3 s. */
export const SIM_DETECTION = { heartbeatIntervalMs: 1000, suspectAfterMs: 3000, stuckAfterMs: 10_000 }

/** A cluster on one fake network and one manual clock. */
export class DiscoverySim {
  readonly clock = new ManualClock()
  readonly net = new FakeNetwork(this.clock)
  readonly peers: DPeer[] = []
  private seed = 1

  constructor (private readonly options: DiscoveryOptions<JsonValue, JsonValue> = {}, private readonly extra: Partial<LegionOptions<null, number, number, Services>> = {}) {}

  async start (startup: LegionOptions<null, number, number, Services>['startup'], extra: Partial<LegionOptions<null, number, number, Services>> = {}): Promise<DPeer> {
    const peer = await startPeer<null, number, number, Services>({
      cluster: 'discovery-sim',
      spec,
      startup,
      propagation: { intervalMs: 1000 },
      failureDetection: SIM_DETECTION,
      services: { discovery: discovery(this.options) },
      ...this.extra,
      ...extra
    }, { network: async key => await this.net.node(key), clock: this.clock, random: seededRandom(this.seed++) })
    this.peers.push(peer)
    return peer
  }

  /** Founds a cluster of `n` peers, each joining through the first; returns them sorted by id. */
  async cluster (n: number): Promise<DPeer[]> {
    const first = await this.settle(this.start({ mode: 'new' }), 'the founder starts')
    for (let i = 1; i < n; i++) await this.settle(this.start({ mode: 'join', peers: first.multiaddrs() }), `peer ${i} joins`)
    await this.until(() => this.peers.every(p => p.readState().participants.length === n), `${n} participants everywhere`)
    return [...this.peers].sort((a, b) => a.self < b.self ? -1 : 1)
  }

  /** Advances the clock until `predicate` holds, at most `maxMs` of simulated time; returns the time it took. */
  async until (predicate: () => boolean, what: string, maxMs = 60_000): Promise<number> {
    return await advanceUntil(this.clock, predicate, what, maxMs, 50)
  }

  /** Advances the clock until `promise` settles (at most `maxMs` simulated) and returns its outcome. */
  async settle<T> (promise: Promise<T>, what: string, maxMs = 60_000): Promise<T> {
    return await advanceUntilSettled(this.clock, promise, what, maxMs, 50)
  }

  async stop (): Promise<void> {
    // Stopping hands names over through the fold, which needs the clock to move.
    await this.settle(Promise.all(this.peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) })), 'every peer stops')
  }
}

/** One run of a holder: from its start to its signal firing (when it must stop acting). */
export interface Run {
  readonly peer: string
  readonly token: FencingToken
  readonly startedAt: number
  stoppedAt: number | undefined
  readonly context: HolderContext<JsonValue>
}

/** Records every run of a name on every peer, on the simulation's clock. */
export class Runs {
  readonly all: Run[] = []

  constructor (private readonly now: () => number) {}

  /** A start function that records its runs as `peer`; `extra` runs inside it. */
  start (peer: string, extra?: (ctx: HolderContext<JsonValue>) => void): StartFunction<JsonValue> {
    return (ctx) => {
      const run: Run = { peer, token: ctx.token, startedAt: this.now(), stoppedAt: undefined, context: ctx }
      this.all.push(run)
      ctx.signal.addEventListener('abort', () => { run.stoppedAt = this.now() }, { once: true })
      extra?.(ctx)
    }
  }

  /** The runs going on now. */
  running (): Run[] {
    return this.all.filter(r => r.stoppedAt === undefined)
  }

  /** The peer running now, if exactly one does. */
  holder (): string | undefined {
    const r = this.running()
    return r.length === 1 ? r[0]!.peer : undefined
  }

  /** Asserts that no two runs of different peers overlapped, and that tokens grew from run to run. */
  assertNoOverlap (): void {
    const sorted = [...this.all].sort((a, b) => a.startedAt - b.startedAt)
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        const a = sorted[i]!
        const b = sorted[j]!
        if (a.peer === b.peer) continue
        const aEnd = a.stoppedAt ?? Infinity
        assert.ok(aEnd <= b.startedAt, `${a.peer} ran [${a.startedAt}, ${aEnd}] and ${b.peer} started at ${b.startedAt}`)
      }
      if (i > 0) assert.ok(compareEventIds(sorted[i - 1]!.token, sorted[i]!.token) <= 0, 'tokens never go back')
    }
  }
}

/** `counter:participant`. */
export function text (id: EventId): string {
  return `${id.counter}:${id.participant}`
}
