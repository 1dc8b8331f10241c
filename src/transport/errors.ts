/**
 * Typed failures of the transport layer.
 *
 * One class per failure, each with a stable `name`, so callers can test
 * `err.name` even across duplicated package copies. Outcomes that are expected
 * in normal operation (no gossip peers yet, a duplicate publish) are return
 * values, not errors.
 *
 * @module
 */

/** The remote handler threw; `message` is the remote error's message. */
export class RemoteError extends Error {
  /** The `name` of every instance, for `err.name === RemoteError.NAME` checks. */
  static readonly NAME = 'RemoteError'
  /** Always `'RemoteError'`. */
  override readonly name = 'RemoteError'
  /** Peer id of the peer whose handler failed. */
  readonly peer: string
  /** Protocol the request was sent on. */
  readonly protocol: string

  constructor (message: string, peer: string, protocol: string) {
    super(message)
    this.peer = peer
    this.protocol = protocol
  }
}

/** No answer arrived before the deadline. */
export class TimeoutError extends Error {
  /** The `name` of every instance, for `err.name === TimeoutError.NAME` checks. */
  static readonly NAME = 'TimeoutError'
  /** Always `'TimeoutError'`. */
  override readonly name = 'TimeoutError'
  /** The deadline that passed, in milliseconds. */
  readonly timeoutMs: number

  constructor (message: string, timeoutMs: number) {
    super(message)
    this.timeoutMs = timeoutMs
  }
}

/** The caller's `AbortSignal` fired; `cause` holds the signal's reason. */
export class AbortError extends Error {
  /** The `name` of every instance, for `err.name === AbortError.NAME` checks. */
  static readonly NAME = 'AbortError'
  /** Always `'AbortError'`. */
  override readonly name = 'AbortError'

  constructor (message = 'the operation was aborted', options?: { cause?: unknown }) {
    super(message, options)
  }
}

/**
 * The peer cannot be reached on this protocol: not connected, the stream could
 * not be opened (for example the peer does not speak the protocol), the stream
 * was reset or closed while a request was pending, or the transport stopped.
 */
export class PeerUnreachableError extends Error {
  /** The `name` of every instance, for `err.name === PeerUnreachableError.NAME` checks. */
  static readonly NAME = 'PeerUnreachableError'
  /** Always `'PeerUnreachableError'`. */
  override readonly name = 'PeerUnreachableError'
  /** Peer id (as given by the caller) that could not be reached. */
  readonly peer: string

  constructor (message: string, peer: string, options?: { cause?: unknown }) {
    super(message, options)
    this.peer = peer
  }
}

/** A frame to be written is larger than the configured maximum frame size. */
export class FrameTooLargeError extends Error {
  /** The `name` of every instance, for `err.name === FrameTooLargeError.NAME` checks. */
  static readonly NAME = 'FrameTooLargeError'
  /** Always `'FrameTooLargeError'`. */
  override readonly name = 'FrameTooLargeError'
  /** Size of the refused frame in bytes (header included). */
  readonly frameBytes: number
  /** The configured limit in bytes. */
  readonly maxFrameBytes: number

  constructor (frameBytes: number, maxFrameBytes: number) {
    super(`frame of ${frameBytes} bytes exceeds the limit of ${maxFrameBytes} bytes`)
    this.frameBytes = frameBytes
    this.maxFrameBytes = maxFrameBytes
  }
}

/** A gossip operation was called on a node created with `gossipsub: false`. */
export class GossipDisabledError extends Error {
  /** The `name` of every instance, for `err.name === GossipDisabledError.NAME` checks. */
  static readonly NAME = 'GossipDisabledError'
  /** Always `'GossipDisabledError'`. */
  override readonly name = 'GossipDisabledError'

  constructor () {
    super('gossipsub is disabled on this transport node')
  }
}

/**
 * Whether `signal` has fired. A function rather than an inline check so that
 * TypeScript does not narrow `signal.aborted` across an `await`.
 *
 * @internal
 */
export function isAborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}
