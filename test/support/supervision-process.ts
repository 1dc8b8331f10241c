/**
 * Child process of the supervision fault tests and of bench/supervision-cluster.ts: one Legion
 * peer with the cluster supervision service on TCP loopback, driven over stdin/stdout with one
 * JSON object per line (harness: test/support/supervision-processes.ts).
 *
 * Environment: LEGION_CLUSTER, LEGION_JOIN (a multiaddr; absent: found the cluster),
 * LEGION_OPTIONS (JSON `{ failureDetection? }`).
 *
 * Its servers: `log`, an append-only log of strings (`append` answers the new entry's index,
 * `read` the whole log, `poison` throws), whose state is saved at terminate; `echo`, stateless.
 *
 * Out (`at` is `performance.timeOrigin + performance.now()`: comparable between processes of
 * one host): `{type:'ready', self, address}`; `{type:'run', child, token, at}` and
 * `{type:'stopped', child, token, at}` when this peer starts or stops running a child;
 * `{type:'init', child, at}` at every `init` of a server; `{type:'members', members, at}`;
 * `{type:'reply', id, value | error}` per command.
 *
 * In: `{id, command, ...}`: startChild {name, server, placement?}, startReplicated {name, server,
 * replicas}, call {name, input, timeoutMs}, calls {name, inputs, timeoutMs} (sequentially, each
 * answer timed), whereis {name}, stop {leave}.
 */
import { say, serveCommands } from './child-commands.js'
import { startLegion } from '../../src/peer/start.js'
import { clusterSupervision } from '../../src/cluster-supervision/service.js'
import { defineServer } from '../../src/supervision/server.js'
import type { EventSpec } from '../../src/eventfold/types.js'
import type { FailureDetectionOptions } from '../../src/peer/options.js'
import type { Placement } from '../../src/cluster-supervision/api.js'

const at = (): number => performance.timeOrigin + performance.now()

type LogInput = { readonly op: 'append', readonly value: string } | { readonly op: 'read' } | { readonly op: 'poison' }
const log = defineServer<LogInput, string[], number | string[]>({
  init: ({ name, restored }) => { say({ type: 'init', child: name, at: at() }); return restored ?? [] },
  step: (input, entries) => {
    if (input.op === 'poison') throw new Error('poison input')
    if (input.op === 'read') return { state: entries, output: entries }
    return { state: [...entries, input.value], output: entries.length }
  },
  persistence: {}
})
const echo = defineServer<number, null, number>({ init: () => null, step: (n, s) => ({ state: s, output: n }) })
const servers = { log, echo }

const spec: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
const options = JSON.parse(process.env.LEGION_OPTIONS ?? '{}') as { failureDetection?: FailureDetectionOptions }
const join = process.env.LEGION_JOIN

const peer = await startLegion({
  cluster: process.env.LEGION_CLUSTER ?? 'supervision-processes',
  spec,
  startup: join !== undefined ? { mode: 'join', peers: [join] } : { mode: 'new' },
  listen: ['/ip4/127.0.0.1/tcp/0'],
  propagation: { intervalMs: 250 },
  ...(options.failureDetection !== undefined ? { failureDetection: options.failureDetection } : {}),
  services: {
    supervision: clusterSupervision({
      servers,
      onEvent: (e) => {
        if (e.type === 'run-started') say({ type: 'run', child: e.child, token: `${e.token.counter}:${e.token.participant}`, at: at() })
        if (e.type === 'run-stopped') say({ type: 'stopped', child: e.child, token: `${e.token.counter}:${e.token.participant}`, at: at() })
      }
    })
  }
})
const sup = peer.services.supervision
say({ type: 'ready', self: peer.self, address: peer.multiaddrs()[0] })
let lastMembers = -1
peer.subscribe(() => {
  const n = peer.readState().projectedParticipants.length
  if (n !== lastMembers) { lastMembers = n; say({ type: 'members', members: n, at: at() }) }
})

async function run (command: string, args: Record<string, unknown>): Promise<unknown> {
  switch (command) {
    case 'startChild': await sup.startChild(args.name as string, { server: args.server as 'log', ...(args.placement !== undefined ? { placement: args.placement as Placement } : {}), timeoutMs: 20_000 }); return 'started'
    case 'startReplicated': await sup.startReplicated(args.name as string, { server: args.server as 'log', replicas: args.replicas as number, timeoutMs: 20_000 }); return 'started'
    case 'call': return await sup.call(args.name as string, args.input, { timeoutMs: args.timeoutMs as number })
    case 'calls': {
      const times: number[] = []
      for (const input of args.inputs as unknown[]) {
        const start = performance.now()
        await sup.call(args.name as string, input, { timeoutMs: args.timeoutMs as number })
        times.push(performance.now() - start)
      }
      return times
    }
    case 'whereis': { const h = sup.whereis(args.name as string); return h === undefined ? null : h.peer }
    case 'stop': await peer.stop({ leave: args.leave as boolean | undefined }); return 'stopped'
    default: throw new Error(`unknown command ${command}`)
  }
}

serveCommands(run, () => { void peer.stop({ leave: false }) })
