/**
 * What the discovery service shows operators (the admin endpoint's views
 * `discovery/holders` and `discovery/registry`): plain JSON rows read from the settled
 * registry, one per name.
 *
 * @module
 */
import type { RegistryState } from './registry-spec.js'

/** Per name with an election: its holder and token, the queue's length, and whether this peer runs it. */
export function holdersView (state: RegistryState, runsHere: (name: string) => boolean): unknown[] {
  return Object.keys(state.names).sort().flatMap(name => {
    const e = state.names[name]!.election
    if (e === null) return []
    const token = e.holder === null ? null : `${e.holder.token.counter}:${e.holder.token.participant}`
    return [{ name, holder: e.holder?.peer ?? null, token, queued: e.candidates.length, runningHere: runsHere(name) }]
  })
}

/** Per name with registrations: how many, how many drained, from how many peers. */
export function registryView (state: RegistryState): unknown[] {
  return Object.keys(state.names).sort().flatMap(name => {
    const rs = state.names[name]!.registrations
    return rs.length === 0 ? [] : [{ name, registrations: rs.length, drained: rs.filter(r => !r.enabled).length, peers: new Set(rs.map(r => r.peer)).size }]
  })
}
