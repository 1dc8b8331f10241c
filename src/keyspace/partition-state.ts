/**
 * What one partition replicates: the state of every key of the partition that is not in the
 * default state, as the EventFold spec of the partition's group, built from the application's
 * `handle` and `apply`. An event is a batch of requests (each a key and an input) that an
 * owner took in one tick, applied in order: each one's output is what `handle` returned (or
 * that it threw), and its effect is what `apply` returned. Batching amortises what every
 * event of a group costs (a signature, acknowledgements from every replica) over the requests
 * of a busy partition. A key whose state becomes the default again is removed, so a key never
 * written takes no space.
 *
 * Also here: the partition's codecs (key bytes, the application's codecs for inputs, outputs
 * and states), and its slice of the index: the (tag, key) records of its keys, sorted, cached
 * per state.
 *
 * Pure: the spec is deterministic as long as the application's functions are. A function of
 * the application that throws never escapes: `handle` or `apply` throwing makes the request's
 * output an error and leaves the state as it was; `index` throwing gives the key no tags.
 *
 * @module
 */
import type { Codec, DecodeLimits } from '../codec/codec.js'
import { encodeWith } from '../codec/codec.js'
import { DecodeError } from '../codec/errors.js'
import type { FoldCodecs } from '../codec/eventfold.js'
import type { Reader, Writer } from '../codec/buffer.js'
import type { EventSpec } from '../eventfold/types.js'
import { PersistentMap } from './persistent-map.js'

/** The longest key, in bytes (as its key codec writes it). */
export const MAX_KEY_BYTES = 1024
/** The longest tag, in UTF-8 bytes. */
export const MAX_TAG_BYTES = 1024
/** The most tags one key's state may have. */
export const MAX_TAGS_PER_KEY = 64

/**
 * How keys become bytes and back. The bytes are hashed into a partition and order keys in the
 * index, so they should sort the way the application wants keys sorted (UTF-8 does for strings).
 */
export interface KeyCodec<K> {
  /** The key's bytes (at most {@link MAX_KEY_BYTES}); throws `TypeError` for a value that is not a key. */
  toBytes(key: K): Uint8Array
  /** The key of `bytes`; throws on bytes that are no key. */
  fromBytes(bytes: Uint8Array): K
}

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** String keys as their UTF-8 bytes (the default). */
export const stringKeys: KeyCodec<string> = Object.freeze({
  toBytes: (key: string): Uint8Array => {
    if (typeof key !== 'string') throw new TypeError(`key must be a string, got ${key === null ? 'null' : typeof key}`)
    return utf8.encode(key)
  },
  fromBytes: (bytes: Uint8Array): string => utf8Strict.decode(bytes)
})

/** Byte-string keys, as they are. */
export const bytesKeys: KeyCodec<Uint8Array> = Object.freeze({
  toBytes: (key: Uint8Array): Uint8Array => {
    if (!(key instanceof Uint8Array)) throw new TypeError(`key must be a Uint8Array, got ${key === null ? 'null' : typeof key}`)
    return key
  },
  fromBytes: (bytes: Uint8Array): Uint8Array => bytes
})

/** The stateful part of an application: see `defineKeyspace`. */
export interface KeyspaceApplication<K, I, O, S> {
  /** The state of a key never written (it takes no space). */
  readonly init: () => S
  /** The output of `input` for `key` in `state`. Deterministic; may run more than once per input. */
  readonly handle: (key: K, input: I, state: S) => O
  /** The state after `input`. Pure and total; may run more than once per input; must not mutate `state`. */
  readonly apply: (input: I, state: S) => S
  /** The tags under which a key in `state` appears in the index. */
  readonly index?: (state: S) => Iterable<string>
  /** Whether `state` is the default (then the key is removed). Default: it encodes like `init()`. */
  readonly isDefault?: (state: S) => boolean
}

/** The codecs of an application's values. */
export interface KeyspaceCodecs<K, I, O, S> {
  /** Keys. */
  readonly keys: KeyCodec<K>
  /** Inputs (requests). */
  readonly input: Codec<I>
  /** Outputs (answers). */
  readonly output: Codec<O>
  /** Per-key states. */
  readonly state: Codec<S>
}

/** One key's entry: its state and the tags `index` gave it. */
export interface PartitionEntry<S> {
  /** The key's state. */
  readonly state: S
  /** Its tags, sorted, without duplicates. */
  readonly tags: readonly string[]
}

/** A partition's state: its keys (by their bytes as a latin1 string) and their entries. */
export type PartitionState<S> = PersistentMap<PartitionEntry<S>>

/** One request, in an event of the partition's group. */
export interface PartitionRequest<K, I> {
  /** The key's bytes as a latin1 string (one character per byte). */
  readonly keyId: string
  /** The key. */
  readonly key: K
  /** The input. */
  readonly input: I
}

/** An event of the partition's group: the requests an owner took in one tick, in order. */
export type PartitionBatch<K, I> = ReadonlyArray<PartitionRequest<K, I>>

/** The most requests one event carries. */
export const MAX_BATCH = 512

/** What a request produced: the handler's output, or the message of what it threw. */
export type PartitionOutput<O> =
  | { readonly ok: true, readonly output: O }
  | { readonly ok: false, readonly error: string }

/** What an event produced: one output per request, in order. */
export type PartitionOutputs<O> = ReadonlyArray<PartitionOutput<O>>

/** The key bytes of a key id. */
export function keyBytes (keyId: string): Uint8Array {
  const out = new Uint8Array(keyId.length)
  for (let i = 0; i < keyId.length; i++) out[i] = keyId.charCodeAt(i)
  return out
}

/** The key id of key bytes. */
export function keyIdOf (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')
}

/** The spec of a partition's group; see the module comment. */
export function partitionSpec<K, I, O, S> (app: KeyspaceApplication<K, I, O, S>, codecs: KeyspaceCodecs<K, I, O, S>): EventSpec<PartitionBatch<K, I>, PartitionState<S>, PartitionOutputs<O>> {
  const defaultState = app.init()
  const isDefault = defaultTest(app, codecs.state, defaultState)
  /** One request on `partition`: its output and the partition after it. */
  const one = (e: PartitionRequest<K, I>, partition: PartitionState<S>): [PartitionOutput<O>, PartitionState<S>] => {
    const s = partition.get(e.keyId)?.state ?? defaultState
    let output: O
    let next: S
    let gone: boolean
    try {
      output = app.handle(e.key, e.input, s)
      next = app.apply(e.input, s)
      gone = next === defaultState || isDefault(next)
    } catch (err) {
      return [{ ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }, partition]
    }
    if (next === s) return [{ ok: true, output }, partition]
    return [{ ok: true, output }, gone ? partition.remove(e.keyId) : partition.set(e.keyId, { state: next, tags: tagsOf(app, next) })]
  }
  return {
    init: () => PersistentMap.empty<PartitionEntry<S>>(),
    apply: (batch, partition) => {
      const outputs: Array<PartitionOutput<O>> = []
      let state = partition
      // A malformed event (not a list) applies nothing: from a peer, it cannot come from this code.
      if (!Array.isArray(batch)) return { ok: true, output: outputs, state }
      for (const e of batch as PartitionBatch<K, I>) {
        const [output, after] = one(e, state)
        outputs.push(output)
        state = after
      }
      return { ok: true, output: outputs, state }
    }
  }
}

/**
 * The application's test of the default state, or one comparing encodings with `init()`'s (which
 * also refuses, as a thrown error, a state the codec cannot encode before it enters the fold).
 */
function defaultTest<S> (app: Pick<KeyspaceApplication<unknown, unknown, unknown, S>, 'isDefault'>, codec: Codec<S>, defaultState: S): (s: S) => boolean {
  if (app.isDefault !== undefined) return app.isDefault
  const bytes = encodeWith(codec, defaultState)
  return (s) => {
    const b = encodeWith(codec, s)
    return b.length === bytes.length && Buffer.compare(b, bytes) === 0
  }
}

/** The tags of `state`: strings of at most {@link MAX_TAG_BYTES}, sorted, without duplicates. */
function tagsOf<S> (app: Pick<KeyspaceApplication<unknown, unknown, unknown, S>, 'index'>, state: S): readonly string[] {
  if (app.index === undefined) return NO_TAGS
  const tags = new Set<string>()
  try {
    for (const t of app.index(state)) {
      if (typeof t === 'string' && Buffer.byteLength(t) <= MAX_TAG_BYTES) tags.add(t)
      if (tags.size >= MAX_TAGS_PER_KEY) break
    }
  } catch {
    return NO_TAGS
  }
  return tags.size === 0 ? NO_TAGS : [...tags].sort(compare)
}

const NO_TAGS: readonly string[] = Object.freeze([])

/** The codecs of a partition's group. */
export function partitionCodecs<K, I, O, S> (app: KeyspaceApplication<K, I, O, S>, codecs: KeyspaceCodecs<K, I, O, S>): FoldCodecs<PartitionBatch<K, I>, PartitionState<S>, PartitionOutputs<O>> {
  const event: Codec<PartitionBatch<K, I>> = {
    encode: (batch: PartitionBatch<K, I>, w: Writer) => {
      w.writeVarUint(batch.length)
      for (const e of batch) { w.writeBytes(keyBytes(e.keyId)); codecs.input.encode(e.input, w) }
    },
    decode: (r: Reader, limits: DecodeLimits) => {
      const n = r.readCount(MAX_BATCH, 2, 'requests')
      if (n === 0) throw new DecodeError('invalid', 'an event with no request')
      const batch: Array<PartitionRequest<K, I>> = []
      for (let i = 0; i < n; i++) {
        const bytes = r.readBytes(MAX_KEY_BYTES)
        batch.push({ keyId: keyIdOf(bytes), key: decodeKey(codecs.keys, bytes), input: codecs.input.decode(r, limits) })
      }
      return batch
    }
  }
  const state: Codec<PartitionState<S>> = {
    encode: (p: PartitionState<S>, w: Writer) => {
      w.writeVarUint(p.size)
      for (const [keyId, entry] of p.entries()) {
        w.writeBytes(keyBytes(keyId))
        codecs.state.encode(entry.state, w)
      }
    },
    decode: (r: Reader, limits: DecodeLimits) => {
      const n = r.readCount(limits.maxItems, 2, 'keys')
      let p = PersistentMap.empty<PartitionEntry<S>>()
      for (let i = 0; i < n; i++) {
        const keyId = keyIdOf(r.readBytes(MAX_KEY_BYTES))
        const s = codecs.state.decode(r, limits)
        if (p.has(keyId)) throw new DecodeError('invalid', 'a partition state lists a key twice')
        p = p.set(keyId, { state: s, tags: tagsOf(app, s) })
      }
      return p
    }
  }
  const output: Codec<PartitionOutputs<O>> = {
    encode: (outputs: PartitionOutputs<O>, w: Writer) => {
      w.writeVarUint(outputs.length)
      for (const o of outputs) {
        if (o.ok) { w.writeUint8(0); codecs.output.encode(o.output, w) } else { w.writeUint8(1); w.writeString(o.error.slice(0, 4096)) }
      }
    },
    decode: (r: Reader, limits: DecodeLimits) => {
      const n = r.readCount(MAX_BATCH, 1, 'outputs')
      const outputs: Array<PartitionOutput<O>> = []
      for (let i = 0; i < n; i++) {
        const tag = r.readUint8()
        if (tag === 0) outputs.push({ ok: true, output: codecs.output.decode(r, limits) })
        else if (tag === 1) outputs.push({ ok: false, error: r.readString(16 * 1024) })
        else throw new DecodeError('invalid', `unknown request output tag ${tag}`)
      }
      return outputs
    }
  }
  return { event, state, output }
}

/** The key of `bytes`, or a `DecodeError`. */
export function decodeKey<K> (keys: KeyCodec<K>, bytes: Uint8Array): K {
  try {
    return keys.fromBytes(bytes)
  } catch (err) {
    throw new DecodeError('invalid', `not a key: ${(err as Error).message}`)
  }
}

// ---------------------------------------------------------------------------------------------
// The index

/** One record of the index: a tag and a key id. */
export interface IndexEntry {
  /** The tag. */
  readonly tag: string
  /** The key id (see {@link PartitionRequest.keyId}). */
  readonly keyId: string
}

/** A position in the index: before every record of `tag` when `keyId` is absent, else at that record. */
export interface IndexPosition {
  /** The tag. */
  readonly tag: string
  /** The key id, or none: before every key of `tag`. */
  readonly keyId?: string | undefined
}

const indexCache = new WeakMap<object, readonly IndexEntry[]>()

/** The records of `partition`, sorted by tag, then key bytes (cached per state). */
export function indexOf<S> (partition: PartitionState<S>): readonly IndexEntry[] {
  let index = indexCache.get(partition)
  if (index !== undefined) return index
  const list: IndexEntry[] = []
  for (const [keyId, entry] of partition.entries()) for (const tag of entry.tags) list.push({ tag, keyId })
  list.sort(compareEntries)
  index = list
  indexCache.set(partition, index)
  return index
}

/** The records of `index` strictly after `position` (all of them without one), at most `limit`. */
export function recordsAfter (index: readonly IndexEntry[], position: IndexPosition | undefined, limit: number): { records: IndexEntry[], done: boolean } {
  let lo = 0
  if (position !== undefined) {
    let hi = index.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (comparePosition(index[mid]!, position) <= 0) lo = mid + 1
      else hi = mid
    }
  }
  const records = index.slice(lo, lo + limit)
  return { records, done: lo + records.length >= index.length }
}

/** Orders two records: by tag, then key id (both by UTF-16 code units; a key id's are its bytes). */
export function compareEntries (a: IndexEntry, b: IndexEntry): number {
  return compare(a.tag, b.tag) || compare(a.keyId, b.keyId)
}

/** A record against a position: negative when the record comes first (or is the position). */
function comparePosition (e: IndexEntry, p: IndexPosition): number {
  const byTag = compare(e.tag, p.tag)
  if (byTag !== 0) return byTag
  return p.keyId === undefined ? 1 : compare(e.keyId, p.keyId)
}

function compare (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
