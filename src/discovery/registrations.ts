/**
 * The registrations this peer's application asked for: the wishes (kept across rejoins, gone
 * with the process), the handles the application holds on them, and the events that bring the
 * projected registry in line with them. After a rejoin the registry has lost this peer's
 * entries (they went with its UnJoin), and `submit` registers them again.
 *
 * @module
 */
import { equalBytes } from '../codec/buffer.js'
import type { EventId, Participant } from '../eventfold/types.js'
import type { WaitOptions } from '../peer/options.js'
import type { Registration } from './api.js'
import type { Conditions } from './conditions.js'
import { RegistryInputError } from './errors.js'
import { nameRecord, registrationKey, type RegistryEvent, type RegistryState } from './registry-spec.js'

/** What the registrations need from the service. */
export interface RegistrationsComponents<M> {
  /** This peer. */
  readonly self: Participant
  /** Waits re-checked on every registry change. */
  readonly conditions: Conditions
  /** The settled registry, if this peer holds it. */
  readonly settled: () => RegistryState | undefined
  /** Whether this peer may write to the registry now (a member holding it). */
  readonly writable: () => boolean
  /** The projected registry (only called when writable). */
  readonly projected: () => RegistryState
  /** Applies an event to the registry. */
  readonly write: (event: RegistryEvent) => void
  /** Encodes metadata (a flag byte and the codec's bytes). */
  readonly encodeMeta: (meta: M | undefined) => Uint8Array
}

/** One wish: what this peer wants registered. */
interface Wish {
  readonly name: string
  readonly local: string
  meta: Uint8Array
  enabled: boolean
}

/** The registrations of one peer; see the module comment. */
export class LocalRegistrations<M> {
  private readonly wishes = new Map<string, Wish>()
  private nextLocal = 1

  constructor (private readonly c: RegistrationsComponents<M>) {}

  /** A new registration under `name` (checked already); the caller submits it. */
  add (name: string, meta: M | undefined, enabled: boolean): Registration<M> {
    const c = this.c
    const wish: Wish = { name, local: String(this.nextLocal++), meta: c.encodeMeta(meta), enabled }
    const id = `${name}\n${wish.local}`
    this.wishes.set(id, wish)
    const key = registrationKey(c.self, wish.local)
    let current = meta
    const submit = (): void => { this.submit() }
    return {
      name,
      key,
      get meta () { return current },
      get enabled () { return wish.enabled },
      update: (next: M | undefined) => { wish.meta = c.encodeMeta(next); current = next; submit() },
      drain: () => { wish.enabled = false; submit() },
      enable: () => { wish.enabled = true; submit() },
      unregister: () => {
        if (!this.wishes.delete(id)) return
        if (c.writable() && nameRecord(c.projected(), name)?.registrations.some(r => r.key === key) === true) c.write({ t: 'unregister', name, local: wish.local })
      },
      settled: async (options?: WaitOptions): Promise<EventId> => await c.conditions.until(() => {
        if (!this.wishes.has(id)) throw new RegistryInputError(`registration ${key} was unregistered`)
        const r = nameRecord(c.settled() ?? EMPTY, name)?.registrations.find(x => x.key === key)
        return r !== undefined && r.enabled === wish.enabled && equalBytes(r.meta, wish.meta) ? r.since : undefined
      }, `registration ${key} to settle`, options)
    }
  }

  /** Registers whatever the projected registry lacks (or has in another version). */
  submit (): void {
    const c = this.c
    if (!c.writable()) return
    const projected = c.projected()
    for (const w of this.wishes.values()) {
      const there = nameRecord(projected, w.name)?.registrations.find(x => x.key === registrationKey(c.self, w.local))
      if (there !== undefined && there.enabled === w.enabled && equalBytes(there.meta, w.meta)) continue
      c.write({ t: 'register', name: w.name, local: w.local, meta: w.meta, enabled: w.enabled })
    }
  }

  /** Forgets every wish (the service stops; the peer's UnJoin removes the entries). */
  clear (): void {
    this.wishes.clear()
  }
}

const EMPTY: RegistryState = { members: [], names: {}, changes: 0, journal: [] }
