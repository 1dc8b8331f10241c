/**
 * The JSON views of the admin endpoint, built from what the peer's `operator` component
 * reports: readiness, the status summary, the members with their health, the partition table
 * (when the cluster's state is one), the supervision trees it was given, and the views other
 * layers contribute. Plain functions from reports to plain data; the routes decide when to
 * call them and how to answer.
 *
 * @module
 */
import type { EventId, Participant } from '../eventfold/types.js'
import { isPartitionTableSpec, partitionsOf, isBalanced, type PartitionTable } from '../partitions/partition-table.js'
import type { OperatorControl } from '../peer/operator.js'
import type { SupervisionTree } from '../supervision/tree.js'

/** The outcome of the readiness checks (`GET /ready`). */
export interface Readiness {
  /** All checks pass. */
  readonly ready: boolean
  /** The peer's phase. */
  readonly phase: string
  /** Each check, by name, with why it fails (absent when it passes). */
  readonly checks: readonly ReadinessCheck[]
}

/** One readiness check. */
export interface ReadinessCheck {
  /** `member`, `groups`, `unblocked` or `health`. */
  readonly name: string
  /** Whether it passes. */
  readonly ok: boolean
  /** Why it fails (absent when it passes). */
  readonly reason?: string
}

/**
 * Whether this peer is joined and caught up, from its own knowledge only: a participant, every
 * cluster-wide group held, no group blocked on an event that failed here, and no participant
 * reporting it stuck. Nothing here depends on other peers being up or on the fold having
 * settled, so readiness can never keep a cluster from forming: a founder is ready at once, and
 * peers restarted together each become ready without waiting for the others (the complaint
 * against readiness checks that wait for the whole cluster).
 */
export function readiness (operator: OperatorControl): Readiness {
  const phase = operator.phase()
  const checks: ReadinessCheck[] = []
  const member = phase === 'member'
  checks.push(member ? { name: 'member', ok: true } : { name: 'member', ok: false, reason: `this peer is ${phase}` })
  if (member) {
    const groups = operator.groups()
    const missing = groups.filter(g => g.membership === 'cluster' && !g.held).map(g => g.id)
    checks.push(missing.length === 0 ? { name: 'groups', ok: true } : { name: 'groups', ok: false, reason: `waiting for the state of ${missing.map(id => JSON.stringify(id)).join(', ')}` })
    const blocked = groups.filter(g => g.blocked).map(g => g.id === '' ? 'the cluster' : JSON.stringify(g.id))
    checks.push(blocked.length === 0 ? { name: 'unblocked', ok: true } : { name: 'unblocked', ok: false, reason: `folding is blocked in ${blocked.join(', ')} by an event that failed here` })
    const health = operator.stats().health
    checks.push(health.kind === 'ok' ? { name: 'health', ok: true } : { name: 'health', ok: false, reason: `reported stuck by ${health.reportedBy.length} peer(s): ${health.reason}` })
  }
  return { ready: checks.every(c => c.ok), phase, checks }
}

/** One member as `GET /members` shows it. */
export interface MemberView {
  /** Its peer id. */
  readonly peer: Participant
  /** Whether it is this peer. */
  readonly self: boolean
  /**
   * `alive`; `joining` (its Join is not settled yet); `leaving` (its UnJoin is not settled
   * yet); `suspected` (silent too long); `stuck` (alive, not acknowledging).
   */
  readonly status: 'alive' | 'joining' | 'leaving' | 'suspected' | 'stuck'
  /** Milliseconds since this peer last heard from it (absent for itself). */
  readonly silentForMs?: number
  /** When stuck: for how long, in which group, and why (as it says). */
  readonly stuck?: {
    /** Milliseconds since its acknowledgements last moved. */
    readonly sinceProgressMs: number
    /** The group it holds back (`""`: the cluster's own). */
    readonly group: string
    /** Why, as it says in its heartbeats (`null`: it does not know). */
    readonly reason: string | null
  }
  /**
   * Members it cannot reach, nor they it, while this peer hears both (broken links, absent when
   * none), sorted.
   */
  readonly unreachable?: readonly Participant[]
  /** When it has not acknowledged the newest event of the cluster's fold: since how long. */
  readonly divergent?: {
    /** The newest event it is known to have acknowledged. */
    readonly latestAcknowledged: EventId
    /** Milliseconds since its acknowledgements last moved. */
    readonly sinceProgressMs: number
  }
}

/** `GET /members`: every member of the cluster (settled and projected) with its health. */
export function membersView (operator: OperatorControl): { self: Participant, members: MemberView[] } {
  const stats = operator.stats()
  const state = operator.clusterState()
  const settled = new Set(state.participants)
  const projected = new Set(state.projectedParticipants)
  const silence = new Map(stats.silence.map(s => [s.peer, s.silentForMs]))
  const suspected = new Set(stats.suspected)
  const stuck = new Map(stats.stuck.map(s => [s.peer, s]))
  const divergent = new Map(stats.divergent.map(d => [d.peer, d]))
  const unreachable = new Map<Participant, Participant[]>()
  for (const { between: [a, b] } of stats.brokenLinks) {
    unreachable.set(a, [...unreachable.get(a) ?? [], b])
    unreachable.set(b, [...unreachable.get(b) ?? [], a])
  }
  const all = [...new Set([...state.participants, ...state.projectedParticipants])].sort()
  const members = all.map((peer): MemberView => {
    const s = stuck.get(peer)
    const d = divergent.get(peer)
    const status = suspected.has(peer) && s === undefined
      ? 'suspected'
      : s !== undefined ? 'stuck' : !settled.has(peer) ? 'joining' : !projected.has(peer) ? 'leaving' : 'alive'
    const silentForMs = silence.get(peer)
    return {
      peer,
      self: peer === stats.self,
      status,
      ...(silentForMs !== undefined ? { silentForMs: Math.round(silentForMs) } : {}),
      ...(s !== undefined ? { stuck: { sinceProgressMs: Math.round(s.sinceProgressMs), group: s.group, reason: s.reason ?? null } } : {}),
      ...(unreachable.has(peer) ? { unreachable: unreachable.get(peer)!.sort() } : {}),
      ...(d !== undefined ? { divergent: { latestAcknowledged: { counter: d.latestAcknowledged.counter, participant: d.latestAcknowledged.participant }, sinceProgressMs: Math.round(d.sinceProgressMs) } } : {})
    }
  })
  return { self: stats.self, members }
}

/** The cluster's partition tables (projected and settled), when its state is one. */
export function partitionTables (operator: OperatorControl): { projected: PartitionTable, settled: PartitionTable } | undefined {
  if (!isPartitionTableSpec(operator.clusterSpec)) return undefined
  const state = operator.clusterState()
  return { projected: state.projected as PartitionTable, settled: state.infimum as PartitionTable }
}

/** `GET /partitions`: the table as this peer sees it, by partition and by owner. */
export function partitionsView (tables: { projected: PartitionTable, settled: PartitionTable }): unknown {
  const t = tables.projected
  return {
    partitions: t.partitions,
    version: t.version,
    settledVersion: tables.settled.version,
    balanced: isBalanced(t),
    owners: t.owners,
    byOwner: Object.fromEntries(t.participants.map(p => [p, partitionsOf(t, p)]))
  }
}

/** `GET /partitions/<p>`: one partition's owner, projected and settled. */
export function partitionView (tables: { projected: PartitionTable, settled: PartitionTable }, partition: number): unknown {
  return {
    partition,
    owner: tables.projected.owners[partition] ?? null,
    settledOwner: partition < tables.settled.partitions ? tables.settled.owners[partition] ?? null : null,
    version: tables.projected.version
  }
}

/** `GET /supervision`: each tree given to the admin endpoint, with its children and restart counts. */
export function supervisionView (trees: ReadonlyMap<string, SupervisionTree>): unknown {
  return {
    trees: [...trees].map(([name, tree]) => {
      const status = tree.status()
      return {
        name,
        status: status.kind,
        stats: tree.stats(),
        ...(status.kind === 'stopped' ? {} : { root: tree.inspect() })
      }
    })
  }
}
