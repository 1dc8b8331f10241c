/**
 * The recent changes the status page and `GET /changes` show: a bounded journal of what this
 * peer saw happen (members added and removed, peers becoming suspected or stuck and
 * recovering, links between two members breaking and healing, this peer's own phase and
 * health, new partition table versions) and what
 * operators did through the admin endpoint. The fold keeps no history, so this is one peer's
 * memory since it started, not the cluster's: it is lost on restart and may differ per peer.
 *
 * {@link ChangeJournal.observe} compares a {@link Snapshot} with the previous one and records
 * the differences; it is pure apart from the wall clock it is given, so tests feed it snapshots.
 *
 * @module
 */
import type { Participant } from '../eventfold/types.js'

/** What a change is about. */
export type ChangeKind =
  | 'member-added'
  | 'member-removed'
  | 'suspected'
  | 'unsuspected'
  | 'stuck'
  | 'unstuck'
  | 'link-broken'
  | 'link-restored'
  | 'phase'
  | 'health'
  | 'partition-table'
  | 'operator'

/** One recorded change. */
export interface Change {
  /** Increases by one per change: `GET /changes?after=<seq>` returns the newer ones. */
  readonly seq: number
  /** When this peer noticed it, as an ISO-8601 time. */
  readonly at: string
  /** What it is about. */
  readonly kind: ChangeKind
  /** The peer concerned, when one is. */
  readonly peer?: Participant
  /** For people. */
  readonly message: string
}

/** What the journal compares from one observation to the next. */
export interface Snapshot {
  readonly phase: string
  readonly members: readonly Participant[]
  readonly suspected: readonly Participant[]
  readonly stuck: readonly Participant[]
  /** Broken links between two other members (`stats().brokenLinks`), each pair sorted. */
  readonly brokenLinks: ReadonlyArray<readonly [Participant, Participant]>
  readonly health: string
  /** The partition table's version, when the cluster's state is one. */
  readonly tableVersion: number | undefined
}

/** The journal; see the module comment. */
export class ChangeJournal {
  private readonly entries: Change[] = []
  private seq = 0
  private last: Snapshot | undefined

  constructor (private readonly capacity: number, private readonly wallNow: () => number) {}

  /** Records an operator's action (an ejection, a commit, a leave). */
  record (kind: ChangeKind, message: string, peer?: Participant): void {
    const change: Change = { seq: ++this.seq, at: new Date(this.wallNow()).toISOString(), kind, message, ...(peer !== undefined ? { peer } : {}) }
    this.entries.push(change)
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity)
  }

  /** Compares `now` with the previous snapshot and records what changed (nothing the first time). */
  observe (now: Snapshot): void {
    const before = this.last
    this.last = now
    if (before === undefined) return
    if (before.phase !== now.phase) this.record('phase', `this peer is now ${now.phase} (was ${before.phase})`)
    for (const p of added(before.members, now.members)) this.record('member-added', `${p} joined`, p)
    for (const p of added(now.members, before.members)) this.record('member-removed', `${p} left or was ejected`, p)
    const members = new Set(now.members)
    for (const p of added(before.suspected, now.suspected)) this.record('suspected', `${p} is suspected (silent)`, p)
    for (const p of added(now.suspected, before.suspected)) if (members.has(p)) this.record('unsuspected', `${p} is heard from again`, p)
    for (const p of added(before.stuck, now.stuck)) this.record('stuck', `${p} is stuck (not acknowledging)`, p)
    for (const p of added(now.stuck, before.stuck)) if (members.has(p)) this.record('unstuck', `${p} acknowledges again`, p)
    const linksBefore = new Set(before.brokenLinks.map(l => l.join(' and ')))
    const linksNow = new Set(now.brokenLinks.map(l => l.join(' and ')))
    for (const l of linksNow) if (!linksBefore.has(l)) this.record('link-broken', `${l} cannot reach each other (a broken link; both reach this peer)`)
    // A link gone with one of its ends is that end's removal, recorded above.
    for (const [a, b] of before.brokenLinks) if (!linksNow.has(`${a} and ${b}`) && members.has(a) && members.has(b)) this.record('link-restored', `${a} and ${b} reach each other again`)
    if (before.health !== now.health) this.record('health', now.health === 'ok' ? 'no peer reports this one stuck any more' : 'peers report this one stuck')
    if (now.tableVersion !== undefined && before.tableVersion !== now.tableVersion) {
      this.record('partition-table', `partition table version ${now.tableVersion}${before.tableVersion !== undefined ? ` (was ${before.tableVersion})` : ''}`)
    }
  }

  /** The changes after `seq` (all kept ones by default), oldest first. */
  after (seq = 0): Change[] {
    return this.entries.filter(c => c.seq > seq)
  }

  /** The newest sequence number. */
  get latest (): number {
    return this.seq
  }
}

/** What is in `b` and not in `a`. */
function added (a: readonly Participant[], b: readonly Participant[]): Participant[] {
  const had = new Set(a)
  return b.filter(p => !had.has(p))
}
