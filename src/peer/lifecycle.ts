/**
 * The lifecycle of one peer as a tagged union, and the *incarnation*: everything that belongs
 * to one membership of this peer in the cluster (the replicas of its groups, the epoch that
 * fences answers to requests made in an older membership, the joins it has seen). A rejoin
 * builds a new incarnation and swaps it in whole, instead of resetting fields one by one.
 *
 * Phases:
 * - `starting`: no fold yet (founding, joining or recovering).
 * - `member`: a participant, as far as this peer knows.
 * - `ejected`: it learnt that it was ejected; it keeps its last incarnation (read-only, its
 *   state stays readable) while it asks to be admitted again. `sponsors` are participants that
 *   refused it as a non-participant: who can admit it.
 * - `leaving`: `stop()` is telling the others it leaves.
 * - `stopped`: nothing more happens.
 *
 * @module
 */
import type { EventFold } from '../eventfold/event-fold.js'
import type { Participant } from '../eventfold/types.js'
import type { GroupReplica } from './group/replica.js'

/**
 * A replica of any group. The peer keeps replicas of different event types in one map; each
 * group's typed handle recovers its own types (the group id determines them).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SomeReplica = GroupReplica<any, any, any>

/** One membership of this peer: see the module comment. */
export interface Incarnation {
  /** Increases with every incarnation: answers to requests of an older one are dropped. */
  readonly epoch: number
  /** The replicas of the groups this peer takes part in (or waits to), by group id. */
  readonly groups: Map<string, SomeReplica>
  /** Outstanding Joins already seen: each vouches once that its peer was alive. */
  seenJoins: Set<string>
  /** Peers known to have merged this peer's latest Join: all of them once it folded. */
  joinWitnesses: ReadonlySet<Participant> | 'all'
  /**
   * What this peer held in earlier admissions of the groups defined `keepAcrossRejoin`, or
   * held before it forgot its replica, by group id (the newest fold of each), until their
   * service lets them go.
   */
  readonly former: Map<string, EventFold<unknown, unknown, unknown>>
}

/** The phases of a peer; see the module comment. */
export type Phase =
  | { readonly kind: 'starting' }
  | { readonly kind: 'member', readonly incarnation: Incarnation }
  | { readonly kind: 'ejected', readonly incarnation: Incarnation, readonly sponsors: Set<Participant>, readonly reason: string }
  | { readonly kind: 'leaving', readonly incarnation: Incarnation }
  | { readonly kind: 'stopped' }

/** Holds the current phase; every part reads it, the peer and membership change it. */
export class Lifecycle {
  private current: Phase = { kind: 'starting' }
  private epochs = 0
  private readonly stopListeners = new Set<() => void>()

  /** The current phase. */
  get phase (): Phase {
    return this.current
  }

  /** The current incarnation, in every phase that has one. */
  get incarnation (): Incarnation | undefined {
    const p = this.current
    return p.kind === 'member' || p.kind === 'ejected' || p.kind === 'leaving' ? p.incarnation : undefined
  }

  /** Whether the peer has stopped. */
  get stopped (): boolean {
    return this.current.kind === 'stopped'
  }

  /** A new, empty incarnation (not yet current). */
  newIncarnation (): Incarnation {
    return { epoch: ++this.epochs, groups: new Map(), seenJoins: new Set(), joinWitnesses: new Set(), former: new Map() }
  }

  /** This peer is a participant with `incarnation` (founded, joined, recovered or rejoined). */
  becomeMember (incarnation: Incarnation): void {
    if (this.current.kind === 'stopped') return
    this.current = { kind: 'member', incarnation }
  }

  /** This peer learnt it was ejected; returns false if that changes nothing (already out, leaving, stopped). */
  becomeEjected (reason: string, sponsors: Iterable<Participant> = []): boolean {
    const p = this.current
    if (p.kind !== 'member') return false
    this.current = { kind: 'ejected', incarnation: p.incarnation, sponsors: new Set(sponsors), reason }
    return true
  }

  /** Adds a participant that can admit this peer again (only while ejected). */
  addSponsor (peer: Participant): void {
    if (this.current.kind === 'ejected') this.current.sponsors.add(peer)
  }

  /** `stop()` started telling the others this peer leaves. */
  beginLeaving (): void {
    const p = this.current
    if (p.kind === 'member') this.current = { kind: 'leaving', incarnation: p.incarnation }
  }

  /** Everything stops; listeners registered with {@link onStop} run once. */
  stop (): void {
    if (this.current.kind === 'stopped') return
    this.current = { kind: 'stopped' }
    for (const f of [...this.stopListeners]) f()
    this.stopListeners.clear()
  }

  /** Runs `f` when the peer stops; returns the function that unregisters it. */
  onStop (f: () => void): () => void {
    this.stopListeners.add(f)
    return () => { this.stopListeners.delete(f) }
  }
}
