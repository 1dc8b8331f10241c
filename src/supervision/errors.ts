/**
 * Typed failures of the supervision layer. One class per failure, each with a stable `name`, so
 * callers (and the HTTP endpoint, which maps each to a status code) can tell them apart even
 * across two copies of the package. What a caller should do differs: a {@link QueueFullError}
 * or {@link ServerExitedError} is worth retrying, a {@link BadInputError} is not.
 *
 * @module
 */
import type { ExitReason } from './server.js'

/** No server of that name is in the tree (never was, or was removed). HTTP 404. */
export class UnknownServerError extends Error {
  /** Always `'UnknownServerError'`. */
  override readonly name = 'UnknownServerError'
  /** The name asked for. */
  readonly server: string
  constructor (server: string) {
    super(`no server named ${JSON.stringify(server)} in this supervision tree`)
    this.server = server
  }
}

/**
 * The tree's request queue is full and the caller chose not to wait (`overflow: 'reject'`), or
 * waited and its time ran out before space freed. HTTP 503.
 */
export class QueueFullError extends Error {
  /** Always `'QueueFullError'`. */
  override readonly name = 'QueueFullError'
  /** The queue's capacity: requests admitted and not yet answered. */
  readonly capacity: number
  constructor (capacity: number, message = `the request queue is full (${capacity} requests waiting)`) {
    super(message)
    this.capacity = capacity
  }
}

/**
 * A call got no answer within its `timeoutMs`. The request was withdrawn: if it had not been
 * stepped yet it never will be, and no answer is delivered later. HTTP 504.
 */
export class CallTimeoutError extends Error {
  /** Always `'CallTimeoutError'`. */
  override readonly name = 'CallTimeoutError'
  /** The server called. */
  readonly server: string
  /** The deadline that passed, in milliseconds. */
  readonly timeoutMs: number
  constructor (server: string, timeoutMs: number) {
    super(`call to ${JSON.stringify(server)} got no answer within ${timeoutMs} ms`)
    this.server = server
    this.timeoutMs = timeoutMs
  }
}

/** The caller's `AbortSignal` fired before the answer; the request was withdrawn. */
export class CallAbortedError extends Error {
  /** Always `'CallAbortedError'`. */
  override readonly name = 'CallAbortedError'
  /** The server called. */
  readonly server: string
  constructor (server: string, options?: { cause?: unknown }) {
    super(`call to ${JSON.stringify(server)} was aborted`, options)
    this.server = server
  }
}

/**
 * The server's `step` threw on this very input (`cause` holds what it threw). The server
 * incarnation that took it is gone; its supervisor decides what happens next. HTTP 500.
 */
export class ServerCrashedError extends Error {
  /** Always `'ServerCrashedError'`. */
  override readonly name = 'ServerCrashedError'
  /** The server whose step threw. */
  readonly server: string
  /** Which start of the server crashed (1 for the first). */
  readonly incarnation: number
  constructor (server: string, incarnation: number, cause: unknown) {
    super(`server ${JSON.stringify(server)} crashed on this input: ${describeThrown(cause)}`, { cause })
    this.server = server
    this.incarnation = incarnation
  }
}

/**
 * The server incarnation this request was addressed to stopped (it crashed on another input,
 * asked to stop, or its supervisor stopped it) before answering. Rejected at once, not at the
 * caller's timeout. A new incarnation may already be answering: retrying is reasonable. HTTP 503.
 */
export class ServerExitedError extends Error {
  /** Always `'ServerExitedError'`. */
  override readonly name = 'ServerExitedError'
  /** The server called. */
  readonly server: string
  /** The incarnation that exited. */
  readonly incarnation: number
  /** Why it exited. */
  readonly reason: ExitReason
  constructor (server: string, incarnation: number, reason: ExitReason) {
    super(`server ${JSON.stringify(server)} (incarnation ${incarnation}) exited (${reason.kind}) before answering`)
    this.server = server
    this.incarnation = incarnation
    this.reason = reason
  }
}

/**
 * The server exists in the tree but is stopped and no restart is planned (a transient server
 * that finished, a child terminated by hand, a supervisor that gave up). HTTP 503.
 */
export class ServerStoppedError extends Error {
  /** Always `'ServerStoppedError'`. */
  override readonly name = 'ServerStoppedError'
  /** The server called. */
  readonly server: string
  constructor (server: string) {
    super(`server ${JSON.stringify(server)} is stopped`)
    this.server = server
  }
}

/** The supervision tree is stopping or stopped; it accepts nothing more. HTTP 503. */
export class SupervisionStoppedError extends Error {
  /** Always `'SupervisionStoppedError'`. */
  override readonly name = 'SupervisionStoppedError'
  constructor (message = 'the supervision tree is stopped') {
    super(message)
  }
}

/**
 * Encoded input did not decode with the server's input codec (`cause`: the `DecodeError`). The
 * server never saw it. HTTP 400.
 */
export class BadInputError extends Error {
  /** Always `'BadInputError'`. */
  override readonly name = 'BadInputError'
  /** The server addressed. */
  readonly server: string
  constructor (server: string, cause: unknown) {
    super(`input for ${JSON.stringify(server)} does not decode: ${describeThrown(cause)}`, { cause })
    this.server = server
  }
}

/**
 * The server's output did not encode with its output codec (`cause`: the `EncodeError`): a bug
 * in the server. Its new state stands; only this caller's answer is lost. HTTP 500.
 */
export class BadOutputError extends Error {
  /** Always `'BadOutputError'`. */
  override readonly name = 'BadOutputError'
  /** The server whose output failed to encode. */
  readonly server: string
  constructor (server: string, cause: unknown) {
    super(`output of ${JSON.stringify(server)} does not encode: ${describeThrown(cause)}`, { cause })
    this.server = server
  }
}

/**
 * A child failed to start (its `init` threw, or a supervisor below it could not start its own
 * children) while the tree started or `startChild` added it. `cause` holds the first failure.
 */
export class ChildStartError extends Error {
  /** Always `'ChildStartError'`. */
  override readonly name = 'ChildStartError'
  /** The id of the child that failed (the deepest one, when supervisors are nested). */
  readonly child: string
  constructor (child: string, cause: unknown) {
    super(`child ${JSON.stringify(child)} failed to start: ${describeThrown(cause)}`, { cause })
    this.child = child
  }
}

/** A worker's `init` (with the load of its saved state) did not finish within its `startTimeoutMs`. */
export class StartTimeoutError extends Error {
  /** Always `'StartTimeoutError'`. */
  override readonly name = 'StartTimeoutError'
  /** The worker. */
  readonly child: string
  /** The limit that passed, in milliseconds. */
  readonly timeoutMs: number
  constructor (child: string, timeoutMs: number) {
    super(`init of ${JSON.stringify(child)} did not finish within ${timeoutMs} ms; abandoned`)
    this.child = child
    this.timeoutMs = timeoutMs
  }
}

/** `startChild` was given an id that is already used somewhere in the tree. */
export class DuplicateChildError extends Error {
  /** Always `'DuplicateChildError'`. */
  override readonly name = 'DuplicateChildError'
  /** The id in use. */
  readonly child: string
  constructor (child: string) {
    super(`a child with id ${JSON.stringify(child)} already exists in this supervision tree`)
    this.child = child
  }
}

/** A supervisor or child id that is not in the tree (or not under that supervisor). */
export class UnknownChildError extends Error {
  /** Always `'UnknownChildError'`. */
  override readonly name = 'UnknownChildError'
  /** The id asked for. */
  readonly child: string
  constructor (child: string, message = `no child with id ${JSON.stringify(child)}`) {
    super(message)
    this.child = child
  }
}

/** A short description of anything thrown, for messages. */
export function describeThrown (err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`
  try {
    return String(err)
  } catch {
    return 'an unprintable value'
  }
}
