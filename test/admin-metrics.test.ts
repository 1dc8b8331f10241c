/**
 * `GET /metrics` scraped from a real peer and read with a Prometheus text-format parser from
 * npm (`prom2javascript`: it refuses malformed samples and labels, which the more popular
 * `parse-prometheus-text-format` silently accepts, and assembles histograms), then held to
 * Prometheus's naming rules: the `legion_` prefix, `_total` counters, `_seconds` histograms,
 * help and type on every family, small label sets, and `legion_build_info`.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import type { PromHistogramData } from 'prom2javascript'
import { LEGION_VERSION, PROTOCOL_VERSION } from '../src/version.js'
import { defineServer, startSupervision, supervisor, worker } from '../src/supervision/index.js'
import { adminCluster, stopPeers, urlOf, type AdminPeer } from './support/admin-cluster.js'
import { checkNaming, scrape, value } from './support/prometheus.js'

const running: AdminPeer[] = []
after(async () => { await stopPeers(running.splice(0)) })

test('the version in the code is package.json\'s', async () => {
  const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  assert.equal(LEGION_VERSION, manifest.version)
})

test('/metrics is Prometheus text that a real parser reads, named by Prometheus\'s rules, with the cluster\'s gauges, counters and the applyConsistent histogram', async () => {
  let crash = true
  const flaky = defineServer<number, number, number>({ init: () => 0, step: (n, s) => { if (crash && n < 0) { crash = false; throw new Error('boom') } return { state: s + n, output: s + n } } })
  const tree = await startSupervision(supervisor('root', {}, [worker('flaky', flaky)]))
  after(async () => { await tree.stop() })
  const peers = await adminCluster(3, (i) => i === 0 ? { supervision: { main: tree } } : {})
  running.push(...peers)
  const [a] = peers
  for (let i = 0; i < 5; i++) await a!.applyConsistent({ type: 'rebalance' })
  await tree.call('flaky', -1).catch(() => {})
  await tree.call('flaky', 1)

  const scraped = await scrape(urlOf(a!))
  const { text, metrics, contentType } = scraped
  assert.match(contentType, /^text\/plain; version=0\.0\.4/)
  const names = Object.keys(metrics)
  assert.ok(names.length >= 20, `families: ${names.join(', ')}`)
  checkNaming(scraped)

  assert.equal(value(metrics, 'legion_build_info', { version: LEGION_VERSION, protocol: PROTOCOL_VERSION, nodejs: process.version }), 1)
  assert.equal(value(metrics, 'legion_participants'), 3)
  assert.equal(value(metrics, 'legion_suspected_peers'), 0)
  assert.equal(value(metrics, 'legion_broken_links'), 0)
  assert.equal(value(metrics, 'legion_ejections_awaiting_majority'), 0)
  assert.equal(value(metrics, 'legion_cannot_reach'), 0)
  assert.equal(value(metrics, 'legion_partitions_owned'), a!.readState().projected.owners.filter(o => o === a!.self).length)
  assert.ok((value(metrics, 'legion_events_folded_total') ?? 0) >= 5)
  assert.ok((value(metrics, 'legion_sent_bytes_total') ?? 0) > 0)
  assert.ok((value(metrics, 'legion_received_messages_total') ?? 0) > 0)
  assert.equal(value(metrics, 'legion_dropped_frames_total', { reason: 'malformed' }), 0)
  assert.equal(value(metrics, 'legion_supervision_restarts_total', { tree: 'main' }), 1)
  assert.equal(value(metrics, 'legion_supervision_crashes_total', { tree: 'main' }), 1)

  const latency = metrics.legion_apply_consistent_seconds
  assert.equal(latency?.type, 'histogram')
  const folded = (latency!.data as PromHistogramData[]).find(h => h.labels.outcome === 'folded')!
  assert.equal(folded.count, 5, 'one observation per applyConsistent')
  assert.equal(folded.buckets['+Inf'], 5)
  assert.ok((folded.sum ?? 0) > 0 && (folded.sum ?? 0) < 30, `sum ${folded.sum ?? 0} s`)
  // In the text, as Prometheus reads it: bounds ascending, counts cumulative, +Inf last.
  const bucketLines = text.split('\n').filter(l => l.startsWith('legion_apply_consistent_seconds_bucket') && l.includes('outcome="folded"'))
  const les = bucketLines.map(l => /le="([^"]+)"/.exec(l)![1]!)
  assert.equal(les.at(-1), '+Inf')
  const bounds = les.slice(0, -1).map(Number)
  assert.deepEqual(bounds, [...bounds].sort((x, y) => x - y), 'buckets ascend')
  const counts = bucketLines.map(l => Number(l.split(' ').at(-1)))
  assert.deepEqual(counts, [...counts].sort((x, y) => x - y), 'buckets are cumulative')
  for (const [i, le] of les.entries()) assert.equal(folded.buckets[le], counts[i], 'the parser read the bucket the text holds')

  // The admin endpoint counts what it answered, by route and status: the scrape itself shows up next time.
  const again = await scrape(urlOf(a!))
  assert.ok((value(again.metrics, 'legion_admin_requests_total', { route: 'metrics', status: '200' }) ?? 0) >= 1)
  // Two peers in one process keep their own registries.
  const other = await scrape(urlOf(peers[1]!))
  assert.equal(value(other.metrics, 'legion_supervision_restarts_total', { tree: 'main' }), undefined)
  assert.equal(value(other.metrics, 'legion_events_applied_total'), 0)
})
