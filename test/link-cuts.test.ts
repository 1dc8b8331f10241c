/**
 * Runs of the random link-cuts exploration (test/explore/link-cuts.test.ts) that failed, each
 * replayed exactly (its seed fixes the cuts, its key number the peers' ids): simulated peers,
 * a manual clock, a few seconds each. Each fails on the code before its fix (docs/RELIABILITY.md).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { linkCutsRun } from './support/link-cuts.js'

test('random link cuts, seed 57 with keys 19: a replica that does not know of a readmission yet does not fold on the new incarnation\'s word past an event of the old one (a fork before)', async () => {
  const r = await linkCutsRun(57, 19)
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
})

test('random link cuts, seed 7 with keys 1: an UnJoin does not wait for events only a participant ejected after it held (a stall before)', async () => {
  const r = await linkCutsRun(7, 1)
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
})

test('random link cuts, seed 57 with keys 1: two peers ejected together and readmitted by each other rejoin through the others, whose refusals last (a split for good before)', async () => {
  const r = await linkCutsRun(57, 1)
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
})

test('random link cuts, seed 19 with keys 2, one way, 12 rounds, short heals: a participant\'s newest acknowledgement is kept though it lists fewer logs, so an UnJoin it folded does not stall a replica behind it (a stall before)', async () => {
  const r = await linkCutsRun(19, 2, { oneWay: true, rounds: 12, shortHeals: true })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
})

test('random link cuts, seed 6 with keys 2, one way, 12 rounds, short heals, crashes: a peer cut off from both others, which reported each other stuck, ejects one of them, not both (it folded its events alone before, and they were lost)', async () => {
  const r = await linkCutsRun(6, 2, { oneWay: true, rounds: 12, shortHeals: true, crashes: true })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
})

test('random link cuts, seed 31 with keys 3, one way, 12 rounds, short heals, crashes: two peers that each hear a third that hears neither of them eject the third, not each other (two pairs each folding alone before)', async () => {
  const r = await linkCutsRun(31, 3, { oneWay: true, rounds: 12, shortHeals: true, crashes: true })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
})

test('random link cuts, seed 52 with keys 2, one way, 12 rounds, short heals, crashes, delays up to 500 ms: a peer readmitted through a readmitted sponsor does not fold past an event of the sponsor\'s old incarnation (a call resolved one place early before)', async () => {
  const r = await linkCutsRun(52, 2, { oneWay: true, rounds: 12, shortHeals: true, crashes: true, delayMs: 500 })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
})

test('random link cuts, seed 188 with keys 4, one way, 12 rounds, short heals: a replica that learnt a peer\'s logs out of order still sends its acknowledgement (the codec refused it, and the cluster stalled for good before)', async () => {
  const r = await linkCutsRun(188, 4, { oneWay: true, rounds: 12, shortHeals: true })
  assert.ok(r.ejections >= 3, `peers were ejected and readmitted (${r.ejections})`)
})
