/**
 * Gap-free watches: each watcher keeps the sequence number of the last registry change it was
 * told, and on every change of the settled state is told the journal's later changes that
 * concern it, in fold order. When the journal no longer reaches back to its position (its peer
 * folded more changes at once than the journal keeps, or it adopted a whole state), it is told
 * a fresh snapshot marked `reset` instead. A listener that throws is logged and kept.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { EventId } from '../eventfold/types.js'
import type { ChangeRecord, RegistryState } from './registry-spec.js'

/** One watcher: what it wants, where it is, and how to tell it. */
interface Watcher {
  readonly name: string
  seq: number
  readonly snapshot: (state: RegistryState, asOf: EventId, reset: boolean) => void
  readonly change: (change: ChangeRecord) => void
}

/** The watchers of one peer's registry; see the module comment. */
export class Watchers {
  private readonly watchers = new Set<Watcher>()

  constructor (private readonly log: Logger) {}

  /**
   * Adds a watcher of `name` at `state` (settled, as of `asOf`): it is told a snapshot first
   * (on the next turn, so not before this returns), then every later change.
   */
  add (name: string, state: RegistryState | undefined, asOf: EventId, snapshot: Watcher['snapshot'], change: Watcher['change'], wanted: (c: ChangeRecord) => boolean): () => void {
    const watcher: Watcher = {
      name,
      seq: state?.changes ?? -1,
      snapshot: (s, id, reset) => { this.safely(() => { snapshot(s, id, reset) }) },
      change: (c) => { if (wanted(c)) this.safely(() => { change(c) }) }
    }
    this.watchers.add(watcher)
    if (state !== undefined) queueMicrotask(() => { if (this.watchers.has(watcher)) watcher.snapshot(state, asOf, false) })
    return () => { this.watchers.delete(watcher) }
  }

  /** Tells every watcher what changed up to `state` (settled, as of `asOf`). */
  publish (state: RegistryState, asOf: EventId): void {
    for (const w of [...this.watchers]) {
      if (!this.watchers.has(w) || w.seq === state.changes) continue
      const first = state.journal[0]
      const reachable = w.seq >= 0 && w.seq <= state.changes && (state.changes === w.seq || (first !== undefined && first.seq <= w.seq + 1))
      if (!reachable) {
        const first = w.seq < 0 // added before this peer held the registry
        w.seq = state.changes
        w.snapshot(state, asOf, !first)
        continue
      }
      for (const c of state.journal) {
        if (c.seq <= w.seq) continue
        w.seq = c.seq
        w.change(c)
        if (!this.watchers.has(w)) break
      }
    }
  }

  /** Forgets every watcher (the service stops). */
  clear (): void {
    this.watchers.clear()
  }

  private safely (f: () => void): void {
    try { f() } catch (err) { this.log.error('a registry watcher threw: %s', err) }
  }
}
