/**
 * Draws the convergence benchmark's charts from its JSON rows (bench/convergence.ts):
 * - docs/convergence-time.svg: convergence time against cluster size;
 * - docs/bytes-per-event.svg: bytes sent per event against cluster size (a gossipsub publish
 *   counts once, however many peers it reaches);
 * - docs/bytes-delivered-per-event.svg: bytes received per event, summed over the receivers
 *   (counts gossipsub's fan-out; its duplicates and control traffic are not counted);
 * one panel per workload, one line per system (solid: in one process on the memory transport;
 * dashed: one OS process per peer on TCP loopback).
 *
 * Also prints the rows as Markdown tables (one per workload), as docs/BENCHMARKS.md shows them.
 *
 * Run: npm run bench:charts [-- <rows.json>]   (default bench/results/convergence.json)
 */
import { readFile, writeFile } from 'node:fs/promises'
import { lineChart, type Panel, type Series } from './svg-chart.js'

interface Row {
  metric: string
  value: number | null
  ratio_vs_om_legion?: number
  ratio_vs_automerge?: number
  cluster_size: number
  workload: string
  system: string
  mode: string
  converged?: boolean
}

const COLORS: Record<string, string> = { legion: '#1f77b4', 'om-legion': '#d62728', automerge: '#2ca02c' }
const WORKLOADS = ['burst', 'steady', 'churn']

function panels (rows: Row[], metric: string): Panel[] {
  return WORKLOADS.filter(w => rows.some(r => r.workload === w)).map(workload => {
    const series: Series[] = []
    for (const mode of ['memory', 'process']) {
      for (const system of Object.keys(COLORS)) {
        const points = rows
          .filter(r => r.metric === metric && r.workload === workload && r.system === system && r.mode === mode && r.value !== null)
          .map(r => ({ x: r.cluster_size, y: r.value!, open: r.converged === false }))
        if (points.length === 0) continue
        series.push({ name: mode === 'memory' ? `${system} (in-process)` : `${system} (processes)`, color: COLORS[system]!, ...(mode === 'process' ? { dash: '5,4' } : {}), points })
      }
    }
    return { title: workload, series }
  })
}

const SYSTEMS = ['legion', 'om-legion', 'automerge']

function num (v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–'
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toPrecision(2)
}

/** One Markdown table per workload: each figure for Legion / om-legion / Automerge, and Legion's ratios to both. */
function markdown (rows: Row[]): string {
  const out: string[] = []
  const find = (metric: string, n: number, w: string, s: string, mode: string): Row | undefined =>
    rows.find(r => r.metric === metric && r.cluster_size === n && r.workload === w && r.system === s && r.mode === mode)
  const triple = (metric: string, n: number, w: string, mode: string): string => SYSTEMS.map(s => {
    const r = find(metric, n, w, s, mode)
    if (r === undefined) return '–'
    return (r.converged === false && metric === 'convergence_ms' ? '>' : '') + num(r.value)
  }).join(' / ')
  const ratios = (metric: string, n: number, w: string, mode: string): string => {
    const r = find(metric, n, w, 'legion', mode)
    return `${num(r?.ratio_vs_om_legion)} / ${num(r?.ratio_vs_automerge)}`
  }
  for (const w of WORKLOADS) {
    const keys = [...new Set(rows.filter(r => r.workload === w && r.metric === 'convergence_ms').map(r => `${r.mode}|${r.cluster_size}`))]
    if (keys.length === 0) continue
    out.push(`**${w}** (each cell: Legion / om-legion / Automerge; ratios: Legion ÷ om-legion / Legion ÷ Automerge)`, '')
    out.push('| peers | convergence ms | ratios | reach p50 ms | reach p99 ms | bytes sent/event | ratios | bytes delivered/event | messages/event | CPU ms | ratios | heap MB/peer |')
    out.push('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for (const k of keys) {
      const [mode, ns] = k.split('|') as [string, string]
      const n = Number(ns)
      out.push(`| ${n}${mode === 'process' ? ' (processes)' : ''} | ${triple('convergence_ms', n, w, mode)} | ${ratios('convergence_ms', n, w, mode)} | ${triple('event_reach_all_p50_ms', n, w, mode)} | ${triple('event_reach_all_p99_ms', n, w, mode)} | ${triple('bytes_per_event', n, w, mode)} | ${ratios('bytes_per_event', n, w, mode)} | ${triple('bytes_delivered_per_event', n, w, mode)} | ${triple('messages_per_event', n, w, mode)} | ${triple('cpu_ms', n, w, mode)} | ${ratios('cpu_ms', n, w, mode)} | ${triple('peak_heap_per_peer_mb', n, w, mode)} |`)
    }
    out.push('')
  }
  return out.join('\n')
}

async function main (): Promise<void> {
  const file = process.argv[2] ?? 'bench/results/convergence.json'
  const rows = JSON.parse(await readFile(file, 'utf8')) as Row[]
  const sizes = [...new Set(rows.map(r => r.cluster_size))].filter(n => n > 0).sort((a, b) => a - b)
  const common = { xLabel: 'peers', xTicks: sizes, subtitle: `from ${file}; log scales` }
  await writeFile('docs/convergence-time.svg', lineChart({
    ...common,
    title: 'Convergence time after the last event (lower is better)',
    yLabel: 'milliseconds',
    panels: panels(rows, 'convergence_ms')
  }))
  await writeFile('docs/bytes-per-event.svg', lineChart({
    ...common,
    title: 'Bytes sent per event (lower is better)',
    yLabel: 'bytes per event',
    panels: panels(rows, 'bytes_per_event')
  }))
  await writeFile('docs/bytes-delivered-per-event.svg', lineChart({
    ...common,
    title: 'Bytes delivered per event, summed over receivers (lower is better)',
    yLabel: 'bytes per event',
    panels: panels(rows, 'bytes_delivered_per_event')
  }))
  console.log(markdown(rows))
  console.error('wrote docs/convergence-time.svg, docs/bytes-per-event.svg, docs/bytes-delivered-per-event.svg')
}

main().catch(err => { console.error(err); process.exitCode = 1 })
