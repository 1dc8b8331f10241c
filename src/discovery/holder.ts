/**
 * One candidacy of this peer, as a local state machine: `standing` (queued, or granted without
 * a lease), `running` (the start function runs under a token), `stopping` (its signal fired;
 * waiting, bounded, for it and the stop function it returned), `closed` (resigned, refused,
 * failed, or the service stopped). The service decides, from the settled grant and the lease,
 * which token this peer may run under now ({@link Role.reconcile}); the role makes it so, never
 * starting while a previous run is still stopping. It does no fold I/O: resigning and
 * withdrawing are the service's. `candidacyHandle` is the application's handle on a role.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import { compareEventIds, type EventId } from '../eventfold/types.js'
import type { Clock } from '../time/clock.js'
import type { WaitOptions } from '../peer/options.js'
import type { Candidacy, CandidacyStatus, HolderContext, StartFunction, StopFunction } from './api.js'
import type { Conditions } from './conditions.js'
import { CandidacyClosedError } from './errors.js'

/** What a role needs from the service. */
export interface RoleComponents<C> {
  /** Time, for the stop deadline. */
  readonly clock: Clock
  /** The service's logger. */
  readonly log: Logger
  /** How long a stop waits for the start function and its stop function. */
  readonly stopTimeoutMs: number
  /** The context a run under `token` gets (its `signal` is the run's). */
  readonly context: (token: EventId, signal: AbortSignal) => HolderContext<C>
  /** The start function threw or rejected while running: the service resigns the candidacy. */
  readonly failed: (role: Role<C>, error: Error) => void
  /** The status changed (a run started or finished stopping): re-evaluate, tell waiters. */
  readonly changed: () => void
}

type RoleState =
  | { readonly kind: 'standing' }
  | { readonly kind: 'running', readonly token: EventId, readonly controller: AbortController, readonly started: Promise<StopFunction | undefined> }
  | { readonly kind: 'stopping', readonly token: EventId, readonly done: Promise<void> }
  | { readonly kind: 'closed', readonly reason: string, readonly error?: Error }

/** One candidacy's local state machine; see the module comment. */
export class Role<C> {
  private state: RoleState = { kind: 'standing' }
  /** Runs started, for stats and tests. */
  runs = 0

  constructor (readonly name: string, readonly kind: string, readonly minMembers: number, private readonly start: StartFunction<C>, private readonly components: RoleComponents<C>) {}

  /** The public status. */
  status (): CandidacyStatus {
    const s = this.state
    switch (s.kind) {
      case 'standing': return { kind: 'standing' }
      case 'running': return { kind: 'running', token: s.token }
      case 'stopping': return { kind: 'stopping', token: s.token }
      case 'closed': return s.error !== undefined ? { kind: 'closed', reason: s.reason, error: s.error } : { kind: 'closed', reason: s.reason }
    }
  }

  /** Whether it is closed. */
  get closed (): boolean {
    return this.state.kind === 'closed'
  }

  /** The token it runs under, if it runs. */
  runningToken (): EventId | undefined {
    return this.state.kind === 'running' ? this.state.token : undefined
  }

  /**
   * Runs under `token`, or stops running when `token` is `undefined` (or another token):
   * a step-down. A role that is stopping finishes first; `changed` then asks again.
   */
  reconcile (token: EventId | undefined, why: string): void {
    const s = this.state
    if (s.kind === 'closed' || s.kind === 'stopping') return
    if (s.kind === 'running') {
      if (token !== undefined && compareEventIds(token, s.token) === 0) return
      this.components.log('%s: stepping down from %s (%s)', this.name, tokenText(s.token), why)
      void this.stopRun(s, { kind: 'standing' })
      return
    }
    if (token !== undefined) this.run(token)
  }

  /** Stops running (if it runs) and stays standing; resolves once stopped. */
  async standDown (why: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const s = this.state
      if (s.kind === 'stopping') { await s.done; continue }
      if (s.kind === 'running') { this.components.log('%s: stepping down from %s (%s)', this.name, tokenText(s.token), why); await this.stopRun(s, { kind: 'standing' }); continue }
      return
    }
  }

  /** Stops running (if it runs) and closes; resolves once stopped. */
  async close (reason: string, error?: Error): Promise<void> {
    for (;;) {
      const s = this.state
      if (s.kind === 'closed') return
      if (s.kind === 'stopping') { await s.done; continue }
      const closed: RoleState = error !== undefined ? { kind: 'closed', reason, error } : { kind: 'closed', reason }
      if (s.kind === 'running') { await this.stopRun(s, closed); return }
      this.state = closed
      this.components.changed()
      return
    }
  }

  private run (token: EventId): void {
    const controller = new AbortController()
    const c = this.components
    this.runs++
    c.log('%s: running as the holder, token %s', this.name, tokenText(token))
    const started = Promise.resolve().then(() => this.start(c.context(token, controller.signal)))
      .then(r => typeof r === 'function' ? r : undefined)
    const state: RoleState = { kind: 'running', token, controller, started }
    this.state = state
    started.catch((err: unknown) => {
      if (this.state !== state) { c.log('%s: the start function failed while stopping: %s', this.name, err); return }
      const error = err instanceof Error ? err : new Error(String(err))
      c.log.error('%s: the start function failed: %s', this.name, error)
      c.failed(this, error)
    })
    c.changed()
  }

  /** Aborts a run, waits (bounded) for it to finish, then moves to `next`. */
  private async stopRun (s: Extract<RoleState, { kind: 'running' }>, next: RoleState): Promise<void> {
    const c = this.components
    let finish!: () => void
    const done = new Promise<void>(resolve => { finish = resolve })
    this.state = { kind: 'stopping', token: s.token, done }
    c.changed()
    s.controller.abort(new Error(`${this.name}: no longer the holder`))
    const deadline = c.clock.now() + c.stopTimeoutMs
    const bounded = async <T>(p: Promise<T>, what: string): Promise<T | undefined> => {
      let timer: { cancel: () => void } | undefined
      const late = new Promise<undefined>(resolve => { timer = c.clock.setTimer(Math.max(0, deadline - c.clock.now()), () => { c.log.error('%s: %s did not finish within %d ms; going on without it', this.name, what, c.stopTimeoutMs); resolve(undefined) }) })
      try { return await Promise.race([p, late]) } finally { timer?.cancel() }
    }
    const stop = await bounded(s.started.catch(() => undefined), 'the start function')
    if (stop !== undefined) {
      await bounded(Promise.resolve().then(stop).catch((err: unknown) => { c.log.error('%s: the stop function failed: %s', this.name, err) }), 'the stop function')
    }
    this.state = next
    finish()
    c.changed()
  }
}

/**
 * The application's handle on `role`: its status, waits for it to stand (`standing()` says
 * whether its candidacy settled) and to run, and `resign`. A closed role rejects the waits with
 * the error that closed it.
 */
export function candidacyHandle<C> (role: Role<C>, conditions: Conditions, standing: () => boolean,
  resign: (options: WaitOptions & { readonly requeue?: boolean }) => Promise<void>): Candidacy {
  const closedError = (): Error => {
    const s = role.status()
    return s.kind === 'closed' ? (s.error ?? new CandidacyClosedError(role.name, s.reason)) : new CandidacyClosedError(role.name, 'closed')
  }
  return {
    name: role.name,
    status: () => role.status(),
    whenStanding: async (options) => {
      await conditions.until(() => { if (role.closed) throw closedError(); return standing() ? true : undefined }, `the candidacy for ${role.name} to settle`, options)
    },
    whenRunning: async (options) => await conditions.until(() => { if (role.closed) throw closedError(); return role.runningToken() }, `this peer to run ${role.name}`, options),
    resign: async (options = {}) => { await resign(options) }
  }
}

/** `counter:participant`, for logs. */
export function tokenText (token: EventId): string {
  return `${token.counter}:${token.participant}`
}
