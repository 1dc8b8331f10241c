/**
 * Supervision across the cluster, in four OS processes on loopback: a placed child (`cart`, a
 * key-value server on whichever peer holds the fewest children) and a replicated server
 * (`ledger`, a counter whose state is a group among three peers). Calls go by name from any
 * process; the cart's host and then the ledger's primary are killed with SIGKILL: the cart is
 * restarted on one survivor, and the ledger answers from another replica with every total it
 * ever answered. A poison input to the ledger is refused with `PoisonInputError` and
 * quarantined on every replica.
 *
 * - `node --import tsx demo/supervision-cluster.ts` (`npm run demo:supervision-cluster`): the
 *   whole story.
 * - `node --import tsx demo/supervision-cluster.ts serve [<multiaddr>]`: one peer, founding the
 *   cluster or joining through the address; it reads commands on stdin, one per line:
 *   `startChild <name> <server>`, `startReplicated <name> <server> <replicas>`,
 *   `call <name> <json input>`.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { clusterSupervision, defineServer, startLegion, type EventSpec } from '../src/index.js'

type KvInput = { readonly op: 'put', readonly key: string, readonly value: string } | { readonly op: 'get', readonly key: string }
const kv = defineServer<KvInput, Record<string, string>, string | null>({
  init: () => ({}),
  step: (input, state) => input.op === 'put'
    ? { state: { ...state, [input.key]: input.value }, output: input.value }
    : { state, output: state[input.key] ?? null }
})
type CounterInput = { readonly add: number } | { readonly total: true }
const counter = defineServer<CounterInput, number, number>({
  init: () => 0,
  step: (input, total) => {
    if ('total' in input) return { state: total, output: total }
    if (!Number.isSafeInteger(input.add)) throw new RangeError(`cannot add ${String(input.add)}`)
    return { state: total + input.add, output: total + input.add }
  }
})

const spec: EventSpec<null, null, null> = { init: () => null, apply: () => ({ ok: true, output: null, state: null }) }

/** One peer: prints what it runs, and runs the commands it reads. */
async function serve (join: string | undefined): Promise<void> {
  let me = ''
  const say = (line: string): void => { console.log(`[${me}] ${line}`) }
  const peer = await startLegion({
    cluster: 'supervision-demo',
    spec,
    startup: join === undefined ? { mode: 'new' } : { mode: 'join', peers: [join] },
    listen: ['/ip4/127.0.0.1/tcp/0'],
    failureDetection: { heartbeatIntervalMs: 250, suspectAfterMs: 1000 }, // quick failover for the demo
    propagation: { intervalMs: 250 },
    services: {
      supervision: clusterSupervision({
        servers: { kv, counter },
        onEvent: (e) => {
          if (e.type === 'run-started') say(`now running ${e.child} (${e.mode}, token ${e.token.counter})`)
          if (e.type === 'quarantined') say(`quarantined an input of ${e.child}: ${e.record.thrown}`)
        }
      })
    }
  })
  me = peer.self.slice(-6)
  const sup = peer.services.supervision
  say(`listening on ${peer.multiaddrs()[0]!}`)
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [command, name, ...rest] = line.split(' ')
    const done = (what: unknown): void => { say(`${line} -> ${JSON.stringify(what)}`) }
    const failed = (err: Error): void => { say(`${line} -> ${err.name}: ${err.message}`) }
    if (command === 'startChild') sup.startChild(name!, { server: rest[0] as 'kv' }).then(() => { done('started') }, failed)
    else if (command === 'startReplicated') sup.startReplicated(name!, { server: rest[0] as 'counter', replicas: Number(rest[1]) }).then(() => { done('started') }, failed)
    else if (command === 'call') sup.call(name!, JSON.parse(rest.join(' ')), { timeoutMs: 15_000 }).then(done, failed)
  }).on('close', () => { void peer.stop().then(() => process.exit(0)) })
}

/** The whole story, as separate processes; each line a child prints is echoed. */
async function story (): Promise<void> {
  const self = fileURLToPath(import.meta.url)
  const children: ChildProcess[] = []
  const ids = new Map<ChildProcess, string>()
  let ledgerPrimary: ChildProcess | undefined
  const watchers = new Set<(line: string, from: ChildProcess) => void>()
  const run = (args: string[]): ChildProcess => {
    const child = spawn(process.execPath, ['--import', 'tsx', self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
    createInterface({ input: child.stdout! }).on('line', line => {
      console.log(line)
      const id = line.match(/^\[(\w+)\]/)
      if (id !== null) ids.set(child, id[1]!)
      if (/now running ledger/.test(line)) ledgerPrimary = child
      for (const w of [...watchers]) w(line, child)
    })
    children.push(child)
    return child
  }
  const line = async (pattern: RegExp, what: string, timeoutMs = 60_000): Promise<[RegExpMatchArray, ChildProcess]> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { watchers.delete(check); reject(new Error(`no ${what} within ${timeoutMs} ms`)) }, timeoutMs)
    const check = (l: string, from: ChildProcess): void => {
      const m = l.match(pattern)
      if (m === null) return
      clearTimeout(timer)
      watchers.delete(check)
      resolve([m, from])
    }
    watchers.add(check)
  })
  const fromEach = async (count: number, pattern: RegExp, what: string, timeoutMs: number): Promise<void> => await new Promise((resolve, reject) => {
    const seen = new Set<ChildProcess>()
    const timer = setTimeout(() => { watchers.delete(check); reject(new Error(`no ${what} within ${timeoutMs} ms (${seen.size} of ${count})`)) }, timeoutMs)
    const check = (l: string, from: ChildProcess): void => {
      if (!pattern.test(l)) return
      seen.add(from)
      if (seen.size < count) return
      clearTimeout(timer)
      watchers.delete(check)
      resolve()
    }
    watchers.add(check)
  })
  const send = async (to: ChildProcess, command: string): Promise<string> => {
    const answered = line(new RegExp(`${command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} -> (.*)$`), `an answer to ${command}`)
    to.stdin!.write(command + '\n')
    return (await answered)[0][1]!
  }
  try {
    console.log('--- four peers')
    const listening = line(/listening on (\S+)/, 'the founder')
    const first = run(['serve'])
    const address = (await listening)[0][1]!
    for (let i = 0; i < 3; i++) { const up = line(/listening on/, 'a peer'); run(['serve', address]); await up }
    console.log('--- a placed child and a replicated server, called by name')
    const cartRuns = line(/now running cart/, 'cart to run')
    await send(first, 'startChild cart kv')
    const [, cartHost] = await cartRuns
    await send(first, 'startReplicated ledger counter 3')
    const client = children.find(c => c !== cartHost && c !== first) ?? children[1]!
    await send(client, 'call cart {"op":"put","key":"apples","value":"3"}')
    for (const n of [5, 7]) await send(client, `call ledger {"add":${n}}`)
    console.log('--- a poison input: refused, quarantined on every replica, the total unchanged')
    // Each replica reports the quarantine record once it settled there (a tick or two after the
    // caller's answer): wait for all three reports, so that none is printed after the kills.
    const reports = fromEach(3, /quarantined an input of ledger/, 'the three replicas\' quarantine reports', 30_000)
    await send(client, 'call ledger {"add":0.5}')
    await reports
    await send(client, 'call ledger {"total":true}')
    console.log(`--- killing the cart's host (${ids.get(cartHost)!}) with SIGKILL: one survivor restarts it`)
    console.log('    (a placed child\'s state lives on its host: a graceful leave hands it over; after a crash it starts from its last save, here none)')
    const restarted = line(/now running cart/, 'cart to run again', 30_000)
    cartHost.kill('SIGKILL')
    await restarted
    const survivor = children.find(c => c !== cartHost && c.exitCode === null && c.signalCode === null)!
    await send(survivor, 'call cart {"op":"get","key":"apples"}') // null: restarted from init
    console.log('--- killing the ledger\'s primary with SIGKILL: another replica answers with every answered total')
    if (ledgerPrimary === cartHost) await line(/now running ledger/, 'the ledger\'s new primary (it was on the cart\'s host)', 30_000)
    const primary = ledgerPrimary!
    const again = line(/now running ledger/, 'a new primary', 30_000)
    primary.kill('SIGKILL')
    await again
    const asker = children.find(c => c !== cartHost && c !== primary && c.exitCode === null && c.signalCode === null)!
    await send(asker, 'call ledger {"total":true}')
    console.log('--- done')
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.stdin!.end()
  }
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'serve') await serve(rest[0])
else await story()
