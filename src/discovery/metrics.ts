/**
 * The discovery service's Prometheus metrics (`legion_discovery_...`, through the service's
 * `metrics` component). Gauges are read at scrape time from the settled registry (summarised
 * once per settled state, which is immutable) and from this peer's own candidacies; counters
 * are plain numbers the service keeps ({@link DiscoveryTally}) and the scrape reads. Names are
 * the application's and unbounded, so no metric has a per-name label: the labels are fixed
 * lists (a candidacy's state, a registration's, a vacancy's cause, the lookup call). A
 * per-name view is the admin endpoint's `discovery/holders` and `discovery/registry`.
 *
 * @module
 */
import type { Metrics } from '../peer/metrics.js'
import type { Participant } from '../eventfold/types.js'
import type { CandidacyStatus } from './api.js'
import type { RegistryState } from './registry-spec.js'

/**
 * What the service counts for its metrics: grants and vacancies seen in the settled registry's
 * journal (cluster-wide, as this peer folded them since it started), holder runs started here,
 * and the application's lookups here.
 */
export class DiscoveryTally {
  /** Grants folded (a name given to a holder). */
  grants = 0
  /** Holders that gave a name up by resigning (or stopping). */
  resigned = 0
  /** Holders whose name was vacated because they left the cluster or were ejected. */
  departed = 0
  /** Runs of a start function this peer began as a holder. */
  runs = 0
  /** `lookup()` calls. */
  lookups = 0
  /** `whereis()` calls. */
  whereis = 0
  private seq: number | undefined

  /**
   * Counts the journal's changes after the last one counted. The first state only sets the
   * position (what happened before this peer started is not counted). A journal that no longer
   * reaches back (more changes folded at once than it keeps, or a whole state adopted) is
   * counted from its oldest change: the counters are then low, never double.
   */
  observe (settled: RegistryState): void {
    if (this.seq === undefined || settled.changes < this.seq) { this.seq = settled.changes; return }
    if (settled.changes === this.seq) return
    for (const c of settled.journal) {
      if (c.seq <= this.seq) continue
      if (c.kind === 'granted') this.grants++
      else if (c.kind === 'vacated') { if (c.cause === 'resigned') this.resigned++; else this.departed++ }
    }
    this.seq = settled.changes
  }
}

/** What the metrics read at scrape time. */
export interface DiscoveryReadings {
  /** This peer. */
  readonly self: Participant
  /** The settled registry, while this peer holds it. */
  readonly settled: () => RegistryState | undefined
  /** The states of this peer's own candidacies. */
  readonly candidacies: () => Iterable<CandidacyStatus['kind']>
  /** The service's counters. */
  readonly tally: DiscoveryTally
}

/** The settled registry in numbers. */
interface Summary {
  readonly held: number
  readonly enabled: number
  readonly drained: number
  readonly elections: number
  readonly vacant: number
  readonly waiting: number
}

/** Registers the discovery metrics on the service's `metrics`. */
export function registerDiscoveryMetrics (metrics: Metrics, readings: DiscoveryReadings): void {
  let cached: { state: RegistryState, summary: Summary } | undefined
  const summary = (): Summary | undefined => {
    const state = readings.settled()
    if (state === undefined) return undefined
    if (cached?.state !== state) cached = { state, summary: summarize(state, readings.self) }
    return cached.summary
  }
  const t = readings.tally
  metrics.gauge('names_held', 'Names whose settled grant is this peer.', [], g => { g.set(summary()?.held ?? 0) })
  metrics.gauge('candidacies', 'This peer\'s own candidacies, by state: standing (queued, or granted without a lease), running (its start function runs as the holder), stopping.', ['state'], g => {
    const n = { standing: 0, running: 0, stopping: 0 }
    for (const kind of readings.candidacies()) if (kind !== 'closed') n[kind]++
    for (const [state, v] of Object.entries(n)) g.set({ state }, v)
  })
  metrics.gauge('registrations', 'Registrations in the settled registry, cluster-wide, by state: enabled, drained.', ['state'], g => {
    const s = summary()
    g.set({ state: 'enabled' }, s?.enabled ?? 0)
    g.set({ state: 'drained' }, s?.drained ?? 0)
  })
  metrics.gauge('elections', 'Names with an election in the settled registry, cluster-wide, by state: held (a holder is granted), vacant (none: no candidate, or too few members).', ['state'], g => {
    const s = summary()
    g.set({ state: 'held' }, (s?.elections ?? 0) - (s?.vacant ?? 0))
    g.set({ state: 'vacant' }, s?.vacant ?? 0)
  })
  metrics.gauge('candidates_waiting', 'Candidates queued behind the holders in the settled registry, cluster-wide.', [], g => { g.set(summary()?.waiting ?? 0) })
  metrics.counter('grants', 'Grants of a name to a holder folded in the registry (cluster-wide, since this peer started).', [], c => { c.reset(); c.inc(t.grants) })
  metrics.counter('vacancies', 'Names a holder gave up, folded in the registry (cluster-wide, since this peer started), by cause: resigned, departed (left or ejected).', ['cause'], c => {
    c.reset()
    c.inc({ cause: 'resigned' }, t.resigned)
    c.inc({ cause: 'departed' }, t.departed)
  })
  metrics.counter('holder_runs', 'Runs of a start function this peer began as a holder (a grant, or a lease regained).', [], c => { c.reset(); c.inc(t.runs) })
  metrics.counter('lookups', 'The application\'s lookup() and whereis() calls on this peer, by call.', ['call'], c => {
    c.reset()
    c.inc({ call: 'lookup' }, t.lookups)
    c.inc({ call: 'whereis' }, t.whereis)
  })
}

function summarize (state: RegistryState, self: Participant): Summary {
  let held = 0
  let enabled = 0
  let drained = 0
  let elections = 0
  let vacant = 0
  let waiting = 0
  for (const record of Object.values(state.names)) {
    for (const r of record.registrations) { if (r.enabled) enabled++; else drained++ }
    const e = record.election
    if (e === null) continue
    elections++
    waiting += e.candidates.length
    if (e.holder === null) vacant++
    else if (e.holder.peer === self) held++
  }
  return { held, enabled, drained, elections, vacant, waiting }
}
