/**
 * Peer storage throughput: saves per second for the memory and lmdb adapters, each save awaited
 * before the next (what a peer persisting after every change pays), for 1 KB, 100 KB and 1 MB
 * folds. lmdb runs in a fresh directory under the OS temp dir, removed afterwards.
 *
 * Run: node --import tsx bench/storage.ts
 * Prints a table and writes bench/results/storage.json ({metric, value, unit} rows).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lmdbStorage } from '../src/storage/lmdb.js'
import { memoryStorage } from '../src/storage/memory.js'
import type { PeerRecord, PeerStorage } from '../src/storage/storage.js'

interface Row { metric: string, value: number, unit: string }

const SIZES: Array<{ label: string, bytes: number, saves: number }> = [
  { label: '1KB', bytes: 1024, saves: 2000 },
  { label: '100KB', bytes: 100 * 1024, saves: 500 },
  { label: '1MB', bytes: 1024 * 1024, saves: 100 }
]

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
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return saves / seconds
}

const rows: Row[] = []
const base = await mkdtemp(join(tmpdir(), 'legion-bench-storage-'))
try {
  for (const size of SIZES) {
    const memory = memoryStorage()
    rows.push({ metric: `memory save ${size.label}`, value: await savesPerSecond(memory, size.bytes, size.saves), unit: 'saves/s' })
    await memory.close()

    const lmdb = await lmdbStorage(join(base, size.label))
    rows.push({ metric: `lmdb save ${size.label}`, value: await savesPerSecond(lmdb, size.bytes, size.saves), unit: 'saves/s' })
    await lmdb.close()
  }
} finally {
  await rm(base, { recursive: true, force: true })
}

const pad = (text: string, width: number): string => text.padEnd(width)
console.log(`${pad('metric', 22)}value`)
for (const row of rows) console.log(`${pad(row.metric, 22)}${Math.round(row.value)} ${row.unit}`)

await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(new URL('./results/storage.json', import.meta.url), JSON.stringify(rows.map(row => ({ ...row, value: Math.round(row.value) })), null, 2) + '\n')
