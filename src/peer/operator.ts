/**
 * What an operator may see of, and do to, one peer: the `operator` component a service such as
 * the admin endpoint asks for (its phase, stats, groups, the cluster's own fold, ejecting,
 * leaving), and the `views` component through which every layer contributes read-only views
 * of its own state (the keyspace its owners and handoffs, the registry its holders) for the
 * admin endpoint and the status page to show. Both are thin: they read the parts and delegate
 * to them, and add no policy (readiness, plans and routes are the admin layer's).
 *
 * @module
 */
import type { EventSpec, EventId, Participant } from '../eventfold/types.js'
import type { GroupMembership } from './group/definition.js'
import type { Lifecycle } from './lifecycle.js'
import type { ClusterState, Dissemination, LegionStats, WaitOptions } from './options.js'
import type { Parts } from './parts.js'

/** Where a peer is in its life (see `lifecycle.ts`): only `member` can answer everything. */
export type PeerPhase = 'starting' | 'member' | 'ejected' | 'leaving' | 'stopped'

/** One replicated group as this peer holds it (or waits for it). */
export interface GroupSummary {
  /** The group's id (`""` for the cluster's own). */
  readonly id: string
  /** Who decides its participants. */
  readonly membership: GroupMembership
  /** Whether this peer holds the group's state. */
  readonly held: boolean
  /** Its settled participants (empty when not held). */
  readonly participants: readonly Participant[]
  /** Events not yet folded. */
  readonly outstanding: number
  /** The id of the last folded event. */
  readonly infimumId: EventId | undefined
  /** Folding is blocked at an event that failed here and not (yet) everywhere. */
  readonly blocked: boolean
}

/** See the module comment. Throws `StoppedError` once the peer stopped, where the handle would. */
export interface OperatorControl {
  /** Where the peer is now. */
  phase(): PeerPhase
  /** Where other peers reach this one. */
  multiaddrs(): string[]
  /** As `Legion.stats()`: throws until the peer is a participant. */
  stats(): LegionStats
  /** Every group defined here, the cluster's own first. */
  groups(): GroupSummary[]
  /** The cluster's own state, as `Legion.readState()`. */
  clusterState(): ClusterState<unknown>
  /** The spec of the cluster's own state (to recognise a built-in one and plan with its functions). */
  readonly clusterSpec: EventSpec<unknown, unknown, unknown>
  /** `applyConsistent` of an event of the cluster's own state. */
  applyToCluster(event: unknown, options?: WaitOptions): Promise<unknown>
  /** As `Legion.eject()`. */
  eject(peer: Participant, options?: WaitOptions): Promise<Dissemination>
  /** Stops the peer and leaves the cluster, as `Legion.stop()`. */
  leave(options?: { timeoutMs?: number }): Promise<void>
}

/** A read-only view a layer offers operators: plain JSON data, read on demand. */
export interface OperatorView {
  /** A heading for people (the status page shows it). */
  readonly title: string
  /**
   * Reads the view now. Plain JSON data (objects, arrays, strings, finite numbers, booleans,
   * `null`); an array of flat objects shows as a table on the status page. Called for every
   * request: keep it cheap. A throw answers 500 for this view alone.
   */
  read(): unknown
}

/** The views of a peer; a service's are named `<service>/<name>`. */
export interface OperatorViews {
  /** Offers a view under `<service>/<name>`; returns the function that withdraws it. */
  add(name: string, view: OperatorView): () => void
  /** Every view of the peer (every service's), by full name, in the order they were added. */
  all(): ReadonlyMap<string, OperatorView>
}

const VIEW_NAME = /^[a-z][a-z0-9-]{0,31}$/

/** The `views` component of service `service` over the peer's registry of views (one map per peer). */
export function scopedViews (registry: Map<string, OperatorView>, service: string): OperatorViews {
  return {
    add: (name, view) => {
      if (typeof name !== 'string' || !VIEW_NAME.test(name)) throw new TypeError(`a view name must match ${String(VIEW_NAME)}, got ${JSON.stringify(name)}`)
      if (typeof view?.read !== 'function' || typeof view.title !== 'string') throw new TypeError('a view is { title: string, read(): unknown }')
      const full = `${service}/${name}`
      if (registry.has(full)) throw new TypeError(`view ${full} exists already`)
      registry.set(full, view)
      return () => { if (registry.get(full) === view) registry.delete(full) }
    },
    all: () => registry
  }
}

/** What the operator component is built from. */
export interface OperatorInputs {
  readonly lifecycle: Lifecycle
  readonly parts: Parts
  readonly multiaddrs: () => string[]
  readonly stats: () => LegionStats
  readonly clusterSpec: EventSpec<unknown, unknown, unknown>
  readonly eject: (peer: Participant, options?: WaitOptions) => Promise<Dissemination>
  readonly stop: (options: { leave: boolean, timeoutMs?: number }) => Promise<void>
}

/** The `operator` component of a peer. */
export function operatorControl (inputs: OperatorInputs): OperatorControl {
  const { lifecycle, parts } = inputs
  const cluster = (): ReturnType<Parts['groups']['handle']> & object => parts.groups.handle('')!
  return {
    phase: () => lifecycle.phase.kind,
    multiaddrs: inputs.multiaddrs,
    stats: inputs.stats,
    groups: () => {
      const incarnation = lifecycle.incarnation
      return parts.groups.all().map(d => {
        const fold = incarnation?.groups.get(d.id)?.fold
        return {
          id: d.id,
          membership: d.membership,
          held: fold !== undefined,
          participants: fold?.infimumParticipants() ?? [],
          outstanding: fold?.outstandingCount ?? 0,
          infimumId: fold?.infimumId(),
          blocked: fold?.isBlockedOnError() ?? false
        }
      })
    },
    clusterState: () => cluster().readState(),
    clusterSpec: inputs.clusterSpec,
    applyToCluster: async (event, options) => await cluster().applyConsistent(event, options),
    eject: inputs.eject,
    leave: async (options = {}) => { await inputs.stop({ leave: true, ...options }) }
  }
}
