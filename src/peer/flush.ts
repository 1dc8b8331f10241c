/**
 * The flush: the one place that decides what leaves the peer after its state changed (every
 * external event — a local apply, a merge, a join — mutates a group replica at once and asks
 * for a flush; the flush runs once at the end of the tick). Its invariants:
 *
 * 1. Nothing this peer acknowledged leaves it before it is persisted: the flush prepares what
 *    to send, saves every changed replica (the persistence gate), and only then sends; when
 *    there is nothing to write (no storage), it sends in the same turn, without an `await`.
 * 2. Everything applied in one tick travels in one batch per receiving peer (propagation).
 * 3. A batch goes out only when this peer has news of its own (events or memberships it made,
 *    which go to everyone; acknowledgements it gave, which go to the creators that may be
 *    waiting for them at once and to everyone else within `acknowledgeDelayMs` by default, or
 *    with `acknowledge: 'creators'` to everyone else at the anti-entropy round).
 * 4. What was computed from one incarnation never reaches the cluster once a rejoin replaced
 *    it: the flush checks the incarnation after the save and starts over if it changed.
 * 5. Subscribers of a group are told once per flush, after the save, of the latest state.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { PeerClock } from './clock.js'
import type { Incarnation, Lifecycle, SomeReplica } from './lifecycle.js'
import type { OutputForwarding } from './outputs.js'
import type { PersistenceGate } from './persistence.js'
import type { Propagation } from './propagation.js'

/** What the flush needs. */
export interface FlushComponents {
  /** Time (the flush runs deferred to the end of the tick). */
  readonly clock: PeerClock
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** The save-before-send gate. */
  readonly persistence: PersistenceGate
  /** Batches and fan-out. */
  readonly propagation: Propagation
  /** Outputs for other creators. */
  readonly outputs: OutputForwarding
  /** Tells a group's subscribers of its state. */
  readonly notify: (replica: SomeReplica) => void
  /** Membership's look at the cluster's group before anything is sent (was this peer ejected?). */
  readonly inspect: (incarnation: Incarnation) => void
  /** Counts a flush that threw. */
  readonly failed: () => void
  /** The flush's logger. */
  readonly log: Logger
}

/** Runs the flush; see the module comment. */
export class Flusher {
  private scheduled = false
  private running: Promise<void> | undefined
  /**
   * The replicas changed (or with news) since the last flush: a flush visits only these, so
   * its cost follows what changed, not how many groups the peer holds.
   */
  private readonly dirty = new Set<SomeReplica>()

  constructor (private readonly components: FlushComponents) {}

  /** Asks for a flush at the end of this tick (once, however often it is asked), of `replica` among others. */
  schedule (replica?: SomeReplica): void {
    if (replica !== undefined) this.dirty.add(replica)
    if (this.scheduled || this.components.lifecycle.stopped) return
    this.scheduled = true
    // Deferred, not a microtask: everything applied in this tick (and the I/O callbacks
    // already queued) joins the same batch.
    this.components.clock.defer(() => { void this.run() })
  }

  /** Resolves once no flush is running. */
  async idle (): Promise<void> {
    while (this.running !== undefined) await this.running
  }

  /** Runs a flush now, after any running one, and resolves once it is done (a stopping peer's last). */
  async flushNow (): Promise<void> {
    await this.idle()
    await this.run()
  }

  private async run (): Promise<void> {
    this.scheduled = false
    if (this.running !== undefined) {
      await this.running
      this.schedule()
      return
    }
    this.running = this.flush().catch(err => {
      this.components.failed()
      this.components.log.error('flush failed: %s', err)
    }).finally(() => { this.running = undefined })
    await this.running
  }

  private async flush (): Promise<void> {
    const c = this.components
    let incarnation = c.lifecycle.incarnation
    if (incarnation === undefined) return
    c.inspect(incarnation)
    incarnation = c.lifecycle.incarnation
    if (incarnation === undefined) return
    // Only the replicas of the current incarnation: an older one's changes never leave, and
    // one replaced (a forgotten group, an older incarnation) is never saved: its waits end.
    const replicas: SomeReplica[] = []
    for (const r of this.dirty) {
      if (incarnation.groups.get(r.id) === r) replicas.push(r)
      else c.persistence.abandon(r)
    }
    this.dirty.clear()
    const phase = c.lifecycle.phase.kind
    // A leaving peer's UnJoins travel in its pushes, which wait for their merge: a batch sent
    // ahead would make every receiver refuse those pushes (the sender is no longer a participant).
    const batches = phase === 'member' ? c.propagation.prepare(replicas) : clearNews(replicas)
    const owed = c.outputs.take(replicas)
    const versions = new Map<SomeReplica, number>()
    for (const r of replicas) versions.set(r, r.version)
    const saving = c.persistence.startSave(replicas)
    // Nothing to write (no storage, nothing changed): send in this turn, not one await later.
    if (saving !== undefined) await saving
    if (c.lifecycle.stopped) return
    if (c.lifecycle.incarnation !== incarnation) { for (const r of replicas) this.dirty.add(r); this.schedule(); return }
    if (batches !== undefined) c.propagation.send(batches)
    c.outputs.send(owed)
    for (const [r, version] of versions) {
      if (r.notifiedVersion < version && r.fold !== undefined) {
        r.notifiedVersion = version
        c.notify(r)
      }
    }
    // What changed meanwhile marked itself dirty again.
    if (this.dirty.size > 0 || c.persistence.owesDrop()) this.schedule()
  }
}

function clearNews (replicas: readonly SomeReplica[]): undefined {
  for (const r of replicas) r.clearNews()
  return undefined
}
