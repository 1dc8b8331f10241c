/**
 * Admissions: which incarnation of a participant takes part. A participant's name outlives its
 * incarnations (it leaves and is added again, or its Join is dropped and another admits it);
 * each incarnation is named by the Join that admitted it. The infimum records each
 * participant's (`FoldCore.admitted`), each log the one its writer was admitted by
 * (`LogState.admittedBy`), and an event folds only as its log's incarnation (see
 * docs/ARCHITECTURE.md, "Admissions").
 *
 * @module
 */
import type { Entry, FoldCore } from './core.js'
import type { ParticipantTable } from './participants.js'
import { BOTTOM, type Admission, type EventId } from './types.js'

/** Admissions by participant index, each Join's participant spelled as the table has it. */
export function admissionsOf (table: ParticipantTable, admissions: Iterable<Admission>): Map<number, EventId> {
  const admitted = new Map<number, EventId>()
  for (const a of admissions) admitted.set(table.intern(a.participant), a.join.counter === 0 ? BOTTOM : { counter: a.join.counter, participant: table.name(table.intern(a.join.participant)) })
  return admitted
}

/**
 * Whether `e` may fold after the participants `mask`, admitted as `admitted` says: its
 * creator takes part, as the incarnation that writes `e`'s log. A participant removed and
 * admitted again by another Join is a new incarnation, and the events its earlier one wrote
 * after that Join (it may never have heard of it, or been admitted by a Join this history
 * dropped) are a renegade's. Where either side is not known (a fold stored before admissions
 * were recorded), it takes part.
 */
export function takesPart<E, S, O> (core: FoldCore<E, S, O>, mask: bigint, admitted: ReadonlyMap<number, EventId>, e: Entry<E, O>): boolean {
  if ((mask & core.table.bit(e.creator)) === 0n) return false
  const by = admitted.get(e.creator)
  return by === undefined || writtenAs(core, e, by)
}

/** Whether `e`'s log was written by the incarnation Join `join` admitted, or by one not known. */
export function writtenAs<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>, join: EventId): boolean {
  const writes = e.log.admittedBy
  return writes === undefined || (writes.counter === join.counter && writes.participant === join.participant)
}

/**
 * The participants after Join or UnJoin `e` (`d` its delta) takes effect on `mask`, updating
 * `admitted` to match: a Join admits its peer only if it does not take part already (a second
 * Join of a participant changes nothing), an UnJoin forgets its admission.
 */
export function admit<E, S, O> (core: FoldCore<E, S, O>, d: { readonly kind: 'join' | 'unjoin', readonly peer: number }, e: EventId, mask: bigint, admitted: Map<number, EventId>): bigint {
  const bit = core.table.bit(d.peer)
  if (d.kind === 'unjoin') {
    admitted.delete(d.peer)
    return mask & ~bit
  }
  if ((mask & bit) === 0n) admitted.set(d.peer, { counter: e.counter, participant: e.participant })
  return mask | bit
}
