/**
 * Join benchmark: how long a join takes to settle everywhere. Real libp2p peers on TCP loopback
 * in this process: a founds, b joins through a, then c through a; the figures are from c's
 * `startLegion` call: until it resolves (c holds the cluster's state), and until every peer
 * holds the three participants settled with nothing outstanding (everyone folded c's Join).
 * Rounds alternate between this checkout and, with LEGION_BENCH_BASELINE=<dir>, another one
 * (its own src, run in this process), so that both see the same host.
 *
 * Run: npm run bench:join [-- --quick]   (about half a minute; --quick: fewer rounds)
 * Env: LEGION_BENCH_BASELINE=<dir>   a checkout to compare with (rows `_baseline`, ratios).
 * Prints a table; a full run writes bench/results/join.json as rows
 * { metric, value, unit, baseline_ratio? } (baseline_ratio: this build over the baseline's,
 * or, without one, the settled time over the time the join took to resolve).
 */
import { writeFile, mkdir } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { EventSpec } from '../src/eventfold/types.js'
import type { startLegion as StartLegion } from '../src/peer/start.js'

const QUICK = process.argv.includes('--quick')
const ROUNDS = QUICK ? 6 : 20
/** A round that has not settled by then counts as this long, and as a round not settled. */
const SETTLE_LIMIT_MS = 10_000
const spec: EventSpec<number, number, number> = { init: () => 0, apply: (e, s) => ({ ok: true, output: s + e, state: s + e }) }

interface Sample { resolved: number, settled: number, timedOut: boolean }

async function round (start: typeof StartLegion, name: string): Promise<Sample> {
  const base = { cluster: name, spec }
  const a = await start({ ...base, startup: { mode: 'new' } })
  const b = await start({ ...base, startup: { mode: 'join', peers: a.multiaddrs() } })
  const t0 = performance.now()
  const c = await start({ ...base, startup: { mode: 'join', peers: a.multiaddrs() } })
  const resolved = performance.now() - t0
  const peers = [a, b, c]
  const done = (): boolean => peers.every(p => { const s = p.readState(); return s.participants.length === 3 && s.outstanding === 0 })
  const deadline = Date.now() + SETTLE_LIMIT_MS
  // Polled every millisecond, bounded: the same for both checkouts.
  while (!done() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 1))
  const settled = performance.now() - t0
  const timedOut = !done()
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }) }))
  return { resolved, settled, timedOut }
}

function p50 (xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

async function main (): Promise<void> {
  const here = fileURLToPath(new URL('..', import.meta.url))
  const trees: Array<[string, string]> = [['this', here]]
  const baselineDir = process.env.LEGION_BENCH_BASELINE
  if (baselineDir !== undefined && baselineDir !== '') trees.push(['baseline', resolve(baselineDir)])
  const starts = new Map<string, typeof StartLegion>()
  for (const [label, dir] of trees) starts.set(label, (await import(pathToFileURL(`${dir}/src/peer/start.ts`).href) as { startLegion: typeof StartLegion }).startLegion)
  const samples = new Map<string, Sample[]>(trees.map(([label]) => [label, []]))
  console.log(`join: ${ROUNDS} rounds per checkout, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, load ${loadavg()[0]!.toFixed(2)}`)
  for (let r = 0; r < ROUNDS; r++) {
    // Alternated, the baseline first in odd rounds.
    const order = r % 2 === 0 ? trees : [...trees].reverse()
    for (const [label] of order) samples.get(label)!.push(await round(starts.get(label)!, `bench-join-${label}-${process.pid}-${r}`))
  }
  const rows: Array<{ metric: string, value: number, unit: string, baseline_ratio?: number }> = []
  const of = (label: string, k: 'resolved' | 'settled'): number => p50(samples.get(label)!.map(s => s[k]))
  const max = (label: string): number => Math.max(...samples.get(label)!.map(s => s.settled))
  const hasBaseline = samples.has('baseline')
  for (const [label] of trees) {
    const suffix = label === 'this' ? '' : '_baseline'
    const ratio = (k: 'resolved' | 'settled'): number | undefined => label === 'this' && hasBaseline ? of('this', k) / of('baseline', k) : undefined
    const resolved = of(label, 'resolved')
    const settled = of(label, 'settled')
    rows.push({ metric: `join_resolved_ms_p50_3_peers${suffix}`, value: resolved, unit: 'ms', ...(ratio('resolved') !== undefined ? { baseline_ratio: ratio('resolved') } : {}) })
    rows.push({ metric: `join_settled_everywhere_ms_p50_3_peers${suffix}`, value: settled, unit: 'ms', baseline_ratio: ratio('settled') ?? settled / resolved })
    rows.push({ metric: `join_settled_everywhere_ms_max_3_peers${suffix}`, value: max(label), unit: 'ms' })
    rows.push({ metric: `join_rounds_not_settled_3_peers${suffix}`, value: samples.get(label)!.filter(s => s.timedOut).length, unit: `of ${ROUNDS} rounds (${SETTLE_LIMIT_MS} ms each at most)` })
  }
  rows.push({ metric: 'host_load_average_1m_at_end', value: loadavg()[0]!, unit: 'runnable tasks' })
  console.table(rows)
  if (QUICK || hasBaseline) {
    console.log('quick or paired run: bench/results/join.json left as it was')
    return
  }
  const dir = new URL('./results/', import.meta.url)
  await mkdir(dir, { recursive: true })
  await writeFile(new URL('join.json', dir), JSON.stringify(rows, null, 2) + '\n')
}

await main()
