/**
 * Calls and casts addressed to a name: the caller finds the holder in its settled state and
 * sends over the service's `discovery/holder` channel (the streams already open between
 * peers); the receiver answers only while it runs as that name's holder, else `not-holder`,
 * which the caller turns into `NoHolderError` or, with `waitForHolder`, into waiting for the
 * registry to change and trying again, within its deadline. A cast that reaches a peer that no
 * longer runs the name is dropped there (and logged).
 *
 * Wire (jsonCodec on the channel): request `{ n: name, b: bytes }`, reply `{ s: 'ok', b }`,
 * `{ s: 'not-holder' }` or `{ s: 'no-handler' }`; `b` is the application's codec's bytes.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import { decodeWith, encodeWith, type Codec, type DecodeLimits } from '../codec/codec.js'
import type { EventId, Participant } from '../eventfold/types.js'
import { NoHandlerError } from '../peer/errors.js'
import type { ChannelHandle } from '../peer/messaging.js'
import { AbortError, TimeoutError } from '../transport/errors.js'
import type { Clock } from '../time/clock.js'
import type { Holder, HolderCallContext, HolderCallOptions, HolderEndpoint } from './api.js'
import type { Conditions } from './conditions.js'
import { NoHolderError } from './errors.js'

/** The channel's request. */
export type HolderRequest = { readonly n: string, readonly b: Uint8Array }
/** The channel's reply. */
export type HolderReply = { readonly s: 'ok', readonly b: Uint8Array } | { readonly s: 'not-holder' } | { readonly s: 'no-handler' }

/** The default deadline of a call addressed to a name. */
const DEFAULT_CALL_MS = 10_000
/** Most attempts of one call (each waits for a change or a growing pause): a bound besides the deadline. */
const MAX_ATTEMPTS = 1000

/** What the calls need from the service. */
export interface CallsComponents {
  /** The service's channel. */
  readonly channel: ChannelHandle<HolderRequest, HolderReply>
  /** The settled holder of a name. */
  readonly whereis: (name: string) => Holder | undefined
  /** The token under which this peer runs a name now, if it does. */
  readonly runningToken: (name: string) => EventId | undefined
  /** Waits, re-checked on every registry change. */
  readonly conditions: Conditions
  /** Time. */
  readonly clock: Clock
  /** Decode limits. */
  readonly limits: DecodeLimits
  /** The service's logger. */
  readonly log: Logger
}

type RawHandler = (body: Uint8Array, context: HolderCallContext) => Promise<Uint8Array>
type RawCast = (body: Uint8Array, context: HolderCallContext) => void

/** The endpoints of one peer; see the module comment. */
export class HolderCalls {
  private readonly callHandlers = new Map<string, RawHandler>()
  private readonly castHandlers = new Map<string, RawCast>()

  constructor (private readonly components: CallsComponents) {
    components.channel.handle(async (req, ctx) => await this.answer(req, ctx.from))
    components.channel.onCast((msg, ctx) => { this.deliver(msg, ctx.from) })
  }

  /** A typed endpoint of `name`. */
  endpoint<Req, Rep> (name: string, codecs: { readonly request: Codec<Req>, readonly reply: Codec<Rep> }): HolderEndpoint<Req, Rep> {
    const { limits } = this.components
    return {
      name,
      call: async (request, options) => decodeWith(codecs.reply, await this.call(name, encodeWith(codecs.request, request), options), limits),
      cast: async (message, options) => { await this.cast(name, encodeWith(codecs.request, message), options) },
      handle: (handler) => this.setHandler(this.callHandlers, name, async (body, ctx) => encodeWith(codecs.reply, await handler(decodeWith(codecs.request, body, limits), ctx))),
      onCast: (handler) => this.setHandler(this.castHandlers, name, (body, ctx) => { handler(decodeWith(codecs.request, body, limits), ctx) })
    }
  }

  private setHandler<H> (map: Map<string, H>, name: string, handler: H): () => void {
    map.set(name, handler)
    return () => { if (map.get(name) === handler) map.delete(name) }
  }

  private async answer (req: HolderRequest, from: Participant): Promise<HolderReply> {
    const token = this.components.runningToken(req.n)
    if (token === undefined) return { s: 'not-holder' }
    const handler = this.callHandlers.get(req.n)
    if (handler === undefined) return { s: 'no-handler' }
    return { s: 'ok', b: await handler(req.b, { from, name: req.n, token }) }
  }

  private deliver (msg: HolderRequest, from: Participant): void {
    const token = this.components.runningToken(msg.n)
    const handler = this.castHandlers.get(msg.n)
    if (token === undefined || handler === undefined) { this.components.log('a cast to %s from %s dropped: %s', msg.n, from, token === undefined ? 'not the holder here' : 'no handler'); return }
    handler(msg.b, { from, name: msg.n, token })
  }

  /** Calls the holder of `name`; see the module comment. */
  async call (name: string, body: Uint8Array, options: HolderCallOptions = {}): Promise<Uint8Array> {
    const c = this.components
    const deadline = c.clock.now() + (options.timeoutMs ?? DEFAULT_CALL_MS)
    const wait = options.waitForHolder === true
    let pause = 25
    let lastError: Error | undefined
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const remaining = deadline - c.clock.now()
      if (remaining <= 0) break
      const holder = wait ? await this.holderWithin(name, remaining, options.signal) : c.whereis(name)
      if (holder === undefined) throw new NoHolderError(name, wait ? `nobody held it within ${options.timeoutMs ?? DEFAULT_CALL_MS} ms` : 'nobody holds it')
      let reply: HolderReply
      try {
        reply = await c.channel.call(holder.peer, { n: name, b: body }, { timeoutMs: Math.max(1, deadline - c.clock.now()), ...(options.signal !== undefined ? { signal: options.signal } : {}) })
      } catch (err) {
        if (!wait || err instanceof AbortError) throw err
        lastError = err as Error
        c.log('call to %s at %s failed (%s): trying again', name, holder.peer, err)
        pause = await this.pauseUntilChange(name, holder, pause, deadline, options.signal)
        continue
      }
      if (reply.s === 'ok') return reply.b
      if (reply.s === 'no-handler') throw new NoHandlerError(holder.peer, c.channel.name, `the holder of ${JSON.stringify(name)} handles no calls to it`)
      if (!wait) throw new NoHolderError(name, `${holder.peer} does not run it now`)
      pause = await this.pauseUntilChange(name, holder, pause, deadline, options.signal)
    }
    throw new NoHolderError(name, `no holder answered within ${options.timeoutMs ?? DEFAULT_CALL_MS} ms${lastError !== undefined ? ` (last: ${lastError.message})` : ''}`)
  }

  /** Casts to the holder of `name`. */
  async cast (name: string, body: Uint8Array, options: HolderCallOptions = {}): Promise<void> {
    const holder = options.waitForHolder === true
      ? await this.holderWithin(name, options.timeoutMs ?? DEFAULT_CALL_MS, options.signal)
      : this.components.whereis(name)
    if (holder === undefined) throw new NoHolderError(name)
    await this.components.channel.cast(holder.peer, { n: name, b: body })
  }

  /** The settled holder, waiting for one until `timeoutMs`; `undefined` if none came. */
  private async holderWithin (name: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<Holder | undefined> {
    try {
      return await this.components.conditions.until(() => this.components.whereis(name), `a holder of ${name}`, { timeoutMs, ...(signal !== undefined ? { signal } : {}) })
    } catch (err) {
      if (err instanceof TimeoutError) return undefined
      throw err
    }
  }

  /**
   * Waits until the settled holder of `name` is no longer `tried`, or `pause` ms (the tried one
   * may simply not have started yet); returns the next, longer pause.
   */
  private async pauseUntilChange (name: string, tried: Holder, pause: number, deadline: number, signal: AbortSignal | undefined): Promise<number> {
    const c = this.components
    const timeoutMs = Math.min(pause, Math.max(0, deadline - c.clock.now()))
    const moved = (): true | undefined => {
      const now = c.whereis(name)
      return now === undefined || now.peer !== tried.peer || now.token.counter !== tried.token.counter || now.token.participant !== tried.token.participant ? true : undefined
    }
    try {
      await c.conditions.until(moved, `the holder of ${name} to change`, { timeoutMs, ...(signal !== undefined ? { signal } : {}) })
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err
    }
    return Math.min(pause * 2, 1000)
  }
}
