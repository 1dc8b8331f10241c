/**
 * Exploration, not part of `npm test`: random link cuts among simulated peers under load, then
 * a heal (test/support/link-cuts.ts). Each seed fixes the cuts; `LEGION_LINK_CUT_KEYS` fixes
 * the peers' ids as well, so that a failing run replays exactly (without it they are fresh
 * keys, and a failing seed fails in some of its runs):
 *
 *   LEGION_LINK_CUT_RUNS=100 LEGION_LINK_CUT_FIRST=1 [LEGION_LINK_CUT_KEYS=1] npm run test:link-cuts
 *
 * `LEGION_LINK_CUT_ONE_WAY=1` cuts half of the links one way only (what `a` sends to `b` is lost,
 * not the other way), `LEGION_LINK_CUT_ROUNDS=12` runs more rounds, `LEGION_LINK_CUT_SHORT_HEALS=1`
 * heals for 0.5 - 2 s between them, `LEGION_LINK_CUT_PEERS=8` runs 8 peers instead of 4 - 6,
 * `LEGION_LINK_CUT_CRASHES=1` crashes a peer in half of the rounds and starts it again from its
 * storage, `LEGION_LINK_CUT_DELAY_MS=200` delays each message by up to 200 simulated ms (in order on
 * each link and protocol, not across them, from a random source of their own); the others draw
 * other plans from the same seeds.
 *
 * On a failure the error names the plan, each peer's view, and the first outstanding events of
 * the peers that hold any. Runs that failed and were fixed are tests in test/link-cuts.test.ts.
 */
import { test } from 'node:test'
import { linkCutsRun } from '../support/link-cuts.js'

const FIRST = Number(process.env.LEGION_LINK_CUT_FIRST ?? 1)
const RUNS = Number(process.env.LEGION_LINK_CUT_RUNS ?? 20)
const KEYS = process.env.LEGION_LINK_CUT_KEYS === undefined ? undefined : Number(process.env.LEGION_LINK_CUT_KEYS)
const ONE_WAY = process.env.LEGION_LINK_CUT_ONE_WAY === '1'
const ROUNDS = Number(process.env.LEGION_LINK_CUT_ROUNDS ?? 6)
const SHORT_HEALS = process.env.LEGION_LINK_CUT_SHORT_HEALS === '1'
const CRASHES = process.env.LEGION_LINK_CUT_CRASHES === '1'
const DELAY_MS = Number(process.env.LEGION_LINK_CUT_DELAY_MS ?? 0)
const PEERS = process.env.LEGION_LINK_CUT_PEERS === undefined ? undefined : Number(process.env.LEGION_LINK_CUT_PEERS)

for (let seed = FIRST; seed < FIRST + RUNS; seed++) {
  test(`random link cuts (seed ${seed}${KEYS === undefined ? '' : `, keys ${KEYS}`}${ONE_WAY ? ', one way' : ''}${ROUNDS !== 6 ? `, ${ROUNDS} rounds` : ''}${SHORT_HEALS ? ', short heals' : ''}${PEERS !== undefined ? `, ${PEERS} peers` : ''}${CRASHES ? ', crashes' : ''}${DELAY_MS > 0 ? `, delays up to ${DELAY_MS} ms` : ''}): after the heal every peer converges with nothing acknowledged lost`, async (t) => {
    const r = await linkCutsRun(seed, KEYS, { oneWay: ONE_WAY, rounds: ROUNDS, shortHeals: SHORT_HEALS, ...(PEERS !== undefined ? { peers: PEERS } : {}), crashes: CRASHES, delayMs: DELAY_MS })
    t.diagnostic(`${r.peers} peers, ${r.resolved} calls resolved, ${r.timedOut} timed out during cuts, ${r.ejections} ejections; plan: ${r.plan.join('; ')}`)
  })
}
