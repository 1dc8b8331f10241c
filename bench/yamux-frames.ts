/**
 * Counts what the multiplexer puts on the wire per event: yamux frames by type (data, window
 * update, ping, go-away), their bytes (12-byte headers included), and the socket writes and
 * bytes under them (Noise framing included), between Legion peers in this one process on TCP
 * loopback (127.0.0.1, port 0). A measuring tool, not a benchmark of speed: run it from two
 * checkouts to compare what a transport change does to the frames.
 *
 * Phases, each on the same cluster after it settled: `sequential` (peer 0 runs N
 * applyConsistent one after the other), `waves` (every peer runs N in waves of 500 concurrent
 * ones). Counts are taken over the phase and until every peer has nothing outstanding, divided
 * by the events of the phase. Background traffic (gossipsub heartbeats, keep-alive pings) is
 * included; with a few thousand events it is a small part. Beside the counts: the process CPU
 * (user + system, all peers, since they share this process) and wall time per event.
 *
 * How it counts: it wraps `createStreamMuxer` of the yamux factory class (found through
 * `yamux()()`) so that every muxer's `sendFrame` is counted before any stream binds it, and
 * `net.Socket.prototype.write` for sockets to 127.0.0.1. Both reach into internals of the
 * installed packages; fine for a measuring script, never for library code.
 *
 * Run: node --import tsx bench/yamux-frames.ts [peers=2] [events=2000]
 */
import '../src/transport/polyfill.js'
import { Socket } from 'node:net'
import { yamux } from '@chainsafe/libp2p-yamux'
import { startPeer } from '../src/peer/start.js'
import type { EventSpec } from '../src/eventfold/types.js'
import type { Legion } from '../src/peer/options.js'

const PEERS = Number(process.argv[2] ?? 2)
const EVENTS = Number(process.argv[3] ?? 2000)
const WAVE = 500
const SETTLE_MS = 30_000

const TYPES = ['data', 'windowUpdate', 'ping', 'goAway'] as const
interface Counts { frames: Record<string, number>, frameBytes: number, emptyWindowUpdates: number, socketWrites: number, socketBytes: number, cpuUs: number, wallMs: number }
const counts: Counts = { frames: Object.fromEntries(TYPES.map(t => [t, 0])), frameBytes: 0, emptyWindowUpdates: 0, socketWrites: 0, socketBytes: 0, cpuUs: 0, wallMs: 0 }

interface Header { type: number, flag: number, streamID: number, length: number }
type SendFrame = (header: Header, data?: { byteLength: number }) => boolean

// yamux()() is an instance of the factory class; its prototype's createStreamMuxer makes every muxer.
const factoryProto = Object.getPrototypeOf(yamux()()) as { createStreamMuxer: (maConn: unknown) => unknown }
const createStreamMuxer = factoryProto.createStreamMuxer
factoryProto.createStreamMuxer = function (this: unknown, maConn: unknown) {
  const muxer = createStreamMuxer.call(this, maConn) as { sendFrame: SendFrame }
  const sendFrame = muxer.sendFrame
  muxer.sendFrame = function (this: unknown, header, data) {
    const name = TYPES[header.type] ?? `type${header.type}`
    counts.frames[name] = (counts.frames[name] ?? 0) + 1
    counts.frameBytes += 12 + (data?.byteLength ?? 0)
    // a window update that grants nothing only carries flags (SYN, ACK, FIN, RST)
    if (header.type === 1 && header.length === 0) counts.emptyWindowUpdates++
    return sendFrame.call(this, header, data)
  }
  return muxer
}

const socketWrite = Socket.prototype.write
Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
  if (this.remoteAddress === '127.0.0.1' && chunk instanceof Uint8Array) {
    counts.socketWrites++
    counts.socketBytes += chunk.byteLength
  }
  return (socketWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest)
} as typeof Socket.prototype.write

const counter: EventSpec<number, number, number> = {
  init: () => 0,
  apply: (n, total) => ({ ok: true, output: total + n, state: total + n })
}

function snapshot (): Counts {
  const cpu = process.cpuUsage()
  return { ...structuredClone(counts), cpuUs: cpu.user + cpu.system, wallMs: performance.now() }
}

async function settled (peers: Array<Legion<number, number, number>>): Promise<void> {
  const deadline = Date.now() + SETTLE_MS
  while (peers.some(p => p.readState().outstanding > 0)) {
    if (Date.now() > deadline) throw new Error('peers did not settle')
    await new Promise(resolve => setTimeout(resolve, 10)) // polling a condition, bounded above
  }
}

function report (phase: string, before: Counts, after: Counts, events: number): void {
  const per = (x: number): string => (x / events).toFixed(2)
  const frames = Object.fromEntries(Object.keys(after.frames).map(t => [t, per(after.frames[t]! - (before.frames[t] ?? 0))]))
  const total = Object.keys(after.frames).reduce((s, t) => s + after.frames[t]! - (before.frames[t] ?? 0), 0)
  console.log(JSON.stringify({
    phase,
    peers: PEERS,
    events,
    yamuxFramesPerEvent: per(total),
    byType: frames,
    emptyWindowUpdatesPerEvent: per(after.emptyWindowUpdates - before.emptyWindowUpdates),
    yamuxBytesPerEvent: per(after.frameBytes - before.frameBytes),
    socketWritesPerEvent: per(after.socketWrites - before.socketWrites),
    socketBytesPerEvent: per(after.socketBytes - before.socketBytes),
    cpuUsPerEvent: per(after.cpuUs - before.cpuUs),
    wallMsPerEvent: ((after.wallMs - before.wallMs) / events).toFixed(3)
  }))
}

async function main (): Promise<void> {
  const peers: Array<Legion<number, number, number>> = []
  try {
    peers.push(await startPeer({ cluster: 'yamux-frames', spec: counter, startup: { mode: 'new' } }))
    for (let i = 1; i < PEERS; i++) {
      peers.push(await startPeer({ cluster: 'yamux-frames', spec: counter, startup: { mode: 'join', peers: peers[0]!.multiaddrs() } }))
    }
    await settled(peers)
    // warm-up: streams opened, windows grown
    for (let i = 0; i < 200; i++) await peers[0]!.applyConsistent(1)
    await settled(peers)

    let before = snapshot()
    for (let i = 0; i < EVENTS; i++) await peers[0]!.applyConsistent(1)
    await settled(peers)
    report('sequential', before, snapshot(), EVENTS)

    before = snapshot()
    await Promise.all(peers.map(async p => {
      for (let done = 0; done < EVENTS; done += WAVE) {
        await Promise.all(Array.from({ length: Math.min(WAVE, EVENTS - done) }, async () => await p.applyConsistent(1, { timeoutMs: 60_000 })))
      }
    }))
    await settled(peers)
    report('waves', before, snapshot(), EVENTS * PEERS)
  } finally {
    await Promise.all(peers.map(async p => { await p.stop({ leave: false, timeoutMs: 2000 }).catch(() => {}) }))
  }
}

main().catch(err => { console.error(err); process.exitCode = 1 })
