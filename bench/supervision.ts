/**
 * The cost of the supervision behaviour on one process: calls to a trivial server through a
 * tree's event loop, set against plain async function calls doing the same work in the same
 * run, and the time from a throwing step to the restarted server answering.
 *
 * Run: npm run bench:supervision   (node --import tsx bench/supervision.ts)
 * Prints a table and writes bench/results/supervision.json as rows
 * `{ metric, value, unit, baseline_ratio? }`.
 *
 * Baselines: `async_fn_calls_per_s` awaits an async function, one call at a time, that adds the
 * input to a number in its closure (what the server's step does); `async_fn_pipelined_per_s`
 * keeps 128 such calls in flight. Each timed round of a server metric is paired with a baseline
 * round of the same shape run just before it, and `baseline_ratio` is the median over rounds of
 * the metric's rate over its paired baseline's (1.0: as fast as a plain async call).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { encodeWith, jsonCodec } from '../src/codec/index.js'
import { defineServer, startSupervision, supervisor, worker, type SupervisionTree } from '../src/supervision/index.js'

const RUNS = 7
const WARMUP = 2
const SEQUENTIAL_CALLS = 100_000
const PIPELINED_CALLS = 200_000
const WINDOW = 128
const ENCODED_CALLS = 50_000
const RESTARTS = 400

/** The trivial server: adds its input to its state; `-1` throws (for the restart metric). */
const adder = defineServer<number, number, number>({
  init: () => 0,
  step (input, n) {
    if (input === -1) throw new Error('deliberate crash')
    return { state: n + input, output: n + input }
  }
})

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!
}

/** A plain async function with the step's work, and its closure state. */
function plainAdder (): (input: number) => Promise<number> {
  let n = 0
  return async (input: number): Promise<number> => {
    n += input
    return n
  }
}

async function sequential (n: number, call: (input: number) => Promise<unknown>): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < n; i++) await call(1)
  return performance.now() - start
}

async function pipelined (n: number, call: (input: number) => Promise<unknown>): Promise<number> {
  const start = performance.now()
  for (let done = 0; done < n; done += WINDOW) {
    const batch: Array<Promise<unknown>> = []
    for (let i = 0; i < WINDOW; i++) batch.push(call(1))
    await Promise.all(batch)
  }
  return performance.now() - start
}

interface Timing { readonly perS: number, readonly ratio: number, readonly spread: number, readonly baselinePerS: number }

/** Paired rounds: a baseline round, then the metric's round, RUNS times after WARMUP. */
async function paired (n: number, shape: (n: number, call: (input: number) => Promise<unknown>) => Promise<number>, call: (input: number) => Promise<unknown>): Promise<Timing> {
  const rates: number[] = []
  const baseRates: number[] = []
  const ratios: number[] = []
  for (let run = -WARMUP; run < RUNS; run++) {
    const baseMs = await shape(n, plainAdder())
    const ms = await shape(n, call)
    if (run < 0) continue
    rates.push(n / (ms / 1000))
    baseRates.push(n / (baseMs / 1000))
    ratios.push((n / ms) / (n / baseMs))
  }
  return { perS: median(rates), ratio: median(ratios), spread: Math.max(...rates) / Math.min(...rates), baselinePerS: median(baseRates) }
}

async function restartTimes (): Promise<number[]> {
  const tree = await startSupervision(supervisor('root', { intensity: 1_000_000, periodMs: 1000 }, [worker('adder', adder)]))
  const samples: number[] = []
  for (let i = -20; i < RESTARTS; i++) {
    const start = performance.now()
    await tree.call('adder', -1).catch(() => {})
    // Addressed to the next incarnation: answered as soon as the restarted server runs.
    await tree.call('adder', 1)
    if (i >= 0) samples.push(performance.now() - start)
  }
  if (tree.whichChildren()[0]!.restarts !== RESTARTS + 20) throw new Error('bench: restarts were not counted')
  await tree.stop()
  return samples
}

interface Row { metric: string, value: number, unit: string, baseline_ratio?: number }

async function main (): Promise<void> {
  const cpu = cpus()
  console.log(`machine: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${loadavg()[0]!.toFixed(1)}`)
  console.log(`runs per metric: ${RUNS} (median, after ${WARMUP} warm-up rounds)\n`)

  const tree: SupervisionTree = await startSupervision(supervisor('root', {}, [worker('adder', adder)]), { queueCapacity: 1024 })
  const call = async (input: number): Promise<unknown> => await tree.call('adder', input)
  const one = encodeWith(jsonCodec, 1)
  const callEncoded = async (): Promise<unknown> => await tree.callEncoded('adder', one)

  const seq = await paired(SEQUENTIAL_CALLS, sequential, call)
  const pipe = await paired(PIPELINED_CALLS, pipelined, call)
  const enc = await paired(ENCODED_CALLS, sequential, callEncoded)
  if (tree.stats().crashes !== 0 || tree.stats().timeouts !== 0) throw new Error('bench: unexpected failures')
  await tree.stop()
  const restarts = await restartTimes()

  const rows: Row[] = [
    { metric: 'async_fn_calls_per_s', value: seq.baselinePerS, unit: 'calls/s', baseline_ratio: 1 },
    { metric: 'server_calls_per_s', value: seq.perS, unit: 'calls/s', baseline_ratio: seq.ratio },
    { metric: 'async_fn_pipelined_per_s', value: pipe.baselinePerS, unit: 'calls/s', baseline_ratio: 1 },
    { metric: 'server_calls_pipelined_per_s', value: pipe.perS, unit: 'calls/s', baseline_ratio: pipe.ratio },
    { metric: 'server_calls_encoded_per_s', value: enc.perS, unit: 'calls/s', baseline_ratio: enc.ratio },
    { metric: 'restart_p50_ms', value: median(restarts), unit: 'ms' },
    { metric: 'restart_p99_ms', value: percentile(restarts, 0.99), unit: 'ms' }
  ]
  const spreads = new Map([['server_calls_per_s', seq.spread], ['server_calls_pipelined_per_s', pipe.spread], ['server_calls_encoded_per_s', enc.spread]])
  const fmt = (x: number): string => x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(3)
  console.table(rows.map((r) => ({
    metric: r.metric,
    value: fmt(r.value),
    unit: r.unit,
    'vs baseline': r.baseline_ratio === undefined ? '' : r.baseline_ratio.toFixed(3),
    'max/min': spreads.has(r.metric) ? spreads.get(r.metric)!.toFixed(2) : ''
  })))

  const rounded = rows.map((r) => ({
    ...r,
    value: Number(r.value.toPrecision(6)),
    ...(r.baseline_ratio === undefined ? {} : { baseline_ratio: Number(r.baseline_ratio.toPrecision(4)) })
  }))
  await mkdir(new URL('./results/', import.meta.url), { recursive: true })
  await writeFile(new URL('./results/supervision.json', import.meta.url), JSON.stringify(rounded, null, 2) + '\n')
  console.log('\nwrote bench/results/supervision.json')
}

await main()
