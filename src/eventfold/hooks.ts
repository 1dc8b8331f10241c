/**
 * The boundary between the fold and the user's {@link EventSpec}: every call of `apply`,
 * `join` and `unjoin` goes through here, so whatever a hook does (throw, return something
 * that is not an {@link ApplyResult}, or, with `freezeStates`, hand back a state that cannot
 * be frozen) the fold receives a value and never an exception. What a throw means for the
 * fold (a failure, a digest mark) is decided in event-fold.ts; this module only turns it into
 * data and describes it.
 *
 * @module
 */
import type { ApplyResult, EventId, EventSpec, Participant } from './types.js'

/** Longest description of a thrown error, in UTF-16 code units: it travels in every copy of the failure. */
export const MAX_THROWN_MESSAGE_LENGTH = 1024

/** What calling `apply` came to. */
export type ApplyOutcome<S, O> =
  | { readonly kind: 'applied', readonly output: O, readonly state: S }
  | { readonly kind: 'failed', readonly output: O }
  | { readonly kind: 'threw', readonly error: unknown, readonly message: string }

/** What calling `join` or `unjoin` came to: the new state, or the old one and what was thrown. */
export type MembershipOutcome<S> =
  | { readonly kind: 'applied', readonly state: S }
  | { readonly kind: 'threw', readonly state: S, readonly error: unknown, readonly message: string }

/**
 * A one-line, bounded, well-formed description of a thrown value. Never throws, even for a
 * value whose `toString` throws or that has none.
 */
export function describeThrown (error: unknown): string {
  let text: string
  try {
    if (error instanceof Error) text = `${String(error.name)}: ${String(error.message)}`
    else if (typeof error === 'string') text = error
    else text = String(error)
  } catch {
    text = `a thrown ${typeof error} that cannot be described`
  }
  text = text.replace(/\s*\n\s*/g, ' ')
  if (text.length > MAX_THROWN_MESSAGE_LENGTH) text = text.slice(0, MAX_THROWN_MESSAGE_LENGTH - 1) + '…'
  // Slicing can split a surrogate pair, and a thrown string may hold a lone one: the wire
  // carries UTF-8, which cannot.
  return text.toWellFormed()
}

function isApplyResult (r: unknown): r is ApplyResult<unknown, unknown> {
  return typeof r === 'object' && r !== null && ((r as { ok?: unknown }).ok === true || (r as { ok?: unknown }).ok === false)
}

/** The user's spec, called so that nothing it does escapes. */
export class GuardedSpec<E, S, O> {
  constructor (private readonly spec: EventSpec<E, S, O>, private readonly freeze: boolean) {}

  /** Calls `apply` for the event of id `id`; a throw or a malformed result becomes a `threw` outcome. */
  apply (event: E, state: S, id: EventId): ApplyOutcome<S, O> {
    try {
      const r: unknown = this.spec.apply(event, state, { counter: id.counter, participant: id.participant })
      if (!isApplyResult(r)) throw new TypeError(`apply returned ${r === null ? 'null' : typeof r}, not { ok, output[, state] }`)
      const result = r as ApplyResult<S, O>
      return result.ok ? { kind: 'applied', output: result.output, state: this.frozen(result.state) } : { kind: 'failed', output: result.output }
    } catch (error) {
      return { kind: 'threw', error, message: describeThrown(error) }
    }
  }

  /** Calls `join` or `unjoin` (the event of id `id`), if the spec has it; a throw leaves `state` as it was. */
  membership (hook: 'join' | 'unjoin', peer: Participant, state: S, id: EventId): MembershipOutcome<S> {
    const f = hook === 'join' ? this.spec.join : this.spec.unjoin
    if (f === undefined) return { kind: 'applied', state }
    try {
      return { kind: 'applied', state: this.frozen(f(peer, state, { counter: id.counter, participant: id.participant })) }
    } catch (error) {
      return { kind: 'threw', state, error, message: describeThrown(error) }
    }
  }

  /** Deep-freezes `value` when the fold freezes states; returns it. */
  frozen<T> (value: T): T {
    if (this.freeze) deepFreeze(value)
    return value
  }
}

/** Freezes plain objects and arrays recursively, stopping at anything already frozen. */
function deepFreeze (value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value) || ArrayBuffer.isView(value)) return
  Object.freeze(value)
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
}
