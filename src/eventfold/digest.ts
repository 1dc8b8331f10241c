/**
 * The infimum digest: a count and a 53-bit hash chain over the ids of every event folded into
 * an infimum, in fold order, and whether each folded as a system error (or, for a Join or
 * UnJoin, with a hook that threw). It lets a replica prove, before folding on a peer's word,
 * that it holds exactly the events the peer folded, with the same outcomes (the "late joiner"
 * trap of docs/ARCHITECTURE.md).
 *
 * Not cryptographic: it guards against honest divergence, not against a participant that lies
 * (a participant can already write any event it likes).
 *
 * @module
 */
import type { InfimumDigest } from './types.js'

/** The digest of an infimum in which nothing has folded yet. */
export const EMPTY_DIGEST: InfimumDigest = Object.freeze({ count: 0, hash: 0 })

const TWO_POW_32 = 4294967296

/** 32-bit FNV-1a of a participant id; computed once per participant and cached by the fold. */
export function participantHash (participant: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < participant.length; i++) {
    h ^= participant.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Mixed into a folded error's participant hash, so folding as an error and as a success differ. */
export const ERROR_MARK = 0x5bd1e995

/**
 * Mixed into the participant hash of a folded Join or UnJoin whose `join` or `unjoin` hook
 * threw: the membership changed but the state did not, so such a replica holds another value
 * than one where the hook ran, and the digests must say so.
 */
export const HOOK_THREW_MARK = 0x27d4eb2f

/**
 * Extends a hash chain by one folded event: its counter and its participant's hash, the latter
 * xor {@link ERROR_MARK} when the event folded as a system error, or xor
 * {@link HOOK_THREW_MARK} when it is a Join or UnJoin whose hook threw.
 */
export function chainHash (hash: number, counter: number, peerHash: number): number {
  const lo = hash >>> 0
  const hi = Math.floor(hash / TWO_POW_32)
  const c0 = counter >>> 0
  const c1 = Math.floor(counter / TWO_POW_32)
  const x = fmix32(lo ^ Math.imul(c0, 0x9e3779b1) ^ peerHash)
  const y = fmix32(hi ^ Math.imul(c1 + 0x7f4a7c15, 0xcc9e2d51) ^ Math.imul(peerHash, 0x1b873593) ^ x)
  const z = fmix32(x ^ y)
  return (y & 0x1fffff) * TWO_POW_32 + z
}

/**
 * Whether two digests are the same: the same events folded with the same outcomes. The
 * hash without throws only says where a difference comes from; it is not compared.
 */
export function sameDigest (a: InfimumDigest, b: InfimumDigest): boolean {
  return a.count === b.count && a.hash === b.hash
}

/**
 * How a remote history relates to a local one of the same last id, by digests:
 * - `same`: the same events with the same outcomes.
 * - `threw-there`: the same events, with other outcomes, and only the remote side had hooks
 *   throw ({@link InfimumDigest.throws}): the remote is the odd one out.
 * - `threw-here`: likewise with the hooks that threw on the local side: this one is.
 * - `different`: anything else (other events, or no throw to blame, or throws on both).
 */
export type HistoryRelation = 'same' | 'threw-there' | 'threw-here' | 'different'

/** Compares a local digest with a remote one; see {@link HistoryRelation}. */
export function relateHistories (local: InfimumDigest, remote: InfimumDigest): HistoryRelation {
  if (local.count !== remote.count) return 'different'
  if (local.hash === remote.hash) return 'same'
  const here = local.throws ?? 0
  const there = remote.throws ?? 0
  if (here === 0 && there > 0) return 'threw-there'
  if (here > 0 && there === 0) return 'threw-here'
  return 'different'
}

/**
 * Extends a digest by one folded event. `mark` is its outcome's ({@link ERROR_MARK},
 * {@link HOOK_THREW_MARK} or 0); `ownThrow`: a hook threw for it on this replica alone.
 */
export function extendDigest (d: InfimumDigest, counter: number, peerHash: number, mark: number, ownThrow: boolean): InfimumDigest {
  const hash = chainHash(d.hash, counter, (peerHash ^ mark) >>> 0)
  const throws = (d.throws ?? 0) + (ownThrow ? 1 : 0)
  return throws === 0 ? { count: d.count + 1, hash } : { count: d.count + 1, hash, throws }
}
