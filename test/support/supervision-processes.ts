/**
 * Harness of the supervision fault tests and of bench/supervision-cluster.ts: peers of
 * `supervision-process.ts` as child processes on TCP loopback (bundled once into plain
 * JavaScript with esbuild, as test/support/process-cluster.ts does, since starting under tsx
 * is what made starts slow on a loaded machine), a log of every run and every server `init`
 * they report, and waits on those reports. Every wait is for a reported line, with a deadline;
 * nothing sleeps to synchronise. `killAll` runs when the caller is done and on process exit.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { buildSync } from 'esbuild'
import type { FailureDetectionOptions } from '../../src/peer/options.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const childSource = fileURLToPath(new URL('./supervision-process.ts', import.meta.url))

let childProgram: string | undefined
/** The child program, bundled once per process (dependencies stay external). */
function program (): string {
  if (childProgram !== undefined) return childProgram
  const dir = join(root, 'node_modules', '.cache', 'legion-test')
  mkdirSync(dir, { recursive: true })
  const out = join(dir, `supervision-process-${process.pid}-${randomBytes(4).toString('hex')}.mjs`)
  buildSync({ entryPoints: [childSource], outfile: out, bundle: true, platform: 'node', format: 'esm', packages: 'external', target: 'node20', logLevel: 'error' })
  process.on('exit', () => { rmSync(out, { force: true }) })
  childProgram = out
  return out
}

/** A run of a child on a peer, as reported; `end` is its stop report or the kill. */
export interface ProcessRun { readonly peer: string, readonly child: string, readonly token: string, readonly start: number, end: number | undefined }

/** Starts of a server, as reported. */
export interface ProcessInit { readonly peer: string, readonly child: string, readonly at: number }

/** The time on this host's clock, comparable with the children's `at`. */
export const now = (): number => performance.timeOrigin + performance.now()

/** A cluster of child processes; see the module comment. */
export class SupervisionCluster {
  readonly children: SupervisionChild[] = []
  readonly runs: ProcessRun[] = []
  readonly inits: ProcessInit[] = []
  private readonly waiters = new Set<() => void>()
  private count = 0

  constructor (readonly cluster: string, private readonly options: { failureDetection?: FailureDetectionOptions }) {
    process.on('exit', () => { this.killAll() })
  }

  /** Starts a child: the founder if none runs, else joining through `via` (default: the first alive). */
  async add (via?: SupervisionChild): Promise<SupervisionChild> {
    const through = via ?? this.alive()[0]
    const child = new SupervisionChild(`P${++this.count}`, this, program(), this.cluster, this.options, through?.address)
    this.children.push(child)
    await this.waitFor(() => child.self !== '' || undefined, `${child.name} to start`, 60_000)
    return child
  }

  /** Starts `n` peers (the first founds, the others join through it) and waits until each sees all. */
  async start (n: number): Promise<SupervisionChild[]> {
    const founder = await this.add()
    await Promise.all(Array.from({ length: n - 1 }, async () => await this.add(founder)))
    await this.waitFor(() => this.alive().every(c => c.members === n) || undefined, `${n} members everywhere`, 60_000)
    return this.alive()
  }

  /** The children not killed or stopped. */
  alive (): SupervisionChild[] {
    return this.children.filter(c => c.exit === undefined && !c.killed)
  }

  /** The runs of `child` going on now. */
  running (child: string): ProcessRun[] {
    return this.runs.filter(r => r.child === child && r.end === undefined)
  }

  /** The process that runs `child` now, waiting for one (other than `except`) that started at or after `after`. */
  async holder (child: string, except: ReadonlySet<string> = new Set(), after = 0, timeoutMs = 60_000): Promise<{ child: SupervisionChild, run: ProcessRun }> {
    const run = await this.waitFor(() => this.running(child).find(r => !except.has(r.peer) && r.start >= after), `a holder of ${child}`, timeoutMs)
    return { child: this.children.find(c => c.self === run.peer)!, run }
  }

  /** Kills `child` with SIGKILL; its runs end now. Resolves with the time of the kill. */
  async kill (child: SupervisionChild): Promise<number> {
    const at = now()
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

  /** A child reported something. */
  report (child: SupervisionChild, m: Record<string, unknown>): void {
    if (m.type === 'run') this.runs.push({ peer: child.self, child: m.child as string, token: m.token as string, start: m.at as number, end: undefined })
    if (m.type === 'stopped') {
      const r = this.runs.find(x => x.peer === child.self && x.child === m.child && x.token === m.token && x.end === undefined)
      if (r !== undefined) r.end = m.at as number
    }
    if (m.type === 'init') this.inits.push({ peer: child.self, child: m.child as string, at: m.at as number })
  }

  /** The longest time two different peers both ran `child` (0: never). */
  overlap (child: string): number {
    const runs = this.runs.filter(r => r.child === child)
    let worst = 0
    for (const a of runs) {
      for (const b of runs) {
        if (a === b || a.peer === b.peer) continue
        worst = Math.max(worst, Math.min(a.end ?? now(), b.end ?? now()) - Math.max(a.start, b.start))
      }
    }
    return worst
  }

  /** Kills every child still running. */
  killAll (): void {
    for (const c of this.children) if (c.exit === undefined) { c.killed = true; c.process.kill('SIGKILL') }
  }
}

/** One child process. */
export class SupervisionChild {
  readonly process: ChildProcess
  self = ''
  address = ''
  members = 0
  /** When it reported each member count, in order. */
  readonly memberReports: Array<{ members: number, at: number }> = []
  exit: { code: number | null, signal: NodeJS.Signals | null } | undefined
  killed = false
  stopping = false
  private nextId = 1
  private readonly replies = new Map<number, { value?: unknown, error?: string }>()

  constructor (readonly name: string, private readonly owner: SupervisionCluster, script: string, cluster: string, options: object, join: string | undefined) {
    this.process = spawn(process.execPath, [script], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, LEGION_CLUSTER: cluster, LEGION_OPTIONS: JSON.stringify(options), ...(join !== undefined ? { LEGION_JOIN: join } : {}) }
    })
    createInterface({ input: this.process.stdout! }).on('line', line => {
      const m = JSON.parse(line) as Record<string, unknown>
      if (m.type === 'ready') { this.self = m.self as string; this.address = m.address as string }
      if (m.type === 'reply') this.replies.set(m.id as number, m as { value?: unknown, error?: string })
      if (m.type === 'members') { this.members = m.members as number; this.memberReports.push({ members: this.members, at: m.at as number }) }
      owner.report(this, m)
      owner.recheck()
    })
    this.process.on('exit', (code, signal) => { this.exit = { code, signal }; owner.recheck() })
    this.process.stdin!.on('error', () => {})
  }

  /** Sends a command and waits for its answer; rejects with the child's `<name>: <message>`. */
  async command<T> (command: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++
    this.process.stdin!.write(JSON.stringify({ id, command, ...args }) + '\n')
    const r = await this.owner.waitFor(() => this.replies.get(id) ?? (this.exit !== undefined ? { error: `PeerExited: ${this.name} exited` } : undefined), `${this.name} to answer ${command}`, timeoutMs)
    if (r.error !== undefined) throw new Error(r.error)
    return r.value as T
  }
}
