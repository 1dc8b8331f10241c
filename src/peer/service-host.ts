/**
 * Runs a peer's services: builds each one with exactly the components it declared (and no
 * others, checked at run time too), starts them in declaration order once the peer is a
 * participant, and stops them in reverse order before it leaves. A service that fails to
 * start fails the peer's start-up; one that fails to stop is logged and the others still stop.
 *
 * @module
 */
import type { Participant } from '../eventfold/types.js'
import { checkGroupId } from './group/definition.js'
import type { Group, GroupOptions } from './group/groups.js'
import type { LoggerFactory } from './log.js'
import { messageChannel } from './messaging.js'
import type { PartInputs, Parts } from './parts.js'
import { GroupNotReadyError } from './errors.js'
import { operatorControl, scopedViews, type OperatorInputs, type OperatorView } from './operator.js'
import type { MembershipView, ServiceComponents, ServiceDefinition, ServiceInstance, ServiceInstances, ServiceMap } from './services.js'

/** The services of one peer; see the module comment. */
export class ServiceHost<Sv extends ServiceMap> {
  readonly instances: ServiceInstances<Sv>
  private readonly order: Array<{ name: string, instance: ServiceInstance }> = []
  /** Services whose `prepare` or `start` ran: each is owed a `stop`. */
  private readonly owed = new Set<{ name: string, instance: ServiceInstance }>()
  private readonly views = new Map<string, OperatorView>()

  constructor (services: Sv, private readonly context: { parts: Parts, inputs: PartInputs, loggers: LoggerFactory, operator: Omit<OperatorInputs, 'lifecycle' | 'parts'> }) {
    if (typeof services !== 'object' || services === null) throw new TypeError('options.services must be an object of defineService() results')
    const instances: Record<string, object> = {}
    const names = new Set<string>()
    for (const [key, definition] of Object.entries(services)) {
      const d = definition as Partial<ServiceDefinition<object>>
      if (typeof d?.create !== 'function' || typeof d.name !== 'string' || !Array.isArray(d.needs)) throw new TypeError(`options.services.${key} must come from defineService()`)
      if (names.has(d.name)) throw new TypeError(`two services are named ${JSON.stringify(d.name)}`)
      names.add(d.name)
      const all = this.components(d.name)
      const given: Partial<ServiceComponents> = {}
      for (const need of d.needs as ReadonlyArray<keyof ServiceComponents>) {
        if (!(need in all)) throw new TypeError(`service ${d.name} needs ${String(need)}, which no peer offers`)
        Object.defineProperty(given, need, { value: all[need], enumerable: true })
      }
      const instance = d.create(given as ServiceComponents) as ServiceInstance
      instances[key] = instance
      this.order.push({ name: d.name, instance })
    }
    this.instances = instances as ServiceInstances<Sv>
  }

  /** Prepares every service in declaration order, before the peer joins. */
  async prepare (): Promise<void> {
    for (const s of this.order) {
      if (s.instance.prepare === undefined) continue
      this.owed.add(s)
      await s.instance.prepare()
    }
  }

  /** Starts every service in declaration order. */
  async start (): Promise<void> {
    for (const s of this.order) {
      this.owed.add(s)
      await s.instance.start?.()
    }
  }

  /** Stops the started services in reverse order, telling them whether the peer leaves; failures are logged. */
  async stop (leaving: boolean): Promise<void> {
    const owed = this.order.filter(s => this.owed.has(s))
    this.owed.clear()
    for (const s of owed.reverse()) {
      try {
        await s.instance.stop?.({ leaving })
      } catch (err) {
        this.context.parts.log.error('service %s failed to stop: %s', s.name, err)
      }
    }
  }

  private components (name: string): ServiceComponents {
    const { parts, inputs, loggers, operator } = this.context
    const lifecycle = inputs.lifecycle
    const prefix = `${name}/`
    const attach = <E, S, O>(group: Group<E, S, O>): Group<E, S, O> => {
      const incarnation = lifecycle.incarnation
      if (incarnation === undefined || incarnation.groups.has(group.id)) return group
      const definition = parts.groups.definition(group.id)!
      const stored = parts.groups.takeStored(group.id)
      incarnation.groups.set(group.id, stored !== undefined ? parts.groups.fromStored(definition, stored) : parts.groups.waiting(definition))
      parts.flusher.schedule()
      return group
    }
    const membership: MembershipView = {
      members: () => lifecycle.incarnation?.groups.get('')?.fold?.projectedParticipants() ?? [],
      settledMembers: () => lifecycle.incarnation?.groups.get('')?.fold?.infimumParticipants() ?? [],
      isMember: () => lifecycle.phase.kind === 'member',
      admission: () => lifecycle.incarnation?.epoch ?? 0,
      subscribe: (listener) => parts.groups.handle('')!.subscribe(() => { listener() }),
      liveness: () => ({
        now: inputs.clock.now(),
        heartbeatIntervalMs: inputs.config.heartbeatIntervalMs,
        suspectAfterMs: inputs.config.suspectAfterMs,
        peers: parts.heartbeats.contacts(),
        reportedStuck: parts.heartbeats.selfHealth().kind === 'stuck'
      })
    }
    return {
      self: inputs.self,
      cluster: inputs.config.cluster,
      log: loggers(name),
      clock: inputs.clock,
      random: inputs.random,
      metrics: inputs.metrics.scoped(name.replace(/-/g, '_')),
      membership,
      groups: {
        clusterWide: <E, S, O>(id: string, options: GroupOptions<E, S, O>) => attach(parts.groups.define(prefix + checkGroupId(id), 'cluster', options)),
        managed: <E, S, O>(id: string, options: GroupOptions<E, S, O>) => attach(parts.groups.define(prefix + checkGroupId(id), 'managed', options)),
        found: (id: string, initial?: { readonly state: unknown }) => {
          const incarnation = lifecycle.incarnation
          const definition = parts.groups.definition(prefix + id)
          if (incarnation === undefined || definition === undefined) throw new GroupNotReadyError(prefix + id, 'not defined, or this peer is not a participant yet')
          if (incarnation.groups.get(definition.id)?.fold !== undefined) return
          incarnation.groups.set(definition.id, parts.groups.found(definition, initial))
          parts.flusher.schedule()
        },
        formerState: (id: string) => {
          const fold = lifecycle.incarnation?.former.get(prefix + id)
          return fold === undefined ? undefined : { state: fold.projectedValue() }
        },
        formers: () => [...lifecycle.incarnation?.former.keys() ?? []].flatMap(id => id.startsWith(prefix) ? [id.slice(prefix.length)] : []),
        forgetFormer: (id: string) => { lifecycle.incarnation?.former.delete(prefix + id) },
        drop: (id: string) => { parts.forgetGroup(prefix + id) }
      },
      messaging: {
        channel: (channelName, codecs) => parts.messaging.channel(messageChannel({ name: prefix + channelName, ...codecs })),
        open: (channel) => parts.messaging.channel(messageChannel({ ...channel, name: prefix + channel.name }))
      },
      views: scopedViews(this.views, name),
      operator: operatorControl({ ...operator, lifecycle, parts })
    }
  }
}

/** The peer id of a participant, for services that print it. */
export type { Participant }
