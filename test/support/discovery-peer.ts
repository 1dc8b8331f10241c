/**
 * Child process of the discovery fault tests and of bench/election.ts: one Legion peer with the
 * discovery service on TCP loopback, driven over stdin/stdout with one JSON object per line
 * (harness: test/support/discovery-cluster.ts).
 *
 * Environment: LEGION_CLUSTER, LEGION_JOIN (a multiaddr; absent: found the cluster),
 * LEGION_OPTIONS (JSON `{ failureDetection?, writeEveryMs? }`).
 *
 * Out (every time `at` is `performance.timeOrigin + performance.now()`, milliseconds on the
 * host's clock, comparable between processes of one host):
 * - `{type:'ready', self, address}` once started;
 * - `{type:'run', name, token, at}` when this peer starts running a name it was elected to, and
 *   `{type:'stopped', name, token, at}` when it must stop (its signal fired);
 * - `{type:'write', name, token, at}` every `writeEveryMs` while it runs: the writes a fenced
 *   resource (the parent) admits or refuses;
 * - `{type:'seen', name, key, at}` when a watcher of a `watch`ed name sees a registration;
 * - `{type:'members', members, membership, at}` when the number of projected participants or this
 *   peer's membership (`participant`, `ejected`...) changes;
 * - `{type:'reply', id, value | error}` per command.
 *
 * In: `{id, command, ...}` with command one of elect {name}, register {name, meta}, watch {name},
 * whereis {name}, lookupRate {name, ms} (lookups per second from the local replica), block
 * {peers} (accept nothing from these peers: the test's partition, through `allowPeers`),
 * members, stop {leave}.
 */
import { say, serveCommands } from './child-commands.js'
import { startLegion } from '../../src/peer/start.js'
import { discovery } from '../../src/discovery/service.js'
import { eventIdKey, type EventSpec } from '../../src/eventfold/types.js'
import type { FailureDetectionOptions } from '../../src/peer/options.js'
import type { JsonValue } from '../../src/codec/json.js'

const spec: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
const options = JSON.parse(process.env.LEGION_OPTIONS ?? '{}') as { failureDetection?: FailureDetectionOptions, writeEveryMs?: number }
const join = process.env.LEGION_JOIN
let blocked: ReadonlySet<string> = new Set()
const at = (): number => performance.timeOrigin + performance.now()

const peer = await startLegion({
  cluster: process.env.LEGION_CLUSTER ?? 'discovery-processes',
  spec,
  startup: join !== undefined ? { mode: 'join', peers: [join] } : { mode: 'new' },
  listen: ['/ip4/127.0.0.1/tcp/0'],
  services: { discovery: discovery<JsonValue, JsonValue>() },
  allowPeers: p => !blocked.has(p),
  propagation: { intervalMs: 250 },
  ...(options.failureDetection !== undefined ? { failureDetection: options.failureDetection } : {})
})
const d = peer.services.discovery
say({ type: 'ready', self: peer.self, address: peer.multiaddrs()[0] })
let lastMembers = ''
const reportMembers = (): void => {
  const m = JSON.stringify({ members: peer.readState().projectedParticipants.length, membership: peer.stats().membership })
  if (m !== lastMembers) { lastMembers = m; say({ type: 'members', ...JSON.parse(m) as object, at: at() }) }
}
peer.subscribe(reportMembers)
reportMembers()

async function run (command: string, args: Record<string, unknown>): Promise<unknown> {
  switch (command) {
    case 'elect': {
      const name = args.name as string
      const candidacy = d.elect(name, (ctx) => {
        const token = eventIdKey(ctx.token)
        say({ type: 'run', name, token, at: at() })
        const every = options.writeEveryMs ?? 0
        const timer = every > 0 ? setInterval(() => { if (!ctx.signal.aborted) say({ type: 'write', name, token, at: at() }) }, every) : undefined
        ctx.signal.addEventListener('abort', () => { clearInterval(timer); say({ type: 'stopped', name, token, at: at() }) }, { once: true })
      }, { kind: name })
      await candidacy.whenStanding({ timeoutMs: 30_000 })
      return 'standing'
    }
    case 'register': { const r = d.register(args.name as string, (args.meta ?? null) as JsonValue); return { key: r.key, at: at() } }
    case 'watch': {
      const name = args.name as string
      d.watch(name, e => { if (e.kind === 'registered') say({ type: 'seen', name, key: e.entry.key, at: at() }) })
      return 'watching'
    }
    case 'whereis': { const h = d.whereis(args.name as string); return h === undefined ? null : { peer: h.peer, token: eventIdKey(h.token) } }
    case 'lookupRate': {
      const name = args.name as string
      const ms = args.ms as number
      const start = performance.now()
      let n = 0
      while (performance.now() - start < ms) { for (let i = 0; i < 1000; i++) d.lookup(name); n += 1000 }
      return n / ((performance.now() - start) / 1000)
    }
    case 'block': blocked = new Set(args.peers as string[]); return [...blocked]
    case 'members': return { projected: peer.readState().projectedParticipants, membership: peer.stats().membership }
    case 'stop': await peer.stop({ leave: args.leave as boolean | undefined }); return 'stopped'
    default: throw new Error(`unknown command ${command}`)
  }
}

serveCommands(run, () => { void peer.stop({ leave: false }) })
