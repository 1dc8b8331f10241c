/**
 * A running supervision tree: {@link startSupervision} starts a root supervisor and its whole
 * tree on one event loop and returns the {@link SupervisionTree} handle through which callers
 * `call` and `cast` servers by name (as values in-process, as bytes from the network), inspect
 * the tree, add and remove children at run time, and stop it.
 *
 * This is the composition root of the layer: it wires the clock, the random source, the state
 * store and the event listener into one context shared by the loop, the supervisors and the
 * workers, and nothing below it knows where requests come from. A peer will create one tree and
 * feed `callEncoded` from its network streams; the HTTP handler (`http.ts`) feeds it from HTTP.
 *
 * @module
 */
import { collectIds, type ChildSpec, type SupervisorSpec } from './child-spec.js'
import { systemClock, type Clock } from '../time/clock.js'
import { SupervisionStoppedError, UnknownChildError } from './errors.js'
import { EventLoop, type LoopCounters, type SubmitOptions } from './event-loop.js'
import type { ChildCounts, ChildInfo, SupervisionEvent, SupervisorInfo } from './lifecycle.js'
import { safeEmitter, type RunnerContext } from './runner.js'
import type { ExitReason, ServerRef } from './server.js'
import { memoryStateStore, type StateStore } from './state-store.js'
import { SupervisorRunner } from './supervisor.js'

/** Options of {@link startSupervision}. */
export interface SupervisionOptions {
  /**
   * The most requests admitted and not yet answered at once, across all servers of the tree.
   * @default 1024
   */
  readonly queueCapacity?: number
  /**
   * The clock of every timeout, backoff, deadline and intensity window (a `ManualClock` in tests).
   * @default systemClock
   */
  readonly clock?: Clock
  /**
   * Random numbers in [0, 1), for backoff jitter.
   * @default Math.random
   */
  readonly random?: () => number
  /**
   * Where servers with `persistence` save their state.
   * @default a new in-memory store (states survive restarts within this process only)
   */
  readonly stateStore?: StateStore
  /**
   * Receives every {@link SupervisionEvent}, synchronously and in order. A listener that throws
   * is logged and otherwise ignored.
   * @default undefined
   */
  readonly onEvent?: (event: SupervisionEvent) => void
  /**
   * The timeout of a call that does not give one, in milliseconds.
   * @default 5000 (OTP's default)
   */
  readonly callTimeoutMs?: number
}

/** Options of a call. */
export interface CallOptions {
  /**
   * Milliseconds to wait for the answer, waiting for queue space included.
   * @default the tree's callTimeoutMs (5000)
   */
  readonly timeoutMs?: number
  /**
   * Withdraws the call when it fires (`CallAbortedError`).
   * @default undefined
   */
  readonly signal?: AbortSignal
  /**
   * When the queue is full: `'reject'` at once with `QueueFullError`, or `'wait'` for space.
   * @default 'reject'
   */
  readonly overflow?: 'reject' | 'wait'
}

/** Options of a cast: as a call's, where the timeout bounds only the wait for queue space. */
export type CastOptions = CallOptions

/** Where a tree is: running, stopping, or stopped for `reason`. */
export type TreeStatus =
  | {
    /** Serving. */
    readonly kind: 'running'
  }
  | {
    /** `stop` was called; refusing new requests. */
    readonly kind: 'stopping'
  }
  | {
    /** Everything is stopped. */
    readonly kind: 'stopped'
    /** The root's exit reason: `shutdown` after `stop`, `gave-up` if the root gave up. */
    readonly reason: ExitReason
  }

/** Counters and gauges of a tree. */
export interface SupervisionStats extends Readonly<LoopCounters> {
  /** The queue's capacity. */
  readonly capacity: number
  /** Requests admitted and not yet answered. */
  readonly queued: number
  /** Starts of a child after its first (by its supervisor's decision or `restartChild`), since the tree started. */
  readonly restarts: number
}

/** A running supervision tree. Made by {@link startSupervision}. */
export interface SupervisionTree {
  /** The root supervisor's id. */
  readonly root: string
  /** Resolves with the root's exit reason once the tree stopped (by `stop`, or giving up). */
  readonly exited: Promise<ExitReason>
  /** Where the tree is. */
  status: () => TreeStatus
  /**
   * Steps `input` on the server and resolves with its output. Rejects with
   * `UnknownServerError`, `QueueFullError`, `CallTimeoutError`, `CallAbortedError`,
   * `ServerCrashedError` (the step threw on this input), `ServerExitedError` (the incarnation
   * it was addressed to stopped first), `ServerStoppedError` or `SupervisionStoppedError`.
   */
  call: (<I, O>(server: ServerRef<I, O>, input: I, options?: CallOptions) => Promise<O>) &
  ((server: string, input: unknown, options?: CallOptions) => Promise<unknown>)
  /** Queues `input` for the server without waiting for its output; resolves once queued. */
  cast: (<I, O>(server: ServerRef<I, O>, input: I, options?: CastOptions) => Promise<void>) &
  ((server: string, input: unknown, options?: CastOptions) => Promise<void>)
  /**
   * `call` with the input as bytes in the server's input codec and the output as bytes in its
   * output codec: the entry point for requests from the network. Also rejects with
   * `BadInputError` and `BadOutputError`.
   */
  callEncoded: (server: string, input: Uint8Array, options?: CallOptions) => Promise<Uint8Array>
  /** `cast` with the input as bytes in the server's input codec. */
  castEncoded: (server: string, input: Uint8Array, options?: CastOptions) => Promise<void>
  /** Whether a server of that name is in the tree now. */
  hasServer: (name: string) => boolean
  /** The children of `supervisor` (default: the root). */
  whichChildren: (supervisor?: string) => ChildInfo[]
  /** How many children `supervisor` (default: the root) has, by kind and liveness. */
  countChildren: (supervisor?: string) => ChildCounts
  /** The whole tree. */
  inspect: () => SupervisorInfo
  /** Adds `child` to `supervisor` and starts it; rejects with `ChildStartError` if it cannot start. */
  startChild: (supervisor: string, child: ChildSpec) => Promise<void>
  /** Stops a child (removing it if temporary or under simple_one_for_one). */
  terminateChild: (supervisor: string, child: string) => Promise<void>
  /** Starts a stopped child again. */
  restartChild: (supervisor: string, child: string) => Promise<'restarted' | 'not-stopped'>
  /** Removes a stopped child. */
  deleteChild: (supervisor: string, child: string) => Promise<'deleted' | 'not-stopped'>
  /** Counters and the queue's fill. */
  stats: () => SupervisionStats
  /**
   * Stops the tree: children in reverse order, each within its shutdown time, and all of it
   * within `timeoutMs` if given (what remains at the deadline is killed). New requests are
   * refused from the start; whatever is still queued is rejected.
   */
  stop: (options?: { readonly timeoutMs?: number }) => Promise<ExitReason>
}

/**
 * Starts the tree under `root`: every child in declaration order, depth first. Resolves once all
 * run; rejects with the first `ChildStartError` after stopping what had started.
 * @throws TypeError if `root` or an option is not what it should be, or two children share an id
 */
export async function startSupervision (root: SupervisorSpec, options: SupervisionOptions = {}): Promise<SupervisionTree> {
  if (typeof root !== 'object' || root === null || root.kind !== 'supervisor') {
    throw new TypeError('startSupervision: root must be a spec made by supervisor()')
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('startSupervision: options must be an object')
  const capacity = options.queueCapacity ?? 1024
  if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError('startSupervision: options.queueCapacity must be an integer >= 1')
  const clock = options.clock ?? systemClock
  if (typeof clock.now !== 'function' || typeof clock.setTimer !== 'function') throw new TypeError('startSupervision: options.clock must be a Clock')
  const random = options.random ?? Math.random
  if (typeof random !== 'function') throw new TypeError('startSupervision: options.random must be a function')
  const store = options.stateStore ?? memoryStateStore()
  if (typeof store.load !== 'function' || typeof store.save !== 'function') throw new TypeError('startSupervision: options.stateStore must be a StateStore')
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') throw new TypeError('startSupervision: options.onEvent must be a function')
  const callTimeoutMs = options.callTimeoutMs ?? 5000
  checkTimeout(callTimeoutMs, 'startSupervision: options.callTimeoutMs')

  const restarts = { count: 0 }
  const ctx: RunnerContext = {
    clock,
    random,
    loop: new EventLoop(capacity, clock),
    store,
    ids: collectIds(root),
    emit: countingRestarts(safeEmitter(options.onEvent), restarts)
  }
  const tree = new Tree(root, ctx, callTimeoutMs, restarts)
  await tree.start()
  return tree
}

/** Counts every start of a child after its first into `restarts`, then passes the event on. */
function countingRestarts (emit: (event: SupervisionEvent) => void, restarts: { count: number }): (event: SupervisionEvent) => void {
  return (event) => {
    if (event.type === 'starting' && event.incarnation > 1) restarts.count++
    emit(event)
  }
}

class Tree implements SupervisionTree {
  readonly root: string
  readonly exited: Promise<ExitReason>
  readonly #ctx: RunnerContext
  readonly #runner: SupervisorRunner
  readonly #callTimeoutMs: number
  readonly #defaultSubmit: SubmitOptions
  #status: TreeStatus = { kind: 'running' }
  #stopping: Promise<ExitReason> | undefined
  #resolveExited!: (reason: ExitReason) => void

  readonly #restarts: { readonly count: number }

  constructor (root: SupervisorSpec, ctx: RunnerContext, callTimeoutMs: number, restarts: { readonly count: number }) {
    this.root = root.id
    this.#restarts = restarts
    this.#ctx = ctx
    this.#callTimeoutMs = callTimeoutMs
    this.#defaultSubmit = Object.freeze({ timeoutMs: callTimeoutMs, overflow: 'reject' })
    this.exited = new Promise((resolve) => { this.#resolveExited = resolve })
    // The root has no supervisor: when it gives up (or shuts down on its own), the tree ends.
    this.#runner = new SupervisorRunner(root, undefined, ctx, (_child, _incarnation, reason) => this.#finish(reason))
  }

  async start (): Promise<void> {
    try {
      await this.#runner.start()
    } catch (err) {
      const status = this.#runner.status()
      this.#finish(status.kind === 'down' ? status.reason : { kind: 'shutdown' })
      throw err
    }
  }

  status (): TreeStatus {
    return this.#status
  }

  // Not async: on the fast path a call is queued before it returns (the benchmarks count hops).
  readonly call = (server: string | ServerRef<unknown, unknown>, input: unknown, options?: CallOptions): Promise<never> => {
    try {
      const name = serverName(server, 'call')
      return this.#ctx.loop.call(name, input, false, this.#submitOptions(options, 'call')) as Promise<never>
    } catch (err) {
      return Promise.reject(err)
    }
  }

  readonly cast = (server: string | ServerRef<unknown, unknown>, input: unknown, options?: CastOptions): Promise<void> => {
    try {
      const name = serverName(server, 'cast')
      return this.#ctx.loop.cast(name, input, false, this.#submitOptions(options, 'cast'))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  callEncoded (server: string, input: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
    try {
      const name = serverName(server, 'callEncoded')
      if (!(input instanceof Uint8Array)) throw new TypeError('callEncoded: input must be a Uint8Array')
      return this.#ctx.loop.call(name, input, true, this.#submitOptions(options, 'callEncoded')) as Promise<Uint8Array>
    } catch (err) {
      return Promise.reject(err)
    }
  }

  castEncoded (server: string, input: Uint8Array, options?: CastOptions): Promise<void> {
    try {
      const name = serverName(server, 'castEncoded')
      if (!(input instanceof Uint8Array)) throw new TypeError('castEncoded: input must be a Uint8Array')
      return this.#ctx.loop.cast(name, input, true, this.#submitOptions(options, 'castEncoded'))
    } catch (err) {
      return Promise.reject(err)
    }
  }

  hasServer (name: string): boolean {
    return this.#ctx.loop.has(name)
  }

  whichChildren (supervisor?: string): ChildInfo[] {
    return this.#supervisor(supervisor).whichChildren()
  }

  countChildren (supervisor?: string): ChildCounts {
    return this.#supervisor(supervisor).countChildren()
  }

  inspect (): SupervisorInfo {
    return this.#runner.inspect()
  }

  async startChild (supervisor: string, child: ChildSpec): Promise<void> {
    this.#requireRunning()
    await this.#supervisor(supervisor).startChild(child)
  }

  async terminateChild (supervisor: string, child: string): Promise<void> {
    await this.#supervisor(supervisor).terminateChild(child)
  }

  async restartChild (supervisor: string, child: string): Promise<'restarted' | 'not-stopped'> {
    this.#requireRunning()
    return await this.#supervisor(supervisor).restartChild(child)
  }

  async deleteChild (supervisor: string, child: string): Promise<'deleted' | 'not-stopped'> {
    return await this.#supervisor(supervisor).deleteChild(child)
  }

  stats (): SupervisionStats {
    const loop = this.#ctx.loop
    return { ...loop.counters, capacity: loop.capacity, queued: loop.queued, restarts: this.#restarts.count }
  }

  async stop (options: { readonly timeoutMs?: number } = {}): Promise<ExitReason> {
    if (typeof options !== 'object' || options === null) throw new TypeError('stop: options must be an object')
    if (options.timeoutMs !== undefined) checkTimeout(options.timeoutMs, 'stop: options.timeoutMs')
    if (this.#status.kind === 'stopped') return this.#status.reason
    if (this.#stopping !== undefined) return await this.#stopping
    this.#status = { kind: 'stopping' }
    const deadline = options.timeoutMs === undefined ? Infinity : this.#ctx.clock.now() + options.timeoutMs
    this.#stopping = this.#runner.stop(deadline).then((reason) => {
      this.#runner.markStopped()
      this.#finish(reason)
      return reason
    })
    return await this.#stopping
  }

  #finish (reason: ExitReason): void {
    if (this.#status.kind === 'stopped') return
    this.#status = { kind: 'stopped', reason }
    this.#ctx.loop.close(new SupervisionStoppedError())
    this.#resolveExited(reason)
  }

  #submitOptions (options: CallOptions | undefined, fn: string): SubmitOptions {
    if (this.#status.kind !== 'running') throw new SupervisionStoppedError(`the supervision tree is ${this.#status.kind}`)
    if (options === undefined) return this.#defaultSubmit
    if (typeof options !== 'object' || options === null) throw new TypeError(`${fn}: options must be an object`)
    const timeoutMs = options.timeoutMs ?? this.#callTimeoutMs
    checkTimeout(timeoutMs, `${fn}: options.timeoutMs`)
    const overflow = options.overflow ?? 'reject'
    if (overflow !== 'reject' && overflow !== 'wait') throw new TypeError(`${fn}: options.overflow must be 'reject' or 'wait'`)
    const signal = options.signal
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError(`${fn}: options.signal must be an AbortSignal`)
    return { timeoutMs, overflow, signal }
  }

  #supervisor (id: string | undefined): SupervisorRunner {
    if (id === undefined) return this.#runner
    if (typeof id !== 'string') throw new TypeError('supervisor must be a string id')
    const found = this.#runner.find(id)
    if (found === undefined) throw new UnknownChildError(id, `no supervisor with id ${JSON.stringify(id)} is running in the tree`)
    return found
  }

  #requireRunning (): void {
    if (this.#status.kind !== 'running') throw new SupervisionStoppedError(`the supervision tree is ${this.#status.kind}`)
  }
}

function serverName (server: string | ServerRef<unknown, unknown>, fn: string): string {
  if (typeof server === 'string') return server
  if (typeof server === 'object' && server !== null && typeof server.id === 'string') return server.id
  throw new TypeError(`${fn}: server must be a name or a ServerRef`)
}

function checkTimeout (ms: unknown, what: string): void {
  if (typeof ms !== 'number' || !(ms > 0) || ms === Infinity) throw new TypeError(`${what} must be a finite number of milliseconds > 0`)
}
