/**
 * Specification of the failure detector's rules (src/peer/membership/failure-detector.ts): suspicion
 * after silence, reports, the strict-majority quorum, the designated ejector, a peer's own pauses
 * (and the progress tracker's, src/peer/membership/progress.ts). Pure: time is a number passed in.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FailureDetector } from '../src/peer/membership/failure-detector.js'
import { ProgressTracker } from '../src/peer/membership/progress.js'

const settings = { suspectAfterMs: 3000, backupDelayMs: 2000, reportFreshMs: 1000 }
const five = ['a', 'b', 'c', 'd', 'e']

/** Detector of `self`, watching the other four of five from time 0. */
function detector (self: string): FailureDetector {
  const fd = new FailureDetector(self, settings)
  fd.watch(five, 0)
  return fd
}

test('a peer is suspected only once it has been silent for longer than suspectAfterMs', () => {
  const fd = detector('a')
  assert.deepEqual(fd.suspects(3000), [])
  assert.deepEqual(fd.suspects(3001), ['b', 'c', 'd', 'e'])
  fd.heard('c', 2500)
  assert.deepEqual(fd.suspects(5000), ['b', 'd', 'e'])
  assert.equal(fd.silenceOf('c', 5000), 2500)
  assert.equal(fd.isSuspected('a', 10_000), false, 'a peer never suspects itself')
})

test('a newly watched peer starts as just heard, and an unwatched one is forgotten', () => {
  const fd = detector('a')
  fd.watch(['a', 'b', 'c', 'd', 'e', 'f'], 5000)
  assert.deepEqual(fd.suspects(6000), ['b', 'c', 'd', 'e'])
  fd.watch(['a', 'f'], 6000)
  assert.deepEqual(fd.suspects(8000), [], 'f was first heard at 5000')
  fd.heard('b', 9000) // not watched: ignored
  assert.equal(fd.silenceOf('b', 9000), undefined)
})

test('a strict majority of the voters, counting this peer, must suspect a participant before it is ejected', () => {
  const fd = detector('c')
  const t = 4000
  fd.heard('d', t); fd.heard('e', t)
  // c alone suspects a and b: 1 of 5.
  assert.deepEqual(fd.toEject(five, five, t), [])
  fd.report('d', ['a', 'b'], t)
  // c and d: 2 of 5, still not a majority.
  assert.deepEqual(fd.toEject(five, five, t), [])
  fd.report('e', ['a'], t)
  // a: c, d, e = 3 of 5; b: c, d = 2 of 5.
  assert.deepEqual(fd.suspecting('a', five, t), ['c', 'd', 'e'])
  assert.deepEqual(fd.toEject(five, five, t), ['a'])
})

test('a peer keeps more than half of the voters it is not ejecting already, however each is suspected', () => {
  // a hears b and c; each reports the other stuck, and a finds both stuck: each is suspected
  // by 2 of 3 voters, but ejecting both would leave a alone (link cuts with crashes, seed 6
  // with keys 2, where a, cut off from both, then folded its events alone).
  const three = ['a', 'b', 'c']
  const fd = new FailureDetector('a', settings)
  fd.watch(three, 0)
  fd.heard('b', 1000); fd.heard('c', 1000)
  fd.setStuck(new Set(['b', 'c']))
  fd.report('b', ['c'], 1000, [])
  fd.report('c', ['b'], 1000, [])
  assert.deepEqual(fd.suspecting('b', three, 1000), ['a', 'c'])
  assert.deepEqual(fd.suspecting('c', three, 1000), ['a', 'b'])
  assert.deepEqual(fd.toEject(three, three, 1000), ['b'], 'one of them, not both')
  // With b's UnJoin pending here (b no longer a candidate), c waits for it to fold.
  assert.deepEqual(fd.toEject(three, ['a', 'c'], 4000), [])
  // Once it folded (b no longer a voter), c is suspected by a alone of a and c: not ejected either.
  assert.deepEqual(fd.toEject(['a', 'c'], ['a', 'c'], 4000), [])
  // Five voters: with d's UnJoin pending, e leaves 3 of the 4 still in; with c's and d's, 2 of
  // 3 (a divergent replica must stay ejectable while an UnJoin waits for it); with b's, c's and
  // d's, a would be alone.
  const fd5 = detector('a')
  hearAll(fd5, 1000)
  for (const p of ['b', 'c']) fd5.report(p, ['e'], 1000)
  fd5.setStuck(new Set(['e']))
  assert.deepEqual(fd5.suspecting('e', five, 1000), ['a', 'b', 'c'])
  assert.deepEqual(fd5.toEject(five, ['a', 'b', 'c', 'e'], 1000), ['e'])
  assert.deepEqual(fd5.toEject(five, ['a', 'b', 'e'], 1000), ['e'])
  assert.deepEqual(fd5.toEject(five, ['a', 'e'], 1000), [])
  // A candidate that is not a voter yet (its Join is pending) does not count among those kept.
  assert.deepEqual(fd5.toEject(five, ['a', 'e', 'f'], 1000), [])
})

test('the minority side of a partition never reaches a quorum', () => {
  const fd = detector('a')
  fd.heard('b', 10_000)
  fd.report('b', ['c', 'd', 'e'], 10_000)
  assert.deepEqual(fd.suspects(10_000), ['c', 'd', 'e'])
  assert.deepEqual(fd.toEject(five, five, 10_000), [], 'a and b are 2 of 5')
  assert.deepEqual(fd.toEject(five, five, 60_000), [])
})

test('with two participants the survivor can never eject the other', () => {
  const fd = new FailureDetector('a', settings)
  fd.watch(['a', 'b'], 0)
  assert.deepEqual(fd.suspects(60_000), ['b'])
  assert.deepEqual(fd.toEject(['a', 'b'], ['a', 'b'], 60_000), [], '1 of 2 is not a strict majority')
})

test('the report of a peer that is itself suspected does not count', () => {
  const fd = detector('c')
  fd.report('d', ['a'], 0)
  fd.report('e', ['a'], 3500)
  // d's report is 4 s old: d is suspected, its opinion is stale.
  assert.deepEqual(fd.suspecting('a', five, 4000), ['c', 'e'])
  assert.deepEqual(fd.toEject(five, five, 4000), [])
})

test('a later report replaces the earlier one', () => {
  const fd = detector('c')
  fd.report('d', ['a'], 3500)
  fd.report('e', ['a'], 3500)
  assert.deepEqual(fd.toEject(five, five, 4000), ['a'])
  fd.report('e', [], 4100)
  assert.deepEqual(fd.suspecting('a', five, 4200), ['c', 'd'])
})

test('the suspecting voter with the smallest id ejects at once; the others only after backupDelayMs', () => {
  const fd = detector('d')
  for (const p of ['c', 'e']) fd.report(p, ['a'], 3500)
  assert.deepEqual(fd.toEject(five, five, 4000), [], 'c is the designated ejector')
  assert.deepEqual(fd.toEject(five, five, 5999), [])
  for (const p of ['c', 'e']) fd.report(p, ['a'], 5500)
  assert.deepEqual(fd.toEject(five, five, 6000), ['a'], 'c has not ejected a in time: d does')
})

test('a participant that is not a voter (its Join has not folded) ejects nobody', () => {
  const fd = new FailureDetector('f', settings)
  fd.watch([...five, 'f'], 0)
  for (const p of ['b', 'c', 'd']) fd.report(p, ['a'], 3500)
  assert.deepEqual(fd.toEject(five, [...five, 'f'], 4000), [])
})

test('hearing from a suspect clears the suspicion and the pending ejection', () => {
  const fd = detector('d')
  for (const p of ['c', 'e']) fd.report(p, ['a'], 3500)
  assert.deepEqual(fd.toEject(five, five, 4000), [])
  fd.heard('a', 4500)
  assert.deepEqual(fd.toEject(five, five, 7000), [])
})

/** Everyone in `five` heard by `fd` at `now`. */
function hearAll (fd: FailureDetector, now: number): void {
  for (const p of five) fd.heard(p, now)
}

test('a stuck participant counts as suspected, but its own reports still count (it hears fine)', () => {
  const fd = detector('a')
  hearAll(fd, 1000)
  fd.setStuck(new Set(['b']))
  assert.equal(fd.isSuspected('b', 1500), true)
  assert.equal(fd.isSilent('b', 1500), false)
  fd.report('b', ['e'], 1500)
  fd.report('c', ['e'], 1500)
  for (const p of ['b', 'c']) fd.heard(p, 4500)
  // e silent at a since 1000, reported by b (stuck, but not silent) and c: 3 of 5.
  assert.deepEqual(fd.suspecting('e', five, 4500), ['a', 'b', 'c'])
})

test('a link broken between two live voters that a majority hears ejects the larger id, once it lasted suspectAfterMs', () => {
  const fd = detector('a')
  hearAll(fd, 0)
  // c and e cannot reach each other; both reach everyone else.
  fd.report('c', ['e'], 100)
  fd.report('e', ['c'], 100)
  for (const t of [1000, 2000, 3000]) { hearAll(fd, t); assert.deepEqual(fd.toEject(five, five, t), [], `nothing yet at ${t}`) }
  hearAll(fd, 4000)
  fd.report('c', ['e'], 4000)
  assert.deepEqual(fd.toEject(five, five, 4000), ['e'], 'a is the smallest voter that is neither end: it ejects e at once')
  const d = detector('d')
  for (const t of [0, 4000, 5000]) {
    hearAll(d, t)
    d.report('c', ['e'], t)
    assert.deepEqual(d.toEject(five, five, t), t < 5000 ? [] : ['e'], t < 5000 ? `d waits for a at ${t}` : 'd backs a up after suspectAfterMs + backupDelayMs')
  }
})

test('a peer that hears neither of two others is ejected by both, not each of them by the other: an end of one broken link counts that link too', () => {
  // a hears neither b nor c (one-way cuts), and says so; b and c hear everyone. Each of b and c
  // sees the other's link to a broken. Counting only the link it is not an end of, each found
  // a link of one broken end each, ejected the larger end, and b and c ejected each other
  // (link cuts with crashes, seed 31 with keys 3: two pairs, each folding alone).
  const three = ['a', 'b', 'c']
  for (const self of ['b', 'c']) {
    const fd = new FailureDetector(self, settings)
    fd.watch(three, 0)
    for (const t of [0, 1000, 2000, 3000]) {
      for (const p of three) fd.heard(p, t)
      fd.report('a', ['b', 'c'], t)
      assert.deepEqual(fd.toEject(three, three, t), t < 3000 ? [] : ['a'], `${self} at ${t}`)
    }
    assert.match(fd.grounds('a', three, 3000), /^an end of 2 broken links: a does not hear b or c/)
  }
})

test('a voter that stops hearing a link\'s reporter does not act on its last report, frozen: only a report within reportFreshMs counts', () => {
  // c reported e silent from 0 (a moment of its own, say), and a, cut from c and e at 1500,
  // keeps c's last report; c and e stay "heard" at a until 4500. The voters still hearing c
  // may have learnt since that it hears e again.
  const fd = detector('a')
  for (const t of [0, 1000, 1500]) { hearAll(fd, t); fd.report('c', ['e'], t); assert.deepEqual(fd.toEject(five, five, t), []) }
  for (const t of [2000, 3000, 3500, 4000, 4400]) {
    for (const p of ['b', 'd']) fd.heard(p, t)
    assert.deepEqual(fd.toEject(five, five, t), [], `no ejection at ${t}: c's report is ${t - 1500} ms old`)
  }
  assert.deepEqual(fd.brokenLinks(five, 4400).map(l => [l.ends, l.since]), [[['c', 'e'], 0]], 'the link is still seen (stats()), only not acted on')
  // The same report, arriving fresh, is acted on.
  fd.report('c', ['e'], 4400)
  assert.deepEqual(fd.toEject(five, five, 4400), ['e'])
})

test('a peer that hears neither of two others is ejected rather than both of them, whatever the ids', () => {
  // a cannot reach b or c, and they cannot reach a; everyone else hears everyone. By ids alone
  // b and c would go (the larger end of each link), leaving a, whose network is at fault, in.
  const reportAll = (fd: FailureDetector, t: number): void => {
    hearAll(fd, t)
    fd.report('a', ['b', 'c'], t)
    fd.report('b', ['a'], t)
    fd.report('c', ['a'], t)
  }
  const d = detector('d')
  for (const t of [0, 1000, 2000]) { reportAll(d, t); assert.deepEqual(d.toEject(five, five, t), [], `nothing yet at ${t}`) }
  reportAll(d, 3000)
  assert.deepEqual(d.brokenLinks(five, 3000).map(l => l.ends), [['a', 'b'], ['a', 'c']])
  // c is a smaller voter than d and neither end of a–b, but it does not hear a, so it cannot
  // see that link: d does not wait for it.
  assert.deepEqual(d.toEject(five, five, 3000), ['a'], 'd, the smallest voter that sees both links, ejects a at once')
  assert.deepEqual(d.seenBrokenLinks(), [{ ends: ['a', 'b'], since: 0 }, { ends: ['a', 'c'], since: 0 }], 'the links as the last evaluation found them, for stats()')
  assert.equal(d.grounds('a', five, 3000), 'an end of 2 broken links: a does not hear b or c (the oldest broken for 3000 ms; latest report 0 ms ago, by a, b, c)')
  const e = detector('e')
  for (const t of [0, 3000, 4000, 5000]) {
    reportAll(e, t)
    assert.deepEqual(e.toEject(five, five, t), t < 5000 ? [] : ['a'], t < 5000 ? `e waits for d at ${t}` : 'e backs d up after suspectAfterMs + backupDelayMs')
  }
})

test('of a chain of broken links b–a–c–d, the inner ends are ejected, and the grounds say why', () => {
  const e = detector('e')
  for (const t of [0, 3000, 5000]) {
    hearAll(e, t)
    e.report('a', ['b', 'c'], t)
    e.report('c', ['a', 'd'], t)
    // d is the designated ejector of b–a (it hears both), e backs it up.
    assert.deepEqual(e.toEject(five, five, t).sort(), t < 5000 ? [] : ['a', 'c'], `at ${t}`)
  }
  assert.equal(e.grounds('a', five, 5000), 'an end of 2 broken links: a does not hear b or c (the oldest broken for 5000 ms; latest report 0 ms ago, by a, c)')
  assert.equal(e.grounds('c', five, 5000), 'an end of 2 broken links: c does not hear a or d (the oldest broken for 5000 ms; latest report 0 ms ago, by a, c)')
  assert.equal(e.grounds('d', five, 5000), 'no longer ejectable', 'c–d ejects c, the end of more links')
})

test('two broken links without a common end eject the larger end of each', () => {
  const d = detector('d')
  for (const t of [0, 3000, 5000]) {
    hearAll(d, t)
    d.report('a', ['b'], t)
    d.report('c', ['e'], t)
    // c is the designated ejector of a–b, a that of c–e: d backs both up.
    assert.deepEqual(d.toEject(five, five, t).sort(), t < 5000 ? [] : ['b', 'e'], `at ${t}`)
  }
})

test('a minority side of a partition sees no broken link: it does not hear a majority', () => {
  const fd = detector('a')
  hearAll(fd, 0)
  // {a, b} | {c, d, e}: a hears only b, which reports c, d, e silent.
  for (const t of [1000, 2000, 5000, 9000]) { fd.heard('b', t); fd.report('b', ['c', 'd', 'e'], t) }
  assert.deepEqual(fd.toEject(five, five, 9000), [], 'two of five never eject anyone')
  assert.deepEqual(fd.brokenLinks(five, 9000), [])
})

test('an end of a broken link never ejects the other on its own', () => {
  const fd = detector('c')
  for (const t of [0, 2000, 4000, 8000]) { for (const p of ['a', 'b', 'd']) fd.heard(p, t); fd.heard('e', t); fd.report('e', ['c'], t) }
  assert.deepEqual(fd.toEject(five, five, 8000), [])
})

test('a participant one voter finds stuck (not silent) is no evidence of a broken link', () => {
  const fd = detector('a')
  for (const t of [0, 2000, 4000, 8000]) {
    hearAll(fd, t)
    fd.report('c', ['b'], t, []) // c counts b as a suspect (stuck), but hears it
  }
  assert.deepEqual(fd.brokenLinks(five, 8000), [])
  assert.deepEqual(fd.toEject(five, five, 8000), [], 'nobody is ejected: b is stuck for c alone, and c is not a broken link\'s end')
})

test('time this peer could not listen (its own pause) is nobody\'s silence; a dead peer is still suspected after suspectAfterMs of listening', () => {
  const fd = detector('a')
  hearAll(fd, 1000)
  fd.report('c', ['b'], 1000)
  // a's event loop stalls from 1500 to 6000: nothing read, nothing ticked.
  fd.discount(4500, 6000)
  assert.deepEqual(fd.suspects(6000), [], 'the stall is not silence')
  assert.equal(fd.silenceOf('b', 6000), 500, 'heard at 1000, 500 ms of listening before the stall')
  // b is really dead: after the stall, silence counts again from where it stood.
  for (const p of ['c', 'd', 'e']) fd.heard(p, 8400)
  assert.deepEqual(fd.suspects(8500), [], '500 + 2500 ms of listening: not yet')
  assert.deepEqual(fd.suspects(8501), ['b'])
  // A discount never moves a time past now: what was heard just before is just heard.
  fd.heard('c', 9000)
  fd.discount(10_000, 9500)
  assert.equal(fd.silenceOf('c', 9500), 0)
  fd.discount(-5, 9600)
  assert.equal(fd.silenceOf('c', 9600), 100, 'a negative pause changes nothing')
})

test('a pause also delays a pending ejection and a broken link\'s clock, by the time it lasted', () => {
  const fd = detector('d')
  for (const p of ['c', 'e']) fd.report(p, ['a'], 3500)
  assert.deepEqual(fd.toEject(five, five, 4000), [], 'c is the designated ejector; d backs it up after 2000 ms')
  fd.discount(1000, 5000)
  for (const p of ['c', 'e']) fd.report(p, ['a'], 5500)
  assert.deepEqual(fd.toEject(five, five, 6500), [], 'ejectable since 4000, moved to 5000: 1500 ms of listening')
  assert.deepEqual(fd.toEject(five, five, 7000), ['a'])
})

test('a pause is not counted as a participant holding the fold back either', () => {
  const progress = new ProgressTracker()
  const observe = (now: number): void => {
    progress.beginRound()
    progress.observe('', new Map([['b', { counter: 7, participant: 'a' }]]), now)
    progress.endRound()
  }
  observe(1000)
  progress.discount(3000, 5000)
  observe(5000)
  assert.deepEqual([...progress.stuck(5000, 2000)], [], 'behind since 1000, moved to 4000 by the pause')
  assert.equal(progress.heldBack(5000).get('b')?.sinceProgressMs, 1000)
  assert.deepEqual([...progress.stuck(6000, 2000)], ['b'])
})

test('the grounds of an ejection name each suspecting voter and what it found (silent or stuck), or the broken link', () => {
  const fd = detector('c')
  fd.heard('d', 4000); fd.heard('e', 4000)
  fd.report('d', ['a'], 4000, ['a']) // silent for d
  fd.report('e', ['a'], 4000, []) // stuck for e
  assert.deepEqual(fd.toEject(five, five, 4000), ['a'])
  assert.equal(fd.grounds('a', five, 4000), 'suspected by 3 of 5 voters: c (silent 4000 ms), d (silent), e (stuck)')
  const link = detector('a')
  for (const t of [0, 4000]) { hearAll(link, t); link.report('c', ['e'], t); assert.deepEqual(link.toEject(five, five, t), t === 0 ? [] : ['e']) }
  assert.equal(link.grounds('e', five, 4000), 'the larger end of a link broken for 4000 ms: c and e do not hear each other (latest report 0 ms ago, by c)')
  assert.equal(link.grounds('b', five, 4000), 'no longer ejectable')
})
