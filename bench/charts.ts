/**
 * Draws the convergence benchmark's charts from its JSON rows (bench/convergence.ts):
 * - docs/convergence-time.svg: convergence time against cluster size;
 * - docs/bytes-per-event.svg: bytes sent per event against cluster size;
 * one panel per workload, one line per system (solid: in one process on the memory transport;
 * dashed: one OS process per peer on TCP loopback).
 *
 * Run: npm run bench:charts [-- <rows.json>]   (default bench/results/convergence.json)
 */
import { readFile, writeFile } from 'node:fs/promises'
import { lineChart, type Panel, type Series } from './svg-chart.js'

interface Row {
  metric: string
  value: number | null
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
  console.log('wrote docs/convergence-time.svg, docs/bytes-per-event.svg')
}

main().catch(err => { console.error(err); process.exitCode = 1 })
