/**
 * Checking what the application gives the service (its options once, each child's options at
 * `startChild` / `startReplicated`) and turning a child's options into the plain, serialisable
 * {@link ChildTerms} the children table holds, with every default filled in. Mistakes from
 * plain JavaScript are `TypeError`s that name the option.
 *
 * @module
 */
import { checkServerSpec, type ServerSpec } from '../supervision/server.js'
import { DEFAULT_WORKER_SHUTDOWN_MS } from '../supervision/child-spec.js'
import type { ClusterSupervisionOptions, Placement, PlacedChildOptions, ReplicatedChildOptions } from './api.js'
import { MAX_REPLICAS, MAX_SERVER_NAME_BYTES, invalidChildName, type ChildTerms, type LocalTerms, type PlacementTerms } from './children-spec.js'

/** The service's options with their defaults. */
export interface ResolvedOptions {
  /** Server definitions by name, types erased. */
  readonly servers: ReadonlyMap<string, ServerSpec<unknown, unknown, unknown>>
  /** See `ClusterSupervisionOptions.standbys`. */
  readonly standbys: number
  /** See `ClusterSupervisionOptions.callTimeoutMs`. */
  readonly callTimeoutMs: number
  /** See `ClusterSupervisionOptions.window`. */
  readonly window: number
  /** See `ClusterSupervisionOptions.maxQuarantined`. */
  readonly maxQuarantined: number
  /** See `ClusterSupervisionOptions.election`. */
  readonly election: NonNullable<ClusterSupervisionOptions<unknown>['election']>
  /** See `ClusterSupervisionOptions.onEvent`. */
  readonly onEvent: ClusterSupervisionOptions<unknown>['onEvent']
}

/**
 * Applies the defaults of {@link ClusterSupervisionOptions}.
 * @throws TypeError naming the option that is wrong
 */
export function resolveOptions<Sv> (options: ClusterSupervisionOptions<Sv>): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('clusterSupervision: options must be an object')
  const table = options.servers as unknown
  if (typeof table !== 'object' || table === null) throw new TypeError('clusterSupervision: options.servers must be an object of server definitions by name')
  const servers = new Map<string, ServerSpec<unknown, unknown, unknown>>()
  for (const [name, spec] of Object.entries(table as Record<string, unknown>)) {
    if (name === '' || Buffer.byteLength(name) > MAX_SERVER_NAME_BYTES) throw new TypeError(`clusterSupervision: server names must be 1 to ${MAX_SERVER_NAME_BYTES} bytes`)
    checkServerSpec(spec, `clusterSupervision: options.servers.${name}`)
    servers.set(name, spec as ServerSpec<unknown, unknown, unknown>)
  }
  const election = options.election ?? {}
  if (typeof election !== 'object' || election === null) throw new TypeError('clusterSupervision: options.election must be an object')
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new TypeError('clusterSupervision: options.onEvent must be a function')
  return {
    servers,
    standbys: integer(options.standbys, 'standbys', 1, 0, 64),
    callTimeoutMs: milliseconds(options.callTimeoutMs, 'callTimeoutMs', 5000),
    window: integer(options.window, 'window', 256, 1, 65_536),
    maxQuarantined: integer(options.maxQuarantined, 'maxQuarantined', 64, 1, 65_536),
    election,
    onEvent: options.onEvent
  }
}

/**
 * The terms of a placed child.
 * @throws TypeError naming the option that is wrong (or an unknown server)
 */
export function placedTerms (name: string, options: PlacedChildOptions<string>, servers: ResolvedOptions['servers']): ChildTerms {
  checkChild(name, options, servers, 'startChild')
  const restart = options.restart ?? 'permanent'
  if (restart !== 'permanent' && restart !== 'transient') throw new TypeError("startChild: options.restart must be 'permanent' or 'transient' (temporary children exist only in single-peer trees)")
  const shutdown = options.shutdown ?? DEFAULT_WORKER_SHUTDOWN_MS
  if (!(shutdown === 'brutal' || shutdown === 'infinity' || (typeof shutdown === 'number' && Number.isFinite(shutdown) && shutdown >= 0))) throw new TypeError("startChild: options.shutdown must be milliseconds >= 0, 'brutal' or 'infinity'")
  const startTimeoutMs = options.startTimeoutMs
  if (startTimeoutMs !== undefined) milliseconds(startTimeoutMs, 'startTimeoutMs', 0, 'startChild')
  const b = options.backoff
  if (b !== undefined && (typeof b !== 'object' || b === null)) throw new TypeError('startChild: options.backoff must be an object')
  const local: LocalTerms = {
    intensity: integer(options.intensity, 'intensity', 1, 0, 1_000_000, 'startChild'),
    periodMs: milliseconds(options.periodMs, 'periodMs', 5000, 'startChild'),
    backoff: b === undefined ? null : { minMs: b.minMs, maxMs: b.maxMs, factor: b.factor ?? 2, randomFactor: b.randomFactor ?? 0.2, resetAfterMs: b.resetAfterMs ?? b.maxMs },
    shutdown,
    startTimeoutMs: startTimeoutMs ?? null,
    queueCapacity: integer(options.queueCapacity, 'queueCapacity', 1024, 1, 1_000_000, 'startChild')
  }
  if (local.backoff !== null) {
    const { minMs, maxMs, factor, randomFactor, resetAfterMs } = local.backoff
    const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x)
    if (!finite(minMs) || minMs < 0 || !finite(maxMs) || maxMs < minMs || !finite(factor) || factor < 1 || !finite(randomFactor) || randomFactor < 0 || !finite(resetAfterMs) || resetAfterMs < 0) {
      throw new TypeError('startChild: options.backoff must be { minMs >= 0, maxMs >= minMs, factor >= 1, randomFactor >= 0, resetAfterMs >= 0 }')
    }
  }
  return { server: options.server, mode: 'placed', restart, placement: placementTerms(options.placement), replicas: 1, minReplicas: 1, local }
}

/**
 * The terms of a replicated server.
 * @throws TypeError naming the option that is wrong (or an unknown server)
 */
export function replicatedTerms (name: string, options: ReplicatedChildOptions<string>, servers: ResolvedOptions['servers']): ChildTerms {
  checkChild(name, options, servers, 'startReplicated')
  const replicas = integer(options.replicas, 'replicas', 3, 1, MAX_REPLICAS, 'startReplicated')
  const minReplicas = integer(options.minReplicas, 'minReplicas', Math.floor(replicas / 2) + 1, 1, replicas, 'startReplicated')
  return {
    server: options.server,
    mode: 'replicated',
    restart: 'permanent',
    placement: { kind: 'spread' },
    replicas,
    minReplicas,
    local: { intensity: 1, periodMs: 5000, backoff: null, shutdown: DEFAULT_WORKER_SHUTDOWN_MS, startTimeoutMs: null, queueCapacity: 1024 }
  }
}

function checkChild (name: string, options: { readonly server: string }, servers: ResolvedOptions['servers'], fn: string): void {
  const bad = invalidChildName(name)
  if (bad !== undefined) throw new TypeError(`${fn}: ${bad}`)
  if (typeof options !== 'object' || options === null) throw new TypeError(`${fn}: options must be an object`)
  if (typeof options.server !== 'string' || !servers.has(options.server)) throw new TypeError(`${fn}: options.server must name one of the service's servers (${[...servers.keys()].join(', ')}), got ${JSON.stringify(options.server)}`)
}

function placementTerms (p: Placement | undefined): PlacementTerms {
  if (p === undefined) return { kind: 'spread' }
  if (typeof p !== 'object' || p === null) throw new TypeError('startChild: options.placement must be { kind: "spread" | "any" | "peer" }')
  if (p.kind === 'spread' || p.kind === 'any') return { kind: p.kind }
  if (p.kind === 'peer') {
    if (typeof p.peer !== 'string' || p.peer === '') throw new TypeError('startChild: options.placement.peer must be a peer id')
    const fallback = p.fallback ?? true
    if (typeof fallback !== 'boolean') throw new TypeError('startChild: options.placement.fallback must be a boolean')
    return { kind: 'peer', peer: p.peer, fallback }
  }
  throw new TypeError('startChild: options.placement.kind must be "spread", "any" or "peer"')
}

function integer (v: unknown, name: string, fallback: number, min: number, max: number, fn = 'clusterSupervision'): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) throw new TypeError(`${fn}: options.${name} must be an integer from ${min} to ${max}`)
  return v as number
}

function milliseconds (v: unknown, name: string, fallback: number, fn = 'clusterSupervision'): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new TypeError(`${fn}: options.${name} must be a finite number of milliseconds > 0`)
  return v
}
