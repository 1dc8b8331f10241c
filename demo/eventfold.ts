/**
 * EventFold-only demo: five in-process replicas share a 64-partition table over a simulated
 * lossy network, with no libp2p and no runtime (`npm run demo` runs real peer processes).
 * Peers join one by one through a sponsor as the runtime does it, a few of them move
 * partitions concurrently, one leaves, and the demo checks that every remaining replica
 * settles on the same infimum. "The network" is a queue that reorders and drops messages.
 *
 * Run with `node --import tsx demo/eventfold.ts`; replay a run with `LEGION_SEED=<seed>`.
 * Exit status 0 when the replicas converged, 1 otherwise.
 */
import { isDeepStrictEqual } from 'node:util'
import {
  EventFold, eventIdKey, formatPartitionTable, partitionTableSpec,
  type Diff, type EventFoldSnapshot, type PartitionTable, type PartitionTableEvent, type PartitionTableOutput
} from '../src/index.js'

type Fold = EventFold<PartitionTableEvent, PartitionTable, PartitionTableOutput>
type Message = { from: string, to: string } & (
  | { kind: 'diff', diff: Diff<PartitionTableEvent, PartitionTableOutput> }
  | { kind: 'full', snapshot: EventFoldSnapshot<PartitionTableEvent, PartitionTable, PartitionTableOutput> })

const SEED = Number(process.env.LEGION_SEED ?? 2024)
const LOSS = 0.2 // probability that the network drops a message
const spec = partitionTableSpec(64)

/** mulberry32: a tiny seeded PRNG, so every run can be replayed from its printed seed. */
let prng = SEED >>> 0
function random (): number {
  prng = (prng + 0x6d2b79f5) >>> 0
  let t = Math.imul(prng ^ (prng >>> 15), prng | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!

/** The live replicas, by participant id. A replica that has left is removed from the map. */
const replicas = new Map<string, Fold>()
const network = { sent: 0, dropped: 0 }

/** What a peer sends another: a diff when enough, otherwise its whole fold (a full merge). */
function message (from: Fold, to: string): Message {
  const diff = from.diffFor(to)
  return diff !== undefined ? { from: from.self, to, kind: 'diff', diff } : { from: from.self, to, kind: 'full', snapshot: from.snapshot() }
}

/**
 * One gossip round: every replica sends to one random participant it knows of, then the
 * messages are delivered in random order, each lost with probability LOSS. A receiver drops
 * messages from peers it does not see as participants (the runtime's fence). A diff the
 * receiver cannot use safely is refused with a typed error, and the sender answers with its
 * whole fold. (The runtime persists the fold before anything it acknowledged goes out.)
 */
function round (): void {
  const queue: Message[] = []
  for (const fold of replicas.values()) {
    const targets = fold.projectedParticipants().filter(p => p !== fold.self && replicas.has(p))
    if (targets.length > 0) queue.push(message(fold, pick(targets)))
  }
  while (queue.length > 0) {
    const m = queue.splice(Math.floor(random() * queue.length), 1)[0]!
    network.sent++
    const to = replicas.get(m.to)
    const from = replicas.get(m.from)
    if (random() < LOSS) { network.dropped++; continue }
    if (to === undefined || from === undefined || !to.projectedParticipants().includes(m.from)) continue
    const result = m.kind === 'diff' ? to.mergeDiff(m.diff) : to.mergeFull(m.snapshot)
    if (!result.ok && result.error.needsFullMerge) queue.push({ from: m.from, to: m.to, kind: 'full', snapshot: from.snapshot() })
  }
}

/** Prints every replica's settled view; a table identical to one already shown is not repeated. */
function show (phase: string): void {
  console.log(`\n== ${phase} (${network.sent} messages sent, ${network.dropped} dropped)`)
  const shown: PartitionTable[] = []
  for (const [id, fold] of replicas) {
    const table = fold.infimumValue()
    const same = shown.findIndex(t => isDeepStrictEqual(t, table))
    console.log(`${id}: infimum ${eventIdKey(fold.infimumId())}, ${fold.outstandingCount} outstanding, ` +
      (same >= 0 ? `same table as ${[...replicas.keys()][same]}` : 'table:'))
    if (same < 0) console.log(formatPartitionTable(table).replace(/^/gm, '    '))
    shown.push(table)
  }
}

/** Whether every live replica has settled on the same infimum: id, digest and value. */
function converged (): boolean {
  const folds = [...replicas.values()]
  const ref = folds[0]!
  return folds.every(f => f.outstandingCount === 0 &&
    eventIdKey(f.infimumId()) === eventIdKey(ref.infimumId()) &&
    isDeepStrictEqual(f.infimumDigest(), ref.infimumDigest()) &&
    isDeepStrictEqual(f.infimumValue(), ref.infimumValue()))
}

console.log(`EventFold demo: 5 replicas, 64 partitions, ${LOSS * 100}% message loss, ` +
  `seed=${SEED} (replay: LEGION_SEED=${SEED} node --import tsx demo/eventfold.ts)`)

// Phase 1: peer-a founds the cluster; the others join one by one through a random sponsor.
// The sponsor first ejects any earlier incarnation of the joiner, then records its Join and
// hands over its whole fold; the joiner acknowledges it. A few lossy rounds follow each join.
replicas.set('peer-a', EventFold.create('demo-cluster', 'peer-a', spec, { freezeStates: true }))
for (const joiner of ['peer-b', 'peer-c', 'peer-d', 'peer-e']) {
  const sponsor = pick([...replicas.values()])
  sponsor.disassociate(joiner)
  sponsor.participate(joiner)
  const fold = EventFold.fromSnapshot(sponsor.snapshot(), joiner, spec, { freezeStates: true })
  fold.acknowledge()
  replicas.set(joiner, fold)
  console.log(`${joiner} joins via ${sponsor.self}`)
  for (let i = 0; i < 3; i++) round()
}
show('after the joins')

// Phase 2: concurrent partition moves on different replicas, then a rebalance. Each replica
// sees its own event's output at once (projected); the settled outcome comes from the total order.
for (let i = 0; i < 4; i++) {
  const fold = pick([...replicas.values()])
  const event: PartitionTableEvent = { type: 'move', partition: Math.floor(random() * 64), to: fold.self }
  const { outcome } = fold.event(event)
  console.log(`${fold.self}: move partition ${event.partition} to itself -> projected ${outcome.status === 'threw' ? `a throw (${outcome.message})` : outcome.output.type}`)
}
for (let i = 0; i < 4; i++) round()
pick([...replicas.values()]).event({ type: 'rebalance' })
for (let i = 0; i < 4; i++) round()
show('after concurrent moves and a rebalance')

// Phase 3: one peer leaves: it records its own UnJoin (disassociate) and keeps gossiping until
// every other replica has seen it, then stops. Its partitions are shared among the rest.
const leaver = replicas.get(pick(['peer-b', 'peer-c', 'peer-d', 'peer-e']))!
leaver.disassociate(leaver.self)
console.log(`${leaver.self} leaves`)
for (let i = 0; i < 100 && [...replicas.values()].some(f => f.projectedParticipants().includes(leaver.self)); i++) round()
replicas.delete(leaver.self)
for (let i = 0; i < 3; i++) round()
show(`after ${leaver.self} left`)

// Phase 4: anti-entropy: keep gossiping over the same lossy network until everything settles.
let rounds = 0
for (; rounds < 200 && !converged(); rounds++) round()
show(`after ${rounds} more rounds of anti-entropy`)

const ref = [...replicas.values()][0]!
if (converged()) {
  console.log(`\nCONVERGED: ${replicas.size} replicas agree on infimum ${eventIdKey(ref.infimumId())} ` +
    `(digest ${ref.infimumDigest().count}/${ref.infimumDigest().hash.toString(16)}) and its partition table`)
} else {
  console.log(`\nNOT CONVERGED after ${rounds} rounds (seed=${SEED})`)
  process.exitCode = 1
}
