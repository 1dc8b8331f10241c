/**
 * A worker: one server under a supervisor, through its successive incarnations. It runs `init`
 * (restoring saved state first), steps inputs the event loop hands it, turns a throwing `step`
 * into a crash, runs `terminate` within the shutdown deadline and saves the state, and reports
 * exits it did not choose to its supervisor. Its lifecycle is one tagged union; the data of each
 * phase (the state, the pending init, the pending stop) lives only in that phase.
 *
 * The worker never decides restarts: it goes `down` and its supervisor tells it what comes next
 * (`markRestarting`, `markStopped`). It is the loop's {@link ServerHost} for its name.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { decodeWith, encodeWith } from '../codec/codec.js'
import type { WorkerSpec } from './child-spec.js'
import { ChildStartError, ServerStoppedError, StartTimeoutError } from './errors.js'
import type { Admission, ServerHost, StepOutcome } from './event-loop.js'
import type { ChildStatus } from './lifecycle.js'
import { raceDeadline, shutdownDeadline, type ChildRunner, type ExitListener, type RunnerContext } from './runner.js'
import { codecsOf, stateCodecOf, type ExitReason, type ServerCodecs, type ServerSpec, type StepResult } from './server.js'

const log = logger('legion:supervision:worker')

const SHUTDOWN: ExitReason = Object.freeze({ kind: 'shutdown' })
const KILLED: ExitReason = Object.freeze({ kind: 'killed' })

type InitOutcome = { readonly ok: true, readonly state: unknown } | { readonly ok: false, readonly error: unknown }

/** The worker's lifecycle: {@link ChildStatus} plus what each phase holds. */
type Phase =
  | { readonly kind: 'starting', readonly incarnation: number, readonly since: number, readonly ready: Promise<InitOutcome> }
  | { readonly kind: 'running', readonly incarnation: number, readonly since: number, state: unknown }
  | { readonly kind: 'stopping', readonly incarnation: number, readonly since: number, readonly reason: ExitReason, readonly done: Promise<ExitReason> }
  | { readonly kind: 'down', readonly incarnation: number, readonly reason: ExitReason }
  | { readonly kind: 'restarting', readonly incarnation: number, readonly attempt: number, readonly delayMs: number, readonly restartAt: number }
  | { readonly kind: 'stopped', readonly incarnation: number, readonly reason: ExitReason | undefined }

/** Runs one worker child. See the module comment. */
export class WorkerRunner implements ChildRunner, ServerHost {
  readonly kind = 'worker'
  readonly id: string
  readonly codecs: ServerCodecs<unknown, unknown>
  readonly #spec: WorkerSpec
  readonly #server: ServerSpec<unknown, unknown, unknown>
  readonly #ctx: RunnerContext
  readonly #supervisor: string
  readonly #onExit: ExitListener
  #phase: Phase = { kind: 'stopped', incarnation: 0, reason: undefined }
  #binding: { readonly kind: 'bind', readonly incarnation: number } = { kind: 'bind', incarnation: 0 }

  constructor (spec: WorkerSpec, supervisorId: string, ctx: RunnerContext, onExit: ExitListener) {
    this.id = spec.id
    this.#spec = spec
    this.#server = spec.server
    this.codecs = codecsOf(spec.server)
    this.#ctx = ctx
    this.#supervisor = supervisorId
    this.#onExit = onExit
  }

  get incarnation (): number {
    return this.#phase.incarnation
  }

  status (): ChildStatus {
    const p = this.#phase
    switch (p.kind) {
      case 'starting': return { kind: p.kind, incarnation: p.incarnation, since: p.since }
      case 'running': return { kind: p.kind, incarnation: p.incarnation, since: p.since }
      case 'stopping': return { kind: p.kind, incarnation: p.incarnation, since: p.since, reason: p.reason }
      default: return p
    }
  }

  async start (): Promise<void> {
    const incarnation = this.#phase.incarnation + 1
    const ready = this.#init(incarnation)
    this.#phase = { kind: 'starting', incarnation, since: this.#ctx.clock.now(), ready }
    this.#emitLifecycle('starting', incarnation)
    const outcome = await ready
    const phase = this.#phase
    if (phase.kind !== 'starting' || phase.incarnation !== incarnation) return // a stop took over
    if (outcome.ok) {
      this.#phase = { kind: 'running', incarnation, since: this.#ctx.clock.now(), state: outcome.state }
      this.#emitLifecycle('started', incarnation)
      this.#ctx.loop.runnable(this.id)
      return
    }
    const reason: ExitReason = { kind: 'crashed', phase: 'init', error: outcome.error }
    this.#ctx.emit({ type: 'crashed', at: this.#ctx.clock.now(), supervisor: this.#supervisor, child: this.id, incarnation, phase: 'init', error: outcome.error })
    this.#phase = { kind: 'down', incarnation, reason }
    this.#ctx.loop.incarnationEnded(this.id, incarnation, reason)
    this.#emitExited(incarnation, reason)
    throw new ChildStartError(this.id, outcome.error)
  }

  async stop (deadline: number): Promise<ExitReason> {
    const phase = this.#phase
    const clock = this.#ctx.clock
    const bounded = shutdownDeadline(clock, this.#spec.shutdown, deadline)
    switch (phase.kind) {
      case 'running':
        return await this.#beginStop(phase.incarnation, phase.state, SHUTDOWN, bounded, false)
      case 'starting': {
        // Wait for init within the deadline, then terminate what it made.
        const incarnation = phase.incarnation
        const done = (async (): Promise<ExitReason> => {
          const outcome = await raceDeadline(clock, phase.ready, bounded)
          let reason: ExitReason
          // `ready` never rejects, so `failed` cannot happen; treated as a failed init all the same.
          if (outcome.kind === 'overran') reason = KILLED
          else if (outcome.kind === 'failed') reason = { kind: 'crashed', phase: 'init', error: outcome.error }
          else if (!outcome.value.ok) reason = { kind: 'crashed', phase: 'init', error: outcome.value.error }
          else reason = await this.#terminate(incarnation, outcome.value.state, SHUTDOWN, bounded)
          this.#phase = { kind: 'down', incarnation, reason }
          this.#emitExited(incarnation, reason)
          return reason
        })()
        this.#phase = { kind: 'stopping', incarnation, since: clock.now(), reason: SHUTDOWN, done }
        this.#emitTerminating(incarnation, SHUTDOWN)
        this.#ctx.loop.incarnationEnded(this.id, incarnation, SHUTDOWN)
        return await done
      }
      case 'stopping':
        return await phase.done
      case 'down':
        return phase.reason
      case 'restarting':
        return SHUTDOWN
      case 'stopped':
        return phase.reason ?? SHUTDOWN
    }
  }

  markRestarting (attempt: number, delayMs: number, restartAt: number): void {
    this.#phase = { kind: 'restarting', incarnation: this.#phase.incarnation, attempt, delayMs, restartAt }
  }

  markStopped (): void {
    const p = this.#phase
    if (p.kind === 'stopped') return
    const reason = p.kind === 'down' ? p.reason : p.kind === 'stopping' ? p.reason : SHUTDOWN
    this.#phase = { kind: 'stopped', incarnation: p.incarnation, reason }
    this.#ctx.loop.rejectWaiting(this.id, () => new ServerStoppedError(this.id))
  }

  attach (): void {
    this.#ctx.loop.register(this)
  }

  detach (): void {
    this.#ctx.loop.unregister(this.id, () => new ServerStoppedError(this.id))
  }

  // ---- ServerHost: what the event loop asks -------------------------------------------------

  admission (): Admission {
    const p = this.#phase
    switch (p.kind) {
      case 'starting':
      case 'running':
        return this.#bindTo(p.incarnation)
      case 'stopping':
      case 'down':
      case 'restarting':
        return this.#bindTo(p.incarnation + 1)
      case 'stopped':
        return { kind: 'refuse', error: new ServerStoppedError(this.id) }
    }
  }

  /** The same admission object for every request to one incarnation (one allocation less per call). */
  #bindTo (incarnation: number): Admission {
    if (this.#binding.incarnation !== incarnation) this.#binding = { kind: 'bind', incarnation }
    return this.#binding
  }

  isRunning (incarnation: number): boolean {
    return this.#phase.kind === 'running' && this.#phase.incarnation === incarnation
  }

  step (input: unknown): StepOutcome {
    const phase = this.#phase
    if (phase.kind !== 'running') throw new Error(`internal: step on server ${this.id} while ${phase.kind}`)
    let result: StepResult<unknown, unknown>
    try {
      result = this.#server.step(input, phase.state)
      checkStepResult(result)
    } catch (error) {
      const reason: ExitReason = { kind: 'crashed', phase: 'step', error, input }
      this.#ctx.emit({ type: 'crashed', at: this.#ctx.clock.now(), supervisor: this.#supervisor, child: this.id, incarnation: phase.incarnation, phase: 'step', error, input })
      const own = shutdownDeadline(this.#ctx.clock, this.#spec.shutdown, Infinity)
      void this.#beginStop(phase.incarnation, phase.state, reason, own, true)
      return { kind: 'crashed', incarnation: phase.incarnation, error }
    }
    phase.state = result.state
    if (result.stop === true) {
      const own = shutdownDeadline(this.#ctx.clock, this.#spec.shutdown, Infinity)
      void this.#beginStop(phase.incarnation, result.state, { kind: 'normal' }, own, true)
    }
    return { kind: 'answered', output: result.output }
  }

  // ---- Internals ---------------------------------------------------------------------------

  /** Loads saved state, then runs `init`, within `startTimeoutMs` if set; never rejects. */
  async #init (incarnation: number): Promise<InitOutcome> {
    const work = (async () => {
      let restored: unknown
      const persistence = this.#server.persistence
      if (persistence !== undefined) {
        const bytes = await this.#ctx.store.load(persistence.key ?? this.id)
        if (bytes !== undefined) restored = decodeWith(stateCodecOf(persistence), bytes)
      }
      return await this.#server.init({ name: this.id, incarnation, restored })
    })()
    const limit = this.#spec.startTimeoutMs
    const outcome = await raceDeadline(this.#ctx.clock, work, limit === undefined ? Infinity : this.#ctx.clock.now() + limit)
    switch (outcome.kind) {
      case 'done': return { ok: true, state: outcome.value }
      case 'failed': return { ok: false, error: outcome.error }
      case 'overran': return { ok: false, error: new StartTimeoutError(this.id, limit ?? 0) }
    }
  }

  /**
   * Leaves `running`: requests bound to the incarnation are rejected at once, `terminate` runs
   * within `deadline`, and the worker goes `down`. A stop the worker did not choose (`own`: a
   * crash, or its step asked to stop) is reported to the supervisor.
   */
  #beginStop (incarnation: number, state: unknown, reason: ExitReason, deadline: number, own: boolean): Promise<ExitReason> {
    const done = (async (): Promise<ExitReason> => {
      const final = await this.#terminate(incarnation, state, reason, deadline)
      this.#phase = { kind: 'down', incarnation, reason: final }
      this.#emitExited(incarnation, final)
      if (own) this.#onExit(this, incarnation, final)
      return final
    })()
    this.#phase = { kind: 'stopping', incarnation, since: this.#ctx.clock.now(), reason, done }
    this.#emitTerminating(incarnation, reason)
    this.#ctx.loop.incarnationEnded(this.id, incarnation, reason)
    return done
  }

  /**
   * Runs `terminate` and saves the state, within `deadline`. Returns the exit reason: `reason`,
   * or `killed` when a stop by the supervisor had no time for (or overran) `terminate`.
   */
  async #terminate (incarnation: number, state: unknown, reason: ExitReason, deadline: number): Promise<ExitReason> {
    const clock = this.#ctx.clock
    const killed = reason.kind === 'shutdown' ? KILLED : reason
    if (deadline <= clock.now()) return killed
    // Lets the stopping phase (and its events) be in place before any user code runs.
    await Promise.resolve()
    let failed: 'terminate' | 'save' = 'terminate'
    const work = (async () => {
      if (this.#server.terminate !== undefined) await this.#server.terminate(reason, state, { name: this.id, incarnation })
      failed = 'save'
      const persistence = this.#server.persistence
      if (persistence !== undefined) {
        await this.#ctx.store.save(persistence.key ?? this.id, encodeWith(stateCodecOf(persistence), state))
      }
    })()
    const outcome = await raceDeadline(clock, work, deadline)
    if (outcome.kind === 'overran') {
      log('server %s (incarnation %d): terminate overran its shutdown time; abandoned', this.id, incarnation)
      return killed
    }
    if (outcome.kind === 'failed') {
      log.error('server %s (incarnation %d): %s failed: %e', this.id, incarnation, failed, outcome.error)
      this.#ctx.emit({ type: 'callback-failed', at: clock.now(), child: this.id, callback: failed, error: outcome.error })
    }
    return reason
  }

  #emitLifecycle (type: 'starting' | 'started', incarnation: number): void {
    this.#ctx.emit({ type, at: this.#ctx.clock.now(), supervisor: this.#supervisor, child: this.id, kind: 'worker', incarnation })
  }

  #emitTerminating (incarnation: number, reason: ExitReason): void {
    this.#ctx.emit({ type: 'terminating', at: this.#ctx.clock.now(), supervisor: this.#supervisor, child: this.id, kind: 'worker', incarnation, reason })
  }

  #emitExited (incarnation: number, reason: ExitReason): void {
    this.#ctx.emit({ type: 'exited', at: this.#ctx.clock.now(), supervisor: this.#supervisor, child: this.id, kind: 'worker', incarnation, reason })
  }
}

/** A step result must be a plain `{ state, output }`, never a promise (steps are synchronous). */
function checkStepResult (result: unknown): asserts result is StepResult<unknown, unknown> {
  if (typeof result === 'object' && result !== null && typeof (result as { then?: unknown }).then === 'function') {
    throw new TypeError('step must be synchronous; it returned a promise')
  }
  if (typeof result !== 'object' || result === null || !('state' in result)) {
    throw new TypeError('step must return { state, output }')
  }
}
