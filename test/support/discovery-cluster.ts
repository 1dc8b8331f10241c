/**
 * Harness of the discovery fault tests and of bench/election.ts: a fleet
 * (test/support/child-fleet.ts) of `discovery-peer.ts` peers as child processes on TCP
 * loopback, a log of every holder run they report (start, stop, or the kill that ended it), the
 * fenced resource their writes go to, and the measures of overlap. The caller kills every
 * child when done (`killAll`).
 */
import type { FailureDetectionOptions } from '../../src/peer/options.js'
import { Fleet, FleetChild, bundled } from './child-fleet.js'

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
export class DiscoveryCluster extends Fleet<DiscoveryChild> {
  readonly runs: HolderRun[] = []
  readonly writes: FencedWrite[] = []
  /** The highest token the resource admitted, per name. */
  private readonly highest = new Map<string, string>()
  private count = 0

  constructor (readonly cluster: string, private readonly options: ChildOptions) {
    super()
  }

  /** Starts a child: the founder if none runs, else joining through `via` (default: the first one alive). */
  async add (via?: DiscoveryChild): Promise<DiscoveryChild> {
    const through = via ?? this.alive()[0]
    const child = new DiscoveryChild(`P${++this.count}`, this, this.cluster, this.options, through?.address)
    this.children.push(child)
    await this.waitFor(() => child.self !== '' || undefined, `${child.name} to start`, 30_000)
    return child
  }

  /** The runs going on now. */
  running (name: string): HolderRun[] {
    return this.runs.filter(r => r.name === name && r.end === undefined)
  }

  /** A kill ends the child's runs at once. */
  protected override killed (child: DiscoveryChild, at: number): void {
    for (const r of this.runs) if (r.peer === child.self && r.end === undefined) r.end = at
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
}

/** One child process. */
export class DiscoveryChild extends FleetChild {
  /** The latest membership it reported. */
  members: { members: number, membership: string } = { members: 0, membership: 'starting' }
  /** Every membership report, with its time. */
  readonly memberReports: Array<{ members: number, membership: string, at: number }> = []
  /** Registrations seen by this child's watchers: `<name>:<key>` to time. */
  readonly seen = new Map<string, number>()

  constructor (name: string, private readonly owner: DiscoveryCluster, cluster: string, options: ChildOptions, join: string | undefined) {
    super(name, owner, bundled('discovery-peer.ts'), { LEGION_CLUSTER: cluster, LEGION_OPTIONS: JSON.stringify(options), ...(join !== undefined ? { LEGION_JOIN: join } : {}) })
  }

  protected line (m: { type: string } & Record<string, unknown>): void {
    if (m.type === 'seen') this.seen.set(`${m.name as string}:${m.key as string}`, m.at as number)
    if (m.type === 'members') {
      this.members = { members: m.members as number, membership: m.membership as string }
      this.memberReports.push({ ...this.members, at: m.at as number })
    }
    if (m.type === 'run' || m.type === 'stopped' || m.type === 'write') this.owner.report(this, m as unknown as { type: string, name: string, token: string, at: number })
  }
}
