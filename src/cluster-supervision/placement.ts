/**
 * Placement: which peers stand in a child's election, computed alike on every peer from the
 * same settled inputs (the children table, the settled members, each child's settled holder).
 * Pure; no I/O.
 *
 * Placement is only about balance and speed. Safety (one holder at a time, exactly one restart
 * per departure) is the election's: whoever stands, the registry grants one candidate at a
 * time, in fold order. Two peers that computed different answers from different views simply
 * both stand, and the second queues behind the first.
 *
 * - **Ranking.** A child's peers in order of preference: for `peer` placement the named peer
 *   first (if it is a member), then the others unless `fallback` is off; otherwise every
 *   member by rendezvous hashing (highest hash of `child name + peer` first), which spreads
 *   children evenly and gives each child its own order, so the children of a departed peer
 *   fail over to different peers.
 * - **Designation** (`spread`): a child nobody holds goes to the least loaded member (load:
 *   the children each member holds, plus those designated earlier in the same pass, in the
 *   table's creation order), ties broken by the ranking.
 * - **Standing.** Nobody holds the child: its designated peer stands (for `any`: every member,
 *   and the first candidacy to fold wins). Somebody holds it: the first `standbys` peers of
 *   its ranking other than the holder stand too, queued behind it, so that the holder's UnJoin
 *   grants the next one in the same fold step (one hop, no second round).
 *
 * @module
 */
import { createHash } from 'node:crypto'
import type { Participant } from '../eventfold/types.js'
import type { ChildRecord } from './children-spec.js'

/** A child's peers in order of preference among `members` (see the module comment). */
export function ranking (child: Pick<ChildRecord, 'name' | 'placement'>, members: readonly Participant[]): Participant[] {
  const byHash = rendezvous(child.name, members)
  const p = child.placement
  if (p.kind !== 'peer') return byHash
  const named = members.includes(p.peer) ? [p.peer] : []
  return p.fallback ? [...named, ...byHash.filter(m => m !== p.peer)] : named
}

/** `members` ordered by the rendezvous hash of `name` with each (highest first; ties by id). */
export function rendezvous (name: string, members: readonly Participant[]): Participant[] {
  return members
    .map(m => ({ m, h: createHash('sha256').update(name).update('\u0000').update(m).digest().readUInt32BE(0) }))
    .sort((a, b) => b.h - a.h || (a.m < b.m ? -1 : a.m > b.m ? 1 : 0))
    .map(x => x.m)
}

/** What {@link designate} needs to know of one active placed child. */
export interface PlacedChild {
  /** The child. */
  readonly record: Pick<ChildRecord, 'name' | 'placement' | 'since'>
  /** Its settled holder, if any. */
  readonly holder: Participant | undefined
}

/**
 * The designated peer of every placed child nobody holds, in one deterministic pass over
 * `children` (sorted by creation); children someone holds are not in the result.
 */
export function designate (children: readonly PlacedChild[], members: readonly Participant[]): Map<string, Participant> {
  const load = new Map<Participant, number>(members.map(m => [m, 0]))
  for (const c of children) if (c.holder !== undefined && load.has(c.holder)) load.set(c.holder, load.get(c.holder)! + 1)
  const sorted = [...children].sort((a, b) => a.record.since.counter - b.record.since.counter ||
    (a.record.since.participant < b.record.since.participant ? -1 : a.record.since.participant > b.record.since.participant ? 1 : 0) ||
    (a.record.name < b.record.name ? -1 : 1))
  const out = new Map<string, Participant>()
  for (const c of sorted) {
    if (c.holder !== undefined) continue
    const order = ranking(c.record, members)
    if (order.length === 0) continue
    // `spread` weighs load first; `peer` and `any` take their ranking as it is.
    const pick = c.record.placement.kind === 'spread'
      ? order.reduce((best, m) => load.get(m)! < load.get(best)! ? m : best, order[0]!)
      : order[0]!
    out.set(c.record.name, pick)
    load.set(pick, load.get(pick)! + 1)
  }
  return out
}

/** Whether `self` should stand for a placed child (see the module comment). */
export function shouldStand (input: {
  readonly self: Participant
  readonly record: Pick<ChildRecord, 'name' | 'placement' | 'status'>
  readonly members: readonly Participant[]
  readonly holder: Participant | undefined
  readonly designated: Participant | undefined
  readonly standbys: number
}): boolean {
  const { self, record, members, holder } = input
  if (record.status !== 'active' || !members.includes(self)) return false
  if (holder === self) return true
  if (holder === undefined) return record.placement.kind === 'any' ? ranking(record, members).includes(self) : input.designated === self
  return ranking(record, members).filter(m => m !== holder).slice(0, input.standbys).includes(self)
}

/**
 * The peers a replicated server's primary adds to its group, in order, until the group has
 * `replicas` participants among `members`: the rendezvous order of the child's name, skipping
 * those already in it.
 */
export function replicasToAdd (name: string, replicas: number, members: readonly Participant[], participants: readonly Participant[]): Participant[] {
  const inGroup = new Set(participants.filter(p => members.includes(p)))
  const missing = replicas - inGroup.size
  if (missing <= 0) return []
  return rendezvous(name, members).filter(m => !inGroup.has(m)).slice(0, missing)
}

/** The peer that should found a replicated child's first (or next) generation. */
export function founderOf (name: string, members: readonly Participant[]): Participant | undefined {
  return rendezvous(name, members)[0]
}
