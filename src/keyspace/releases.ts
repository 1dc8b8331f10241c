/**
 * The replicas one peer lets go, for handoff.ts: a partition group held here that the table no
 * longer lists this peer for is **released**. It is `draining` while requests this peer
 * accepted for it are in flight, and while a `ready` this peer announced for it has not folded;
 * then `leaving` (an UnJoin of this peer, disseminated); then dropped. Listed again while
 * draining, the release is called off; once leaving, the leave goes on.
 *
 * @module
 */
import type { KeyspaceParts, PartitionGroups } from './context.js'
import type { PartitionRef } from './table.js'
import type { ReleasingPartition } from './handoff-progress.js'

/** What releasing needs besides the shared parts. */
export interface ReleaseComponents<K, I, O, S> extends KeyspaceParts {
  /** The partitions' groups. */
  readonly groups: PartitionGroups<K, I, O, S>
  /** Requests in flight here for a partition group. */
  readonly inFlight: (partition: number, generation: number) => number
  /** Whether a `ready` this peer announced for the group (by `refKey`) is still on its way. */
  readonly readying: (key: string) => boolean
  /** Tells the table this peer holds none of `refs`. */
  readonly abandon: (refs: PartitionRef[]) => void
  /** Asks handoff for another pass. */
  readonly schedule: () => void
  /** Timeout of a leave (the UnJoin's dissemination). */
  readonly leaveTimeoutMs: number
}

/** One partition this peer releases. */
interface Release {
  readonly partition: number
  readonly generation: number
  phase: ReleasingPartition['phase']
  readonly since: number
}

/** The releases of one peer; see the module comment. */
export class Releases<K, I, O, S> {
  private readonly releases = new Map<string, Release>()
  private readonly waiters = new Set<() => void>()
  private endedCount = 0

  constructor (private readonly c: ReleaseComponents<K, I, O, S>) {}

  /** Releases completed since start. */
  get completed (): number {
    return this.endedCount
  }

  /** Releases being carried out. */
  get size (): number {
    return this.releases.size
  }

  /** The phase of the release of `key` (a `refKey`), if one goes on. */
  phase (key: string): ReleasingPartition['phase'] | undefined {
    return this.releases.get(key)?.phase
  }

  /** Starts releasing a group (once). */
  start (partition: number, generation: number, key: string, now: number): void {
    if (!this.releases.has(key)) this.releases.set(key, { partition, generation, phase: 'draining', since: now })
  }

  /** Listed again (a move called back) before leaving: keep serving. Once leaving, leaving goes on. */
  keep (key: string): void {
    if (this.releases.get(key)?.phase === 'draining') this.releases.delete(key)
  }

  /** Calls `listener` whenever a release ends; returns the remover. */
  onEnd (listener: () => void): () => void {
    this.waiters.add(listener)
    return () => { this.waiters.delete(listener) }
  }

  /** What `stats()` shows. */
  list (now: number): ReleasingPartition[] {
    return [...this.releases.values()].map(r => ({ partition: r.partition, generation: r.generation, phase: r.phase, inFlight: this.c.inFlight(r.partition, r.generation), sinceMs: now - r.since }))
  }

  /**
   * A group being left that is no longer held here was forgotten by the peer, which learnt
   * that the others settled it without this peer: the leave is done. The release is ended now,
   * so that its end (when the UnJoin's push returns) does not drop a state taken anew meanwhile.
   */
  endForgotten (): void {
    for (const [key, r] of [...this.releases]) {
      if (r.phase !== 'leaving' || this.c.groups.get(r.partition, r.generation).held()) continue
      this.releases.delete(key)
      this.ended()
    }
  }

  /** Leaves every released group with no request in flight and no `ready` on its way. */
  progress (): void {
    const c = this.c
    for (const [key, r] of this.releases) {
      // Not while a `ready` of it is on its way either: the table may list this peer again
      // before that folds, and promote a replica that has left the group (seed 84, R 2).
      // Folded, it promoted this peer (listed again: the release is called off) or did nothing.
      if (r.phase !== 'draining' || c.inFlight(r.partition, r.generation) > 0 || c.readying(key)) continue
      r.phase = 'leaving'
      const g = c.groups.get(r.partition, r.generation)
      const leave = g.held() ? g.disassociate(c.self, { timeoutMs: c.leaveTimeoutMs }) : Promise.resolve(undefined)
      leave
        .catch(err => { c.log('leaving partition %d failed: %s', r.partition, err) })
        .finally(() => {
          if (this.releases.get(key) !== r) return // listed again meanwhile: keep it
          this.releases.delete(key)
          // Dropped unless it names this peer again (a state taken anew after the old one was
          // forgotten, or the old one readmitting it): either serves only once isReady says so.
          if (g.held() && !g.readState().projectedParticipants.includes(c.self)) {
            c.groups.drop(r.partition, r.generation)
            // Listed again, it says it holds nothing: with no owner left the table does not wait
            // for it. (This came first as the guard against a `ready` sent before leaving that
            // folded later, seed 72; `progress` now leaves only once none is on its way.)
            const a = c.table.current()?.assignments[r.partition]
            if (a?.generation === r.generation && (a.owners.includes(c.self) || a.incoming.includes(c.self))) c.abandon([[r.partition, r.generation]])
          }
          this.ended()
          c.schedule()
        })
    }
  }

  private ended (): void {
    this.endedCount++
    for (const w of [...this.waiters]) w()
  }
}
