/**
 * The options of `startLegion`, checked and completed: every option a plain JavaScript caller
 * can get wrong gets a `TypeError` that names it, before anything starts, and every default
 * lives here, once.
 *
 * @module
 */
import type { PrivateKey } from '@libp2p/interface'
import { jsonCodec } from '../codec/json.js'
import type { FoldCodecs } from '../codec/eventfold.js'
import type { EventSpec, Participant } from '../eventfold/types.js'
import type { CallHandler, CastHandler, LegionOptions, StartupMode } from './options.js'

/** Default timeout of `applyConsistent`. */
export const DEFAULT_CONSISTENT_TIMEOUT_MS = 30_000
/** Default timeout of calls, pushes and syncs. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000
/** `propagation.acknowledgeDelayMs` unless given. */
export const DEFAULT_ACKNOWLEDGE_DELAY_MS = 50
/** Default largest message. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

/** Every setting of a peer, checked, with defaults filled in. */
export interface PeerConfig<E, S, O> {
  readonly cluster: string
  readonly spec: EventSpec<E, S, O>
  readonly codecs: FoldCodecs<E, S, O>
  readonly startup: StartupMode
  readonly transport: 'tcp' | 'memory'
  readonly listen: string[] | undefined
  readonly privateKey: PrivateKey | undefined
  readonly mode: 'push' | 'periodic'
  readonly intervalMs: number
  readonly directFanout: number
  readonly forwardOutputs: boolean
  readonly acknowledge: 'everyone' | 'creators'
  readonly acknowledgeDelayMs: number
  readonly heartbeatIntervalMs: number
  readonly suspectAfterMs: number
  readonly stuckAfterMs: number
  readonly autoEject: false | { readonly backupDelayMs: number, readonly timeoutMs: number, readonly stuck: boolean }
  readonly rejoin: boolean
  readonly freezeStates: boolean
  readonly maxMessageBytes: number
  readonly joinTimeoutMs: number
  readonly clusterSecret: Uint8Array | undefined
  readonly allowPeers: ((peer: Participant) => boolean) | undefined
  readonly allowPeersOption: readonly string[] | ((peerId: string) => boolean) | undefined
  readonly onCall: CallHandler | undefined
  readonly onCast: CastHandler | undefined
}

/**
 * Checks `options` and fills in the defaults.
 * @throws TypeError naming the first option that is wrong
 */
export function resolveConfig<E, S, O> (options: LegionOptions<E, S, O, never>): PeerConfig<E, S, O> {
  if (typeof options !== 'object' || options === null) throw new TypeError('startLegion needs an options object')
  const o = options as LegionOptions<E, S, O, never> & { codecs?: unknown } & Record<string, unknown>
  const cluster = o.cluster
  if (typeof cluster !== 'string' || cluster === '') throw new TypeError('options.cluster must be a non-empty string')
  if (cluster.includes('\u0000')) throw new TypeError('options.cluster must not contain NUL characters')
  const spec = o.spec as Partial<EventSpec<E, S, O>> | undefined
  if (typeof spec !== 'object' || spec === null) throw new TypeError('options.spec must be an EventSpec object { init, apply, join?, unjoin? }')
  if (typeof spec.init !== 'function') throw new TypeError('options.spec.init must be a function returning the initial state')
  if (typeof spec.apply !== 'function') throw new TypeError('options.spec.apply must be a function (event, state) => ApplyResult')
  for (const hook of ['join', 'unjoin'] as const) {
    if (spec[hook] !== undefined && typeof spec[hook] !== 'function') throw new TypeError(`options.spec.${hook} must be a function or undefined`)
  }
  const codecs = checkCodecs<E, S, O>(o.codecs) ?? ({ event: jsonCodec, state: jsonCodec, output: jsonCodec } as unknown as FoldCodecs<E, S, O>)
  const startup = checkStartup(o.startup)
  const transport = o.transport ?? 'tcp'
  if (transport !== 'tcp' && transport !== 'memory') throw new TypeError(`options.transport must be 'tcp' or 'memory', got ${JSON.stringify(transport)}`)
  if (o.listen !== undefined && !(Array.isArray(o.listen) && o.listen.every(a => typeof a === 'string'))) throw new TypeError('options.listen must be an array of multiaddr strings')
  const privateKey = o.privateKey
  if (privateKey !== undefined && (typeof privateKey !== 'object' || privateKey === null || typeof (privateKey as { raw?: unknown }).raw !== 'object')) {
    throw new TypeError('options.privateKey must be a libp2p PrivateKey (from @libp2p/crypto/keys)')
  }
  for (const h of ['onCall', 'onCast'] as const) {
    if (o[h] !== undefined && typeof o[h] !== 'function') throw new TypeError(`options.${h} must be a function`)
  }
  const propagation = objectOption(o.propagation, 'propagation')
  const mode = propagation.mode ?? 'push'
  if (mode !== 'push' && mode !== 'periodic') throw new TypeError(`options.propagation.mode must be 'push' or 'periodic', got ${JSON.stringify(mode)}`)
  const acknowledge = propagation.acknowledge ?? 'everyone'
  if (acknowledge !== 'everyone' && acknowledge !== 'creators') throw new TypeError(`options.propagation.acknowledge must be 'everyone' or 'creators', got ${JSON.stringify(acknowledge)}`)
  const fd = objectOption(o.failureDetection, 'failureDetection')
  const heartbeatIntervalMs = positive(fd.heartbeatIntervalMs, 'failureDetection.heartbeatIntervalMs', 1000)
  const suspectAfterMs = positive(fd.suspectAfterMs, 'failureDetection.suspectAfterMs', 3000)
  const autoEjectOption = fd.autoEject
  if (autoEjectOption !== undefined && autoEjectOption !== false && (typeof autoEjectOption !== 'object' || autoEjectOption === null)) {
    throw new TypeError('options.failureDetection.autoEject must be false or an object')
  }
  const allow = o.allowPeers
  let allowPeers: ((peer: Participant) => boolean) | undefined
  if (typeof allow === 'function') allowPeers = allow
  else if (Array.isArray(allow) && allow.every(p => typeof p === 'string')) { const set = new Set<string>(allow); allowPeers = peer => set.has(peer) } else if (allow !== undefined) throw new TypeError('options.allowPeers must be an array of peer ids or a predicate')
  if (o.clusterSecret !== undefined && !(o.clusterSecret instanceof Uint8Array)) throw new TypeError('options.clusterSecret must be a Uint8Array of 32 bytes')
  if (o.storage !== undefined && (typeof o.storage !== 'object' || o.storage === null || !(('batch' in o.storage && 'namespace' in o.storage) || ('load' in o.storage && 'save' in o.storage)))) throw new TypeError('options.storage must be a storage adapter (lmdbKeyValueStore(dir), memoryKeyValueStore(), or a PeerStorage)')
  if (o.freezeStates !== undefined && typeof o.freezeStates !== 'boolean') throw new TypeError('options.freezeStates must be a boolean')
  return {
    cluster,
    spec: spec as EventSpec<E, S, O>,
    codecs,
    startup,
    transport,
    listen: o.listen,
    privateKey,
    mode,
    intervalMs: positive(propagation.intervalMs, 'propagation.intervalMs', 1000),
    directFanout: positive(propagation.directFanout, 'propagation.directFanout', 64),
    forwardOutputs: bool(propagation.forwardOutputs, 'propagation.forwardOutputs', true),
    acknowledge,
    acknowledgeDelayMs: nonNegative(propagation.acknowledgeDelayMs, 'propagation.acknowledgeDelayMs', DEFAULT_ACKNOWLEDGE_DELAY_MS),
    heartbeatIntervalMs,
    suspectAfterMs,
    stuckAfterMs: positive(fd.stuckAfterMs, 'failureDetection.stuckAfterMs', 10_000),
    autoEject: autoEjectOption === false
      ? false
      : {
          backupDelayMs: positive(autoEjectOption?.backupDelayMs, 'failureDetection.autoEject.backupDelayMs', 2 * heartbeatIntervalMs),
          timeoutMs: positive(autoEjectOption?.timeoutMs, 'failureDetection.autoEject.timeoutMs', DEFAULT_CALL_TIMEOUT_MS),
          stuck: bool(autoEjectOption?.stuck, 'failureDetection.autoEject.stuck', true)
        },
    rejoin: bool(fd.rejoin, 'failureDetection.rejoin', true),
    freezeStates: o.freezeStates ?? process.env.NODE_ENV !== 'production',
    maxMessageBytes: positive(o.maxMessageBytes, 'maxMessageBytes', DEFAULT_MAX_MESSAGE_BYTES),
    joinTimeoutMs: positive(o.joinTimeoutMs, 'joinTimeoutMs', 10_000),
    clusterSecret: o.clusterSecret,
    allowPeers,
    allowPeersOption: allow,
    onCall: o.onCall,
    onCast: o.onCast
  }
}

function checkCodecs<E, S, O> (codecs: unknown): FoldCodecs<E, S, O> | undefined {
  if (codecs === undefined) return undefined
  if (typeof codecs !== 'object' || codecs === null) throw new TypeError('options.codecs must be { event, state, output } codecs')
  for (const k of ['event', 'state', 'output'] as const) {
    const c = (codecs as Record<string, { encode?: unknown, decode?: unknown } | undefined>)[k]
    if (typeof c?.encode !== 'function' || typeof c.decode !== 'function') throw new TypeError(`options.codecs.${k} must be a Codec { encode, decode }`)
  }
  return codecs as FoldCodecs<E, S, O>
}

function checkStartup (startup: unknown): StartupMode {
  if (typeof startup !== 'object' || startup === null) throw new TypeError("options.startup must be { mode: 'new' | 'join' | 'recover' | 'auto', ... }")
  const s = startup as { mode?: unknown, peers?: unknown, overwrite?: unknown, found?: unknown }
  const peers = (required: boolean): void => {
    if (s.peers === undefined && !required) return
    if (!Array.isArray(s.peers) || !s.peers.every(p => typeof p === 'string')) throw new TypeError(`options.startup.peers must be an array of multiaddr strings (mode ${String(s.mode)})`)
  }
  switch (s.mode) {
    case 'new': if (s.overwrite !== undefined && typeof s.overwrite !== 'boolean') throw new TypeError('options.startup.overwrite must be a boolean'); break
    case 'join': peers(true); break
    case 'recover': peers(false); break
    case 'auto': peers(false); if (s.found !== undefined && typeof s.found !== 'boolean') throw new TypeError('options.startup.found must be a boolean'); break
    default: throw new TypeError(`options.startup.mode must be 'new', 'join', 'recover' or 'auto', got ${JSON.stringify(s.mode)}`)
  }
  return startup as StartupMode
}

function objectOption<T extends object> (value: T | undefined, name: string): Partial<T> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null) throw new TypeError(`options.${name} must be an object`)
  return value
}

function positive (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TypeError(`options.${name} must be a positive number, got ${JSON.stringify(value)}`)
  return value
}

function nonNegative (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`options.${name} must be a number >= 0, got ${JSON.stringify(value)}`)
  return value
}

function bool (value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new TypeError(`options.${name} must be a boolean`)
  return value
}
