/**
 * The registry: what discovery and election agree on, as the pure `EventSpec` of one
 * cluster-wide group. Registrations (many per name), candidacies (a FIFO queue per name),
 * grants (at most one holder per name) and checkpoints are its state; a journal of recent
 * changes lets a watcher see every change in fold order. No I/O, no clock: every peer folds
 * the same events into the same state.
 *
 * Rules (docs/ARCHITECTURE.md, "Discovery and election"):
 * 1. An event acts for its creator only: the creator is the event id's participant (events are
 *    signed), so a peer can neither register nor stand nor resign in another's name.
 * 2. A name whose election has no holder grants the first candidate in the queue as soon as
 *    the group has at least the election's `minMembers` members; the grant's **fencing token**
 *    is the id of the event whose folding made it (a candidacy, a resignation, a Join, or the
 *    previous holder's UnJoin). Ids increase along the fold, so each name's tokens only grow.
 * 3. An UnJoin (leave or ejection, decided by the failure detector) removes the peer's
 *    registrations and candidacies and vacates what it held; the next candidate is granted by
 *    that same UnJoin.
 * 4. A checkpoint is accepted only from the current holder with its current token: a deposed
 *    holder's write folds as a `fenced` failure.
 * 5. Every change is journaled with the id of the event that made it true and a sequence
 *    number; the journal keeps the last `journalLength` changes.
 * 6. Malformed events (from plain JavaScript or a faulty peer) fold as `invalid` failures and
 *    change nothing; iteration is always in sorted order, so replicas whose states were built
 *    differently (locally, or decoded) still fold alike.
 *
 * @module
 */
import { BOTTOM, compareEventIds, type EventId, type EventSpec, type Participant } from '../eventfold/types.js'

/** Limits and the journal length: part of the spec, so every peer must use the same. */
export interface RegistrySettings {
  /** Changes kept in the journal. */
  readonly journalLength: number
  /** Longest name, in UTF-8 bytes. */
  readonly maxNameBytes: number
  /** Largest encoded metadata of a registration, in bytes. */
  readonly maxMetaBytes: number
  /** Largest encoded checkpoint, in bytes. */
  readonly maxCheckpointBytes: number
}

/** The longest local key of a registration (the part after the peer id), in bytes. */
export const MAX_LOCAL_KEY_BYTES = 128
/** The longest election kind, in bytes. */
export const MAX_KIND_BYTES = 256
/** The largest `minMembers` an election may ask for. */
export const MAX_MIN_MEMBERS = 10_000

/** One registration as the registry holds it. */
export interface RegistrationRecord {
  /** `<peer>/<local>`: unique in the name. */
  readonly key: string
  /** The registering peer. */
  readonly peer: Participant
  /** The peer's own key for it. */
  readonly local: string
  /** Metadata, encoded by the service's metadata codec. */
  readonly meta: Uint8Array
  /** `false` while drained: lookups leave it out unless asked. */
  readonly enabled: boolean
  /** The event that made this version of the registration true. */
  readonly since: EventId
}

/** A candidate in an election's queue. */
export interface CandidateRecord {
  /** The candidate peer. */
  readonly peer: Participant
  /** The candidacy's event: the queue is in this order. */
  readonly since: EventId
}

/** The current holder of a name. */
export interface GrantRecord {
  /** The holder. */
  readonly peer: Participant
  /** The fencing token: the id of the event that granted it. */
  readonly token: EventId
}

/** State a holder wrote through the fold for whoever holds the name next. */
export interface CheckpointRecord {
  /** The token of the holder that wrote it. */
  readonly token: EventId
  /** The checkpoint event's id. */
  readonly at: EventId
  /** The data, encoded by the service's checkpoint codec. */
  readonly data: Uint8Array
}

/** One name's election. */
export interface ElectionRecord {
  /** What the candidates run (their start function's fingerprint, or the kind they gave). */
  readonly kind: string
  /** Members the group must have before anyone is granted. */
  readonly minMembers: number
  /** Candidates in FIFO order (the holder is not among them). */
  readonly candidates: readonly CandidateRecord[]
  /** The holder, if any. */
  readonly holder: GrantRecord | null
  /** The latest checkpoint, if any (kept across holders). */
  readonly checkpoint: CheckpointRecord | null
}

/** Everything under one name. */
export interface NameRecord {
  /** Registrations, sorted by key. */
  readonly registrations: readonly RegistrationRecord[]
  /** The name's election, if anyone stands or stood. */
  readonly election: ElectionRecord | null
}

/** Fields every journaled change has. */
interface ChangeBase {
  /** Position in the journal: one more than the change before. */
  readonly seq: number
  /** The event that made the change. */
  readonly id: EventId
  /** The name it concerns. */
  readonly name: string
}

/** One journaled change. */
export type ChangeRecord =
  | (ChangeBase & { readonly kind: 'registered', readonly registration: RegistrationRecord })
  | (ChangeBase & { readonly kind: 'unregistered', readonly registration: RegistrationRecord, readonly cause: 'unregistered' | 'departed' })
  | (ChangeBase & { readonly kind: 'granted', readonly grant: GrantRecord })
  | (ChangeBase & { readonly kind: 'vacated', readonly grant: GrantRecord, readonly cause: 'resigned' | 'departed' })

/** The registry's replicated state. */
export interface RegistryState {
  /** The group's members, sorted (from its Join and UnJoin events). */
  readonly members: readonly Participant[]
  /** Every name with a registration or an election. Read with {@link nameRecord}. */
  readonly names: Readonly<Record<string, NameRecord>>
  /** Changes journaled since the registry began. */
  readonly changes: number
  /** The last changes, oldest first. */
  readonly journal: readonly ChangeRecord[]
}

/** The registry's events. */
export type RegistryEvent =
  | { readonly t: 'register', readonly name: string, readonly local: string, readonly meta: Uint8Array, readonly enabled: boolean }
  | { readonly t: 'unregister', readonly name: string, readonly local: string }
  | { readonly t: 'candidate', readonly name: string, readonly kind: string, readonly minMembers: number }
  | { readonly t: 'withdraw', readonly name: string, readonly requeue: boolean }
  | { readonly t: 'checkpoint', readonly name: string, readonly token: EventId, readonly data: Uint8Array }

/** What an event produced. Failures fold too, and change nothing. */
export type RegistryOutput =
  | { readonly ok: true }
  | { readonly ok: false, readonly error: 'invalid', readonly reason: string }
  | { readonly ok: false, readonly error: 'conflict', readonly kind: string, readonly minMembers: number }
  | { readonly ok: false, readonly error: 'fenced', readonly holder: GrantRecord | null }

/** The record of `name`, if any (never one inherited from `Object.prototype`). */
export function nameRecord (state: RegistryState, name: string): NameRecord | undefined {
  return Object.hasOwn(state.names, name) ? state.names[name] : undefined
}

/** The key of `peer`'s registration `local`. */
export function registrationKey (peer: Participant, local: string): string {
  return `${peer}/${local}`
}

const OK: RegistryOutput = Object.freeze({ ok: true })
const bytes = (s: string): number => Buffer.byteLength(s, 'utf8')

/** Why `name` is not a valid name, or `undefined`. */
export function invalidName (name: unknown, settings: RegistrySettings): string | undefined {
  if (typeof name !== 'string') return 'the name must be a string'
  if (name === '') return 'the name is empty'
  if (bytes(name) > settings.maxNameBytes) return `the name is longer than ${settings.maxNameBytes} bytes`
  return undefined
}

function invalidEvent (e: unknown, s: RegistrySettings): string | undefined {
  if (typeof e !== 'object' || e === null) return 'not an object'
  const ev = e as Record<string, unknown>
  const name = invalidName(ev.name, s)
  if (name !== undefined) return name
  const local = (): string | undefined => typeof ev.local !== 'string' || ev.local === '' || bytes(ev.local) > MAX_LOCAL_KEY_BYTES ? 'bad local key' : undefined
  switch (ev.t) {
    case 'register':
      if (!(ev.meta instanceof Uint8Array) || ev.meta.length > s.maxMetaBytes) return `metadata must be at most ${s.maxMetaBytes} encoded bytes`
      if (typeof ev.enabled !== 'boolean') return 'enabled must be a boolean'
      return local()
    case 'unregister':
      return local()
    case 'candidate':
      if (typeof ev.kind !== 'string' || ev.kind === '' || bytes(ev.kind) > MAX_KIND_BYTES) return 'bad election kind'
      if (!Number.isSafeInteger(ev.minMembers) || (ev.minMembers as number) < 1 || (ev.minMembers as number) > MAX_MIN_MEMBERS) return 'minMembers out of range'
      return undefined
    case 'withdraw':
      return typeof ev.requeue === 'boolean' ? undefined : 'requeue must be a boolean'
    case 'checkpoint': {
      const token = ev.token as Partial<EventId> | null | undefined
      if (typeof token !== 'object' || token === null || !Number.isSafeInteger(token.counter) || typeof token.participant !== 'string') return 'bad token'
      if (!(ev.data instanceof Uint8Array) || ev.data.length > s.maxCheckpointBytes) return `a checkpoint must be at most ${s.maxCheckpointBytes} encoded bytes`
      return undefined
    }
    default:
      return 'unknown event type'
  }
}

type Unsequenced<C> = C extends ChangeRecord ? Omit<C, 'seq' | 'id' | 'name'> : never

/** Builds the next state from a base without touching it (specs never mutate their input). */
class Draft {
  private names: Record<string, NameRecord> | undefined
  private members: readonly Participant[]
  private readonly added: ChangeRecord[] = []

  constructor (private readonly base: RegistryState, readonly id: EventId, private readonly settings: RegistrySettings) {
    this.members = base.members
  }

  get (name: string): NameRecord | undefined {
    const names = this.names ?? this.base.names
    return Object.hasOwn(names, name) ? names[name] : undefined
  }

  set (name: string, record: NameRecord): void {
    this.names ??= { ...this.base.names }
    if (record.registrations.length === 0 && record.election === null) delete this.names[name]
    else Object.defineProperty(this.names, name, { value: record, writable: true, enumerable: true, configurable: true })
  }

  /** Every name, sorted (object key order differs between built and decoded states). */
  sortedNames (): string[] {
    return Object.keys(this.names ?? this.base.names).sort()
  }

  memberCount (): number {
    return this.members.length
  }

  memberList (): readonly Participant[] {
    return this.members
  }

  setMembers (members: readonly Participant[]): void {
    this.members = members
  }

  log (name: string, change: Unsequenced<ChangeRecord>): void {
    this.added.push({ ...change, seq: this.base.changes + this.added.length + 1, id: this.id, name } as ChangeRecord)
  }

  finish (): RegistryState {
    if (this.names === undefined && this.added.length === 0 && this.members === this.base.members) return this.base
    const journal = this.added.length === 0 ? this.base.journal : [...this.base.journal, ...this.added].slice(-this.settings.journalLength)
    return { members: this.members, names: this.names ?? this.base.names, changes: this.base.changes + this.added.length, journal }
  }
}

function emptyName (): NameRecord {
  return { registrations: [], election: null }
}

/** Grants `name` to its first candidate if it has no holder and the group is large enough. */
function grantIfVacant (d: Draft, name: string): void {
  const record = d.get(name)
  const e = record?.election
  if (record === undefined || e == null || e.holder !== null || e.candidates.length === 0) return
  if (d.memberCount() < e.minMembers) return
  const [first, ...rest] = e.candidates as [CandidateRecord, ...CandidateRecord[]]
  const grant: GrantRecord = { peer: first.peer, token: d.id }
  d.set(name, { ...record, election: { ...e, candidates: rest, holder: grant } })
  d.log(name, { kind: 'granted', grant })
}

/** Drops an election that has nobody and nothing left to hand over. */
function tidy (d: Draft, name: string): void {
  const record = d.get(name)
  const e = record?.election
  if (record === undefined || e == null) return
  if (e.holder === null && e.candidates.length === 0 && e.checkpoint === null) d.set(name, { ...record, election: null })
}

function register (d: Draft, peer: Participant, e: Extract<RegistryEvent, { t: 'register' }>): RegistryOutput {
  const record = d.get(e.name) ?? emptyName()
  const key = registrationKey(peer, e.local)
  const registration: RegistrationRecord = { key, peer, local: e.local, meta: e.meta, enabled: e.enabled, since: d.id }
  const others = record.registrations.filter(r => r.key !== key)
  const registrations = [...others, registration].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  d.set(e.name, { ...record, registrations })
  d.log(e.name, { kind: 'registered', registration })
  return OK
}

function unregister (d: Draft, peer: Participant, e: Extract<RegistryEvent, { t: 'unregister' }>): RegistryOutput {
  const record = d.get(e.name)
  const key = registrationKey(peer, e.local)
  const gone = record?.registrations.find(r => r.key === key)
  if (record === undefined || gone === undefined) return OK // already gone: nothing to do
  d.set(e.name, { ...record, registrations: record.registrations.filter(r => r.key !== key) })
  d.log(e.name, { kind: 'unregistered', registration: gone, cause: 'unregistered' })
  return OK
}

function candidate (d: Draft, peer: Participant, e: Extract<RegistryEvent, { t: 'candidate' }>): RegistryOutput {
  const record = d.get(e.name) ?? emptyName()
  const election = record.election
  const standing = election !== null && (election.holder !== null || election.candidates.length > 0)
  if (standing && (election.kind !== e.kind || election.minMembers !== e.minMembers)) {
    return { ok: false, error: 'conflict', kind: election.kind, minMembers: election.minMembers }
  }
  if (election !== null && (election.holder?.peer === peer || election.candidates.some(c => c.peer === peer))) return OK // stands already
  const base: ElectionRecord = election ?? { kind: e.kind, minMembers: e.minMembers, candidates: [], holder: null, checkpoint: null }
  d.set(e.name, { ...record, election: { ...base, kind: e.kind, minMembers: e.minMembers, candidates: [...base.candidates, { peer, since: d.id }] } })
  grantIfVacant(d, e.name)
  return OK
}

function withdraw (d: Draft, peer: Participant, e: Extract<RegistryEvent, { t: 'withdraw' }>): RegistryOutput {
  const record = d.get(e.name)
  const election = record?.election
  if (record === undefined || election == null) return OK
  const held = election.holder?.peer === peer
  const queued = election.candidates.some(c => c.peer === peer)
  if (!held && !queued) return OK
  let candidates = election.candidates.filter(c => c.peer !== peer)
  if (e.requeue) candidates = [...candidates, { peer, since: d.id }]
  d.set(e.name, { ...record, election: { ...election, candidates, holder: held ? null : election.holder } })
  if (held) d.log(e.name, { kind: 'vacated', grant: election.holder!, cause: 'resigned' })
  grantIfVacant(d, e.name)
  tidy(d, e.name)
  return OK
}

function checkpoint (d: Draft, peer: Participant, e: Extract<RegistryEvent, { t: 'checkpoint' }>): RegistryOutput {
  const record = d.get(e.name)
  const holder = record?.election?.holder ?? null
  if (record === undefined || holder === null || holder.peer !== peer || compareEventIds(holder.token, e.token) !== 0) {
    return { ok: false, error: 'fenced', holder }
  }
  d.set(e.name, { ...record, election: { ...record.election!, checkpoint: { token: holder.token, at: d.id, data: e.data } } })
  return OK
}

/** The peer's UnJoin: its entries go, what it held passes on (rule 3). */
function departed (d: Draft, peer: Participant): void {
  d.setMembers(d.memberList().filter(p => p !== peer))
  for (const name of d.sortedNames()) {
    const record = d.get(name)!
    const gone = record.registrations.filter(r => r.peer === peer)
    const election = record.election
    const held = election?.holder?.peer === peer
    const queued = election?.candidates.some(c => c.peer === peer) === true
    if (gone.length === 0 && !held && !queued) continue
    const nextElection = election === null
      ? null
      : { ...election, candidates: election.candidates.filter(c => c.peer !== peer), holder: held ? null : election.holder }
    d.set(name, { registrations: record.registrations.filter(r => r.peer !== peer), election: nextElection })
    for (const r of gone) d.log(name, { kind: 'unregistered', registration: r, cause: 'departed' })
    if (held) d.log(name, { kind: 'vacated', grant: election!.holder!, cause: 'departed' })
    grantIfVacant(d, name)
    tidy(d, name)
  }
}

/**
 * The registry's `EventSpec` with `settings` (every peer must pass the same).
 */
export function registrySpec (settings: RegistrySettings): EventSpec<RegistryEvent, RegistryState, RegistryOutput> {
  return {
    init: () => ({ members: [], names: {}, changes: 0, journal: [] }),
    apply: (event, state, id = BOTTOM) => {
      const invalid = invalidEvent(event, settings)
      if (invalid !== undefined) return { ok: false, output: { ok: false, error: 'invalid', reason: invalid } }
      const d = new Draft(state, id, settings)
      const peer = id.participant
      let output: RegistryOutput
      switch (event.t) {
        case 'register': output = register(d, peer, event); break
        case 'unregister': output = unregister(d, peer, event); break
        case 'candidate': output = candidate(d, peer, event); break
        case 'withdraw': output = withdraw(d, peer, event); break
        case 'checkpoint': output = checkpoint(d, peer, event); break
      }
      return output.ok ? { ok: true, output, state: d.finish() } : { ok: false, output }
    },
    join: (peer, state, id = BOTTOM) => {
      if (state.members.includes(peer)) return state
      const d = new Draft(state, id, settings)
      d.setMembers([...state.members, peer].sort())
      for (const name of d.sortedNames()) grantIfVacant(d, name)
      return d.finish()
    },
    unjoin: (peer, state, id = BOTTOM) => {
      const d = new Draft(state, id, settings)
      departed(d, peer)
      return d.finish()
    }
  }
}
