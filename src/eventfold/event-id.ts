/**
 * Event ids and participants: the total order every replica folds in, and the helpers that
 * compare them. Split from `types.ts` (which re-exports all of it) because every other module
 * of the core needs these and little else.
 *
 * @module
 */

/**
 * A participant of the cluster, identified by a string (in the runtime: the libp2p peer id in
 * its canonical base58 form).
 */
export type Participant = string

/**
 * The totally ordered identity of an event: ordered by `counter`, then by `participant`.
 *
 * The special value {@link BOTTOM} (`counter` 0, `participant` "") sorts before every real
 * event; real events always have `counter >= 1`. Counters are Lamport-style: a participant's
 * next event takes one more than the largest counter it has seen, so ids are unique per
 * participant.
 */
export interface EventId {
  /** Lamport counter, `>= 1` for real events, `0` only for {@link BOTTOM}. */
  readonly counter: number
  /** The participant that created the event; `""` only for {@link BOTTOM}. */
  readonly participant: Participant
}

/** The event id before every other event. */
export const BOTTOM: EventId = Object.freeze({ counter: 0, participant: '' })

/** Whether `id` is {@link BOTTOM}. */
export function isBottom (id: EventId): boolean {
  return id.counter === 0
}

/** Compares two event ids: negative if `a < b`, 0 if equal, positive if `a > b`. */
export function compareEventIds (a: EventId, b: EventId): number {
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1
  if (a.participant === b.participant) return 0
  return a.participant < b.participant ? -1 : 1
}

/** Whether two participant lists name the same participants in the same order. */
export function sameParticipants (a: readonly Participant[], b: readonly Participant[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A stable string form of an event id, usable as a map key: `"counter:participant"`. */
export function eventIdKey (id: EventId): string {
  return `${id.counter}:${id.participant}`
}
