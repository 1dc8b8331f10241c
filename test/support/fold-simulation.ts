/**
 * A deterministic simulation of EventFold replicas exchanging diffs and full merges over a
 * network that reorders, duplicates and drops messages (a dropped message is repaired by the
 * final anti-entropy rounds, which is the "eventual redelivery" the runtime provides).
 *
 * Everything is driven by one integer seed, so a failing run replays exactly.
 */
import assert from 'node:assert/strict'
import { EventFold, compareEventIds, eventIdKey, type Diff, type EventFoldSnapshot, type EventSpec } from '../../src/eventfold/index.js'

/** A user event: `add` always applies; `failIfOdd` fails when the accumulator is odd. */
export interface SimEvent { readonly name: string, readonly kind: 'add' | 'failIfOdd', readonly amount: number }
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

type Fold = EventFold<SimEvent, SimState, string>
type Message =
  | { readonly from: string, readonly to: string, readonly kind: 'diff', readonly diff: Diff<SimEvent, string> }
  | { readonly from: string, readonly to: string, readonly kind: 'full', readonly snapshot: EventFoldSnapshot<SimEvent, SimState, string> }
  | { readonly from: string, readonly to: string, readonly kind: 'want-full' }

interface Replica { readonly id: string, fold: Fold, status: 'live' | 'ejected', readonly diverged: Set<string> }

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
}

/** What a run observed, for reporting. */
export interface SimulationReport {
  readonly events: number
  readonly messages: number
  readonly fullMerges: number
  readonly mergeErrors: Record<string, number>
  readonly finalInfimumCount: number
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
  const replicas = new Map<string, Replica>()
  const network: Message[] = []
  const consistent = new Map<string, string>()
  const created: Array<{ key: string, name: string, creator: string }> = []
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
  const record = (outputs: ReadonlyArray<{ id: { counter: number, participant: string }, output: string }>): void => {
    for (const o of outputs) {
      const key = eventIdKey(o.id)
      const seen = consistent.get(key)
      if (seen !== undefined && seen !== o.output) trace(`CONFLICT ${key} ${seen} vs ${o.output} at step ${traceStep}`)
      if (seen !== undefined) assert.equal(o.output, seen, `event ${key} has two consistent outputs`)
      else consistent.set(key, o.output)
    }
  }
  const checkMonotone = (r: Replica): void => {
    const now = r.fold.infimumId()
    const before = lastInfimum.get(r.id)
    if (before !== undefined) assert.ok(compareEventIds(now, before) >= 0, `${r.id}'s infimum moved backwards`)
    lastInfimum.set(r.id, now)
  }
  const live = (): Replica[] => [...replicas.values()].filter(r => r.status === 'live')
  const send = (from: Replica, toId: string): void => {
    const diff = from.fold.diffFor(toId)
    messages++
    if (diff === undefined) network.push({ from: from.id, to: toId, kind: 'full', snapshot: from.fold.snapshot() })
    else network.push({ from: from.id, to: toId, kind: 'diff', diff })
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
      const evs = m.kind === 'diff' ? m.diff.events : m.kind === 'full' ? m.snapshot.events : []
      trace(`  before ${m.to}: inf=${eventIdKey(to.fold.infimumId())} events=${to.fold.outstandingEvents().map(e => eventIdKey(e.id) + '[' + e.delta.kind + ':' + e.acks.join('') + ']').join(' ')}`)
      trace(`  msg ${m.kind}: inf=${m.kind === 'full' ? eventIdKey(m.snapshot.infimum.id) : m.kind === 'diff' ? eventIdKey(m.diff.infimumId) : ''} events=${evs.map(e => eventIdKey(e.id) + '[' + (e.delta?.kind ?? '-') + ':' + e.acks.join('') + ']').join(' ')}`)
    }
    traceStep = `${m.kind} ${m.from}->${m.to}`
    const options = plan.firstHand === true && to.fold.hasJoined() ? { from: m.from } : {}
    const r = m.kind === 'diff' ? to.fold.mergeDiff(m.diff, options) : to.fold.mergeFull(m.snapshot, options)
    trace(`${m.kind} ${m.from}->${m.to}: ${r.ok ? 'ok ' + r.outputs.map(o => eventIdKey(o.id) + '=' + o.output).join(',') : r.error.name} inf=${eventIdKey(to.fold.infimumId())} out=${to.fold.outstandingCount} parts=${to.fold.infimumParticipants().join(',')} log=${to.fold.infimumValue().log.join(',')}`)
    if (m.kind === 'full') fullMerges++
    if (!r.ok) {
      mergeErrors[r.error.name] = (mergeErrors[r.error.name] ?? 0) + 1
      assert.ok(r.error.needsFullMerge, `unexpected ${r.error.name}`)
      network.push({ from: to.id, to: m.from, kind: 'want-full' })
      return
    }
    record(r.outputs)
    checkMonotone(to)
    if (r.diverged) rejoinIfDiverged(to, m.from)
    else to.diverged.delete(m.from)
    // Blocked on a failure the sender has folded past: only its full fold can unblock us.
    if (m.kind === 'diff' && to.fold.isBlockedOnError() && compareEventIds(m.diff.infimumId, to.fold.infimumId()) > 0) {
      network.push({ from: to.id, to: m.from, kind: 'want-full' })
    }
  }

  // The runtime's answer to a first-hand full merge that shows a settled history this
  // replica does not share: once two participants (or the only other one) have shown it,
  // rejoin through one of them as a fresh joiner (the sponsor first removes the old self).
  const rejoinIfDiverged = (r: Replica, sender: string): void => {
    r.diverged.add(sender)
    const others = r.fold.infimumParticipants().filter(p => p !== r.id).length
    if (r.diverged.size < Math.min(2, others)) return
    const sponsor = replicas.get(sender)
    if (sponsor === undefined || sponsor.status !== 'live') return
    r.diverged.clear()
    rejoined.add(r.id)
    record(sponsor.fold.disassociate(r.id).outputs)
    record(sponsor.fold.participate(r.id).outputs)
    r.fold = EventFold.fromSnapshot(sponsor.fold.snapshot(), r.id, simSpec, { freezeStates: true })
    record(r.fold.acknowledge().outputs)
    checkMonotone(r)
    trace(`rejoin ${r.id} via ${sponsor.id} after diverging`)
  }
  /** Replicas that rejoined after diverging: their outstanding events may be lost, as in an ejection. */
  const rejoined = new Set<string>()

  // The founder.
  const founder: Replica = { id: names[0]!, fold: EventFold.create('sim', names[0]!, simSpec, { freezeStates: true }), status: 'live', diverged: new Set() }
  replicas.set(founder.id, founder)
  let nextJoiner = 1

  for (let step = 0; step < plan.steps; step++) {
    const x = rnd()
    const peers = live()
    if (x < 0.3) {
      const r = pick(peers)
      const name = `e${eventCounter++}`
      const res = r.fold.event({ name, kind: rnd() < 0.15 ? 'failIfOdd' : 'add', amount: 1 + Math.floor(rnd() * 3) })
      created.push({ key: eventIdKey(res.id), name, creator: r.id })
      trace(`event ${name} at ${r.id} id=${eventIdKey(res.id)} out=${res.outputs.map(o => eventIdKey(o.id) + '=' + o.output).join(',')}`)
      record(res.outputs)
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
        record(sponsor.fold.disassociate(id).outputs)
        const j = sponsor.fold.participate(id)
        record(j.outputs)
        trace(`join ${id} via ${sponsor.id} id=${eventIdKey(j.id)}`)
        const fold = EventFold.fromSnapshot(sponsor.fold.snapshot(), id, simSpec, { freezeStates: true })
        const joiner: Replica = { id, fold, status: 'live', diverged: new Set() }
        replicas.set(id, joiner)
        record(fold.acknowledge().outputs)
        checkMonotone(joiner)
        send(joiner, sponsor.id)
      }
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
      const u = ejector.fold.disassociate(victim.id)
      record(u.outputs)
      trace(`eject ${victim.id} by ${ejector.id} id=${eventIdKey(u.id)}`)
      // Crash-stop: the victim's messages still in flight are lost with it (the runtime's
      // fencing drops an ejected peer's late messages).
      victim.status = 'ejected'
      for (let i = network.length - 1; i >= 0; i--) if (network[i]!.from === victim.id) network.splice(i, 1)
      const zombie = EventFold.fromSnapshot(ejector.fold.snapshot(), victim.id, simSpec, { freezeStates: true })
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
  for (let repairs = 0; repairs < 10; repairs++) {
    for (; rounds < 60 && exchange(); rounds++);
    // What the runtime's failure detector and rejoin do: survivors eject participants that
    // are gone (an UnJoin may have been dropped because its author was ejected first), and
    // the founder re-adds live peers whose Join was dropped (its sponsor was ejected first).
    // Every survivor runs a failure detector; only the founder sponsors rejoins.
    let repaired = false
    for (const r of survivors) {
      for (const p of r.fold.projectedParticipants()) {
        if (replicas.get(p)?.status !== 'live') { record(r.fold.disassociate(p).outputs); repaired = true }
      }
    }
    const projected = new Set(founder.fold.projectedParticipants())
    for (const r of survivors) {
      if (projected.has(r.id)) continue
      lostJoins.add(r.id)
      record(founder.fold.disassociate(r.id).outputs)
      record(founder.fold.participate(r.id).outputs)
      deliver({ from: founder.id, to: r.id, kind: 'full', snapshot: founder.fold.snapshot() })
      repaired = true
    }
    if (!repaired) break
  }
  assert.ok(rounds < 60, 'anti-entropy did not settle')

  // Convergence.
  if (process.env.LEGION_SIM_TRACE === '1') {
    for (const r of survivors) {
      trace(`final ${r.id}: inf=${eventIdKey(r.fold.infimumId())} parts=${r.fold.infimumParticipants().join(',')} proj=${r.fold.projectedParticipants().join(',')} head=${r.fold.outstandingEvents().slice(0, 3).map(e => eventIdKey(e.id) + "[" + e.delta.kind + ":" + e.acks.join("") + "]").join(" ")} memberships=${r.fold.outstandingEvents().filter(e => e.delta.kind !== "event").map(e => eventIdKey(e.id) + '[' + e.delta.kind + ' ' + ('participant' in e.delta ? e.delta.participant : '') + ':' + e.acks.join('') + ']').join(' ')}`)
    }
  }
  const ref = survivors[0]!.fold
  const expectedMembers = survivors.map(r => r.id).sort()
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
    if (survivorIds.has(c.creator) && !lostJoins.has(c.creator) && !rejoined.has(c.creator)) assert.ok(out !== undefined, `event ${c.name} of surviving ${c.creator} never folded`)
    if (out !== undefined && !out.startsWith('failed:')) {
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

  return { events: eventCounter, messages, fullMerges, mergeErrors, finalInfimumCount: ref.infimumDigest().count }
}
