/**
 * The calling side of a request, on any peer: the key's partition, the owners to try (this
 * peer first when it serves the partition, so that call never leaves the process; otherwise
 * the same owner of the partition for every caller, which batches them), and what to do with
 * each answer:
 * `moved` re-routes by the answering owner's newer table, `unavailable` and an unreachable
 * owner move on to the next owner, and after every owner was tried the caller backs off and
 * tries again with the table it has then, until its deadline. A request is resent only after
 * an answer that proves it was not applied (`moved`, `unavailable`, a refused stream); after
 * a timeout its outcome is unknown and the caller is told so (`RequestTimeoutError`).
 *
 * An owner that leaves the cluster while a request waits on it (killed, or cut off, and
 * ejected) is given up at once and the next owner is tried: the request may then apply twice
 * if the lost owner had passed it on before it went (requests are at least once across the
 * failure of the owner that took them; docs/ARCHITECTURE.md, "Keyspace").
 *
 * @module
 */
import { fnv1a32 } from '../partitions/partition-table.js'
import type { Participant } from '../eventfold/types.js'
import { AbortError, PeerUnreachableError, RemoteError, TimeoutError } from '../transport/errors.js'
import { NoHandlerError } from '../peer/errors.js'
import type { KeyspaceParts } from './context.js'
import { BadRequestError, HandlerError, PartitionUnavailableError, RequestTimeoutError } from './errors.js'
import type { KeyspaceTable } from './table.js'
import type { MovedAnswer, RequestMessage, RequestReply } from './wire.js'

/** The partition of a key's bytes among `partitions`. */
export function partitionOfBytes (bytes: Uint8Array, partitions: number): number {
  return fnv1a32(bytes) % partitions
}

/**
 * The owners of a partition to try, in order: `self` first if it serves it (the request never
 * leaves the process); otherwise every owner, starting at index `salt` (the partition's
 * number): every caller sends a partition's requests to the same owner, whose requests of one
 * tick become one event, and partitions spread over the owners.
 */
export function candidates (owners: readonly Participant[], self: Participant, salt: number): Participant[] {
  if (owners.length === 0) return []
  if (owners.includes(self)) return [self, ...owners.filter(o => o !== self)]
  const start = salt % owners.length
  return [...owners.slice(start), ...owners.slice(0, start)]
}

/** Where a request goes next: a table's view of its partition, or an owner's newer one. */
interface Route {
  readonly version: number
  readonly generation: number
  readonly owners: readonly Participant[]
}

/** What routing needs besides the shared parts. */
export interface RouterComponents extends KeyspaceParts {
  /** Sends a request to `peer` (another peer) and resolves with its answer. */
  readonly send: (peer: Participant, message: RequestMessage, timeoutMs: number, signal: AbortSignal | undefined) => Promise<RequestReply>
  /** Serves a request on this peer. */
  readonly local: (message: RequestMessage) => Promise<RequestReply>
  /** Whether `peer` is a member of the cluster now (projected). */
  readonly isMember: (peer: Participant) => boolean
  /** Calls `listener` on every change of the cluster's membership; returns the remover. */
  readonly onMembership: (listener: () => void) => () => void
}

/** The owner a request waited on left the cluster. */
class OwnerLeftError extends Error {
  override readonly name = 'OwnerLeftError'
}

/** Backoff between rounds of trying every owner: doubling from this, up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 20
const MAX_BACKOFF_MS = 500
/** Rounds at most, however long the deadline. */
const MAX_ROUNDS = 64

/** Routes requests; see the module comment. */
export class Router {
  constructor (private readonly c: RouterComponents) {}

  /**
   * Routes a request whose key and input are encoded, and resolves with the output bytes.
   * @throws HandlerError, RequestTimeoutError, PartitionUnavailableError, BadRequestError, AbortError
   */
  async route (partition: number, key: Uint8Array, input: Uint8Array, consistency: 'agreed' | 'one', timeoutMs: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const c = this.c
    const deadline = c.clock.now() + timeoutMs
    let hint: Route | undefined
    let lastProblem = 'no owner answered'
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
      const table = c.table.current()
      const route = bestRoute(table, partition, hint)
      if (route === undefined) lastProblem = 'this peer does not hold the keyspace table yet'
      let rerouted = false
      for (const peer of route === undefined ? [] : candidates(route.owners, c.self, partition)) {
        const left = deadline - c.clock.now()
        if (left <= 0) break
        const message: RequestMessage = { version: route!.version, partition, generation: route!.generation, budgetMs: left, consistency, key, input }
        let reply: RequestReply
        try {
          if (peer === c.self) {
            reply = await c.local(message)
          } else {
            c.counters.forwarded++
            reply = await this.sendWhileMember(peer, message, left, signal)
          }
        } catch (err) {
          if (err instanceof AbortError) throw err
          if (err instanceof TimeoutError) throw new RequestTimeoutError(partition, `${peer} did not answer within ${timeoutMs} ms`)
          // Not delivered, or refused before anything was applied: the next owner.
          if (err instanceof PeerUnreachableError || err instanceof NoHandlerError || err instanceof RemoteError || err instanceof OwnerLeftError) { lastProblem = `${peer}: ${err.message}`; continue }
          throw err
        }
        switch (reply.kind) {
          case 'ok': return reply.output
          case 'handler-error': throw new HandlerError(partition, reply.message)
          case 'timeout': throw new RequestTimeoutError(partition, reply.message)
          case 'bad-request': throw new BadRequestError(reply.message)
          case 'unavailable': lastProblem = `${peer}: ${reply.message}`; continue
          case 'moved':
            c.counters.rerouted++
            lastProblem = `${peer} answered that the partition moved`
            if (isNewer(reply, route!)) { hint = reply; rerouted = true }
        }
        if (rerouted) break
      }
      if (rerouted) continue
      const wait = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** round, deadline - c.clock.now())
      if (wait <= 0) break
      await this.sleep(wait, signal)
    }
    throw new PartitionUnavailableError(partition, lastProblem)
  }

  /** Sends to `peer`, giving up (`OwnerLeftError`) as soon as it is no longer a member. */
  private async sendWhileMember (peer: Participant, message: RequestMessage, timeoutMs: number, signal: AbortSignal | undefined): Promise<RequestReply> {
    const c = this.c
    if (!c.isMember(peer)) throw new OwnerLeftError(`${peer} is not a member of the cluster`)
    const gone = new AbortController()
    const unsubscribe = c.onMembership(() => { if (!c.isMember(peer)) gone.abort() })
    const onAbort = (): void => { gone.abort() }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await c.send(peer, message, timeoutMs, gone.signal)
    } catch (err) {
      if (err instanceof AbortError && signal?.aborted !== true) throw new OwnerLeftError(`${peer} left the cluster while the request waited on it`)
      throw err
    } finally {
      unsubscribe()
      signal?.removeEventListener('abort', onAbort)
    }
  }

  private async sleep (ms: number, signal: AbortSignal | undefined): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { timer.cancel(); reject(new AbortError(undefined, { cause: signal?.reason })) }
      const timer = this.c.clock.setTimer(ms, () => { signal?.removeEventListener('abort', onAbort); resolve() })
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}

/** The newest view of `partition`: this peer's table, or an owner's answer if newer. */
function bestRoute (table: KeyspaceTable | undefined, partition: number, hint: Route | undefined): Route | undefined {
  const a = table?.assignments[partition]
  const own = table === undefined || a === undefined ? undefined : { version: table.version, generation: a.generation, owners: a.owners }
  if (own === undefined) return hint
  return hint !== undefined && hint.version > own.version ? hint : own
}

function isNewer (answer: MovedAnswer, route: Route): boolean {
  return answer.version > route.version
}
