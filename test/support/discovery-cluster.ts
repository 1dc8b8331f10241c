/**
 * Harness of the discovery fault tests and of bench/election.ts: peers of
 * `discovery-peer.ts` as child processes on TCP loopback, a log of every holder run they report
 * (start, stop, or the kill that ended it), the fenced resource their writes go to, and the
 * measures of overlap. Every wait is for a reported line, with a deadline; nothing sleeps to
 * synchronise. The caller kills every child when done (`killAll`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { FailureDetectionOptions } from '../../src/peer/options.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const childScript = fileURLToPath(new URL('./discovery-peer.ts', import.meta.url))

/** One holder run as the peers report it; `end` is its stop report or the kill. */
export interface HolderRun {
  readonly peer: string
  readonly name: string
  readonly token: string
  readonly start: number
  end: number | undefined
}

/** A write the fenced resource received. */
export interface FencedWrite {
  readonly peer: string
  readonly token: string
  readonly at: number
  readonly admitted: boolean
}

/** How children start. */
export interface ChildOptions {
  readonly failureDetection?: FailureDetectionOptions
  readonly writeEveryMs?: number
}

/** Tokens `counter:participant` in fold order. */
export function compareTokens (a: string, b: string): number {
  const [ca, pa] = splitToken(a)
  const [cb, pb] = splitToken(b)
  return ca !== cb ? ca - cb : pa < pb ? -1 : pa > pb ? 1 : 0
}

function splitToken (t: string): [number, string] {
  const i = t.indexOf(':')
  return [Number(t.slice(0, i)), t.slice(i + 1)]
}

/** The longest time two different peers both ran the same name (0: never). */
export function longestOverlap (runs: readonly HolderRun[], now: number): number {
  let worst = 0
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const a = runs[i]!
      const b = runs[j]!
      if (a.peer === b.peer || a.name !== b.name) continue
      const overlap = Math.min(a.end ?? now, b.end ?? now) - Math.max(a.start, b.start)
      if (overlap > worst) worst = overlap
    }
  }
  return worst
}

/** A cluster of child processes; see the module comment. */
export class DiscoveryCluster {
  readonly children: DiscoveryChild[] = []
  readonly runs: HolderRun[] = []
  readonly writes: FencedWrite[] = []
  /** The highest token the resource admitted, per name. */
  private readonly highest = new Map<string, string>()
  private readonly waiters = new Set<() => void>()
  private count = 0

  constructor (readonly cluster: string, private readonly options: ChildOptions) {}

  /** Starts a child: the founder if none runs, else joining through `via` (default: the first one alive). */
  async add (via?: DiscoveryChild): Promise<DiscoveryChild> {
    const through = via ?? this.alive()[0]
    const child = new DiscoveryChild(`P${++this.count}`, this, this.cluster, this.options, through?.address)
    this.children.push(child)
    await this.waitFor(() => child.self !== '' || undefined, `${child.name} to start`, 30_000)
    return child
  }

  /** The children not killed or stopped. */
  alive (): DiscoveryChild[] {
    return this.children.filter(c => c.exit === undefined && !c.killed)
  }

  /** The runs going on now. */
  running (name: string): HolderRun[] {
    return this.runs.filter(r => r.name === name && r.end === undefined)
  }

  /** Kills `child` with SIGKILL; its runs end now. */
  async kill (child: DiscoveryChild): Promise<number> {
    const at = performance.timeOrigin + performance.now()
    child.killed = true
    child.process.kill('SIGKILL')
    for (const r of this.runs) if (r.peer === child.self && r.end === undefined) r.end = at
    await this.waitFor(() => child.exit, `${child.name} to die`)
    return at
  }

  /** Resolves with the first value of `check` other than undefined, re-checked on every line; rejects after `timeoutMs` or when a child dies unasked. */
  async waitFor<T> (check: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      const done = (): void => { clearTimeout(timer); this.waiters.delete(evaluate) }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)) }, timeoutMs)
      const evaluate = (): void => {
        const dead = this.children.find(c => c.exit !== undefined && !c.killed && !c.stopping)
        if (dead !== undefined) { done(); reject(new Error(`${dead.name} exited unexpectedly (${JSON.stringify(dead.exit)}) while waiting for ${what}`)); return }
        const v = check()
        if (v !== undefined) { done(); resolve(v) }
      }
      this.waiters.add(evaluate)
      evaluate()
    })
  }

  /** Called by children on every line. */
  recheck (): void {
    for (const w of [...this.waiters]) w()
  }

  /** A child reported a run starting, stopping, or a write. */
  report (child: DiscoveryChild, m: { type: string, name: string, token: string, at: number }): void {
    if (m.type === 'run') this.runs.push({ peer: child.self, name: m.name, token: m.token, start: m.at, end: undefined })
    if (m.type === 'stopped') {
      const r = this.runs.find(x => x.peer === child.self && x.name === m.name && x.token === m.token && x.end === undefined)
      if (r !== undefined) r.end = m.at
    }
    if (m.type === 'write') {
      const seen = this.highest.get(m.name)
      const admitted = seen === undefined || compareTokens(m.token, seen) >= 0
      if (admitted) this.highest.set(m.name, m.token)
      this.writes.push({ peer: child.self, token: m.token, at: m.at, admitted })
    }
  }

  /** Kills every child still running. */
  killAll (): void {
    for (const c of this.children) if (c.exit === undefined) { c.killed = true; c.process.kill('SIGKILL') }
  }
}

/** One child process. */
export class DiscoveryChild {
  readonly process: ChildProcess
  self = ''
  address = ''
  exit: { code: number | null, signal: NodeJS.Signals | null } | undefined
  killed = false
  stopping = false
  /** The latest membership it reported. */
  members: { members: number, membership: string } = { members: 0, membership: 'starting' }
  /** Every membership report, with its time. */
  readonly memberReports: Array<{ members: number, membership: string, at: number }> = []
  /** Registrations seen by this child's watchers: `<name>:<key>` to time. */
  readonly seen = new Map<string, number>()
  private nextId = 1
  private readonly replies = new Map<number, { value?: unknown, error?: string }>()

  constructor (readonly name: string, private readonly owner: DiscoveryCluster, cluster: string, options: ChildOptions, join: string | undefined) {
    this.process = spawn(process.execPath, ['--import', 'tsx', childScript], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, LEGION_CLUSTER: cluster, LEGION_OPTIONS: JSON.stringify(options), ...(join !== undefined ? { LEGION_JOIN: join } : {}) }
    })
    createInterface({ input: this.process.stdout! }).on('line', line => {
      const m = JSON.parse(line) as { type: string } & Record<string, unknown>
      if (m.type === 'ready') { this.self = m.self as string; this.address = m.address as string }
      if (m.type === 'reply') this.replies.set(m.id as number, m as { value?: unknown, error?: string })
      if (m.type === 'seen') this.seen.set(`${m.name as string}:${m.key as string}`, m.at as number)
      if (m.type === 'members') {
        this.members = { members: m.members as number, membership: m.membership as string }
        this.memberReports.push({ ...this.members, at: m.at as number })
      }
      if (m.type === 'run' || m.type === 'stopped' || m.type === 'write') owner.report(this, m as unknown as { type: string, name: string, token: string, at: number })
      owner.recheck()
    })
    this.process.on('exit', (code, signal) => { this.exit = { code, signal }; owner.recheck() })
    this.process.stdin!.on('error', () => {})
  }

  /** Sends a command and waits for its answer. */
  async command<T> (command: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++
    this.process.stdin!.write(JSON.stringify({ id, command, ...args }) + '\n')
    const r = await this.owner.waitFor(() => this.replies.get(id) ?? (this.exit !== undefined ? { error: `${this.name} exited` } : undefined), `${this.name} to answer ${command}`, timeoutMs)
    if (r.error !== undefined) throw new Error(r.error)
    return r.value as T
  }

  /** Stops the peer (leaving, by default) and waits for the process to exit. */
  async stop (leave = true): Promise<void> {
    this.stopping = true
    await this.command('stop', { leave })
    await this.owner.waitFor(() => this.exit, `${this.name} to exit`)
  }
}
