/**
 * The children table: which children the cluster supervises, as the pure `EventSpec` of one
 * cluster-wide group (`supervision/children`). Every peer folds the same events into the same
 * table, so every peer agrees on which children exist, with which terms, whether each is
 * active, finished or failed, and (for a replicated server) which generation of its group is
 * the live one and who founded it. Where a child runs is not here: that is its election in the
 * service's registry (one name per child), so the table holds only decisions that change
 * rarely. No I/O, no clock.
 *
 * Rules:
 * 1. `start` creates a child, or is a no-op when the child exists with the same terms (so
 *    every peer may declare the same child); other terms fold as a `conflict` failure.
 * 2. `stop` removes a child; `ended` marks an active child finished (a transient server that
 *    stopped normally) or failed (its supervisor on the host gave up, or `init` failed);
 *    `restart` makes it active again.
 * 3. `found` gives a replicated child with no generation its generation: the id of that very
 *    event, and its creator as founder. Fold order decides between two founders: the first
 *    `found` wins, the second is told it lost. The founder's group is
 *    `r:<name>:<hash of the generation>`.
 * 4. `confirm` (from the generation's primary, once enough replicas hold the group) makes the
 *    generation permanent. Before that, the founder's UnJoin (it left or was ejected) clears
 *    the generation, so another peer founds anew: an unconfirmed generation never answered a
 *    call, so nothing acknowledged is lost with it.
 * 5. Malformed events fold as `invalid` failures and change nothing. Names are visited in
 *    sorted order, so a decoded state (sorted keys) and a locally built one fold alike.
 *
 * @module
 */
import type { EventId, EventSpec, Participant } from '../eventfold/types.js'

/** The longest child name, in UTF-8 bytes (it becomes part of a group id, which is bounded). */
export const MAX_CHILD_NAME_BYTES = 96
/** The longest server name, in UTF-8 bytes. */
export const MAX_SERVER_NAME_BYTES = 64
/** The most replicas a replicated server may ask for. */
export const MAX_REPLICAS = 64
/** The longest reason kept for an ended child, in characters. */
const MAX_REASON_CHARS = 512

/** Where a placed child runs; see `Placement` in `api.ts`. */
export type PlacementTerms =
  | { readonly kind: 'spread' }
  | { readonly kind: 'any' }
  | { readonly kind: 'peer', readonly peer: Participant, readonly fallback: boolean }

/** How the host supervises a placed child on its own peer (a one-child supervisor). */
export interface LocalTerms {
  /** The supervisor's intensity. */
  readonly intensity: number
  /** The supervisor's period, in milliseconds. */
  readonly periodMs: number
  /** Restart backoff, or `null` for restarts at once. */
  readonly backoff: { readonly minMs: number, readonly maxMs: number, readonly factor: number, readonly randomFactor: number, readonly resetAfterMs: number } | null
  /** The worker's shutdown. */
  readonly shutdown: number | 'brutal' | 'infinity'
  /** The worker's start timeout in milliseconds, or `null` for none. */
  readonly startTimeoutMs: number | null
  /** The local tree's queue capacity. */
  readonly queueCapacity: number
}

/** What a child is: the same terms on every peer that declares it. */
export interface ChildTerms {
  /** The name of the server definition (every peer's service must define it). */
  readonly server: string
  /** Placed (one host, restarted elsewhere when it goes) or replicated (a group among replicas). */
  readonly mode: 'placed' | 'replicated'
  /** Restarted after a normal exit (`permanent`) or only after an abnormal one (`transient`). */
  readonly restart: 'permanent' | 'transient'
  /** Placed children: where they run. */
  readonly placement: PlacementTerms
  /** Replicated: how many peers hold the state (1 for placed children). */
  readonly replicas: number
  /** Replicated: settled replicas needed before the server answers (1 for placed children). */
  readonly minReplicas: number
  /** Placed: the host's supervision of the child. */
  readonly local: LocalTerms
}

/** One child in the table. */
export interface ChildRecord extends ChildTerms {
  /** The child's name (unique in the cluster). */
  readonly name: string
  /** The event that created it. */
  readonly since: EventId
  /** Whether it should run. */
  readonly status: 'active' | 'finished' | 'failed'
  /** Why it finished or failed (`null` while active). */
  readonly reason: string | null
  /** Replicated: the live generation of its group (the `found` event's id), `null` until founded. */
  readonly generation: EventId | null
  /** Replicated: who founded the generation. */
  readonly founder: Participant | null
  /** Replicated: whether the generation was confirmed (enough replicas held it). */
  readonly confirmed: boolean
}

/** The table. */
export interface ChildrenState {
  /** Every child, by name. */
  readonly children: Readonly<Record<string, ChildRecord>>
  /** Changes folded so far (a cheap way to tell states apart). */
  readonly changes: number
}

/** What the table's events say. */
export type ChildrenEvent =
  | { readonly t: 'start', readonly name: string, readonly terms: ChildTerms }
  | { readonly t: 'stop', readonly name: string }
  | { readonly t: 'ended', readonly name: string, readonly how: 'finished' | 'failed', readonly reason: string }
  | { readonly t: 'restart', readonly name: string }
  | { readonly t: 'found', readonly name: string }
  | { readonly t: 'confirm', readonly name: string, readonly generation: EventId }

/** What an event gave. */
export type ChildrenOutput =
  | { readonly ok: true, readonly created?: boolean, readonly founder?: boolean, readonly generation?: EventId | null }
  | { readonly ok: false, readonly error: 'invalid' | 'unknown' | 'conflict' | 'stale', readonly reason: string }

/** The table's spec. */
export const childrenSpec: EventSpec<ChildrenEvent, ChildrenState, ChildrenOutput> = {
  init: () => ({ children: {}, changes: 0 }),
  apply: (event, state, id) => {
    const invalid = invalidEvent(event)
    if (invalid !== undefined) return { ok: false, output: { ok: false, error: 'invalid', reason: invalid } }
    const at = id ?? { counter: 0, participant: '' }
    const current = state.children[event.name]
    const fail = (error: 'unknown' | 'conflict' | 'stale', reason: string): { ok: false, output: ChildrenOutput } => ({ ok: false, output: { ok: false, error, reason } })
    const put = (record: ChildRecord | undefined, output: ChildrenOutput): { ok: true, output: ChildrenOutput, state: ChildrenState } => {
      const children = { ...state.children }
      if (record === undefined) delete children[event.name]
      else children[event.name] = record
      return { ok: true, output, state: { children, changes: state.changes + 1 } }
    }
    switch (event.t) {
      case 'start': {
        if (current !== undefined) {
          const differs = termsDiffer(current, event.terms)
          return differs === undefined ? { ok: true, output: { ok: true, created: false }, state } : fail('conflict', differs)
        }
        return put({ ...event.terms, name: event.name, since: at, status: 'active', reason: null, generation: null, founder: null, confirmed: false }, { ok: true, created: true })
      }
      case 'stop':
        return current === undefined ? fail('unknown', 'no such child') : put(undefined, { ok: true })
      case 'ended':
        if (current === undefined) return fail('unknown', 'no such child')
        if (current.status !== 'active') return { ok: true, output: { ok: true }, state }
        return put({ ...current, status: event.how, reason: event.reason.slice(0, MAX_REASON_CHARS) }, { ok: true })
      case 'restart':
        if (current === undefined) return fail('unknown', 'no such child')
        if (current.status === 'active') return { ok: true, output: { ok: true }, state }
        return put({ ...current, status: 'active', reason: null }, { ok: true })
      case 'found':
        if (current === undefined) return fail('unknown', 'no such child')
        if (current.mode !== 'replicated') return fail('stale', 'not a replicated child')
        if (current.generation !== null) return { ok: true, output: { ok: true, founder: false, generation: current.generation }, state }
        return put({ ...current, generation: at, founder: at.participant, confirmed: false }, { ok: true, founder: true, generation: at })
      case 'confirm':
        if (current === undefined) return fail('unknown', 'no such child')
        if (current.generation === null || current.generation.counter !== event.generation.counter || current.generation.participant !== event.generation.participant) return fail('stale', 'not the live generation')
        if (current.confirmed) return { ok: true, output: { ok: true }, state }
        return put({ ...current, confirmed: true }, { ok: true })
    }
  },
  unjoin: (peer, state) => {
    let children: Record<string, ChildRecord> | undefined
    for (const name of Object.keys(state.children).sort()) {
      const c = state.children[name]!
      if (c.mode !== 'replicated' || c.founder !== peer || c.confirmed) continue
      children ??= { ...state.children }
      children[name] = { ...c, generation: null, founder: null }
    }
    return children === undefined ? state : { children, changes: state.changes + 1 }
  }
}

/** The group id of a replicated child's generation (without the service's prefix). */
export function generationGroupId (name: string, generation: EventId, hash: (text: string) => string): string {
  return `r:${name}:${hash(`${generation.counter}:${generation.participant}`).slice(0, 12)}`
}

/** Why `name` cannot name a child, or `undefined` if it can. */
export function invalidChildName (name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'a child name must be a non-empty string'
  if (Buffer.byteLength(name, 'utf8') > MAX_CHILD_NAME_BYTES) return `a child name must be at most ${MAX_CHILD_NAME_BYTES} bytes`
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'a child name must not contain control characters'
  return undefined
}

/** What differs between an existing child and terms declared again, or `undefined` if nothing. */
function termsDiffer (current: ChildTerms, terms: ChildTerms): string | undefined {
  for (const key of ['server', 'mode', 'restart', 'replicas', 'minReplicas'] as const) {
    if (current[key] !== terms[key]) return `${key} is ${JSON.stringify(current[key])}, not ${JSON.stringify(terms[key])}`
  }
  if (canonical(current.placement) !== canonical(terms.placement)) return `placement is ${canonical(current.placement)}`
  if (canonical(current.local) !== canonical(terms.local)) return `its local supervision is ${canonical(current.local)}`
  return undefined
}

/** JSON with sorted keys: a decoded state has its keys sorted, a locally built one does not. */
function canonical (value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
    : v)
}

function invalidEvent (e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return 'not an object'
  const ev = e as Record<string, unknown>
  const bad = invalidChildName(ev.name)
  if (bad !== undefined) return bad
  switch (ev.t) {
    case 'start': return invalidTerms(ev.terms)
    case 'stop': case 'restart': case 'found': return undefined
    case 'ended':
      if (ev.how !== 'finished' && ev.how !== 'failed') return 'how must be finished or failed'
      return typeof ev.reason === 'string' ? undefined : 'reason must be a string'
    case 'confirm': {
      const g = ev.generation as Partial<EventId> | null | undefined
      return typeof g === 'object' && g !== null && Number.isSafeInteger(g.counter) && typeof g.participant === 'string' ? undefined : 'bad generation'
    }
    default: return 'unknown event'
  }
}

function invalidTerms (t: unknown): string | undefined {
  if (typeof t !== 'object' || t === null) return 'terms must be an object'
  const terms = t as Record<string, unknown>
  if (typeof terms.server !== 'string' || terms.server === '' || Buffer.byteLength(terms.server) > MAX_SERVER_NAME_BYTES) return 'bad server name'
  if (terms.mode !== 'placed' && terms.mode !== 'replicated') return 'bad mode'
  if (terms.restart !== 'permanent' && terms.restart !== 'transient') return 'bad restart type'
  const r = terms.replicas
  const m = terms.minReplicas
  if (!Number.isSafeInteger(r) || (r as number) < 1 || (r as number) > MAX_REPLICAS) return 'bad replicas'
  if (!Number.isSafeInteger(m) || (m as number) < 1 || (m as number) > (r as number)) return 'bad minReplicas'
  const p = terms.placement as Record<string, unknown> | null
  if (typeof p !== 'object' || p === null) return 'bad placement'
  if (p.kind === 'peer') {
    if (typeof p.peer !== 'string' || p.peer === '' || typeof p.fallback !== 'boolean') return 'bad placement'
  } else if (p.kind !== 'spread' && p.kind !== 'any') return 'bad placement'
  const l = terms.local as Record<string, unknown> | null
  if (typeof l !== 'object' || l === null) return 'bad local terms'
  if (!Number.isSafeInteger(l.intensity) || (l.intensity as number) < 0) return 'bad intensity'
  if (typeof l.periodMs !== 'number' || !(l.periodMs > 0) || !Number.isFinite(l.periodMs)) return 'bad periodMs'
  if (!Number.isSafeInteger(l.queueCapacity) || (l.queueCapacity as number) < 1) return 'bad queueCapacity'
  if (!(l.shutdown === 'brutal' || l.shutdown === 'infinity' || (typeof l.shutdown === 'number' && Number.isFinite(l.shutdown) && l.shutdown >= 0))) return 'bad shutdown'
  if (l.startTimeoutMs !== null && (typeof l.startTimeoutMs !== 'number' || !(l.startTimeoutMs > 0) || !Number.isFinite(l.startTimeoutMs))) return 'bad startTimeoutMs'
  if (l.backoff !== null) {
    const b = l.backoff as Record<string, unknown> | undefined
    if (typeof b !== 'object' || b === null) return 'bad backoff'
    for (const k of ['minMs', 'maxMs', 'factor', 'randomFactor', 'resetAfterMs']) if (typeof b[k] !== 'number' || !Number.isFinite(b[k])) return 'bad backoff'
  }
  return undefined
}
