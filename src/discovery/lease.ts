/**
 * The holder's lease: whether this peer may act on a grant now, and until when, from what its
 * failure detector knows of its links (`MembershipView.liveness`). Pure: time and the
 * readings are parameters. The timing argument is in docs/ARCHITECTURE.md ("Discovery and
 * election: no two holders"); in short, the others can eject this peer only once a strict
 * majority of the voters has heard nothing from it for `suspectAfterMs` (rule 3 of the
 * failure detector), or once a voter with a smaller id has reported the link between them
 * broken for `suspectAfterMs` (rule 5). A participant that answered a heartbeat this peer sent
 * at time `s` heard it at or after `s`, so it cannot suspect this peer before
 * `s + suspectAfterMs`. The lease therefore holds while
 *
 * - **quorum**: the participants that answered a heartbeat sent within the last `quorumMs`,
 *   with this peer, are at least half of every voter set another peer may use (the settled
 *   and projected participants, and anything between: counted in their intersection, against
 *   their union), so no strict majority can suspect it yet; and
 * - **links**: every participant with a smaller id answered a heartbeat sent within the last
 *   `linkMs` (a broken link needs `suspectAfterMs` of silence to be reported and
 *   `suspectAfterMs` more to eject the larger end, by a third participant that hears both
 *   ends: with two participants there is none); and
 * - nobody reports this peer stuck (holding the fold back), which the others may eject it for
 *   while it still reaches them.
 *
 * With `quorumMs` < `suspectAfterMs` and `linkMs` < 2 × `suspectAfterMs`, the lease ends
 * strictly before anyone may record this peer's UnJoin, by a margin that absorbs timer
 * lateness, clock-rate differences and short stalls.
 *
 * @module
 */
import type { Participant } from '../eventfold/types.js'
import type { Liveness } from '../peer/services.js'

/** The windows of a lease, in milliseconds. */
export interface LeaseWindows {
  /** A majority must have answered heartbeats sent within this window. */
  readonly quorumMs: number
  /** Every participant with a smaller id must have answered one sent within this window. */
  readonly linkMs: number
}

/** What a lease is computed from. */
export interface LeaseInputs {
  /** This peer. */
  readonly self: Participant
  /** The cluster's settled participants. */
  readonly settled: readonly Participant[]
  /** The cluster's projected participants. */
  readonly projected: readonly Participant[]
  /** The failure detector's reading. */
  readonly liveness: Liveness
  /**
   * When this peer first saw each participant (for one that has answered nothing yet, the
   * link rule counts from then, as the failure detector starts watching a newcomer as heard).
   */
  readonly firstSeen: ReadonlyMap<Participant, number>
  /** The windows. */
  readonly windows: LeaseWindows
}

/** A lease: held until a time, or not held, and why. */
export type Lease =
  | {
    /** The lease holds. */
    readonly kind: 'held'
    /** It lapses at this time unless new answers extend it. */
    readonly until: number
  }
  | {
    /** The lease does not hold. */
    readonly kind: 'lapsed'
    /** Why, for logs and stats. */
    readonly reason: string
  }

/** Default windows from the failure detection settings: a third of `suspectAfterMs` (at least 250 ms) as margin. */
export function defaultLeaseWindows (suspectAfterMs: number): LeaseWindows {
  const margin = Math.max(250, Math.floor(suspectAfterMs / 3))
  return { quorumMs: suspectAfterMs - margin, linkMs: 2 * suspectAfterMs - margin }
}

/** The lease now; see the module comment. */
export function leaseOf (inputs: LeaseInputs): Lease {
  const { self, settled, projected, liveness, windows } = inputs
  const now = liveness.now
  if (liveness.reportedStuck) return { kind: 'lapsed', reason: 'a participant reports this peer stuck' }
  const inSettled = new Set(settled)
  const inProjected = new Set(projected)
  if (!inSettled.has(self) || !inProjected.has(self)) return { kind: 'lapsed', reason: 'this peer is not a participant on both ends of the outstanding membership changes' }
  const union = new Set([...settled, ...projected])
  const answered = new Map(liveness.peers.map(p => [p.peer, p.answeredAt]))
  // Quorum: answers from participants in every voter set, against the largest voter set.
  const needed = Math.ceil(union.size / 2) - 1 // besides this peer itself
  const times = settled.filter(p => p !== self && inProjected.has(p)).map(p => answered.get(p)).filter((t): t is number => t !== undefined).sort((a, b) => b - a)
  let until = Infinity
  if (needed > 0) {
    const nth = times[needed - 1]
    if (nth === undefined || nth + windows.quorumMs <= now) return { kind: 'lapsed', reason: `fewer than ${needed} other participants answered within ${windows.quorumMs} ms` }
    until = nth + windows.quorumMs
  }
  // Links: every participant with a smaller id (the broken-link rule ejects the larger end).
  // It takes a third voter that hears both ends, so two participants need no such check.
  for (const p of union.size >= 3 ? union : []) {
    if (p >= self) continue
    const t = answered.get(p) ?? inputs.firstSeen.get(p) ?? now
    if (t + windows.linkMs <= now) return { kind: 'lapsed', reason: `${p} has not answered within ${windows.linkMs} ms` }
    until = Math.min(until, t + windows.linkMs)
  }
  return { kind: 'held', until }
}
