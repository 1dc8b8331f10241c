/**
 * Test support for the keyspace: a write load over in-process cache peers (demo/cache), which
 * records every write an owner acknowledged, and the check that every acknowledged write is
 * on every replica of its partition.
 */
import type { Cache } from '../../demo/cache/cache.js'

/** One write and how it ended. */
export interface Write {
  readonly key: string
  readonly value: string
  /** The error's name, if it failed. */
  error?: string
  /** The error's message, and its cause's, if it failed (for a failed test's message). */
  detail?: string
  acknowledged?: boolean
}

/**
 * Writers, one per entry of `writers` (a function giving that writer's cache now), each
 * setting unique keys one after the other with `agreed` consistency until stopped. Each loop
 * is bounded in count; `paceMs` shapes the load (it is not synchronisation).
 */
export class CacheLoad {
  readonly writes: Write[] = []
  private running = true
  private readonly loops: Array<Promise<void>>

  constructor (writers: ReadonlyArray<() => Cache | undefined>, options: { prefix: string, paceMs?: number, max?: number, timeoutMs?: number }) {
    this.loops = writers.map(async (cache, w) => {
      for (let i = 0; this.running && i < (options.max ?? 5000); i++) {
        const c = cache()
        if (c === undefined) break
        const write: Write = { key: `${options.prefix}:${w}-${i}`, value: `v${i}` }
        this.writes.push(write)
        try {
          await c.request(write.key, { op: 'set', value: write.value, tags: [options.prefix] }, { timeoutMs: options.timeoutMs ?? 15_000 })
          write.acknowledged = true
        } catch (err) {
          write.error = (err as Error).name
          const cause = (err as Error).cause
          write.detail = `${(err as Error).message}${cause instanceof Error ? ` (cause: ${cause.name}: ${cause.message})` : ''}`
        }
        if (options.paceMs !== undefined) await new Promise(resolve => setTimeout(resolve, options.paceMs))
      }
    })
  }

  /** Writes acknowledged so far. */
  acknowledged (): Write[] {
    return this.writes.filter(w => w.acknowledged === true)
  }

  /** Writes that failed, by error name. */
  failures (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const w of this.writes) if (w.error !== undefined) out[w.error] = (out[w.error] ?? 0) + 1
    return out
  }

  /** The failed writes, each with its error: for a failed test's message. */
  failed (): string {
    return this.writes.filter(w => w.error !== undefined).map(w => `${w.key}: ${w.error}: ${w.detail ?? ''}`).join('; ')
  }

  /** Stops writing and waits for every write in flight to settle. */
  async stop (): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
  }
}

/**
 * The acknowledged writes not (yet) settled on every serving owner of their partition, as
 * `caches` (every live peer) see it: empty when every replica has every write.
 */
export function missingOnReplicas (caches: readonly Cache[], selfs: readonly string[], writes: readonly Write[]): string[] {
  const table = caches[0]!.table()
  if (table === undefined) return ['no table']
  const missing: string[] = []
  for (const w of writes) {
    const p = caches[0]!.partitionOf(w.key)
    const owners = table.assignments[p]!.owners
    if (owners.length === 0) { missing.push(`${w.key}: no owner`); continue }
    for (const o of owners) {
      const at = selfs.indexOf(o)
      if (at < 0) { missing.push(`${w.key}: owner ${o} is not a live peer`); continue }
      const read = caches[at]!.readLocal(w.key)
      if (read.infimum?.value !== w.value) missing.push(`${w.key} on ${o.slice(-6)}: ${read.held ? JSON.stringify(read.infimum) : 'not held'}`)
    }
  }
  return missing
}

/** Whether `c`'s table lists `members` members and every partition is owned with no move under way. */
export function settledWith (c: Cache, members: number): boolean {
  const t = c.table()
  return t !== undefined && t.members.length === members && t.assignments.every(a => a.incoming.length === 0 && a.owners.length > 0 && a.founder === null)
}
