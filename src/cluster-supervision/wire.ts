/**
 * What a caller and a child's holder say to each other, over the holder endpoint of the
 * child's election (`supervision/holder` channel, through the service's registry): a request
 * carries the call's kind, a request id (so a copy retried after a failover is answered once),
 * the input in the server's input codec and the time left; a reply is the output bytes, `moved`
 * (this peer does not run the child now: the caller waits for the next holder and tries
 * again), or a failure by name with its fields, which the caller rebuilds as the same typed
 * error (`QueueFullError` from a host's queue is a `QueueFullError` at the caller).
 *
 * Both travel in `jsonCodec` (docs/PROTOCOL.md, "Supervision across the cluster"). Replies
 * from another peer are checked, never trusted: a malformed one is a `RemoteChildError`.
 *
 * @module
 */
import type { Codec } from '../codec/codec.js'
import { jsonCodec } from '../codec/json.js'
import {
  BadInputError, BadOutputError, CallTimeoutError, QueueFullError, ServerCrashedError, ServerExitedError,
  ServerStoppedError, SupervisionStoppedError, UnknownServerError, describeThrown
} from '../supervision/errors.js'
import type { ExitReason } from '../supervision/server.js'
import { PoisonInputError, RemoteChildError, ReplicasUnavailableError } from './errors.js'

/** A request to a child's holder. */
export interface ChildRequest {
  /** What is asked: a call (the output), a cast (admission only), or the quarantine records. */
  readonly k: 'call' | 'cast' | 'quarantined'
  /** The request id: `<caller>/<nonce>/<n>`. */
  readonly r: string
  /** The input, in the server's input codec (empty for `quarantined`). */
  readonly b: Uint8Array
  /** Milliseconds the caller still waits. */
  readonly t: number
}

/** A failure, by name and fields. */
export interface WireError {
  /** The error's `name`. */
  readonly name: string
  /** Its message. */
  readonly message: string
  /** Numeric and text fields the typed error carries, by name. */
  readonly fields: Readonly<Record<string, string | number>>
}

/** A holder's reply. */
export type ChildReply =
  | { readonly k: 'ok', readonly b: Uint8Array }
  | { readonly k: 'moved' }
  | { readonly k: 'error', readonly e: WireError }

/** The codec of requests (`jsonCodec`). */
export const requestCodec = jsonCodec as unknown as Codec<ChildRequest>
/** The codec of replies (`jsonCodec`). */
export const replyCodec = jsonCodec as unknown as Codec<ChildReply>

/** `err` as a wire failure. */
export function errorToWire (err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: describeThrown(err), fields: {} }
  const fields: Record<string, string | number> = {}
  const e = err as unknown as Record<string, unknown>
  for (const key of ['server', 'incarnation', 'timeoutMs', 'capacity', 'child', 'thrown', 'replicas', 'needed']) {
    const v = e[key]
    if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) fields[key] = v
  }
  if (err instanceof ServerExitedError) fields.reason = err.reason.kind
  if (err instanceof PoisonInputError) { fields.eventCounter = err.eventId.counter; fields.eventParticipant = err.eventId.participant }
  const cause = (err as { cause?: unknown }).cause
  if (cause !== undefined) fields.cause = describeThrown(cause)
  return { name: err.name, message: err.message, fields }
}

/** Whether `value` is a well-formed reply. */
export function isChildReply (value: unknown): value is ChildReply {
  if (typeof value !== 'object' || value === null) return false
  const r = value as Record<string, unknown>
  if (r.k === 'ok') return r.b instanceof Uint8Array
  if (r.k === 'moved') return true
  if (r.k !== 'error' || typeof r.e !== 'object' || r.e === null) return false
  const e = r.e as Record<string, unknown>
  return typeof e.name === 'string' && typeof e.message === 'string' && typeof e.fields === 'object' && e.fields !== null
}

/** Whether `value` is a well-formed request. */
export function isChildRequest (value: unknown): value is ChildRequest {
  if (typeof value !== 'object' || value === null) return false
  const r = value as Record<string, unknown>
  return (r.k === 'call' || r.k === 'cast' || r.k === 'quarantined') && typeof r.r === 'string' && r.b instanceof Uint8Array &&
    typeof r.t === 'number' && r.t > 0 && Number.isFinite(r.t)
}

/** The typed error a wire failure stands for, for a call to `child`. */
export function wireToError (child: string, e: WireError): Error {
  const f = e.fields
  const str = (k: string, fallback: string): string => typeof f[k] === 'string' ? f[k] : fallback
  const num = (k: string, fallback: number): number => typeof f[k] === 'number' ? f[k] : fallback
  const server = str('server', child)
  const cause = new Error(str('cause', e.message))
  switch (e.name) {
    case 'UnknownServerError': return new UnknownServerError(server)
    case 'QueueFullError': return new QueueFullError(num('capacity', 0), e.message)
    case 'CallTimeoutError': return new CallTimeoutError(server, num('timeoutMs', 0))
    case 'ServerCrashedError': return new ServerCrashedError(server, num('incarnation', 0), cause)
    case 'ServerExitedError': return new ServerExitedError(server, num('incarnation', 0), exitReason(str('reason', 'killed')))
    case 'ServerStoppedError': return new ServerStoppedError(server)
    case 'SupervisionStoppedError': return new SupervisionStoppedError(e.message)
    case 'BadInputError': return new BadInputError(server, cause)
    case 'BadOutputError': return new BadOutputError(server, cause)
    case 'PoisonInputError': return new PoisonInputError(str('child', child), { counter: num('eventCounter', 0), participant: str('eventParticipant', '') }, str('thrown', e.message))
    case 'ReplicasUnavailableError': return new ReplicasUnavailableError(str('child', child), num('replicas', 0), num('needed', 0))
    default: return new RemoteChildError(child, e.name, e.message)
  }
}

/** An exit reason from its kind alone (what travels: the error a crash carried stays on the host). */
function exitReason (kind: string): ExitReason {
  switch (kind) {
    case 'normal': return { kind: 'normal' }
    case 'shutdown': return { kind: 'shutdown' }
    case 'crashed': return { kind: 'crashed', phase: 'step', error: new Error('crashed on the host') }
    case 'gave-up': return { kind: 'gave-up', restarts: 0, periodMs: 0 }
    default: return { kind: 'killed' }
  }
}
