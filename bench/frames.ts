/**
 * Frames per event: how many messages the peers of a cluster send for the events they create,
 * counted exactly, for clusters of n = 3, 5, 8 and 16 peers, with acknowledgements routed to
 * everyone (`propagation.acknowledge: 'everyone'`, the default) and to the creators waiting for
 * them (`'creators'`). A measuring tool, not a benchmark of speed: every count is deterministic
 * up to the peers' random keys, and time is simulated.
 *
 * Whole peers (`startPeer`) run in this process on the in-memory network of the tests
 * (test/support/fake-network.ts) with a manual clock, so no timer fires unless the script
 * advances the clock and every message is counted as it is sent: by protocol (`fold` for
 * pushed batches and acknowledgements, `sync`, `push`, `outputs`, `heartbeat`), with its payload
 * bytes (no transport framing). On libp2p each `fold` message is one yamux data frame on a
 * reused stream; a request (`sync`, `heartbeat`) is two, its answer counted here as a reply.
 *
 * Workloads, each on a fresh cluster formed by real joins and left quiet first:
 * - `isolated`: one event at a time from peers taking turns (`applyFast`), each measured alone:
 *   what leaves in the turns right after it (before any timer: the batch and the answers it
 *   provokes), then until every peer has folded it, then until nothing but heartbeats moves;
 * - `stream`: every peer creates one event every 20 simulated ms for 1 s (each peer's events of
 *   a tick leave in one batch), then the cluster runs until every peer has folded everything and
 *   nothing but heartbeats moves; counts are over the whole phase;
 * - `turns`: one event every 20 simulated ms for 2 s, from one peer at a time, the peers taking
 *   turns (50 events a second over the cluster, as the convergence benchmark's `steady`
 *   workload offers them), counted the same way.
 *
 * Heartbeats (one request per peer pair and second) are reported apart: they do not depend on
 * events. Frames per event over n shows the growth: constant when linear in n.
 *
 * Run: npm run bench:frames
 * Env: LEGION_BENCH_SIZES=3,5,8,16, LEGION_BENCH_ISOLATED=5 (isolated events per cluster),
 *      LEGION_BENCH_STREAM_TICKS=50 (20 ms ticks of the stream), LEGION_BENCH_TURN_TICKS=100.
 * Writes rows { metric, value, unit, cluster_size, acknowledge, workload } to
 * bench/results/frames.json.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { startPeer } from '../src/peer/start.js'
import type { Legion } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { FakeNetwork, ManualClock, seededRandom, settleTurns, type FakeNode } from '../test/support/fake-network.js'

const env = process.env
const SIZES = (env.LEGION_BENCH_SIZES ?? '3,5,8,16').split(',').map(Number)
const ISOLATED = Number(env.LEGION_BENCH_ISOLATED ?? 5)
const STREAM_TICKS = Number(env.LEGION_BENCH_STREAM_TICKS ?? 50)
const TURN_TICKS = Number(env.LEGION_BENCH_TURN_TICKS ?? 100)
const TICK_MS = 20
const INTERVAL_MS = 1000
/** Simulated time any phase may take before the script gives up. */
const PHASE_LIMIT_MS = 60_000
const OUT = 'bench/results/frames.json'
const ACKNOWLEDGE = ['everyone', 'creators'] as const
type Acknowledge = typeof ACKNOWLEDGE[number]

const counter: EventSpec<number, number, number> = { init: () => 0, apply: (n, s) => ({ ok: true, output: s + n, state: s + n }) }
type Peer = Legion<number, number, number>

/** Messages and payload bytes sent, by protocol; a request's answer is counted as `<protocol>-reply`. */
class Tally {
  readonly messages = new Map<string, number>()
  readonly bytes = new Map<string, number>()

  add (protocol: string, bytes: number): void {
    this.messages.set(protocol, (this.messages.get(protocol) ?? 0) + 1)
    this.bytes.set(protocol, (this.bytes.get(protocol) ?? 0) + bytes)
  }

  snapshot (): Snapshot {
    return { messages: new Map(this.messages), bytes: new Map(this.bytes) }
  }
}
interface Snapshot { readonly messages: ReadonlyMap<string, number>, readonly bytes: ReadonlyMap<string, number> }

/** What was sent between two snapshots. */
interface Sent {
  /** `fold` messages: batches and acknowledgements. */
  fold: number
  /** Every message but heartbeats and their replies (fold, sync and its replies, push, outputs...). */
  data: number
  /** Payload bytes of those. */
  dataBytes: number
  heartbeats: number
  /** Every protocol's messages (heartbeats included). */
  byProtocol: Record<string, number>
}

function between (a: Snapshot, b: Snapshot): Sent {
  const messages = (k: string): number => (b.messages.get(k) ?? 0) - (a.messages.get(k) ?? 0)
  const bytes = (k: string): number => (b.bytes.get(k) ?? 0) - (a.bytes.get(k) ?? 0)
  const sent: Sent = { fold: messages('fold'), data: 0, dataBytes: 0, heartbeats: 0, byProtocol: {} }
  for (const k of b.messages.keys()) {
    if (messages(k) !== 0) sent.byProtocol[k] = messages(k)
    if (k.startsWith('heartbeat')) { sent.heartbeats += messages(k); continue }
    sent.data += messages(k)
    sent.dataBytes += bytes(k)
  }
  return sent
}

/** The protocol's short name: `/legion/<cluster>/<name>/<version>` → `<name>`. */
function shortName (protocol: string): string {
  return protocol.split('/')[3] ?? protocol
}

/** The fake node, with every send, request, answer and publish counted in `tally`. */
function counted (node: FakeNode, tally: Tally): FakeNode {
  return {
    ...node,
    async send (peer, protocol, payload) {
      tally.add(shortName(protocol), payload.byteLength)
      await node.send(peer, protocol, payload)
    },
    async request (peer, protocol, payload, options) {
      tally.add(shortName(protocol), payload.byteLength)
      const answer = await node.request(peer, protocol, payload, options)
      tally.add(`${shortName(protocol)}-reply`, answer.byteLength)
      return answer
    },
    async publish (topic, data) {
      const receivers = await node.publish(topic, data)
      for (let i = 0; i < receivers; i++) tally.add(`${shortName(topic)}-gossip`, data.byteLength)
      return receivers
    }
  }
}

interface Cluster { peers: Peer[], clock: ManualClock, tally: Tally }

async function cluster (n: number, acknowledge: Acknowledge): Promise<Cluster> {
  const clock = new ManualClock()
  const net = new FakeNetwork(clock)
  const tally = new Tally()
  const peers: Peer[] = []
  for (let i = 0; i < n; i++) {
    const startup = i === 0 ? { mode: 'new' as const } : { mode: 'join' as const, peers: peers[0]!.multiaddrs() }
    peers.push(await startPeer(
      { cluster: 'frames', spec: counter, startup, propagation: { acknowledge, intervalMs: INTERVAL_MS } },
      { network: async k => counted(await net.node(k), tally), clock, random: seededRandom(i + 1) }
    ))
  }
  await until(clock, () => peers.every(p => p.readState().outstanding === 0 && p.readState().participants.length === n), `${n} peers joined`)
  await quiet({ peers, clock, tally })
  return { peers, clock, tally }
}

/** Advances the clock 50 ms at a time until `predicate` holds; returns the simulated ms it took. */
async function until (clock: ManualClock, predicate: () => boolean, what: string): Promise<number> {
  const start = clock.now()
  await settleTurns()
  while (!predicate()) {
    if (clock.now() - start > PHASE_LIMIT_MS) throw new Error(`not within ${PHASE_LIMIT_MS} simulated ms: ${what}`)
    await clock.advance(50)
  }
  return clock.now() - start
}

/** Advances until two anti-entropy intervals in a row send nothing but heartbeats. */
async function quiet (c: Cluster): Promise<void> {
  const start = c.clock.now()
  let quietIntervals = 0
  while (quietIntervals < 2) {
    if (c.clock.now() - start > PHASE_LIMIT_MS) throw new Error('the cluster did not become quiet')
    const before = c.tally.snapshot()
    await c.clock.advance(INTERVAL_MS)
    quietIntervals = between(before, c.tally.snapshot()).data === 0 ? quietIntervals + 1 : 0
  }
}

const allFolded = (peers: Peer[], total: number) => (): boolean => peers.every(p => p.readState().infimum === total && p.readState().outstanding === 0)

interface Isolated { immediate: Sent, untilAllFolded: Sent, untilQuiet: Sent, creatorFoldedAt: number, allFoldedMs: number }

async function isolated (c: Cluster, count: number): Promise<Isolated[]> {
  const out: Isolated[] = []
  let total = c.peers[0]!.readState().infimum
  for (let i = 0; i < count; i++) {
    const creator = c.peers[i % c.peers.length]!
    const s0 = c.tally.snapshot()
    creator.applyFast(1)
    total++
    await settleTurns()
    const s1 = c.tally.snapshot()
    const creatorFoldedAt = creator.readState().infimum === total ? 0 : await until(c.clock, () => creator.readState().infimum === total, 'the creator folded')
    const allFoldedMs = await until(c.clock, allFolded(c.peers, total), 'every peer folded')
    const s2 = c.tally.snapshot()
    await quiet(c)
    out.push({ immediate: between(s0, s1), untilAllFolded: between(s0, s2), untilQuiet: between(s0, c.tally.snapshot()), creatorFoldedAt, allFoldedMs })
  }
  return out
}

interface Stream { events: number, sent: Sent, allFoldedMs: number }

/**
 * A stream of one event every {@link TICK_MS} from every peer (`all`), or from one peer at a
 * time, in turns (`turns`), for `ticks` ticks; counted until every peer folded it all and the
 * cluster is quiet again.
 */
async function stream (c: Cluster, ticks: number, who: 'all' | 'turns'): Promise<Stream> {
  let total = c.peers[0]!.readState().infimum
  let events = 0
  const s0 = c.tally.snapshot()
  for (let t = 0; t < ticks; t++) {
    const creators = who === 'all' ? c.peers : [c.peers[t % c.peers.length]!]
    for (const p of creators) p.applyFast(1)
    events += creators.length
    total += creators.length
    await c.clock.advance(TICK_MS)
  }
  const allFoldedMs = await until(c.clock, allFolded(c.peers, total), 'every peer folded the stream')
  await quiet(c)
  return { events, sent: between(s0, c.tally.snapshot()), allFoldedMs }
}

// -------------------------------------------------------------------------------------------

interface Row { metric: string, value: number, unit: string, cluster_size: number, acknowledge: Acknowledge, workload: string }
const rows: Row[] = []
function row (metric: string, value: number, unit: string, n: number, acknowledge: Acknowledge, workload: string): void {
  rows.push({ metric, value: Number(value.toPrecision(5)), unit, cluster_size: n, acknowledge, workload })
}

function mean (xs: number[]): number { return xs.reduce((a, b) => a + b, 0) / xs.length }
function range (xs: number[]): string {
  const lo = Math.min(...xs); const hi = Math.max(...xs)
  return lo === hi ? String(lo) : `${lo}-${hi}`
}

async function main (): Promise<void> {
  const cpu = cpus()
  console.log(`machine: ${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, load average ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
  console.log(`frames per event: in-memory network, manual clock, intervalMs ${INTERVAL_MS}; ${ISOLATED} isolated events; a stream of one event per peer every ${TICK_MS} ms for ${STREAM_TICKS} ticks; then one event every ${TICK_MS} ms from the peers in turns for ${TURN_TICKS} ticks`)
  const table: string[][] = [['n', 'acknowledge', 'iso fold now', 'iso data to fold-all', 'iso data to quiet', '/n', 'iso B/ev', 'creator ms', 'all ms', 'stream data/ev', '/n', 'stream B/ev', 'stream all ms', 'turns data/ev', '/n', 'turns B/ev', 'turns all ms']]
  for (const n of SIZES) {
    for (const acknowledge of ACKNOWLEDGE) {
      const c = await cluster(n, acknowledge)
      try {
        const iso = await isolated(c, ISOLATED)
        const streams = { stream: await stream(c, STREAM_TICKS, 'all'), turns: await stream(c, TURN_TICKS, 'turns') }
        const st = streams.stream
        const w = 'isolated'
        row('fold_messages_immediate_per_event', mean(iso.map(x => x.immediate.fold)), 'messages', n, acknowledge, w)
        row('fold_messages_until_all_folded_per_event', mean(iso.map(x => x.untilAllFolded.fold)), 'messages', n, acknowledge, w)
        row('data_messages_until_all_folded_per_event', mean(iso.map(x => x.untilAllFolded.data)), 'messages', n, acknowledge, w)
        row('data_messages_until_quiet_per_event', mean(iso.map(x => x.untilQuiet.data)), 'messages', n, acknowledge, w)
        row('data_messages_until_quiet_per_event_over_n', mean(iso.map(x => x.untilQuiet.data)) / n, 'messages', n, acknowledge, w)
        row('data_bytes_until_quiet_per_event', mean(iso.map(x => x.untilQuiet.dataBytes)), 'bytes', n, acknowledge, w)
        row('creator_folded_after_ms', mean(iso.map(x => x.creatorFoldedAt)), 'simulated ms', n, acknowledge, w)
        row('all_folded_after_ms', mean(iso.map(x => x.allFoldedMs)), 'simulated ms', n, acknowledge, w)
        for (const [workload, r] of Object.entries(streams)) {
          row('data_messages_per_event', r.sent.data / r.events, 'messages', n, acknowledge, workload)
          row('fold_messages_per_event', r.sent.fold / r.events, 'messages', n, acknowledge, workload)
          row('data_messages_per_event_over_n', r.sent.data / r.events / n, 'messages', n, acknowledge, workload)
          row('data_bytes_per_event', r.sent.dataBytes / r.events, 'bytes', n, acknowledge, workload)
          row('all_folded_after_last_tick_ms', r.allFoldedMs, 'simulated ms', n, acknowledge, workload)
          row('events', r.events, 'events', n, acknowledge, workload)
          for (const [k, v] of Object.entries(r.sent.byProtocol)) row(`${k}_messages_per_event`, v / r.events, 'messages', n, acknowledge, workload)
        }
        for (const k of new Set(iso.flatMap(x => Object.keys(x.untilQuiet.byProtocol)))) {
          row(`${k}_messages_until_quiet_per_event`, mean(iso.map(x => x.untilQuiet.byProtocol[k] ?? 0)), 'messages', n, acknowledge, w)
        }
        const tu = streams.turns
        const isoQuiet = mean(iso.map(x => x.untilQuiet.data))
        table.push([
          String(n), acknowledge,
          range(iso.map(x => x.immediate.fold)),
          range(iso.map(x => x.untilAllFolded.data)),
          range(iso.map(x => x.untilQuiet.data)),
          (isoQuiet / n).toFixed(2),
          mean(iso.map(x => x.untilQuiet.dataBytes)).toFixed(0),
          range(iso.map(x => x.creatorFoldedAt)),
          range(iso.map(x => x.allFoldedMs)),
          (st.sent.data / st.events).toFixed(2),
          (st.sent.data / st.events / n).toFixed(3),
          (st.sent.dataBytes / st.events).toFixed(0),
          String(st.allFoldedMs),
          (tu.sent.data / tu.events).toFixed(2),
          (tu.sent.data / tu.events / n).toFixed(3),
          (tu.sent.dataBytes / tu.events).toFixed(0),
          String(tu.allFoldedMs)
        ])
        process.stderr.write(`n=${n} ${acknowledge}: isolated, first event: ${JSON.stringify({ immediate: iso[0]!.immediate.byProtocol, untilAllFolded: iso[0]!.untilAllFolded.byProtocol, untilQuiet: iso[0]!.untilQuiet.byProtocol })}; stream, ${st.events} events: ${JSON.stringify(st.sent.byProtocol)}; turns, ${tu.events} events: ${JSON.stringify(tu.sent.byProtocol)}\n`)
      } finally {
        await Promise.all(c.peers.map(async p => { await p.stop({ leave: false, timeoutMs: 2000 }).catch(() => {}) }))
      }
    }
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map(l => l[i]!.length)))
  for (const l of table) console.log(l.map((cell, i) => i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)).join('  '))
  console.log(`load average at the end ${loadavg().map(x => x.toFixed(1)).join(' ')}`)
  await mkdir('bench/results', { recursive: true })
  await writeFile(OUT, JSON.stringify(rows, null, 2) + '\n')
  console.log(`wrote ${OUT}`)
}

main().then(() => { process.exit(0) }, err => { console.error(err); process.exit(1) })
