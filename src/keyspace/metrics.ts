/**
 * The keyspace's Prometheus metrics. Their names are fixed (`legion_keyspace_...`) and the
 * keyspace's service name is a label (`keyspace="cache"`): one peer may run several keyspaces,
 * and a dashboard or alert written once works for all of them (a name per keyspace, as the
 * per-service `metrics` prefix would give, could not be aggregated). Every family is
 * registered once per registry and reports every keyspace of the peer; the label sets are
 * bounded (the keyspace names the application chose, and fixed lists of roles, directions and
 * outcomes).
 *
 * Almost everything is read at scrape time from what the keyspace keeps anyway (the settled
 * table, its plain counters, handoff progress), so the request path pays nothing; the one
 * exception is the latency histogram, observed once per request through a child bound to its
 * labels in advance (prom-client still validates and hashes them at every observation: about
 * 0.4% of a keyspace write's CPU, profiled).
 *
 * @module
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { Participant } from '../eventfold/types.js'
import type { KeyspaceCounters } from './context.js'
import type { HandoffProgress } from './handoff-progress.js'
import type { KeyspaceTable } from './table.js'
import { tableHealth, type TableHealth } from './views.js'

/** What one keyspace reports at scrape time. */
export interface KeyspaceReadings {
  /** The service's name: the `keyspace` label. */
  readonly name: string
  /** This peer. */
  readonly self: Participant
  /** The settled table (`undefined` while not held). */
  readonly table: () => KeyspaceTable | undefined
  /** The keyspace's counters. */
  readonly counters: Readonly<KeyspaceCounters>
  /** Handoff on this peer. */
  readonly handoff: () => HandoffProgress
  /** Partitions lost (every replica gone) in the settled table since this peer started. */
  readonly lost: () => number
}

/** Final outcomes of a request made through `Keyspace.request`, as the histogram labels them. */
export type RequestOutcome = 'ok' | 'handler_error' | 'timeout' | 'unavailable' | 'bad_request' | 'aborted' | 'stopped' | 'error'

/** Request latency buckets, in seconds: a local `one` request (sub-millisecond) to a deadline. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Observes one request's latency by outcome; bound to one keyspace's labels. */
export type RequestTimer = (outcome: RequestOutcome, seconds: number) => void

interface Families {
  readonly sources: Map<string, KeyspaceReadings>
  readonly latency: Histogram<'keyspace' | 'outcome'>
}

const registered = new WeakMap<Registry, Families>()

/**
 * Adds `readings` to the keyspace metrics of `registry` (registering the families on the
 * first call for that registry); returns the function that observes a request's latency.
 * @throws TypeError when a keyspace of that name reports there already
 */
export function registerKeyspaceMetrics (registry: Registry, readings: KeyspaceReadings): RequestTimer {
  let families = registered.get(registry)
  if (families === undefined) {
    families = createFamilies(registry)
    registered.set(registry, families)
  }
  if (families.sources.has(readings.name)) throw new TypeError(`keyspace ${readings.name} reports metrics on this registry already`)
  families.sources.set(readings.name, readings)
  // A child per outcome, bound on its first use: no labels object per request, and no series
  // for outcomes that never happened.
  const latency = families.latency
  const children = new Map<RequestOutcome, ReturnType<typeof latency.labels>>()
  return (outcome, seconds) => {
    let child = children.get(outcome)
    if (child === undefined) {
      child = latency.labels({ keyspace: readings.name, outcome })
      children.set(outcome, child)
    }
    child.observe(seconds)
  }
}

function createFamilies (registry: Registry): Families {
  const sources = new Map<string, KeyspaceReadings>()
  const each = (f: (r: KeyspaceReadings) => void): void => { for (const r of sources.values()) f(r) }
  const gauge = <L extends string>(name: string, help: string, labels: readonly L[], collect: (g: Gauge<L | 'keyspace'>) => void): void => {
    new Gauge<L | 'keyspace'>({ name, help, labelNames: ['keyspace', ...labels], registers: [registry], collect () { this.reset(); collect(this) } }) // eslint-disable-line no-new
  }
  const counter = <L extends string>(name: string, help: string, labels: readonly L[], collect: (c: Counter<L | 'keyspace'>) => void): void => {
    new Counter<L | 'keyspace'>({ name, help, labelNames: ['keyspace', ...labels], registers: [registry], collect () { this.reset(); collect(this) } }) // eslint-disable-line no-new
  }

  gauge('legion_keyspace_partitions', 'Partitions this peer is a replica of, by role: owner (serves and stays), outgoing (serves until its replacement is promoted), incoming (being handed the state).', ['role'], g => {
    each(r => {
      const roles = { owner: 0, outgoing: 0, incoming: 0 }
      for (const a of r.table()?.assignments ?? []) {
        if (a.owners.includes(r.self)) roles[a.outgoing.includes(r.self) ? 'outgoing' : 'owner']++
        else if (a.incoming.includes(r.self)) roles.incoming++
      }
      for (const [role, n] of Object.entries(roles)) g.set({ keyspace: r.name, role }, n)
    })
  })
  gauge('legion_keyspace_table_version', 'Version of the settled ownership table this peer holds (it grows by one per change).', [], g => {
    each(r => { const t = r.table(); if (t !== undefined) g.set({ keyspace: r.name }, t.version) })
  })
  const health = (name: string, help: string, read: (h: TableHealth) => number): void => {
    gauge(name, help, [], g => { each(r => { const t = r.table(); if (t !== undefined) g.set({ keyspace: r.name }, read(tableHealth(t))) }) })
  }
  health('legion_keyspace_moves_in_flight', 'Partitions with an incoming replica not promoted yet, cluster-wide (settled table).', h => h.movesInFlight)
  health('legion_keyspace_partitions_unowned', 'Partitions with no serving owner, cluster-wide (settled table): their requests fail until one is promoted or the partition is refounded.', h => h.unowned)
  health('legion_keyspace_partitions_awaiting_last_owner', 'Partitions nobody holds that wait for their last owner, which holds everything acknowledged there, to be admitted again, cluster-wide (settled table): declared lost after lostAfterMs.', h => h.awaitingLastOwner)
  health('legion_keyspace_partitions_under_replicated', 'Partitions served by fewer owners than wanted (the replication factor, capped by the members that are not draining), cluster-wide (settled table).', h => h.underReplicated)
  gauge('legion_keyspace_handoffs_in_progress', 'Handoffs under way on this peer, by direction: receiving (partitions it is being handed), sending (transfers it runs as a coordinator), releasing (partitions it is leaving).', ['direction'], g => {
    each(r => {
      const h = r.handoff()
      g.set({ keyspace: r.name, direction: 'receiving' }, h.receiving.length)
      g.set({ keyspace: r.name, direction: 'sending' }, h.sending.length)
      g.set({ keyspace: r.name, direction: 'releasing' }, h.releasing.length)
    })
  })
  counter('legion_keyspace_handoffs_completed_total', 'Handoffs this peer completed, by direction: receiving (it was promoted), sending (its receiver was promoted), releasing (it left the partition).', ['direction'], c => {
    each(r => {
      const done = r.handoff().completed
      c.inc({ keyspace: r.name, direction: 'receiving' }, done.received)
      c.inc({ keyspace: r.name, direction: 'sending' }, done.sent)
      c.inc({ keyspace: r.name, direction: 'releasing' }, done.released)
    })
  })
  counter('legion_keyspace_partitions_founded_total', 'Partition generations this peer founded (granted by the table: a first generation, or one after a loss).', [], c => {
    each(r => { c.inc({ keyspace: r.name }, r.handoff().completed.founded) })
  })
  counter('legion_keyspace_partitions_restored_total', 'Partition generations this peer founded from its own copy, as the last owner of a partition nobody else held (nothing lost).', [], c => {
    each(r => { c.inc({ keyspace: r.name }, r.handoff().completed.restored) })
  })
  counter('legion_keyspace_partitions_declared_lost_total', 'Partitions this peer declared lost after their last owner stayed away lostAfterMs.', [], c => {
    each(r => { c.inc({ keyspace: r.name }, r.handoff().completed.declaredLost) })
  })
  counter('legion_keyspace_partitions_abandoned_total', 'Partitions this peer told the table it holds no state of (its copy was lost, or no owner was left to hand it over).', [], c => {
    each(r => { c.inc({ keyspace: r.name }, r.handoff().completed.abandoned) })
  })
  counter('legion_keyspace_partitions_lost_total', 'Partitions whose every replica was lost, restarted from the default state in a new generation, seen in the settled table since this peer started.', [], c => {
    each(r => { c.inc({ keyspace: r.name }, r.lost()) })
  })
  counter('legion_keyspace_requests_served_total', 'Requests that reached this peer as an owner, by the answer it gave: ok, moved (re-routed by the caller), unavailable (tried elsewhere), handler_error, timeout (outcome unknown), bad_request.', ['outcome'], c => {
    each(r => {
      const n = r.counters
      const answers: ReadonlyArray<readonly [string, number]> = [['ok', n.okAnswers], ['moved', n.movedAnswers], ['unavailable', n.unavailableAnswers], ['handler_error', n.handlerErrors], ['timeout', n.timeoutAnswers], ['bad_request', n.badRequests]]
      for (const [outcome, v] of answers) c.inc({ keyspace: r.name, outcome }, v)
    })
  })
  counter('legion_keyspace_requests_forwarded_total', 'Requests this peer sent to another owner (every attempt).', [], c => { each(r => { c.inc({ keyspace: r.name }, r.counters.forwarded) }) })
  counter('legion_keyspace_requests_rerouted_total', 'Requests this peer re-routed after a moved answer.', [], c => { each(r => { c.inc({ keyspace: r.name }, r.counters.rerouted) }) })
  counter('legion_keyspace_requests_too_few_replicas_total', 'Agreed requests whose input folded on this owner on fewer replicas than minReplicas: applied there, answered timeout (outcome unknown), since that replica may be one side of a split.', [], c => { each(r => { c.inc({ keyspace: r.name }, r.counters.tooFewReplicas) }) })
  counter('legion_keyspace_search_pages_served_total', 'Search pages this peer served as an owner.', [], c => { each(r => { c.inc({ keyspace: r.name }, r.counters.searchPages) }) })
  const latency = new Histogram<'keyspace' | 'outcome'>({
    name: 'legion_keyspace_request_seconds',
    help: 'Requests made on this peer (Keyspace.request), from the call to its answer, routing and retries included, by outcome: ok, handler_error, timeout, unavailable, bad_request, aborted, stopped, error. Its _count is the requests made, by outcome.',
    labelNames: ['keyspace', 'outcome'],
    buckets: LATENCY_BUCKETS,
    registers: [registry]
  })
  return { sources, latency }
}
