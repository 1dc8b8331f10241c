/**
 * The distributed-process-zookeeper seed's example on Legion: one **boss** delegates jobs that
 * transient requesters submit to a pool of **workers**, which are also candidates to take over
 * should the boss fail. No ZooKeeper: the registry and the election are the discovery service
 * (src/discovery/), replicated by every peer.
 *
 * - `node --import tsx demo/boss.ts` (`npm run demo:boss`): the whole story. Starts three
 *   persistent processes, submits jobs from transient ones, kills the boss with SIGKILL, and
 *   submits more: a worker takes over and goes on delegating (and working).
 * - `node --import tsx demo/boss.ts serve [<multiaddr>]`: a persistent process, founding the
 *   cluster or joining through the address: a boss candidate and a worker.
 * - `node --import tsx demo/boss.ts submit <multiaddr> <job...>`: a transient requester: joins,
 *   finds the boss, hands it the job, prints the answer and leaves.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { discovery, jsonCodecFor, startLegion, type EventSpec, type Legion } from '../src/index.js'

const spec: EventSpec<null, null, null> = { init: () => null, apply: () => ({ ok: true, output: null, state: null }) }
const detection = { heartbeatIntervalMs: 250, suspectAfterMs: 1000 } // quick failover for the demo
const text = { request: jsonCodecFor<string>(), reply: jsonCodecFor<string>() }
const work = { name: 'demo/work', ...text }
type Peer = Legion<null, null, null, { discovery: ReturnType<typeof discovery> }>

async function start (join: string | undefined): Promise<Peer> {
  return await startLegion({
    cluster: 'boss-demo',
    spec,
    startup: join === undefined ? { mode: 'new' } : { mode: 'join', peers: [join] },
    listen: ['/ip4/127.0.0.1/tcp/0'],
    failureDetection: detection,
    propagation: { intervalMs: 250 },
    services: { discovery: discovery() }
  })
}

/** A persistent process: a worker, and a candidate for boss. */
async function serve (join: string | undefined): Promise<void> {
  const peer = await start(join)
  const d = peer.services.discovery
  const me = peer.self.slice(-6)
  const say = (line: string): void => { console.log(`[${me}] ${line}`) }
  say(`listening on ${peer.multiaddrs()[0]!}`)

  // The worker: does what the boss hands it.
  peer.channel(work).handle((job) => { say(`doing ${job}`); return `${job} done by ${me}` })
  d.register('worker', null)

  // The boss: only the elected candidate answers calls addressed to 'boss'.
  let next = 0
  d.endpoint('boss', text).handle(async (job) => {
    const workers = d.lookup('worker').entries
    const others = workers.filter(w => w.peer !== peer.self)
    const pool = others.length > 0 ? others : workers
    const worker = pool[next++ % pool.length]!
    say(`Delegating ${job} to ${worker.peer.slice(-6)}`)
    return await peer.channel(work).call(worker.peer, job)
  })
  d.elect('boss', (ctx) => {
    const n = d.lookup('worker').entries.length
    say(`I'm the boss! (token ${ctx.token.counter}:${ctx.token.participant.slice(-6)}) ${n === 0 ? 'I don\'t do any work! Start a worker.' : `I've got ${n} workers right now.`}`)
    return () => { say('no longer the boss') }
  })
  say('Worker waiting for task... (press <Enter> to leave)')
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    void peer.stop().then(() => process.exit(0)) // leaves: a boss hands over before it goes
  }
  process.on('SIGTERM', stop)
  createInterface({ input: process.stdin }).on('line', stop).on('close', stop)
}

/** A transient requester: join, find the boss, submit, leave. */
async function submit (join: string, job: string): Promise<void> {
  const peer = await start(join)
  try {
    const answer = await peer.services.discovery.endpoint('boss', text).call(job, { waitForHolder: true, timeoutMs: 15_000 })
    console.log(`[submit] ${job}: ${answer}`)
  } finally {
    await peer.stop()
  }
}

/** The whole story, as separate processes; each line a child prints is echoed. */
async function story (): Promise<void> {
  const self = fileURLToPath(import.meta.url)
  const children: ChildProcess[] = []
  const address = new Map<ChildProcess, string>()
  const watchers = new Set<(line: string, from: ChildProcess) => void>()
  const run = (args: string[]): ChildProcess => {
    const child = spawn(process.execPath, ['--import', 'tsx', self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
    createInterface({ input: child.stdout! }).on('line', line => {
      console.log(line)
      const listening = line.match(/listening on (\S+)/)
      if (listening !== null) address.set(child, listening[1]!)
      for (const w of [...watchers]) w(line, child)
    })
    children.push(child)
    return child
  }
  /** The first line matching `pattern` (from `only`, if given), within `timeoutMs`. */
  const line = async (pattern: RegExp, what: string, only?: ChildProcess, timeoutMs = 60_000): Promise<[RegExpMatchArray, ChildProcess]> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { watchers.delete(check); reject(new Error(`no ${what} within ${timeoutMs} ms`)) }, timeoutMs)
    const check = (l: string, from: ChildProcess): void => {
      const m = l.match(pattern)
      if (m === null || (only !== undefined && from !== only)) return
      clearTimeout(timer)
      watchers.delete(check)
      resolve([m, from])
    }
    watchers.add(check)
  })
  const submit = async (via: string, job: string): Promise<void> => {
    const answered = line(new RegExp(`\\[submit\\] ${job}:`), `an answer to ${job}`)
    const s = run(['submit', via, job])
    await answered
    if (s.exitCode === null) await new Promise(resolve => s.once('exit', resolve))
  }
  try {
    console.log('--- three persistent processes, each a worker and a candidate for boss')
    const firstBoss = line(/I'm the boss!/, 'the first boss')
    const first = run(['serve'])
    const [, boss] = await firstBoss
    const founder = address.get(first)!
    for (let i = 0; i < 2; i++) {
      const ready = line(/Worker waiting for task/, 'a worker')
      run(['serve', founder])
      await ready
    }
    console.log('--- jobs from transient requesters')
    for (const job of ['foo', 'bar']) await submit(founder, job)
    console.log('--- killing the boss with SIGKILL')
    const takeover = line(/\[(\w+)\] I'm the boss!/, 'a new boss', undefined, 30_000)
    boss.kill('SIGKILL')
    const [, successor] = await takeover
    console.log('--- a worker took over; more jobs')
    for (const job of ['baz', 'qux']) await submit(address.get(successor)!, job)
    console.log('--- done')
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM')
  }
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'serve') await serve(rest[0])
else if (mode === 'submit') await submit(rest[0]!, rest.slice(1).join(' '))
else await story()
