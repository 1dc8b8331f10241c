/**
 * The keyspace's messages, carried on two typed channels of the service (`<service>/request`
 * and `<service>/search`) over the peer's call streams. Each is a `Codec`, decoded under the
 * peer's limits; anything malformed is a `DecodeError` the messaging layer answers for.
 * docs/PROTOCOL.md, "Keyspace", gives the layouts.
 *
 * Every request carries the table version the caller routed by and the partition's
 * generation, so an owner can fence it (answer `moved` when the table it knows, at that
 * version or later, no longer makes it an owner) and a replica of another generation never
 * serves it.
 *
 * @module
 */
import type { Codec, DecodeLimits } from '../codec/codec.js'
import type { Reader, Writer } from '../codec/buffer.js'
import { DecodeError } from '../codec/errors.js'
import type { Participant } from '../eventfold/types.js'
import { MAX_KEY_BYTES, MAX_TAG_BYTES } from './partition-state.js'
import { MAX_REPLICATION } from './table.js'

/** How a request is answered: after every replica acknowledged it, or by one replica at once. */
export type RequestConsistency = 'agreed' | 'one'

/** A request for one key, routed to an owner of its partition. */
export interface RequestMessage {
  /** The table version the caller routed by. */
  readonly version: number
  /** The key's partition. */
  readonly partition: number
  /** The partition's generation in that table. */
  readonly generation: number
  /** How long the caller waits, in milliseconds (the owner gives up a little earlier). */
  readonly budgetMs: number
  /** When to answer. */
  readonly consistency: RequestConsistency
  /** The key's bytes. */
  readonly key: Uint8Array
  /** The input, in the application's codec. */
  readonly input: Uint8Array
}

/** Where a partition is served, as the answering peer's table says. */
export interface MovedAnswer {
  /** It is not served here. */
  readonly kind: 'moved'
  /** The answering peer's table version. */
  readonly version: number
  /** The partition's generation there. */
  readonly generation: number
  /** Its serving owners there. */
  readonly owners: readonly Participant[]
}

/** The answer to a {@link RequestMessage}. */
export type RequestReply =
  | { readonly kind: 'ok', readonly output: Uint8Array }
  | { readonly kind: 'handler-error', readonly message: string }
  | MovedAnswer
  /** This owner cannot serve now (it does not hold the state yet, or it is stopping): try another. */
  | { readonly kind: 'unavailable', readonly message: string }
  /** The request was applied but did not settle in time: its outcome is unknown. */
  | { readonly kind: 'timeout', readonly message: string }
  /** The request is malformed (its input does not decode, the partition does not exist). */
  | { readonly kind: 'bad-request', readonly message: string }

/** One partition's part of a search page request. */
export interface SearchPart {
  /** The partition. */
  readonly partition: number
  /** Its generation in the caller's table. */
  readonly generation: number
  /** Records strictly after this position (tag, and key bytes or none: before every key of the tag). */
  readonly after: { readonly tag: string, readonly key: Uint8Array | undefined } | undefined
  /** The most records to return. */
  readonly limit: number
}

/** A search page request: the next records of several partitions served by one peer. */
export interface SearchMessage {
  /** The table version the caller routed by. */
  readonly version: number
  /** How long the caller waits, in milliseconds. */
  readonly budgetMs: number
  /** The partitions asked for. */
  readonly parts: readonly SearchPart[]
}

/** One partition's part of a search page answer. */
export type SearchPartReply =
  | { readonly kind: 'records', readonly partition: number, readonly records: ReadonlyArray<{ readonly tag: string, readonly key: Uint8Array }>, readonly done: boolean }
  | (MovedAnswer & { readonly partition: number })
  | { readonly kind: 'unavailable', readonly partition: number, readonly message: string }

/** The most records one search part may ask for. */
export const MAX_SEARCH_LIMIT = 10_000
/** The most partitions one search page may ask for. */
const MAX_SEARCH_PARTS = 1 << 14
const MAX_MESSAGE_TEXT = 4096

const CONSISTENCY: readonly RequestConsistency[] = ['agreed', 'one']

/** The codec of {@link RequestMessage}. */
export const requestCodec: Codec<RequestMessage> = Object.freeze({
  encode: (m: RequestMessage, w: Writer) => {
    w.writeVarUint(m.version)
    w.writeVarUint(m.partition)
    w.writeVarUint(m.generation)
    w.writeVarUint(Math.max(0, Math.round(m.budgetMs)))
    w.writeUint8(CONSISTENCY.indexOf(m.consistency))
    w.writeBytes(m.key)
    w.writeBytes(m.input)
  },
  decode: (r: Reader, limits: DecodeLimits): RequestMessage => {
    const version = r.readVarUint()
    const partition = r.readVarUint()
    const generation = r.readVarUint()
    const budgetMs = r.readVarUint()
    const consistency = CONSISTENCY[r.readUint8()]
    if (consistency === undefined) throw new DecodeError('invalid', 'unknown consistency')
    return { version, partition, generation, budgetMs, consistency, key: r.readBytes(MAX_KEY_BYTES), input: r.readBytes(limits.maxBytes) }
  }
})

const REPLY_KINDS = ['ok', 'handler-error', 'moved', 'unavailable', 'timeout', 'bad-request'] as const

/** The codec of {@link RequestReply}. */
export const requestReplyCodec: Codec<RequestReply> = Object.freeze({
  encode: (m: RequestReply, w: Writer) => {
    w.writeUint8(REPLY_KINDS.indexOf(m.kind))
    switch (m.kind) {
      case 'ok': w.writeBytes(m.output); return
      case 'moved': writeMoved(m, w); return
      default: w.writeString(m.message.slice(0, MAX_MESSAGE_TEXT))
    }
  },
  decode: (r: Reader, limits: DecodeLimits): RequestReply => {
    const kind = REPLY_KINDS[r.readUint8()]
    switch (kind) {
      case 'ok': return { kind, output: r.readBytes(limits.maxBytes) }
      case 'moved': return readMoved(r)
      case undefined: throw new DecodeError('invalid', 'unknown request reply kind')
      default: return { kind, message: r.readString(4 * MAX_MESSAGE_TEXT) }
    }
  }
})

function writeMoved (m: MovedAnswer, w: Writer): void {
  w.writeVarUint(m.version)
  w.writeVarUint(m.generation)
  w.writeVarUint(m.owners.length)
  for (const o of m.owners) w.writeString(o)
}

function readMoved (r: Reader): MovedAnswer {
  const version = r.readVarUint()
  const generation = r.readVarUint()
  const n = r.readCount(MAX_REPLICATION * 2, 1, 'owners')
  const owners: Participant[] = []
  for (let i = 0; i < n; i++) owners.push(r.readString(256))
  return { kind: 'moved', version, generation, owners }
}

/** The codec of {@link SearchMessage}. */
export const searchCodec: Codec<SearchMessage> = Object.freeze({
  encode: (m: SearchMessage, w: Writer) => {
    w.writeVarUint(m.version)
    w.writeVarUint(Math.max(0, Math.round(m.budgetMs)))
    w.writeVarUint(m.parts.length)
    for (const p of m.parts) {
      w.writeVarUint(p.partition)
      w.writeVarUint(p.generation)
      w.writeVarUint(p.limit)
      if (p.after === undefined) { w.writeUint8(0); continue }
      w.writeUint8(p.after.key === undefined ? 1 : 2)
      w.writeString(p.after.tag)
      if (p.after.key !== undefined) w.writeBytes(p.after.key)
    }
  },
  decode: (r: Reader): SearchMessage => {
    const version = r.readVarUint()
    const budgetMs = r.readVarUint()
    const n = r.readCount(MAX_SEARCH_PARTS, 4, 'search parts')
    const parts: SearchPart[] = []
    for (let i = 0; i < n; i++) {
      const partition = r.readVarUint()
      const generation = r.readVarUint()
      const limit = r.readVarUint()
      if (limit < 1 || limit > MAX_SEARCH_LIMIT) throw new DecodeError('invalid', `a search limit must be in [1, ${MAX_SEARCH_LIMIT}]`)
      const has = r.readUint8()
      if (has > 2) throw new DecodeError('invalid', 'unknown search position tag')
      const after = has === 0 ? undefined : { tag: r.readString(MAX_TAG_BYTES), key: has === 2 ? r.readBytes(MAX_KEY_BYTES) : undefined }
      parts.push({ partition, generation, limit, after })
    }
    return { version, budgetMs, parts }
  }
})

/** The codec of a search page answer. */
export const searchReplyCodec: Codec<readonly SearchPartReply[]> = Object.freeze({
  encode: (parts: readonly SearchPartReply[], w: Writer) => {
    w.writeVarUint(parts.length)
    for (const p of parts) {
      w.writeVarUint(p.partition)
      switch (p.kind) {
        case 'records':
          w.writeUint8(0)
          w.writeUint8(p.done ? 1 : 0)
          w.writeVarUint(p.records.length)
          for (const rec of p.records) { w.writeString(rec.tag); w.writeBytes(rec.key) }
          break
        case 'moved': w.writeUint8(1); writeMoved(p, w); break
        case 'unavailable': w.writeUint8(2); w.writeString(p.message.slice(0, MAX_MESSAGE_TEXT))
      }
    }
  },
  decode: (r: Reader, limits: DecodeLimits): readonly SearchPartReply[] => {
    const n = r.readCount(MAX_SEARCH_PARTS, 2, 'search parts')
    const out: SearchPartReply[] = []
    for (let i = 0; i < n; i++) {
      const partition = r.readVarUint()
      const kind = r.readUint8()
      if (kind === 0) {
        const done = r.readUint8() === 1
        const count = r.readCount(Math.min(limits.maxItems, MAX_SEARCH_LIMIT), 2, 'records')
        const records: Array<{ tag: string, key: Uint8Array }> = []
        for (let k = 0; k < count; k++) records.push({ tag: r.readString(MAX_TAG_BYTES), key: r.readBytes(MAX_KEY_BYTES) })
        out.push({ kind: 'records', partition, records, done })
      } else if (kind === 1) {
        out.push({ ...readMoved(r), partition })
      } else if (kind === 2) {
        out.push({ kind: 'unavailable', partition, message: r.readString(4 * MAX_MESSAGE_TEXT) })
      } else {
        throw new DecodeError('invalid', 'unknown search part reply kind')
      }
    }
    return out
  }
})
