/**
 * Reading `/metrics` as Prometheus would, for the admin tests: a scrape parsed with a
 * Prometheus text-format parser from npm (`prom2javascript`: it refuses malformed samples and
 * labels, and assembles histograms), a sample's value by labels, and Prometheus's naming rules
 * held against every family.
 */
import assert from 'node:assert/strict'
import { getMetricsFromIterator, type PromData, type PromHistogramData, type PromMetrics } from 'prom2javascript'

/** One scrape: the text, the parsed families, the content type. */
export interface Scrape {
  readonly text: string
  readonly metrics: PromMetrics
  readonly contentType: string
}

/** GETs `<url>/metrics` (200 expected) and parses it. */
export async function scrape (url: string): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(15_000) })
  assert.equal(res.status, 200)
  const text = await res.text()
  const metrics = await getMetricsFromIterator(text.split('\n')[Symbol.iterator]())
  return { text, metrics, contentType: res.headers.get('content-type') ?? '' }
}

/** The value of the first sample of `name` whose labels include `labels` (`undefined`: none). */
export function value (metrics: PromMetrics, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = metrics[name]
  if (family === undefined) return undefined
  const sample = (family.data as PromData[]).find(d => Object.entries(labels).every(([k, v]) => d.labels[k] === v))
  return sample?.value
}

/** The histogram sample of `name` whose labels include `labels`. */
export function histogram (metrics: PromMetrics, name: string, labels: Record<string, string>): PromHistogramData | undefined {
  const family = metrics[name]
  assert.equal(family?.type, 'histogram', `${name} is a histogram`)
  return (family!.data as PromHistogramData[]).find(d => Object.entries(labels).every(([k, v]) => d.labels[k] === v))
}

/**
 * Holds every family of `s` to Prometheus's naming rules (the `legion_` prefix in lower snake
 * case, help and a type on each, `_total` exactly on counters, `_seconds` histograms, at most
 * `maxSeries` series per family) and checks that the parser read every sample line of the text.
 */
export function checkNaming (s: Scrape, maxSeries = 20): void {
  for (const [name, family] of Object.entries(s.metrics)) {
    assert.match(name, /^legion_[a-z0-9_]+$/, `${name}: the legion_ prefix, lower snake case`)
    assert.notEqual(family.help, '', `${name} has help`)
    assert.ok(['counter', 'gauge', 'histogram'].includes(family.type), `${name} has a type: ${family.type}`)
    if (family.type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`)
    if (family.type === 'histogram') assert.match(name, /_seconds$/, `histogram ${name} is in seconds`)
    if (family.type !== 'counter') assert.doesNotMatch(name, /_total$/, `${name} is no counter but ends in _total`)
    assert.ok(family.data.length <= maxSeries, `${name} has a small label set (${family.data.length} series)`)
  }
  // Every line the parser skipped would hide a mistake: every sample line belongs to a family.
  const sampleLines = s.text.split('\n').filter(l => l !== '' && !l.startsWith('#'))
  const parsedSamples = Object.values(s.metrics).reduce((n, f) => n + (f.type === 'histogram' ? (f.data as PromHistogramData[]).reduce((k, h) => k + Object.keys(h.buckets).length + 2, 0) : f.data.length), 0)
  assert.equal(parsedSamples, sampleLines.length, 'the parser read every sample line')
}
