/**
 * The projected value: the infimum state with every outstanding event applied in id order,
 * cached. An entry appended after every other one is applied to the cache directly; anything
 * else (an event inserted in the middle, an adopted remote infimum, an event turned into an
 * error) marks the cache stale, and it is recomputed from the infimum on the next read. Each
 * entry remembers how the projection found it (`projectedFailure`), which is how the digest
 * check predicts outcomes (folding.ts).
 *
 * @module
 */
import { admit, takesPart } from './admissions.js'
import type { ApplyOutcome } from './hooks.js'
import type { Entry, Failure, FoldCore, InternalDelta } from './core.js'
import { compareEventIds } from './types.js'

/** The failure an `apply` outcome that did not succeed stands for. */
export function failureOf<S, O> (r: Exclude<ApplyOutcome<S, O>, { kind: 'applied' }>): Failure<O> {
  return r.kind === 'failed' ? { output: r.output } : { thrown: r.message }
}

/** Recomputes the projection from the infimum if it is stale. */
export function ensureProjection<E, S, O> (core: FoldCore<E, S, O>): void {
  if (core.projValid) return
  core.projState = core.infState
  core.projMask = core.infMask
  core.projAdmitted = new Map(core.admitted)
  core.tailEntry = undefined
  core.tailApplied = undefined
  core.projValid = true
  for (let i = core.head; i < core.entries.length; i++) projectEntry(core, core.entries[i]!)
}

/**
 * The projected participants as a mask, without applying anything when the projection is
 * stale: who takes part changes with the Joins and UnJoins alone (a hook that throws changes
 * the state, not the membership), so they are applied to the infimum's participants in id
 * order, skipping a renegade's as {@link projectEntry} does. A merge that inserts events in the
 * middle leaves the projection stale, and every admitted message asks who takes part: applying
 * every outstanding event again for that made a burst's merges cost what was outstanding.
 */
export function projectedMask<E, S, O> (core: FoldCore<E, S, O>): bigint {
  if (core.projValid) return core.projMask
  if (core.memberships.size === 0) return core.infMask
  let mask = core.infMask
  const admitted = new Map(core.admitted)
  for (const e of [...core.memberships].sort(compareEventIds)) {
    const d = e.delta
    if ((d.kind === 'join' || d.kind === 'unjoin') && takesPart(core, mask, admitted, e)) mask = admit(core, d, e, mask, admitted)
  }
  return mask
}

/** Applies one entry, known to be the last outstanding one, to a valid projection. */
export function projectEntry<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>): void {
  if (!core.projValid) return
  core.tailEntry = undefined
  core.tailApplied = undefined
  if (!takesPart(core, core.projMask, core.projAdmitted, e)) return // a renegade: reduce will drop it
  const d = e.delta
  if (d.kind === 'join' || d.kind === 'unjoin') {
    core.projMask = admit(core, d, e, core.projMask, core.projAdmitted)
    const m = core.hooks.membership(d.kind, core.table.name(d.peer), core.projState, e)
    core.projState = m.state
    if (m.kind === 'threw') {
      e.projectedFailure = { thrown: m.message }
      core.reportThrow(e, d.kind, m)
    } else {
      e.projectedFailure = undefined
    }
  } else if (d.kind === 'event') {
    projectApplied(core, e, core.hooks.apply(d.event, core.projState, e))
  } else {
    d.failure = foldedFailure(core, e, d, core.projState)
  }
}

/** Records `apply`'s outcome for the user event `e`, the last one the projection applies. */
export function projectApplied<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>, r: ApplyOutcome<S, O>): void {
  core.tailEntry = e
  if (r.kind === 'applied') {
    core.projState = r.state
    e.projectedFailure = undefined
    core.tailApplied = { output: r.output }
    return
  }
  e.projectedFailure = failureOf(r)
  core.tailApplied = undefined
  if (r.kind === 'threw') core.reportThrow(e, 'apply', r)
}

/**
 * The failure of an Error on `state` (the state before it, as the projection or the fold
 * has it), which it also stores. It became an error before the fold reached it, and an
 * event ordered before it may have arrived since (an ejected peer's, or one that a trusting
 * joiner learnt of late), so the output stored then may not be what `apply` gives now: it is
 * computed again, whenever the projection is recomputed and when it folds. Storing it matters
 * as much as folding with it: a replica that later takes the Error from a snapshot folds with
 * what was sent. An event that no longer fails still folds as the failure every participant
 * acknowledged; the digests then tell the replicas apart, as for any other difference of
 * outcome.
 */
export function foldedFailure<E, S, O> (core: FoldCore<E, S, O>, e: Entry<E, O>, d: Extract<InternalDelta<E, O>, { kind: 'error' }>, state: S): Failure<O> {
  const r = core.hooks.apply(d.source.event, state, e)
  if (r.kind === 'applied') return d.failure
  if (r.kind === 'threw') core.reportThrow(e, 'apply', r)
  d.failure = failureOf(r)
  return d.failure
}
