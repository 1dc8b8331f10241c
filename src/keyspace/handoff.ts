/**
 * Handoff: what one peer does so that the partitions' data groups follow the ownership table.
 * It reacts to every change of the settled table (and re-checks on a timer, so nothing waits
 * on a lost message) and is idempotent: each pass compares what the table says with what this
 * peer holds, per partition:
 *
 * - **found**: a founder of a new generation asks the table for its grant (`found`), and
 *   creates the group only once the grant folded;
 * - **send**: one owner of a partition with incoming replicas (its coordinator, chosen by the
 *   partition's number; with no owner, every incoming replica joined in the state) adds each one
 *   to the group (`participate`: a Join, then the whole fold pushed), at most
 *   `maxParallelMoves` at a time on this peer, retrying with backoff until it is promoted;
 * - **announce**: an incoming replica whose own Join has folded in its replica holds every
 *   event the owners acknowledged (any later one needs its acknowledgement), so it tells the
 *   table it is `ready`, which promotes it to serving;
 * - **release**: a replica the table no longer lists (a move completed, or was cancelled)
 *   stops being served at once (the owner's fence answers `moved`), waits until no request it
 *   accepted is in flight and no `ready` it announced is on its way (folded later, that could
 *   promote it once listed again), then leaves the group (an UnJoin it records itself, after
 *   every event of its own) and forgets it (listed again by then, it says `abandon`);
 *   releases.ts. A replica the table has never listed here arrived
 *   early (the coordinator's table listed this peer as incoming before this peer's did): it is
 *   kept for `EARLY_ARRIVAL_GRACE_MS` before it counts as unlisted;
 * - **abandon**: an owner that finds it does not hold its partition (its copy was lost), or
 *   an incoming replica that cannot get the state, or join it, because no owner is left,
 *   says so; the table refounds a partition only when nobody holds it;
 * - **restore**: the last owner of a partition nobody serves any more (the table's
 *   `lastOwner`), admitted again, founds the next generation from its copy: the replica it
 *   held before its rejoin (kept across it: `ServiceGroups.formerState`), or still holds. With
 *   no copy (it restarted without its storage) it abandons the generation instead. An owner
 *   admitted again while the table kept it as an owner holds only such a copy: it `resign`s,
 *   and becomes the last owner if nobody else serves;
 * - **declare lost**: a partition whose last owner stays away `lostAfterMs` is declared lost
 *   by its coordinator among the members (`lost`), and the table refounds it empty;
 * - **remove strays**: a participant of a partition's group that the table has listed neither
 *   as an owner nor as incoming for `strayAfterMs` is removed (an UnJoin) by the coordinator,
 *   or with no owner by each incoming replica joined in it: a peer readmitted to the
 *   cluster may no longer hold the replica, and never say so (docs/ARCHITECTURE.md, "Strays").
 *
 * Progress is kept per move and shown by `stats()`, so a handoff that stalls is visible.
 *
 * @module
 */
import type { Participant } from '../eventfold/types.js'
import type { Timer } from '../peer/clock.js'
import { TimeoutError } from '../transport/errors.js'
import type { MembershipView } from '../peer/services.js'
import type { KeyspaceParts, PartitionGroup, PartitionGroups } from './context.js'
import { awaitsLastOwner, coordinatorOf, restoresFrom, type KeyspaceTable, type PartitionRef } from './table.js'
import type { PartitionState } from './partition-state.js'
import type { HandoffProgress, ReceivingPartition, SendingPartition } from './handoff-progress.js'
import { Releases } from './releases.js'

/** Settings of handoff. */
export interface HandoffSettings {
  /** Transfers this peer runs at once. */
  readonly maxParallelMoves: number
  /** How long a replica without the state waits, with no owner left, before it abandons. */
  readonly abandonAfterMs: number
  /** How long a partition waits for its last owner, away, before it is declared lost (see the module comment). */
  readonly lostAfterMs: number
  /** Period of the re-check. */
  readonly recheckMs: number
  /** Timeout of one transfer (a Join and the push of the fold). */
  readonly transferTimeoutMs: number
  /** How long a participant of a partition's group that the table does not list may stay before the coordinator removes it (see the module comment). */
  readonly strayAfterMs: number
}

/** What handoff needs besides the shared parts. */
export interface HandoffComponents<K, I, O, S> extends KeyspaceParts {
  /** The partitions' groups. */
  readonly groups: PartitionGroups<K, I, O, S>
  /** The cluster's membership. */
  readonly membership: MembershipView
  /** Requests in flight here for a partition group. */
  readonly inFlight: (partition: number, generation: number) => number
}

/** A generation this peer founds, with the copy it restores, if it is the partition's last owner. */
interface Founding<S> {
  readonly ref: PartitionRef
  readonly copy?: { readonly state: PartitionState<S> }
}

/** One transfer this peer (a partition's coordinator) runs to an incoming replica. */
interface Transfer {
  readonly partition: number
  readonly generation: number
  readonly to: Participant
  phase: SendingPartition['phase']
  attempts: number
  /** When it entered its phase. */
  since: number
  /** When a retry may start. */
  nextAt: number
  readonly createdAt: number
}

const FIRST_RETRY_MS = 200
const MAX_RETRY_MS = 5000
/** A sent transfer whose receiver is not promoted after this long is sent again. */
const RESEND_AFTER_MS = 5000
/** A `ready` announcement not reflected in the table after this long is made again. */
const REANNOUNCE_AFTER_MS = 3000
/**
 * How long a group whose state arrived before this peer's table listed it (the coordinator
 * folds a table change and pushes the state before the receiver folds the same change) is
 * kept unlisted before it is released: a move cancelled before this peer saw it still gets
 * cleaned up. Releasing it at once made the receiver leave the group it was being given,
 * and the move waited for the coordinator to send it again (`RESEND_AFTER_MS`):
 * docs/BENCHMARKS.md, "Early arrivals".
 */
export const EARLY_ARRIVAL_GRACE_MS = RESEND_AFTER_MS
/** How long after an admission every former copy of a current generation is kept (see `reconcile`). */
const FORMER_GRACE_MS = 30_000

/** The handoff of one peer; see the module comment. */
export class Handoff<K, I, O, S> {
  private readonly transfers = new Map<string, Transfer>()
  private readonly releases: Releases<K, I, O, S>
  private readonly announced = new Map<string, number>()
  /** `ready` events of each partition generation announced here and not folded (or failed) yet. */
  private readonly readying = new Map<string, number>()
  private readonly receivingSince = new Map<string, number>()
  /** Since when each partition this peer should hold has been seen without its state. */
  private readonly missingSince = new Map<string, number>()
  /** Partition groups some table listed this peer for in this admission (a rejoin replaces every replica). */
  private readonly listed = new Set<string>()
  private admission = 0
  /** When `admission` last changed. */
  private admittedAt = 0
  /** Since when each group held here that no table has listed this peer for has been seen. */
  private readonly unlistedSince = new Map<string, number>()
  private readonly watched = new Map<string, () => void>()
  private founding = false
  private timer: Timer | undefined
  private unsubscribe: (() => void) | undefined
  private scheduled = false
  private running = false
  private readonly completed = { received: 0, sent: 0, founded: 0, abandoned: 0, restored: 0, declaredLost: 0 }
  /** Partitions waiting for their last owner, by `refKey`: since when, as seen by their coordinator here. */
  private readonly awaitedSince = new Map<string, number>()
  /** Generations this peer should restore as their last owner but has no copy of, by `refKey`: when it last said so. */
  private readonly copylessAt = new Map<string, number>()
  /** Participants of a group this peer coordinates that the table does not list, by `refKey|peer`: since when. */
  private readonly straySince = new Map<string, number>()

  constructor (private readonly c: HandoffComponents<K, I, O, S>, private readonly settings: HandoffSettings) {
    this.releases = new Releases({
      ...c,
      readying: key => this.readying.has(key),
      abandon: refs => { this.abandon(refs) },
      schedule: () => { this.schedule() },
      leaveTimeoutMs: settings.transferTimeoutMs
    })
  }

  /** Starts following the table. */
  start (): void {
    this.unsubscribe = this.c.table.subscribe(() => { this.schedule() })
    this.timer = this.c.clock.every(this.settings.recheckMs, () => { this.schedule() })
    this.schedule()
  }

  /** Stops; transfers in flight finish on their own. */
  stop (): void {
    this.unsubscribe?.()
    this.timer?.cancel()
    for (const u of this.watched.values()) u()
    this.watched.clear()
  }

  /** A pass at the end of this tick (once however often asked). */
  schedule (): void {
    if (this.scheduled) return
    this.scheduled = true
    this.c.clock.defer(() => {
      this.scheduled = false
      this.pass()
    })
  }

  /** A request in flight for a partition group was answered: a release may go on. */
  idle (): void {
    if (this.releases.size > 0) this.schedule()
  }

  /** Whether this peer still serves, receives or releases anything (for a draining stop). */
  holdsAnything (table: KeyspaceTable): boolean {
    if (this.releases.size > 0) return true
    const self = this.c.self
    return table.assignments.some(a => a.owners.includes(self) || a.incoming.includes(self))
  }

  /**
   * Resolves once this peer releases nothing (or after `timeoutMs`, rejecting with
   * `TimeoutError`). A pass runs first: a draining stop calls this as soon as the table stops
   * listing this peer, in the same tick, before the pass that change scheduled (end of the
   * tick) has listed the partitions to release, and so before their requests in flight
   * are waited for.
   */
  async whenReleased (timeoutMs: number): Promise<void> {
    this.pass()
    if (this.releases.size === 0) return
    await new Promise<void>((resolve, reject) => {
      const timer = this.c.clock.setTimer(timeoutMs, () => { remove(); reject(new TimeoutError(`partitions still being released after ${timeoutMs} ms`, timeoutMs)) })
      const remove = this.releases.onEnd(() => { if (this.releases.size === 0) { timer.cancel(); remove(); resolve() } })
      this.schedule()
    })
  }

  /** The progress shown by `stats()`. */
  progress (): HandoffProgress {
    const now = this.c.clock.now()
    const table = this.c.table.current()
    const receiving: ReceivingPartition[] = []
    if (table !== undefined) {
      table.assignments.forEach((a, partition) => {
        if (!a.incoming.includes(this.c.self)) return
        const key = refKey(partition, a.generation)
        const g = this.c.groups.get(partition, a.generation)
        const phase = this.announced.has(key) ? 'announced' : g.held() ? 'catching-up' : 'waiting-for-state'
        receiving.push({ partition, generation: a.generation, phase, sinceMs: now - (this.receivingSince.get(key) ?? now) })
      })
    }
    return {
      receiving,
      sending: [...this.transfers.values()].map(t => ({ partition: t.partition, to: t.to, phase: t.phase, attempts: t.attempts, sinceMs: now - t.createdAt })),
      releasing: this.releases.list(now),
      completed: { ...this.completed, released: this.releases.completed }
    }
  }

  // ---------------------------------------------------------------------------------------

  private pass (): void {
    if (this.running) { this.schedule(); return }
    const c = this.c
    const table = c.table.current()
    if (table === undefined || !c.membership.isMember()) return
    this.running = true
    try {
      this.reconcile(table)
    } catch (err) {
      c.log.error('handoff pass failed: %s', err)
    } finally {
      this.running = false
    }
  }

  private reconcile (table: KeyspaceTable): void {
    const c = this.c
    const self = c.self
    const now = c.clock.now()
    const admission = c.membership.admission()
    if (admission !== this.admission) { this.admission = admission; this.admittedAt = now; this.listed.clear() }
    this.releases.endForgotten()
    const toFound: Founding<S>[] = []
    const toAnnounce: PartitionRef[] = []
    const toAbandon: PartitionRef[] = []
    const toDeclare: PartitionRef[] = []
    const toResign: PartitionRef[] = []
    const awaited = new Set<string>()
    const copyless = new Set<string>()
    const wantedTransfers = new Set<string>()
    const incomingHere = new Set<string>()
    const strays = new Set<string>()
    const toRemove: Array<{ g: PartitionGroup<K, I, O, S>, peer: Participant, key: string }> = []
    for (let p = 0; p < table.partitions; p++) {
      const a = table.assignments[p]!
      if (a.generation === 0) continue
      const key = refKey(p, a.generation)
      if (awaitsLastOwner(table, a)) {
        if (coordinatorOf(table.members, p) !== self) continue
        awaited.add(key)
        if (elapsedSince(this.awaitedSince, key, now) >= this.settings.lostAfterMs) toDeclare.push([p, a.generation])
        continue
      }
      const g = c.groups.get(p, a.generation)
      const held = g.held()
      // Participants the table lists neither as owners nor as incoming: removed after `strayAfterMs`.
      const findStrays = (): void => {
        for (const peer of g.participants().projected) {
          if (a.owners.includes(peer) || a.incoming.includes(peer)) continue
          const sk = `${key}|${peer}`
          strays.add(sk)
          if (elapsedSince(this.straySince, sk, now) >= this.settings.strayAfterMs) toRemove.push({ g, peer, key: sk })
        }
      }
      const want = (to: Participant): void => {
        const tk = `${key}|${to}`
        wantedTransfers.add(tk)
        if (!this.transfers.has(tk)) this.transfers.set(tk, { partition: p, generation: a.generation, to, phase: 'queued', attempts: 0, since: now, nextAt: now, createdAt: now })
      }
      const listed = a.owners.includes(self) || a.incoming.includes(self)
      if (listed) this.listed.add(key)
      if (listed || !held) this.unlistedSince.delete(key)
      if (a.owners.includes(self)) {
        this.finishReceiving(key)
        this.releases.keep(key)
        if (!held) {
          if (a.founder === self) {
            // The last owner restores the partition from its copy; without one, nobody can.
            const copy = a.lastOwner?.peer === self ? c.groups.newestCopy(p, a.dataSince, a.lastOwner.generation) : undefined
            if (a.lastOwner?.peer === self && copy === undefined) {
              // Said again only after a while: the table may not fold it at once.
              copyless.add(key)
              const told = this.copylessAt.get(key)
              if (told === undefined || now - told >= REANNOUNCE_AFTER_MS) { this.copylessAt.set(key, now); toAbandon.push([p, a.generation]) }
            } else toFound.push({ ref: [p, a.generation], ...(copy !== undefined ? { copy } : {}) })
          } else if (a.founder === null && this.missingFor(key, now) >= this.settings.abandonAfterMs) {
            // An owner with no copy abandons. One admitted again while the table kept it as an
            // owner (its ejection lost to a concurrent one, or has not folded there yet) kept
            // the replica it held before: it resigns, and restores the partition from that
            // copy if it was the last to serve it; a founder ejected before its grant folded here,
            // the copy it was to found from (it abandoned, and the partition was lost: seed 18).
            const ref: PartitionRef = [p, a.generation]
            if (c.groups.newestCopy(p, a.dataSince, a.generation) === undefined) toAbandon.push(ref)
            else toResign.push(ref)
          }
          continue
        }
        this.missingSince.delete(key)
        if (coordinatorOf(a.owners, p) === self) {
          for (const to of a.incoming) want(to)
          findStrays()
        }
      } else if (a.incoming.includes(self)) {
        incomingHere.add(key)
        this.releases.keep(key)
        if (!this.receivingSince.has(key)) this.receivingSince.set(key, now)
        // Listed again while still leaving the group (its UnJoin recorded): that replica is the
        // old one, which the others went on without, so it proves nothing about holding what
        // they acknowledged since. The release drops it (or the peer forgets it first, on
        // learning the group settled without it); the state comes anew after that.
        if (held && this.releases.phase(key) === 'leaving') continue
        // Held but not joined, with no owner left, it abandons: its Join may never fold if every
        // participant let its replica go (seed 34, R 2), and readmitted, it may lack what the
        // owners acknowledged since; handed on, that became the partition's history (seed 435).
        if (held && (a.owners.length > 0 || g.readState().joined)) {
          this.missingSince.delete(key)
          this.watch(key, g)
          // No owner left to send it: a replica that holds the state hands it to the other
          // incoming ones, so that one its group counts in through a replica it no longer holds
          // is readmitted (`participate`), and the Joins waiting for it can fold; and it removes
          // strays, whose acknowledgements those Joins wait for too (fresh keys, seed 106).
          if (a.owners.length === 0) { for (const to of a.incoming) if (to !== self) want(to); findStrays() }
          if (isReady(g, self, a.owners)) {
            const at = this.announced.get(key)
            if (at === undefined || now - at >= REANNOUNCE_AFTER_MS) { toAnnounce.push([p, a.generation]); this.announced.set(key, now) }
          }
        } else if (a.owners.length === 0 && !a.abandoned.includes(self) && this.missingFor(key, now) >= this.settings.abandonAfterMs) {
          toAbandon.push([p, a.generation])
        }
      } else if (held && this.unlistedFor(key, now) >= (this.listed.has(key) ? 0 : EARLY_ARRIVAL_GRACE_MS)) {
        this.release(p, a.generation, key, now)
      }
    }
    // Older generations still held here: nobody serves them any more.
    for (const { partition, generation, group } of c.groups.defined()) {
      const current = table.assignments[partition]?.generation ?? 0
      if (generation < current && group.held()) this.release(partition, generation, refKey(partition, generation), now)
    }
    for (const key of [...this.awaitedSince.keys()]) if (!awaited.has(key)) this.awaitedSince.delete(key)
    for (const key of [...this.copylessAt.keys()]) if (!copyless.has(key)) this.copylessAt.delete(key)
    for (const key of [...this.straySince.keys()]) if (!strays.has(key)) this.straySince.delete(key)
    // A former copy (kept across a rejoin, or of a dropped replica) is kept while the table lists
    // this peer as an owner or incoming replica of that generation, or as a last owner that may
    // restore from it, while the table does not know the generation yet (a sponsor's table a
    // generation behind dropped a last owner's copy), and for a while after each admission.
    const fresh = now - this.admittedAt < FORMER_GRACE_MS
    c.groups.keepFormers((p, g) => {
      const a = table.assignments[p]
      // (An owner that does not hold its generation may resign with an older copy: above.)
      return a !== undefined && (g > a.generation || (a.generation === g && (fresh || a.owners.includes(self) || a.incoming.includes(self))) || restoresFrom(a, self, g) ||
        (g >= a.dataSince && g < a.generation && a.owners.includes(self) && !c.groups.get(p, a.generation).held()))
    })
    for (const key of [...this.receivingSince.keys()]) if (!incomingHere.has(key)) this.receivingSince.delete(key)
    for (const key of [...this.announced.keys()]) if (!incomingHere.has(key)) this.announced.delete(key)
    for (const [key, unwatch] of [...this.watched]) if (!incomingHere.has(key)) { unwatch(); this.watched.delete(key) }
    for (const [tk, t] of [...this.transfers]) {
      if (wantedTransfers.has(tk)) continue
      this.transfers.delete(tk)
      // The receiver left the incoming list: promoted (or the move was called off).
      if (table.assignments[t.partition]?.owners.includes(t.to) === true) this.completed.sent++
    }
    this.pump(now)
    this.releases.progress()
    if (toFound.length > 0) this.found(toFound)
    if (toAnnounce.length > 0) this.announce(toAnnounce)
    if (toAbandon.length > 0) this.abandon(toAbandon)
    if (toDeclare.length > 0) this.declareLost(toDeclare)
    if (toResign.length > 0) this.resign(toResign)
    for (const stray of toRemove) this.removeStray(stray.g, stray.peer, stray.key, now)
  }

  private unlistedFor (key: string, now: number): number {
    return elapsedSince(this.unlistedSince, key, now)
  }

  private missingFor (key: string, now: number): number {
    return elapsedSince(this.missingSince, key, now)
  }

  private finishReceiving (key: string): void {
    if (this.receivingSince.delete(key)) this.completed.received++
  }

  /** Re-checks as soon as an incoming group changes (its Join may have folded). */
  private watch (key: string, g: PartitionGroup<K, I, O, S>): void {
    if (this.watched.has(key)) return
    this.watched.set(key, g.subscribe(() => { this.schedule() }))
  }

  // -- Founding, announcing, abandoning: table events -------------------------------------

  private found (foundings: Array<Founding<S>>): void {
    if (this.founding) return
    this.founding = true
    const c = this.c
    c.table.group.applyConsistent({ type: 'found', peer: c.self, partitions: foundings.map(f => f.ref) }, { timeoutMs: 30_000 })
      .then(out => {
        const granted = new Set(out.partitions)
        for (const { ref: [p, g], copy } of foundings) {
          if (!granted.has(p)) continue
          c.groups.found(p, g, copy)
          this.completed.founded++
          if (copy !== undefined) this.completed.restored++
        }
        if (granted.size > 0) c.log('founded %d partition group(s)', granted.size)
      })
      .catch(err => { c.log('asking to found %d partition(s) failed: %s', foundings.length, err) })
      .finally(() => { this.founding = false; this.schedule() })
  }

  /** Says `refs` are ready, counting each in `readying` until the event folded or failed. */
  private announce (refs: PartitionRef[]): void {
    const c = this.c
    c.log('ready to serve partitions %s', refs.map(r => r[0]).join(','))
    const keys = refs.map(([p, g]) => refKey(p, g))
    for (const key of keys) this.readying.set(key, (this.readying.get(key) ?? 0) + 1)
    c.table.group.applyConsistent({ type: 'ready', peer: c.self, partitions: refs })
      .catch(err => {
        c.log('announcing %d ready partition(s) failed: %s', refs.length, err)
        for (const key of keys) this.announced.delete(key)
      })
      .finally(() => {
        for (const key of keys) {
          const left = (this.readying.get(key) ?? 1) - 1
          if (left > 0) this.readying.set(key, left)
          else this.readying.delete(key)
        }
        this.schedule()
      })
  }

  private abandon (refs: PartitionRef[]): void {
    if (!this.report('abandon', refs, this.missingSince)) return
    this.completed.abandoned += refs.length
    this.c.log('abandoned %d partition(s) this peer has no state of', refs.length)
  }

  private resign (refs: PartitionRef[]): void {
    if (this.report('resign', refs, this.missingSince)) this.c.log('resigned %d partition(s) this peer holds only a former copy of', refs.length)
  }

  private declareLost (refs: PartitionRef[]): void {
    if (!this.report('lost', refs, this.awaitedSince)) return
    this.completed.declaredLost += refs.length
    this.c.log.error('declared %d partition(s) lost: their last owner was not admitted again within %d ms', refs.length, this.settings.lostAfterMs)
  }

  /**
   * Tells the table what this peer found about `refs` (an event of its own) and restarts the
   * clock `since` keeps for each, so that it is said again only after another wait. Returns
   * whether the event was applied.
   */
  private report (type: 'abandon' | 'resign' | 'lost', refs: PartitionRef[], since: Map<string, number>): boolean {
    try {
      this.c.table.group.applyFast({ type, peer: this.c.self, partitions: refs })
      for (const [p, g] of refs) since.delete(refKey(p, g))
      return true
    } catch (err) {
      this.c.log('telling the table %s of %d partition(s) failed: %s', type, refs.length, err)
      return false
    }
  }

  /** Removes `peer`, which the table no longer lists, from `g` (again after `strayAfterMs` if that does not take). */
  private removeStray (g: PartitionGroup<K, I, O, S>, peer: Participant, key: string, now: number): void {
    this.straySince.set(key, now)
    this.c.log('removing %s from group %s: the table has not listed it for %d ms', peer, g.id, this.settings.strayAfterMs)
    g.disassociate(peer, { timeoutMs: this.settings.transferTimeoutMs }).catch(err => { this.c.log('removing %s from group %s failed: %s', peer, g.id, err) })
  }

  // -- Transfers ---------------------------------------------------------------------------

  /** Starts queued transfers (and due retries) up to the bound. */
  private pump (now: number): void {
    let sending = 0
    for (const t of this.transfers.values()) if (t.phase === 'sending') sending++
    const table = this.c.table.current()
    for (const t of this.transfers.values()) {
      if (t.phase === 'retrying' && now >= t.nextAt) t.phase = 'queued'
      // A receiver that got the fold but was not promoted in time may have missed it: again.
      if (t.phase === 'sent' && now - t.since >= RESEND_AFTER_MS && table?.assignments[t.partition]?.incoming.includes(t.to) === true) t.phase = 'queued'
    }
    for (const t of [...this.transfers.values()].sort((a, b) => a.createdAt - b.createdAt)) {
      if (sending >= this.settings.maxParallelMoves) break
      if (t.phase !== 'queued') continue
      sending++
      this.send(t)
    }
  }

  private send (t: Transfer): void {
    const c = this.c
    t.phase = 'sending'
    t.attempts++
    t.since = c.clock.now()
    const started = t.since
    const g = c.groups.get(t.partition, t.generation)
    g.participate(t.to, { timeoutMs: this.settings.transferTimeoutMs })
      .then(d => d.reached.includes(t.to), err => { c.log('sending partition %d to %s failed: %s', t.partition, t.to, err); return false })
      .then(reached => {
        const now = c.clock.now()
        t.since = now
        c.log('partition %d to %s: %s after %d ms', t.partition, t.to, reached ? 'sent' : 'not reached', now - started)
        if (reached) t.phase = 'sent'
        else { t.phase = 'retrying'; t.nextAt = now + Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (t.attempts - 1)) }
        this.schedule()
      })
  }

  // -- Releasing ---------------------------------------------------------------------------

  private release (partition: number, generation: number, key: string, now: number): void {
    this.releases.start(partition, generation, key, now)
    // Given to this peer again later, the state may again arrive before the table says so.
    this.listed.delete(key)
  }
}

/**
 * Whether this peer's replica of `g` holds everything acknowledged: its own Join has folded
 * there (no readmission of it pending, whose infimum lists it only through its earlier
 * membership), it is not leaving (an UnJoin of it recorded: the others may have gone on), and,
 * while the partition has `owners`, it still counts one of them in. A replica the owners went
 * on without never heard of that: it may have stood in for every other participant as they
 * left the cluster and folded alone (R 3 seed 628, 2 writes lost); a coordinator's transfer
 * (its Join, in the owners' history) brings it back first.
 */
function isReady<K, I, O, S> (g: PartitionGroup<K, I, O, S>, self: Participant, owners: readonly Participant[]): boolean {
  const state = g.readState()
  const participants = state.projectedParticipants
  return state.joined && participants.includes(self) && (owners.length === 0 || owners.some(o => participants.includes(o)))
}

/** How long `key` has been in the state `since` tracks, counting from now if it was not yet. */
function elapsedSince (since: Map<string, number>, key: string, now: number): number {
  const from = since.get(key)
  if (from === undefined) { since.set(key, now); return 0 }
  return now - from
}

function refKey (partition: number, generation: number): string {
  return `${partition}.${generation}`
}
