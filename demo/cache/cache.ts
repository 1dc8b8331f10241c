/**
 * The example application of the keyspace, in the spirit of the Haskell framework's
 * `legion-cache`: a distributed key-value cache with a tag index. Each key holds a string
 * value and the tags it is filed under (by default the key's prefix before `:`, so `user:1`
 * is tagged `user`); a key never set, or deleted, is `null` and takes no space.
 *
 * `cacheKeyspace()` is the service every peer of a cache cluster runs; `demo/cache/node.ts`
 * serves one over HTTP for the command line (`demo/cache/cli.ts`).
 *
 * @module
 */
import { defineKeyspace, type Keyspace } from '../../src/index.js'

/** What a cache key holds: its value and its tags, or `null` (never set, or deleted). */
export type CacheEntry = { readonly value: string, readonly tags: readonly string[] } | null

/** A request on one key. */
export type CacheInput =
  | { readonly op: 'get' }
  | { readonly op: 'set', readonly value: string, readonly tags: readonly string[] }
  | { readonly op: 'delete' }

/** Every request answers with the value the key had before it (`null`: none). */
export type CacheOutput = string | null

/** The tags of a key by default: its prefix before the first `:`, if it has one. */
export function defaultTags (key: string): string[] {
  const colon = key.indexOf(':')
  return colon > 0 ? [key.slice(0, colon)] : []
}

/** The cache as a keyspace service (see `defineKeyspace` for the options). */
export function cacheKeyspace (options: { partitions?: number, replication?: number, minReplicas?: number, name?: string, maxParallelMoves?: number, lostAfterMs?: number, partitionKey?: (key: string) => string } = {}) {
  return defineKeyspace<string, CacheInput, CacheOutput, CacheEntry>({
    ...options,
    init: () => null,
    // A malformed input throws here: the caller gets a HandlerError and nothing is applied.
    handle: (_key, input, entry) => { checkInput(input); return entry?.value ?? null },
    apply: (input, entry) => {
      switch (input.op) {
        case 'set': return { value: input.value, tags: [...input.tags] }
        case 'delete': return null
        default: return entry
      }
    },
    index: (entry) => entry?.tags ?? [],
    isDefault: (entry) => entry === null
  })
}

function checkInput (input: CacheInput): void {
  const i = input as Partial<Record<string, unknown>> | null
  if (typeof i !== 'object' || i === null) throw new TypeError('a cache input is an object { op, ... }')
  if (i.op === 'get' || i.op === 'delete') return
  if (i.op !== 'set') throw new TypeError(`unknown cache op ${JSON.stringify(i.op)}`)
  if (typeof i.value !== 'string') throw new TypeError('set: value must be a string')
  if (!Array.isArray(i.tags) || !i.tags.every(t => typeof t === 'string')) throw new TypeError('set: tags must be strings')
}

/** A cache on one peer. */
export type Cache = Keyspace<string, CacheInput, CacheOutput, CacheEntry>
