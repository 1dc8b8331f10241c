/**
 * The two ends of a channel's long-lived streams: {@link ClientStream}, our
 * outbound stream to one (peer, protocol), which writes requests and matches
 * responses to them by request id, and {@link ServerStream}, a remote peer's
 * stream to us, which runs the handler on each frame and writes the answer
 * back on the same stream.
 *
 * Boundary: a stream knows its frames and its pending requests; everything
 * shared across streams (settings, handlers, counters, the map of open
 * streams, the log) belongs to the channel, reached through
 * {@link StreamOwner}.
 *
 * @module
 */

import {
  FrameTooLargeError,
  PeerUnreachableError,
  RemoteError
} from './errors.js'
import {
  FrameKind,
  decodeErrorMessage,
  decodeFrame,
  encodeErrorMessage,
  encodeLengthPrefixedFrame,
  frameLength
} from './frame.js'
import type { ChannelHandler } from './channel.js'
import type { Frame } from './frame.js'
import type { FrameSink, FramedStream, FramingViolation } from './framed-stream.js'

/** What a stream needs from the channel that owns it. */
export interface StreamOwner {
  readonly settings: { readonly maxFrameBytes: number, readonly maxConcurrentHandlers: number }
  /** The handler now registered for `protocol`, if any (looked up per frame: handlers may change). */
  handlerFor(protocol: string): ChannelHandler | undefined
  handlerError(protocol: string, peer: string, err: unknown): void
  requestHandled(): void
  lateResponse(): void
  malformed(framed: FramedStream, reason: string): void
  dropped(framed: FramedStream, violation: FramingViolation, reason: string): void
  forgetClient(client: ClientStream): void
  forgetServer(server: ServerStream): void
}

/** Callbacks of one pending request; called at most once, by whichever side settles first. */
export interface PendingRequest {
  resolve(payload: Uint8Array): void
  reject(err: Error): void
}

const EMPTY = new Uint8Array(0)

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** Key of the outbound stream to `peer` on `protocol` in the channel's map of open streams. */
export function clientKey (peer: string, protocol: string): string {
  return `${peer}\n${protocol}`
}

/** Our outbound stream to one (peer, protocol): sends requests, matches responses by id. */
export class ClientStream implements FrameSink {
  readonly framed: FramedStream
  /** Key of this stream in the channel's client map. */
  readonly key: string
  readonly #pending = new Map<number, PendingRequest>()
  readonly #owner: StreamOwner
  readonly #protocol: string
  #nextId = 1
  #closed = false

  /** The connection the stream runs on (its status is read before each reuse). */
  readonly #connection: { readonly status: string }

  constructor (owner: StreamOwner, framed: FramedStream, protocol: string, connection: { readonly status: string }) {
    this.#owner = owner
    this.framed = framed
    this.#protocol = protocol
    this.#connection = connection
    this.key = clientKey(framed.peer, protocol)
    framed.attach(this)
  }

  get closed (): boolean {
    return this.#closed
  }

  /**
   * Whether the stream can still carry frames: not closed as far as this stream heard, and
   * neither the stream nor its connection closed as far as libp2p knows. A stream that missed
   * its close event (most likely one opened on a connection that was closing) would swallow a
   * one-way message and leave a request waiting for its timeout; such a stream is failed
   * here instead, so the next send opens a new one.
   */
  usable (): boolean {
    if (this.#closed) return false
    if (this.#connection.status === 'open' && this.framed.stream.status === 'open' && this.framed.stream.writeStatus === 'writable') return true
    this.fail(new PeerUnreachableError(`${this.#protocol} stream to ${this.framed.peer} closed`, this.framed.peer))
    return false
  }

  /**
   * Registers a request and writes its frame. Returns a function that forgets
   * the request (used when the caller times out or aborts first).
   */
  start (payload: Uint8Array, pending: PendingRequest): () => void {
    const id = this.#nextId++
    // the caller checked the size with a one-byte id; ids past 127 take more
    const size = frameLength(id, payload.byteLength)
    const { maxFrameBytes } = this.#owner.settings
    if (size > maxFrameBytes) {
      pending.reject(new FrameTooLargeError(size, maxFrameBytes))
      return () => {}
    }
    this.#pending.set(id, pending)
    this.framed.write(encodeLengthPrefixedFrame(FrameKind.Request, id, payload)).catch((err: unknown) => {
      if (this.#pending.delete(id)) {
        pending.reject(new PeerUnreachableError(`write failed: ${errorMessage(err)}`, this.framed.peer, { cause: err }))
      }
    })
    return () => { this.#pending.delete(id) }
  }

  /** Rejects every pending request with `err`, forgets this stream, and aborts it. */
  fail (err: Error): void {
    if (this.#closed) return
    this.#closed = true
    this.#owner.forgetClient(this)
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) p.reject(err)
    this.framed.stream.abort(err)
  }

  onFrame (bytes: Uint8Array): void {
    const decoded = decodeFrame(bytes)
    if (!decoded.ok || (decoded.frame.kind !== FrameKind.Response && decoded.frame.kind !== FrameKind.ErrorResponse)) {
      this.#owner.malformed(this.framed, decoded.ok ? `unexpected frame kind ${decoded.frame.kind} on an outbound stream` : decoded.reason)
      return
    }
    const { kind, requestId, payload } = decoded.frame
    const pending = this.#pending.get(requestId)
    if (pending === undefined) {
      this.#owner.lateResponse()
      return
    }
    this.#pending.delete(requestId)
    if (kind === FrameKind.Response) {
      pending.resolve(payload)
    } else {
      pending.reject(new RemoteError(decodeErrorMessage(payload), this.framed.peer, this.#protocol))
    }
  }

  onEnd (): void {
    this.fail(new PeerUnreachableError(`${this.#protocol} stream ended by ${this.framed.peer}`, this.framed.peer))
  }

  onClose (err: Error | undefined): void {
    const reason = err !== undefined ? `stream reset: ${err.message}` : 'stream closed'
    this.fail(new PeerUnreachableError(`${reason} (${this.#protocol})`, this.framed.peer, { cause: err }))
  }

  onViolation (violation: FramingViolation, reason: string): void {
    this.#owner.dropped(this.framed, violation, reason)
    this.fail(new PeerUnreachableError(`${this.framed.peer} broke the framing on ${this.#protocol}: ${reason}`, this.framed.peer))
  }

  isBusy (): boolean {
    return false
  }
}

/** A remote peer's stream to us: runs the handler per frame, writes answers back on the same stream. */
export class ServerStream implements FrameSink {
  readonly framed: FramedStream
  readonly #owner: StreamOwner
  readonly #protocol: string
  #inFlight = 0
  #remoteEnded = false

  constructor (owner: StreamOwner, framed: FramedStream, protocol: string) {
    this.#owner = owner
    this.framed = framed
    this.#protocol = protocol
    framed.attach(this)
  }

  onFrame (bytes: Uint8Array): void {
    const decoded = decodeFrame(bytes)
    if (!decoded.ok) {
      this.#owner.malformed(this.framed, decoded.reason)
      return
    }
    const { kind } = decoded.frame
    if (kind !== FrameKind.Request && kind !== FrameKind.OneWay) {
      this.#owner.malformed(this.framed, `unexpected frame kind ${kind} on an inbound stream`)
      return
    }
    this.#inFlight++
    void this.#answer(decoded.frame).finally(() => {
      this.#inFlight--
      this.framed.resume()
      this.#maybeFinish()
    })
  }

  onEnd (): void {
    this.#remoteEnded = true
    this.#maybeFinish()
  }

  onClose (): void {
    this.#owner.forgetServer(this)
  }

  onViolation (violation: FramingViolation, reason: string): void {
    this.#owner.dropped(this.framed, violation, reason)
  }

  isBusy (): boolean {
    return this.#inFlight >= this.#owner.settings.maxConcurrentHandlers
  }

  /** Once the remote is done and every answer is written, close our side too. */
  #maybeFinish (): void {
    const { stream } = this.framed
    if (this.#remoteEnded && this.#inFlight === 0 && stream.writeStatus === 'writable') {
      stream.close().catch((err: unknown) => { stream.abort(asError(err)) })
    }
  }

  async #answer (frame: Frame): Promise<void> {
    const { peer } = this.framed
    const handler = this.#owner.handlerFor(this.#protocol)
    let result: Uint8Array | undefined
    let failure: string | undefined
    if (handler === undefined) {
      failure = `no handler for ${this.#protocol}`
    } else {
      try {
        result = await handler(peer, frame.payload)
      } catch (err) {
        this.#owner.handlerError(this.#protocol, peer, err)
        failure = errorMessage(err)
      }
    }
    if (frame.kind === FrameKind.OneWay) return
    let reply: Uint8Array
    if (failure !== undefined) {
      reply = encodeLengthPrefixedFrame(FrameKind.ErrorResponse, frame.requestId, encodeErrorMessage(failure))
    } else {
      const payload = result ?? EMPTY
      const size = frameLength(frame.requestId, payload.byteLength)
      reply = size <= this.#owner.settings.maxFrameBytes
        ? encodeLengthPrefixedFrame(FrameKind.Response, frame.requestId, payload)
        : encodeLengthPrefixedFrame(FrameKind.ErrorResponse, frame.requestId,
          encodeErrorMessage(new FrameTooLargeError(size, this.#owner.settings.maxFrameBytes).message))
    }
    try {
      await this.framed.write(reply)
      this.#owner.requestHandled()
    } catch (err) {
      this.framed.stream.log('could not write the answer to request %d - %s', frame.requestId, errorMessage(err))
    }
  }
}
