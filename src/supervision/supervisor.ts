/**
 * A supervisor: the imperative shell around the pure restart policy. It starts its children in
 * declaration order (depth first, since a child supervisor starts its own before it counts as
 * started), stops them in reverse order, turns each child exit into a {@link ChildExit} (time
 * and jitter drawn here, from the tree's clock and random source), asks `decideRestart` what to
 * do, and carries the decision out: stop siblings, wait the backoff, start the group, or shut
 * itself down and tell its own supervisor.
 *
 * Everything that changes its children runs as one serial queue of operations (child exits,
 * delayed restarts, children added or removed at run time), so two decisions never interleave.
 * A stop by its parent does not queue: it takes over at once, and operations in progress notice
 * it between steps. Exits that a later decision made moot (the child already restarted) are
 * recognised by their incarnation and ignored.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { checkChildForParent, collectIds, type ChildSpec, type SupervisorSpec } from './child-spec.js'
import type { Timer } from '../time/clock.js'
import { ChildStartError, DuplicateChildError, SupervisionStoppedError, UnknownChildError } from './errors.js'
import { isAlive, type ChildCounts, type ChildInfo, type ChildStatus, type SupervisorInfo } from './lifecycle.js'
import { decideRestart, EMPTY_HISTORY, forgetChild, type ChildExit, type PolicyChild, type RestartDecision, type RestartHistory } from './restart-policy.js'
import { shutdownDeadline, type ChildRunner, type ExitListener, type RunnerContext } from './runner.js'
import type { ExitReason } from './server.js'
import { WorkerRunner } from './worker.js'

const log = logger('legion:supervision:supervisor')

const SHUTDOWN: ExitReason = Object.freeze({ kind: 'shutdown' })

/** The supervisor's own lifecycle: {@link ChildStatus} plus the pending stop. */
type Phase =
  | { readonly kind: 'starting', readonly incarnation: number, readonly since: number }
  | { readonly kind: 'running', readonly incarnation: number, readonly since: number }
  | { readonly kind: 'stopping', readonly incarnation: number, readonly since: number, readonly reason: ExitReason, readonly done: Promise<ExitReason> }
  | { readonly kind: 'down', readonly incarnation: number, readonly reason: ExitReason }
  | { readonly kind: 'restarting', readonly incarnation: number, readonly attempt: number, readonly delayMs: number, readonly restartAt: number }
  | { readonly kind: 'stopped', readonly incarnation: number, readonly reason: ExitReason | undefined }

interface Slot {
  readonly spec: ChildSpec
  readonly runner: ChildRunner
  /** Whether the child was added at run time (it goes when the supervisor restarts). */
  readonly dynamic: boolean
  restarts: number
  startedAt: number | undefined
}

/** A restart waiting out its backoff; `ids` shrinks when a later decision takes children over. */
interface PendingRestart {
  readonly ids: string[]
  readonly timer: Timer
}

/** Runs one supervisor. See the module comment. */
export class SupervisorRunner implements ChildRunner {
  readonly kind = 'supervisor'
  readonly id: string
  readonly #spec: SupervisorSpec
  readonly #ctx: RunnerContext
  readonly #parent: string | undefined
  readonly #onExit: ExitListener
  /** Runners of the declared children, kept across this supervisor's incarnations. */
  readonly #declared = new Map<string, ChildRunner>()
  #phase: Phase = { kind: 'stopped', incarnation: 0, reason: undefined }
  #slots: Slot[] = []
  #history: RestartHistory = EMPTY_HISTORY
  readonly #pending = new Set<PendingRestart>()
  #ops: Promise<void> = Promise.resolve()
  /** Settles when the latest start has finished, however it ended. */
  #startRun: Promise<void> = Promise.resolve()

  constructor (spec: SupervisorSpec, parentId: string | undefined, ctx: RunnerContext, onExit: ExitListener) {
    this.id = spec.id
    this.#spec = spec
    this.#ctx = ctx
    this.#parent = parentId
    this.#onExit = onExit
    for (const child of spec.children) this.#declared.set(child.id, this.#makeRunner(child))
  }

  get incarnation (): number {
    return this.#phase.incarnation
  }

  status (): ChildStatus {
    const p = this.#phase
    return p.kind === 'stopping' ? { kind: p.kind, incarnation: p.incarnation, since: p.since, reason: p.reason } : p
  }

  start (): Promise<void> {
    const run = this.#start()
    this.#startRun = run.then(() => {}, () => {})
    return run
  }

  async #start (): Promise<void> {
    const incarnation = this.#phase.incarnation + 1
    this.#phase = { kind: 'starting', incarnation, since: this.#ctx.clock.now() }
    this.#emit('starting', incarnation)
    this.#history = EMPTY_HISTORY
    for (const slot of this.#slots) this.#detach(slot)
    this.#slots = this.#spec.children.map((spec) => ({ spec, runner: this.#declared.get(spec.id)!, dynamic: false, restarts: 0, startedAt: undefined }))
    for (const slot of this.#slots) slot.runner.attach()
    for (const slot of this.#slots) {
      if (!this.#inPhase('starting', incarnation)) return
      try {
        await slot.runner.start()
        slot.startedAt = this.#ctx.clock.now()
      } catch (err) {
        if (!this.#inPhase('starting', incarnation)) return
        // As OTP: a supervisor that cannot start a child stops those it started, and fails.
        const error = err instanceof ChildStartError ? err : new ChildStartError(slot.spec.id, err)
        await this.#shutDown(incarnation, { kind: 'crashed', phase: 'init', error }, Infinity, false)
        throw error
      }
    }
    if (!this.#inPhase('starting', incarnation)) return
    this.#phase = { kind: 'running', incarnation, since: this.#ctx.clock.now() }
    this.#emit('started', incarnation)
  }

  async stop (deadline: number): Promise<ExitReason> {
    const p = this.#phase
    switch (p.kind) {
      case 'starting':
      case 'running':
        return await this.#shutDown(p.incarnation, SHUTDOWN, shutdownDeadline(this.#ctx.clock, this.#spec.shutdown, deadline), false)
      case 'stopping': return await p.done
      case 'down': return p.reason
      case 'restarting': return SHUTDOWN
      case 'stopped': return p.reason ?? SHUTDOWN
    }
  }

  markRestarting (attempt: number, delayMs: number, restartAt: number): void {
    this.#phase = { kind: 'restarting', incarnation: this.#phase.incarnation, attempt, delayMs, restartAt }
  }

  markStopped (): void {
    const p = this.#phase
    if (p.kind === 'stopped') return
    const reason = p.kind === 'down' || p.kind === 'stopping' ? p.reason : SHUTDOWN
    this.#phase = { kind: 'stopped', incarnation: p.incarnation, reason }
  }

  attach (): void {}

  detach (): void {
    for (const slot of this.#slots) this.#detach(slot)
    this.#slots = []
  }

  // ---- Children added, removed and inspected at run time ------------------------------------

  /** Adds `spec` as the last child and starts it. */
  async startChild (spec: ChildSpec): Promise<void> {
    await this.#enqueue(async () => {
      this.#requireRunning()
      checkChildForParent(spec, this.#spec.flags, 'startChild: child')
      const ids = spec.kind === 'supervisor' ? collectIds(spec) : new Set([spec.id])
      for (const id of ids) if (this.#ctx.ids.has(id)) throw new DuplicateChildError(id)
      for (const id of ids) this.#ctx.ids.add(id)
      const slot: Slot = { spec, runner: this.#makeRunner(spec), dynamic: true, restarts: 0, startedAt: undefined }
      this.#slots.push(slot)
      slot.runner.attach()
      try {
        await slot.runner.start()
        slot.startedAt = this.#ctx.clock.now()
      } catch (err) {
        if (this.#slots.includes(slot)) this.#remove(slot)
        throw err
      }
    })
  }

  /** Stops a child; a temporary child, or any child of a simple_one_for_one supervisor, is removed. */
  async terminateChild (id: string): Promise<void> {
    await this.#enqueue(async () => {
      const slot = this.#requireSlot(id)
      this.#claimPending([id])
      await slot.runner.stop(Infinity)
      slot.runner.markStopped()
      if (slot.spec.restart === 'temporary' || this.#spec.flags.strategy === 'simple_one_for_one') this.#remove(slot)
    })
  }

  /** Starts a stopped child again; `'not-stopped'` if it is not stopped. */
  async restartChild (id: string): Promise<'restarted' | 'not-stopped'> {
    return await this.#enqueue(async () => {
      this.#requireRunning()
      const slot = this.#requireSlot(id)
      if (slot.runner.status().kind !== 'stopped') return 'not-stopped'
      try {
        await slot.runner.start()
        slot.startedAt = this.#ctx.clock.now()
      } catch (err) {
        slot.runner.markStopped()
        throw err
      }
      return 'restarted'
    })
  }

  /** Removes a stopped child; `'not-stopped'` if it is not stopped. */
  async deleteChild (id: string): Promise<'deleted' | 'not-stopped'> {
    return await this.#enqueue(async () => {
      const slot = this.#requireSlot(id)
      if (slot.runner.status().kind !== 'stopped') return 'not-stopped'
      this.#remove(slot)
      return 'deleted'
    })
  }

  /** This supervisor's children, in declaration order. */
  whichChildren (): ChildInfo[] {
    return this.#slots.map((s) => ({
      id: s.spec.id,
      kind: s.spec.kind,
      restart: s.spec.restart,
      significant: s.spec.significant,
      status: s.runner.status(),
      restarts: s.restarts
    }))
  }

  /** How many children, and of which kind. */
  countChildren (): ChildCounts {
    const children = this.whichChildren()
    return {
      specs: children.length,
      active: children.filter((c) => isAlive(c.status)).length,
      supervisors: children.filter((c) => c.kind === 'supervisor').length,
      workers: children.filter((c) => c.kind === 'worker').length
    }
  }

  /** This supervisor and its subtree. */
  inspect (): SupervisorInfo {
    const children = this.whichChildren().map((info, i) => {
      const runner = this.#slots[i]!.runner
      return runner instanceof SupervisorRunner ? { ...info, subtree: runner.inspect() } : info
    })
    return { id: this.id, strategy: this.#spec.flags.strategy, status: this.status(), recentRestarts: this.#history.restarts.length, children }
  }

  /** The supervisor `id` in this subtree (this one included), if any. */
  find (id: string): SupervisorRunner | undefined {
    if (id === this.id) return this
    for (const slot of this.#slots) {
      if (slot.runner instanceof SupervisorRunner) {
        const found = slot.runner.find(id)
        if (found !== undefined) return found
      }
    }
    return undefined
  }

  // ---- Exits and decisions -------------------------------------------------------------------

  /** Children report exits they did not choose here; the decision waits its turn. */
  readonly #childExited: ExitListener = (child, incarnation) => {
    void this.#enqueue(async () => { await this.#decide(child.id, incarnation) })
  }

  async #decide (id: string, incarnation: number): Promise<void> {
    // A child that started early can exit while its later siblings still start: as OTP's exit
    // signals wait in a starting supervisor's mailbox, the decision waits for the start.
    if (this.#phase.kind === 'starting') await this.#startRun
    if (this.#phase.kind !== 'running') return
    const slot = this.#slot(id)
    if (slot === undefined || slot.runner.incarnation !== incarnation) return
    const status = slot.runner.status()
    if (status.kind !== 'down') return // a later decision already dealt with this child
    const clock = this.#ctx.clock
    const exit: ChildExit = { child: id, reason: status.reason, at: clock.now(), jitter: this.#ctx.random() }
    const { history, decision } = decideRestart(this.#spec.flags, this.#history, this.#policyChildren(), exit)
    this.#history = history
    this.#ctx.emit({ type: 'decided', at: clock.now(), supervisor: this.id, exit, decision })
    await this.#carryOut(decision)
  }

  async #carryOut (decision: RestartDecision): Promise<void> {
    const phase = this.#phase
    if (phase.kind !== 'running') return
    switch (decision.kind) {
      case 'keep-stopped': {
        const slot = this.#slot(decision.child)
        slot?.runner.markStopped()
        if (slot !== undefined && decision.remove) this.#remove(slot)
        return
      }
      case 'shut-down':
        await this.#shutDown(phase.incarnation, decision.reason, Infinity, true)
        return
      case 'restart': {
        for (const id of decision.stop) {
          await this.#slot(id)?.runner.stop(Infinity)
          if (this.#phase.kind !== 'running') return
        }
        for (const id of decision.remove) {
          const slot = this.#slot(id)
          if (slot !== undefined) this.#remove(slot)
        }
        this.#claimPending(decision.start)
        const restartAt = this.#ctx.clock.now() + decision.delayMs
        for (const id of decision.start) {
          const slot = this.#slot(id)
          if (slot === undefined) continue
          slot.restarts++
          slot.runner.markRestarting(id === decision.child ? decision.attempt : 0, decision.delayMs, restartAt)
        }
        if (decision.delayMs <= 0) {
          await this.#restart(decision.start)
          return
        }
        const ids = [...decision.start]
        const pending: PendingRestart = {
          ids,
          timer: this.#ctx.clock.setTimer(decision.delayMs, () => {
            this.#pending.delete(pending)
            void this.#enqueue(async () => { await this.#restart(pending.ids) })
          })
        }
        this.#pending.add(pending)
      }
    }
  }

  /** Starts `ids` in order; a child that fails to start is down, and decided on like any exit. */
  async #restart (ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      if (this.#phase.kind !== 'running') return
      const slot = this.#slot(id)
      if (slot === undefined || slot.runner.status().kind !== 'restarting') continue
      try {
        await slot.runner.start()
        slot.startedAt = this.#ctx.clock.now()
      } catch {
        // The rest of `ids` stays `restarting`: the group of this child's decision contains them.
        const incarnation = slot.runner.incarnation
        void this.#enqueue(async () => { await this.#decide(id, incarnation) })
        return
      }
    }
  }

  /**
   * Leaves `starting` or `running` for `reason`: pending restarts are dropped, children are stopped
   * in reverse order (all at once for simple_one_for_one) within `deadline`, and the supervisor
   * goes `down`. An exit it chose itself (gave up, auto_shutdown) is reported to its parent.
   */
  #shutDown (incarnation: number, reason: ExitReason, deadline: number, report: boolean): Promise<ExitReason> {
    const done = Promise.resolve().then(async () => {
      for (const p of this.#pending) p.timer.cancel()
      this.#pending.clear()
      const reversed = [...this.#slots].reverse()
      if (this.#spec.flags.strategy === 'simple_one_for_one') {
        await Promise.all(reversed.map(async (s) => await s.runner.stop(deadline)))
      } else {
        for (const s of reversed) await s.runner.stop(deadline)
      }
      for (const s of this.#slots) s.runner.markStopped()
      this.#phase = { kind: 'down', incarnation, reason }
      this.#emitEnd('exited', incarnation, reason)
      if (report) this.#onExit(this, incarnation, reason)
      return reason
    })
    this.#phase = { kind: 'stopping', incarnation, since: this.#ctx.clock.now(), reason, done }
    this.#emitEnd('terminating', incarnation, reason)
    return done
  }

  // ---- Internals ---------------------------------------------------------------------------

  #makeRunner (spec: ChildSpec): ChildRunner {
    return spec.kind === 'worker'
      ? new WorkerRunner(spec, this.id, this.#ctx, this.#childExited)
      : new SupervisorRunner(spec, this.id, this.#ctx, this.#childExited)
  }

  #policyChildren (): PolicyChild[] {
    return this.#slots.map((s) => {
      const status = s.runner.status()
      return {
        id: s.spec.id,
        restart: s.spec.restart,
        significant: s.spec.significant,
        status: isAlive(status) ? 'alive' : status.kind === 'stopped' ? 'stopped' : 'pending',
        startedAt: s.startedAt
      }
    })
  }

  /** Takes `ids` out of every pending restart (a newer decision now owns them). */
  #claimPending (ids: readonly string[]): void {
    for (const p of this.#pending) {
      for (const id of ids) {
        const i = p.ids.indexOf(id)
        if (i >= 0) p.ids.splice(i, 1)
      }
      if (p.ids.length === 0) {
        p.timer.cancel()
        this.#pending.delete(p)
      }
    }
  }

  /** Takes a child out for good: unregistered, its ids freed if it was added at run time. */
  #remove (slot: Slot): void {
    this.#slots = this.#slots.filter((s) => s !== slot)
    this.#detach(slot)
    this.#history = forgetChild(this.#history, slot.spec.id)
  }

  #detach (slot: Slot): void {
    slot.runner.detach()
    if (slot.dynamic) {
      const ids = slot.spec.kind === 'supervisor' ? collectIds(slot.spec) : [slot.spec.id]
      for (const id of ids) this.#ctx.ids.delete(id)
    }
  }

  #slot (id: string): Slot | undefined {
    return this.#slots.find((s) => s.spec.id === id)
  }

  #requireSlot (id: string): Slot {
    const slot = this.#slot(id)
    if (slot === undefined) throw new UnknownChildError(id, `supervisor ${JSON.stringify(this.id)} has no child ${JSON.stringify(id)}`)
    return slot
  }

  #requireRunning (): void {
    if (this.#phase.kind !== 'running') throw new SupervisionStoppedError(`supervisor ${JSON.stringify(this.id)} is not running (${this.#phase.kind})`)
  }

  #inPhase (kind: 'starting' | 'running', incarnation: number): boolean {
    return this.#phase.kind === kind && this.#phase.incarnation === incarnation
  }

  /** Runs `op` after every operation queued before it; its failure is the caller's, not the queue's. */
  #enqueue<T> (op: () => Promise<T>): Promise<T> {
    const run = this.#ops.then(op)
    this.#ops = run.then(() => {}, (err: unknown) => { log('supervisor %s: operation failed: %e', this.id, err) })
    return run
  }

  #emit (type: 'starting' | 'started', incarnation: number): void {
    this.#ctx.emit({ type, at: this.#ctx.clock.now(), supervisor: this.#parent, child: this.id, kind: 'supervisor', incarnation })
  }

  #emitEnd (type: 'terminating' | 'exited', incarnation: number, reason: ExitReason): void {
    this.#ctx.emit({ type, at: this.#ctx.clock.now(), supervisor: this.#parent, child: this.id, kind: 'supervisor', incarnation, reason })
  }
}
