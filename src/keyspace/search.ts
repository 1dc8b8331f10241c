/**
 * The cluster-wide index scroll: `search(from)` yields every (tag, key) record strictly after
 * a position, in one global order (by tag, then key bytes), as an async iterator.
 *
 * The index is partitioned like the keys: each partition's records live in its own state.
 * The scroll keeps, **per partition**, the last record it fetched and a small buffer of the
 * next ones, and merges the buffers (a heap) so records come out in global order; when a
 * partition's buffer runs dry it asks an owner of that partition for the records after that
 * partition's own last one. Since a key belongs to one partition and each partition's records
 * are ordered, no record is skipped or repeated, whichever owner answers each page: a page
 * asked of a peer that no longer owns the partition is answered `moved` and asked again of
 * the new owners, from the same position. That is what keeps a scroll correct while
 * partitions move (see docs/ARCHITECTURE.md, "Keyspace").
 *
 * Positions travel as opaque **cursors** (each record carries one): base64url of a magic
 * number, a fingerprint of the cluster and keyspace, the tag and the key bytes, so a cursor is
 * refused (`ForeignCursorError`) by another cluster's or keyspace's search.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { Reader, Writer } from '../codec/buffer.js'
import type { Participant } from '../eventfold/types.js'
import { AbortError, PeerUnreachableError, RemoteError, TimeoutError } from '../transport/errors.js'
import { NoHandlerError } from '../peer/errors.js'
import type { KeyspaceParts } from './context.js'
import { ForeignCursorError, InvalidCursorError, PartitionUnavailableError } from './errors.js'
import { MAX_TAG_BYTES, MAX_KEY_BYTES, keyIdOf, decodeKey, type KeyCodec } from './partition-state.js'
import { candidates } from './router.js'
import type { KeyspaceTable } from './table.js'
import { MAX_SEARCH_LIMIT, type SearchMessage, type SearchPart, type SearchPartReply } from './wire.js'

/** One record of the index. */
export interface IndexRecord<K> {
  /** The tag. */
  readonly tag: string
  /** The key whose state has this tag. */
  readonly key: K
  /** Where this record is: `search({ after: cursor })` continues strictly after it. */
  readonly cursor: string
}

/** Where a scroll starts. */
export type SearchFrom =
  | string
  | {
    /** Continue strictly after the record of this cursor. */
    readonly after: string
  }

/** Options of `search`. */
export interface SearchOptions {
  /**
   * Records fetched per partition per page.
   * @default 256
   */
  readonly pageSize?: number
  /**
   * How long one page may take before the scroll fails with `PartitionUnavailableError`.
   * @default 10000
   */
  readonly timeoutMs?: number
  /** Ends the scroll with an `AbortError`. */
  readonly signal?: AbortSignal
}

const CURSOR_MAGIC = [0x4c, 0x4b, 0x01] // "LK", version 1
const FINGERPRINT_BYTES = 8

/** The fingerprint cursors of one keyspace of one cluster carry. */
export function cursorFingerprint (cluster: string, service: string): Uint8Array {
  return createHash('sha256').update(`legion-keyspace\u0000${cluster}\u0000${service}`).digest().subarray(0, FINGERPRINT_BYTES)
}

/** The cursor of a record. */
export function encodeCursor (fingerprint: Uint8Array, tag: string, key: Uint8Array): string {
  const w = new Writer(32 + tag.length + key.length)
  for (const b of CURSOR_MAGIC) w.writeUint8(b)
  w.writeRaw(fingerprint)
  w.writeString(tag)
  w.writeBytes(key)
  return Buffer.from(w.finish()).toString('base64url')
}

/**
 * The position of a cursor.
 * @throws InvalidCursorError when it is not a cursor; ForeignCursorError when it is another keyspace's
 */
export function decodeCursor (fingerprint: Uint8Array, cursor: unknown): { tag: string, key: Uint8Array } {
  if (typeof cursor !== 'string' || cursor.length > 4 * (MAX_TAG_BYTES + MAX_KEY_BYTES)) throw new InvalidCursorError('a cursor is a string from an IndexRecord')
  const bytes = new Uint8Array(Buffer.from(cursor, 'base64url'))
  try {
    const r = new Reader(bytes)
    for (const b of CURSOR_MAGIC) if (r.readUint8() !== b) throw new InvalidCursorError('unknown format')
    const fp = r.readRaw(FINGERPRINT_BYTES)
    const tag = r.readString(MAX_TAG_BYTES)
    const key = r.readBytes(MAX_KEY_BYTES)
    r.expectEnd()
    if (Buffer.compare(fp, fingerprint) !== 0) throw new ForeignCursorError()
    return { tag, key }
  } catch (err) {
    if (err instanceof ForeignCursorError || err instanceof InvalidCursorError) throw err
    throw new InvalidCursorError((err as Error).message)
  }
}

/** What a scroll needs besides the shared parts. */
export interface ScrollComponents<K> extends KeyspaceParts {
  /** Keys. */
  readonly keys: KeyCodec<K>
  /** This keyspace's cursor fingerprint. */
  readonly fingerprint: Uint8Array
  /** Asks `peer` (another peer) for a page. */
  readonly send: (peer: Participant, message: SearchMessage, timeoutMs: number, signal: AbortSignal | undefined) => Promise<readonly SearchPartReply[]>
  /** Serves a page on this peer. */
  readonly local: (message: SearchMessage) => Promise<readonly SearchPartReply[]>
  /** Whether the keyspace is stopped. */
  readonly stopped: () => boolean
}

interface Buffered { readonly tag: string, readonly keyId: string, readonly key: Uint8Array }

interface PartitionCursor {
  readonly partition: number
  /** The last record fetched (the next page starts after it). */
  after: { tag: string, key: Uint8Array | undefined } | undefined
  buffer: Buffered[]
  at: number
  done: boolean
  /** An owner's newer view of the partition, after a `moved` answer. */
  hint: { version: number, generation: number, owners: readonly Participant[] } | undefined
}

/** One scroll; see the module comment. */
export class Scroll<K> implements AsyncIterableIterator<IndexRecord<K>> {
  private cursors: PartitionCursor[] | undefined
  private readonly heap: PartitionCursor[] = []
  private finished = false
  private readonly pageSize: number
  private readonly timeoutMs: number

  constructor (private readonly c: ScrollComponents<K>, private readonly start: { tag: string, key: Uint8Array | undefined } | undefined, private readonly options: SearchOptions) {
    this.pageSize = Math.min(MAX_SEARCH_LIMIT, options.pageSize ?? 256)
    this.timeoutMs = options.timeoutMs ?? 10_000
  }

  [Symbol.asyncIterator] (): AsyncIterableIterator<IndexRecord<K>> {
    return this
  }

  async return (): Promise<IteratorResult<IndexRecord<K>>> {
    this.finished = true
    return { done: true, value: undefined }
  }

  async next (): Promise<IteratorResult<IndexRecord<K>>> {
    if (this.finished) return { done: true, value: undefined }
    try {
      return await this.advance()
    } catch (err) {
      this.finished = true
      throw err
    }
  }

  private async advance (): Promise<IteratorResult<IndexRecord<K>>> {
    const c = this.c
    if (this.options.signal?.aborted === true) throw new AbortError(undefined, { cause: this.options.signal.reason })
    if (c.stopped()) { this.finished = true; return { done: true, value: undefined } }
    if (this.cursors === undefined) {
      const table = c.table.current()
      if (table === undefined) throw new PartitionUnavailableError(0, 'this peer does not hold the keyspace table yet')
      this.cursors = Array.from({ length: table.partitions }, (_, partition) => ({ partition, after: this.start, buffer: [], at: 0, done: false, hint: undefined }))
      await this.refill(this.cursors)
    }
    const top = this.heap[0]
    if (top === undefined) { this.finished = true; return { done: true, value: undefined } }
    const record = top.buffer[top.at]!
    top.at++
    if (top.at < top.buffer.length) siftDown(this.heap, 0)
    else {
      popTop(this.heap)
      if (!top.done) await this.refill([top])
    }
    return { done: false, value: { tag: record.tag, key: decodeKey(c.keys, record.key), cursor: encodeCursor(c.fingerprint, record.tag, record.key) } }
  }

  /** Fetches the next page of each of `parts` (all with empty buffers) and puts their heads on the heap. */
  private async refill (parts: PartitionCursor[]): Promise<void> {
    const c = this.c
    const deadline = c.clock.now() + this.timeoutMs
    let pending = parts.filter(p => !p.done)
    const tried = new Map<number, Set<Participant>>()
    for (let round = 0; pending.length > 0; round++) {
      const left = deadline - c.clock.now()
      if (left <= 0 || round > 64) throw new PartitionUnavailableError(pending[0]!.partition, 'no owner answered the search in time')
      const table = c.table.current()
      const byPeer = new Map<Participant, { version: number, parts: Array<{ cursor: PartitionCursor, part: SearchPart }> }>()
      const waiting: PartitionCursor[] = []
      for (const cursor of pending) {
        const route = routeOf(table, cursor)
        const seen = tried.get(cursor.partition) ?? new Set<Participant>()
        const peer = route === undefined ? undefined : candidates(route.owners, c.self, cursor.partition).find(o => !seen.has(o))
        if (peer === undefined || route === undefined) { tried.delete(cursor.partition); waiting.push(cursor); continue }
        seen.add(peer)
        tried.set(cursor.partition, seen)
        let entry = byPeer.get(peer)
        if (entry === undefined) { entry = { version: route.version, parts: [] }; byPeer.set(peer, entry) }
        entry.version = Math.max(entry.version, route.version)
        entry.parts.push({ cursor, part: { partition: cursor.partition, generation: route.generation, after: cursor.after, limit: this.pageSize } })
      }
      const next: PartitionCursor[] = [...waiting]
      await Promise.all([...byPeer].map(async ([peer, { version, parts: asked }]) => {
        const message: SearchMessage = { version, budgetMs: left, parts: asked.map(a => a.part) }
        let replies: readonly SearchPartReply[]
        try {
          replies = peer === c.self ? await c.local(message) : await c.send(peer, message, left, this.options.signal)
        } catch (err) {
          if (err instanceof AbortError) throw err
          if (err instanceof PeerUnreachableError || err instanceof NoHandlerError || err instanceof RemoteError || err instanceof TimeoutError) {
            next.push(...asked.map(a => a.cursor))
            return
          }
          throw err
        }
        const byPartition = new Map(replies.map(r => [r.partition, r]))
        for (const { cursor } of asked) {
          const reply = byPartition.get(cursor.partition)
          if (reply === undefined || reply.kind === 'unavailable') { next.push(cursor); continue }
          if (reply.kind === 'moved') {
            if (cursor.hint === undefined || reply.version > cursor.hint.version) cursor.hint = { version: reply.version, generation: reply.generation, owners: reply.owners }
            tried.delete(cursor.partition)
            next.push(cursor)
            continue
          }
          this.take(cursor, reply)
        }
      }))
      pending = next
      if (pending.length > 0 && waiting.length === pending.length) await this.sleep(Math.min(200, 10 * 2 ** round, Math.max(1, deadline - c.clock.now())))
    }
  }

  /** Takes a page of records for `cursor`. */
  private take (cursor: PartitionCursor, reply: Extract<SearchPartReply, { kind: 'records' }>): void {
    cursor.buffer = reply.records.map(r => ({ tag: r.tag, key: r.key, keyId: keyIdOf(r.key) }))
    cursor.at = 0
    cursor.done = reply.done
    cursor.hint = undefined
    const last = cursor.buffer[cursor.buffer.length - 1]
    if (last !== undefined) cursor.after = { tag: last.tag, key: last.key }
    if (cursor.buffer.length > 0) pushHeap(this.heap, cursor)
    else cursor.done = true
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => { this.c.clock.setTimer(ms, resolve) })
  }
}

function routeOf (table: KeyspaceTable | undefined, cursor: PartitionCursor): { version: number, generation: number, owners: readonly Participant[] } | undefined {
  const a = table?.assignments[cursor.partition]
  const own = table === undefined || a === undefined ? undefined : { version: table.version, generation: a.generation, owners: a.owners }
  const hint = cursor.hint
  if (own === undefined) return hint
  return hint !== undefined && hint.version > own.version ? hint : own
}

// A binary heap of partition cursors ordered by their head record.

function head (c: PartitionCursor): Buffered {
  return c.buffer[c.at]!
}

function less (a: PartitionCursor, b: PartitionCursor): boolean {
  const x = head(a)
  const y = head(b)
  return x.tag < y.tag || (x.tag === y.tag && x.keyId < y.keyId)
}

function pushHeap (heap: PartitionCursor[], c: PartitionCursor): void {
  heap.push(c)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (!less(heap[i]!, heap[parent]!)) break
    ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
    i = parent
  }
}

function popTop (heap: PartitionCursor[]): void {
  const last = heap.pop()!
  if (heap.length === 0) return
  heap[0] = last
  siftDown(heap, 0)
}

function siftDown (heap: PartitionCursor[], i: number): void {
  for (;;) {
    const l = 2 * i + 1
    const r = l + 1
    let m = i
    if (l < heap.length && less(heap[l]!, heap[m]!)) m = l
    if (r < heap.length && less(heap[r]!, heap[m]!)) m = r
    if (m === i) return
    ;[heap[i], heap[m]] = [heap[m]!, heap[i]!]
    i = m
  }
}
