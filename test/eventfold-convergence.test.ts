/**
 * Convergence properties of the EventFold: 2-7 simulated participants exchanging diffs and
 * full merges over a network that reorders, duplicates and drops messages, with concurrent
 * events, joins racing events, ejections, renegades and system errors, and (in the throwing
 * variants) one replica running other code whose hooks throw. Once quiet, every replica
 * agrees on everything, every event's consistent output is the same wherever it was produced
 * (with throwing hooks: on the replicas that were never shown to be on the wrong side), no
 * infimum moved backwards and nothing is left outstanding.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { propertyParameters } from './support/property.js'
import { runSimulation } from './support/fold-simulation.js'

test('replicas converge on one infimum, projection and participant set once the network is quiet', () => {
  fc.assert(
    fc.property(
      fc.record({ seed: fc.integer(), peers: fc.integer({ min: 2, max: 7 }), steps: fc.integer({ min: 10, max: 300 }) }),
      plan => { runSimulation(plan) }
    ),
    propertyParameters('eventfold convergence', 300)
  )
})

test('a replica rebuilt from a checkpoint, the events that moved its infimum since, and its logs and outstanding events as they stand, is the replica it was, at every point of a run', () => {
  let refolded = 0
  fc.assert(
    fc.property(
      fc.record({ seed: fc.integer(), peers: fc.integer({ min: 2, max: 6 }), steps: fc.integer({ min: 10, max: 200 }), firstHand: fc.boolean(), throwing: fc.boolean() }),
      plan => { refolded += runSimulation({ ...plan, saveEvery: 3 }).refolded }
    ),
    propertyParameters('eventfold settled records', 100)
  )
  assert.ok(refolded > 0, 'some records held events to fold again')
})

test('with ejections by quorum (the failure detector\'s), replicas converge the same way once the peers that are gone are removed without it', () => {
  fc.assert(
    fc.property(
      // Crash-stop ejections only: live ones fork about once in 1,500 - 3,000 random runs with
      // or without quorum (docs/RELIABILITY.md, "Known failures").
      fc.record({ seed: fc.integer(), peers: fc.integer({ min: 2, max: 7 }), steps: fc.integer({ min: 10, max: 300 }), firstHand: fc.boolean() }),
      plan => { runSimulation({ ...plan, quorumEjections: true }) }
    ),
    propertyParameters('eventfold convergence, ejections by quorum', 200)
  )
})

test('first-hand merges converge the same way: believing each replica only about itself loses nothing', () => {
  fc.assert(
    fc.property(
      fc.record({ seed: fc.integer(), peers: fc.integer({ min: 2, max: 7 }), steps: fc.integer({ min: 10, max: 300 }) }),
      plan => { runSimulation({ ...plan, firstHand: true }) }
    ),
    propertyParameters('eventfold convergence, first-hand', 300)
  )
})

test('with one replica whose apply, join and unjoin throw, the others converge and it finds out and rejoins (first-hand)', () => {
  fc.assert(
    fc.property(
      fc.record({ seed: fc.integer(), peers: fc.integer({ min: 2, max: 7 }), steps: fc.integer({ min: 10, max: 300 }) }),
      plan => { runSimulation({ ...plan, firstHand: true, throwing: true }) }
    ),
    propertyParameters('eventfold convergence, first-hand, throwing hooks', 300)
  )
})

test('with one replica whose apply, join and unjoin throw, trusting merges converge on the others\' state', () => {
  fc.assert(
    fc.property(
      fc.record({ seed: fc.integer(), peers: fc.integer({ min: 2, max: 7 }), steps: fc.integer({ min: 10, max: 300 }) }),
      plan => { runSimulation({ ...plan, throwing: true }) }
    ),
    propertyParameters('eventfold convergence, throwing hooks', 300)
  )
})

test('the throwing simulation does exercise throws, and rejoins on the thrower\'s own word', () => {
  // Guards the two properties above against testing nothing: seed 1 with 4 peers.
  const firstHand = runSimulation({ seed: 1, peers: 4, steps: 200, firstHand: true, throwing: true })
  assert.ok(firstHand.thrown >= 5, `only ${firstHand.thrown} throws`)
  assert.ok(firstHand.rejoinsOnThrow >= 1, 'the thrower never rejoined on its own word')
  const trusting = runSimulation({ seed: 1, peers: 4, steps: 200, throwing: true })
  assert.ok(trusting.thrown >= 5, `only ${trusting.thrown} throws`)
})

test('regression (logs): a log moves past events of a departed participant that can fold nowhere, so its rejoined events and acknowledgement are taken', () => {
  // Found with LEGION_PROPERTY_RUNS=2000 (seeds 11, 22, 33) in the first-hand throwing property
  // above. p5 was ejected and rejoined; its log's events from before the rejoin folded
  // nowhere p5 was not a participant. p0, whose infimum was below them, refused every run of
  // p5's log as starting past a gap, so it never took p5's acknowledgement of p5's own Join,
  // which p0 had created, and the Join never folded there.
  for (const [seed, peers, steps] of [[2147483623, 6, 298], [2147483621, 6, 295], [-1255649413, 4, 130]] as const) {
    const report = runSimulation({ seed, peers, steps, firstHand: true, throwing: true })
    assert.ok(report.finalInfimumCount > 40, `seed ${seed}: the fold went on`)
  }
})

test('regression (logs): a replica folds an UnJoin only once it holds the departing participant\'s events ordered before it', () => {
  // Found with LEGION_PROPERTY_RUNS=2000 (seed 11) in the first-hand throwing property above.
  // p2, not yet joined, adopted p0's whole fold: p0 had folded up to p2's Join, with p1's
  // events 19:p1 and 20:p1 outstanding, then p0's UnJoin of p1 (p1 was rejoining after its own hooks threw). p2 could not
  // take p1's run (it still held earlier events of that log, which the adoption dropped), and
  // the UnJoin, acknowledged by p0 and on p1's behalf, folded there past those two events
  // without them. They needed p2's acknowledgement to fold anywhere, which p2 could no longer
  // give: p0 and p1 stalled on them, and p2's infimum was a history nobody else had.
  // Seed 88 (plan 773386050, 6 peers) found the same before the fix: p2 folded the UnJoin of
  // the rejoining p1 past 20:p1, and p0 and p1 stalled on it.
  for (const [seed, peers, steps] of [[99926516, 3, 52], [773386050, 6, 77]] as const) {
    const report = runSimulation({ seed, peers, steps, firstHand: true, throwing: true })
    assert.ok(report.finalInfimumCount > 20, `seed ${seed}: the fold went on`)
  }
  // The rule applies only while the departing peer is a participant: p4, whose Join was lost
  // with its sponsor, had events no replica could fold; the founder's UnJoin of it (before
  // the founder re-adds it) must not wait for them on a replica they never reached.
  const repaired = runSimulation({ seed: -1375451717, peers: 7, steps: 151, firstHand: true })
  assert.ok(repaired.finalInfimumCount > 40, 'the repair folded')
})

test('regression (logs): a renegade is kept aside until the infimum passes it, so a late Join of its creator puts it back', () => {
  // Found with LEGION_PROPERTY_RUNS=2000 (seed 55, plan 13) in the first-hand throwing property
  // above. p1 created the Join of p2 (9:p1); p2's first event 10:p2 reached p3, relayed in
  // p2's log, before p1's log brought 9:p1 there. With 9:p0 folded, 10:p2 was at the front,
  // from a creator that was not a participant yet: p3 dropped it as a renegade. 9:p1 then
  // arrived and folded, and every other replica waited for ever for p3's acknowledgement of an
  // event p3 no longer held.
  const report = runSimulation({ seed: 13, peers: 4, steps: 108, firstHand: true, throwing: true })
  assert.ok(report.finalInfimumCount > 30, 'the fold went on')
  // Dropping a renegade only once everyone acknowledged it (the first fix) stalled here (the
  // 10,000-run search, seed 5): p4's Join was lost with its sponsor p3, ejected; p0 waited on
  // p3's stand-in, which p3's late events held elsewhere had made unreachable.
  const lostJoin = runSimulation({ seed: -1971881080, peers: 7, steps: 146, firstHand: true })
  assert.equal(lostJoin.rejoins, 0, 'nobody diverged')
  assert.ok(lostJoin.finalInfimumCount > 40, 'the fold went on')
  // A Join put back puts back its own peer's renegades (seed 123 at 2,000 runs): p2's Join of p4
  // was itself set aside (p2 was rejoining); when p2's new Join arrived and put it back, p4's
  // events stayed aside on every replica but p3, and p3 stalled on positions nobody could send.
  // Since admissions (seed 1279 of the keyspace's link cuts), p2's, p3's and p4's events of the
  // side p0's history dropped the Joins of no longer fold after p0 admits them again (71 events
  // folded before, 34 now); the run still has to settle with nothing outstanding anywhere.
  const cascade = runSimulation({ seed: 1173614540, peers: 7, steps: 178, firstHand: true })
  assert.ok(cascade.finalInfimumCount > 30, 'the fold went on')
})

test('regression (logs): an UnJoin stands in for the leaver only on a replica that holds the leaver\'s events its acknowledgers folded before it', () => {
  // Found with LEGION_PROPERTY_RUNS=2000 (seed 99, plan -1618301540) in the first-hand throwing
  // property above. p0 folded p1's events 41:p1 and 42:p1 while standing in for p2, which was
  // rejoining (p2's UnJoin at 47:p0). Later p0 ejected p1 (49:p0). p2, rejoined under the same
  // name, had not folded that far and never received 41:p1. The UnJoin of p1 reached it in a
  // run of p0's log (p0's acknowledgement came with the body, without what p0 held of p1's
  // log) and p0's stand-in positions left out p1's events p0 had folded: p2 let the UnJoin
  // stand in for p1 and folded 41:p2 without 41:p1, with an output nobody else had.
  const report = runSimulation({ seed: -1618301540, peers: 3, steps: 259, firstHand: true, throwing: true })
  assert.ok(report.finalInfimumCount > 60, 'the fold went on')
})

test('regression (issue 11, item 1): first-hand, a replica blocked on an error takes the infimum of a peer that folded it and a later event that fails', () => {
  // Found by LEGION_SEED=1859982090 in the property above. p0, p1 and p3 hold 15:p0 as an
  // error lacking p4's acknowledgement of the failure, and 15:p1 as an event their folds have
  // not reached, which fails. p4, with everyone else's pending UnJoin standing in, folded both
  // as errors; its infimum is the only way its acknowledgement reaches them first-hand. The
  // digest check predicted 15:p1 as a success, took p4's infimum for a different history,
  // and the fold stopped there for good.
  const report = runSimulation({ seed: 1311075958, peers: 6, steps: 94, firstHand: true })
  assert.ok(report.finalInfimumCount > 40, 'the fold went on past the failures')
})

test('regression: first-hand, an Error folds with the output of the state it folds on (10,000-run search, three seeds)', () => {
  // Found by LEGION_PROPERTY_RUNS=10000 with LEGION_SEED=202, 707 and 808 in the first-hand
  // property. A replica in its trust window (its Join not yet folded) turned an event into
  // an Error on a relayed word that everyone had acknowledged it, before an earlier event of
  // an ejected peer had reached it; it folded that event first, then the Error with the
  // output computed without it: one event, two consistent outputs.
  for (const plan of [{ seed: 1591470272, peers: 5, steps: 269 }, { seed: -405617498, peers: 7, steps: 216 }, { seed: 254755238, peers: 7, steps: 285 }]) {
    runSimulation({ ...plan, firstHand: true })
  }
})

test('regression: an Error\'s output computed again is stored too, so a replica that only received the Error agrees', () => {
  // Found by the 10,000-run search (seeds 1, 3, 7, 8, 1859982090) against a version that
  // computed the output again only when folding: the replica that held the event reported
  // the fresh output, a joiner that had received the Error in a snapshot the stale one.
  for (const plan of [
    { seed: 1833865757, peers: 6, steps: 292 }, { seed: -1329079791, peers: 5, steps: 232 }, { seed: 752382698, peers: 6, steps: 124 },
    { seed: 1624845814, peers: 4, steps: 253 }, { seed: 363571252, peers: 7, steps: 224 }
  ]) {
    runSimulation({ ...plan, firstHand: true })
  }
})

test('the known limit: a replica that folded an ejected sponsor\'s event relayed by its joiner reports outputs the others overrule, then rejoins', () => {
  // Found by the 10,000-run search (seed 8). p3 joins through p2 and at once ejects it
  // (crash-stop), then relays p2's last events to p1 after p0, p4 and p5 folded past them:
  // the second case of "Ejection: assumptions and known limits" in docs/ARCHITECTURE.md. p1
  // folds them, reports outputs on that state, finds its history settled differently
  // elsewhere and rejoins. The replicas that never diverged agree on every output.
  const report = runSimulation({ seed: -1730014324, peers: 6, steps: 182, firstHand: true })
  assert.ok(report.rejoins >= 1)
  assert.ok(report.overruledOutputs > 0)
})

test('regression (ejection): a peer ejected and admitted again under the same name acknowledges nothing before its readmission, so it never forks the fold', () => {
  // Found with the live-ejection mode (docs/RELIABILITY.md, "A membership fork after repeated
  // ejections"). A peer ejected while alive (a broken link) goes on until it sees its UnJoin,
  // then rejoins through a sponsor that disassociates and re-adds it: its new fold starts from
  // the sponsor's and need not hold what its old incarnation created. Its acknowledgements
  // carry only its name, so they counted for events ordered before its UnJoin, and replicas
  // folded those events without the old incarnation's earlier ones that others held.
  // Seed 554343 is the shape of the broken-link failure: the ejector p2 folded past 7:p1, an
  // event of p1's old incarnation, while p0 and p1 held it and waited for p2's acknowledgement
  // for ever. The others forked outright: one event, two consistent outputs (3721943 and
  // 6327294 first-hand and trusting, 21896048 trusting).
  for (const plan of [
    { seed: 554343, peers: 3, steps: 140, firstHand: true },
    { seed: 3721943, peers: 4, steps: 290, firstHand: true },
    { seed: 6327294, peers: 3, steps: 283, firstHand: true },
    { seed: 3721943, peers: 4, steps: 290, firstHand: false },
    { seed: 6327294, peers: 3, steps: 283, firstHand: false },
    { seed: 21896048, peers: 7, steps: 235, firstHand: false }
  ]) {
    const report = runSimulation({ ...plan, liveEjections: true })
    assert.ok(report.finalInfimumCount > 40, `seed ${plan.seed}: the fold went on`)
  }
  // Only the new incarnation's acknowledgements are left out. A first fix that left out every
  // acknowledgement of a participant with an UnJoin pending stalled here (10,000-run search,
  // seed 5): p2, behind the others, could no longer fold on what crashed p4 had acknowledged.
  const crashed = runSimulation({ seed: 1121317475, peers: 7, steps: 80, firstHand: true, throwing: true })
  assert.ok(crashed.finalInfimumCount > 40, 'the fold went on')
})

test('regression (admissions): a whole fold adopted with the head of a log whose events its sender set aside leaves the ones outstanding here where they are', () => {
  // Found by the quorum-ejection property (LEGION_SEED=2065152279, 123rd run) after admissions
  // (ae46ff2). p1's Join 9:p1 admitted p2, which wrote its log 10 (10:p2 - 13:p2); p0's history
  // dropped that Join and admitted p2 again with 9:p0. p2 adopted it, and set its earlier
  // incarnation's events aside there (renegades), so its fold named that log's head at 4 with
  // none of its events outstanding. p3, holding 11:p2 and 12:p2 above the infimum it adopted
  // from p2, moved the log's head to 4 past them: a log's outstanding events were no longer
  // its last ones, and p3's fold could not be encoded (EncodeError at the next send).
  const report = runSimulation({ seed: 1386440732, peers: 7, steps: 30, firstHand: true, quorumEjections: true })
  assert.ok(report.finalInfimumCount > 10, 'the fold went on')
})

test('regression (first-hand): a log moves on past an event a sender\'s infimum passed without it, on this replica\'s history', () => {
  // The one failure of a 10,000-run search (docs/RELIABILITY.md, "Bugs found"): p3, ejected,
  // had written events that reached only the peers it admitted; p0 - p2 folded past them while
  // p3's UnJoin stood in (nobody remaining held any). The others then took p3's log from those
  // peers, so their acknowledgements of the UnJoin named it up to position 8; p2, one event
  // behind, held none of it and waited for it for good: the events between its infimum and
  // theirs had been dropped everywhere, and a run chained from one of them was refused as a
  // gap above p2's infimum. The sender's own infimum, on p2's history, now vouches for the gap.
  const report = runSimulation({ seed: -1197661314, peers: 7, steps: 120, firstHand: true, throwing: true })
  assert.ok(report.finalInfimumCount > 40, 'the fold went on')
})

test('regression (ejection): a readmission is ordered past every event of the old incarnation, so one a third replica holds is never taken for the new incarnation\'s', () => {
  // Found by the first random search of live ejections (docs/RELIABILITY.md, "Known
  // failures"): p1, ejected while cut off, went on writing its old log up to counter 22; its
  // sponsor readmitted it at counter 18; p0, p2 and p3 folded its old events 19:p1 and 20:p1
  // as the new incarnation's, while its new fold, which never held them, folded 19:p2
  // without them: one event, two outputs. The sponsor now observes the asker's counter first.
  const report = runSimulation({ seed: -2147483631, peers: 4, steps: 237, liveEjections: true })
  assert.ok(report.ejectionRejoins >= 1, 'a peer was readmitted')
})

test('regression (ejection): a replica readmitted under its name merges as a joiner until its readmission folds, so it does not wait for its old incarnation\'s events', () => {
  // Found with the live-ejection mode (docs/RELIABILITY.md, "Live ejections stalled"). The
  // rejoined peer's fold starts from its sponsor's, whose infimum may still list it (as its
  // old incarnation), so it took itself for joined and merged first-hand: it never adopted a
  // settled state, and waited for ever for its old incarnation's events before the UnJoin
  // (the UnJoin's stand-in positions) that everyone else had folded past and no one sent it.
  // Each of these stalled so before (a rejoin after an ejection or after a divergence): the
  // readmitted replica stayed behind with the UnJoin of its old incarnation at its head
  // (19496591 is the shortest: p1 at 10:p2, the others at 13:p3).
  for (const i of [915, 1039, 1173, 1501, 2462]) {
    const plan = { seed: i * 7919 + 13, peers: 2 + (i % 6), steps: 10 + (i * 37) % 290, liveEjections: true, firstHand: true }
    // runSimulation throws if any replica is left with outstanding events
    const report = runSimulation(plan)
    assert.ok(report.ejectionRejoins + report.rejoins >= 1, `seed ${plan.seed}: a peer was readmitted`)
  }
})

test('regression (ejection): an UnJoin does not wait for events of the leaver that only a participant departing since held', () => {
  // The one stall of 6,000 live-ejection runs (docs/RELIABILITY.md, "Bugs found"): p0
  // acknowledged the UnJoin (13, p2) of p1 with a position naming the event (3, p1), which only
  // its own fold held, then was ejected and rejoined through p2, whose history never held it.
  // Every replica waited behind that UnJoin for an event nobody remaining could send.
  const report = runSimulation({ seed: 835 * 7919 + 13, peers: 3, steps: 10 + (835 * 37) % 290, liveEjections: true, firstHand: true })
  assert.ok(report.ejectionRejoins + report.rejoins >= 1, 'a peer was readmitted')
})

test('live ejections: peers ejected while alive go on, find out, rejoin under the same name, and everyone converges (a fixed sweep of 120 seeds)', () => {
  // Not a random property (kept as it was when about 1 run in 6,000 of this mode stalled,
  // the regression above): these seeds are fixed; each must converge.
  let ejectionRejoins = 0
  for (let i = 0; i < 120; i++) {
    const report = runSimulation({ seed: i * 7919 + 13, peers: 2 + (i % 6), steps: 10 + (i * 37) % 290, liveEjections: true, firstHand: i % 3 !== 0 })
    ejectionRejoins += report.ejectionRejoins
  }
  assert.ok(ejectionRejoins >= 60, `only ${ejectionRejoins} ejected peers found out and rejoined`)
})
