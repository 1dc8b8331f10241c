/**
 * Storage throughput, the memory and LMDB adapters side by side in one run; every LMDB figure
 * is also reported as a ratio to the memory adapter's (the in-process baseline, so that runs on
 * a loaded machine compare by ratio):
 *
 * 1. `PeerStorage` (layout 1, what the runtime uses today): saves per second, each awaited
 *    before the next, for 1 KB, 100 KB and 1 MB folds.
 * 2. `KeyValueStore` (layout 2), in namespace `group/bench` with tuple keys ('e', i) and
 *    100-byte values:
 *    - fill: 1,000,000 puts in awaited batches of 10,000 (puts/s);
 *    - batches of 100: 20,000 more puts in awaited batches of 100 (puts/s);
 *    - gets: 200,000 awaited gets of stored keys in a fixed pseudo-random order (gets/s);
 *    - scan: one forward range scan of all 1,020,000 entries (records/s), and the live heap it
 *      added at its peak, sampled after a forced collection every 100,000 records, next to
 *      the size of what it read (MB): that a scan holds a page, not the whole range;
 *    - small batch: 500 awaited batches of one 100-byte put (ms per batch: mean, p50, p99),
 *      what saving one small change costs.
 * 3. The key-value peer store's saves (`bench/peer-store-saves.ts`): 60,000 events in 64 groups
 *    of three, saved as a keyspace replica saves them under write load (µs of wall time and of
 *    CPU per event).
 * LMDB runs in fresh directories under the OS temp dir, removed afterwards.
 *
 * Run: npm run bench:storage (node --expose-gc --import tsx bench/storage.ts), under a minute.
 * Prints a table and writes bench/results/storage.json ({metric, value, unit, ratio_to_memory?} rows).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import type { KeyValueOperation, KeyValueStore, KeyValueView } from '../src/storage/key-value.js'
import { lmdbStorage } from '../src/storage/lmdb.js'
import { lmdbKeyValueStore } from '../src/storage/lmdb-key-value.js'
import { memoryStorage } from '../src/storage/memory.js'
import { memoryKeyValueStore } from '../src/storage/memory-key-value.js'
import type { PeerRecord, PeerStorage } from '../src/storage/storage.js'
import { tupleKey } from '../src/storage/tuple-key.js'
import { peerStoreSaves } from './peer-store-saves.js'

interface Row { metric: string, value: number, unit: string, ratio_to_memory?: number }

const SAVE_SIZES: Array<{ label: string, bytes: number, saves: number }> = [
  { label: '1KB', bytes: 1024, saves: 1000 },
  { label: '100KB', bytes: 100 * 1024, saves: 300 },
  { label: '1MB', bytes: 1024 * 1024, saves: 60 }
]
const FILL_KEYS = 1_000_000
const FILL_BATCH = 10_000
const SMALL_BATCH_PUTS = 20_000
const SMALL_BATCH = 100
const GETS = 200_000
const SCAN_SAMPLE_EVERY = 100_000
const LATENCY_BATCHES = 500
const VALUE = new Uint8Array(100).fill(0x5a)

const gc = (globalThis as { gc?: () => void }).gc

function record (bytes: number, seed: number): PeerRecord {
  const fold = new Uint8Array(bytes)
  for (let i = 0; i < bytes; i += 64) fold[i] = (seed + i) & 0xff
  return { cluster: 'bench', privateKey: new Uint8Array(68).fill(seed & 0xff), fold }
}

/** Saves per second, `saves` saves of `bytes`-byte folds, each awaited (after a short warm-up). */
async function savesPerSecond (storage: PeerStorage, bytes: number, saves: number): Promise<number> {
  const records = [record(bytes, 1), record(bytes, 2)]
  for (let i = 0; i < 10; i++) await storage.save(records[i % 2]!)
  const start = process.hrtime.bigint()
  for (let i = 0; i < saves; i++) await storage.save(records[i % 2]!)
  return saves / seconds(start)
}

function seconds (start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9
}

function puts (from: number, count: number): KeyValueOperation[] {
  return Array.from({ length: count }, (_, i) => ({ type: 'put', key: tupleKey('e', from + i), value: VALUE }))
}

function liveHeap (): number {
  gc?.()
  return process.memoryUsage().heapUsed
}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

/** Awaited gets of stored keys in a fixed pseudo-random order, per second. */
async function getsPerSecond (adapter: string, group: KeyValueView): Promise<number> {
  let state = 0x9e3779b9
  const keys = Array.from({ length: GETS }, () => {
    state ^= state << 13; state >>>= 0; state ^= state >>> 17; state ^= state << 5; state >>>= 0
    return tupleKey('e', state % FILL_KEYS)
  })
  let found = 0
  const start = process.hrtime.bigint()
  for (const key of keys) if (await group.get(key) !== undefined) found++
  const perSecond = GETS / seconds(start)
  if (found !== GETS) throw new Error(`${adapter}: ${GETS - found} gets found nothing`)
  return perSecond
}

/** The key-value figures of one store, as rows named `<adapter> kv ...`. */
async function keyValueRows (adapter: string, store: KeyValueStore): Promise<Row[]> {
  const group = store.namespace('group/bench')
  const rows: Row[] = []

  let start = process.hrtime.bigint()
  for (let i = 0; i < FILL_KEYS; i += FILL_BATCH) await group.batch(puts(i, FILL_BATCH))
  rows.push({ metric: `${adapter} kv fill, batches of ${FILL_BATCH}`, value: FILL_KEYS / seconds(start), unit: 'puts/s' })

  start = process.hrtime.bigint()
  for (let i = 0; i < SMALL_BATCH_PUTS; i += SMALL_BATCH) await group.batch(puts(FILL_KEYS + i, SMALL_BATCH))
  rows.push({ metric: `${adapter} kv batches of ${SMALL_BATCH}`, value: SMALL_BATCH_PUTS / seconds(start), unit: 'puts/s' })

  rows.push({ metric: `${adapter} kv get`, value: await getsPerSecond(adapter, group), unit: 'gets/s' })

  const before = liveHeap()
  let peak = Number.NEGATIVE_INFINITY
  let scanned = 0
  start = process.hrtime.bigint()
  let paused = 0n
  for await (const entry of group.range({ prefix: tupleKey('e') })) {
    if (entry.value.length !== VALUE.length) throw new Error('scan returned a wrong value')
    scanned++
    if (scanned % SCAN_SAMPLE_EVERY === 0) {
      const pauseStart = process.hrtime.bigint()
      peak = Math.max(peak, liveHeap())
      paused += process.hrtime.bigint() - pauseStart
    }
  }
  const scanSeconds = seconds(start) - Number(paused) / 1e9
  if (scanned !== FILL_KEYS + SMALL_BATCH_PUTS) throw new Error(`${adapter}: the scan visited ${scanned} records`)
  rows.push({ metric: `${adapter} kv scan`, value: scanned / scanSeconds, unit: 'records/s' })
  rows.push({ metric: `${adapter} kv scan heap growth`, value: (peak - before) / 2 ** 20, unit: 'MB' })
  rows.push({ metric: `${adapter} kv scanned data`, value: scanned * (VALUE.length + tupleKey('e', 0).length) / 2 ** 20, unit: 'MB' })

  const latencies: number[] = []
  for (let i = 0; i < LATENCY_BATCHES; i++) {
    const t0 = process.hrtime.bigint()
    await group.put(tupleKey('small', i), VALUE)
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  const sorted = [...latencies].sort((a, b) => a - b)
  const mean = latencies.reduce((sum, ms) => sum + ms, 0) / latencies.length
  rows.push({ metric: `${adapter} kv small batch mean`, value: mean, unit: 'ms' })
  rows.push({ metric: `${adapter} kv small batch p50`, value: percentile(sorted, 0.5), unit: 'ms' })
  rows.push({ metric: `${adapter} kv small batch p99`, value: percentile(sorted, 0.99), unit: 'ms' })
  return rows
}

const cpu = cpus()
console.log(`machine: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, load ${loadavg()[0]!.toFixed(1)}`)
if (gc === undefined) console.log('(run with --expose-gc for the scan heap figure; without it the figure includes garbage)')

const rows: Row[] = []
const base = await mkdtemp(join(tmpdir(), 'legion-bench-storage-'))
const benchStart = process.hrtime.bigint()
try {
  for (const size of SAVE_SIZES) {
    const memory = memoryStorage()
    rows.push({ metric: `memory save ${size.label}`, value: await savesPerSecond(memory, size.bytes, size.saves), unit: 'saves/s' })
    await memory.close()

    const lmdb = await lmdbStorage(join(base, size.label))
    rows.push({ metric: `lmdb save ${size.label}`, value: await savesPerSecond(lmdb, size.bytes, size.saves), unit: 'saves/s' })
    await lmdb.close()
  }

  const memoryStore = memoryKeyValueStore()
  rows.push(...await keyValueRows('memory', memoryStore))
  await memoryStore.close()
  liveHeap() // the memory store's million entries go before LMDB's run is measured

  const lmdbStore = await lmdbKeyValueStore(join(base, 'kv'))
  rows.push(...await keyValueRows('lmdb', lmdbStore))
  await lmdbStore.close()

  for (const adapter of ['memory', 'lmdb'] as const) {
    const store = adapter === 'memory' ? memoryKeyValueStore() : await lmdbKeyValueStore(join(base, 'peer-store'))
    const saves = await peerStoreSaves(store)
    rows.push({ metric: `${adapter} peer store saves, wall`, value: saves.wallUs, unit: 'us per event' })
    rows.push({ metric: `${adapter} peer store saves, CPU`, value: saves.cpuUs, unit: 'us per event' })
    await store.close()
  }
} finally {
  await rm(base, { recursive: true, force: true })
}

for (const row of rows) {
  if (!row.metric.startsWith('lmdb ')) continue
  const memory = rows.find(other => other.metric === `memory ${row.metric.slice('lmdb '.length)}`)
  if (memory !== undefined && memory.value !== 0 && row.unit !== 'MB') row.ratio_to_memory = row.value / memory.value
}

const round = (value: number): number => Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 1000) / 1000
const pad = (text: string, width: number): string => text.padEnd(width)
console.log(`${pad('metric', 36)}${pad('value', 22)}lmdb / memory`)
for (const row of rows) {
  console.log(`${pad(row.metric, 36)}${pad(`${round(row.value)} ${row.unit}`, 22)}${row.ratio_to_memory === undefined ? '' : round(row.ratio_to_memory)}`)
}
console.log(`total ${seconds(benchStart).toFixed(1)} s, load ${loadavg()[0]!.toFixed(1)}`)

await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(new URL('./results/storage.json', import.meta.url), JSON.stringify(rows.map(row => ({
  ...row,
  value: round(row.value),
  ...(row.ratio_to_memory === undefined ? {} : { ratio_to_memory: Math.round(row.ratio_to_memory * 10_000) / 10_000 })
})), null, 2) + '\n')
