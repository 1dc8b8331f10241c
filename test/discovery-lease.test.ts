/**
 * The holder's lease (src/discovery/lease.ts), a pure function of the failure detector's
 * reading: the quorum of answers, the broken-link rule, a stuck report, and the time the lease
 * lapses at.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { defaultLeaseWindows, leaseOf, type LeaseInputs } from '../src/discovery/lease.js'

const windows = { quorumMs: 2000, linkMs: 5000 }

/** `m` answered a heartbeat sent at `answered[m]`; `now` is 10 000. */
function inputs (self: string, members: string[], answered: Record<string, number | undefined>, extra: Partial<LeaseInputs> = {}): LeaseInputs {
  return {
    self,
    settled: members,
    projected: members,
    liveness: {
      now: 10_000,
      heartbeatIntervalMs: 1000,
      suspectAfterMs: 3000,
      reportedStuck: false,
      peers: members.filter(m => m !== self).map(peer => ({ peer, heardAt: 10_000, answeredAt: answered[peer] }))
    },
    firstSeen: new Map(),
    windows,
    ...extra
  }
}

test('the lease holds while a majority (this peer included) answered within the quorum window, until the oldest answer it needs expires', () => {
  const lease = leaseOf(inputs('c', ['a', 'b', 'c', 'd', 'e'], { a: 9500, b: 9000, d: 8500, e: 1000 }))
  assert.deepEqual(lease, { kind: 'held', until: 9000 + 2000 }, 'c needs two others: a (9500) and b (9000)')
})

test('the lease lapses once fewer than a majority answered within the window', () => {
  const lease = leaseOf(inputs('c', ['a', 'b', 'c', 'd', 'e'], { a: 9500, b: 7900, d: undefined, e: 1000 }))
  assert.equal(lease.kind, 'lapsed')
})

test('heard-from is not enough: a peer that hears everyone but whose heartbeats nobody answers has no lease', () => {
  const lease = leaseOf(inputs('c', ['a', 'b', 'c'], {}))
  assert.equal(lease.kind, 'lapsed')
})

test('half is enough in an even cluster (a strict majority cannot form against it), and a lone pair member always holds', () => {
  assert.equal(leaseOf(inputs('b', ['a', 'b', 'c', 'd'], { c: 9500 })).kind, 'held')
  assert.equal(leaseOf(inputs('b', ['a', 'b'], {}, { firstSeen: new Map([['a', 0]]) })).kind, 'held', 'no third participant could eject it for a broken link either')
  assert.equal(leaseOf(inputs('c', ['a', 'b', 'c'], { b: 9900 }, { firstSeen: new Map([['a', 0]]) })).kind, 'lapsed', 'with three, the link to a counts')
  assert.equal(leaseOf(inputs('solo', ['solo'], {})).kind, 'held')
})

test('answers count only from participants on both ends of outstanding membership changes, against their union', () => {
  // a is leaving (settled, not projected); f is joining (projected, not settled): union of 6, intersection of 4.
  const base = inputs('c', [], {})
  const lease = leaseOf({
    ...base,
    settled: ['a', 'b', 'c', 'd', 'e'],
    projected: ['b', 'c', 'd', 'e', 'f'],
    liveness: { ...base.liveness, peers: ['a', 'b', 'd', 'e', 'f'].map(peer => ({ peer, heardAt: 10_000, answeredAt: peer === 'd' || peer === 'a' || peer === 'f' ? 9900 : undefined })) }
  })
  assert.equal(lease.kind, 'lapsed', 'a and f do not count; c with d is 2 of 6')
})

test('a participant with a smaller id that has not answered within the link window ends the lease (the broken-link rule ejects the larger end)', () => {
  const held = leaseOf(inputs('c', ['a', 'b', 'c', 'd', 'e'], { a: 5500, b: 9500, d: 9500, e: 9500 }))
  assert.deepEqual(held, { kind: 'held', until: 5500 + 5000 })
  assert.equal(leaseOf(inputs('c', ['a', 'b', 'c', 'd', 'e'], { a: 5000, b: 9500, d: 9500, e: 9500 })).kind, 'lapsed')
  assert.equal(leaseOf(inputs('a', ['a', 'b', 'c', 'd', 'e'], { b: 9500, c: 9500, d: 100, e: 100 })).kind, 'held', 'larger ids do not matter to the smallest')
})

test('a newcomer that has answered nothing yet counts for the link rule from when this peer first saw it', () => {
  const seen = new Map([['a', 6000]])
  assert.deepEqual(leaseOf(inputs('c', ['a', 'b', 'c'], { b: 9500 }, { firstSeen: seen })), { kind: 'held', until: Math.min(9500 + 2000, 6000 + 5000) })
})

test('a peer reported stuck has no lease, nor one that is not a participant', () => {
  const base = inputs('c', ['a', 'b', 'c'], { a: 9900, b: 9900 })
  assert.equal(leaseOf({ ...base, liveness: { ...base.liveness, reportedStuck: true } }).kind, 'lapsed')
  assert.equal(leaseOf({ ...base, projected: ['a', 'b'] }).kind, 'lapsed')
})

test('default windows leave a third of suspectAfterMs (at least 250 ms) before the earliest ejection', () => {
  assert.deepEqual(defaultLeaseWindows(3000), { quorumMs: 2000, linkMs: 5000 })
  assert.deepEqual(defaultLeaseWindows(600), { quorumMs: 350, linkMs: 950 })
})
