/**
 * Real peers with the admin endpoint, for the admin, metrics, page and CLI tests: in this
 * process, over TCP on 127.0.0.1, each endpoint on a free loopback port. Failure detection is
 * fast and never ejects by itself, so that what a test sees (a suspect, an ejection) is what
 * the test did.
 */
import { partitionTableSpec } from '../../src/partitions/partition-table.js'
import { admin, type AdminEndpoint, type AdminOptions } from '../../src/admin/index.js'
import type { Legion } from '../../src/peer/options.js'
import { startLegion } from '../../src/peer/start.js'
import type { ServiceDefinition, ServiceMap } from '../../src/peer/services.js'
import type { PartitionTable, PartitionTableEvent, PartitionTableOutput } from '../../src/partitions/partition-table.js'

/** The token of every test endpoint that allows mutations. */
export const TOKEN = 'admin-test-token-0123456789'

/** A peer with the admin service. */
export type AdminPeer = Legion<PartitionTableEvent, PartitionTable, PartitionTableOutput, { admin: ServiceDefinition<AdminEndpoint, never> }>

/** Failure detection for tests: suspicion after 1 s, no automatic ejection. */
export const FAST_DETECTION = { heartbeatIntervalMs: 200, suspectAfterMs: 1000, stuckAfterMs: 3000, autoEject: false as const, rejoin: false }

/**
 * Starts `n` peers of a fresh cluster (each with `admin(options(i))`, and the services
 * `services(i)` before it), the first founding it.
 */
export async function adminCluster (n: number, options: (i: number) => AdminOptions = () => ({ allowMutations: true, token: TOKEN }), partitions = 12, services: (i: number) => ServiceMap = () => ({})): Promise<AdminPeer[]> {
  const base = {
    cluster: `admin-test-${process.pid}-${Math.random().toString(36).slice(2)}`,
    spec: partitionTableSpec(partitions),
    failureDetection: FAST_DETECTION,
    propagation: { intervalMs: 200 }
  }
  const peers: AdminPeer[] = []
  try {
    for (let i = 0; i < n; i++) {
      const startup = i === 0 ? { mode: 'new' as const } : { mode: 'join' as const, peers: peers[0]!.multiaddrs() }
      peers.push(await startLegion({ ...base, startup, services: { ...services(i), admin: admin(options(i)) } }) as unknown as AdminPeer)
    }
    await waitUntil(() => peers.every(p => p.readState().participants.length === n), `${n} settled participants`)
  } catch (err) {
    await stopPeers(peers)
    throw err
  }
  return peers
}

/** Stops every peer without leaving (fast), ignoring those already stopped. */
export async function stopPeers (peers: readonly AdminPeer[]): Promise<void> {
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
}

/** The admin URL of a peer. */
export function urlOf (peer: AdminPeer): string {
  const url = peer.services.admin.url
  if (url === undefined) throw new Error('the peer has no admin port')
  return url
}

/** Polls `check` every 50 ms until it holds, for at most `timeoutMs`. */
export async function waitUntil (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** GET or POST JSON; resolves with the status and parsed body. */
export async function request (url: string, init: { method?: string, body?: unknown, token?: string | undefined, headers?: Record<string, string> } = {}): Promise<{ status: number, body: Record<string, unknown>, headers: Headers }> {
  const headers: Record<string, string> = { ...init.headers }
  if (init.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json'
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`
  const res = await fetch(url, {
    method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
    headers,
    ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
    signal: AbortSignal.timeout(15_000)
  })
  const text = await res.text()
  let body: Record<string, unknown> = {}
  if ((res.headers.get('content-type') ?? '').startsWith('application/json')) body = JSON.parse(text) as Record<string, unknown>
  else body = { text }
  return { status: res.status, body, headers: res.headers }
}
