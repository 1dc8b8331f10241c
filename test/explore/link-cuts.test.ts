/**
 * Exploration, not part of `npm test`: random link cuts among simulated peers under load, then
 * a heal (test/support/link-cuts.ts). Each seed fixes the cuts; `LEGION_LINK_CUT_KEYS` fixes
 * the peers' ids as well, so that a failing run replays exactly (without it they are fresh
 * keys, and a failing seed fails in some of its runs):
 *
 *   LEGION_LINK_CUT_RUNS=100 LEGION_LINK_CUT_FIRST=1 [LEGION_LINK_CUT_KEYS=1] npm run test:link-cuts
 *
 * On a failure the error names the plan, each peer's view, and the first outstanding events of
 * the peers that hold any. Runs that failed and were fixed are tests in test/link-cuts.test.ts.
 */
import { test } from 'node:test'
import { linkCutsRun } from '../support/link-cuts.js'

const FIRST = Number(process.env.LEGION_LINK_CUT_FIRST ?? 1)
const RUNS = Number(process.env.LEGION_LINK_CUT_RUNS ?? 20)
const KEYS = process.env.LEGION_LINK_CUT_KEYS === undefined ? undefined : Number(process.env.LEGION_LINK_CUT_KEYS)

for (let seed = FIRST; seed < FIRST + RUNS; seed++) {
  test(`random link cuts (seed ${seed}${KEYS === undefined ? '' : `, keys ${KEYS}`}): after the heal every peer converges with nothing acknowledged lost`, async (t) => {
    const r = await linkCutsRun(seed, KEYS)
    t.diagnostic(`${r.peers} peers, ${r.resolved} calls resolved, ${r.timedOut} timed out during cuts, ${r.ejections} ejections; plan: ${r.plan.join('; ')}`)
  })
}
