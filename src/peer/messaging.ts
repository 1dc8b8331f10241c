/**
 * Messages between peers: `call` (request/response), `cast` (one-way), `broadcast` and
 * `broadcall` to every other participant, as bytes on the cluster's default channel or typed
 * through a {@link MessageChannel} (a name and codecs). Every channel rides the same two
 * protocols (`call`, `cast`) and so the streams already open between peers; the channel name
 * in each frame picks the handler. Services name their channels `<service>/<name>`.
 *
 * Wire: Call / Cast (kind 29): `str channel`, `bytes body`. CallReply (kind 30): `u8 status`,
 * then for 0 (replied) `bytes body`, for 1 (the handler threw), 2 (no handler for the
 * channel) and 3 (the handler returned something its reply codec cannot carry) a `str`
 * message. A call from a non-participant is refused with a Refusal.
 *
 * A call to this peer itself is dispatched locally, without the network, with the same
 * semantics (a router that owns a key itself needs no special case).
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import { decodeWith, encodeWith, type Codec, type DecodeLimits } from '../codec/codec.js'
import type { Reader } from '../codec/buffer.js'
import { DecodeError } from '../codec/errors.js'
import type { Participant } from '../eventfold/types.js'
import { AbortError, PeerUnreachableError, RemoteError, TimeoutError } from '../transport/errors.js'
import { DEFAULT_CALL_TIMEOUT_MS } from './config.js'
import { BadReplyError, NoHandlerError, StoppedError } from './errors.js'
import type { Inbound } from './inbound.js'
import type { Lifecycle } from './lifecycle.js'
import type { Network } from './network.js'
import type { WaitOptions } from './options.js'
import { PeerMessageKind, clipText, decodeMessage, encodeMessage, type Refusal } from './protocol/message.js'

/** Protocol names. */
export const CALL_PROTOCOL = 'call'
/** Protocol names. */
export const CAST_PROTOCOL = 'cast'

/** Message kind of a Call or Cast frame. */
export const KIND_MESSAGE = PeerMessageKind.heartbeatAnswer + 1
/** Message kind of a CallReply. */
export const KIND_REPLY = KIND_MESSAGE + 1
/** Longest error message of a CallReply, in UTF-8 bytes (a longer one is cut). */
const MAX_REPLY_TEXT = 16 * 1024

/** What a message handler is told besides the message. */
export interface MessageContext {
  /** The sender (this peer itself for a local call). */
  readonly from: Participant
  /** The channel the message came on (`""`: the default byte channel). */
  readonly channel: string
}

/** A typed channel: a name and the codecs of its requests and replies. */
export interface MessageChannel<Req, Rep> {
  /** The channel's name, unique in the cluster; services use `<service>/<name>`. */
  readonly name: string
  /** Codec of requests (and casts). */
  readonly request: Codec<Req>
  /** Codec of replies. */
  readonly reply: Codec<Rep>
}

/** Handles calls on a channel: the reply, or a throw the caller receives as a `RemoteError`. */
export type ChannelCallHandler<Req, Rep> = (request: Req, context: MessageContext) => Rep | Promise<Rep>
/** Handles casts on a channel. A throw is logged. */
export type ChannelCastHandler<Req> = (message: Req, context: MessageContext) => void

/**
 * What one participant answered a `broadcall`: its reply, the error its handler threw (or why
 * it could not answer), a timeout, or that it could not be reached.
 */
export type BroadcallResult<T> =
  | {
    /** It replied. */
    readonly kind: 'reply'
    /** The reply. */
    readonly value: T
  }
  | {
    /** Its handler threw, it has no handler, or its reply was unusable. */
    readonly kind: 'remote-error'
    /** Which, with the remote's message. */
    readonly error: RemoteError | NoHandlerError | BadReplyError
  }
  | {
    /** No answer within the timeout. */
    readonly kind: 'timeout'
  }
  | {
    /** It could not be reached. */
    readonly kind: 'unreachable'
    /** Why. */
    readonly error: Error
  }

/** Typed messaging on one channel, obtained from `Legion.channel`. */
export interface ChannelHandle<Req, Rep> {
  /** The channel's name. */
  readonly name: string
  /** Sends `request` to `peer` and resolves with its reply (default timeout 10 s). */
  call(peer: Participant, request: Req, options?: WaitOptions): Promise<Rep>
  /** Sends `message` to `peer` without waiting for an answer. */
  cast(peer: Participant, message: Req): Promise<void>
  /** Casts `message` to every other participant. */
  broadcast(message: Req): Promise<void>
  /** Calls every other participant; resolves with each one's result. */
  broadcall(request: Req, options?: WaitOptions): Promise<Map<Participant, BroadcallResult<Rep>>>
  /** Sets the handler of calls on this channel (replacing any); returns the function that removes it. */
  handle(handler: ChannelCallHandler<Req, Rep>): () => void
  /** Sets the handler of casts on this channel (replacing any); returns the function that removes it. */
  onCast(handler: ChannelCastHandler<Req>): () => void
}

/**
 * Checks a channel's name and codecs and returns the channel.
 * @throws TypeError naming what is wrong
 */
export function messageChannel<Req, Rep> (channel: MessageChannel<Req, Rep>): MessageChannel<Req, Rep> {
  if (typeof channel !== 'object' || channel === null) throw new TypeError('a channel must be an object { name, request, reply }')
  if (typeof channel.name !== 'string' || channel.name === '' || Buffer.byteLength(channel.name) > 128) throw new TypeError('channel.name must be a non-empty string of at most 128 bytes')
  for (const k of ['request', 'reply'] as const) {
    const codec = channel[k] as Partial<Codec<unknown>> | undefined
    if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function') throw new TypeError(`channel.${k} must be a Codec { encode, decode }`)
  }
  return Object.freeze({ ...channel })
}

/** What messaging needs. */
export interface MessagingComponents {
  /** This peer. */
  readonly self: Participant
  /** The network. */
  readonly network: Network
  /** The admission pipeline. */
  readonly inbound: Inbound
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** The other projected participants of the cluster. */
  readonly others: () => Participant[]
  /** Message limits. */
  readonly limits: DecodeLimits
  /** The part's logger. */
  readonly log: Logger
}

type RawCallHandler = (body: Uint8Array, context: MessageContext) => Promise<Uint8Array> | Uint8Array
type RawCastHandler = (body: Uint8Array, context: MessageContext) => void

/** What a call's handler did: the decoded CallReply. */
export type Reply =
  | { readonly status: 'replied', readonly body: Uint8Array }
  | { readonly status: 'threw' | 'no-handler' | 'bad-reply', readonly message: string }

/** Calls and casts on named channels; see the module comment. */
export class Messaging {
  private readonly callHandlers = new Map<string, RawCallHandler>()
  private readonly castHandlers = new Map<string, RawCastHandler>()

  constructor (private readonly components: MessagingComponents) {}

  /** Registers the protocols. */
  async start (): Promise<void> {
    const inbound = this.components.inbound
    await inbound.request(CALL_PROTOCOL, 'members', decodeFrame, async (from, frame) => encodeReply(await this.dispatchCall(from, frame.channel, frame.body)))
    await inbound.oneWay(CAST_PROTOCOL, 'members', decodeFrame, (from, frame) => { this.dispatchCast(from, frame.channel, frame.body) })
  }

  /** Sets the raw handler of calls on `channel`; returns the remover. */
  handleCall (channel: string, handler: RawCallHandler): () => void {
    this.callHandlers.set(channel, handler)
    return () => { if (this.callHandlers.get(channel) === handler) this.callHandlers.delete(channel) }
  }

  /** Sets the raw handler of casts on `channel`; returns the remover. */
  handleCast (channel: string, handler: RawCastHandler): () => void {
    this.castHandlers.set(channel, handler)
    return () => { if (this.castHandlers.get(channel) === handler) this.castHandlers.delete(channel) }
  }

  /** A typed handle on `channel` (the default byte channel when `channel.name` is `""`). */
  channel<Req, Rep> (channel: MessageChannel<Req, Rep>): ChannelHandle<Req, Rep> {
    const { name, request, reply } = channel
    const limits = this.components.limits
    const decodeReply = (body: Uint8Array): Rep => decodeWith(reply, body, limits)
    return {
      name,
      call: async (peer, req, options) => decodeReply(await this.call(peer, name, encodeChecked(request, req, 'request'), options)),
      cast: async (peer, msg) => { await this.cast(peer, name, encodeChecked(request, msg, 'message')) },
      broadcast: async (msg) => { await this.broadcast(name, encodeChecked(request, msg, 'message')) },
      broadcall: async (req, options) => {
        const raw = await this.broadcall(name, encodeChecked(request, req, 'request'), options)
        const out = new Map<Participant, BroadcallResult<Rep>>()
        for (const [peer, r] of raw) {
          if (r.kind !== 'reply') { out.set(peer, r); continue }
          try { out.set(peer, { kind: 'reply', value: decodeReply(r.value) }) } catch (err) {
            out.set(peer, { kind: 'remote-error', error: new BadReplyError(peer, name, (err as Error).message) })
          }
        }
        return out
      },
      handle: (handler) => this.handleCall(name, async (body, ctx) => {
        const req = decodeWith(request, body, limits)
        const rep = await handler(req, ctx)
        try { return encodeWith(reply, rep) } catch (err) { throw new BadReplyError(this.components.self, name, (err as Error).message) }
      }),
      onCast: (handler) => this.handleCast(name, (body, ctx) => { handler(decodeWith(request, body, limits), ctx) })
    }
  }

  /** Calls `peer` on `channel`; rejects with the transport's typed errors or the remote's. */
  async call (peer: Participant, channel: string, body: Uint8Array, options: WaitOptions = {}): Promise<Uint8Array> {
    checkPeer(peer)
    checkBytes(body, 'payload')
    this.requireRunning()
    if (options.signal?.aborted === true) throw new AbortError(undefined, { cause: options.signal.reason })
    if (peer === this.components.self) return fromReply(await this.dispatchCall(peer, channel, body), peer, channel)
    const c = this.components
    const frame = encodeFrame(channel, body)
    c.inbound.countOut(frame)
    const answer = await c.network.request(peer, c.inbound.protocol(CALL_PROTOCOL), frame, {
      timeoutMs: options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
      ...(options.signal !== undefined ? { signal: options.signal } : {})
    })
    c.inbound.admit(peer, answer)
    const reply = decodeReply(answer, c.limits)
    if ('kind' in reply) throw new RemoteError(`refused (${reply.code}): ${reply.message}`, peer, CALL_PROTOCOL)
    return fromReply(reply, peer, channel)
  }

  /** Casts to `peer` on `channel`. */
  async cast (peer: Participant, channel: string, body: Uint8Array): Promise<void> {
    checkPeer(peer)
    checkBytes(body, 'payload')
    this.requireRunning()
    if (peer === this.components.self) { this.dispatchCast(peer, channel, body); return }
    const c = this.components
    const frame = encodeFrame(channel, body)
    c.inbound.countOut(frame)
    await c.network.send(peer, c.inbound.protocol(CAST_PROTOCOL), frame)
  }

  /** Casts to every other participant; failures are logged. */
  async broadcast (channel: string, body: Uint8Array): Promise<void> {
    checkBytes(body, 'payload')
    this.requireRunning()
    await Promise.all(this.components.others().map(async peer => {
      await this.cast(peer, channel, body).catch(err => { this.components.log('broadcast to %s failed: %s', peer, err) })
    }))
  }

  /** Calls every other participant; each result says what happened. */
  async broadcall (channel: string, body: Uint8Array, options: WaitOptions = {}): Promise<Map<Participant, BroadcallResult<Uint8Array>>> {
    checkBytes(body, 'payload')
    this.requireRunning()
    const peers = this.components.others()
    const results = await Promise.all(peers.map(async (peer): Promise<BroadcallResult<Uint8Array>> => {
      try {
        return { kind: 'reply', value: await this.call(peer, channel, body, options) }
      } catch (err) {
        if (err instanceof RemoteError || err instanceof NoHandlerError || err instanceof BadReplyError) return { kind: 'remote-error', error: err }
        if (err instanceof TimeoutError) return { kind: 'timeout' }
        return { kind: 'unreachable', error: err instanceof Error ? err : new PeerUnreachableError(String(err), peer) }
      }
    }))
    return new Map(peers.map((peer, i) => [peer, results[i]!]))
  }

  private requireRunning (): void {
    if (this.components.lifecycle.stopped) throw new StoppedError()
  }

  private async dispatchCall (from: Participant, channel: string, body: Uint8Array): Promise<Reply> {
    const handler = this.callHandlers.get(channel)
    if (handler === undefined) return { status: 'no-handler', message: channel === '' ? 'this peer takes no calls' : `no handler for channel ${JSON.stringify(channel)}` }
    let result: unknown
    try {
      result = await handler(body, { from, channel })
    } catch (err) {
      if (err instanceof BadReplyError) return { status: 'bad-reply', message: err.message }
      return { status: 'threw', message: err instanceof Error ? err.message : String(err) }
    }
    if (!(result instanceof Uint8Array)) {
      return { status: 'bad-reply', message: `the call handler returned ${describe(result)}, not a Uint8Array` }
    }
    return { status: 'replied', body: result }
  }

  private dispatchCast (from: Participant, channel: string, body: Uint8Array): void {
    const handler = this.castHandlers.get(channel)
    if (handler === undefined) { this.components.log('dropped a cast on channel %s with no handler', channel); return }
    try {
      handler(body, { from, channel })
    } catch (err) {
      this.components.log.error('the cast handler of channel %s threw: %s', channel, err)
    }
  }
}

function fromReply (reply: Reply, peer: Participant, channel: string): Uint8Array {
  switch (reply.status) {
    case 'replied': return reply.body
    case 'threw': throw new RemoteError(reply.message, peer, CALL_PROTOCOL)
    case 'no-handler': throw new NoHandlerError(peer, channel, reply.message)
    case 'bad-reply': throw new BadReplyError(peer, channel, reply.message)
  }
}

function encodeChecked<T> (codec: Codec<T>, value: T, what: string): Uint8Array {
  try {
    return encodeWith(codec, value)
  } catch (err) {
    throw new TypeError(`the ${what} cannot be encoded by the channel's codec: ${(err as Error).message}`, { cause: err })
  }
}

function checkPeer (peer: unknown): void {
  if (typeof peer !== 'string' || peer === '') throw new TypeError(`peer must be a peer id string, got ${describe(peer)}`)
}

function checkBytes (bytes: unknown, what: string): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array, got ${describe(bytes)}; use a typed channel (Legion.channel) to send other values`)
}

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`
  return `a ${typeof value}`
}

/** Encodes a Call or Cast frame. */
export function encodeFrame (channel: string, body: Uint8Array): Uint8Array {
  return encodeMessage(KIND_MESSAGE, w => { w.writeString(channel); w.writeBytes(body) })
}

/** Decodes a Call or Cast frame. Throws only `DecodeError`. */
export function decodeFrame (bytes: Uint8Array, limits: DecodeLimits): { channel: string, body: Uint8Array } {
  return decodeMessage(bytes, limits, KIND_MESSAGE, r => ({ channel: r.readString(256), body: r.readBytes(limits.maxBytes) }))
}

/** Encodes a CallReply. */
export function encodeReply (reply: Reply): Uint8Array {
  return encodeMessage(KIND_REPLY, w => {
    switch (reply.status) {
      case 'replied': w.writeUint8(0); w.writeBytes(reply.body); return
      case 'threw': w.writeUint8(1); break
      case 'no-handler': w.writeUint8(2); break
      case 'bad-reply': w.writeUint8(3); break
    }
    w.writeString(clipText(reply.message, MAX_REPLY_TEXT))
  })
}

/** Decodes the answer to a call: a CallReply, or a Refusal. Throws only `DecodeError`. */
export function decodeReply (bytes: Uint8Array, limits: DecodeLimits): Reply | Refusal {
  return decodeMessage(bytes, limits, KIND_REPLY, readReply, true)
}

function readReply (r: Reader): Reply {
  const status = r.readUint8()
  if (status === 0) return { status: 'replied', body: r.readBytes() }
  const message = r.readString(MAX_REPLY_TEXT)
  if (status === 1) return { status: 'threw', message }
  if (status === 2) return { status: 'no-handler', message }
  if (status === 3) return { status: 'bad-reply', message }
  throw new DecodeError('invalid', `unknown reply status ${status}`)
}
