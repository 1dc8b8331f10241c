/**
 * Throughput, merge latency, codec speed and memory of the pure EventFold core, each set
 * against a baseline measured in the same run (the machine is shared and noisy, so only
 * ratios compare across runs).
 *
 * Run: npm run bench:eventfold   (node --expose-gc --import tsx bench/eventfold.ts)
 * Prints a table and writes bench/results/eventfold.json as rows
 * `{ metric, value, unit, baseline_ratio?, goal? }`.
 *
 * The baseline is pushing the same small objects the events carry (`{ k: 'key-123', v: 42 }`)
 * into a plain array. `baseline_ratio` reads the same way for every timed row: the metric's
 * events per second over the baseline's objects per second, from a baseline round of one
 * million objects run just before each timed round (median over rounds; higher is better).
 * For heap rows it is bytes per event over the baseline's bytes per object (lower is better).
 *
 * `BENCH_SAMPLES=1` also prints every timed round.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { decodeDiff, decodeEventFold, encodeDiff, encodeEventFold, jsonCodec, type FoldCodecs, type JsonObject, type JsonValue } from '../src/codec/index.js'
import { EventFold, type EventFoldSnapshot, type EventSpec } from '../src/eventfold/index.js'

/** How many times each timed section runs; the median is reported. */
const RUNS = 7
/** Untimed rounds before the timed ones. */
const WARMUP = 3
const SINGLE_EVENTS = 1_000_000
const THREE_EVENTS = 200_000
const DIFF_EVENTS = 10_000
const CODEC_EVENTS = 10_000
/** Encodes (decodes) per timed round: one takes only a few milliseconds. */
const CODEC_REPEAT = 10
const HEAP_EVENTS = 100_000
const BASELINE_OBJECTS = 1_000_000

type Payload = JsonValue

/** The trivial counter spec: the fold's own cost dominates, not the user's. */
const counter: EventSpec<Payload, number, number> = {
  init: () => 0,
  apply: (_event, s) => ({ ok: true, output: s + 1, state: s + 1 })
}
const codecs: FoldCodecs<Payload, number, number> = {
  event: jsonCodec,
  state: jsonCodec as FoldCodecs<Payload, number, number>['state'],
  output: jsonCodec as FoldCodecs<Payload, number, number>['output']
}

/** Pre-made keys, so no loop allocates a string and the baseline allocates what the fold does. */
const KEYS: readonly string[] = Array.from({ length: 1024 }, (_, i) => `key-${i}`)
function payload (i: number): JsonObject {
  return { k: KEYS[i & 1023]!, v: i }
}

const gc: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {
  throw new Error('run with node --expose-gc (npm run bench:eventfold)')
})

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** What {@link measure} reports for one metric. */
interface Timing {
  /** Median milliseconds per call of the body. */
  readonly ms: number
  /** Median over rounds of (metric events per second / paired baseline objects per second). */
  readonly ratio: number
  /** Slowest over fastest timed round: how much the machine's noise moved this metric. */
  readonly spread: number
}

/** Every timed baseline round of the run, in ms: the baseline row reports their median. */
const baselineRounds: number[] = []

/** Times pushing `n` small objects into a fresh array: the baseline unit of work. */
function pushRoundMs (n: number): number {
  const arr: JsonObject[] = []
  const start = performance.now()
  for (let i = 0; i < n; i++) arr.push(payload(i))
  const elapsed = performance.now() - start
  if (arr.length !== n) throw new Error('unreachable')
  return elapsed
}

/**
 * Runs `setup` then times `repeat` calls of `body` on its result (each handling `items`
 * events), RUNS times after WARMUP untimed rounds (enough for the JIT to settle on short
 * sections). Right before each round a baseline round pushes BASELINE_OBJECTS objects into
 * an array, so the ratio compares two measurements taken under the same load: on a shared
 * machine whose load changes by the second, that is steadier than dividing by one baseline
 * taken earlier. The baseline round has a fixed size, not the metric's: pushing 10k objects
 * costs several times less per object than pushing a million (a small array never leaves
 * the young generation), which would make ratios of different metrics incomparable. A
 * collection before each timed section keeps one round's garbage from being billed to the
 * next. `BENCH_SAMPLES=1` prints every round.
 */
function measure<T> (metric: string, setup: () => T, body: (input: T) => void, items: number, repeat = 1): Timing {
  const samples: number[] = []
  const ratios: number[] = []
  for (let run = -WARMUP; run < RUNS; run++) {
    const input = setup()
    gc()
    const baseMs = pushRoundMs(BASELINE_OBJECTS)
    gc()
    const start = performance.now()
    for (let i = 0; i < repeat; i++) body(input)
    const elapsed = performance.now() - start
    if (run >= 0) {
      baselineRounds.push(baseMs)
      samples.push(elapsed / repeat)
      ratios.push((items * repeat / elapsed) / (BASELINE_OBJECTS / baseMs))
    }
  }
  if (process.env.BENCH_SAMPLES !== undefined) console.log(metric, 'ms:', samples.map((x) => x.toFixed(2)).join(' '), 'ratio:', ratios.map((x) => x.toFixed(2)).join(' '))
  return { ms: median(samples), ratio: median(ratios), spread: Math.max(...samples) / Math.min(...samples) }
}

/** A's fold with A, B and C all in the infimum, nothing outstanding. */
function threeParticipants (): EventFold<Payload, number, number> {
  const a = EventFold.create<Payload, number, number>('bench', 'A', counter)
  a.participate('B')
  a.participate('C')
  // Stand in for B and C acknowledging their joins, so all three are infimum participants.
  a.acknowledge('B')
  a.acknowledge('C')
  if (a.infimumParticipants().length !== 3 || a.outstandingCount !== 0) throw new Error('bench setup: joins did not fold')
  return a
}

/** A's fold with `n` of A's events outstanding (B and C have not acknowledged them). */
function withOutstanding (n: number): EventFold<Payload, number, number> {
  const a = threeParticipants()
  for (let i = 0; i < n; i++) a.event(payload(i))
  if (a.outstandingCount !== n) throw new Error('bench setup: events folded unexpectedly')
  return a
}

// ---------------------------------------------------------------------------------------

/**
 * The baseline: pushing BASELINE_OBJECTS objects into a plain array. Its own rounds run first
 * (they also warm the JIT up for the paired rounds); the reported figure is the median of
 * every baseline round of the run, these and the paired ones, so it matches the ratios.
 */
function warmBaseline (): void {
  for (let run = -WARMUP; run < RUNS; run++) {
    gc()
    const ms = pushRoundMs(BASELINE_OBJECTS)
    if (run >= 0) baselineRounds.push(ms)
  }
}

function baselineArrayPush (): Timing {
  return { ms: median(baselineRounds), ratio: 1, spread: Math.max(...baselineRounds) / Math.min(...baselineRounds) }
}

function eventSingleParticipant (): Timing {
  return measure('event_single_participant_per_s', () => EventFold.create<Payload, number, number>('bench', 'A', counter), (fold) => {
    for (let i = 0; i < SINGLE_EVENTS; i++) fold.event(payload(i))
    if (fold.outstandingCount !== 0 || fold.infimumValue() !== SINGLE_EVENTS) throw new Error('single: events did not fold')
  }, SINGLE_EVENTS)
}

function eventThreeParticipants (): Timing {
  // No acknowledgement inside the loop: every event stays outstanding, waiting for B and C.
  return measure('event_three_participants_per_s', threeParticipants, (fold) => {
    for (let i = 0; i < THREE_EVENTS; i++) fold.event(payload(i))
    if (fold.outstandingCount !== THREE_EVENTS) throw new Error('three: events folded unexpectedly')
  }, THREE_EVENTS)
}

function diffMerge10k (): Timing {
  const a = threeParticipants()
  // B joins from A's full state, as the runtime does, before A makes any event.
  const bSnapshot: EventFoldSnapshot<Payload, number, number> = decodeEventFold(encodeEventFold(a.snapshot(), codecs), codecs)
  for (let i = 0; i < DIFF_EVENTS; i++) a.event(payload(i))
  const diff = a.diffFor('B')
  if (diff === undefined) throw new Error('diff: B needs a full merge')
  // Through the codec, so the diff is what B would really receive: fresh objects, not A's.
  const received = decodeDiff(encodeDiff(diff, codecs), codecs)
  return measure('diff_merge_10k_ms', () => EventFold.fromSnapshot(bSnapshot, 'B', counter), (b) => {
    const r = b.mergeDiff(received)
    if (!r.ok || b.outstandingCount !== DIFF_EVENTS || b.projectedValue() !== DIFF_EVENTS) throw new Error('diff: merge failed')
  }, DIFF_EVENTS)
}

function codecTimings (): { encode: Timing, decode: Timing, bytes: number } {
  const snapshot = withOutstanding(CODEC_EVENTS).snapshot()
  const bytes = encodeEventFold(snapshot, codecs)
  let sink = 0
  const encode = measure('encode_mb_per_s', () => snapshot, (s) => { sink += encodeEventFold(s, codecs).length }, CODEC_EVENTS, CODEC_REPEAT)
  const decode = measure('decode_mb_per_s', () => bytes, (b) => { sink += decodeEventFold(b, codecs).events.length }, CODEC_EVENTS, CODEC_REPEAT)
  if (sink === 0) throw new Error('unreachable')
  return { encode, decode, bytes: bytes.length }
}

/**
 * Heap growth per item of `build(n)`, measured around full collections. One sample per call,
 * so the previous sample's structure is unreachable (its frame is gone) before the next starts.
 */
function heapSample (n: number, build: (n: number) => unknown): number {
  gc(); gc()
  const before = process.memoryUsage().heapUsed
  const kept = build(n)
  gc(); gc()
  const after = process.memoryUsage().heapUsed
  if (kept === undefined) throw new Error('unreachable') // keeps `kept` alive across the gc
  return (after - before) / n
}

/** Median of three {@link heapSample}s. */
function heapBytesPer (n: number, build: (n: number) => unknown): number {
  const samples: number[] = []
  for (let run = 0; run < 3; run++) samples.push(heapSample(n, build))
  return median(samples)
}

// ---------------------------------------------------------------------------------------

interface Row { metric: string, value: number, unit: string, baseline_ratio?: number, goal?: string }

function main (): void {
  const cpu = cpus()
  const machine = { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, node: process.version, memGiB: Math.round(totalmem() / 2 ** 30) }
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, node ${machine.node}`)
  console.log(`runs per metric: ${RUNS} (median, after ${WARMUP} warm-up rounds)\n`)

  warmBaseline()
  const baseHeap = heapBytesPer(HEAP_EVENTS, (n) => {
    const arr: JsonObject[] = []
    for (let i = 0; i < n; i++) arr.push(payload(i))
    return arr
  })
  const single = eventSingleParticipant()
  const three = eventThreeParticipants()
  const merge = diffMerge10k()
  const codec = codecTimings()
  const heap = heapBytesPer(HEAP_EVENTS, withOutstanding)
  const base = baselineArrayPush()
  const perS = (t: Timing, n: number): number => n / (t.ms / 1000)
  const mbPerS = (t: Timing): number => (codec.bytes / 1e6) / (t.ms / 1000)

  const rows: Row[] = [
    { metric: 'baseline_array_push_per_s', value: perS(base, BASELINE_OBJECTS), unit: 'objects/s', baseline_ratio: 1 },
    { metric: 'baseline_heap_bytes_per_object', value: baseHeap, unit: 'bytes', baseline_ratio: 1 },
    { metric: 'event_single_participant_per_s', value: perS(single, SINGLE_EVENTS), unit: 'events/s', baseline_ratio: single.ratio, goal: '>= 1000000' },
    { metric: 'event_three_participants_per_s', value: perS(three, THREE_EVENTS), unit: 'events/s', baseline_ratio: three.ratio, goal: '>= 500000' },
    { metric: 'diff_merge_10k_ms', value: merge.ms, unit: 'ms', baseline_ratio: merge.ratio, goal: '<= 10' },
    { metric: 'encode_mb_per_s', value: mbPerS(codec.encode), unit: 'MB/s', baseline_ratio: codec.encode.ratio },
    { metric: 'decode_mb_per_s', value: mbPerS(codec.decode), unit: 'MB/s', baseline_ratio: codec.decode.ratio },
    { metric: 'encoded_bytes_per_event', value: codec.bytes / CODEC_EVENTS, unit: 'bytes' },
    { metric: 'heap_bytes_per_outstanding_event', value: heap, unit: 'bytes', baseline_ratio: heap / baseHeap, goal: '<= 300' }
  ]
  const spreads = new Map<string, number>([
    ['baseline_array_push_per_s', base.spread],
    ['event_single_participant_per_s', single.spread],
    ['event_three_participants_per_s', three.spread],
    ['diff_merge_10k_ms', merge.spread],
    ['encode_mb_per_s', codec.encode.spread],
    ['decode_mb_per_s', codec.decode.spread]
  ])

  const fmt = (x: number): string => x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(x >= 10 ? 1 : 2)
  const met = (r: Row): string => {
    if (r.goal === undefined) return ''
    const [op, n] = r.goal.split(' ') as [string, string]
    const ok = op === '>=' ? r.value >= Number(n) : r.value <= Number(n)
    return `${ok ? 'met' : 'MISSED'} (${r.goal})`
  }
  const table = rows.map((r) => ({
    metric: r.metric,
    value: fmt(r.value),
    unit: r.unit,
    'vs baseline': r.baseline_ratio === undefined ? '' : r.baseline_ratio.toFixed(3),
    'max/min': spreads.has(r.metric) ? spreads.get(r.metric)!.toFixed(2) : '',
    goal: met(r)
  }))
  console.table(table)

  const roundedRows = rows.map((r) => ({
    ...r,
    value: Number(r.value.toPrecision(6)),
    ...(r.baseline_ratio === undefined ? {} : { baseline_ratio: Number(r.baseline_ratio.toPrecision(4)) })
  }))
  void (async () => {
    await mkdir(new URL('./results/', import.meta.url), { recursive: true })
    await writeFile(new URL('./results/eventfold.json', import.meta.url), JSON.stringify(roundedRows, null, 2) + '\n')
    console.log('\nwrote bench/results/eventfold.json')
  })()
}

main()
