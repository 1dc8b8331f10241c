/**
 * Child process of the multi-process tests (test/runtime-processes.test.ts,
 * test/partition.test.ts, test/crash.test.ts; driven through test/support/process-cluster.ts):
 * one Legion peer over TCP loopback whose replicated state is an append-only log of strings
 * (the output of an event is its index in the log), driven over stdin/stdout with one JSON
 * object per line.
 *
 * Environment: LEGION_CLUSTER (cluster name), LEGION_JOIN (a multiaddr to join through),
 * LEGION_RECOVER (a JSON array of multiaddrs: recover from LEGION_STORAGE and reconnect
 * through them), neither: found a new cluster; LEGION_PRIVATE_KEY (hex of
 * `privateKeyToProtobuf`; absent: a new key, or the saved one when recovering);
 * LEGION_STORAGE (a directory for durable LMDB storage; absent: none); LEGION_OPTIONS (JSON:
 * `{ intervalMs?, failureDetection?, summary?, spec? }`).
 *
 * `spec: 'ranges'` (the soak test) replaces the log by a state of bounded size: per writer
 * (an event `A-c-17` is sequence number 17 of writer `A-c`), the set of its sequence numbers as
 * closed intervals, plus the count `n` of distinct events (an event's output is `n` before
 * it, or -1 for an event seen before, counted in `duplicates`). Whether an event is in the
 * state can be checked without the state growing with every event.
 *
 * Out: `{"type":"ready","self","address"}` once started, then `{"type":"state",...}` at start
 * and on every change, and `{"type":"reply","id","value"|"error"}` per command. A state line
 * carries the infimum id, outstanding count, participants, the log's length and a hash of it,
 * and the logs themselves (`infimum`, `projected`) unless `summary` is set (long runs: the
 * whole log on every change would be quadratic; ask `readState` for it instead).
 * In: `{"id","command",...}` with command one of applyFast {event}, applyConsistent {event,
 * timeoutMs}, readState, stats, eject {peer}, block {peers}, stop {leave}, call {peer,
 * payload, timeoutMs} (the peer's `onCall` echoes the payload), broadcall {payload, timeoutMs}
 * (answers `{ answered, missing }`), memory (after a full GC: `process.memoryUsage()`, V8's
 * used size per heap space, active handles and resources by type, open streams and
 * connections, outstanding events), heapSnapshot {path} (a V8 heap snapshot, to chase a
 * leak), foldDump {group} (the cluster's fold, or service group `mirror/<group>`, described
 * for a failing wait's message). Commands run concurrently, so a pending applyConsistent does not hold up the next
 * command.
 *
 * `block` is the test's network partition: from then on this peer accepts no connection from
 * and no message of the peers listed (replacing any earlier list; `[]` heals), through the
 * runtime's `allowPeers` predicate. Blocking is symmetric only if the test blocks both sides.
 */
import { createHash } from 'node:crypto'
import { say, serveCommands } from './child-commands.js'
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { startLegion } from '../../src/peer/start.js'
import { eventIdKey, type EventSpec } from '../../src/index.js'
import type { EventFold } from '../../src/eventfold/event-fold.js'
import { lmdbKeyValueStore } from '../../src/storage/index.js'
import { defineService } from '../../src/peer/services.js'
import type { ClusterState, FailureDetectionOptions, StartupMode } from '../../src/peer/options.js'
import type { TransportStats } from '../../src/transport/node.js'

/** An append-only log: the output of an event is the index at which it was appended. */
const logSpec: EventSpec<string, string[], number> = {
  init: () => [],
  apply: (entry, log) => ({ ok: true, output: log.length, state: [...log, entry] })
}

/** The `ranges` state: see the header. Intervals are sorted, disjoint and not adjacent. */
export interface Ranges {
  readonly n: number
  readonly duplicates: number
  readonly writers: Readonly<Record<string, ReadonlyArray<readonly [number, number]>>>
}
/** `list` with `seq` added, or undefined if it holds `seq` already. */
function addToIntervals (list: ReadonlyArray<readonly [number, number]>, seq: number): Array<readonly [number, number]> | undefined {
  if (list.some(([lo, hi]) => lo <= seq && seq <= hi)) return undefined
  const merged: Array<[number, number]> = []
  for (const [lo, hi] of [...list, [seq, seq] as const].sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1]
    if (last !== undefined && lo <= last[1] + 1) last[1] = Math.max(last[1], hi)
    else merged.push([lo, hi])
  }
  return merged
}
const rangesSpec: EventSpec<string, Ranges, number> = {
  init: () => ({ n: 0, duplicates: 0, writers: {} }),
  apply: (entry, s) => {
    const dash = entry.lastIndexOf('-')
    const writer = entry.slice(0, dash)
    const seq = Number(entry.slice(dash + 1))
    const list = addToIntervals(s.writers[writer] ?? [], seq)
    if (list === undefined) return { ok: true, output: -1, state: { ...s, duplicates: s.duplicates + 1 } }
    return { ok: true, output: s.n, state: { n: s.n + 1, duplicates: s.duplicates, writers: { ...s.writers, [writer]: list } } }
  }
}

const join = process.env.LEGION_JOIN
const recover = process.env.LEGION_RECOVER
const key = process.env.LEGION_PRIVATE_KEY
const storageDir = process.env.LEGION_STORAGE
const options = JSON.parse(process.env.LEGION_OPTIONS ?? '{}') as { intervalMs?: number, failureDetection?: FailureDetectionOptions, summary?: boolean, spec?: 'log' | 'ranges', groups?: number, block?: string[] }
const startup: StartupMode = recover !== undefined
  ? { mode: 'recover', peers: JSON.parse(recover) as string[] }
  : join !== undefined ? { mode: 'join', peers: [join] } : { mode: 'new' }
/** Peers refused (`allowPeers`): from the start with `block` in the options, then the `block` command's. */
let blocked: ReadonlySet<string> = new Set(options.block ?? [])

type State = string[] | Ranges
/** `groups: n`: a service with n cluster-wide groups `mirror/g0`... holding logs too. */
const mirror = defineService({
  name: 'mirror',
  needs: ['groups'],
  create: ({ groups }) => {
    const all = new Map(Array.from({ length: options.groups ?? 0 }, (_, i) => [`g${i}`, groups.clusterWide(`g${i}`, { spec: logSpec })]))
    return {
      group: (name: string) => {
        const g = all.get(name)
        if (g === undefined) throw new Error(`no group ${name}`)
        return g
      }
    }
  }
})
const legion = await startLegion({
  services: { mirror },
  cluster: process.env.LEGION_CLUSTER ?? 'processes-test',
  spec: (options.spec === 'ranges' ? rangesSpec : logSpec) as EventSpec<string, State, number>,
  startup,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  ...(key !== undefined ? { privateKey: privateKeyFromProtobuf(Buffer.from(key, 'hex')) } : {}),
  ...(storageDir !== undefined ? { storage: await lmdbKeyValueStore(storageDir) } : {}),
  ...(options.failureDetection !== undefined ? { failureDetection: options.failureDetection } : {}),
  allowPeers: peer => !blocked.has(peer),
  onCall: (_from, payload) => payload,
  propagation: { intervalMs: options.intervalMs ?? 250 } // faster repair of lost messages: keeps the tests short
})

/** JSON with object keys sorted: equal states, equal text, whatever order a decoder built their keys in. */
const canonical = (v: unknown): string => Array.isArray(v)
  ? `[${v.map(canonical).join(',')}]`
  : v !== null && typeof v === 'object'
    ? `{${Object.keys(v).sort().map(k => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
    : JSON.stringify(v)
const report = (s: ClusterState<State>): void => {
  say({
    type: 'state',
    infimumId: eventIdKey(s.infimumId),
    outstanding: s.outstanding,
    participants: s.participants,
    infimumLength: Array.isArray(s.infimum) ? s.infimum.length : s.infimum.n,
    infimumHash: createHash('sha256').update(canonical(s.infimum)).digest('hex').slice(0, 16),
    infimum: options.summary === true ? [] : s.infimum,
    projected: options.summary === true ? [] : s.projected
  })
}

say({ type: 'ready', self: legion.self, address: legion.multiaddrs()[0] })
report(legion.readState())
legion.subscribe(report)

/** A full garbage collection (V8's `gc`, exposed on first use), so `memory` reports the live heap. */
let collect: (() => void) | undefined
function fullGc (): void {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc')
    collect = runInNewContext('gc') as () => void
  }
  collect()
}

function memory (): unknown {
  const raw = process.memoryUsage().heapUsed
  fullGc()
  const m = process.memoryUsage()
  const resources: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1
  const internals = process as unknown as { _getActiveHandles: () => unknown[], _getActiveRequests: () => unknown[] }
  // The transport node is private to the runtime; the soak test peeks at its stream counts.
  const transport = (legion as unknown as { network?: { stats?: () => TransportStats } }).network?.stats?.()
  return {
    heapUsedRaw: raw,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    rss: m.rss,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    spaces: Object.fromEntries(getHeapSpaceStatistics().map(s => [s.space_name, s.space_used_size])),
    handles: internals._getActiveHandles().length,
    requests: internals._getActiveRequests().length,
    resources,
    openStreams: transport === undefined ? -1 : transport.channel.openInboundStreams + transport.channel.openOutboundStreams,
    connectedPeers: transport?.connectedPeers ?? -1,
    outstanding: legion.stats().outstanding,
    eventsApplied: legion.stats().counters.eventsApplied
  }
}

/**
 * What one group's fold holds, for a failing test to explain a stall: its infimum, logs, the
 * first outstanding events with who acknowledged them, and each participant's last
 * acknowledgement as seen here. Peeks at the runtime's private lifecycle, as `memory` does.
 */
function foldDump (group: string): unknown {
  const short = (p: string): string => p.slice(-6)
  const id = (e: { counter: number, participant: string }): string => `${e.counter}@${short(e.participant)}`
  const lifecycle = (legion as unknown as { lifecycle?: { incarnation?: { groups: Map<string, { fold?: EventFold<unknown, unknown, unknown> }> } } }).lifecycle
  const fold = lifecycle?.incarnation?.groups.get(group)?.fold
  if (fold === undefined) return null
  const snapshot = fold.snapshot()
  return {
    infimum: { id: id(snapshot.infimum.id), participants: snapshot.infimum.participants.map(short) },
    logs: snapshot.logs.map(l => `${short(l.participant)}/${l.since}:${l.seq}${l.base !== undefined ? ` base ${l.base.counter}` : ''}`),
    outstanding: snapshot.events.length,
    first: snapshot.events.slice(0, 6).map(e => ({
      id: id(e.id),
      at: `${e.since}:${e.seq}`,
      kind: e.delta.kind === 'join' || e.delta.kind === 'unjoin' ? `${e.delta.kind} ${short(e.delta.participant)}` : e.delta.kind,
      acks: e.acks.map(short),
      ...(e.standIn !== undefined ? { standIn: e.standIn.map(s => `${s.since}:${s.seq}`) } : {})
    })),
    acknowledgements: fold.allParticipants().map(p => {
      const a = p === legion.self ? fold.acknowledgement() : fold.acknowledgementOf(p)
      return a === undefined
        ? `${short(p)}: none`
        : `${short(p)}: inf ${id(a.infimumId)} joined ${String(a.joined)} log ${a.log} unsettled ${a.unsettled} holds ${a.holds.map(h => `${short(h.participant)}/${h.since}:${h.seq}`).join(',')} departing ${a.departing.map(d => `${id(d.unjoin)}>${d.since}:${d.seq}`).join(',')}`
    })
  }
}

async function run (command: string, args: Record<string, unknown>): Promise<unknown> {
  switch (command) {
    case 'applyFast': return legion.applyFast(args.event as string)
    case 'applyConsistent': return args.group !== undefined
      ? await legion.services.mirror.group(args.group as string).applyConsistent(args.event as string, { timeoutMs: args.timeoutMs as number | undefined })
      : await legion.applyConsistent(args.event as string, { timeoutMs: args.timeoutMs as number | undefined })
    case 'readState': return args.group !== undefined ? legion.services.mirror.group(args.group as string).readState() : legion.readState()
    case 'stats': return legion.stats()
    case 'foldDump': return foldDump(args.group === undefined ? '' : `mirror/${args.group as string}`)
    case 'memory': return memory()
    case 'heapSnapshot': return writeHeapSnapshot(args.path as string)
    case 'call': return new TextDecoder().decode(await legion.call(args.peer as string, new TextEncoder().encode(args.payload as string), { timeoutMs: args.timeoutMs as number | undefined }))
    case 'broadcall': {
      const replies = await legion.broadcall(new TextEncoder().encode(args.payload as string), { timeoutMs: args.timeoutMs as number | undefined })
      const answered = [...replies.values()].filter(r => r.kind === 'reply').length
      return { answered, missing: replies.size - answered }
    }
    case 'eject': return await legion.eject(args.peer as string)
    case 'block': blocked = new Set(args.peers as string[]); return [...blocked]
    case 'stop': await legion.stop({ leave: args.leave as boolean | undefined }); return 'stopped'
    default: throw new Error(`unknown command ${command}`)
  }
}

serveCommands(run, () => { void legion.stop({ leave: false }) })
