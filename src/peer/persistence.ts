/**
 * The save-before-send gate: nothing a peer acknowledged leaves it before it is durable. Every
 * change of a group replica bumps its `version`; the flush saves every replica that is ahead
 * of what was saved in one batch, and only then sends. Answers to requests (syncs, pushes,
 * joins) are computed at once and sent only once {@link PersistenceGate.persisted} says the
 * version they show is saved. A replica that is replaced before it is saved (the peer forgot
 * the group, or rejoined) is never saved: its waits end with `false`, and each caller answers
 * for itself rather than show state that no storage holds.
 *
 * What is saved, and how, is the {@link PeerStore}'s business: the gate only decides when.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { SomeReplica } from './lifecycle.js'

/** The identity a peer saves with its groups: its cluster and private key. */
export interface PeerIdentity {
  /** The cluster's name. */
  readonly cluster: string
  /** The libp2p private key, protobuf-encoded. */
  readonly privateKey: Uint8Array
}

/**
 * One group as storage holds it: a whole encoded EventFold (single-record storage), or the
 * records a key-value store keeps (a checkpoint of the infimum, the events folded since, each
 * log, each outstanding event: see kv-peer-store.ts). Only the group's own codecs can read
 * either.
 */
export type StoredGroup =
  | { readonly kind: 'fold', readonly bytes: Uint8Array }
  | {
    readonly kind: 'records'
    /** The checkpoint: an EventFold with no events and no logs (codec kind 1). */
    readonly infimum: Uint8Array
    /** Outstanding events (codec kind 5 each). */
    readonly events: readonly Uint8Array[]
    /** Every log held, as it stands after the settled events (codec kind 6 each). */
    readonly logs: readonly Uint8Array[]
    /** Events folded since the checkpoint, as they folded (codec kind 5 each). */
    readonly settled?: readonly Uint8Array[]
    /** The infimum id and digest the settled events reach (codec kind 8); present with them. */
    readonly reached?: Uint8Array
  }

/** What a peer found in its storage. */
export interface StoredPeer extends PeerIdentity {
  /** Every group's saved state, by group id. */
  readonly groups: ReadonlyMap<string, StoredGroup>
}

/**
 * Where a peer keeps its identity and its groups. Implementations save what changed; a saved
 * batch is atomic and durable (it survives kill -9 whole or not at all).
 */
export interface PeerStore {
  /** The saved peer, or `undefined` when nothing was ever saved. */
  load(): Promise<StoredPeer | undefined>
  /**
   * Saves the identity and the current state of `replicas` (each holding a fold), and forgets
   * the groups in `dropped`, in one atomic, durable batch.
   */
  save(identity: PeerIdentity, replicas: readonly SomeReplica[], dropped: readonly string[]): Promise<void>
  /** Releases the storage. */
  close(): Promise<void>
}

/** What the gate needs. */
export interface PersistenceComponents {
  /** Where to save; none: nothing is kept, versions count as saved at once. */
  readonly store: PeerStore | undefined
  /** The identity saved with every batch. */
  readonly identity: () => PeerIdentity
  /** Asks for a flush of `replica` (or of nothing in particular), which calls {@link PersistenceGate.save}. */
  readonly schedule: (replica?: SomeReplica) => void
  /** The gate's logger. */
  readonly log: Logger
  /** Called when a save fails (the flush that asked for it sends nothing and logs why). */
  readonly failed: () => void
}

/** The save-before-send gate; see the module comment. */
export class PersistenceGate {
  private readonly waiters = new Map<SomeReplica, Array<{ version: number, resolve: (saved: boolean) => void }>>()
  private readonly dropped = new Set<string>()
  /** The peer stopped: nothing is saved any more. */
  private released = false

  constructor (private readonly components: PersistenceComponents) {}

  /** Forgets group `id` at the next save (a managed group this peer left). */
  drop (id: string): void {
    this.dropped.add(id)
    this.components.schedule()
  }

  /**
   * Saves every replica of `replicas` that changed since its last save (and the groups
   * dropped since), then marks them saved and wakes whoever waited for those versions.
   * Versions are read before the save starts: a change made while saving waits for the next.
   */
  async save (replicas: Iterable<SomeReplica>): Promise<void> {
    await this.startSave(replicas)
  }

  /**
   * {@link save}, except that when nothing has to be written (no storage, or nothing changed
   * and nothing dropped) the versions are marked saved at once and the answer is `undefined`
   * instead of a promise: the flush then sends in the same turn. An `await` of a save with
   * nothing to write costs every batch, acknowledgements included, a turn of the microtask
   * queue on the critical path of every `applyConsistent` of the cluster.
   */
  startSave (replicas: Iterable<SomeReplica>): Promise<void> | undefined {
    const changed: SomeReplica[] = []
    const versions: number[] = []
    for (const r of replicas) {
      if (r.version > r.savedVersion && r.fold !== undefined) { changed.push(r); versions.push(r.version) }
    }
    const dropped = [...this.dropped]
    this.dropped.clear()
    const store = this.components.store
    if (store === undefined || (changed.length === 0 && dropped.length === 0)) {
      this.saved(changed, versions)
      return undefined
    }
    return store.save(this.components.identity(), changed, dropped).then(
      () => { this.saved(changed, versions) },
      (err: unknown) => {
        // Dropped groups are forgotten at the next save instead; the changed replicas are
        // still ahead of what was saved, so the next flush that visits them saves them.
        for (const id of dropped) this.dropped.add(id)
        this.components.failed()
        throw err
      })
  }

  /** Marks `changed` saved up to `versions` and wakes whoever waited for them. */
  private saved (changed: readonly SomeReplica[], versions: readonly number[]): void {
    changed.forEach((r, i) => { if (versions[i]! > r.savedVersion) r.savedVersion = versions[i]! })
    for (const r of changed) this.wake(r)
  }

  /**
   * Resolves with `true` once `replica` is saved up to `version` (at once if it is), or with
   * `false` once it never will be: the replica was replaced ({@link abandon}) or the peer stops
   * ({@link releaseAll}).
   */
  async persisted (replica: SomeReplica, version: number = replica.version): Promise<boolean> {
    if (replica.savedVersion >= version) return true
    if (this.released) return false
    return await new Promise<boolean>(resolve => {
      let list = this.waiters.get(replica)
      if (list === undefined) { list = []; this.waiters.set(replica, list) }
      list.push({ version, resolve })
      this.components.schedule(replica)
    })
  }

  /** Whether a dropped group is still to be forgotten. */
  owesDrop (): boolean {
    return this.dropped.size > 0
  }

  private wake (replica: SomeReplica): void {
    const list = this.waiters.get(replica)
    if (list === undefined) return
    const keep = list.filter(w => w.version > replica.savedVersion)
    for (const w of list) if (w.version <= replica.savedVersion) w.resolve(true)
    if (keep.length === 0) this.waiters.delete(replica)
    else this.waiters.set(replica, keep)
  }

  /**
   * Ends the waits on `replica` with `false`: it was replaced (its group forgotten, or the peer
   * rejoined), so the flush will never save it. Without this, a push merged into it would
   * never be answered, and its sender would wait out its timeout.
   */
  abandon (replica: SomeReplica): void {
    const list = this.waiters.get(replica)
    if (list === undefined) return
    this.waiters.delete(replica)
    for (const w of list) w.resolve(false)
  }

  /** Ends every wait still unsaved with `false` (the peer stops; nothing more is saved). */
  releaseAll (): void {
    this.released = true
    for (const list of this.waiters.values()) for (const w of list) w.resolve(false)
    this.waiters.clear()
  }
}
