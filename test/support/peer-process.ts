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
 * `{ intervalMs?, failureDetection?, summary? }`).
 *
 * Out: `{"type":"ready","self","address"}` once started, then `{"type":"state",...}` at start
 * and on every change, and `{"type":"reply","id","value"|"error"}` per command. A state line
 * carries the infimum id, outstanding count, participants, the log's length and a hash of it,
 * and the logs themselves (`infimum`, `projected`) unless `summary` is set (long runs: the
 * whole log on every change would be quadratic; ask `readState` for it instead).
 * In: `{"id","command",...}` with command one of applyFast {event}, applyConsistent {event,
 * timeoutMs}, readState, stats, eject {peer}, block {peers}, stop {leave}. Commands run
 * concurrently, so a pending applyConsistent does not hold up the next command.
 *
 * `block` is the test's network partition: from then on this peer accepts no connection from
 * and no message of the peers listed (replacing any earlier list; `[]` heals), through the
 * runtime's `allowPeers` predicate. Blocking is symmetric only if the test blocks both sides.
 */
import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { startLegion } from '../../src/runtime/runtime.js'
import { eventIdKey, type EventSpec } from '../../src/index.js'
import { lmdbStorage } from '../../src/storage/lmdb.js'
import type { ClusterState, FailureDetectionOptions, StartupMode } from '../../src/runtime/options.js'

/** An append-only log: the output of an event is the index at which it was appended. */
const logSpec: EventSpec<string, string[], number> = {
  init: () => [],
  apply: (entry, log) => ({ ok: true, output: log.length, state: [...log, entry] })
}

const join = process.env.LEGION_JOIN
const recover = process.env.LEGION_RECOVER
const key = process.env.LEGION_PRIVATE_KEY
const storageDir = process.env.LEGION_STORAGE
const options = JSON.parse(process.env.LEGION_OPTIONS ?? '{}') as { intervalMs?: number, failureDetection?: FailureDetectionOptions, summary?: boolean }
const startup: StartupMode = recover !== undefined
  ? { mode: 'recover', peers: JSON.parse(recover) as string[] }
  : join !== undefined ? { mode: 'join', peers: [join] } : { mode: 'new' }
let blocked: ReadonlySet<string> = new Set()

const legion = await startLegion({
  cluster: process.env.LEGION_CLUSTER ?? 'processes-test',
  spec: logSpec,
  startup,
  listen: ['/ip4/127.0.0.1/tcp/0'],
  ...(key !== undefined ? { privateKey: privateKeyFromProtobuf(Buffer.from(key, 'hex')) } : {}),
  ...(storageDir !== undefined ? { storage: await lmdbStorage(storageDir) } : {}),
  ...(options.failureDetection !== undefined ? { failureDetection: options.failureDetection } : {}),
  allowPeers: peer => !blocked.has(peer),
  propagation: { intervalMs: options.intervalMs ?? 250 } // faster repair of lost messages: keeps the tests short
})

const say = (message: object): void => { process.stdout.write(JSON.stringify(message) + '\n') }
const report = (s: ClusterState<string[]>): void => {
  say({
    type: 'state',
    infimumId: eventIdKey(s.infimumId),
    outstanding: s.outstanding,
    participants: s.participants,
    infimumLength: s.infimum.length,
    infimumHash: createHash('sha256').update(JSON.stringify(s.infimum)).digest('hex').slice(0, 16),
    infimum: options.summary === true ? [] : s.infimum,
    projected: options.summary === true ? [] : s.projected
  })
}

say({ type: 'ready', self: legion.self, address: legion.multiaddrs()[0] })
report(legion.readState())
legion.subscribe(report)

async function run (command: string, args: Record<string, unknown>): Promise<unknown> {
  switch (command) {
    case 'applyFast': return legion.applyFast(args.event as string)
    case 'applyConsistent': return await legion.applyConsistent(args.event as string, { timeoutMs: args.timeoutMs as number | undefined })
    case 'readState': return legion.readState()
    case 'stats': return legion.stats()
    case 'eject': return await legion.eject(args.peer as string)
    case 'block': blocked = new Set(args.peers as string[]); return [...blocked]
    case 'stop': await legion.stop({ leave: args.leave as boolean | undefined }); return 'stopped'
    default: throw new Error(`unknown command ${command}`)
  }
}

const commands = createInterface({ input: process.stdin })
commands.on('line', line => {
  const { id, command, ...args } = JSON.parse(line) as { id: number, command: string } & Record<string, unknown>
  run(command, args).then(
    value => {
      say({ type: 'reply', id, value })
      if (command === 'stop') { commands.close(); process.stdin.destroy() }
    },
    (err: Error) => { say({ type: 'reply', id, error: `${err.name}: ${err.message}` }) }
  )
})
// stdin closed without a stop: the test runner is gone, so go too.
commands.on('close', () => { void legion.stop({ leave: false }) })
