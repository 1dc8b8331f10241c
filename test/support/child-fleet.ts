/**
 * The parent side of the test harness's process protocol (the child side is
 * `child-commands.ts`): peer scripts of test/support bundled into plain JavaScript once per test
 * process, started as child processes on TCP loopback, their JSON lines read, commands sent and
 * answered, and waits on what they report. Every wait is for a reported line, with a deadline;
 * nothing sleeps to synchronise. The discovery and supervision fault harnesses are fleets of
 * their own children; test/support/process-cluster.ts uses the bundling.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { buildSync } from 'esbuild'

const root = fileURLToPath(new URL('../..', import.meta.url))

/**
 * The child program `script` (a file of test/support), bundled once per test process into plain
 * JavaScript with esbuild (dependencies stay external, resolved from the project's
 * node_modules). Under `tsx` every child transpiled the project on start: about 1.5 s on a quiet
 * machine, over 20 s with three test suites at once, which was most of the "waiting for A to
 * start" timeouts; plain node starts in about half the time and CPU. The bundle lives under
 * node_modules/.cache (so its imports resolve) and is removed when this process exits.
 */
export function bundled (script: string): string {
  const known = programs.get(script)
  if (known !== undefined) return known
  const dir = join(root, 'node_modules', '.cache', 'legion-test')
  mkdirSync(dir, { recursive: true })
  const out = join(dir, `${script.replace(/\.ts$/, '')}-${process.pid}-${randomBytes(4).toString('hex')}.mjs`)
  buildSync({ entryPoints: [fileURLToPath(new URL(`./${script}`, import.meta.url))], outfile: out, bundle: true, platform: 'node', format: 'esm', packages: 'external', target: 'node20', logLevel: 'error' })
  process.on('exit', () => { rmSync(out, { force: true }) })
  programs.set(script, out)
  return out
}
const programs = new Map<string, string>()

/** The time on this host's clock, comparable with the children's `at`. */
export const now = (): number => performance.timeOrigin + performance.now()

/** How a child process ended. */
export interface ChildExit { readonly code: number | null, readonly signal: NodeJS.Signals | null }

/** A fleet of child processes: the children, and waits on what they report. */
export class Fleet<C extends FleetChild> {
  readonly children: C[] = []
  private readonly waiters = new Set<() => void>()

  /** The children not killed or stopped. */
  alive (): C[] {
    return this.children.filter(c => c.exit === undefined && !c.killed)
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

  /** Called by children on every line and on exit. */
  recheck (): void {
    for (const w of [...this.waiters]) w()
  }

  /** Kills `child` with SIGKILL and waits for it to die. Resolves with the time of the kill. */
  async kill (child: C): Promise<number> {
    const at = now()
    child.killed = true
    child.process.kill('SIGKILL')
    this.killed(child, at)
    await this.waitFor(() => child.exit, `${child.name} to die`)
    return at
  }

  /** Kills every child still running. */
  killAll (): void {
    for (const c of this.children) if (c.exit === undefined) { c.killed = true; c.process.kill('SIGKILL') }
  }

  /** What a fleet records of a kill at `at` (e.g. the runs it ended). */
  protected killed (_child: C, _at: number): void {}
}

/** One child process of a {@link Fleet}. */
export abstract class FleetChild {
  readonly process: ChildProcess
  self = ''
  address = ''
  exit: ChildExit | undefined
  killed = false
  stopping = false
  private nextId = 1
  private readonly replies = new Map<number, { value?: unknown, error?: string }>()

  /** Starts `program` with `env` added to this process's environment. */
  constructor (readonly name: string, private readonly fleet: Fleet<FleetChild>, program: string, env: Record<string, string>) {
    this.process = spawn(process.execPath, [program], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } })
    createInterface({ input: this.process.stdout! }).on('line', line => {
      const m = JSON.parse(line) as { type: string } & Record<string, unknown>
      if (m.type === 'ready') { this.self = m.self as string; this.address = m.address as string }
      if (m.type === 'reply') this.replies.set(m.id as number, m as { value?: unknown, error?: string })
      this.line(m)
      fleet.recheck()
    })
    this.process.on('exit', (code, signal) => { this.exit = { code, signal }; fleet.recheck() })
    this.process.stdin!.on('error', () => {})
  }

  /** Sends a command and waits for its answer; rejects with the child's `<name>: <message>`. */
  async command<T> (command: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++
    this.process.stdin!.write(JSON.stringify({ id, command, ...args }) + '\n')
    const r = await this.fleet.waitFor(() => this.replies.get(id) ?? (this.exit !== undefined ? { error: `PeerExited: ${this.name} exited` } : undefined), `${this.name} to answer ${command}`, timeoutMs)
    if (r.error !== undefined) throw new Error(r.error)
    return r.value as T
  }

  /** Stops the peer (leaving, by default) and waits for the process to exit. */
  async stop (leave = true): Promise<void> {
    this.stopping = true
    await this.command('stop', { leave })
    await this.fleet.waitFor(() => this.exit, `${this.name} to exit`)
  }

  /** A line the child wrote (after `ready` and `reply` were taken care of). */
  protected abstract line (m: { type: string } & Record<string, unknown>): void
}
