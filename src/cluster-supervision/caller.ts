/**
 * Calls and casts to a child by name, from any peer: find the child in the settled table, send
 * the request to whoever holds its election (discovery's holder endpoint waits for a holder and
 * follows it), and turn what comes back into the output or a typed error. Every attempt of one
 * call carries the same request id, so a copy that reaches two holders across a failover (or
 * one holder twice) is answered once: a host remembers its replies by id, a replicated
 * server's fold remembers its outputs.
 *
 * A `moved` reply (the peer does not run the child now) waits for the holder to change, or a
 * pause that doubles up to half a second, and tries again; so does a transport failure, and an
 * attempt that got no answer within a quarter of the call's timeout (at least a second). All of
 * it within the call's deadline, after which the call fails with `CallTimeoutError`.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from '@libp2p/interface'
import type { HolderEndpoint } from '../discovery/api.js'
import { compareEventIds, type EventId, type Participant } from '../eventfold/types.js'
import { CallAbortedError, CallTimeoutError, ServerStoppedError, UnknownServerError } from '../supervision/errors.js'
import type { Clock } from '../time/clock.js'
import type { ChildRecord } from './children-spec.js'
import { RemoteChildError } from './errors.js'
import type { Waits } from './waiting.js'
import { isChildReply, wireToError, type ChildReply, type ChildRequest } from './wire.js'

/** Most attempts of one call: a bound besides its deadline. */
const MAX_ATTEMPTS = 1000
/** The longest pause between two attempts. */
const MAX_PAUSE_MS = 500
/** The shortest attempt (each is a quarter of the call's timeout, at least this). */
const MIN_ATTEMPT_MS = 1000

/** What the caller needs from the service. */
export interface CallerComponents {
  /** This peer. */
  readonly self: Participant
  /** Time. */
  readonly clock: Clock
  /** The service's waits (told of every registry and table change). */
  readonly waits: Waits
  /** The child in the settled table. */
  readonly record: (name: string) => ChildRecord | undefined
  /** The settled holder of the child's election. */
  readonly holder: (name: string) => { readonly peer: Participant, readonly token: EventId } | undefined
  /** The holder endpoint of the child's election. */
  readonly endpoint: (name: string) => HolderEndpoint<ChildRequest, ChildReply>
  /** The service's logger. */
  readonly log: Logger
}

/** Sends requests to children; see the module comment. */
export class Caller {
  private readonly nonce = randomBytes(6).toString('hex')
  private seq = 0
  /** Requests sent (first attempts). */
  sent = 0

  constructor (private readonly c: CallerComponents) {}

  /**
   * Sends one request to `name`'s holder and resolves with the reply's bytes.
   * @throws the typed error the holder answered, `UnknownServerError`, `ServerStoppedError`,
   *   `CallTimeoutError` or `CallAbortedError`
   */
  async request (name: string, kind: ChildRequest['k'], body: Uint8Array, timeoutMs: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const c = this.c
    const deadline = c.clock.now() + timeoutMs
    const request = `${c.self}/${this.nonce}/${++this.seq}`
    this.sent++
    let pause = 10
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (aborted(signal)) throw new CallAbortedError(name, { cause: signal?.reason })
      const record = c.record(name)
      if (record === undefined) throw new UnknownServerError(name)
      if (record.status !== 'active') throw new ServerStoppedError(name)
      const remaining = deadline - c.clock.now()
      if (remaining <= 0) break
      const tried = c.holder(name)
      // An attempt is bounded below the call's deadline, so that a holder that went silent (a
      // partition, a machine gone without closing its connections) is tried again, and its
      // successor found, within the call; a copy of a slow request joins the first one there.
      const attemptMs = Math.min(remaining, Math.max(MIN_ATTEMPT_MS, timeoutMs / 4))
      let reply: ChildReply
      try {
        reply = await c.endpoint(name).call({ k: kind, r: request, b: body, t: remaining }, { timeoutMs: attemptMs, waitForHolder: true, ...(signal !== undefined ? { signal } : {}) })
      } catch (err) {
        const e = err as Error
        if (e.name === 'AbortError' || aborted(signal)) throw new CallAbortedError(name, { cause: err })
        if (c.clock.now() >= deadline) break // nobody answered within the deadline
        c.log('call to %s failed (%s): trying again', name, e.message)
        pause = await this.pause(name, tried, pause, deadline, signal)
        continue
      }
      if (!isChildReply(reply)) throw new RemoteChildError(name, 'BadReply', 'the holder answered something that is not a reply')
      if (reply.k === 'ok') return reply.b
      if (reply.k === 'error') throw wireToError(name, reply.e)
      pause = await this.pause(name, tried, pause, deadline, signal) // moved
    }
    throw new CallTimeoutError(name, timeoutMs)
  }

  /** Waits for `name`'s holder to differ from `tried`, or `pause` ms; returns the next pause. */
  private async pause (name: string, tried: { readonly peer: Participant, readonly token: EventId } | undefined, pause: number, deadline: number, signal: AbortSignal | undefined): Promise<number> {
    const c = this.c
    const moved = (): true | undefined => {
      const now = c.holder(name)
      if (now === undefined || tried === undefined) return now !== tried ? true : undefined
      return now.peer !== tried.peer || compareEventIds(now.token, tried.token) !== 0 ? true : undefined
    }
    await c.waits.until(moved, Math.min(pause, Math.max(0, deadline - c.clock.now())), signal)
    return Math.min(pause * 2, MAX_PAUSE_MS)
  }
}

function aborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}
