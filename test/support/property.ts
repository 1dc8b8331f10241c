/**
 * Shared settings for fast-check property tests: a run budget that is short in `npm test` and
 * long in `npm run test:long`, and a seed that is always printed and can be replayed.
 *
 * Replay a failure with `LEGION_SEED=<seed> [LEGION_PATH=<path>] node --import tsx --test <file>`.
 */
import type { Parameters } from 'fast-check'

/** Number of runs for a property, scaled by `LEGION_PROPERTY_RUNS` (default: `short`). */
export function propertyRuns (short: number): number {
  const fromEnv = Number(process.env.LEGION_PROPERTY_RUNS)
  return Number.isFinite(fromEnv) && fromEnv > 0 ? Math.max(short, fromEnv) : short
}

/**
 * fast-check parameters with a printed, replayable seed. The seed comes from `LEGION_SEED` if
 * set, otherwise it is drawn at random and printed before the property runs.
 */
export function propertyParameters<T> (name: string, short: number): Parameters<T> {
  const fromEnv = process.env.LEGION_SEED
  const seed = fromEnv !== undefined && fromEnv !== '' ? Number(fromEnv) : (Math.random() * 0x7fffffff) | 0
  const path = process.env.LEGION_PATH
  const numRuns = propertyRuns(short)
  // Printed on every run, not only on failure, so a CI log always names the seed it used.
  process.stdout.write(`# property "${name}": seed=${seed} runs=${numRuns}\n`)
  return { seed, numRuns, ...(path !== undefined && path !== '' ? { path } : {}), endOnFailure: true }
}
