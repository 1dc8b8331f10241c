/**
 * A deterministic simulation of EventFold replicas exchanging diffs and full merges over a
 * network that reorders, duplicates and drops messages (a dropped message is repaired by the
 * final anti-entropy rounds, which is the "eventual redelivery" the runtime provides).
 *
 * Everything is driven by one integer seed, so a failing run replays exactly.
 */
import assert from 'node:assert/strict'
import { decodeDiff, decodeEventFold, encodeDiff, encodeEventFold, type FoldCodecs } from '../../src/codec/index.js'
import { jsonCodecFor } from '../../src/codec/json.js'
import { EventFold, compareEventIds, eventIdKey, type ConsistentOutput, type Diff, type EventFoldSnapshot, type EventId, type EventSpec, type InfimumSnapshot, type OutstandingEvent } from '../../src/eventfold/index.js'

/**
 * A user event: `add` always applies; `failIfOdd` fails when the accumulator is odd;
 * `throwOnOne` applies like `add` except on the replica running {@link throwingSpec}, whose
 * `apply` throws for it.
 */
export interface SimEvent { readonly name: string, readonly kind: 'add' | 'failIfOdd' | 'throwOnOne', readonly amount: number }
/**
 * The shared state: the names of applied events in fold order with `+p` / `-p` markers where
 * participants joined and left, the members, an accumulator.
 */
export interface SimState { readonly log: readonly string[], readonly members: readonly string[], readonly acc: number }

export const simSpec: EventSpec<SimEvent, SimState, string> = {
  init: () => ({ log: [], members: [], acc: 0 }),
  apply: (e, s) => {
    if (e.kind === 'failIfOdd' && s.acc % 2 !== 0) return { ok: false, output: `failed:${e.name}:${s.acc}` }
    const acc = s.acc + e.amount
    return { ok: true, output: `${e.name}:${acc}`, state: { ...s, log: [...s.log, e.name], acc } }
  },
  join: (p, s) => ({ ...s, log: [...s.log, `+${p}`], members: s.members.includes(p) ? s.members : [...s.members, p].sort() }),
  unjoin: (p, s) => ({ ...s, log: [...s.log, `-${p}`], members: s.members.filter(m => m !== p) })
}

/**
 * The spec of one replica that runs other code than the rest (an older version during a
 * rolling upgrade): its `apply` throws for every `throwOnOne` event, its `join` throws for
 * `joinThrowsFor` and its `unjoin` for `unjoinThrowsFor`. Deterministic, like a real version.
 */
export function throwingSpec (joinThrowsFor: string | undefined, unjoinThrowsFor: string | undefined): EventSpec<SimEvent, SimState, string> {
  return {
    init: simSpec.init,
    apply: (e, s) => {
      if (e.kind === 'throwOnOne') throw new RangeError(`no such event kind in this version: ${e.name}`)
      return simSpec.apply(e, s)
    },
    join: (p, s) => {
      if (p === joinThrowsFor) throw new Error(`cannot welcome ${p}`)
      return simSpec.join!(p, s)
    },
    unjoin: (p, s) => {
      if (p === unjoinThrowsFor) throw new Error(`cannot see ${p} off`)
      return simSpec.unjoin!(p, s)
    }
  }
}

type Fold = EventFold<SimEvent, SimState, string>
const simCodecs: FoldCodecs<SimEvent, SimState, string> = { event: jsonCodecFor<SimEvent>(), state: jsonCodecFor<SimState>(), output: jsonCodecFor<string>() }
type Message =
  | { readonly from: string, readonly to: string, readonly kind: 'diff', readonly diff: Diff<SimEvent, string> }
  | { readonly from: string, readonly to: string, readonly kind: 'full', readonly snapshot: EventFoldSnapshot<SimEvent, SimState, string> }
  | { readonly from: string, readonly to: string, readonly kind: 'want-full' }

/**
 * One participant. `outputs` are the consistent outputs its current fold reported: a rejoin
 * replaces the fold, and an ejection ends it, and with them what they reported may have been
 * overruled (see `consistentOutputsAgree`).
 */
interface Replica { readonly id: string, fold: Fold, status: 'live' | 'ejected', readonly diverged: Set<string>, outputs: Map<string, string> }

/** Parameters of one simulated run. */
export interface SimulationPlan {
  readonly seed: number
  /** Participants that eventually try to join, including the founder (2-7). */
  readonly peers: number
  /** Random steps before the network is allowed to go quiet. */
  readonly steps: number
  /**
   * Merge first-hand (`MergeOptions.from`) once a replica's Join has folded, as the runtime
   * does in push mode. Every message here is a replica's own diff or fold, sent all-to-all
   * in the quiet phase, which is what first-hand merging needs.
   * @default false
   */
  readonly firstHand?: boolean
  /**
   * Replica `p1` runs {@link throwingSpec} (its `join` throws for the last peer to join, its
   * `unjoin` for the one before, when they are not `p1` itself), and some events are
   * `throwOnOne`. First-hand, `p1` must find out it diverged and rejoin; trusting, the
   * failure must spread or be overtaken. Either way the survivors converge.
   * @default false
   */
  readonly throwing?: boolean
  /**
   * After every `saveEvery` steps (and at the end), every live replica is saved as a store of
   * settled records does (a checkpoint of its infimum when `takeSettled` has no record to give,
   * else the events it gives), and rebuilt from that checkpoint, those events and its logs and
   * outstanding events as they stand: the rebuilt fold must be the replica (same snapshot).
   * Nothing else changes: the run takes the same draws.
   * @default undefined (no saving)
   */
  readonly saveEvery?: number
  /**
   * Ejections of live peers, as a broken link makes them: the victim is not stopped, its
   * messages in flight stay in the network, and its fold goes on (creating, sending and
   * merging) until that fold no longer lists it as a participant. It then stops and, some
   * steps later, rejoins under the same name as the runtime does: a participant disassociates
   * and re-adds it and hands it its fold, and it never reuses an id of its old fold, whose
   * messages may still arrive.
   * @default false (crash-stop: an ejected peer's messages in flight are lost with it)
   */
  readonly liveEjections?: boolean
  /**
   * Ejections are the failure detector's (`disassociate` with `quorum`): each stands in only
   * while a strict majority of the participants remains. At the end the survivors remove the
   * peers that are gone without it, as an operator's `eject()` does.
   * @default false
   */
  readonly quorumEjections?: boolean
}

/** What a run observed, for reporting. */
export interface SimulationReport {
  readonly events: number
  readonly messages: number
  readonly fullMerges: number
  readonly mergeErrors: Record<string, number>
  readonly finalInfimumCount: number
  /** Hooks reported as thrown, over every replica. */
  readonly thrown: number
  /** Rejoins after a divergence, and how many of them were on the replica's own word (`threwHere`). */
  readonly rejoins: number
  readonly rejoinsOnThrow: number
  /** Consistent outputs reported by folds that a rejoin after a divergence replaced (not checked). */
  readonly overruledOutputs: number
  /** Live ejections: ejected peers that found out and rejoined under the same name. */
  readonly ejectionRejoins: number
  /** Replicas rebuilt from their saved settled records and found equal (`saveEvery`). */
  readonly rebuilt: number
  /** Of those, the ones whose record held events to fold again. */
  readonly refolded: number
}

/** The infimum a diff's sender reports (BOTTOM for a diff without acknowledgements). */
function senderInfimum (diff: Diff<SimEvent, string>): { counter: number, participant: string } {
  return diff.acknowledgements[0]?.infimumId ?? { counter: 0, participant: '' }
}

function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Runs one simulation and asserts every convergence property; throws on a violation. */
export function runSimulation (plan: SimulationPlan): SimulationReport {
  const rnd = mulberry32(plan.seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const names = Array.from({ length: plan.peers }, (_, i) => `p${i}`)
  const thrower = plan.throwing === true ? 'p1' : undefined
  const otherThan = (name: string | undefined): string | undefined => name === thrower ? undefined : name
  const throwerSpec = throwingSpec(otherThan(names[plan.peers - 1]), plan.peers >= 3 ? otherThan(names[plan.peers - 2]) : undefined)
  const specFor = (id: string): EventSpec<SimEvent, SimState, string> => id === thrower ? throwerSpec : simSpec
  const foldOf = (snapshot: EventFoldSnapshot<SimEvent, SimState, string>, id: string): Fold => EventFold.fromSnapshot(snapshot, id, specFor(id), { freezeStates: true })
  const replicas = new Map<string, Replica>()
  const network: Message[] = []
  /** Consistent outputs by event, of the folds whose reports stand (filled at the end: `outputsAgree`). */
  const consistent = new Map<string, string>()
  /** What the folds of ejected peers reported until their ejection. */
  const endedByEjection: Array<ReadonlyMap<string, string>> = []
  /** Outputs reported by folds that a rejoin after a divergence replaced. */
  let overruled = 0
  /** Events that folded on some replica, whatever became of that replica. */
  const everFolded = new Set<string>()
  let thrownCount = 0
  let rejoins = 0
  let rejoinsOnThrow = 0
  const created: Array<{ key: string, name: string, creator: string, at: number }> = []
  /**
   * Live ejections: when each peer was last ejected (a count of created events). What it
   * creates from then on until it finds out may fold nowhere: its UnJoin stands in for it
   * once every remaining participant has reported what it held of its logs, without what
   * none of them held (folding.ts, `standInMask`).
   */
  const ejectedAt = new Map<string, number>()
  const lastInfimum = new Map<string, { counter: number, participant: string }>()
  const mergeErrors: Record<string, number> = {}
  let messages = 0
  let fullMerges = 0
  let eventCounter = 0
  let renegadesSent = false
  let traceStep = ''
  const renegades: Array<{ name: string, creator: string }> = []
  let fenced = 0

  const trace = process.env.LEGION_SIM_TRACE === '1'
    ? (msg: string): void => { process.stdout.write(msg + '\n') }
    : (): void => {}
  const shown = (o: ConsistentOutput<string>): string => o.thrown !== undefined ? `threw:${o.thrown}` : o.output
  /**
   * Takes note of what an update of `r`'s fold reported, for `outputsAgree`. With throwing
   * hooks, what a fold reported while it took another's word, before its own Join folded
   * (`trusting`), does not count: the word may be that of a replica whose state a throw left
   * off.
   */
  const record = (r: Replica, res: { readonly outputs: ReadonlyArray<ConsistentOutput<string>>, readonly thrown: ReadonlyArray<{ readonly hook: string }> }, trusting = false): void => {
    thrownCount += res.thrown.length
    for (const o of res.outputs) {
      const key = eventIdKey(o.id)
      const out = shown(o)
      everFolded.add(key)
      const mine = r.outputs.get(key)
      assert.ok(mine === undefined || mine === out, `${r.id} reported two consistent outputs for ${key}`)
      if (thrower !== undefined && trusting) continue
      r.outputs.set(key, out)
    }
  }
  /**
   * Every consistent output agrees with every other one reported by a fold whose reports
   * stand: those alive at the end and, without throwing hooks, those that ended with their
   * peer's ejection (an ordinary participant until then). A fold replaced by a rejoin after a
   * divergence does not: it was on the losing side of a divergence the fold detected, the
   * known limit of "Ejection" in docs/ARCHITECTURE.md, and may have folded (and reported) on a
   * state the others do not share. `overruled` counts those reports.
   */
  const outputsAgree = (folds: ReadonlyArray<ReadonlyMap<string, string>>): void => {
    for (const outputs of folds) {
      for (const [key, out] of outputs) {
        const seen = consistent.get(key)
        if (seen !== undefined && seen !== out) trace(`CONFLICT ${key} ${seen} vs ${out}`)
        assert.ok(seen === undefined || seen === out, `event ${key} has two consistent outputs: ${seen} and ${out}`)
        consistent.set(key, out)
      }
    }
  }
  const checkMonotone = (r: Replica): void => {
    const now = r.fold.infimumId()
    const before = lastInfimum.get(r.id)
    if (before !== undefined) assert.ok(compareEventIds(now, before) >= 0, `${r.id}'s infimum moved backwards`)
    lastInfimum.set(r.id, now)
  }
  // Every merge ends with the replica acknowledging everything it holds, failures included
  // (merge.ts, `finishMerge`; it visits only the entries that may lack it). A readmitted
  // replica's view leaves its own acknowledgement out before its pending readmission (an
  // UnJoin of it, then a Join of it), which it does not count either (EventFold.outstandingEvents).
  const checkOwnAcknowledgement = (r: Replica): void => {
    const events = r.fold.outstandingEvents()
    let readmission: EventId | undefined
    let unjoin: EventId | undefined
    for (const e of events) {
      if (e.delta.kind === 'unjoin' && e.delta.participant === r.id) unjoin = e.id
      else if (e.delta.kind === 'join' && e.delta.participant === r.id && unjoin !== undefined) readmission = unjoin
    }
    for (const e of events) {
      if (readmission !== undefined && compareEventIds(e.id, readmission) < 0) continue
      assert.ok(e.acks.includes(r.id), `${r.id} holds ${eventIdKey(e.id)} unacknowledged after a merge`)
      if (e.delta.kind === 'error') assert.ok(e.delta.errorAcks.includes(r.id), `${r.id} holds the failure of ${eventIdKey(e.id)} unacknowledged after a merge`)
    }
  }
  const live = (): Replica[] => [...replicas.values()].filter(r => r.status === 'live')
  // Every diff and whole fold crosses the wire format on its way, as in the runtime: what a
  // fold hands out must encode (an acknowledgement the codec refused stalled link cuts seed 188
  // for good) and decode to what was sent.
  const send = (from: Replica, toId: string): void => {
    const diff = from.fold.diffFor(toId)
    messages++
    if (diff === undefined) network.push({ from: from.id, to: toId, kind: 'full', snapshot: decodeEventFold(encodeEventFold(from.fold.snapshot(), simCodecs), simCodecs) })
    else network.push({ from: from.id, to: toId, kind: 'diff', diff: decodeDiff(encodeDiff(diff, simCodecs), simCodecs) })
  }
  const deliver = (m: Message): void => {
    const to = replicas.get(m.to)
    if (to === undefined || to.status !== 'live') return
    // The runtime's fence: a replica takes messages only from peers it sees as participants
    // (a joiner is one as soon as its Join is known here).
    if (!to.fold.projectedParticipants().includes(m.from)) { fenced++; return }
    if (m.kind === 'want-full') {
      const from = replicas.get(m.from)
      if (to.status === 'live' && from !== undefined) { messages++; network.push({ from: to.id, to: from.id, kind: 'full', snapshot: to.fold.snapshot() }) }
      return
    }
    if (process.env.LEGION_SIM_TRACE === '1') {
      const evs = m.kind === 'full' ? m.snapshot.events : []
      // Each event as id[kind:acks], an error as id[error/errorAcks:acks].
      const body = (d: { readonly kind: string, readonly errorAcks?: readonly string[] } | undefined): string => d === undefined ? '-' : d.errorAcks !== undefined ? `error/${d.errorAcks.join('')}` : d.kind
      const heldNow = to.fold.snapshot().logs.map(l => `${l.participant}/${l.since}=${l.seq}`).join(',')
      const logs = m.kind === 'full' ? m.snapshot.logs.map(l => `${l.participant}/${l.since}=${l.seq}`).join(',') : ''
      trace(`  held ${m.to}: ${heldNow} | snapshot logs: ${logs}`)
      trace(`  before ${m.to}: inf=${eventIdKey(to.fold.infimumId())} events=${to.fold.outstandingEvents().map(e => eventIdKey(e.id) + '/' + e.since + '.' + e.seq + '[' + body(e.delta) + ':' + e.acks.join('') + ']').join(' ')}`)
      const runs = m.kind === 'diff' ? m.diff.runs.map(r => `${r.creator}/${r.since}@${r.first}x${r.events.length}${r.base !== undefined ? '+base' : ''}`).join(' ') : ''
      const acks = m.kind === 'diff' ? m.diff.acknowledgements.map(a => `${a.participant}/${a.log}{${a.holds.map(h => h.participant + '/' + h.since + '=' + h.seq).join(',')}}@${eventIdKey(a.infimumId)}`).join(' ') : ''
      trace(`  msg ${m.kind}: inf=${m.kind === 'full' ? eventIdKey(m.snapshot.infimum.id) : m.kind === 'diff' ? eventIdKey(senderInfimum(m.diff)) : ''} events=${evs.map(e => eventIdKey(e.id) + '[' + body(e.delta) + ':' + e.acks.join('') + ']').join(' ')} runs=${runs} acks=${acks}`)
    }
    traceStep = `${m.kind} ${m.from}->${m.to}`
    const trusting = !to.fold.hasJoined()
    const options = plan.firstHand === true && !trusting ? { from: m.from } : {}
    const r = m.kind === 'diff' ? to.fold.mergeDiff(m.diff, options) : to.fold.mergeFull(m.snapshot, options)
    trace(`${m.kind} ${m.from}->${m.to}: ${r.ok ? 'ok ' + r.outputs.map(o => eventIdKey(o.id) + '=' + shown(o)).join(',') + (r.diverged ? ' DIVERGED' + (r.threwHere ? ' (threw here)' : '') : '') : r.error.name} inf=${eventIdKey(to.fold.infimumId())} out=${to.fold.outstandingCount} parts=${to.fold.infimumParticipants().join(',')} log=${to.fold.infimumValue().log.join(',')}`)
    if (m.kind === 'full') fullMerges++
    if (!r.ok) {
      mergeErrors[r.error.name] = (mergeErrors[r.error.name] ?? 0) + 1
      assert.ok(r.error.needsFullMerge, `unexpected ${r.error.name}`)
      network.push({ from: to.id, to: m.from, kind: 'want-full' })
      return
    }
    record(to, r, trusting)
    checkMonotone(to)
    checkOwnAcknowledgement(to)
    if (plan.liveEjections === true && !to.fold.projectedParticipants().includes(to.id)) {
      // Its own UnJoin reached it: it stops taking part and rejoins later (rejoinOutcast).
      trace(`${to.id} finds it was ejected`)
      to.status = 'ejected'
      endedByEjection.push(to.outputs)
      to.outputs = new Map()
      outcast.add(to)
      return
    }
    if (r.diverged) rejoinIfDiverged(to, m.from, r.threwHere)
    else to.diverged.delete(m.from)
    // Blocked on a failure the sender has folded past: only its full fold can unblock us.
    if (m.kind === 'diff' && to.fold.isBlockedOnError() && compareEventIds(senderInfimum(m.diff), to.fold.infimumId()) > 0) {
      network.push({ from: to.id, to: m.from, kind: 'want-full' })
    }
  }

  // The runtime's answer to a first-hand full merge that shows a settled history this
  // replica does not share: once two participants (or the only other one) have shown it,
  // or at once when the difference comes from this replica's own hooks that threw, rejoin
  // through one of them as a fresh joiner (the sponsor first removes the old self). Those
  // that can show it are the participants that stay: one whose UnJoin is pending (an
  // ejected peer) never will, and waiting for it would stall this replica for good.
  const rejoinIfDiverged = (r: Replica, sender: string, threwHere: boolean): void => {
    r.diverged.add(sender)
    const others = r.fold.projectedParticipants().filter(p => p !== r.id).length
    if (!threwHere && r.diverged.size < Math.min(2, others)) return
    const sponsor = replicas.get(sender)
    if (sponsor === undefined || sponsor.status !== 'live') return
    r.diverged.clear()
    rejoined.add(r.id)
    rejoins++
    if (threwHere) rejoinsOnThrow++
    // The rejoiner hands the sponsor its own fold first, so the sponsor holds every event
    // the old fold created before its UnJoin stands in for it: the failure-detector
    // assumption of an ejection ("its last messages have drained"), which a peer that is
    // alive and asking can make true itself.
    const handed = sponsor.fold.mergeFull(r.fold.snapshot(), sponsor.fold.hasJoined() && plan.firstHand === true ? { from: r.id } : {})
    assert.ok(handed.ok, 'a replica\'s own fold is mergeable')
    record(sponsor, handed)
    record(sponsor, sponsor.fold.disassociate(r.id))
    record(sponsor, sponsor.fold.participate(r.id))
    const previousCounter = r.fold.maxKnownCounter
    r.fold = foldOf(sponsor.fold.snapshot(), r.id)
    // As the runtime does: never reuse an id of the old fold, whose events may be travelling.
    r.fold.observeCounter(previousCounter)
    overruled += r.outputs.size
    r.outputs = new Map()
    record(r, r.fold.acknowledge())
    // A new fold, as a joiner's: it may start behind where the old one had settled.
    lastInfimum.delete(r.id)
    checkMonotone(r)
    trace(`rejoin ${r.id} via ${sponsor.id} after diverging${threwHere ? ' (its own hooks threw)' : ''}`)
  }
  /** Replicas that rejoined after diverging or an ejection: their outstanding events may be lost. */
  const rejoined = new Set<string>()
  /** Live peers that found out they were ejected and have not rejoined yet (liveEjections). */
  const outcast = new Set<Replica>()
  /** The runtime's rejoin of an ejected peer through `sponsor` (see join.ts, `sponsor`). */
  let ejectionRejoins = 0
  const rejoinOutcast = (r: Replica, sponsor: Replica): void => {
    ejectionRejoins++
    outcast.delete(r)
    rejoined.add(r.id)
    // As the runtime's sponsor does with a JoinRequest's counter: the readmission is ordered
    // past every event the old incarnation made, which a third replica may hold.
    sponsor.fold.observeCounter(r.fold.maxKnownCounter)
    record(sponsor, sponsor.fold.disassociate(r.id))
    record(sponsor, sponsor.fold.participate(r.id))
    const previousCounter = r.fold.maxKnownCounter
    r.fold = foldOf(sponsor.fold.snapshot(), r.id)
    r.fold.observeCounter(previousCounter)
    r.status = 'live'
    r.diverged.clear()
    record(r, r.fold.acknowledge())
    lastInfimum.delete(r.id)
    checkMonotone(r)
    trace(`rejoin ${r.id} via ${sponsor.id} after its ejection`)
    send(r, sponsor.id)
  }

  // A store of settled records per replica (`saveEvery`): see SimulationPlan.saveEvery.
  const stores = new Map<string, { fold: Fold, checkpoint: InfimumSnapshot<SimState>, settled: Array<OutstandingEvent<SimEvent, string>> }>()
  let rebuilt = 0
  let refolded = 0
  const saveAndRebuild = (): void => {
    for (const r of live()) {
      const taken = r.fold.takeSettled()
      let store = stores.get(r.id)
      // A checkpoint when there is no record, another fold (a rejoin), or now and then.
      if (taken === undefined || store === undefined || store.fold !== r.fold || store.settled.length > 40) {
        store = { fold: r.fold, checkpoint: r.fold.snapshot().infimum, settled: [] }
        stores.set(r.id, store)
      } else {
        store.settled.push(...taken)
      }
      // A fresh projection on both sides: an Error's failure is computed again by each projection.
      r.fold.projectedValue()
      const now = r.fold.snapshot()
      const again = foldOf({ ...now, infimum: store.checkpoint }, r.id)
      if (store.settled.length > 0) {
        assert.deepEqual(again.refoldSettled(store.settled, r.fold.infimumId()), { id: r.fold.infimumId(), digest: r.fold.infimumDigest() }, `${r.id}: the settled record reaches the infimum`)
        refolded++
      }
      assert.deepEqual(again.snapshot(), now, `${r.id}: rebuilt from its saved records, it is the replica it was`)
      assert.deepEqual(again.projectedValue(), r.fold.projectedValue(), `${r.id}: rebuilt, it projects the same`)
      rebuilt++
    }
  }

  // The founder.
  const founder: Replica = { id: names[0]!, fold: EventFold.create('sim', names[0]!, specFor(names[0]!), { freezeStates: true }), status: 'live', diverged: new Set(), outputs: new Map() }
  replicas.set(founder.id, founder)
  let nextJoiner = 1

  for (let step = 0; step < plan.steps; step++) {
    if (plan.saveEvery !== undefined && step % plan.saveEvery === 0) saveAndRebuild()
    const x = rnd()
    const peers = live()
    if (x < 0.3) {
      const r = pick(peers)
      const name = `e${eventCounter++}`
      // (Without throwing hooks, the draws are exactly those of runs recorded before they existed.)
      const kind = rnd() < 0.15 ? 'failIfOdd' : thrower !== undefined && rnd() < 0.12 ? 'throwOnOne' : 'add'
      const res = r.fold.event({ name, kind, amount: 1 + Math.floor(rnd() * 3) })
      created.push({ key: eventIdKey(res.id), name, creator: r.id, at: created.length })
      trace(`event ${name} (${kind}) at ${r.id} id=${eventIdKey(res.id)} ${res.outcome.status} out=${res.outputs.map(o => eventIdKey(o.id) + '=' + shown(o)).join(',')}`)
      assert.equal(res.outcome.status === 'threw', kind === 'throwOnOne' && r.id === thrower, 'apply throws exactly where the spec throws')
      record(r, res)
      checkMonotone(r)
    } else if (x < 0.55) {
      const r = pick(peers)
      const others = [...replicas.keys()].filter(id => id !== r.id)
      if (others.length > 0) send(r, pick(others))
    } else if (x < 0.85) {
      if (network.length > 0) {
        const i = Math.floor(rnd() * network.length)
        const m = network[i]!
        const fate = rnd()
        if (fate < 0.1) network.splice(i, 1) // dropped
        else if (fate < 0.2) deliver(m) // duplicated: stays queued
        else { network.splice(i, 1); deliver(m) }
      }
    } else if (x < 0.93) {
      if (nextJoiner < names.length) {
        // The runtime's join: the sponsor ejects any earlier incarnation, adds the Join and
        // answers with its whole fold; the joiner acknowledges and sends its fold back.
        const sponsor = pick(peers)
        const id = names[nextJoiner++]!
        record(sponsor, sponsor.fold.disassociate(id))
        const j = sponsor.fold.participate(id)
        record(sponsor, j)
        trace(`join ${id} via ${sponsor.id} id=${eventIdKey(j.id)}`)
        const fold = foldOf(sponsor.fold.snapshot(), id)
        const joiner: Replica = { id, fold, status: 'live', diverged: new Set(), outputs: new Map() }
        replicas.set(id, joiner)
        record(joiner, fold.acknowledge())
        checkMonotone(joiner)
        send(joiner, sponsor.id)
      }
    } else if (plan.liveEjections === true && outcast.size > 0 && rnd() < 0.3) {
      const sponsors = peers.filter(p => p.fold.projectedParticipants().includes(p.id))
      rejoinOutcast(pick([...outcast]), sponsors.length > 0 ? pick(sponsors) : founder)
    } else if (peers.length > 2 && rnd() < 0.5) {
      // Eject a random participant other than the founder (which keeps one participant alive
      // to anchor the end of the run); the victim may keep sending stale or renegade messages.
      // Like the runtime, a peer ejects only a peer it sees as a participant, and (the
      // failure-detector assumption of docs/ARCHITECTURE.md, "Ejection") only once it holds
      // everything that peer created: a silent peer's last messages have drained.
      const ejector = pick(peers)
      const visible = new Set(ejector.fold.projectedParticipants())
      const held = new Set(ejector.fold.outstandingEvents().map(e => eventIdKey(e.id)))
      const drained = (v: Replica): boolean => v.fold.outstandingEvents().every(e =>
        e.id.participant !== v.id || held.has(eventIdKey(e.id)) || compareEventIds(e.id, ejector.fold.infimumId()) <= 0)
      const candidates = peers.filter(p => p !== ejector && p !== founder && visible.has(p.id) && drained(p))
      if (candidates.length === 0) continue
      const victim = pick(candidates)
      const u = ejector.fold.disassociate(victim.id, { quorum: plan.quorumEjections === true })
      record(ejector, u)
      trace(`eject ${victim.id} by ${ejector.id} id=${eventIdKey(u.id)}`)
      // A live victim goes on until it finds out (see SimulationPlan.liveEjections).
      if (plan.liveEjections === true) { ejectedAt.set(victim.id, created.length); continue }
      // Crash-stop: the victim's messages still in flight are lost with it (the runtime's
      // fencing drops an ejected peer's late messages).
      victim.status = 'ejected'
      endedByEjection.push(victim.outputs)
      for (let i = network.length - 1; i >= 0; i--) if (network[i]!.from === victim.id) network.splice(i, 1)
      const zombie = foldOf(ejector.fold.snapshot(), victim.id)
      // (A real peer never reuses an event id: it persists its counter. Only a fresh id here.)
      if (rnd() < 0.5 && zombie.maxKnownCounter >= victim.fold.maxKnownCounter) {
        // A renegade: the ejected peer comes back from the ejector's state, which names its
        // own UnJoin, and adds an event ordered after it. Everyone must drop that event.
        const rid = zombie.event({ name: `renegade${eventCounter++}`, kind: 'add', amount: 100 }).id
        trace(`renegade by ${victim.id} id=${eventIdKey(rid)}`)
        renegades.push({ name: `renegade${eventCounter - 1}`, creator: victim.id })
        messages++
        network.push({ from: victim.id, to: pick(live()).id, kind: 'full', snapshot: zombie.snapshot() })
        renegadesSent = true
      }
    }
  }

  // Quiet period: deliver what is in flight in random order, then anti-entropy rounds in
  // which every live replica sends to every other until nothing changes. Bounded.
  for (let i = 0; i < 100_000 && network.length > 0; i++) {
    const at = Math.floor(rnd() * network.length)
    const m = network.splice(at, 1)[0]!
    deliver(m)
  }
  for (const r of outcast) rejoinOutcast(r, founder)
  const survivors = live()
  const lostJoins = new Set<string>()
  const exchange = (): boolean => {
    let changed = false
    for (const from of survivors) {
      for (const to of survivors) {
        if (from === to) continue
        send(from, to.id)
        for (let hops = 0; network.length > 0; hops++) {
          assert.ok(hops < 1000, `message storm between ${from.id} and ${to.id}: ${to.fold.isBlockedOnError() ? 'blocked on error' : ''}`)
          const m = network.shift()!
          const before = JSON.stringify(to.fold.snapshot())
          deliver(m)
          if (before !== JSON.stringify(to.fold.snapshot())) changed = true
        }
      }
    }
    return changed
  }
  let rounds = 0
  // With quorumEjections, each survivor removes a gone peer once (its UnJoin may be pending
  // for good otherwise, and an UnJoin of a non-participant changes nothing).
  const repairedGone = new Set<string>()
  for (let repairs = 0; repairs < 10; repairs++) {
    for (; rounds < 60 && exchange(); rounds++);
    // What the runtime's failure detector and rejoin do: survivors eject participants that
    // are gone (an UnJoin may have been dropped because its author was ejected first), and
    // the founder re-adds live peers whose Join was dropped (its sponsor was ejected first).
    // Every survivor runs a failure detector; only the founder sponsors rejoins.
    let repaired = outcast.size > 0
    for (const r of outcast) rejoinOutcast(r, founder)
    for (const r of survivors) {
      // An ejection with quorum waiting for a majority leaves its peer among the infimum's.
      const listed = plan.quorumEjections === true ? r.fold.allParticipants() : r.fold.projectedParticipants()
      for (const p of listed) {
        const key = `${r.id}>${p}`
        if (replicas.get(p)?.status === 'live' || repairedGone.has(key)) continue
        record(r, r.fold.disassociate(p))
        repaired = true
        if (plan.quorumEjections === true) repairedGone.add(key)
      }
    }
    const projected = new Set(founder.fold.projectedParticipants())
    for (const r of survivors) {
      if (projected.has(r.id)) continue
      lostJoins.add(r.id)
      record(founder, founder.fold.disassociate(r.id))
      record(founder, founder.fold.participate(r.id))
      deliver({ from: founder.id, to: r.id, kind: 'full', snapshot: founder.fold.snapshot() })
      repaired = true
    }
    if (!repaired) break
  }
  assert.ok(rounds < 60, 'anti-entropy did not settle')

  if (plan.saveEvery !== undefined) saveAndRebuild()

  // Convergence.
  if (process.env.LEGION_SIM_TRACE === '1') {
    for (const r of survivors) {
      trace(`final ${r.id}: inf=${eventIdKey(r.fold.infimumId())} parts=${r.fold.infimumParticipants().join(',')} proj=${r.fold.projectedParticipants().join(',')} head=${r.fold.outstandingEvents().slice(0, 3).map(e => eventIdKey(e.id) + "[" + e.delta.kind + ":" + e.acks.join("") + "]").join(" ")} memberships=${r.fold.outstandingEvents().filter(e => e.delta.kind !== "event").map(e => eventIdKey(e.id) + '[' + e.delta.kind + ' ' + ('participant' in e.delta ? e.delta.participant : '') + ':' + e.acks.join('') + ']').join(' ')}`)
    }
  }
  const ref = survivors[0]!.fold
  const expectedMembers = survivors.map(r => r.id).sort()
  outputsAgree([...survivors.map(r => r.outputs), ...(thrower === undefined ? endedByEjection : [])])
  for (const r of survivors) {
    const f = r.fold
    assert.equal(f.outstandingCount, 0, `${r.id} still has outstanding events: inf parts ${f.infimumParticipants().join(',')} live ${expectedMembers.join(',')} head ${JSON.stringify(f.outstandingEvents().slice(0, 4))}`)
    assert.deepEqual(f.infimumId(), ref.infimumId(), `${r.id}: infimum id`)
    assert.deepEqual(f.infimumDigest(), ref.infimumDigest(), `${r.id}: infimum digest`)
    assert.deepEqual(f.infimumValue(), ref.infimumValue(), `${r.id}: infimum value`)
    assert.deepEqual(f.projectedValue(), ref.projectedValue(), `${r.id}: projected value`)
    assert.deepEqual(f.infimumParticipants(), expectedMembers, `${r.id}: participants`)
    assert.deepEqual(f.infimumValue().members, expectedMembers, `${r.id}: members in state`)
    assert.equal(f.isBlockedOnError(), false)
    assert.equal(f.divergent().size, 0)
  }

  // Nothing acknowledged is lost: every event of a surviving peer folded somewhere, and every
  // event that folded without error is in the final log exactly once.
  const finalLog = ref.infimumValue().log
  const survivorIds = new Set(expectedMembers)
  for (const c of created) {
    const out = consistent.get(c.key)
    const afterEjection = c.at >= (ejectedAt.get(c.creator) ?? Number.POSITIVE_INFINITY)
    if (survivorIds.has(c.creator) && !lostJoins.has(c.creator) && !rejoined.has(c.creator) && !afterEjection) assert.ok(everFolded.has(c.key), `event ${c.name} of surviving ${c.creator} never folded`)
    if (out !== undefined && !out.startsWith('failed:') && !out.startsWith('threw:')) {
      assert.equal(finalLog.filter(n => n === c.name).length, 1, `event ${c.name} folded but is not in the final state once`)
    }
  }
  // No event folds from a non-participant: walking the fold order, every event's creator is
  // a member at that point (renegades, including an ejected peer's events, are dropped).
  const creatorOf = new Map(created.map(c => [c.name, c.creator]))
  for (const c of renegades) creatorOf.set(c.name, c.creator)
  const members = new Set<string>()
  for (const entry of finalLog) {
    if (entry.startsWith('+')) members.add(entry.slice(1))
    else if (entry.startsWith('-')) members.delete(entry.slice(1))
    else assert.ok(members.has(creatorOf.get(entry)!), `${entry} of ${creatorOf.get(entry)} folded while its creator was not a participant`)
  }
  void renegadesSent
  void fenced

  return { events: eventCounter, messages, fullMerges, mergeErrors, finalInfimumCount: ref.infimumDigest().count, thrown: thrownCount, rejoins, rejoinsOnThrow, overruledOutputs: overruled, ejectionRejoins, rebuilt, refolded }
}
