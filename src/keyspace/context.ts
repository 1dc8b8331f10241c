/**
 * What the keyspace's parts (serving, routing, handoff, search) share on one peer: a view of
 * the ownership table's settled state, with waiting for a condition on it, and the handles of
 * the partitions' data groups, defined as the table names them. Reading the table goes through
 * the group's own subscription, so a request reads a cached table instead of rebuilding the
 * group's state on every call.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { Participant } from '../eventfold/types.js'
import type { PeerClock } from '../peer/clock.js'
import type { Group } from '../peer/group/groups.js'
import type { ServiceGroups } from '../peer/services.js'
import { AbortError, TimeoutError } from '../transport/errors.js'
import { StoppedError } from '../peer/errors.js'
import type { FoldCodecs } from '../codec/eventfold.js'
import type { EventSpec } from '../eventfold/types.js'
import type { KeyspaceTable, TableEvent, TableOutput } from './table.js'
import type { PartitionBatch, PartitionOutputs, PartitionState } from './partition-state.js'

/** The table's group as the keyspace uses it. */
export type TableGroup = Group<TableEvent, KeyspaceTable, TableOutput>

/** The settled table of this peer, cached, with waiting; see the module comment. */
export class TableView {
  private latest: KeyspaceTable | undefined
  private readonly listeners = new Set<(table: KeyspaceTable) => void>()
  private unsubscribe: (() => void) | undefined

  constructor (readonly group: TableGroup, private readonly clock: PeerClock) {}

  /** Starts following the group (call once the peer holds it). */
  start (): void {
    this.unsubscribe ??= this.group.subscribe(state => { this.update(state.infimum) })
    this.refresh()
  }

  /** Stops following the group; waiters are released by their own timers. */
  stop (): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }

  /** Re-reads the group (after a rejoin, or before the first notification). */
  refresh (): void {
    if (this.group.held()) this.update(this.group.readState().infimum)
  }

  private update (table: KeyspaceTable): void {
    if (table === this.latest) return
    this.latest = table
    for (const l of [...this.listeners]) l(table)
  }

  /** The settled table, or `undefined` while this peer does not hold it. */
  current (): KeyspaceTable | undefined {
    return this.group.held() ? this.latest : undefined
  }

  /** Calls `listener` with every new settled table; returns the remover. */
  subscribe (listener: (table: KeyspaceTable) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /**
   * Resolves with the table once `predicate` holds for it; rejects with `TimeoutError` after
   * `timeoutMs`, or `AbortError`.
   */
  async until (predicate: (table: KeyspaceTable) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<KeyspaceTable> {
    const now = this.current()
    if (now !== undefined && predicate(now)) return now
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    return await new Promise<KeyspaceTable>((resolve, reject) => {
      const done = (): void => { timer.cancel(); remove(); signal?.removeEventListener('abort', onAbort) }
      const onAbort = (): void => { done(); reject(new AbortError(undefined, { cause: signal?.reason })) }
      const timer = this.clock.setTimer(timeoutMs, () => { done(); reject(new TimeoutError(`the keyspace table did not reach the state waited for within ${timeoutMs} ms`, timeoutMs)) })
      const remove = this.subscribe(table => { if (predicate(table)) { done(); resolve(table) } })
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}

/** The data group of one partition generation. */
export type PartitionGroup<K, I, O, S> = Group<PartitionBatch<K, I>, PartitionState<S>, PartitionOutputs<O>>

/** The id (below the service's prefix) of partition `p`'s group in generation `g`. */
export function partitionGroupId (partition: number, generation: number): string {
  return `p:${partition}.${generation}`
}

/** The handles of the partitions' groups, defined on first use (every peer defines them alike). */
export class PartitionGroups<K, I, O, S> {
  private readonly handles = new Map<string, PartitionGroup<K, I, O, S>>()

  constructor (
    private readonly groups: ServiceGroups,
    private readonly options: { readonly spec: EventSpec<PartitionBatch<K, I>, PartitionState<S>, PartitionOutputs<O>>, readonly codecs: FoldCodecs<PartitionBatch<K, I>, PartitionState<S>, PartitionOutputs<O>> }
  ) {}

  /** The group of partition `p` in generation `g`. */
  get (partition: number, generation: number): PartitionGroup<K, I, O, S> {
    const id = partitionGroupId(partition, generation)
    let g = this.handles.get(id)
    if (g === undefined) {
      // A replica kept across a rejoin can restore the partition if this peer was its last owner.
      g = this.groups.managed(id, { ...this.options, keepAcrossRejoin: true })
      this.handles.set(id, g)
    }
    return g
  }

  /** Creates the group's state here (a founder that was granted it), from `initial` if given. */
  found (partition: number, generation: number, initial?: { readonly state: PartitionState<S> }): void {
    this.get(partition, generation)
    this.groups.found(partitionGroupId(partition, generation), initial)
  }

  /**
   * The projected state this peer holds of the group, or held of it before it was last
   * admitted again (`ServiceGroups.formerState`): the copy a last owner restores.
   */
  copyOf (partition: number, generation: number): { readonly state: PartitionState<S> } | undefined {
    const g = this.get(partition, generation)
    if (g.held()) return { state: g.readState().projected }
    return this.groups.formerState(partitionGroupId(partition, generation)) as { readonly state: PartitionState<S> } | undefined
  }

  /**
   * The copy (see {@link copyOf}) of the newest generation of `partition` from `to` down to
   * `from` that this peer holds or held: a last owner granted a restore that it never carried
   * out (ejected before the grant folded here) holds only the copy it was to restore from,
   * which is all the data there is (nobody else can found that generation).
   */
  newestCopy (partition: number, from: number, to: number): { readonly state: PartitionState<S> } | undefined {
    const generations = new Set<number>()
    for (const d of this.defined()) if (d.partition === partition) generations.add(d.generation)
    for (const id of this.groups.formers()) {
      const m = /^p:(\d+)\.(\d+)$/.exec(id)
      if (m !== null && Number(m[1]) === partition) generations.add(Number(m[2]))
    }
    for (const g of [...generations].filter(g => g >= from && g <= to).sort((a, b) => b - a)) {
      const copy = this.copyOf(partition, g)
      if (copy !== undefined) return copy
    }
    return undefined
  }

  /** Lets go of every former copy but those `keep` wants. */
  keepFormers (keep: (partition: number, generation: number) => boolean): void {
    for (const id of this.groups.formers()) {
      const m = /^p:(\d+)\.(\d+)$/.exec(id)
      if (m === null || !keep(Number(m[1]), Number(m[2]))) this.groups.forgetFormer(id)
    }
  }

  /** Forgets the group's state here (after this peer left it). */
  drop (partition: number, generation: number): void {
    this.groups.drop(partitionGroupId(partition, generation))
  }

  /** Every group defined so far, with its partition and generation. */
  * defined (): IterableIterator<{ partition: number, generation: number, group: PartitionGroup<K, I, O, S> }> {
    for (const [id, group] of this.handles) {
      const m = /^p:(\d+)\.(\d+)$/.exec(id)!
      yield { partition: Number(m[1]), generation: Number(m[2]), group }
    }
  }
}

/**
 * Counters of one peer's keyspace, read by `stats()` and the metrics. `served` and the
 * `...Answers` fields count the owner's side (requests that reached this peer as an owner, by
 * the answer it gave); `forwarded`, `rerouted`, `failed` and `timeouts` the caller's side
 * (requests made on this peer).
 */
export interface KeyspaceCounters {
  /** Requests this peer served as an owner (past the fence, whatever their outcome). */
  served: number
  /** `ok` answers this peer gave as an owner. */
  okAnswers: number
  /** Requests this peer sent to another owner (every attempt). */
  forwarded: number
  /** `moved` answers this peer gave. */
  movedAnswers: number
  /** `unavailable` answers this peer gave (not serving yet, or the request waited past its deadline unapplied). */
  unavailableAnswers: number
  /** `timeout` answers this peer gave (applied, not settled in time: outcome unknown). */
  timeoutAnswers: number
  /** Requests this peer re-routed after a `moved` answer. */
  rerouted: number
  /** Requests made on this peer that failed (any typed error). */
  failed: number
  /** Requests whose handler threw (`handler-error` answers this peer gave as an owner). */
  handlerErrors: number
  /** Requests made on this peer that timed out with their outcome unknown (`RequestTimeoutError`). */
  timeouts: number
  /** Malformed requests refused (`bad-request` answers this peer gave as an owner). */
  badRequests: number
  /** Search pages served. */
  searchPages: number
  /** `agreed` inputs that folded here on fewer replicas than `minReplicas` (answered `timeout`: applied, outcome unknown). */
  tooFewReplicas: number
}

/** Fresh counters. */
export function newKeyspaceCounters (): KeyspaceCounters {
  return { served: 0, okAnswers: 0, forwarded: 0, movedAnswers: 0, unavailableAnswers: 0, timeoutAnswers: 0, rerouted: 0, failed: 0, handlerErrors: 0, timeouts: 0, badRequests: 0, searchPages: 0, tooFewReplicas: 0 }
}

/** What every part of the keyspace is built with. */
export interface KeyspaceParts {
  /** This peer. */
  readonly self: Participant
  /** Time. */
  readonly clock: PeerClock
  /** The service's logger. */
  readonly log: Logger
  /** The table. */
  readonly table: TableView
  /** The keyspace's counters. */
  readonly counters: KeyspaceCounters
}

/** Rejects with `StoppedError` if `stopped`. */
export function requireRunning (stopped: boolean): void {
  if (stopped) throw new StoppedError('the keyspace is stopped')
}
