/**
 * Supervision across the cluster, five OS processes on TCP loopback (the peers of
 * test/support/supervision-process.ts, driven by test/support/supervision-processes.ts):
 *
 * - `child_failover_ms` (p50, p99, max): from the SIGKILL of a placed child's host to the moment
 *   another peer starts running it (both read from the host's clock), over `--kills` kills
 *   (default 20), each victim replaced by a fresh process before the next kill; with the default
 *   failure detection (heartbeats 1 s, suspicion after 3 s) and lowered (250 ms, 1 s). Split as
 *   bench/election.ts does: `child_ejection_p50_ms`, until the successor saw the victim's UnJoin
 *   (the failure detector deciding and the UnJoin reaching it), and `child_handover_p50_ms`, the
 *   rest (the grant folding on the successor, its lease check, the local tree's start). The
 *   baseline is the ejection itself: `baseline_ratio` is failover over ejection (1.0: the
 *   restart costs nothing beyond the failure detector);
 * - `replicated_call_p50_ms` (and p99) at R = 3, from a peer that is not the primary, next to
 *   `plain_call_p50_ms`: the same server placed on another peer and called by name in the same
 *   run (`baseline_ratio`: replicated over plain).
 *
 * Run: npm run bench:supervision-cluster [-- --kills 20 --calls 500]. Prints a table and writes
 * bench/results/supervision-cluster.json as rows `{ metric, value, unit, config, samples, baseline_ratio? }`.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { SupervisionCluster } from '../test/support/supervision-processes.js'
import type { FailureDetectionOptions } from '../src/peer/options.js'

const { values: args } = parseArgs({ options: { kills: { type: 'string', default: '20' }, calls: { type: 'string', default: '500' }, only: { type: 'string' } } })
const KILLS = Number(args.kills)
const CALLS = Number(args.calls)
const SIZE = 5

interface Row { metric: string, value: number, unit: string, config: string, samples?: number, baseline_ratio?: number }

function percentile (xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? NaN
}

async function failovers (label: string, failureDetection: FailureDetectionOptions, rows: Row[]): Promise<void> {
  const cluster = new SupervisionCluster(`supervision-bench-${label.split(' ')[0]}-${process.pid}`, { failureDetection })
  try {
    const peers = await cluster.start(SIZE)
    await peers[0]!.command('startChild', { name: 'job', server: 'log' })
    const total: number[] = []
    const ejection: number[] = []
    for (let i = 0; i < KILLS; i++) {
      const { child: host } = await cluster.holder('job')
      const killedAt = await cluster.kill(host)
      const { child: next, run } = await cluster.holder('job', new Set([host.self]), killedAt)
      total.push(run.start - killedAt)
      const sawUnJoin = next.memberReports.find(r => r.at > killedAt && r.members === SIZE - 1)?.at ?? NaN
      ejection.push(sawUnJoin - killedAt)
      process.stdout.write(`${label}: kill ${i + 1}/${KILLS}: restarted after ${(run.start - killedAt).toFixed(0)} ms (UnJoin seen after ${(sawUnJoin - killedAt).toFixed(0)} ms)\n`)
      await cluster.add(next)
      await cluster.waitFor(() => cluster.alive().every(c => c.members === SIZE) || undefined, 'five members again', 60_000)
    }
    const handover = total.map((t, i) => t - ejection[i]!)
    const ratio = percentile(total, 0.5) / percentile(ejection, 0.5)
    rows.push(
      { metric: 'child_failover_p50_ms', value: percentile(total, 0.5), unit: 'ms', config: label, samples: total.length, baseline_ratio: ratio },
      { metric: 'child_failover_p99_ms', value: percentile(total, 0.99), unit: 'ms', config: label, samples: total.length },
      { metric: 'child_failover_max_ms', value: Math.max(...total), unit: 'ms', config: label, samples: total.length },
      { metric: 'child_ejection_p50_ms', value: percentile(ejection, 0.5), unit: 'ms', config: label, samples: ejection.length },
      { metric: 'child_handover_p50_ms', value: percentile(handover, 0.5), unit: 'ms', config: label, samples: handover.length },
      { metric: 'child_handover_p99_ms', value: percentile(handover, 0.99), unit: 'ms', config: label, samples: handover.length },
      { metric: 'child_overlap_ms', value: cluster.overlap('job'), unit: 'ms', config: label, samples: cluster.runs.length }
    )
  } finally {
    cluster.killAll()
  }
}

async function calls (rows: Row[]): Promise<void> {
  const cluster = new SupervisionCluster(`supervision-bench-calls-${process.pid}`, {})
  try {
    const peers = await cluster.start(SIZE)
    await peers[0]!.command('startReplicated', { name: 'ledger', server: 'echo', replicas: 3 })
    await peers[0]!.command('startChild', { name: 'plain', server: 'echo' })
    const { child: primary } = await cluster.holder('ledger')
    const { child: host } = await cluster.holder('plain')
    const caller = cluster.alive().find(c => c !== primary && c !== host)!
    const inputs = Array.from({ length: CALLS }, (_, i) => i)
    // Warm both paths (streams opened, code optimised), then alternate rounds so load drifts hit both alike.
    await caller.command('calls', { name: 'ledger', inputs: inputs.slice(0, 50), timeoutMs: 10_000 }, 60_000)
    await caller.command('calls', { name: 'plain', inputs: inputs.slice(0, 50), timeoutMs: 10_000 }, 60_000)
    const replicated: number[] = []
    const plain: number[] = []
    const ROUNDS = 5
    for (let r = 0; r < ROUNDS; r++) {
      const chunk = inputs.slice(0, Math.ceil(CALLS / ROUNDS))
      plain.push(...await caller.command<number[]>('calls', { name: 'plain', inputs: chunk, timeoutMs: 10_000 }, 120_000))
      replicated.push(...await caller.command<number[]>('calls', { name: 'ledger', inputs: chunk, timeoutMs: 10_000 }, 120_000))
    }
    const p50 = percentile(plain, 0.5)
    rows.push(
      { metric: 'plain_call_p50_ms', value: p50, unit: 'ms', config: 'a placed echo server on another peer, called by name', samples: plain.length },
      { metric: 'plain_call_p99_ms', value: percentile(plain, 0.99), unit: 'ms', config: 'a placed echo server on another peer, called by name', samples: plain.length },
      { metric: 'replicated_call_p50_ms', value: percentile(replicated, 0.5), unit: 'ms', config: 'R = 3, from a peer that is not the primary', samples: replicated.length, baseline_ratio: percentile(replicated, 0.5) / p50 },
      { metric: 'replicated_call_p99_ms', value: percentile(replicated, 0.99), unit: 'ms', config: 'R = 3, from a peer that is not the primary', samples: replicated.length }
    )
  } finally {
    cluster.killAll()
  }
}

async function main (): Promise<void> {
  const cpu = cpus()
  console.log(`machine: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${loadavg()[0]!.toFixed(1)}`)
  const rows: Row[] = []
  if (args.only === undefined || args.only === 'calls') await calls(rows)
  const configs: Array<{ label: string, fd: FailureDetectionOptions }> = [
    { label: 'default (heartbeat 1000 ms, suspect 3000 ms)', fd: {} },
    { label: 'lowered (heartbeat 250 ms, suspect 1000 ms)', fd: { heartbeatIntervalMs: 250, suspectAfterMs: 1000 } }
  ]
  for (const { label, fd } of configs) {
    if (args.only !== undefined && !label.startsWith(args.only)) continue
    await failovers(label, fd, rows)
  }
  console.table(rows.map(r => ({ metric: r.metric, value: r.value.toFixed(r.value >= 100 ? 0 : 2), unit: r.unit, ratio: r.baseline_ratio?.toFixed(2) ?? '', config: r.config, n: r.samples ?? '' })))
  await mkdir(new URL('./results/', import.meta.url), { recursive: true })
  await writeFile(new URL('./results/supervision-cluster.json', import.meta.url), JSON.stringify(rows.map(r => ({ ...r, value: Number(r.value.toPrecision(6)), ...(r.baseline_ratio !== undefined ? { baseline_ratio: Number(r.baseline_ratio.toPrecision(4)) } : {}) })), null, 2) + '\n')
  console.log('wrote bench/results/supervision-cluster.json')
}

await main()
