/**
 * Typed failures of supervision across the cluster. Each class sets `name`, so callers can
 * test `err.name` across two copies of the package. The single-peer failures a call can meet
 * anywhere (`QueueFullError`, `CallTimeoutError`, `ServerCrashedError`...) keep their classes
 * from `src/supervision/errors.ts`, also when they happened on another peer: the holder sends
 * the failure's name and fields back and the caller rebuilds it (`wire.ts`).
 *
 * @module
 */
import type { EventId } from '../eventfold/types.js'

/**
 * The input's `step` threw on the replicated server's replicas, so the fold recorded it as a
 * failure everywhere and never applied it: the input is quarantined. The server's state is
 * what it was before the input, a restart (or failover) never steps it again, and the input is
 * listed by `quarantined(name)` on every replica.
 */
export class PoisonInputError extends Error {
  /** Always `'PoisonInputError'`. */
  override readonly name = 'PoisonInputError'
  /** The replicated server. */
  readonly child: string
  /** The id of the event that carried the input (the same on every replica). */
  readonly eventId: EventId
  /** What `step` threw, as a one-line message. */
  readonly thrown: string
  constructor (child: string, eventId: EventId, thrown: string) {
    super(`replicated server ${JSON.stringify(child)}: step threw on input ${eventId.counter}:${eventId.participant} (quarantined, never applied): ${thrown}`)
    this.child = child
    this.eventId = eventId
    this.thrown = thrown
  }
}

/** `startChild` or `startReplicated` named a child that exists with other terms (server, mode, placement...). */
export class ChildConflictError extends Error {
  /** Always `'ChildConflictError'`. */
  override readonly name = 'ChildConflictError'
  /** The child. */
  readonly child: string
  constructor (child: string, detail: string) {
    super(`child ${JSON.stringify(child)} exists with other terms: ${detail}`)
    this.child = child
  }
}

/**
 * A replicated server could not answer within the call's deadline because fewer replicas than
 * its `minReplicas` hold its state (the cluster has too few members, or they are being added).
 * The input was not submitted.
 */
export class ReplicasUnavailableError extends Error {
  /** Always `'ReplicasUnavailableError'`. */
  override readonly name = 'ReplicasUnavailableError'
  /** The replicated server. */
  readonly child: string
  /** Settled replicas when the deadline passed. */
  readonly replicas: number
  /** The replicas it needs before it answers. */
  readonly needed: number
  constructor (child: string, replicas: number, needed: number) {
    super(`replicated server ${JSON.stringify(child)} has ${replicas} settled replica(s) of the ${needed} it needs before answering`)
    this.child = child
    this.replicas = replicas
    this.needed = needed
  }
}

/**
 * The child's holder failed a call with an error this build does not know by name (a peer on
 * another version, or an unexpected failure there); `remoteName` and the message say what it was.
 */
export class RemoteChildError extends Error {
  /** Always `'RemoteChildError'`. */
  override readonly name = 'RemoteChildError'
  /** The child. */
  readonly child: string
  /** The failure's name on the holder. */
  readonly remoteName: string
  constructor (child: string, remoteName: string, message: string) {
    super(`child ${JSON.stringify(child)}: ${remoteName}: ${message}`)
    this.child = child
    this.remoteName = remoteName
  }
}
