/**
 * Harness of the supervision fault tests and of bench/supervision-cluster.ts: a fleet
 * (test/support/child-fleet.ts) of `supervision-process.ts` peers as child processes on TCP
 * loopback, a log of every run and every server `init` they report, and the overlap of runs.
 * `killAll` runs when the caller is done and on process exit.
 */
import type { FailureDetectionOptions } from '../../src/peer/options.js'
import { Fleet, FleetChild, bundled, now } from './child-fleet.js'

export { now }

/** A run of a child on a peer, as reported; `end` is its stop report or the kill. */
export interface ProcessRun { readonly peer: string, readonly child: string, readonly token: string, readonly start: number, end: number | undefined }

/** Starts of a server, as reported. */
export interface ProcessInit { readonly peer: string, readonly child: string, readonly at: number }

/** A cluster of child processes; see the module comment. */
export class SupervisionCluster extends Fleet<SupervisionChild> {
  readonly runs: ProcessRun[] = []
  readonly inits: ProcessInit[] = []
  private count = 0

  constructor (readonly cluster: string, private readonly options: { failureDetection?: FailureDetectionOptions }) {
    super()
    process.on('exit', () => { this.killAll() })
  }

  /** Starts a child: the founder if none runs, else joining through `via` (default: the first alive). */
  async add (via?: SupervisionChild): Promise<SupervisionChild> {
    const through = via ?? this.alive()[0]
    const child = new SupervisionChild(`P${++this.count}`, this, this.cluster, this.options, through?.address)
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

  /** The runs of `child` going on now. */
  running (child: string): ProcessRun[] {
    return this.runs.filter(r => r.child === child && r.end === undefined)
  }

  /** The process that runs `child` now, waiting for one (other than `except`) that started at or after `after`. */
  async holder (child: string, except: ReadonlySet<string> = new Set(), after = 0, timeoutMs = 60_000): Promise<{ child: SupervisionChild, run: ProcessRun }> {
    const run = await this.waitFor(() => this.running(child).find(r => !except.has(r.peer) && r.start >= after), `a holder of ${child}`, timeoutMs)
    return { child: this.children.find(c => c.self === run.peer)!, run }
  }

  /** A kill ends the child's runs at once. */
  protected override killed (child: SupervisionChild, at: number): void {
    for (const r of this.runs) if (r.peer === child.self && r.end === undefined) r.end = at
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
}

/** One child process. */
export class SupervisionChild extends FleetChild {
  members = 0
  /** When it reported each member count, in order. */
  readonly memberReports: Array<{ members: number, at: number }> = []

  constructor (name: string, private readonly owner: SupervisionCluster, cluster: string, options: object, join: string | undefined) {
    super(name, owner, bundled('supervision-process.ts'), { LEGION_CLUSTER: cluster, LEGION_OPTIONS: JSON.stringify(options), ...(join !== undefined ? { LEGION_JOIN: join } : {}) })
  }

  protected line (m: { type: string } & Record<string, unknown>): void {
    if (m.type === 'members') { this.members = m.members as number; this.memberReports.push({ members: this.members, at: m.at as number }) }
    this.owner.report(this, m)
  }
}
