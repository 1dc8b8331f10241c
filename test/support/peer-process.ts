/**
 * Child process of test/runtime-processes.test.ts: one Legion peer over TCP loopback whose
 * replicated state is an append-only log of strings (the output of an event is its index in
 * the log), driven over stdin/stdout with one JSON object per line.
 *
 * Environment: LEGION_CLUSTER (cluster name), LEGION_JOIN (a multiaddr to join through; absent:
 * found a new cluster), LEGION_PRIVATE_KEY (hex of `privateKeyToProtobuf`; absent: a new key).
 *
 * Out: `{"type":"ready","self","address"}` once started, then `{"type":"state",...}` at start
 * and on every change, and `{"type":"reply","id","value"|"error"}` per command.
 * In: `{"id","command",...}` with command one of applyFast {event}, applyConsistent {event,
 * timeoutMs}, readState, stats, eject {peer}, stop {leave}. Commands run concurrently, so a
 * pending applyConsistent does not hold up the next command.
 */
import { createInterface } from 'node:readline'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { startLegion } from '../../src/runtime/runtime.js'
import { eventIdKey, type EventSpec } from '../../src/index.js'
import type { ClusterState } from '../../src/runtime/options.js'

/** An append-only log: the output of an event is the index at which it was appended. */
const logSpec: EventSpec<string, string[], number> = {
  init: () => [],
  apply: (entry, log) => ({ ok: true, output: log.length, state: [...log, entry] })
}

const join = process.env.LEGION_JOIN
const key = process.env.LEGION_PRIVATE_KEY
const legion = await startLegion({
  cluster: process.env.LEGION_CLUSTER ?? 'processes-test',
  spec: logSpec,
  startup: join === undefined ? { mode: 'new' } : { mode: 'join', peers: [join] },
  listen: ['/ip4/127.0.0.1/tcp/0'],
  ...(key !== undefined ? { privateKey: privateKeyFromProtobuf(Buffer.from(key, 'hex')) } : {}),
  propagation: { intervalMs: 250 } // faster repair of lost messages: keeps the tests short
})

const say = (message: object): void => { process.stdout.write(JSON.stringify(message) + '\n') }
const report = (s: ClusterState<string[]>): void => {
  say({ type: 'state', infimumId: eventIdKey(s.infimumId), outstanding: s.outstanding, participants: s.participants, infimum: s.infimum, projected: s.projected })
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
