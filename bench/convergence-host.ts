/**
 * A host process of bench/convergence.ts: it runs benchmark peers ({@link BenchNode}s, keyed by
 * slot) and answers the parent's commands, one JSON object per line on stdin, one JSON reply per
 * line on stdout: `{ id, cmd, slot?, ...args }` in, `{ id, ok: true, ...result }` or
 * `{ id, ok: false, error }` out. Nothing else goes to stdout.
 *
 * In `process` mode each peer has its own host (TCP loopback); in `memory` mode one host runs
 * the whole cluster on the memory transport. Either way the parent only orchestrates, so its
 * deadlines hold even when a host's event loop is saturated (an overloaded in-process cluster
 * can starve timers for tens of seconds): the parent stops waiting, reports the run as not
 * converged, and kills the host.
 *
 * The host samples its memory every 50 ms (peaks since the last `resetMem`, relative to the
 * process before any peer started) and exits after `exit` or when stdin closes.
 */
import '../src/transport/polyfill.js'
import { serveCommands } from './command-process.js'
import { now, startBootstrapped, startNode, type BenchNode, type NodeConfig } from './convergence-node.js'
import type { StartupMode } from '../src/peer/options.js'

interface Command { id: number, cmd: string, slot?: number, [key: string]: unknown }

// LEGION_BENCH_CONNECTION_MONITOR=off: libp2p's connection monitor never starts in this host.
// It pings every connection every 10 s over a new stream (and aborts a connection whose ping
// times out); n in-process peers hold n(n-1) connection ends, so 64 idle peers spent 471 ms of
// CPU a second with it against 111 ms without, and 128 never finished starting. This reaches
// into the installed libp2p (its package exports do not offer the module): fine for a
// benchmark host, never for library code. Checked, so that a change fails loudly.
if (process.env.LEGION_BENCH_CONNECTION_MONITOR === 'off') {
  const url = new URL('../node_modules/libp2p/dist/src/connection-monitor.js', import.meta.url).href
  const { ConnectionMonitor } = await import(url) as { ConnectionMonitor?: { prototype: { start?: () => void } } }
  if (typeof ConnectionMonitor?.prototype.start !== 'function') throw new Error('libp2p changed: cannot switch its connection monitor off')
  ConnectionMonitor.prototype.start = function () {}
}

const nodes = new Map<number, BenchNode>()
const gc = (globalThis as { gc?: () => void }).gc
gc?.()
const base = process.memoryUsage()
let peakHeap = 0
let peakRss = 0
function sampleMem (): void {
  const m = process.memoryUsage()
  peakHeap = Math.max(peakHeap, m.heapUsed - base.heapUsed)
  peakRss = Math.max(peakRss, m.rss - base.rss)
}
setInterval(sampleMem, 50).unref()

function cpuMs (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

function node (c: Command): BenchNode {
  const n = nodes.get(Number(c.slot))
  if (n === undefined) throw new Error(`no peer in slot ${String(c.slot)}`)
  return n
}

function started (n: BenchNode): Record<string, unknown> {
  return { peer: n.id, addrs: n.addrs() }
}

async function handle (c: Command): Promise<Record<string, unknown>> {
  switch (c.cmd) {
    case 'start': {
      const config = c.config as NodeConfig
      const n = await startNode(config, c.startup as StartupMode)
      nodes.set(config.slot, n)
      return started(n)
    }
    case 'bootstrap': {
      const configs = c.configs as NodeConfig[]
      // Progress on stderr (the parent passes it through): large clusters take minutes to start.
      const t0 = now()
      const cpu0 = cpuMs()
      const every = Math.max(1, Math.round(configs.length / 8))
      const list = await startBootstrapped(configs, started => {
        if (started % every === 0 || started === configs.length) process.stderr.write(`bootstrap: ${started}/${configs.length} peers up after ${((now() - t0) / 1000).toFixed(1)} s, ${((cpuMs() - cpu0) / 1000).toFixed(1)} s of CPU\n`)
      })
      list.forEach((n, i) => nodes.set(configs[i]!.slot, n))
      return { peers: list.map(started) }
    }
    case 'emit': node(c).emit(Number(c.count)); return {}
    case 'emitMany': {
      // A burst: every peer of this host creates its events in the same tick.
      for (const [slot, count] of Object.entries(c.counts as Record<string, number>)) nodes.get(Number(slot))?.emit(count)
      return { at: now() }
    }
    case 'steady': return { ...await node(c).steady(Number(c.ratePerS), Number(c.durationMs)) }
    case 'stopSteady': node(c).stopSteady(); return {}
    case 'connect': await node(c).connect(c.peers as Array<{ id: string, addr: string }>); return {}
    case 'disconnect': node(c).disconnect(String(c.peer)); return {}
    case 'statusAll': return { statuses: [...nodes].map(([slot, n]) => ({ slot, ...n.status() })) }
    case 'counters': return { counters: node(c).counters() }
    case 'seenCount': return { count: node(c).seenCount(Number(c.of)) }
    case 'lastEventAt': return { at: node(c).lastEventAt() }
    case 'results': return { created: node(c).created(), arrivals: node(c).arrivals() }
    case 'stop': {
      const n = node(c)
      nodes.delete(Number(c.slot))
      await n.stop(c.leave === true).catch(() => {})
      return {}
    }
    case 'cpu': return { cpuMs: cpuMs() }
    case 'gc': gc?.(); return {}
    case 'resetMem': sampleMem(); peakHeap = 0; peakRss = 0; sampleMem(); return {}
    case 'mem': sampleMem(); return { peakHeap, peakRss }
    case 'exit':
      await Promise.all([...nodes.values()].map(async n => { await n.stop(false).catch(() => {}) }))
      nodes.clear()
      return {}
    default:
      throw new Error(`unknown command ${c.cmd}`)
  }
}

serveCommands(handle, 'exit', async () => await Promise.all([...nodes.values()].map(async n => { await n.stop(false).catch(() => {}) })))
