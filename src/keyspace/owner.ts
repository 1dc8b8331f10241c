/**
 * The serving side of the keyspace: what an owner does with a request or a search page that
 * reached it. Its one rule is the **fence**: it serves a partition only at a table version at
 * least as new as the one the caller routed by, only if that table lists it as a serving owner
 * of the partition's current generation, and only once it holds the partition's state;
 * otherwise it answers `moved` (with its table's owners, so the caller re-routes) or
 * `unavailable` (so the caller tries another owner). Nothing is applied before the fence is
 * passed, so neither answer can hide a write.
 *
 * It counts the requests in flight per partition group: a replica that leaves a partition
 * (handoff.ts) waits until none is left before it removes itself from the group, so a request
 * it accepted as an owner is always answered as one.
 *
 * @module
 */
import type { Codec, DecodeLimits } from '../codec/codec.js'
import { decodeWith, encodeWith } from '../codec/codec.js'
import { ConsistencyTimeoutError, EjectedError, GroupNotReadyError, StoppedError } from '../peer/errors.js'
import { TimeoutError } from '../transport/errors.js'
import type { KeyspaceParts, PartitionGroup, PartitionGroups } from './context.js'
import { decodeKey, indexOf, keyIdOf, recordsAfter, keyBytes, type KeyCodec, type PartitionEvent } from './partition-state.js'
import type { KeyspaceTable } from './table.js'
import type { MovedAnswer, RequestMessage, RequestReply, SearchMessage, SearchPartReply } from './wire.js'

/** How long an owner waits for its table to catch up with a caller's, or for a state to arrive. */
const MAX_FENCE_WAIT_MS = 2000
/** What an owner keeps of the caller's budget to answer in time. */
const ANSWER_MARGIN_MS = 100

/** What serving needs besides the shared parts. */
export interface OwnerComponents<K, I, O, S> extends KeyspaceParts {
  /** The partitions' groups. */
  readonly groups: PartitionGroups<K, I, O, S>
  /** Keys. */
  readonly keys: KeyCodec<K>
  /** Inputs. */
  readonly input: Codec<I>
  /** Outputs. */
  readonly output: Codec<O>
  /** Message limits. */
  readonly limits: DecodeLimits
  /** Called when a partition group's last request in flight here is answered. */
  readonly idle: (groupKey: string) => void
}

type Fenced<K, I, O, S> =
  | { readonly kind: 'serve', readonly group: PartitionGroup<K, I, O, S>, readonly key: string }
  | MovedAnswer
  | { readonly kind: 'unavailable', readonly message: string }

/** Serves requests and search pages; see the module comment. */
export class Owner<K, I, O, S> {
  private readonly inflight = new Map<string, number>()

  constructor (private readonly c: OwnerComponents<K, I, O, S>) {}

  /** Requests in flight here for the group of `partition` in `generation`. */
  inFlight (partition: number, generation: number): number {
    return this.inflight.get(`${partition}.${generation}`) ?? 0
  }

  /** Serves one request (from another peer, or from this one). */
  async request (m: RequestMessage): Promise<RequestReply> {
    const c = this.c
    if (m.key.length === 0 && m.input.length === 0) return this.bad('an empty request')
    let event: PartitionEvent<K, I>
    try {
      event = { keyId: keyIdOf(m.key), key: decodeKey(c.keys, m.key), input: decodeWith(c.input, m.input, c.limits) }
    } catch (err) {
      return this.bad(`the request does not decode: ${(err as Error).message}`)
    }
    const deadline = c.clock.now() + Math.max(0, m.budgetMs - ANSWER_MARGIN_MS)
    const fenced = await this.fence(m.partition, m.generation, m.version, deadline)
    if (fenced.kind !== 'serve') {
      if (fenced.kind === 'moved') c.counters.movedAnswers++
      return fenced
    }
    const { group, key } = fenced
    this.inflight.set(key, (this.inflight.get(key) ?? 0) + 1)
    try {
      const out = m.consistency === 'one'
        ? group.applyFast(event)
        : await group.applyConsistent(event, { timeoutMs: Math.max(1, deadline - c.clock.now()) })
      c.counters.served++
      if (!out.ok) { c.counters.handlerErrors++; return { kind: 'handler-error', message: out.error } }
      let bytes: Uint8Array
      try {
        bytes = encodeWith(c.output, out.output)
      } catch (err) {
        c.counters.handlerErrors++
        return { kind: 'handler-error', message: `the handler's output cannot be encoded by the output codec: ${(err as Error).message}` }
      }
      return { kind: 'ok', output: bytes }
    } catch (err) {
      if (err instanceof ConsistencyTimeoutError) return { kind: 'timeout', message: err.message }
      // Applied here, then this peer was ejected or stopped: whether it folded is unknown.
      if (err instanceof EjectedError || err instanceof StoppedError) return { kind: 'timeout', message: err.message }
      if (err instanceof GroupNotReadyError) return { kind: 'unavailable', message: err.message }
      return { kind: 'unavailable', message: (err as Error).message }
    } finally {
      const left = (this.inflight.get(key) ?? 1) - 1
      if (left > 0) this.inflight.set(key, left)
      else { this.inflight.delete(key); c.idle(key) }
    }
  }

  /** Serves one search page: the next records of each partition asked for. */
  async search (m: SearchMessage): Promise<SearchPartReply[]> {
    const c = this.c
    c.counters.searchPages++
    const deadline = c.clock.now() + Math.min(MAX_FENCE_WAIT_MS, Math.max(0, m.budgetMs - ANSWER_MARGIN_MS))
    const out: SearchPartReply[] = []
    for (const part of m.parts) {
      const fenced = await this.fence(part.partition, part.generation, m.version, deadline)
      if (fenced.kind === 'moved') { out.push({ ...fenced, partition: part.partition }); continue }
      if (fenced.kind === 'unavailable') { out.push({ kind: 'unavailable', partition: part.partition, message: fenced.message }); continue }
      // The projected state: what this replica has, acknowledged by all or not (see ARCHITECTURE.md).
      const index = indexOf(fenced.group.readState().projected)
      const after = part.after === undefined ? undefined : { tag: part.after.tag, keyId: part.after.key === undefined ? undefined : keyIdOf(part.after.key) }
      const page = recordsAfter(index, after, part.limit)
      out.push({ kind: 'records', partition: part.partition, done: page.done, records: page.records.map(r => ({ tag: r.tag, key: keyBytes(r.keyId) })) })
    }
    return out
  }

  /**
   * The fence (see the module comment). Waits, until `deadline` at most, for this peer's table
   * to reach `version` and for the state to arrive.
   */
  private async fence (partition: number, generation: number, version: number, deadline: number): Promise<Fenced<K, I, O, S>> {
    const c = this.c
    let table = c.table.current()
    if (table === undefined) return { kind: 'unavailable', message: 'this peer does not hold the keyspace table yet' }
    if (!Number.isInteger(partition) || partition < 0 || partition >= table.partitions) return { kind: 'unavailable', message: `no partition ${partition}` }
    if (table.version < version) {
      try {
        table = await c.table.until(t => t.version >= version, Math.min(MAX_FENCE_WAIT_MS, Math.max(1, deadline - c.clock.now())))
      } catch (err) {
        if (!(err instanceof TimeoutError)) throw err
        return { kind: 'unavailable', message: `this peer's table is at version ${table.version}, behind the caller's ${version}` }
      }
    }
    const moved = this.movedAnswer(table, partition, generation)
    if (moved !== undefined) return moved
    const group = c.groups.get(partition, generation)
    if (!group.held()) {
      try {
        await group.whenHeld({ timeoutMs: Math.min(MAX_FENCE_WAIT_MS, Math.max(1, deadline - c.clock.now())) })
      } catch {
        return { kind: 'unavailable', message: 'this owner does not hold the partition\'s state yet' }
      }
      // The table may have moved while waiting.
      const again = this.movedAnswer(c.table.current() ?? table, partition, generation)
      if (again !== undefined) return again
    }
    return { kind: 'serve', group, key: `${partition}.${generation}` }
  }

  /** `moved` unless `table` makes this peer a serving owner of `partition` in `generation`. */
  private movedAnswer (table: KeyspaceTable, partition: number, generation: number): MovedAnswer | undefined {
    const a = table.assignments[partition]!
    if (a.generation === generation && a.owners.includes(this.c.self)) return undefined
    return { kind: 'moved', version: table.version, generation: a.generation, owners: a.owners }
  }

  private bad (message: string): RequestReply {
    this.c.counters.badRequests++
    return { kind: 'bad-request', message }
  }
}
