/**
 * Request/response and one-way messages between peers over long-lived libp2p
 * streams.
 *
 * Opening a libp2p stream costs about a millisecond (protocol negotiation), a
 * request on an open stream a third of that, so a channel keeps ONE outbound
 * stream per (peer, protocol) open and multiplexes every request on it: each
 * frame carries a request id (see `frame.ts` for the byte layout) and responses
 * may come back in any order. The answering side reads each inbound stream
 * frame by frame as bytes arrive, runs the handler, and writes its responses
 * back on that same stream.
 *
 * Boundary: a channel moves opaque byte payloads between already-connected
 * peers. It never dials (a request to a peer without a connection fails at once
 * with `PeerUnreachableError`) and knows nothing about what the payloads mean.
 *
 * @module
 */

import './polyfill.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { ClientStream, ServerStream, clientKey, errorMessage } from './channel-streams.js'
import {
  AbortError,
  FrameTooLargeError,
  isAborted,
  PeerUnreachableError,
  TimeoutError
} from './errors.js'
import { FrameKind, encodeLengthPrefixedFrame, frameLength, MAX_FRAME_HEADER_BYTES } from './frame.js'
import { FramedStream } from './framed-stream.js'
import type { PendingRequest, StreamOwner } from './channel-streams.js'
import type { FramingViolation } from './framed-stream.js'
import type { Connection, Libp2p, Logger, Stream } from '@libp2p/interface'

/**
 * Answers the requests and one-way messages arriving on one protocol.
 *
 * For a request, the returned bytes are the response (`undefined` sends an
 * empty response); a throw or rejection is sent back as an error-response and
 * surfaces at the caller as a `RemoteError` carrying the message. For a one-way
 * message the result is ignored and a throw is only logged and counted.
 *
 * `from` is the authenticated peer id of the sender (Noise proves it).
 * `payload` is a view owned by the handler; it is not reused by the channel.
 */
export type ChannelHandler = (from: string, payload: Uint8Array) => Promise<Uint8Array | undefined> | Uint8Array | undefined

/** Options of {@link Channel.request}. */
export interface RequestOptions {
  /**
   * Reject with `TimeoutError` if no response arrived after this many
   * milliseconds, counted from the call (opening the stream included).
   *
   * @default the channel's `requestTimeoutMs` (10 000)
   */
  timeoutMs?: number
  /** Reject with `AbortError` when this signal fires. */
  signal?: AbortSignal
}

/** Options of {@link Channel.send}. */
export interface SendOptions {
  /** Reject with `AbortError` if this fires before the frame was handed to the stream. */
  signal?: AbortSignal
}

/** Options of {@link Channel.handle}. */
export interface HandleOptions {
  /**
   * Inbound streams of this protocol allowed at once on one connection. One
   * is needed per peer; the slack covers a peer reopening a stream before the
   * old one is fully closed.
   *
   * @default the channel's `maxInboundStreams` (64)
   */
  maxInboundStreams?: number
  /**
   * Outbound streams of this protocol allowed at once on one connection.
   *
   * @default the channel's `maxOutboundStreams` (64)
   */
  maxOutboundStreams?: number
}

/** Counters of one channel since it was created. */
export interface ChannelStats {
  /** Bytes written, length prefixes included. */
  bytesOut: number
  /** Bytes read, length prefixes included. */
  bytesIn: number
  /** Frames written: requests, responses, error-responses and one-way messages. */
  messagesOut: number
  /** Frames read, including the ones later dropped. */
  messagesIn: number
  /** Requests sent by `request()`. */
  requestsSent: number
  /** Requests answered (response or error-response written). */
  requestsHandled: number
  /** Handlers that threw or rejected. */
  handlerErrors: number
  /** Requests that ended in `TimeoutError`. */
  timeouts: number
  /** Frames refused on read: `malformedFrames` + `oversizedFrames`. */
  droppedFrames: number
  /**
   * Frames that did not decode (bad kind, bad request id), arrived on the
   * wrong side (a request on our outbound stream), or had an invalid length
   * prefix (which also drops the stream).
   */
  malformedFrames: number
  /** Frames announced over `maxFrameBytes`, refused as soon as their length prefix was read; each drops its stream. */
  oversizedFrames: number
  /** Responses whose request was no longer pending (it timed out or was aborted). */
  lateResponses: number
  /** Streams this channel aborted because the remote broke the length-prefix rules. */
  streamsDropped: number
  /** Outbound streams opened. */
  streamsOpened: number
  /** Inbound streams accepted. */
  streamsAccepted: number
  /** Outbound streams open now. */
  openOutboundStreams: number
  /** Inbound streams open now. */
  openInboundStreams: number
}

/** Tunables of a channel; every field is optional. */
export interface ChannelInit {
  /**
   * Largest frame (header + payload, length prefix excluded) written or
   * accepted. Writing a larger one fails with `FrameTooLargeError`; reading a
   * larger one drops the stream and counts it in `oversizedFrames`.
   *
   * @default 4_194_304 (4 MiB)
   */
  maxFrameBytes?: number
  /**
   * Deadline of a request when the caller gives none.
   *
   * @default 10_000
   */
  requestTimeoutMs?: number
  /**
   * Deadline for opening an outbound stream (protocol negotiation included).
   *
   * @default 5_000
   */
  streamOpenTimeoutMs?: number
  /**
   * Default for {@link HandleOptions.maxInboundStreams} (libp2p's own default is 32).
   *
   * @default 64
   */
  maxInboundStreams?: number
  /**
   * Default for {@link HandleOptions.maxOutboundStreams}.
   *
   * @default 64
   */
  maxOutboundStreams?: number
  /**
   * Handler invocations in flight per inbound stream. When reached, the reader
   * stops reading until one finishes, so a fast sender is slowed by the
   * muxer's flow control rather than by unbounded memory.
   *
   * @default 256
   */
  maxConcurrentHandlers?: number
}

/** What a channel needs from libp2p: protocol registration and existing connections. */
export interface ChannelComponents {
  /** The libp2p node, narrowed to what a channel calls. */
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'getConnections'>
  /** Namespaced logger, e.g. `legion:channel`. */
  log: Logger
}

/**
 * Request/response and one-way messaging over reused streams.
 */
export interface Channel {
  /**
   * Registers the handler of `protocol` (e.g. `/legion/<cluster>/<name>/13.0.0`)
   * with libp2p. Replaces a handler registered earlier by this channel.
   */
  handle(protocol: string, handler: ChannelHandler, options?: HandleOptions): Promise<void>
  /** Unregisters `protocol`; requests already on open streams get an error-response. */
  unhandle(protocol: string): Promise<void>
  /**
   * Sends `payload` to `peer` on `protocol` and resolves with the response.
   *
   * Rejects with `FrameTooLargeError` (payload too big, nothing sent),
   * `PeerUnreachableError` (not connected, stream cannot be opened or closed
   * while waiting), `RemoteError` (the remote handler threw), `TimeoutError`
   * or `AbortError`.
   */
  request(peer: string, protocol: string, payload: Uint8Array, options?: RequestOptions): Promise<Uint8Array>
  /**
   * Sends a one-way message: resolves once the frame is handed to the stream
   * (after waiting for 'drain' if the stream is backed up). No delivery
   * acknowledgement. Rejects like {@link Channel.request}, minus the remote
   * and timeout cases.
   */
  send(peer: string, protocol: string, payload: Uint8Array, options?: SendOptions): Promise<void>
  /** A snapshot of the counters. */
  stats(): ChannelStats
  /**
   * Unregisters every protocol, rejects pending requests with
   * `PeerUnreachableError`, aborts every stream and clears every timer.
   */
  stop(): Promise<void>
}

/** Creates a {@link Channel}. */
export function createChannel (components: ChannelComponents, init: ChannelInit = {}): Channel {
  return new Channels(components, init)
}

type Counters = Omit<ChannelStats, 'openOutboundStreams' | 'openInboundStreams'>

interface Settings {
  maxFrameBytes: number
  requestTimeoutMs: number
  streamOpenTimeoutMs: number
  maxInboundStreams: number
  maxOutboundStreams: number
  maxConcurrentHandlers: number
}

interface ClientSlot {
  promise: Promise<ClientStream>
  client?: ClientStream
}

class Channels implements Channel, StreamOwner {
  readonly settings: Settings
  readonly #libp2p: ChannelComponents['libp2p']
  readonly #log: Logger
  readonly #handlers = new Map<string, ChannelHandler>()
  readonly #clients = new Map<string, ClientSlot>()
  readonly #servers = new Set<ServerStream>()
  readonly #opening = new Set<AbortController>()
  readonly #counters: Counters = {
    bytesOut: 0,
    bytesIn: 0,
    messagesOut: 0,
    messagesIn: 0,
    requestsSent: 0,
    requestsHandled: 0,
    handlerErrors: 0,
    timeouts: 0,
    droppedFrames: 0,
    malformedFrames: 0,
    oversizedFrames: 0,
    lateResponses: 0,
    streamsDropped: 0,
    streamsOpened: 0,
    streamsAccepted: 0
  }

  #stopped = false

  constructor (components: ChannelComponents, init: ChannelInit) {
    this.#libp2p = components.libp2p
    this.#log = components.log
    this.settings = {
      maxFrameBytes: init.maxFrameBytes ?? 4 * 1024 * 1024,
      requestTimeoutMs: init.requestTimeoutMs ?? 10_000,
      streamOpenTimeoutMs: init.streamOpenTimeoutMs ?? 5_000,
      maxInboundStreams: init.maxInboundStreams ?? 64,
      maxOutboundStreams: init.maxOutboundStreams ?? 64,
      maxConcurrentHandlers: init.maxConcurrentHandlers ?? 256
    }
    if (!Number.isSafeInteger(this.settings.maxFrameBytes) || this.settings.maxFrameBytes < MAX_FRAME_HEADER_BYTES) {
      throw new RangeError(`maxFrameBytes must be an integer >= ${MAX_FRAME_HEADER_BYTES}`)
    }
  }

  async handle (protocol: string, handler: ChannelHandler, options: HandleOptions = {}): Promise<void> {
    if (this.#stopped) {
      throw new Error('channel is stopped')
    }
    const replacing = this.#handlers.has(protocol)
    this.#handlers.set(protocol, handler)
    if (replacing) {
      return
    }
    try {
      await this.#libp2p.handle(protocol, (stream, connection) => { this.#accept(stream, connection, protocol) }, {
        maxInboundStreams: options.maxInboundStreams ?? this.settings.maxInboundStreams,
        maxOutboundStreams: options.maxOutboundStreams ?? this.settings.maxOutboundStreams
      })
    } catch (err) {
      this.#handlers.delete(protocol)
      throw err
    }
  }

  async unhandle (protocol: string): Promise<void> {
    if (this.#handlers.delete(protocol)) {
      await this.#libp2p.unhandle(protocol)
    }
  }

  request (peer: string, protocol: string, payload: Uint8Array, options: RequestOptions = {}): Promise<Uint8Array> {
    const size = frameLength(1, payload.byteLength)
    if (size > this.settings.maxFrameBytes) {
      return Promise.reject(new FrameTooLargeError(size, this.settings.maxFrameBytes))
    }
    const { signal } = options
    if (signal?.aborted === true) {
      return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    }
    const timeoutMs = options.timeoutMs ?? this.settings.requestTimeoutMs
    this.#counters.requestsSent++

    return new Promise<Uint8Array>((resolve, reject) => {
      let settled = false
      let forget: (() => void) | undefined
      const finish = (): void => {
        settled = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        forget?.()
      }
      const timer = setTimeout(() => {
        if (settled) return
        finish()
        this.#counters.timeouts++
        reject(new TimeoutError(`no response from ${peer} on ${protocol} within ${timeoutMs} ms`, timeoutMs))
      }, timeoutMs)
      const onAbort = (): void => {
        if (settled) return
        finish()
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const pending: PendingRequest = {
        resolve: (response) => {
          if (settled) return
          finish()
          resolve(response)
        },
        reject: (err) => {
          if (settled) return
          finish()
          reject(err)
        }
      }
      const start = (client: ClientStream): void => {
        if (settled) return
        forget = client.start(payload, pending)
      }
      const ready = this.#readyClient(peer, protocol)
      if (ready !== undefined) {
        start(ready)
      } else {
        this.#clientFor(peer, protocol).then(start, pending.reject)
      }
    })
  }

  async send (peer: string, protocol: string, payload: Uint8Array, options: SendOptions = {}): Promise<void> {
    const size = frameLength(0, payload.byteLength)
    if (size > this.settings.maxFrameBytes) {
      throw new FrameTooLargeError(size, this.settings.maxFrameBytes)
    }
    const { signal } = options
    if (signal?.aborted === true) {
      throw new AbortError(undefined, { cause: signal.reason })
    }
    const client = this.#readyClient(peer, protocol) ?? await this.#clientFor(peer, protocol)
    if (isAborted(signal)) {
      throw new AbortError(undefined, { cause: signal?.reason })
    }
    try {
      await client.framed.write(encodeLengthPrefixedFrame(FrameKind.OneWay, 0, payload), signal)
    } catch (err) {
      if (signal !== undefined && isAborted(signal)) {
        throw new AbortError(undefined, { cause: signal.reason })
      }
      throw new PeerUnreachableError(`write failed: ${errorMessage(err)}`, peer, { cause: err })
    }
  }

  stats (): ChannelStats {
    return {
      ...this.#counters,
      openOutboundStreams: this.#clients.size,
      openInboundStreams: this.#servers.size
    }
  }

  async stop (): Promise<void> {
    if (this.#stopped) {
      return
    }
    this.#stopped = true
    const protocols = [...this.#handlers.keys()]
    this.#handlers.clear()
    for (const controller of this.#opening) {
      controller.abort(new Error('transport stopped'))
    }
    for (const slot of [...this.#clients.values()]) {
      slot.client?.fail(new PeerUnreachableError('transport stopped', slot.client.framed.peer))
    }
    this.#clients.clear()
    for (const server of [...this.#servers]) {
      server.framed.stream.abort(new Error('transport stopped'))
    }
    this.#servers.clear()
    await Promise.all(protocols.map(async protocol => { await this.#libp2p.unhandle(protocol) }))
  }

  /** Called by a client stream when it closes. */
  forgetClient (client: ClientStream): void {
    if (this.#clients.get(client.key)?.client === client) {
      this.#clients.delete(client.key)
    }
  }

  handlerFor (protocol: string): ChannelHandler | undefined {
    return this.#handlers.get(protocol)
  }

  handlerError (protocol: string, peer: string, err: unknown): void {
    this.#counters.handlerErrors++
    this.#log('handler of %s failed for a frame from %s - %s', protocol, peer, errorMessage(err))
  }

  requestHandled (): void {
    this.#counters.requestsHandled++
  }

  lateResponse (): void {
    this.#counters.lateResponses++
  }

  malformed (framed: FramedStream, reason: string): void {
    this.#counters.malformedFrames++
    this.#counters.droppedFrames++
    this.#log('dropped a malformed frame from %s on %s - %s', framed.peer, framed.stream.protocol, reason)
  }

  dropped (framed: FramedStream, violation: FramingViolation, reason: string): void {
    if (violation === 'oversized') {
      this.#counters.oversizedFrames++
    } else {
      this.#counters.malformedFrames++
    }
    this.#counters.droppedFrames++
    this.#counters.streamsDropped++
    this.#log('dropped %s stream from %s - %s', framed.stream.protocol, framed.peer, reason)
  }

  forgetServer (server: ServerStream): void {
    this.#servers.delete(server)
  }

  #accept (stream: Stream, connection: Connection, protocol: string): void {
    const peer = connection.remotePeer.toString()
    if (this.#stopped) {
      stream.abort(new Error('transport stopped'))
      return
    }
    this.#counters.streamsAccepted++
    this.#servers.add(new ServerStream(this, new FramedStream(stream, peer, this.settings.maxFrameBytes, this.#counters), protocol))
  }

  #readyClient (peer: string, protocol: string): ClientStream | undefined {
    const client = this.#clients.get(clientKey(peer, protocol))?.client
    return client?.usable() === true ? client : undefined
  }

  #clientFor (peer: string, protocol: string): Promise<ClientStream> {
    if (this.#stopped) {
      return Promise.reject(new PeerUnreachableError('transport stopped', peer))
    }
    const key = clientKey(peer, protocol)
    const existing = this.#clients.get(key)
    if (existing !== undefined && existing.client?.usable() !== false) {
      return existing.promise
    }
    const slot: ClientSlot = { promise: this.#open(peer, protocol) }
    this.#clients.set(key, slot)
    slot.promise.then(client => {
      if (this.#clients.get(key) !== slot) {
        client.fail(new PeerUnreachableError('stream superseded', peer))
      } else if (client.closed) {
        this.#clients.delete(key)
      } else {
        slot.client = client
      }
    }, () => {
      if (this.#clients.get(key) === slot) {
        this.#clients.delete(key)
      }
    })
    return slot.promise.then(client => {
      if (!client.usable()) {
        throw new PeerUnreachableError(`stream to ${peer} closed while opening`, peer)
      }
      return client
    })
  }

  async #open (peer: string, protocol: string): Promise<ClientStream> {
    let connection: Connection | undefined
    try {
      connection = this.#libp2p.getConnections(peerIdFromString(peer)).find(c => c.status === 'open')
    } catch (err) {
      throw new PeerUnreachableError(`invalid peer id ${JSON.stringify(peer)}`, peer, { cause: err })
    }
    if (connection === undefined) {
      throw new PeerUnreachableError(`not connected to ${peer}`, peer)
    }
    const controller = new AbortController()
    this.#opening.add(controller)
    const timer = setTimeout(() => {
      controller.abort(new TimeoutError(`opening ${protocol} to ${peer} took over ${this.settings.streamOpenTimeoutMs} ms`, this.settings.streamOpenTimeoutMs))
    }, this.settings.streamOpenTimeoutMs)
    let stream: Stream
    try {
      stream = await connection.newStream(protocol, {
        signal: controller.signal,
        maxOutboundStreams: this.settings.maxOutboundStreams
      })
    } catch (err) {
      throw new PeerUnreachableError(`cannot open ${protocol} to ${peer}: ${errorMessage(err)}`, peer, { cause: err })
    } finally {
      clearTimeout(timer)
      this.#opening.delete(controller)
    }
    if (this.#stopped) {
      stream.abort(new Error('transport stopped'))
      throw new PeerUnreachableError('transport stopped', peer)
    }
    this.#counters.streamsOpened++
    return new ClientStream(this, new FramedStream(stream, peer, this.settings.maxFrameBytes, this.#counters), protocol, connection)
  }
}
