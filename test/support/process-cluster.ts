/**
 * Harness of the multi-process tests: each peer is a child process (`peer-process.ts`) on TCP
 * loopback, driven over stdin/stdout. The shared state is an append-only log of strings.
 *
 * Every wait is for a reported line (or a child's exit) and has a deadline; nothing sleeps to
 * synchronise. A wait fails at once if any child exits without the test having asked for it.
 * `killAll` runs after the test file and on process exit, so no child outlives its test.
 */
import { after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { bundled } from './child-fleet.js'
import type { FailureDetectionOptions } from '../../src/peer/options.js'
import type { LegionStats } from '../../src/index.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** Default deadline of every wait. */
export const WAIT_MS = 20_000
/**
 * Deadline of a child's start (a new libp2p node, and joining): three test suites at once on
 * two cores (load average about 18) stretched it past 20 s.
 */
export const START_MS = 60_000

/** What a child reports on every change of its fold. */
export interface ReportedState {
  infimumId: string
  outstanding: number
  participants: string[]
  infimumLength: number
  /** A hash of the infimum log: equal logs, equal hashes. */
  infimumHash: string
  /** The infimum log; empty when the child runs with `summary` (use the `readState` command). */
  infimum: string[]
  /** The projected log; empty when the child runs with `summary`. */
  projected: string[]
}
interface Reply { id: number, value?: unknown, error?: string }

/** How a child starts; see `peer-process.ts`. */
export interface PeerEnv {
  /** Cluster name. */
  cluster: string
  /** Join through this multiaddr. */
  join?: string
  /** Recover from `storage`, reconnecting through these multiaddrs. */
  recover?: string[]
  /** Directory of durable (LMDB) storage. */
  storage?: string
  /** Hex of the private key's protobuf. */
  privateKeyHex?: string
  /** Anti-entropy interval (the child's default: 250 ms). */
  intervalMs?: number
  /** Failure detection options. */
  failureDetection?: FailureDetectionOptions
  /** Report states without the logs (see `ReportedState`). */
  summary?: boolean
  /** The replicated state: the append-only log (default), or `ranges` of bounded size (see `peer-process.ts`). */
  spec?: 'log' | 'ranges'
  /** Cluster-wide groups `g0`.. of a `mirror` service, each an append-only log too. */
  groups?: number
  /** The child script, relative to this folder (default `peer-process.ts`; `keyspace-process.ts` runs a cache keyspace). */
  script?: string
  /** Options only the child script reads, passed in `LEGION_OPTIONS` beside the common ones. */
  extra?: Record<string, unknown>
  /**
   * `DEBUG` namespaces for the child (e.g. `legion:membership`, whose lines say why each
   * automatic ejection was made): its lines are kept in {@link PeerProcess.recentLog} for a
   * failing test's report instead of being printed; other stderr lines pass through.
   */
  debug?: string
}

/** Debug lines kept per child. */
const RECENT_LOG_LINES = 200

/** Conditions being waited for; every line from any child, and every exit, re-evaluates them. */
const waiters = new Set<() => void>()
const recheck = (): void => { for (const w of [...waiters]) w() }
const everyPeer = new Set<PeerProcess>()

/** One child process running one peer. */
export class PeerProcess {
  readonly child: ChildProcess
  self = ''
  address = ''
  state: ReportedState | undefined
  exit: { code: number | null, signal: NodeJS.Signals | null } | undefined
  expectExit = false
  /** Called with every state the child reports (for timing observations). */
  onState: ((s: ReportedState) => void) | undefined
  /** The child's latest debug lines (with `debug` set), oldest first. */
  readonly recentLog: string[] = []
  private nextId = 1
  private readonly replies = new Map<number, Reply>()

  constructor (readonly name: string, readonly env: PeerEnv) {
    const options = { intervalMs: env.intervalMs, failureDetection: env.failureDetection, summary: env.summary, spec: env.spec, groups: env.groups, ...env.extra }
    this.child = spawn(process.execPath, [bundled(env.script ?? 'peer-process.ts')], {
      cwd: root,
      stdio: ['pipe', 'pipe', env.debug !== undefined ? 'pipe' : 'inherit'],
      env: {
        ...process.env,
        ...(env.debug !== undefined ? { DEBUG: env.debug } : {}),
        LEGION_CLUSTER: env.cluster,
        LEGION_OPTIONS: JSON.stringify(options),
        ...(env.join !== undefined ? { LEGION_JOIN: env.join } : {}),
        ...(env.recover !== undefined ? { LEGION_RECOVER: JSON.stringify(env.recover) } : {}),
        ...(env.storage !== undefined ? { LEGION_STORAGE: env.storage } : {}),
        ...(env.privateKeyHex !== undefined ? { LEGION_PRIVATE_KEY: env.privateKeyHex } : {})
      }
    })
    everyPeer.add(this)
    createInterface({ input: this.child.stdout! }).on('line', line => {
      const m = JSON.parse(line) as { type: string } & Record<string, unknown>
      if (m.type === 'ready') { this.self = m.self as string; this.address = m.address as string }
      if (m.type === 'state') { this.state = m as unknown as ReportedState; this.onState?.(this.state) }
      if (m.type === 'reply') this.replies.set(m.id as number, m as unknown as Reply)
      recheck()
    })
    if (env.debug !== undefined) {
      const namespaces = env.debug.split(',').map(n => n.replace(/\*.*$/, ''))
      createInterface({ input: this.child.stderr! }).on('line', line => {
        if (!namespaces.some(n => line.includes(` ${n}`))) { process.stderr.write(line + '\n'); return }
        this.recentLog.push(line)
        if (this.recentLog.length > RECENT_LOG_LINES) this.recentLog.shift()
      })
    }
    this.child.on('exit', (code, signal) => { this.exit = { code, signal }; recheck() })
    this.child.stdin!.on('error', () => {}) // a dead child's closed pipe: its exit is what we report
  }

  /** Resolves once the child has started; bounded by `START_MS` (a loaded machine starts slowly). */
  async ready (): Promise<this> {
    await waitFor(() => this.self !== '' || undefined, `${this.name} to start`, START_MS)
    return this
  }

  /** Sends a command; `reply()` waits for its answer. */
  send (command: string, args: Record<string, unknown> = {}): number {
    const id = this.nextId++
    this.child.stdin!.write(JSON.stringify({ id, command, ...args }) + '\n')
    return id
  }

  /**
   * The answer to command `id`. Rejects if the command failed (with the child's
   * `<error name>: <message>`), or with `PeerExited` if this child exits first.
   */
  async reply<T> (id: number, timeoutMs = WAIT_MS): Promise<T> {
    const r = await waitFor<Reply | { exited: true }>(() => this.replies.get(id) ?? (this.exit !== undefined ? { exited: true } : undefined),
      `${this.name} to answer command ${id}`, timeoutMs)
    if ('exited' in r) throw new Error(`PeerExited: ${this.name} exited before answering command ${id}`)
    if (r.error !== undefined) throw new Error(r.error)
    return r.value as T
  }

  hasReplied (id: number): boolean { return this.replies.has(id) }

  async command<T> (command: string, args: Record<string, unknown> = {}): Promise<T> {
    return await this.reply<T>(this.send(command, args))
  }

  /** Kills the child with SIGKILL (no chance to save or say goodbye) and waits for its exit. */
  async kill (): Promise<void> {
    this.expectExit = true
    this.child.kill('SIGKILL')
    await waitFor(() => this.exit, `${this.name} to die`)
  }

  /** Asks the peer to stop and checks that its process exits with status 0. */
  async stop (leave = false): Promise<void> {
    this.expectExit = true
    await this.command('stop', { leave })
    const exit = await waitFor(() => this.exit, `${this.name} to exit`)
    assert.deepEqual(exit, { code: 0, signal: null }, `${this.name} exit`)
  }
}

/** Resolves with the first value of `check` other than undefined; rejects on timeout or when a child exits unexpectedly. */
export async function waitFor<T> (check: () => T | undefined, what: string, timeoutMs = WAIT_MS): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)) }, timeoutMs)
    const done = (): void => { clearTimeout(timer); waiters.delete(evaluate) }
    const evaluate = (): void => {
      const crashed = [...everyPeer].find(p => p.exit !== undefined && !p.expectExit)
      if (crashed !== undefined) { done(); reject(new Error(`${crashed.name} exited unexpectedly (${JSON.stringify(crashed.exit)}) while waiting for ${what}`)); return }
      const value = check()
      if (value !== undefined) { done(); resolve(value) }
    }
    waiters.add(evaluate)
    evaluate()
  })
}

/** The common state once every peer of `peers` reports it with nothing outstanding, exactly `peers` as participants and `check` true. */
export async function converged (peers: PeerProcess[], what: string, check: (s: ReportedState) => boolean = () => true, timeoutMs = WAIT_MS): Promise<ReportedState> {
  const ids = peers.map(p => p.self).sort()
  return await waitFor(() => {
    const first = peers[0]?.state
    if (first === undefined) return undefined
    const agree = peers.every(p => p.state !== undefined && p.state.outstanding === 0 &&
      p.state.infimumId === first.infimumId &&
      JSON.stringify(p.state.participants) === JSON.stringify(ids) &&
      p.state.infimumHash === first.infimumHash)
    return agree && check(first) ? first : undefined
  }, `${peers.map(p => p.name).join(', ')} to converge (${what})`, timeoutMs)
}

let clusters = 0
/** A cluster name no other test of this process uses. */
export function uniqueClusterName (prefix: string): string {
  return `${prefix}-${process.pid}-${++clusters}`
}

/**
 * Starts `size` peers named A, B, C..., the first founding the cluster and the others joining
 * through it at once; waits for them to converge. `env(i)` adds to peer i's environment.
 */
export async function startCluster (t: { after: (fn: () => void) => void }, size: number,
  env: (i: number) => Partial<PeerEnv> = () => ({})): Promise<PeerProcess[]> {
  const cluster = uniqueClusterName('processes')
  t.after(() => { killAll() })
  const founder = await new PeerProcess('A', { ...env(0), cluster }).ready()
  const joiners = await Promise.all(Array.from({ length: size - 1 }, async (_, i) =>
    await new PeerProcess(String.fromCharCode(66 + i), { ...env(i + 1), cluster, join: founder.address }).ready()))
  const peers = [founder, ...joiners]
  await converged(peers, 'after the joins', () => true, START_MS)
  return peers
}

/** Kills every child still running. */
export function killAll (): void {
  for (const p of everyPeer) {
    if (p.exit === undefined) { p.expectExit = true; p.child.kill('SIGKILL') }
    everyPeer.delete(p)
  }
}
after(killAll)
process.on('exit', killAll)

/** One `applyConsistent` of a {@link Load}, and how it ended. */
export interface LoadCall {
  /** Name of the peer it was sent to. */
  readonly peer: string
  /** The event (unique). */
  readonly event: string
  /** When it was sent (ms since the epoch). */
  readonly sentAt: number
  /** When it settled, if it did. */
  settledAt?: number
  /** The consistent output (the event's index in the log), if it resolved. */
  output?: number
  /** The error's name if it rejected: `ConsistencyTimeoutError`, `EjectedError`, `PeerExited`... */
  error?: string
}

/**
 * Client load: one loop per peer sending `applyConsistent` of unique events, one at a time,
 * `paceMs` apart (load shaping, not synchronisation: it bounds the log's growth). A loop
 * follows its peer across restarts: `current()` names the process that is that peer now.
 */
export class Load {
  readonly calls: LoadCall[] = []
  private running = true
  private readonly loops: Array<Promise<void>> = []

  constructor (private readonly options: { timeoutMs: number, paceMs: number, group?: string }) {}

  /** Starts a loop for the peer whose current process `current()` returns. */
  add (name: string, current: () => PeerProcess): void {
    this.loops.push(this.loop(name, current))
  }

  private async loop (name: string, current: () => PeerProcess): Promise<void> {
    for (let i = 1; this.running; i++) {
      // A killed peer: wait (bounded) for its replacement to be up, or for the load to halt.
      const p = await waitFor(() => {
        if (!this.running) return null
        const q = current()
        return q.exit === undefined && q.self !== '' ? q : undefined
      }, `${name} to be up`, 2 * WAIT_MS)
      if (p === null) return
      const call: LoadCall = { peer: name, event: `${name}-${this.options.group ?? ''}${i}`, sentAt: Date.now() }
      this.calls.push(call)
      try {
        call.output = await p.reply<number>(p.send('applyConsistent', { event: call.event, timeoutMs: this.options.timeoutMs, ...(this.options.group !== undefined ? { group: this.options.group } : {}) }), this.options.timeoutMs + WAIT_MS)
      } catch (err) {
        call.error = (err as Error).message.split(':')[0]
      }
      call.settledAt = Date.now()
      recheck() // conditions on the load's outcomes are waited for too
      await new Promise(resolve => setTimeout(resolve, this.options.paceMs))
    }
  }

  /** Stops sending and waits until every call in flight has settled (each has a deadline). */
  async stop (): Promise<void> {
    this.halt()
    await Promise.all(this.loops)
  }

  /**
   * Stops sending without waiting: for a test's `after` hook, so that a test that failed
   * early leaves no loop waiting for its (killed) peers and failing after the test ended.
   */
  halt (): void {
    this.running = false
    recheck()
  }

  /** The calls that resolved. */
  resolved (): LoadCall[] {
    return this.calls.filter(c => c.output !== undefined)
  }

  /** How many calls of `peer` sent at or after `since` ended as `outcome` ('resolved' or an error name). */
  count (peer: string, since: number, outcome: string): number {
    return this.calls.filter(c => c.peer === peer && c.sentAt >= since &&
      (outcome === 'resolved' ? c.output !== undefined : c.error === outcome)).length
  }
}

/** What each peer reported and how its calls since `since` ended: for a failed wait's message. */
export function whatEachSaw (peers: PeerProcess[], load: Load, since: number): string {
  const short = (id: string): string => id.slice(-6)
  return peers.map(p => {
    const outcomes = new Map<string, number>()
    for (const c of load.calls) {
      if (c.peer !== p.name || c.sentAt < since) continue
      const outcome = c.output !== undefined ? 'resolved' : c.error ?? 'pending'
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    }
    const s = p.state
    return `${p.name} (${short(p.self)}): participants ${s?.participants.map(short).join(',') ?? '?'}, outstanding ${s?.outstanding ?? '?'}, infimum ${s?.infimumLength ?? '?'}, calls ${JSON.stringify(Object.fromEntries(outcomes))}`
  }).join('; ')
}

/** Counters that grow in every healthy run: left out of {@link whatEachCounted} unless kept. */
const COUNTED_ALWAYS = new Set(['eventsApplied', 'eventsFolded', 'diffMerges', 'heartbeatsSent', 'bytesIn', 'bytesOut', 'messagesIn', 'messagesOut', 'outputsForwarded', 'acknowledgementsRode', 'acknowledgementsDelayed'])

/** Each peer's own account of why it may not fold (stats: stuck, suspected, refusals): for a failed wait's message. */
export async function whatEachCounted (peers: PeerProcess[]): Promise<string> {
  const keep = ['mergeRefusals', 'droppedForged', 'droppedNonParticipant', 'droppedDenied', 'syncsRequested', 'syncsServed', 'fullMerges', 'divergences', 'autoEjections', 'timesEjected', 'rejoins']
  const each = await Promise.all(peers.map(async p => {
    try {
      const s = await p.command<LegionStats>('stats')
      const all = s.counters as unknown as Record<string, number>
      // The usual suspects always, every other counter when it is not zero.
      const counters = Object.fromEntries(Object.keys(all).filter(k => keep.includes(k) || (all[k] !== 0 && !COUNTED_ALWAYS.has(k))).map(k => [k, all[k]]))
      return `${p.name}: ${JSON.stringify({ membership: s.membership, infimum: s.infimumId, stuck: s.stuck, suspected: s.suspected, divergent: s.divergent, counters })}`
    } catch (err) {
      return `${p.name}: no stats (${(err as Error).message})`
    }
  }))
  return each.join('; ')
}

/** Each peer's fold of `group` (the cluster's when not given), as the child's `foldDump` describes it: for a failing test to say why a fold stalled. */
export async function whatEachHolds (peers: PeerProcess[], group?: string): Promise<string> {
  const each = await Promise.all(peers.map(async p => {
    try {
      return `${p.name}: ${JSON.stringify(await p.command('foldDump', group === undefined ? {} : { group }))}`
    } catch (err) {
      return `${p.name}: no fold (${(err as Error).message})`
    }
  }))
  return `folds${group === undefined ? '' : ` of ${group}`}: ${each.join('; ')}`
}
