/**
 * A benchmark child process driven by a JSON-lines protocol: each command is one line
 * `{ id, cmd, ...args }` on its stdin, each reply one line `{ id, ok, ... }` on its stdout
 * (other stdout lines are passed through to stderr). Shared by bench/runtime.ts and
 * bench/convergence.ts. Every live child is killed when the parent exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

/** A reply line, as parsed. */
export type Reply = Record<string, unknown>

const children = new Set<ChildProcess>()

/** Kills every child still running (SIGKILL); for the parent's exit and signal handlers. */
export function killChildren (): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}

export class CommandProcess {
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (r: Reply) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  #nextId = 1
  #exited: Error | undefined

  /**
   * Starts `node [nodeFlags] --import tsx <script>` with NODE_ENV defaulting to production;
   * with `cpuProfDir`, the child writes a CPU profile under `<cpuProfDir>/<name>`.
   */
  constructor (readonly name: string, script: string, nodeFlags: readonly string[], cpuProfDir?: string) {
    const prof = cpuProfDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}/${name}`] : []
    this.#child = spawn(process.execPath, [...prof, ...nodeFlags, '--import', 'tsx', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'production' }
    })
    children.add(this.#child)
    createInterface({ input: this.#child.stdout! }).on('line', line => {
      let message: Reply
      try { message = JSON.parse(line) as Reply } catch { process.stderr.write(`[${name}] ${line}\n`); return }
      const pending = this.#pending.get(Number(message.id))
      if (pending === undefined) return
      this.#pending.delete(Number(message.id))
      clearTimeout(pending.timer)
      if (message.ok === true) pending.resolve(message)
      else pending.reject(new Error(`${name}: ${String(message.error)}`))
    })
    this.#child.on('exit', (code, signal) => {
      children.delete(this.#child)
      this.#exited = new Error(`${name} exited (${signal ?? code})`)
      for (const p of this.#pending.values()) { clearTimeout(p.timer); p.reject(this.#exited) }
      this.#pending.clear()
    })
  }

  /** Sends `{ id, cmd, ...args }` and waits up to `waitMs` for its reply. */
  async send (cmd: string, args: Record<string, unknown>, waitMs: number): Promise<Reply> {
    if (this.#exited !== undefined) throw this.#exited
    const id = this.#nextId++
    return await new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject(new Error(`${this.name}: no reply to ${cmd} within ${waitMs} ms`)) }, waitMs)
      this.#pending.set(id, { resolve, reject, timer })
      this.#child.stdin!.write(JSON.stringify({ id, cmd, ...args }) + '\n')
    })
  }

  /** Kills the child at once, if it is still running. */
  kill (): void {
    if (this.#exited === undefined) this.#child.kill('SIGKILL')
  }

  /**
   * Sends `cmd` (which makes the child exit) and waits for the exit; kills the child if it
   * has not exited `killAfterMs` after the command was sent.
   */
  async exitWith (cmd: string, replyMs: number, killAfterMs: number): Promise<void> {
    if (this.#exited !== undefined) return
    const exited = new Promise<void>(resolve => { this.#child.once('exit', () => { resolve() }) })
    const timer = setTimeout(() => { this.#child.kill('SIGKILL') }, killAfterMs)
    await this.send(cmd, {}, replyMs).catch(() => {})
    await exited
    clearTimeout(timer)
  }
}

/**
 * The child side of the protocol: reads commands from stdin, answers each with `handle`'s
 * result (or its error), exits after answering `exitCommand`, and runs `onClose` (then exits)
 * when stdin closes, that is when the parent is gone.
 */
export function serveCommands<C extends { readonly id: unknown, readonly cmd: string }> (
  handle: (command: C) => Promise<Record<string, unknown>>, exitCommand: string, onClose: () => Promise<unknown>
): void {
  const write = (message: Record<string, unknown>): void => { process.stdout.write(JSON.stringify(message) + '\n') }
  const lines = createInterface({ input: process.stdin })
  lines.on('line', line => {
    let c: C
    try { c = JSON.parse(line) as C } catch { return }
    handle(c).then(
      result => {
        write({ id: c.id, ok: true, ...result })
        if (c.cmd === exitCommand) process.exit(0)
      },
      (err: unknown) => { write({ id: c.id, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }) }
    )
  })
  lines.on('close', () => { void onClose().finally(() => process.exit(0)) })
}
