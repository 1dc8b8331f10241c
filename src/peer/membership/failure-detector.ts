/**
 * The failure detector of one peer: who it has not heard from for too long (its suspicions),
 * what the other participants report suspecting, and which participants a strict majority
 * suspects and this peer should therefore eject. A pure state machine: it does no I/O and
 * reads no clock (every method takes `now`); the runtime feeds it what arrives and asks it
 * what to do on each heartbeat tick.
 *
 * Rules (docs/ARCHITECTURE.md, "Failure detection and automatic ejection"):
 * 1. A watched peer is *suspected* once nothing has been heard from it for more than
 *    `suspectAfterMs` (it is *silent*), or once the peer's progress tracker says it has held
 *    the fold back for too long (it is *stuck*: alive, but not acknowledging; see
 *    `progress.ts`). Anything counts as hearing from it: a heartbeat, a diff, a sync, an
 *    answer to one of our requests, a Join of it that some sponsor just created.
 * 2. A peer's report (the suspects listed in its last heartbeat) counts only while that peer
 *    is not silent itself, so a silent peer's old opinion does not count (a stuck peer still
 *    hears, so its opinion counts).
 * 3. A participant X is *ejectable* when this peer suspects it and the voters suspecting it
 *    (this peer, plus every unsuspected voter whose report names X) are a strict majority of
 *    the voters (the infimum participants, X included). A peer that is not a voter itself
 *    never ejects.
 * 4. Of the voters suspecting X, the one with the smallest id ejects at once; the others only
 *    if X is still ejectable `backupDelayMs` later (the first one may have failed). Extra
 *    ejections are harmless: a second UnJoin of the same peer folds as a no-op.
 * 5. A *broken link*: voters V and X that this peer hears (neither is silent here), where V's
 *    report names X silent (or X's names V), while a strict majority of the voters are heard
 *    here. Both are alive and reach the rest, but not each other, so neither can acknowledge
 *    the other's events first-hand and the fold stalls; no majority ever suspects either. A
 *    link broken for `suspectAfterMs` makes every voter that sees it (and is neither end)
 *    eject one end: the end of more of the broken links this voter sees (those it is an end
 *    of count too, though it never acts on them: otherwise two peers that each hear a third
 *    that hears neither of them each saw one link, and ejected each other), and between ends
 *    of as many, the one with the larger id. A peer that reaches neither of two others is
 *    ejected rather than both of them, which would leave the peer with the bad network in and
 *    two healthy peers out for as long as it lasts (their rejoins stall on the same links). The
 *    smallest-id voter that sees the link (neither end, and not reporting either end silent)
 *    ejects at once, the others after `backupDelayMs`. A real partition never looks like this:
 *    a voter on the minority side does not hear a majority. A voter acts on a link only while
 *    a report naming it arrived within `reportFreshMs`: a reporter counts as heard for
 *    `suspectAfterMs` after its last message, so without this a voter just cut from the
 *    reporter would act on its last report, frozen, for seconds after every voter still
 *    hearing the reporter learnt the link had healed.
 * 6. The voters this peer keeps are always more than half of those it has not begun to eject
 *    (whose UnJoin is not pending here): each ejection is judged alone, and reports count for
 *    up to `suspectAfterMs`, so without this one peer could eject every other one, each on the
 *    word of another that is being ejected too: two that report each other stuck, with this
 *    peer finding both stuck, are each suspected by 2 of 3 voters. Cut off from both right
 *    after their last reports, it ejected both and then folded its events alone, which the
 *    others never held. So it never ends up alone among participants, and never ejects half
 *    of those left at once. The ejections go in order (rule 3's, then rule 5's), and the first
 *    ones that fit are made; the others wait for an UnJoin to fold. (Measured against all the
 *    voters instead, it kept a cluster stalled for good: with one UnJoin pending among four, a
 *    divergent replica could no longer be ejected.)
 *
 * These rules are each peer's own. Ejections decided by different voters, each fitting them,
 * can still remove half of the participants together (rule 5 needs no majority): the fold's
 * quorum rule is what keeps both sides of a split from going on (automatic ejections carry
 * `quorum`; docs/ARCHITECTURE.md, "Why a partition cannot produce two clusters").
 *
 * @module
 */
import type { Participant } from '../../eventfold/types.js'

/** Settings of a {@link FailureDetector}. */
export interface FailureDetectorSettings {
  /** Silence after which a peer is suspected, in milliseconds. */
  readonly suspectAfterMs: number
  /** How long a voter that is not the designated ejector waits before ejecting, in milliseconds. */
  readonly backupDelayMs: number
  /** How recent a report naming a broken link must be for this peer to eject for it (rule 5), in milliseconds: a heartbeat interval. */
  readonly reportFreshMs: number
}

/** Suspicion and quorum bookkeeping of one peer. See the module comment for the rules. */
export class FailureDetector {
  private readonly lastHeard = new Map<Participant, number>()
  private readonly reports = new Map<Participant, ReadonlySet<Participant>>()
  /** Of each report, the participants the reporter finds silent (not merely stuck): rule 5 reads these only. */
  private readonly silentReports = new Map<Participant, ReadonlySet<Participant>>()
  /** When each peer's latest report arrived. */
  private readonly reportedAt = new Map<Participant, number>()
  private readonly ejectableSince = new Map<Participant, number>()
  private readonly brokenSince = new Map<string, number>()
  private stuck: ReadonlySet<Participant> = new Set()

  constructor (readonly self: Participant, private readonly settings: FailureDetectorSettings) {}

  /**
   * Sets the peers to watch (every other projected participant): a newcomer starts as heard
   * `now`, a peer no longer listed is forgotten with its report.
   */
  watch (peers: Iterable<Participant>, now: number): void {
    const keep = new Set<Participant>()
    for (const p of peers) {
      if (p === this.self) continue
      keep.add(p)
      if (!this.lastHeard.has(p)) this.lastHeard.set(p, now)
    }
    for (const p of [...this.lastHeard.keys()]) {
      if (!keep.has(p)) { this.lastHeard.delete(p); this.reports.delete(p); this.silentReports.delete(p); this.reportedAt.delete(p); this.ejectableSince.delete(p) }
    }
  }

  /** Forgets everything (a new incarnation of this peer's membership). */
  reset (): void {
    this.lastHeard.clear()
    this.reports.clear()
    this.silentReports.clear()
    this.reportedAt.clear()
    this.ejectableSince.clear()
    this.stuck = new Set()
  }

  /**
   * This peer could not listen for the `ms` milliseconds before `now` (its event loop was
   * blocked or starved: its timers ran that late). What the others sent meanwhile may still wait
   * unread in its sockets, so that time counts as nobody's silence: every time kept here moves
   * `ms` later, never past `now`. A peer that is really dead is suspected after `suspectAfterMs`
   * of time this peer could listen, however often it pauses.
   */
  discount (ms: number, now: number): void {
    if (!(ms > 0)) return
    const later = (t: number): number => Math.min(now, t + ms)
    for (const [p, t] of this.lastHeard) this.lastHeard.set(p, later(t))
    for (const [p, t] of this.ejectableSince) this.ejectableSince.set(p, later(t))
    for (const [k, t] of this.brokenSince) this.brokenSince.set(k, later(t))
  }

  /** Sets the participants this peer finds stuck (replacing the earlier set). */
  setStuck (peers: ReadonlySet<Participant>): void {
    this.stuck = peers
  }

  /** Records that `peer` was heard from. Peers not watched are ignored. */
  heard (peer: Participant, now: number): void {
    const last = this.lastHeard.get(peer)
    if (last !== undefined && last < now) this.lastHeard.set(peer, now)
  }

  /**
   * Records the suspects `peer` reported in its latest heartbeat (replacing its earlier
   * report): `suspects` count for the quorum (rule 3), `silent` (by default the same) for
   * broken links (rule 5). A participant one voter finds stuck is no evidence of a broken link:
   * it may be stuck in a group only those two share.
   */
  report (peer: Participant, suspects: readonly Participant[], now: number, silent: readonly Participant[] = suspects): void {
    if (!this.lastHeard.has(peer)) return
    this.heard(peer, now)
    this.reports.set(peer, new Set(suspects))
    this.silentReports.set(peer, new Set(silent))
    this.reportedAt.set(peer, now)
  }

  /**
   * The earliest time after `now` at which a watched peer that is heard now turns silent (if
   * nothing more is heard from it), or `undefined` when none would.
   */
  nextSilence (now: number): number | undefined {
    let next: number | undefined
    for (const last of this.lastHeard.values()) {
      const at = last + this.settings.suspectAfterMs + 1
      if (at > now && (next === undefined || at < next)) next = at
    }
    return next
  }

  /** Whether `peer` is watched and has been silent for more than `suspectAfterMs`. */
  isSilent (peer: Participant, now: number): boolean {
    const last = this.lastHeard.get(peer)
    return last !== undefined && now - last > this.settings.suspectAfterMs
  }

  /** Whether `peer` is watched and silent or stuck. */
  isSuspected (peer: Participant, now: number): boolean {
    return this.isSilent(peer, now) || (this.lastHeard.has(peer) && this.stuck.has(peer))
  }

  /** The watched peers this peer suspects, sorted. */
  suspects (now: number): Participant[] {
    return [...this.lastHeard.keys()].filter(p => this.isSuspected(p, now)).sort()
  }

  /** Milliseconds since `peer` was last heard from, or `undefined` if it is not watched. */
  silenceOf (peer: Participant, now: number): number | undefined {
    const last = this.lastHeard.get(peer)
    return last === undefined ? undefined : now - last
  }

  /** The voters that count as suspecting `peer` now (rule 3), sorted. */
  suspecting (peer: Participant, voters: readonly Participant[], now: number): Participant[] {
    if (!this.isSuspected(peer, now)) return []
    return voters.filter(v => v === this.self ||
      (v !== peer && this.lastHeard.has(v) && !this.isSilent(v, now) && this.reports.get(v)?.has(peer) === true)).sort()
  }

  /**
   * The participants this peer should eject now (rules 3 and 4). `voters`: the infimum
   * participants; `candidates`: the projected participants (a participant already ejected
   * here is not a candidate).
   */
  toEject (voters: readonly Participant[], candidates: readonly Participant[], now: number): Participant[] {
    const result: Participant[] = []
    const isVoter = voters.includes(this.self)
    for (const x of candidates) {
      if (x === this.self) continue
      const suspecting = isVoter ? this.suspecting(x, voters, now) : []
      if (suspecting.length * 2 <= voters.length) { this.ejectableSince.delete(x); continue }
      const since = this.ejectableSince.get(x) ?? now
      this.ejectableSince.set(x, since)
      if (suspecting[0] === this.self || now - since >= this.settings.backupDelayMs) result.push(x)
    }
    for (const x of [...this.ejectableSince.keys()]) if (!candidates.includes(x)) this.ejectableSince.delete(x)
    for (const x of this.brokenLinkVictims(voters, candidates, now)) if (!result.includes(x)) result.push(x)
    // Rule 6: keep more than half of the voters not already being ejected here.
    const kept = voters.filter(v => candidates.includes(v)).length
    let staying = kept
    return result.filter(x => {
      if (!voters.includes(x)) return true
      if ((staying - 1) * 2 <= kept) return false
      staying--
      return true
    })
  }

  /**
   * Why this peer would eject `peer` now, for the log line of an automatic ejection (an
   * operator's first question): which voters suspect it and for what (silent or stuck, as each
   * reported it), or the broken link it is an end of.
   */
  grounds (peer: Participant, voters: readonly Participant[], now: number): string {
    const suspecting = voters.includes(this.self) ? this.suspecting(peer, voters, now) : []
    if (suspecting.length * 2 > voters.length) {
      const why = suspecting.map(v => {
        const silent = v === this.self ? this.isSilent(peer, now) : this.silentReports.get(v)?.has(peer) === true
        const here = v === this.self && silent ? ` ${Math.round(this.silenceOf(peer, now) ?? 0)} ms` : ''
        return `${v} (${silent ? 'silent' : 'stuck'}${here})`
      })
      return `suspected by ${suspecting.length} of ${voters.length} voters: ${why.join(', ')}`
    }
    const all = this.brokenLinks(voters, now)
    if (withVictims(all).some(l => l.victim === peer)) {
      // Ejected as the end of more broken links than the other end of one, or as the larger end.
      const links = all.filter(l => l.ends.includes(peer))
      const reported = `latest report ${Math.round(now - Math.max(...links.map(l => l.confirmedAt)))} ms ago, by ${[...new Set(links.flatMap(l => l.reporters))].sort().join(', ')}`
      if (links.length === 1) return `the larger end of a link broken for ${Math.round(now - links[0]!.since)} ms: ${links[0]!.ends[0]} and ${links[0]!.ends[1]} do not hear each other (${reported})`
      const others = links.map(l => l.ends[0] === peer ? l.ends[1] : l.ends[0])
      return `an end of ${links.length} broken links: ${peer} does not hear ${others.join(' or ')} (the oldest broken for ${Math.round(now - Math.min(...links.map(l => l.since)))} ms; ${reported})`
    }
    return 'no longer ejectable'
  }

  /**
   * The broken links this peer sees (rule 5), as pairs `[smaller, larger]`, with since when it
   * has seen them, the ends whose reports name them, and when the latest of those arrived.
   */
  brokenLinks (voters: readonly Participant[], now: number): BrokenLink[] {
    const heard = voters.filter(v => v === this.self || (this.lastHeard.has(v) && !this.isSilent(v, now)))
    const seen = new Map<string, { ends: readonly [Participant, Participant], since: number, reporters: Participant[], confirmedAt: number }>()
    if (heard.length * 2 <= voters.length) { this.brokenSince.clear(); return [] }
    for (const v of heard) {
      if (v === this.self) continue
      for (const x of this.silentReports.get(v) ?? []) {
        if (x === v || !heard.includes(x)) continue
        const ends: [Participant, Participant] = v < x ? [v, x] : [x, v]
        const key = `${ends[0]}\n${ends[1]}`
        const at = this.reportedAt.get(v) ?? -Infinity
        const link = seen.get(key)
        if (link !== undefined) { link.reporters.push(v); link.confirmedAt = Math.max(link.confirmedAt, at); continue }
        const since = this.brokenSince.get(key) ?? now
        this.brokenSince.set(key, since)
        seen.set(key, { ends, since, reporters: [v], confirmedAt: at })
      }
    }
    const out = [...seen.values()]
    for (const key of [...this.brokenSince.keys()]) if (!seen.has(key)) this.brokenSince.delete(key)
    return out
  }

  /**
   * The broken links found at the last evaluation of rule 5 (by {@link toEject}), with since
   * when: for reports, without touching the links' clocks.
   */
  seenBrokenLinks (): Array<{ readonly ends: readonly [Participant, Participant], readonly since: number }> {
    return [...this.brokenSince].map(([key, since]) => {
      const [a, b] = key.split('\n') as [Participant, Participant]
      return { ends: [a, b] as const, since }
    })
  }

  /** Who this peer ejects for broken links now (rule 5). */
  private brokenLinkVictims (voters: readonly Participant[], candidates: readonly Participant[], now: number): Participant[] {
    if (!voters.includes(this.self)) return []
    const out: Participant[] = []
    for (const { link, victim } of withVictims(this.brokenLinks(voters, now))) {
      const { ends, since } = link
      if (ends.includes(this.self) || now - since < this.settings.suspectAfterMs || now - link.confirmedAt > this.settings.reportFreshMs) continue
      if (!candidates.includes(victim) || out.includes(victim)) continue
      // The smallest-id voter that sees the link ejects at once: neither end, heard here, and
      // hearing both ends itself (its report names neither silent; one that does cannot see
      // the link, so waiting for it would only add the backup delay).
      const first = voters.find(v => !ends.includes(v) && (v === this.self ||
        (this.lastHeard.has(v) && !this.isSilent(v, now) && this.silentReports.get(v)?.has(ends[0]) !== true && this.silentReports.get(v)?.has(ends[1]) !== true)))
      if (first === this.self || now - since >= this.settings.suspectAfterMs + this.settings.backupDelayMs) out.push(victim)
    }
    return out
  }
}

/** A broken link as {@link FailureDetector.brokenLinks} finds it. */
interface BrokenLink {
  /** Its ends, the smaller id first. */
  readonly ends: readonly [Participant, Participant]
  /** Since when this peer has seen it. */
  readonly since: number
  /** The ends whose latest reports name the other silent. */
  readonly reporters: readonly Participant[]
  /** When the latest of those reports arrived. */
  readonly confirmedAt: number
}

/**
 * Each broken link with the end to eject (rule 5): the end of more of `links`, and between ends
 * of as many, the larger id. The same links give the same victims on every voter.
 */
function withVictims (links: readonly BrokenLink[]): Array<{ readonly link: BrokenLink, readonly victim: Participant }> {
  const degree = new Map<Participant, number>()
  for (const { ends } of links) for (const end of ends) degree.set(end, (degree.get(end) ?? 0) + 1)
  return links.map(link => {
    const [smaller, larger] = link.ends
    const victim = degree.get(smaller)! > degree.get(larger)! ? smaller : larger
    return { link, victim }
  })
}
