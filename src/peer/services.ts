/**
 * The service API: how a layer (keyspace, registry, supervision, admin, or an application's
 * own) plugs into a peer. A service is declared with {@link defineService}: its name, the
 * components it needs, and a factory that receives exactly those and returns the service.
 * The peer builds every service before it founds, joins or recovers (so a service can define
 * the cluster-wide groups it needs, which a sponsor then carries to joiners), starts them in
 * declaration order once it is a participant, and stops them in reverse order before it
 * leaves. docs/SERVICES.md is the guide.
 *
 * Names a service creates are namespaced by the service's name: its groups are
 * `<service>/<id>`, its message channels `<service>/<name>`, its metrics
 * `legion_<service>_<name>`, its log lines `legion:<service>`.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { Codec } from '../codec/codec.js'
import type { Participant } from '../eventfold/types.js'
import type { PeerClock, Random } from './clock.js'
import type { Group, GroupOptions } from './group/groups.js'
import type { PeerContact } from './membership/heartbeats.js'
import type { ChannelHandle, MessageChannel } from './messaging.js'
import type { Metrics } from './metrics.js'
import type { OperatorControl, OperatorViews } from './operator.js'

export type { PeerContact }

/** The cluster's membership as a service sees it. */
export interface MembershipView {
  /** The cluster's projected participants, sorted (this peer included while it is one). */
  members(): readonly Participant[]
  /** The cluster's settled participants, sorted (agreed on by every peer at the same infimum). */
  settledMembers(): readonly Participant[]
  /** Whether this peer is a participant now (not ejected, not stopped). */
  isMember(): boolean
  /**
   * Which admission of this peer to the cluster is current: it increases each time the peer
   * is admitted anew (a rejoin after an ejection), when every group replica it held is
   * replaced by a sponsor's fold or a waiting replica. A service that remembers something
   * about its groups' replicas (the keyspace's handoff: which partitions the table listed this
   * peer for) forgets it when this changes. 0 before the first admission.
   */
  admission(): number
  /** Calls `listener` after every change of either list; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void
  /**
   * What this peer's failure detector knows now of its links to the other participants: for
   * each, when it was last heard from and when it last answered one of this peer's
   * heartbeats (proof it heard this peer), plus the failure detection settings. A service
   * that must stop acting before the others could eject this peer (a lease, an election's
   * holder stepping down) reads it; see docs/ARCHITECTURE.md, "No two holders: the step-down
   * argument".
   */
  liveness(): Liveness
}

/** A reading of {@link MembershipView.liveness}. Times are `clock.now()` values of this peer. */
export interface Liveness {
  /** When the reading was taken. */
  readonly now: number
  /** The peer's `failureDetection.heartbeatIntervalMs`. */
  readonly heartbeatIntervalMs: number
  /** The peer's `failureDetection.suspectAfterMs`. */
  readonly suspectAfterMs: number
  /** Every other projected participant of the cluster, sorted by id. */
  readonly peers: readonly PeerContact[]
  /** Whether some participant's latest heartbeat reports this peer as holding the fold back (stuck). */
  readonly reportedStuck: boolean
}

/** What {@link ServiceGroups.formerState} returns. */
export interface FormerState {
  /** The projected state this peer held (a state of the group's type). */
  readonly state: unknown
}

/** The groups a service defines; ids are prefixed by `<service>/`. */
export interface ServiceGroups {
  /** A group every member of the cluster takes part in (the peer adds and removes them). */
  clusterWide<E, S, O>(id: string, options: GroupOptions<E, S, O>): Group<E, S, O>
  /**
   * A group whose participants the service decides. On the one peer that creates it, call
   * {@link ServiceGroups.found}; the others wait until a participant adds them
   * (`Group.participate`) and then hold its state.
   */
  managed<E, S, O>(id: string, options: GroupOptions<E, S, O>): Group<E, S, O>
  /**
   * Creates the state of managed group `id` with this peer as its only participant (if it
   * holds none), starting from `initial.state` instead of the spec's `init()` when given (a
   * state of the group's type).
   */
  found(id: string, initial?: { readonly state: unknown }): void
  /**
   * The projected state this peer held of managed group `id` in an earlier admission (it was
   * ejected and admitted again since, which replaced every replica it held) or before it forgot
   * its replica ({@link drop}, or the group settled without it), for a group defined
   * `keepAcrossRejoin` whose former state the service has not let go of; `undefined`
   * otherwise. A state of the group's type.
   */
  formerState(id: string): FormerState | undefined
  /** The ids of the groups {@link ServiceGroups.formerState} has a state of. */
  formers(): string[]
  /** Lets go of what {@link ServiceGroups.formerState} keeps of group `id`. */
  forgetFormer(id: string): void
  /**
   * Forgets managed group `id` on this peer (after it left it): its replica and storage; a
   * group defined `keepAcrossRejoin` keeps the state as a former one ({@link formerState}).
   */
  drop(id: string): void
}

/** Message channels of a service; names are prefixed by `<service>/`. */
export interface ServiceMessaging {
  /** A typed channel `<service>/<name>`. */
  channel<Req, Rep>(name: string, codecs: { request: Codec<Req>, reply: Codec<Rep> }): ChannelHandle<Req, Rep>
  /** Same as `channel`, from a full definition. */
  open<Req, Rep>(channel: MessageChannel<Req, Rep>): ChannelHandle<Req, Rep>
}

/** Everything a service may ask for. It receives only the keys it declares. */
export interface ServiceComponents {
  /** This peer's participant id. */
  readonly self: Participant
  /** The cluster's name. */
  readonly cluster: string
  /** The service's logger (`legion:<service>`, the peer's short id in every line). */
  readonly log: Logger
  /** Time. */
  readonly clock: PeerClock
  /** Chance. */
  readonly random: Random
  /** The service's metrics (`legion_<service>_...`). */
  readonly metrics: Metrics
  /** The cluster's membership. */
  readonly membership: MembershipView
  /** The service's groups. */
  readonly groups: ServiceGroups
  /** The service's message channels. */
  readonly messaging: ServiceMessaging
  /** Read-only views of the service's state for operators (named `<service>/<name>`). */
  readonly views: OperatorViews
  /**
   * What an operator may see of and do to this peer (stats, groups, the cluster's own fold,
   * eject, leave). For the admin endpoint; an ordinary service has no use for it.
   */
  readonly operator: OperatorControl
}

/** The optional lifecycle hooks of what a service factory returns (it may return any object). */
export interface ServiceInstance {
  /**
   * Called once every service is built, before the peer founds, joins or recovers (the admin
   * endpoint opens its port here, so that it answers while the peer joins). A throw fails the
   * start-up before the peer joined anything.
   */
  prepare?(): void | Promise<void>
  /** Called once the peer is a participant (after founding, joining or recovering), in declaration order. */
  start?(): void | Promise<void>
  /**
   * Called when the peer stops (or its start-up fails after `prepare`), before it leaves, in
   * reverse order. `context.leaving` says
   * whether the peer then leaves the cluster gracefully (`stop()`), or stops without a word
   * (`stop({ leave: false })`, as a crash would): a service that hands work off before a
   * graceful leave (the keyspace drains its partitions) skips that when the peer is not leaving.
   */
  stop?(context: ServiceStopContext): void | Promise<void>
}

/** What a service's `stop` is told. */
export interface ServiceStopContext {
  /** Whether the peer leaves the cluster once its services have stopped. */
  readonly leaving: boolean
}

/** A declared service: see {@link defineService}. */
export interface ServiceDefinition<T extends object, K extends keyof ServiceComponents = keyof ServiceComponents> {
  /** The service's name: lower-case letters, digits and dashes; namespaces everything it creates. */
  readonly name: string
  /** The components it receives. */
  readonly needs: readonly K[]
  /** Builds the service from its components. */
  readonly create: (components: Pick<ServiceComponents, K>) => T
}

const SERVICE_NAME = /^[a-z][a-z0-9-]{0,31}$/

/**
 * Declares a service.
 *
 * @example
 * ```ts
 * const counter = defineService({
 *   name: 'counter',
 *   needs: ['groups'],
 *   create: ({ groups }) => {
 *     const total = groups.clusterWide('total', { spec: { init: () => 0, apply: (n: number, s: number) => ({ ok: true, output: s + n, state: s + n }) } })
 *     return { add: async (n: number) => await total.applyConsistent(n) }
 *   }
 * })
 * const peer = await startLegion({ cluster: 'demo', spec, startup: { mode: 'new' }, services: { counter } })
 * await peer.services.counter.add(2)
 * ```
 * @throws TypeError when the name or the needs are invalid
 */
export function defineService<T extends object, K extends keyof ServiceComponents> (definition: ServiceDefinition<T, K>): ServiceDefinition<T, K> {
  if (typeof definition !== 'object' || definition === null) throw new TypeError('defineService needs { name, needs, create }')
  if (typeof definition.name !== 'string' || !SERVICE_NAME.test(definition.name)) throw new TypeError(`a service name must match ${String(SERVICE_NAME)}, got ${JSON.stringify(definition.name)}`)
  if (!Array.isArray(definition.needs)) throw new TypeError(`service ${definition.name}: needs must be an array of component names`)
  if (typeof definition.create !== 'function') throw new TypeError(`service ${definition.name}: create must be a function`)
  return Object.freeze({ ...definition, needs: Object.freeze([...definition.needs]) })
}

/** The services of `startLegion`'s options, by the name the application uses for them. */
export type ServiceMap = Record<string, ServiceDefinition<object, keyof ServiceComponents>>

/** The instances of a {@link ServiceMap}, by the same names. */
export type ServiceInstances<M extends ServiceMap> = { readonly [K in keyof M]: ReturnType<M[K]['create']> }
