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

/**
 * The event's `apply` threw. From `applyFast`: it threw on this peer's projection; the event
 * was recorded and sent all the same (as a failure, every peer whose `apply` throws alike
 * folds it as one, changing nothing). From `applyConsistent`: it folded as a failure whose
 * `apply` threw, everywhere; `message` says what was thrown.
 */
export class EventApplyError extends Error {
  /** Always `'EventApplyError'`. */
  override readonly name = 'EventApplyError'
  /** The event. */
  readonly eventId: EventId
  constructor (eventId: EventId, message: string, options?: ErrorOptions) {
    super(`event ${eventId.counter}:${eventId.participant}: apply threw: ${message}`, options)
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
  /**
   * Why each peer that was tried failed, by multiaddr. A peer that does not speak this one's
   * join protocol is said to be of another cluster (named), of another protocol version of
   * this cluster (both versions named), or no Legion peer, when it answers an identify request.
   */
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

/**
 * This peer was ejected from the cluster: a majority of the participants suspected it of
 * having failed (or someone called `eject`), while it was in fact alive, typically on the
 * losing side of a network partition.
 *
 * - Every `applyConsistent` still pending when the peer finds out rejects with this error
 *   (`eventId` set). Its outcome is **unknown**: the event may have folded in the cluster
 *   before the ejection (if another participant held it by then), or it may be lost. Read
 *   the state after the rejoin to find out; re-apply only events that are safe to apply
 *   twice.
 * - `applyFast`, `applyConsistent` and `eject` throw it (`eventId` undefined) while the peer
 *   knows it is ejected and has not rejoined yet (with `failureDetection.rejoin: false`,
 *   until it stops).
 */
export class EjectedError extends Error {
  /** Always `'EjectedError'`, so callers can test it across package copies. */
  override readonly name = 'EjectedError'
  /** The pending event whose outcome is unknown, if this error settles an `applyConsistent`. */
  readonly eventId: EventId | undefined
  constructor (eventId?: EventId) {
    super(eventId !== undefined
      ? `this peer was ejected before event ${eventId.counter}:${eventId.participant} folded here; it may or may not have folded in the cluster`
      : 'this peer was ejected from the cluster and has not rejoined')
    this.eventId = eventId
  }
}

/**
 * `startup: { mode: 'new' }` found a peer saved in the storage given. Founding a new cluster
 * would discard that peer's identity and state for good, so it is refused: recover it
 * (`mode: 'recover'` or `'auto'`), use another storage, or pass `overwrite: true`.
 */
export class ExistingStateError extends Error {
  /** Always `'ExistingStateError'`. */
  override readonly name = 'ExistingStateError'
  /** The cluster the saved peer belongs to. */
  readonly savedCluster: string
  constructor (savedCluster: string) {
    super(`the storage already holds a peer of cluster ${JSON.stringify(savedCluster)}: recover it (startup mode 'recover' or 'auto'), use another storage, or pass startup.overwrite: true to discard it`)
    this.savedCluster = savedCluster
  }
}

/** The called peer has no handler for the channel called (or takes no calls at all). */
export class NoHandlerError extends Error {
  /** Always `'NoHandlerError'`. */
  override readonly name = 'NoHandlerError'
  /** The peer called. */
  readonly peer: string
  /** The channel called (`""`: the default byte channel). */
  readonly channel: string
  constructor (peer: string, channel: string, message: string) {
    super(`${peer}: ${message}`)
    this.peer = peer
    this.channel = channel
  }
}

/**
 * A call handler returned something its channel cannot carry back: not a `Uint8Array` on the
 * byte channel, or a value the channel's reply codec cannot encode (or the caller's decode).
 */
export class BadReplyError extends Error {
  /** Always `'BadReplyError'`. */
  override readonly name = 'BadReplyError'
  /** The peer whose handler replied. */
  readonly peer: string
  /** The channel. */
  readonly channel: string
  constructor (peer: string, channel: string, message: string) {
    super(`the reply of ${peer} on channel ${JSON.stringify(channel)} is unusable: ${message}`)
    this.peer = peer
    this.channel = channel
  }
}

/** No group of this id is defined on this peer. */
export class UnknownGroupError extends Error {
  /** Always `'UnknownGroupError'`. */
  override readonly name = 'UnknownGroupError'
  /** The group id. */
  readonly group: string
  constructor (group: string) {
    super(`no group ${JSON.stringify(group)} is defined on this peer`)
    this.group = group
  }
}

/**
 * This peer does not hold the group's state (yet): it is not one of the group's participants,
 * or it was just added and the state has not arrived.
 */
export class GroupNotReadyError extends Error {
  /** Always `'GroupNotReadyError'`. */
  override readonly name = 'GroupNotReadyError'
  /** The group id. */
  readonly group: string
  constructor (group: string, message = 'this peer does not hold its state (yet)') {
    super(`group ${JSON.stringify(group)}: ${message}`)
    this.group = group
  }
}

/** A sponsor refused to admit this peer (it answered with a refusal instead of its state). */
export class JoinRefusedError extends Error {
  /** Always `'JoinRefusedError'`. */
  override readonly name = 'JoinRefusedError'
  /** The sponsor. */
  readonly sponsor: string
  /** The refusal's code. */
  readonly code: string
  constructor (sponsor: string, code: string, message: string) {
    super(`${sponsor} refused (${code}): ${message}`)
    this.sponsor = sponsor
    this.code = code
  }
}
