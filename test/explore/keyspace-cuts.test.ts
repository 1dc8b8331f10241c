/**
 * Exploration, not part of `npm test`: random link cuts among simulated keyspace peers under a
 * write load, then a heal (test/support/keyspace-cuts.ts). Each seed fixes the cuts;
 * `LEGION_KEYSPACE_CUT_KEYS` fixes the peers' ids as well, so that a failing run replays exactly:
 *
 *   LEGION_KEYSPACE_CUT_RUNS=50 LEGION_KEYSPACE_CUT_FIRST=1 [LEGION_KEYSPACE_CUT_KEYS=1] npm run test:keyspace-cuts
 *
 * `LEGION_KEYSPACE_CUT_ONE_WAY=1` cuts half of the links one way only, `LEGION_KEYSPACE_CUT_ROUNDS=12`
 * runs more rounds, `LEGION_KEYSPACE_CUT_REPLICATION=2` keeps two replicas of each partition instead of three.
 * On a failure the error names the plan, the writes missing and each peer's view.
 *
 * To see how a partition went, `LEGION_KEYSPACE_CUT_TRACE=<partition>[:<key>]` prints, on the
 * simulated clock, each peer's table entry, replicas and former copies of that partition
 * (infimum, participants, outstanding events) whenever they change, its partition events, and
 * when the key's write was acknowledged (test/support/keyspace-trace.ts). The partition of a
 * missing key is `partitionOfBytes(utf8(key), 16)` (src/keyspace/router.ts).
 */
import { test } from 'node:test'
import { keyspaceCutsRun } from '../support/keyspace-cuts.js'

const FIRST = Number(process.env.LEGION_KEYSPACE_CUT_FIRST ?? 1)
const RUNS = Number(process.env.LEGION_KEYSPACE_CUT_RUNS ?? 10)
const KEYS = process.env.LEGION_KEYSPACE_CUT_KEYS === undefined ? undefined : Number(process.env.LEGION_KEYSPACE_CUT_KEYS)
const ONE_WAY = process.env.LEGION_KEYSPACE_CUT_ONE_WAY === '1'
const ROUNDS = Number(process.env.LEGION_KEYSPACE_CUT_ROUNDS ?? 6)
const REPLICATION = Number(process.env.LEGION_KEYSPACE_CUT_REPLICATION ?? 3)

for (let seed = FIRST; seed < FIRST + RUNS; seed++) {
  test(`random link cuts on the keyspace (seed ${seed}${KEYS === undefined ? '' : `, keys ${KEYS}`}${ONE_WAY ? ', one way' : ''}${ROUNDS !== 6 ? `, ${ROUNDS} rounds` : ''}, R = ${REPLICATION}): after the heal every acknowledged write is on every owner`, async (t) => {
    const r = await keyspaceCutsRun(seed, KEYS, { oneWay: ONE_WAY, rounds: ROUNDS, replication: REPLICATION })
    t.diagnostic(`${r.peers} peers, ${r.acknowledged} writes acknowledged, failed ${JSON.stringify(r.failed)}, ${r.ejections} ejections, ${r.lost} partitions lost; plan: ${r.plan.join('; ')}`)
  })
}
