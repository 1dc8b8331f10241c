/**
 * The groups of a peer: every group definition (long-lived, like the services that define
 * them), the handle each definition is used through, and how replicas of the current
 * incarnation are made: founded, adopted from a snapshot (a sponsor's answer, storage, a
 * member's push), or waiting for their state. The handle of a group reads and writes the
 * replica of the *current* incarnation, so a rejoin (which replaces every replica) is
 * invisible to the code holding the handle, except that pending `applyConsistent` calls
 * reject with `EjectedError`.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { DecodeLimits } from '../../codec/codec.js'
import { decodeEventFold, decodeStoredEvent, decodeStoredLog, decodeStoredReach, peekVersion, FORMAT_VERSION, type FoldCodecs } from '../../codec/eventfold.js'
import { decodeLegacyEventFold, migrateEventFold } from '../../codec/legacy.js'
import { LegacyFoldError } from '../../codec/errors.js'
import { jsonCodec } from '../../codec/json.js'
import { compareEventIds, type EventFoldOptions, type EventFoldSnapshot, type EventSpec, type Participant } from '../../eventfold/types.js'
import type { PeerClock } from '../clock.js'
import { EjectedError, GroupNotReadyError, StoppedError, UnknownGroupError } from '../errors.js'
import type { Incarnation, Lifecycle, SomeReplica } from '../lifecycle.js'
import type { StoredGroup } from '../persistence.js'
import type { ClusterState, Dissemination, LegionCounters, WaitOptions } from '../options.js'
import { CLUSTER_GROUP, checkGroupId, groupOrigin, type GroupDefinition, type GroupMembership } from './definition.js'
import { GroupReplica, type Recovered, type ReplicaSettings } from './replica.js'
import { StateChanges } from './state-changes.js'

/** How a service defines a group. */
export interface GroupOptions<E, S, O> {
  /** What the group's events do. */
  readonly spec: EventSpec<E, S, O>
  /**
   * How the group's events, states and outputs travel and persist.
   * @default jsonCodec for all three (only sound for JSON values)
   */
  readonly codecs?: FoldCodecs<E, S, O>
  /**
   * Send this peer's acknowledgements of the group's events to every participant at once,
   * whatever `propagation.acknowledgeDelayMs` says. For groups whose settled state other
   * peers read as soon as it changes (a registry, a placement table), where events are few
   * and every replica settling within a round trip matters more than the frames saved.
   * @default false
   */
  readonly acknowledgeAtOnce?: boolean
  /**
   * Managed groups only: when this peer is admitted again after an ejection (which replaces
   * every replica it held), or forgets its replica (it left the group, or learnt that the group
   * settled without it), keep what it held of the group, readable with
   * `ServiceGroups.formerState` until the service lets it go. For a service that may found a
   * successor of the group from that copy: the keyspace restores a partition whose every
   * serving replica left the cluster from the copy of the last of them.
   * @default false
   */
  readonly keepAcrossRejoin?: boolean
}

/** Who takes part in a group, as one peer sees it ({@link Group.participants}). */
export interface GroupParticipants {
  /** The infimum's participants: every event settled so far was acknowledged by (or for) them. */
  readonly settled: readonly Participant[]
  /** The participants after every outstanding Join and UnJoin. */
  readonly projected: readonly Participant[]
}

/**
 * One replicated group, as a service uses it. Reads and writes go to this peer's replica; a
 * group this peer does not hold (yet) throws {@link GroupNotReadyError}.
 */
export interface Group<E, S, O> {
  /** The group's id. */
  readonly id: string
  /** Who decides its participants. */
  readonly membership: GroupMembership
  /** Whether this peer holds the group's state now. */
  held(): boolean
  /** Resolves once this peer holds the group's state. */
  whenHeld(options?: WaitOptions): Promise<void>
  /** Applies an event on the projection; see `Legion.applyFast`. */
  applyFast(event: E): O
  /** Applies an event and resolves with its output once it folded; see `Legion.applyConsistent`. */
  applyConsistent(event: E, options?: WaitOptions): Promise<O>
  /** The group's state as this peer sees it. */
  readState(): ClusterState<S>
  /**
   * Who takes part as this peer sees it, as in {@link readState} (`settled`: the infimum's
   * participants; `projected`: after every outstanding Join and UnJoin), without the state,
   * which `readState` first brings up to date.
   */
  participants(): GroupParticipants
  /** Calls `listener` after every batch of changes; returns the unsubscribe function. */
  subscribe(listener: (state: ClusterState<S>) => void): () => void
  /** Every change, as an async iterator (the latest state; ends when the peer stops or `signal` fires). */
  changes(options?: { signal?: AbortSignal }): AsyncIterableIterator<ClusterState<S>>
  /**
   * Managed groups: adds `peer` as a participant (a Join) and gives it the group's whole fold;
   * resolves once `peer` merged it (`reached`) or could not be reached in time. A peer the
   * cluster does not list as a participant (it is leaving, or has left) is not added: it is
   * `unreachable` at once.
   */
  participate(peer: Participant, options?: WaitOptions): Promise<Dissemination>
  /** Managed groups: removes `peer` (an UnJoin, standing in for its acknowledgements). */
  disassociate(peer: Participant, options?: WaitOptions): Promise<Dissemination>
}

/** What the registry needs. */
export interface GroupsComponents {
  /** The cluster's name. */
  readonly cluster: string
  /** This peer. */
  readonly self: () => Participant
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Time. */
  readonly clock: PeerClock
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Message limits. */
  readonly limits: DecodeLimits
  /** Signing and freezing of this peer's folds of a group. */
  readonly foldOptions: <E, S, O>(definition: GroupDefinition<E, S, O>) => EventFoldOptions<E, O>
  /** Asks for a flush of `replica` (or of nothing in particular). */
  readonly schedule: (replica?: SomeReplica) => void
  /**
   * The logger of groups (one for all: a logger costs about 4 KB, which 1,000 idle groups
   * would pay twice each).
   */
  readonly log: Logger
  /** Adds or removes a participant of a managed group and disseminates it. */
  readonly membershipChange: (replica: SomeReplica, kind: 'join' | 'unjoin', peer: Participant, options: WaitOptions) => Promise<Dissemination>
  /** Records how long an `applyConsistent` took, in milliseconds, and how it ended (an error's name, or `undefined` once folded). */
  readonly consistentTook?: (ms: number, failure: string | undefined) => void
}

/** Every group of a peer; see the module comment. */
export class GroupRegistry {
  private readonly definitions = new Map<string, GroupDefinition<unknown, unknown, unknown>>()
  private readonly handles = new Map<string, GroupHandle<unknown, unknown, unknown>>()
  /** Saved groups not defined (yet): a service defines its managed groups when it starts. */
  private readonly stored = new Map<string, StoredGroup>()

  constructor (private readonly components: GroupsComponents, private readonly settings: ReplicaSettings) {}

  /** Defines a group (every peer defines the same groups alike) and returns its handle. */
  define<E, S, O> (id: string, membership: GroupMembership, options: GroupOptions<E, S, O>): Group<E, S, O> {
    if (id !== CLUSTER_GROUP) checkGroupId(id)
    if (this.definitions.has(id)) throw new TypeError(`group ${JSON.stringify(id)} is defined already`)
    const spec = options.spec as Partial<EventSpec<E, S, O>> | undefined
    if (typeof spec?.init !== 'function' || typeof spec.apply !== 'function') throw new TypeError(`group ${JSON.stringify(id)}: spec must be an EventSpec { init, apply }`)
    if (options.acknowledgeAtOnce !== undefined && typeof options.acknowledgeAtOnce !== 'boolean') throw new TypeError(`group ${JSON.stringify(id)}: acknowledgeAtOnce must be a boolean`)
    if (options.keepAcrossRejoin !== undefined && typeof options.keepAcrossRejoin !== 'boolean') throw new TypeError(`group ${JSON.stringify(id)}: keepAcrossRejoin must be a boolean`)
    const definition: GroupDefinition<E, S, O> = {
      id,
      origin: groupOrigin(this.components.cluster, id),
      spec: options.spec,
      codecs: options.codecs ?? ({ event: jsonCodec, state: jsonCodec, output: jsonCodec } as unknown as FoldCodecs<E, S, O>),
      membership,
      acknowledgeAtOnce: options.acknowledgeAtOnce ?? false,
      keepAcrossRejoin: membership === 'managed' && options.keepAcrossRejoin === true
    }
    this.definitions.set(id, definition as GroupDefinition<unknown, unknown, unknown>)
    const handle = new GroupHandle<E, S, O>(definition, this.components)
    this.handles.set(id, handle as GroupHandle<unknown, unknown, unknown>)
    return handle
  }

  /** The definition of group `id`, if any. */
  definition (id: string): GroupDefinition<unknown, unknown, unknown> | undefined {
    return this.definitions.get(id)
  }

  /** Every definition. */
  all (): Array<GroupDefinition<unknown, unknown, unknown>> {
    return [...this.definitions.values()]
  }

  /** The handle of group `id`. */
  handle (id: string): Group<unknown, unknown, unknown> | undefined {
    return this.handles.get(id)
  }

  /** Tells the subscribers of a replica's group of its state. */
  notify (replica: SomeReplica): void {
    this.handles.get(replica.id)?.notify(replica)
  }

  /** Ends every subscription (the peer stops). */
  closeAll (): void {
    for (const h of this.handles.values()) h.close()
  }

  /** A new replica of `definition` whose only participant is this peer. */
  found (definition: GroupDefinition<unknown, unknown, unknown>, initial?: { readonly state: unknown }): SomeReplica {
    return GroupReplica.founded(definition, this.replicaComponents(definition.id), this.settings, initial)
  }

  /** A replica waiting for its state (a managed group this peer was, or will be, added to). */
  waiting (definition: GroupDefinition<unknown, unknown, unknown>): SomeReplica {
    return new GroupReplica(definition, this.replicaComponents(definition.id), this.settings)
  }

  /**
   * A replica of `definition` from an encoded fold (a sponsor's answer), acknowledged by this peer.
   * @throws DecodeError when the bytes are not a fold of this group
   */
  fromBytes (definition: GroupDefinition<unknown, unknown, unknown>, bytes: Uint8Array, previousCounter = 0): SomeReplica {
    const snapshot = decodeEventFold(bytes, definition.codecs, this.components.limits)
    if (snapshot.origin !== definition.origin) throw new TypeError(`the fold is of origin ${JSON.stringify(snapshot.origin)}, not group ${JSON.stringify(definition.id)}`)
    return GroupReplica.fromSnapshot(definition, this.replicaComponents(definition.id), this.settings, snapshot, previousCounter)
  }

  /**
   * A replica of `definition` from what this peer's storage holds of it, acknowledged by this
   * peer, which goes on writing its own log. A fold stored in format 4 or 5 is migrated when
   * nothing was outstanding in it.
   * @throws DecodeError (or TypeError) when the stored bytes are not a fold of this group;
   * LegacyFoldError for a fold of format 4 or 5 with outstanding events or settled records;
   * StorageCorruptError when the settled records do not reach the infimum saved with them
   */
  fromStored (definition: GroupDefinition<unknown, unknown, unknown>, stored: StoredGroup): SomeReplica {
    const limits = this.components.limits
    let snapshot: EventFoldSnapshot<unknown, unknown, unknown>
    let recovered: Recovered<unknown, unknown> = {}
    if (stored.kind === 'fold') {
      snapshot = migrateEventFold(stored.bytes, definition.codecs, limits)
    } else if (peekVersion(stored.infimum) !== FORMAT_VERSION) {
      // Format 4 or 5 kept each outstanding event in a record of its own.
      const legacy = decodeLegacyEventFold(stored.infimum, definition.codecs, limits)
      // So did the settled records of format 5 (an Error there lacks the event format 6 folds again).
      const settled = stored.settled?.length ?? 0
      if (stored.events.length > 0 || settled > 0) throw new LegacyFoldError(peekVersion(stored.infimum), stored.events.length, settled)
      snapshot = { origin: legacy.origin, infimum: legacy.infimum, logs: [], events: [] }
    } else {
      const base = decodeEventFold(stored.infimum, definition.codecs, limits)
      const events = stored.events.map(bytes => decodeStoredEvent(bytes, definition.codecs, limits)).sort((a, b) => compareEventIds(a.id, b.id))
      const logs = stored.logs.map(bytes => decodeStoredLog(bytes, limits))
      logs.sort((a, b) => a.participant < b.participant ? -1 : a.participant > b.participant ? 1 : a.since - b.since)
      snapshot = { ...base, logs, events }
      if (stored.reached !== undefined) {
        const settled = (stored.settled ?? []).map(bytes => decodeStoredEvent(bytes, definition.codecs, limits))
        recovered = { settled: { events: settled, reached: decodeStoredReach(stored.reached, limits) } }
      }
    }
    if (snapshot.origin !== definition.origin) throw new TypeError(`the stored group is of origin ${JSON.stringify(snapshot.origin)}, not group ${JSON.stringify(definition.id)}`)
    return GroupReplica.fromSnapshot(definition, this.replicaComponents(definition.id), this.settings, snapshot, 0, recovered)
  }

  /** Keeps saved groups that are not defined yet, for when they are. */
  keepStored (groups: ReadonlyMap<string, StoredGroup>): void {
    for (const [id, group] of groups) if (!this.definitions.has(id)) this.stored.set(id, group)
  }

  /** Takes the saved state of group `id`, if one was kept. */
  takeStored (id: string): StoredGroup | undefined {
    const group = this.stored.get(id)
    this.stored.delete(id)
    return group
  }

  private replicaComponents (id: string): ConstructorParameters<typeof GroupReplica>[1] {
    const c = this.components
    return {
      self: c.self(),
      clock: c.clock,
      counters: c.counters,
      foldOptions: c.foldOptions,
      log: c.log,
      changed: (replica) => { c.schedule(replica) },
      limits: c.limits
    }
  }
}

/** The handle of one group; see {@link Group}. */
class GroupHandle<E, S, O> implements Group<E, S, O> {
  private readonly changesOf: StateChanges<S>

  constructor (private readonly definition: GroupDefinition<E, S, O>, private readonly components: GroupsComponents) {
    this.changesOf = new StateChanges<S>(components.lifecycle, components.clock, components.log, definition.id)
  }

  get id (): string {
    return this.definition.id
  }

  get membership (): GroupMembership {
    return this.definition.membership
  }

  private replica (): GroupReplica<E, S, O> | undefined {
    return this.components.lifecycle.incarnation?.groups.get(this.definition.id) as GroupReplica<E, S, O> | undefined
  }

  held (): boolean {
    return this.replica()?.fold !== undefined
  }

  async whenHeld (options: WaitOptions = {}): Promise<void> {
    if (this.held()) return
    await this.changesOf.until(() => this.held(), this.definition.id, options)
  }

  /** The replica and its fold, for reading: refused when stopped or not held. */
  private readable (): [GroupReplica<E, S, O>, NonNullable<GroupReplica<E, S, O>['fold']>] {
    if (this.components.lifecycle.stopped) throw new StoppedError()
    const replica = this.replica()
    const fold = replica?.fold
    if (replica === undefined || fold === undefined) throw new GroupNotReadyError(this.definition.id)
    return [replica, fold]
  }

  /** The replica and its fold, for changes that must reach the cluster: refused while ejected. */
  private writable (): [GroupReplica<E, S, O>, NonNullable<GroupReplica<E, S, O>['fold']>] {
    const held = this.readable()
    if (this.components.lifecycle.phase.kind === 'ejected') throw new EjectedError()
    return held
  }

  applyFast (event: E): O {
    const [replica, fold] = this.writable()
    return replica.applyFast(fold, event)
  }

  async applyConsistent (event: E, options?: WaitOptions): Promise<O> {
    const [replica, fold] = this.writable()
    const { clock, consistentTook } = this.components
    const began = clock.now()
    try {
      const output = await replica.applyConsistent(fold, event, options)
      consistentTook?.(clock.now() - began, undefined)
      return output
    } catch (err) {
      consistentTook?.(clock.now() - began, err instanceof Error ? err.name : 'Error')
      throw err
    }
  }

  readState (): ClusterState<S> {
    const [replica, fold] = this.readable()
    return replica.readState(fold)
  }

  participants (): GroupParticipants {
    const [, fold] = this.readable()
    return { settled: fold.infimumParticipants(), projected: fold.projectedParticipants() }
  }

  subscribe (listener: (state: ClusterState<S>) => void): () => void {
    return this.changesOf.subscribe(listener)
  }

  changes (options: { signal?: AbortSignal } = {}): AsyncIterableIterator<ClusterState<S>> {
    return this.changesOf.iterate(options)
  }

  async participate (peer: Participant, options: WaitOptions = {}): Promise<Dissemination> {
    return await this.change('join', peer, options)
  }

  async disassociate (peer: Participant, options: WaitOptions = {}): Promise<Dissemination> {
    return await this.change('unjoin', peer, options)
  }

  private async change (kind: 'join' | 'unjoin', peer: Participant, options: WaitOptions): Promise<Dissemination> {
    if (this.definition.membership !== 'managed') throw new TypeError(`group ${JSON.stringify(this.definition.id)} follows the cluster's membership: its participants cannot be changed directly`)
    if (typeof peer !== 'string' || peer === '') throw new TypeError('peer must be a peer id string')
    const [replica] = this.writable()
    return await this.components.membershipChange(replica, kind, peer, options)
  }

  notify (replica: SomeReplica): void {
    const fold = replica.fold
    if (fold === undefined || !this.changesOf.watched()) return
    this.changesOf.publish((replica as GroupReplica<E, S, O>).readState(fold))
  }

  close (): void {
    this.changesOf.close()
  }
}

/** Every replica of `incarnation` (an iteration helper for parts that walk all groups). */
export function replicasOf (incarnation: Incarnation | undefined): SomeReplica[] {
  return incarnation === undefined ? [] : [...incarnation.groups.values()]
}

/** Thrown by {@link GroupRegistry} lookups of groups that were never defined. */
export { UnknownGroupError }
