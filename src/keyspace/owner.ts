/**
 * The serving side of the keyspace: what an owner does with a request or a search page that
 * reached it. Its one rule is the **fence**: it serves a partition only at a table version at
 * least as new as the one the caller routed by, only if that table lists it as a serving owner
 * of the partition's current generation, and only once it holds the partition's state;
 * otherwise it answers `moved` (with its table's owners, so the caller re-routes) or
 * `unavailable` (so the caller tries another owner). Nothing is applied before the fence is
 * passed, so neither answer can hide a write.
 *
 * Requests that pass the fence are applied in batches, one event each (up to
 * {@link MAX_BATCH}), in the order they arrived: every event of a group costs a signature and
 * an acknowledgement from every replica, so a busy partition pays that once per batch rather
 * than once per request. A batch is what arrived in one tick, and, for `agreed` requests,
 * everything that arrived while this owner's previous event of the partition was settling
 * (group commit: one event in flight per partition and owner, no wait when idle). Each
 * request still gets its own output and its own deadline.
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
import { MAX_BATCH, decodeKey, indexOf, keyIdOf, recordsAfter, keyBytes, type KeyCodec, type PartitionOutput, type PartitionRequest } from './partition-state.js'
import type { KeyspaceTable, PartitionRef } from './table.js'
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
  /** The fewest replicas an `agreed` input must fold on (`KeyspaceOptions.minReplicas`). */
  readonly minReplicas: number
  /** Called when a partition group's last request in flight here is answered. */
  readonly idle: (groupKey: string) => void
}

/** A request waiting for its event: queued (nothing applied yet), then applied. */
interface Waiting<K, I, O> {
  readonly request: PartitionRequest<K, I>
  readonly deadline: number
  phase: 'queued' | 'applied'
  readonly settle: (outcome: PartitionOutput<O> | Error) => void
}

/** One partition group's requests on this owner: those waiting for an event, and the events in flight. */
interface Queue<K, I, O, S> {
  readonly group: PartitionGroup<K, I, O, S>
  readonly partition: number
  readonly generation: number
  readonly agreed: Array<Waiting<K, I, O>>
  readonly one: Array<Waiting<K, I, O>>
  scheduled: boolean
  /** `agreed` events of this group applied here and not settled yet (at most one: group commit). */
  inFlight: number
}

/** A request whose deadline passed before it was applied: nothing was. */
class NotAppliedError extends Error {
  override readonly name = 'NotAppliedError'
}

/** A request whose own deadline passed while its event waited to settle. */
class DeadlineError extends Error {
  override readonly name = 'DeadlineError'
}

/** An `agreed` input that folded on fewer replicas than `minReplicas`: applied, but perhaps on the losing side of a split. */
class TooFewReplicasError extends Error {
  override readonly name = 'TooFewReplicasError'
}

type Fenced<K, I, O, S> =
  | { readonly kind: 'serve', readonly group: PartitionGroup<K, I, O, S>, readonly key: string }
  | MovedAnswer
  | { readonly kind: 'unavailable', readonly message: string }

/** Serves requests and search pages; see the module comment. */
export class Owner<K, I, O, S> {
  private readonly inflight = new Map<string, number>()
  private readonly queues = new Map<string, Queue<K, I, O, S>>()

  constructor (private readonly c: OwnerComponents<K, I, O, S>) {}

  /** Requests in flight here for the group of `partition` in `generation`. */
  inFlight (partition: number, generation: number): number {
    return this.inflight.get(`${partition}.${generation}`) ?? 0
  }

  /** Serves one request (from another peer, or from this one), counting the answer by its kind. */
  async request (m: RequestMessage): Promise<RequestReply> {
    const reply = await this.serve(m)
    const n = this.c.counters
    switch (reply.kind) {
      case 'ok': n.okAnswers++; break
      case 'moved': n.movedAnswers++; break
      case 'unavailable': n.unavailableAnswers++; break
      case 'timeout': n.timeoutAnswers++; break
      case 'handler-error': n.handlerErrors++; break
      case 'bad-request': n.badRequests++; break
    }
    return reply
  }

  private async serve (m: RequestMessage): Promise<RequestReply> {
    const c = this.c
    if (m.key.length === 0 && m.input.length === 0) return this.bad('an empty request')
    let request: PartitionRequest<K, I>
    try {
      request = { keyId: keyIdOf(m.key), key: decodeKey(c.keys, m.key), input: decodeWith(c.input, m.input, c.limits) }
    } catch (err) {
      return this.bad(`the request does not decode: ${(err as Error).message}`)
    }
    const deadline = c.clock.now() + Math.max(0, m.budgetMs - ANSWER_MARGIN_MS)
    const fenced = await this.fence(m.partition, m.generation, m.version, deadline)
    if (fenced.kind !== 'serve') return fenced
    const { group, key } = fenced
    // Not applied while too few replicas hold the partition: the caller retries, and handoff
    // adds a replica meanwhile.
    const short = m.consistency === 'agreed' ? this.replicasShort(group, m.partition, m.generation) : undefined
    if (short !== undefined) return { kind: 'unavailable', message: `${short.holding} replica(s) of the partition hold it here, fewer than the ${short.needed} an agreed request needs` }
    this.inflight.set(key, (this.inflight.get(key) ?? 0) + 1)
    try {
      const out = await this.enqueue(key, group, [m.partition, m.generation], m.consistency, request, deadline)
      c.counters.served++
      if (out instanceof Error) {
        if (out instanceof NotAppliedError) return { kind: 'unavailable', message: out.message }
        if (out instanceof ConsistencyTimeoutError || out instanceof DeadlineError || out instanceof TooFewReplicasError) return { kind: 'timeout', message: out.message }
        // Applied here, then this peer was ejected or stopped: whether it folded is unknown.
        if (out instanceof EjectedError || out instanceof StoppedError) return { kind: 'timeout', message: out.message }
        return { kind: 'unavailable', message: out instanceof GroupNotReadyError ? out.message : `${out.name}: ${out.message}` }
      }
      if (!out.ok) return { kind: 'handler-error', message: out.error }
      let bytes: Uint8Array
      try {
        bytes = encodeWith(c.output, out.output)
      } catch (err) {
        return { kind: 'handler-error', message: `the handler's output cannot be encoded by the output codec: ${(err as Error).message}` }
      }
      return { kind: 'ok', output: bytes }
    } finally {
      const left = (this.inflight.get(key) ?? 1) - 1
      if (left > 0) this.inflight.set(key, left)
      else { this.inflight.delete(key); c.idle(key) }
    }
  }

  /** Queues `request` for its group's next event; resolves with its output (or the error that ended it). */
  private async enqueue (key: string, group: PartitionGroup<K, I, O, S>, [partition, generation]: PartitionRef, consistency: 'agreed' | 'one', request: PartitionRequest<K, I>, deadline: number): Promise<PartitionOutput<O> | Error> {
    let queue = this.queues.get(key)
    if (queue === undefined) {
      queue = { group, partition, generation, agreed: [], one: [], scheduled: false, inFlight: 0 }
      this.queues.set(key, queue)
    }
    const q = queue
    const clock = this.c.clock
    return await new Promise<PartitionOutput<O> | Error>(resolve => {
      const w: Waiting<K, I, O> = {
        request,
        deadline,
        phase: 'queued',
        settle: (outcome) => { timer.cancel(); resolve(outcome) }
      }
      // Its deadline: before it is applied nothing happened; after, its outcome is unknown.
      const timer = clock.setTimer(Math.max(1, deadline - clock.now()), () => {
        if (w.phase === 'queued') {
          const list = consistency === 'one' ? q.one : q.agreed
          const at = list.indexOf(w)
          if (at >= 0) list.splice(at, 1)
          resolve(new NotAppliedError('the request waited for its partition\'s previous event past its deadline; nothing was applied'))
        } else {
          resolve(new DeadlineError('the request did not settle within its deadline; it stays applied and may still fold'))
        }
      })
      ;(consistency === 'one' ? q.one : q.agreed).push(w)
      this.schedule(key, q)
    })
  }

  private schedule (key: string, queue: Queue<K, I, O, S>): void {
    if (queue.scheduled) return
    queue.scheduled = true
    this.c.clock.defer(() => { queue.scheduled = false; this.apply(key, queue) })
  }

  /** Applies what `queue` holds: every `one` request now, `agreed` ones unless an event is settling. */
  private apply (key: string, queue: Queue<K, I, O, S>): void {
    while (queue.one.length > 0) {
      const chunk = queue.one.splice(0, MAX_BATCH)
      for (const w of chunk) w.phase = 'applied'
      try {
        const outputs = queue.group.applyFast(chunk.map(w => w.request))
        chunk.forEach((w, k) => { w.settle(outputs[k] ?? new Error('no output for the request')) })
      } catch (err) {
        for (const w of chunk) w.settle(err as Error)
      }
    }
    if (queue.inFlight === 0 && queue.agreed.length > 0) this.applyAgreed(key, queue, queue.agreed.splice(0, MAX_BATCH))
    if (queue.inFlight === 0 && queue.agreed.length === 0 && queue.one.length === 0) this.queues.delete(key)
  }

  /** One event for `chunk`, answered once it folded; then the next batch of the queue. */
  private applyAgreed (key: string, queue: Queue<K, I, O, S>, chunk: Array<Waiting<K, I, O>>): void {
    const clock = this.c.clock
    const latest = Math.max(...chunk.map(w => w.deadline))
    for (const w of chunk) w.phase = 'applied'
    queue.inFlight++
    let settled: Promise<unknown>
    try {
      settled = queue.group.applyConsistent(chunk.map(w => w.request), { timeoutMs: Math.max(1, latest - clock.now()) }).then(
        outputs => {
          const short = this.replicasShort(queue.group, queue.partition, queue.generation)
          if (short !== undefined) this.c.counters.tooFewReplicas += chunk.length
          const failure = short === undefined ? undefined : new TooFewReplicasError(`the input folded on ${short.holding} replica(s) of the partition, fewer than the ${short.needed} an agreed request needs: it stays applied there, and may be lost`)
          chunk.forEach((w, k) => { w.settle(failure ?? outputs[k] ?? new Error('no output for the request')) })
        },
        (err: Error) => { for (const w of chunk) w.settle(err) }
      )
    } catch (err) {
      for (const w of chunk) w.settle(err as Error)
      settled = Promise.resolve()
    }
    void settled.then(() => {
      queue.inFlight--
      if (this.queues.get(key) !== queue) return
      if (queue.agreed.length > 0 || queue.one.length > 0) this.schedule(key, queue)
      else if (queue.inFlight === 0) this.queues.delete(key)
    })
  }

  /**
   * How far the group is short of the replicas an `agreed` answer needs, if it is: its settled
   * participants whose UnJoin is not pending and that the table lists as serving owners of the
   * partition's generation, against `minReplicas` capped by the table's replication and
   * members. A replica that took every other as departed may be one side of a split, the other
   * side going on without it (docs/RELIABILITY.md, "Known failures"); what it alone folded
   * would be lost when the two meet, so it is not reported as done. Only owners count: when the
   * last of them leaves, the partition is restored from that one's copy (the table's
   * `lastOwner`), and an input folded among replicas that stood in for it is not in that copy
   * (harsh seed 214: an incoming and a releasing replica folded a write after both owners'
   * ejection, and the restore from the last owner lacked it).
   */
  private replicasShort (group: PartitionGroup<K, I, O, S>, partition: number, generation: number): { readonly holding: number, readonly needed: number } | undefined {
    const table = this.c.table.current()
    if (table === undefined) return undefined
    const needed = Math.min(this.c.minReplicas, table.replication, table.members.length)
    const a = table.assignments[partition]
    const owners = a?.generation === generation ? a.owners : []
    const { settled, projected } = group.participants()
    const holding = settled.filter(p => projected.includes(p) && owners.includes(p)).length
    return holding >= needed ? undefined : { holding, needed }
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
    return { kind: 'bad-request', message }
  }
}
