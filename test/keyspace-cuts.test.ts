/**
 * Runs of the random link-cuts exploration on the keyspace (test/explore/keyspace-cuts.test.ts)
 * that failed, each replayed exactly (its seed fixes the cuts, its key number the peers' ids):
 * simulated peers, a manual clock. Each fails on the code before its fix (docs/RELIABILITY.md).
 * Every run checks that every acknowledged write ends on every owner; each here also checks
 * that no partition was lost and (but the one that never finished forming) that peers were
 * ejected and readmitted.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { keyspaceCutsRun, type KeyspaceCutsOptions } from './support/keyspace-cuts.js'

/** A replayed run: its seed, its peers' keys, the exploration's options, and what it shows. */
interface Replay { readonly seed: number, readonly keys: number, readonly options?: KeyspaceCutsOptions, readonly shows: string, readonly ejects?: false }

const harsh = { oneWay: true, rounds: 12 }
const replays: readonly Replay[] = [
  { seed: 21, keys: 1, shows: 'a partition\'s group does not drop a peer the cluster kept, so an owner cut off from it cannot fold and acknowledge writes alone (225 acknowledged writes lost before)' },
  { seed: 14, keys: 1, shows: 'a partition whose owners were all ejected while alive is restored from its last owner\'s copy (3 partitions and their acknowledged writes lost before)' },
  { seed: 6, keys: 1, options: { replication: 2 }, ejects: false, shows: 'a peer given a partition it had left and forgotten is readmitted to its group, not taken for its old replica (the cluster never finished forming before)' },
  { seed: 9, keys: 2, options: harsh, shows: 'a replica that lacks events of a departed peer its UnJoin\'s acknowledgers held asks them, and folds (one owner held a write back for good before)' },
  { seed: 120, keys: 2, options: harsh, shows: 'a member whose Join in a cluster-wide group was dropped (its sponsor was ejected right after admitting it) rejoins when a participant refuses it there (partitions never served again before)' },
  { seed: 15, keys: 2, options: { ...harsh, replication: 2 }, shows: 'a last owner ejected before its restore was granted there restores from the copy it was to restore from (a partition and 152 acknowledged writes lost before)' },
  { seed: 67, keys: 2, options: harsh, shows: 'a replica left alone in its partition\'s group does not acknowledge writes (minReplicas; 6 acknowledged writes lost from every owner before)' },
  { seed: 14, keys: 2, options: { ...harsh, replication: 2 }, shows: 'a replica whose partner was taken as departed does not acknowledge writes alone (8 acknowledged writes lost from both owners before)' },
  { seed: 34, keys: 2, options: { ...harsh, replication: 2 }, shows: 'a joiner that took both owners as departed does not stand in for them past a write they held (1 acknowledged write lost from both owners before); with no owner, an incoming replica holding a state it cannot join abandons (since the owner count of 2026-12-07; it stalled for good before)' },
  { seed: 103, keys: 2, options: harsh, shows: 'an acknowledgement left waiting is dropped once a newer one of its sender is taken (an owner held 15 writes back for good before)' },
  { seed: 92, keys: 2, options: { ...harsh, replication: 2 }, shows: 'a last owner readmitted by a sponsor whose table is a generation behind keeps its copy and restores from it (3 partitions and their acknowledged writes lost before)' },
  { seed: 72, keys: 2, options: { ...harsh, replication: 2 }, shows: 'a replica that drops its state while listed again tells the table, so a ready it sent before leaving does not make it the last owner of a stale copy (3 acknowledged writes lost from both owners before; earlier still, the partition)' },
  { seed: 144, keys: 2, options: { ...harsh, replication: 2 }, shows: 'with no owner, an incoming replica that holds the state removes a participant the table does not list, whose acknowledgement the incoming replicas\' Joins wait for (partitions never served again before)' },
  { seed: 293, keys: 2, options: harsh, shows: 'two sides of a split, each ejecting the other, do not both go on: an automatic ejection stands in only for a majority (the cluster became two of two, and 72 acknowledged writes were lost from one side, before)' },
  { seed: 214, keys: 2, options: { ...harsh, replication: 2 }, shows: 'a write folded after both owners left only among replicas the table does not list as owners is not acknowledged: the partition restores from its last owner, which never held it (2 acknowledged writes lost from both owners before)' },
  { seed: 435, keys: 2, options: harsh, shows: 'with no owner, an incoming replica readmitted to its group and not yet joined there does not hand its replica on or remove the owners as strays: the last owner restores (2 acknowledged writes lost from every owner before)' },
  { seed: 325, keys: 2, options: { ...harsh, replication: 2 }, shows: 'incoming replicas whose Joins are pending record no UnJoins of owners that left the cluster, so they cannot stand in for both on a guess and fold past a write the owners acknowledged: the last owner restores (2 acknowledged writes lost from both owners before)' },
  { seed: 18, keys: 2, options: { ...harsh, replication: 2 }, shows: 'a founder ejected before its grant folded there resigns with the copy it was to found from and restores from it, rather than abandoning (4 partitions declared lost and 85 acknowledged writes with them before, once incoming replicas no longer stood in for departed owners)' },
  { seed: 628, keys: 2, options: harsh, shows: 'an incoming replica the owners went on without, which stood in for every other participant as they left the cluster and folded alone, is not ready until a transfer brings it into the owners\' history (2 acknowledged writes lost from every owner before)' },
  { seed: 1279, keys: 2, options: harsh, shows: 'an UnJoin an owner recorded for itself as it left does not fold after another Join of its name, which admitted a new replica of it that never held the UnJoin (12 acknowledged writes lost from every owner before)' }
]

for (const { seed, keys, options = {}, shows, ejects } of replays) {
  const mode = [`keys ${keys}`, ...(options.oneWay === true ? ['one way'] : []), ...(options.rounds !== undefined ? [`${options.rounds} rounds`] : []), ...(options.replication !== undefined ? [`R = ${options.replication}`] : [])]
  test(`random link cuts on the keyspace, seed ${seed} with ${mode.join(', ')}: ${shows}`, async () => {
    const r = await keyspaceCutsRun(seed, keys, options)
    if (ejects !== false) assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
    assert.equal(r.lost, 0, 'no partition was lost')
  })
}
