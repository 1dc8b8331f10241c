/**
 * Pulling state: a sync request asks a participant for its diff for this peer (or its whole
 * fold) of one or more groups; anti-entropy and refused merges use it. Serving is the other
 * half: the answer is computed at once and sent once the versions it shows are saved.
 * A whole fold costs the server, so full answers are rate-limited per asker.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { Participant } from '../eventfold/types.js'
import { DEFAULT_CALL_TIMEOUT_MS } from './config.js'
import { Refused, type Inbound } from './inbound.js'
import { label, type Intake } from './intake.js'
import type { Lifecycle, SomeReplica } from './lifecycle.js'
import type { Network } from './network.js'
import type { LegionCounters } from './options.js'
import type { PersistenceGate } from './persistence.js'
import { SYNC_PROTOCOL, decodeSyncAnswer, decodeSyncRequest, encodeSyncAnswer, encodeSyncRequest, type SyncResult, type SyncWant } from './protocol/sync.js'
import { RateLimiter } from './rate-limiter.js'
import type { DecodeLimits } from '../codec/codec.js'

/** What sync needs. */
export interface SyncComponents {
  /** The network. */
  readonly network: Network
  /** The admission pipeline. */
  readonly inbound: Inbound
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Merges answers. */
  readonly intake: Intake
  /** The save-before-send gate. */
  readonly persistence: PersistenceGate
  /** Whether `allowPeers` allows a peer now. */
  readonly allows: (peer: Participant) => boolean
  /** Whether `peer` had merged this peer's latest Join when asked (its refusal then means an ejection). */
  readonly witnessedMyJoin: (peer: Participant) => boolean
  /** `peer`, which had merged this peer's Join, refused it as a non-participant. */
  readonly refusedAsNonParticipant: (peer: Participant, what: string) => void
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Message limits. */
  readonly limits: DecodeLimits
  /** The part's logger. */
  readonly log: Logger
  /** Clock for the rate limiter, in milliseconds. */
  readonly now: () => number
}

/** Sync requests and answers; see the module comment. */
export class Sync {
  private readonly fullSyncLimiter: RateLimiter

  constructor (private readonly components: SyncComponents) {
    this.fullSyncLimiter = new RateLimiter(20, 10, components.now)
  }

  /** Registers the protocol. */
  async start (): Promise<void> {
    await this.components.inbound.request(SYNC_PROTOCOL, 'members', decodeSyncRequest, async (from, wants) => await this.serve(from, wants))
  }

  /** Pulls `wants` from `peer`; groups already syncing with `peer` are skipped. Never throws. */
  request (peer: Participant, wants: readonly SyncWant[]): void {
    void this.pull(peer, wants)
  }

  private async pull (peer: Participant, wants: readonly SyncWant[]): Promise<void> {
    const c = this.components
    const phase = c.lifecycle.phase
    if (phase.kind !== 'member' || !c.allows(peer)) return
    const incarnation = phase.incarnation
    const asked: Array<{ want: SyncWant, replica: SomeReplica }> = []
    for (const want of wants) {
      const replica = incarnation.groups.get(want.group)
      if (replica === undefined || replica.syncing.has(peer)) continue
      replica.syncing.add(peer)
      asked.push({ want, replica })
    }
    if (asked.length === 0) return
    c.counters.syncsRequested++
    const retry: SyncWant[] = []
    const witnessed = c.witnessedMyJoin(peer)
    try {
      const request = encodeSyncRequest(asked.map(a => a.want))
      c.inbound.countOut(request)
      const answer = await c.network.request(peer, c.inbound.protocol(SYNC_PROTOCOL), request, { timeoutMs: DEFAULT_CALL_TIMEOUT_MS })
      if (!c.inbound.admitAnswer(peer, answer, incarnation.epoch)) return
      const results = decodeSyncAnswer(answer, c.limits)
      if (!Array.isArray(results)) {
        c.log('sync refused by %s: %s (%s)', peer, results.code, results.message)
        if (results.code === 'not-participant' && witnessed) c.refusedAsNonParticipant(peer, 'a sync')
        return
      }
      const byGroup = new Map(asked.map(a => [a.want.group, a]))
      for (const result of results) {
        const a = byGroup.get(result.group)
        if (a === undefined) continue
        byGroup.delete(result.group)
        if (result.kind === 'refused') {
          c.log('sync of group %s refused by %s: %s', result.group, peer, result.code)
          // A cluster-wide group follows the cluster. A participant that had merged this peer's
          // Join and does not count it in there removed it, or dropped its Join there (a
          // sponsor ejected right after it admitted this peer: its later events fold nowhere);
          // only a rejoin adds it to every cluster-wide group again (docs/RELIABILITY.md).
          if (result.code === 'not-participant' && a.replica.definition.membership === 'cluster' && witnessed) { c.refusedAsNonParticipant(peer, `a sync of group ${label(result.group)}`); return }
          continue
        }
        if (a.replica.fold === undefined) {
          if (result.kind === 'fold') c.intake.adopt(a.replica, peer, result.bytes)
          continue
        }
        const outcome = c.intake.full(a.replica, peer, result.kind, result.bytes)
        if (outcome?.kind === 'refused' && !a.want.full) retry.push({ group: result.group, full: true })
      }
    } catch (err) {
      c.log('sync with %s failed: %s', peer, err)
    } finally {
      for (const a of asked) a.replica.syncing.delete(peer)
    }
    if (retry.length > 0) await this.pull(peer, retry)
  }

  private async serve (from: Participant, wants: readonly SyncWant[]): Promise<Uint8Array> {
    const c = this.components
    const phase = c.lifecycle.phase
    if (phase.kind !== 'member') throw new Refused('not-ready', 'not a participant now')
    const incarnation = phase.incarnation
    const results: Array<SyncResult | (() => SyncResult)> = []
    const shown: Array<{ replica: SomeReplica, version: number, at: number }> = []
    let full = false
    // Each group once, however often it is asked for: a request of a million wants of one
    // group would otherwise make this peer encode its fold a million times.
    const asked = new Set<string>()
    for (const want of wants) {
      if (asked.has(want.group)) continue
      asked.add(want.group)
      const replica = incarnation.groups.get(want.group)
      const fold = replica?.fold
      if (replica === undefined || fold === undefined) { results.push({ group: want.group, kind: 'refused', code: 'unknown-group' }); continue }
      if (!replica.isParticipant(from)) { results.push({ group: want.group, kind: 'refused', code: 'not-participant' }); continue }
      const diff = replica.plan(fold, from, want.full)
      full ||= diff === undefined
      results.push(() => ({ group: want.group, ...replica.encodePlan(fold, diff) }))
      shown.push({ replica, version: replica.version, at: results.length - 1 })
    }
    // Before anything is encoded: a whole fold is what costs.
    if (full && !this.fullSyncLimiter.take(from)) { c.counters.droppedRateLimited++; throw new Refused('rate-limited', 'too many full syncs') }
    const encoded = results.map(r => typeof r === 'function' ? r() : r)
    // Computed now, answered once everything it shows is saved.
    const saved = await Promise.all(shown.map(async s => await c.persistence.persisted(s.replica, s.version)))
    if (c.lifecycle.incarnation !== incarnation) throw new Refused('not-ready', 'this peer rejoined meanwhile')
    // A group forgotten before its save: what was encoded of it is not durable here.
    shown.forEach((s, i) => { if (!saved[i]) encoded[s.at] = { group: s.replica.id, kind: 'refused', code: 'unknown-group' } })
    c.counters.syncsServed++
    return encodeSyncAnswer(encoded)
  }
}
