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

test('random link cuts on the keyspace, seed 14 with keys 1: a partition whose owners were all ejected while alive is restored from its last owner\'s copy (3 partitions and their acknowledged writes lost before)', async () => {
  const r = await keyspaceCutsRun(14, 1)
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 6 with keys 1 and R = 2: a peer given a partition it had left and forgotten is readmitted to its group, not taken for its old replica (the cluster never finished forming before)', async () => {
  const r = await keyspaceCutsRun(6, 1, { replication: 2 })
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 9 with keys 2, one way, 12 rounds: a replica that lacks events of a departed peer its UnJoin\'s acknowledgers held asks them, and folds (one owner held a write back for good before)', async () => {
  const r = await keyspaceCutsRun(9, 2, { oneWay: true, rounds: 12 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 120 with keys 2, one way, 12 rounds: a member whose Join in a cluster-wide group was dropped (its sponsor was ejected right after admitting it) rejoins when a participant refuses it there (partitions never served again before)', async () => {
  const r = await keyspaceCutsRun(120, 2, { oneWay: true, rounds: 12 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 15 with keys 2, one way, 12 rounds and R = 2: a last owner ejected before its restore was granted there restores from the copy it was to restore from (a partition and 152 acknowledged writes lost before)', async () => {
  const r = await keyspaceCutsRun(15, 2, { oneWay: true, rounds: 12, replication: 2 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 67 with keys 2, one way, 12 rounds: a replica left alone in its partition\'s group does not acknowledge writes (minReplicas; 6 acknowledged writes lost from every owner before)', async () => {
  const r = await keyspaceCutsRun(67, 2, { oneWay: true, rounds: 12 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 14 with keys 2, one way, 12 rounds and R = 2: a replica whose partner was taken as departed does not acknowledge writes alone (8 acknowledged writes lost from both owners before)', async () => {
  const r = await keyspaceCutsRun(14, 2, { oneWay: true, rounds: 12, replication: 2 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 34 with keys 2, one way, 12 rounds and R = 2: a joiner that took both owners as departed does not stand in for them past a write they held (1 acknowledged write lost from both owners before)', async () => {
  const r = await keyspaceCutsRun(34, 2, { oneWay: true, rounds: 12, replication: 2 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 103 with keys 2, one way, 12 rounds: an acknowledgement left waiting is dropped once a newer one of its sender is taken (an owner held 15 writes back for good before)', async () => {
  const r = await keyspaceCutsRun(103, 2, { oneWay: true, rounds: 12 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 92 with keys 2, one way, 12 rounds and R = 2: a last owner readmitted by a sponsor whose table is a generation behind keeps its copy and restores from it (3 partitions and their acknowledged writes lost before)', async () => {
  const r = await keyspaceCutsRun(92, 2, { oneWay: true, rounds: 12, replication: 2 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})

test('random link cuts on the keyspace, seed 72 with keys 2, one way, 12 rounds and R = 2: a replica that drops its state while listed again tells the table, so a ready it sent before leaving does not make it the last owner of a stale copy (3 acknowledged writes lost from both owners before; earlier still, the partition)', async () => {
  const r = await keyspaceCutsRun(72, 2, { oneWay: true, rounds: 12, replication: 2 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
  assert.equal(r.lost, 0, 'no partition was lost')
})
