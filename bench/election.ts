/**
 * Discovery and election across five OS processes on TCP loopback (the peers of
 * test/support/discovery-peer.ts, driven by test/support/discovery-cluster.ts):
 *
 * - `election_failover_ms`: from the SIGKILL of the holder to the moment another peer starts
 *   running the name (both read from the host's clock), over `--kills` kills (default 20), each
 *   killed peer replaced by a fresh process before the next kill; with the default failure
 *   detection (heartbeats 1 s, suspicion after 3 s) and with it lowered (250 ms, 1 s);
 * - `election_overlap_ms`: the longest time two peers both ran the name, from every start and
 *   stop any peer reported, through the kills and through `--partitions` partitions (default 5)
 *   that put the holder and one other peer in the minority (`allowPeers`, both ways) and then
 *   heal (goal 0);
 *   Also reported: `election_ejection_p50_ms`, the part of the failover until the successor saw
 *   the victim's UnJoin (the failure detector deciding, and the UnJoin reaching it), and
 *   `election_handover_p50_ms`, the rest (the UnJoin folding on the successor, its lease check,
 *   its start);
 * - `lookup_per_s`: lookups of a name with 100 registrations from one peer's local replica;
 * - `registry_visible_p50_ms` (and p99): from a `register` call until every other peer's
 *   watcher has seen the registration settled, over 40 registrations.
 *
 * Run: npm run bench:election [-- --kills 20 --partitions 5]. Prints a table and writes
 * bench/results/election.json as rows `{ metric, value, unit, config, samples }`.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { DiscoveryCluster, longestOverlap, type DiscoveryChild } from '../test/support/discovery-cluster.js'
import type { FailureDetectionOptions } from '../src/peer/options.js'

const { values: args } = parseArgs({ options: { kills: { type: 'string', default: '20' }, partitions: { type: 'string', default: '5' }, only: { type: 'string' } } })
const KILLS = Number(args.kills)
const PARTITIONS = Number(args.partitions)
const SIZE = 5
const NAME = 'bench'

interface Row { metric: string, value: number, unit: string, config: string, samples?: number }

function percentile (xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN
}

const now = (): number => performance.timeOrigin + performance.now()

async function startCluster (label: string, failureDetection: FailureDetectionOptions): Promise<DiscoveryCluster> {
  const cluster = new DiscoveryCluster(`election-bench-${label}-${process.pid}`, { failureDetection })
  const founder = await cluster.add()
  await Promise.all(Array.from({ length: SIZE - 1 }, async () => await cluster.add(founder)))
  await cluster.waitFor(() => cluster.alive().every(c => c.members.members === SIZE) || undefined, 'five participants', 60_000)
  await Promise.all(cluster.alive().map(async c => await c.command('elect', { name: NAME })))
  return cluster
}

async function holder (cluster: DiscoveryCluster, except: ReadonlySet<string> = new Set(), after = 0): Promise<{ child: DiscoveryChild, start: number }> {
  const run = await cluster.waitFor(() => cluster.running(NAME).find(r => !except.has(r.peer) && r.start >= after), 'a holder', 60_000)
  return { child: cluster.children.find(c => c.self === run.peer)!, start: run.start }
}

async function settleMembers (cluster: DiscoveryCluster): Promise<void> {
  await cluster.waitFor(() => cluster.alive().every(c => c.members.members === SIZE && c.members.membership === 'participant') || undefined, 'every peer sees five participants', 60_000)
}

/**
 * Kills the holder `KILLS` times; returns each failover in ms, and how much of it passed before
 * the successor saw the victim's UnJoin (the failure detector's part; the rest is the grant
 * folding and the successor starting).
 */
async function kills (cluster: DiscoveryCluster, label: string): Promise<{ failovers: number[], detections: number[] }> {
  const failovers: number[] = []
  const detections: number[] = []
  for (let i = 0; i < KILLS; i++) {
    const { child } = await holder(cluster)
    const killedAt = await cluster.kill(child)
    const next = await holder(cluster, new Set([child.self]), killedAt)
    failovers.push(next.start - killedAt)
    // When the successor saw the victim's UnJoin (its projected participants went down to four).
    const ejectedAt = next.child.memberReports.find(r => r.at > killedAt && r.members === SIZE - 1)?.at ?? NaN
    detections.push(ejectedAt - killedAt)
    process.stdout.write(`${label}: kill ${i + 1}/${KILLS}: failover ${(next.start - killedAt).toFixed(0)} ms (ejected after ${(ejectedAt - killedAt).toFixed(0)} ms)\n`)
    const fresh = await cluster.add(next.child)
    await settleMembers(cluster)
    await fresh.command('elect', { name: NAME })
  }
  return { failovers, detections }
}

/** Partitions the holder and one other into the minority, waits for the majority's holder, heals. */
async function partitions (cluster: DiscoveryCluster, label: string): Promise<void> {
  for (let i = 0; i < PARTITIONS; i++) {
    const { child: h } = await holder(cluster)
    const minority = [h, cluster.alive().find(c => c !== h)!]
    const majority = cluster.alive().filter(c => !minority.includes(c))
    const ids = (cs: DiscoveryChild[]): string[] => cs.map(c => c.self)
    const cutAt = now()
    await Promise.all([...minority.map(async c => await c.command('block', { peers: ids(majority) })), ...majority.map(async c => await c.command('block', { peers: ids(minority) }))])
    const next = await holder(cluster, new Set(ids(minority)), cutAt)
    process.stdout.write(`${label}: partition ${i + 1}/${PARTITIONS}: majority's holder after ${(next.start - cutAt).toFixed(0)} ms\n`)
    await Promise.all(cluster.alive().map(async c => await c.command('block', { peers: [] })))
    await settleMembers(cluster)
    for (const c of minority) await c.command('elect', { name: NAME })
  }
}

async function registry (cluster: DiscoveryCluster): Promise<{ visible: number[], lookups: number }> {
  const peers = cluster.alive()
  await Promise.all(peers.map(async c => await c.command('watch', { name: 'vis' })))
  const visible: number[] = []
  for (let i = 0; i < 40; i++) {
    const by = peers[i % peers.length]!
    const { key, at } = await by.command<{ key: string, at: number }>('register', { name: 'vis', meta: i })
    const others = peers.filter(c => c !== by)
    await cluster.waitFor(() => others.every(c => c.seen.has(`vis:${key}`)) || undefined, `registration ${key} seen everywhere`)
    visible.push(Math.max(...others.map(c => c.seen.get(`vis:${key}`)!)) - at)
  }
  await peers[0]!.command('watch', { name: 'worker' })
  const keys: string[] = []
  for (let i = 0; i < 100; i++) keys.push((await peers[i % peers.length]!.command<{ key: string }>('register', { name: 'worker', meta: { slots: i } })).key)
  await cluster.waitFor(() => keys.every(k => peers[0]!.seen.has(`worker:${k}`)) || undefined, 'the workers settled at the first peer')
  const lookups = await peers[0]!.command<number>('lookupRate', { name: 'worker', ms: 2000 })
  return { visible, lookups }
}

async function main (): Promise<void> {
  const cpu = cpus()
  console.log(`machine: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${loadavg()[0]!.toFixed(1)}`)
  const rows: Row[] = []
  const configs: Array<{ label: string, fd: FailureDetectionOptions }> = [
    { label: 'default (heartbeat 1000 ms, suspect 3000 ms)', fd: {} },
    { label: 'lowered (heartbeat 250 ms, suspect 1000 ms)', fd: { heartbeatIntervalMs: 250, suspectAfterMs: 1000 } }
  ]
  for (const [index, { label, fd }] of configs.entries()) {
    if (args.only !== undefined && !label.startsWith(args.only)) continue
    const cluster = await startCluster(String(index), fd)
    try {
      const { failovers, detections } = await kills(cluster, label)
      await partitions(cluster, label)
      const overlap = longestOverlap(cluster.runs, now())
      rows.push(
        { metric: 'election_failover_p50_ms', value: percentile(failovers, 0.5), unit: 'ms', config: label, samples: failovers.length },
        { metric: 'election_failover_p99_ms', value: percentile(failovers, 0.99), unit: 'ms', config: label, samples: failovers.length },
        { metric: 'election_failover_max_ms', value: Math.max(...failovers), unit: 'ms', config: label, samples: failovers.length },
        { metric: 'election_ejection_p50_ms', value: percentile(detections, 0.5), unit: 'ms', config: label, samples: detections.length },
        { metric: 'election_handover_p50_ms', value: percentile(failovers.map((f, i) => f - detections[i]!), 0.5), unit: 'ms', config: label, samples: failovers.length },
        { metric: 'election_overlap_ms', value: overlap, unit: 'ms', config: label, samples: cluster.runs.length }
      )
      if (index === 0) {
        const { visible, lookups } = await registry(cluster)
        rows.push(
          { metric: 'lookup_per_s', value: lookups, unit: 'lookups/s', config: '100 registrations under the name, settled' },
          { metric: 'registry_visible_p50_ms', value: percentile(visible, 0.5), unit: 'ms', config: 'until every other peer\'s watcher saw it settled', samples: visible.length },
          { metric: 'registry_visible_p99_ms', value: percentile(visible, 0.99), unit: 'ms', config: 'until every other peer\'s watcher saw it settled', samples: visible.length }
        )
      }
    } finally {
      cluster.killAll()
    }
  }
  console.table(rows.map(r => ({ metric: r.metric, value: r.value >= 1000 ? Math.round(r.value).toLocaleString('en-US') : r.value.toFixed(1), unit: r.unit, config: r.config, n: r.samples ?? '' })))
  await mkdir(new URL('./results/', import.meta.url), { recursive: true })
  await writeFile(new URL('./results/election.json', import.meta.url), JSON.stringify(rows.map(r => ({ ...r, value: Number(r.value.toPrecision(6)) })), null, 2) + '\n')
  console.log('wrote bench/results/election.json')
}

await main()
