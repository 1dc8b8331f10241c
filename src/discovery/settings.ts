/**
 * The discovery service's options, resolved once when the service is declared: the registry's
 * limits (part of its spec, so the same on every peer), the codecs, the stop deadline and the
 * lease windows, each checked with a `TypeError` that names the option.
 *
 * @module
 */
import type { Codec } from '../codec/codec.js'
import { jsonCodec } from '../codec/json.js'
import type { DiscoveryOptions } from './api.js'
import type { RegistrySettings } from './registry-spec.js'

/** Options with their defaults applied. */
export interface ResolvedDiscovery<M, C> {
  /** The registry's limits and journal length. */
  readonly registry: RegistrySettings
  /** The metadata codec. */
  readonly metaCodec: Codec<M>
  /** The checkpoint codec. */
  readonly checkpointCodec: Codec<C>
  /** How long stopping a run waits for it. */
  readonly stopTimeoutMs: number
  /** The lease windows given, if any (the rest default from the failure detection settings). */
  readonly quorumWindowMs: number | undefined
  /** See `quorumWindowMs`. */
  readonly linkWindowMs: number | undefined
}

/**
 * Applies the defaults of {@link DiscoveryOptions}.
 * @throws TypeError naming the option that is wrong
 */
export function resolveDiscovery<M, C> (options: DiscoveryOptions<M, C>): ResolvedDiscovery<M, C> {
  if (typeof options !== 'object' || options === null) throw new TypeError('discovery options must be an object')
  return {
    registry: {
      journalLength: positiveInt(options.journalLength, 'journalLength', 256),
      maxNameBytes: positiveInt(options.maxNameBytes, 'maxNameBytes', 256),
      maxMetaBytes: positiveInt(options.maxMetaBytes, 'maxMetaBytes', 16 * 1024),
      maxCheckpointBytes: positiveInt(options.maxCheckpointBytes, 'maxCheckpointBytes', 256 * 1024)
    },
    metaCodec: checkCodec<M>(options.metaCodec, 'metaCodec'),
    checkpointCodec: checkCodec<C>(options.checkpointCodec, 'checkpointCodec'),
    stopTimeoutMs: positiveInt(options.stopTimeoutMs, 'stopTimeoutMs', 5000),
    quorumWindowMs: options.quorumWindowMs === undefined ? undefined : positiveInt(options.quorumWindowMs, 'quorumWindowMs', 1),
    linkWindowMs: options.linkWindowMs === undefined ? undefined : positiveInt(options.linkWindowMs, 'linkWindowMs', 1)
  }
}

function positiveInt (v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new TypeError(`options.${name} must be a positive integer`)
  return v as number
}

function checkCodec<T> (codec: unknown, name: string): Codec<T> {
  if (codec === undefined) return jsonCodec as unknown as Codec<T>
  const c = codec as Partial<Codec<T>>
  if (typeof c?.encode !== 'function' || typeof c.decode !== 'function') throw new TypeError(`options.${name} must be a Codec { encode, decode }`)
  return c as Codec<T>
}
