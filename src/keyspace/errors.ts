/**
 * Typed errors of the keyspace. Each sets `name`, so callers can test `err.name` across two
 * copies of the package. Errors of the runtime (`StoppedError`, `AbortError`) pass through as
 * they are.
 *
 * @module
 */

/** The application's `handle` or `apply` threw for this request: nothing was applied. */
export class HandlerError extends Error {
  /** Always `'HandlerError'`. */
  override readonly name = 'HandlerError'
  /** The key's partition. */
  readonly partition: number
  constructor (partition: number, message: string) {
    super(`the request's handler threw: ${message}`)
    this.partition = partition
  }
}

/**
 * A request reached an owner and was applied there, but did not settle before the deadline:
 * its outcome is unknown (it may still take effect). Requests are not retried after this.
 */
export class RequestTimeoutError extends Error {
  /** Always `'RequestTimeoutError'`. */
  override readonly name = 'RequestTimeoutError'
  /** The key's partition. */
  readonly partition: number
  constructor (partition: number, message: string) {
    super(`partition ${partition}: ${message} (the request's outcome is unknown)`)
    this.partition = partition
  }
}

/**
 * No owner of the key's partition could take the request before the deadline (every one was
 * unreachable, moving or not holding the state yet). Nothing was applied.
 */
export class PartitionUnavailableError extends Error {
  /** Always `'PartitionUnavailableError'`. */
  override readonly name = 'PartitionUnavailableError'
  /** The partition. */
  readonly partition: number
  constructor (partition: number, message: string) {
    super(`partition ${partition} is unavailable: ${message}`)
    this.partition = partition
  }
}

/** An owner refused a request as malformed (an input its codec does not decode, say). */
export class BadRequestError extends Error {
  /** Always `'BadRequestError'`. */
  override readonly name = 'BadRequestError'
  constructor (message: string) {
    super(message)
  }
}

/** A search cursor that was made by another cluster's (or another keyspace's) search. */
export class ForeignCursorError extends Error {
  /** Always `'ForeignCursorError'`. */
  override readonly name = 'ForeignCursorError'
  constructor () {
    super('the search cursor belongs to another cluster or keyspace')
  }
}

/** A search cursor that is not one (damaged or made up). */
export class InvalidCursorError extends TypeError {
  /** Always `'InvalidCursorError'`. */
  override readonly name = 'InvalidCursorError'
  constructor (message: string) {
    super(`not a search cursor: ${message}`)
  }
}
