/**
 * Stuck participants: alive (they answer heartbeats) but holding the fold back. For each group
 * with outstanding events, the fold says which participants an outstanding event waits for,
 * and the newest event each acknowledged before the first one it holds back
 * (`EventFold.divergent`); a participant whose mark in some group has not moved for
 * `stuckAfterMs` while it is behind there is *stuck*. Typical causes: it cannot decode what it
 * is sent (an incompatible version), it is blocked on an event that failed only there, or a
 * one-way link loses its acknowledgements. A pure state machine: time is a parameter.
 *
 * @module
 */
import { eventIdKey, type EventId, type Participant } from '../../eventfold/types.js'

/** Since when a participant has held a group back. */
export interface HeldBack {
  /** The group (the longest-held one, if several). */
  readonly group: string
  /** The newest event of that group it is known to have acknowledged. */
  readonly latestAcknowledged: EventId
  /** Milliseconds since its acknowledgements in that group last moved. */
  readonly sinceProgressMs: number
}

/** Tracks progress of acknowledgements per group and participant; see the module comment. */
export class ProgressTracker {
  private entries = new Map<string, { group: string, peer: Participant, key: string, latest: EventId, since: number }>()
  private next = new Map<string, { group: string, peer: Participant, key: string, latest: EventId, since: number }>()

  /** Starts a round of observations; entries not observed again by {@link endRound} are forgotten. */
  beginRound (): void {
    this.next = new Map()
  }

  /** Observes that in `group`, `behind` (participant to newest event acknowledged) are behind. */
  observe (group: string, behind: ReadonlyMap<Participant, EventId>, now: number): void {
    for (const [peer, latest] of behind) {
      const k = `${group}\u0000${peer}`
      const key = eventIdKey(latest)
      const old = this.entries.get(k)
      this.next.set(k, { group, peer, key, latest, since: old !== undefined && old.key === key ? old.since : now })
    }
  }

  /** Ends the round: only what was observed in it is kept. */
  endRound (): void {
    this.entries = this.next
  }

  /** Each participant behind somewhere, with its longest hold (whether or not it is stuck yet). */
  heldBack (now: number): Map<Participant, HeldBack> {
    const out = new Map<Participant, HeldBack>()
    for (const e of this.entries.values()) {
      const since = now - e.since
      const old = out.get(e.peer)
      if (old === undefined || since > old.sinceProgressMs) out.set(e.peer, { group: e.group, latestAcknowledged: e.latest, sinceProgressMs: since })
    }
    return out
  }

  /** The participants that have held some group back for at least `afterMs`. */
  stuck (now: number, afterMs: number): Set<Participant> {
    const out = new Set<Participant>()
    for (const [peer, h] of this.heldBack(now)) if (h.sinceProgressMs >= afterMs) out.add(peer)
    return out
  }

  /**
   * This peer could not listen for the `ms` milliseconds before `now` (see
   * `FailureDetector.discount`): acknowledgements sent meanwhile may wait unread, so that time
   * does not count as anyone holding the fold back.
   */
  discount (ms: number, now: number): void {
    if (!(ms > 0)) return
    for (const e of this.entries.values()) e.since = Math.min(now, e.since + ms)
  }

  /** Forgets everything (a new incarnation). */
  reset (): void {
    this.entries.clear()
    this.next.clear()
  }
}
