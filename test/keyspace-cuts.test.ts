/**
 * Runs of the random link-cuts exploration on the keyspace (test/explore/keyspace-cuts.test.ts)
 * that failed, each replayed exactly (its seed fixes the cuts, its key number the peers' ids):
 * simulated peers, a manual clock. Each fails on the code before its fix (docs/RELIABILITY.md).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { keyspaceCutsRun } from './support/keyspace-cuts.js'

test('random link cuts on the keyspace, seed 21 with keys 1: a partition\'s group does not drop a peer the cluster kept, so an owner cut off from it cannot fold and acknowledge writes alone (225 acknowledged writes lost before)', async () => {
  const r = await keyspaceCutsRun(21, 1)
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})
