/**
 * Metrics of one peer: a `prom-client` registry of its own (two peers in one process never
 * share counters), on which each part registers what it measures, following Prometheus
 * naming (`legion_` prefix, base units, `_total` counters, `_seconds` histograms, small
 * label sets). Parts that already keep plain counters (`LegionCounters`) are read at scrape
 * time through collect callbacks, so the hot paths pay nothing for metrics. The admin layer
 * serves the registry's text.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { LEGION_VERSION, PROTOCOL_VERSION } from '../version.js'

/** Metric registration for one part (or service): names are prefixed by the part's prefix. */
export interface Metrics {
  /** The registry everything lands in. */
  readonly registry: Registry
  /** A counter `<prefix>_<name>_total`. */
  counter<L extends string = never>(name: string, help: string, labelNames?: readonly L[], collect?: (c: Counter<L>) => void): Counter<L>
  /** A gauge `<prefix>_<name>`. */
  gauge<L extends string = never>(name: string, help: string, labelNames?: readonly L[], collect?: (g: Gauge<L>) => void): Gauge<L>
  /** A histogram `<prefix>_<name>` (use a unit suffix such as `_seconds`). */
  histogram<L extends string = never>(name: string, help: string, buckets: readonly number[], labelNames?: readonly L[]): Histogram<L>
  /** The same registry under a longer prefix (`<prefix>_<part>`). */
  scoped(part: string): Metrics
}

/**
 * The metrics of a new peer: a fresh registry under the `legion` prefix, holding from the
 * start `legion_build_info{version, nodejs}` (always 1), Prometheus's convention for telling
 * which build a target runs.
 */
export function peerMetrics (): Metrics {
  const metrics = scopedMetrics(new Registry(), 'legion')
  metrics.gauge('build_info', 'Which build of Legion this peer runs, and the peer protocol it speaks (always 1).', ['version', 'protocol', 'nodejs']).set({ version: LEGION_VERSION, protocol: PROTOCOL_VERSION, nodejs: process.version }, 1)
  return metrics
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/

function scopedMetrics (registry: Registry, prefix: string): Metrics {
  const full = (name: string, suffix = ''): string => {
    const n = `${prefix}_${name}${suffix}`
    if (!NAME.test(n)) throw new TypeError(`invalid metric name ${JSON.stringify(n)}`)
    return n
  }
  return {
    registry,
    counter: (name, help, labelNames = [], collect) => new Counter({
      name: full(name, name.endsWith('_total') ? '' : '_total'),
      help,
      labelNames: [...labelNames],
      registers: [registry],
      ...(collect !== undefined ? { collect (this: Counter) { collect(this as Counter<never>) } } : {})
    }),
    gauge: (name, help, labelNames = [], collect) => new Gauge({
      name: full(name),
      help,
      labelNames: [...labelNames],
      registers: [registry],
      ...(collect !== undefined ? { collect (this: Gauge) { collect(this as Gauge<never>) } } : {})
    }),
    histogram: (name, help, buckets, labelNames = []) => new Histogram({ name: full(name), help, buckets: [...buckets], labelNames: [...labelNames], registers: [registry] }),
    scoped: (part) => scopedMetrics(registry, full(part))
  }
}
