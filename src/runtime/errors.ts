/**
 * Typed errors of the runtime. Each class sets `name`, so callers can test `err.name` even
 * across two copies of the package. Messaging errors (remote handler failed, timeout, abort,
 * unreachable peer, frame too large) come from the transport and are re-exported as they are.
 *
 * @module
 */
import type { EventId } from '../eventfold/types.js'

/**
 * `applyConsistent` gave up waiting. The event was applied and keeps propagating: it will
 * still fold into the infimum once every participant has acknowledged it (watch
 * `changes()`), unless its creator is ejected first.
 */
export class ConsistencyTimeoutError extends Error {
  /** Always `'ConsistencyTimeoutError'`, so callers can test it across package copies. */
  override readonly name = 'ConsistencyTimeoutError'
  /** The event that did not fold in time. */
  readonly eventId: EventId
  constructor (eventId: EventId, timeoutMs: number) {
    super(`event ${eventId.counter}:${eventId.participant} did not fold within ${timeoutMs} ms; it stays applied and may still fold`)
    this.eventId = eventId
  }
}

/** The runtime is stopping or stopped; nothing more is accepted. */
export class StoppedError extends Error {
  /** Always `'StoppedError'`, so callers can test it across package copies. */
  override readonly name = 'StoppedError'
  constructor (message = 'the Legion runtime is stopped') {
    super(message)
  }
}

/** A join was refused or failed with every peer that was tried. */
export class JoinError extends Error {
  /** Always `'JoinError'`, so callers can test it across package copies. */
  override readonly name = 'JoinError'
  /** Why each peer that was tried failed, by multiaddr. */
  readonly attempts: ReadonlyMap<string, string>
  constructor (attempts: ReadonlyMap<string, string>) {
    super(`could not join the cluster: ${[...attempts].map(([a, why]) => `${a}: ${why}`).join('; ') || 'no peers given'}`)
    this.attempts = attempts
  }
}

/** Recovery is impossible: nothing was saved, or what was saved cannot be used. */
export class RecoverError extends Error {
  /** Always `'RecoverError'`, so callers can test it across package copies. */
  override readonly name = 'RecoverError'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** The peer named is not a participant of the cluster (as this peer sees it). */
export class NotParticipantError extends Error {
  /** Always `'NotParticipantError'`, so callers can test it across package copies. */
  override readonly name = 'NotParticipantError'
  /** The peer id. */
  readonly peer: string
  constructor (peer: string, what = 'is not a participant of the cluster') {
    super(`peer ${peer} ${what}`)
    this.peer = peer
  }
}
