/**
 * Round-trip time of a request between two libp2p nodes in one process:
 * Legion's channel (one reused stream per peer and protocol) against opening a
 * new stream per request, on TCP loopback and on the memory transport.
 *
 * Run: node --import tsx bench/rtt.ts [requests]
 * Prints a table (with the CPU of both nodes per sequential request) and writes
 * bench/results/rtt.json.
 */
import '../src/transport/polyfill.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { memory } from '@libp2p/memory'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { createTransportNode } from '../src/transport/node.js'
import type { Libp2p } from '@libp2p/interface'

const REQUESTS = Number(process.argv[2] ?? 3000)
// Long enough that the CPU column is not the JIT compiling the request path.
const WARMUP = 3000
const PROTOCOL = '/legion/bench/echo/1.0.0'
const PAYLOAD = new Uint8Array(64).fill(7)

interface Row {
  name: string
  transport: 'tcp' | 'memory'
  requests: number
  medianMs: number
  p99Ms: number
  meanMs: number
  /** CPU of this process (both nodes) per sequential request and answer, in µs. */
  cpuUsPerRequest: number
}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN
}

async function measure (name: string, transport: 'tcp' | 'memory', once: () => Promise<void>): Promise<Row> {
  for (let i = 0; i < WARMUP; i++) await once()
  const samples: number[] = []
  const cpu = process.cpuUsage()
  for (let i = 0; i < REQUESTS; i++) {
    const start = performance.now()
    await once()
    samples.push(performance.now() - start)
  }
  const used = process.cpuUsage(cpu)
  samples.sort((a, b) => a - b)
  const mean = samples.reduce((sum, x) => sum + x, 0) / samples.length
  return { name, transport, requests: REQUESTS, medianMs: percentile(samples, 0.5), p99Ms: percentile(samples, 0.99), meanMs: mean, cpuUsPerRequest: (used.user + used.system) / REQUESTS }
}

async function channelRow (transport: 'tcp' | 'memory'): Promise<{ row: Row, throughput: number }> {
  const [client, server] = await Promise.all([createTransportNode({ transport }), createTransportNode({ transport })])
  try {
    await server.handle(PROTOCOL, async (_from, payload) => payload)
    await client.dial(server.multiaddrs()[0]!)
    const row = await measure('channel.request, reused stream', transport, async () => {
      await client.request(server.peerId, PROTOCOL, PAYLOAD)
    })
    // throughput with 64 requests in flight on the same stream
    const total = 20_000
    const start = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: 64 }, async () => {
      // bounded: each iteration takes one of `total` requests
      while (next < total) {
        next++
        await client.request(server.peerId, PROTOCOL, PAYLOAD)
      }
    }))
    const throughput = total / ((performance.now() - start) / 1000)
    return { row, throughput }
  } finally {
    await Promise.all([client.stop(), server.stop()])
  }
}

async function rawNode (transport: 'tcp' | 'memory'): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: [transport === 'tcp' ? '/ip4/127.0.0.1/tcp/0' : `/memory/bench-${Math.random().toString(16).slice(2)}`] },
    transports: [transport === 'tcp' ? tcp() : memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxEarlyStreams: 64 })],
    connectionManager: { inboundConnectionThreshold: 1_000 }
  })
}

async function newStreamRow (transport: 'tcp' | 'memory'): Promise<Row> {
  const [client, server] = await Promise.all([rawNode(transport), rawNode(transport)])
  try {
    await server.handle(PROTOCOL, async (stream) => {
      const lp = lpStream(stream)
      await lp.write(await lp.read())
      await stream.close()
    }, { maxInboundStreams: 1_024 })
    const connection = await client.dial(server.getMultiaddrs()[0]!)
    return await measure('new stream per request', transport, async () => {
      const stream = await connection.newStream(PROTOCOL)
      const lp = lpStream(stream)
      await lp.write(PAYLOAD)
      await lp.read()
      await stream.close()
    })
  } finally {
    await Promise.all([client.stop(), server.stop()])
  }
}

const rows: Row[] = []
const throughputs: Record<string, number> = {}
for (const transport of ['tcp', 'memory'] as const) {
  const { row, throughput } = await channelRow(transport)
  rows.push(row)
  throughputs[transport] = throughput
  rows.push(await newStreamRow(transport))
}

const pad = (s: string, n: number): string => s.padEnd(n)
console.log(`${pad('mode', 34)}${pad('transport', 11)}${pad('median ms', 11)}${pad('p99 ms', 9)}${pad('mean ms', 9)}CPU µs`)
for (const row of rows) {
  console.log(`${pad(row.name, 34)}${pad(row.transport, 11)}${pad(row.medianMs.toFixed(3), 11)}${pad(row.p99Ms.toFixed(3), 9)}${pad(row.meanMs.toFixed(3), 9)}${row.cpuUsPerRequest.toFixed(1)}`)
}
for (const [transport, rate] of Object.entries(throughputs)) {
  console.log(`channel.request, 64 in flight on one stream (${transport}): ${Math.round(rate)} requests/s`)
}

const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  payloadBytes: PAYLOAD.byteLength,
  requests: REQUESTS,
  rows,
  throughputRequestsPerSecond64InFlight: throughputs
}
await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(new URL('./results/rtt.json', import.meta.url), JSON.stringify(results, null, 2) + '\n')
