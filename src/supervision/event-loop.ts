/**
 * The event loop of one supervision tree: a bounded queue of requests, one mailbox per server,
 * and a drain that steps whichever server has work, one request at a time, on Node's one thread.
 * This is the seed's `EventLoop` without threads: `call` and `cast` write onto the queue, the
 * loop hands each input to its server's `step` and the output back to the caller.
 *
 * Its rules:
 * 1. Capacity counts requests admitted and not yet answered, across all servers. A request that
 *    finds the queue full is refused with `QueueFullError` or waits for space (FIFO), as its
 *    caller chose; nothing is dropped silently.
 * 2. A request is bound at admission to a server incarnation: the running (or starting) one, or
 *    the next one while the server is down and a restart may follow. When the incarnation it is
 *    bound to stops before stepping it, it is rejected at once (`ServerExitedError`); a server
 *    that stays stopped rejects every request waiting for it (`ServerStoppedError`).
 * 3. A call that times out or is aborted is withdrawn: it is never stepped afterwards, so no
 *    answer can come late. Each request is settled exactly once.
 * 4. Requests to one server are stepped in admission order; servers take turns.
 *
 * Encoded requests (bytes in the server's input codec, from the network or HTTP) are decoded at
 * admission, so a malformed input is refused (`BadInputError`) before it takes space or reaches
 * `step`; their outputs are encoded with the server's output codec. This is where a peer's
 * network service will write requests that arrive from other peers.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { decodeWith, encodeWith } from '../codec/codec.js'
import type { Clock } from '../time/clock.js'
import { Deadlines } from './deadlines.js'
import {
  BadInputError, BadOutputError, CallAbortedError, CallTimeoutError, QueueFullError, ServerCrashedError,
  ServerExitedError, UnknownServerError
} from './errors.js'
import type { ExitReason, ServerCodecs } from './server.js'

const log = logger('legion:supervision:loop')

/** Requests stepped per macrotask before the loop yields to I/O. */
const BATCH = 1024

/** Where a request admitted now is addressed, or why it is refused. */
export type Admission =
  | { readonly kind: 'bind', readonly incarnation: number }
  | { readonly kind: 'refuse', readonly error: Error }

/** What stepping one input gave. */
export type StepOutcome =
  | { readonly kind: 'answered', readonly output: unknown }
  | { readonly kind: 'crashed', readonly incarnation: number, readonly error: unknown }

/** What the loop needs of a server (the worker runner provides it). */
export interface ServerHost {
  /** The server's name. */
  readonly id: string
  /** Its codecs, for encoded requests. */
  readonly codecs: ServerCodecs<unknown, unknown>
  /** Where a request admitted now goes. */
  admission: () => Admission
  /** Whether `incarnation` is the one running now. */
  isRunning: (incarnation: number) => boolean
  /** Steps one input on the running incarnation. Never throws. */
  step: (input: unknown) => StepOutcome
}

/** How a request waits. */
export interface SubmitOptions {
  /** Milliseconds the whole request may take (waiting for space included). */
  readonly timeoutMs: number
  /** Withdraws the request when it fires. */
  readonly signal?: AbortSignal | undefined
  /** What to do when the queue is full. */
  readonly overflow: 'reject' | 'wait'
}

/** Counters of one loop since it started. */
export interface LoopCounters {
  /** Calls admitted. */
  calls: number
  /** Casts admitted. */
  casts: number
  /** Inputs stepped. */
  steps: number
  /** Steps that threw. */
  crashes: number
  /** Calls that timed out (withdrawn). */
  timeouts: number
  /** Calls aborted by their signal (withdrawn). */
  aborts: number
  /** Requests refused because the queue was full. */
  refusedFull: number
  /** Requests rejected because the incarnation they were bound to exited, or the server stopped. */
  rejectedExited: number
  /** Answers that arrived after their request was settled; stays 0 in-process (rule 3). */
  lateRepliesDropped: number
}

interface CallReply {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
  readonly encode: boolean
  /** The caller's timeout, for the error. */
  readonly timeoutMs: number
  /** The deadline's lane in {@link Deadlines} (what was left of the timeout at queueing). */
  readonly deadlineMs: number
  detach: (() => void) | undefined
}

interface Request {
  readonly box: Mailbox
  readonly incarnation: number
  readonly input: unknown
  readonly reply: CallReply | undefined
  state: 'queued' | 'settled'
}

interface Mailbox {
  readonly host: ServerHost
  items: Request[]
  head: number
  /** Requests in `items` still queued. */
  queued: number
  inRunQueue: boolean
  registered: boolean
}

interface SpaceWaiter {
  readonly grant: () => void
}

/** The loop; see the module comment. One per supervision tree. */
export class EventLoop {
  readonly #capacity: number
  readonly #clock: Clock
  readonly #boxes = new Map<string, Mailbox>()
  readonly #spaceWaiters: SpaceWaiter[] = []
  #runQueue: Mailbox[] = []
  #runHead = 0
  #live = 0
  #drainScheduled = false
  #closed: Error | undefined
  readonly #deadlines: Deadlines<Request>
  readonly #drainTask = (): void => { this.#drain() }
  readonly counters: LoopCounters = { calls: 0, casts: 0, steps: 0, crashes: 0, timeouts: 0, aborts: 0, refusedFull: 0, rejectedExited: 0, lateRepliesDropped: 0 }

  constructor (capacity: number, clock: Clock) {
    this.#capacity = capacity
    this.#clock = clock
    this.#deadlines = new Deadlines<Request>(clock, capacity, (r) => r.state === 'queued', (r) => {
      this.counters.timeouts++
      this.#withdraw(r, new CallTimeoutError(r.box.host.id, r.reply!.timeoutMs))
    })
  }

  /** The most requests admitted and unanswered at once. */
  get capacity (): number { return this.#capacity }

  /** Requests admitted and not yet answered (plus space handed to waiting requests). */
  get queued (): number { return this.#live }

  /** Requests held in mailbox arrays, stepped ones and tombstones included: stays near `queued` (for tests). */
  retainedRequests (): number {
    let n = 0
    for (const box of this.#boxes.values()) n += box.items.length
    return n
  }

  /** Makes `host` addressable by its id. */
  register (host: ServerHost): void {
    this.#boxes.set(host.id, { host, items: [], head: 0, queued: 0, inRunQueue: false, registered: true })
  }

  /** Removes a server; whatever waits for it is rejected with `error()`. */
  unregister (id: string, error: () => Error): void {
    const box = this.#boxes.get(id)
    if (box === undefined) return
    this.#boxes.delete(id)
    box.registered = false
    this.#rejectWhere(box, () => true, error)
  }

  /** Whether a server of that name is registered. */
  has (id: string): boolean {
    return this.#boxes.has(id)
  }

  /** Refuses everything from now on and rejects everything queued or waiting with `error`. */
  close (error: Error): void {
    if (this.#closed !== undefined) return
    this.#closed = error
    for (const box of this.#boxes.values()) this.#rejectWhere(box, () => true, () => error)
    for (const waiter of [...this.#spaceWaiters]) waiter.grant()
    this.#deadlines.clear()
  }

  /**
   * Submits a call: resolves with the output (bytes when `encoded`). Not an `async` function:
   * when there is space, the request is queued before this returns, with no promise hop.
   */
  call (id: string, input: unknown, encoded: boolean, options: SubmitOptions): Promise<unknown> {
    let box: Mailbox
    let value: unknown
    try {
      ({ box, value } = this.#check(id, input, encoded, options))
    } catch (err) {
      return Promise.reject(err)
    }
    if (this.#takeSpace()) return this.#queueCall(id, box, value, encoded, options, options.timeoutMs)
    if (options.overflow === 'reject') return Promise.reject(this.#full())
    const started = this.#clock.now()
    return this.#waitForSpace(id, options).then(async () => {
      // The deadline covers the wait: what is left of it bounds the call itself.
      const left = Math.max(0, options.timeoutMs - (this.#clock.now() - started))
      return await this.#queueCall(id, box, value, encoded, options, left)
    })
  }

  /** Submits a cast: resolves once it is queued. */
  cast (id: string, input: unknown, encoded: boolean, options: SubmitOptions): Promise<void> {
    let box: Mailbox
    let value: unknown
    try {
      ({ box, value } = this.#check(id, input, encoded, options))
      if (this.#takeSpace()) {
        this.#enqueue(box, value, undefined)
        this.counters.casts++
        return Promise.resolve()
      }
    } catch (err) {
      return Promise.reject(err)
    }
    if (options.overflow === 'reject') return Promise.reject(this.#full())
    return this.#waitForSpace(id, options).then(() => {
      this.#enqueue(box, value, undefined)
      this.counters.casts++
    })
  }

  /** The server's incarnation now runs: step what waits for it. */
  runnable (id: string): void {
    const box = this.#boxes.get(id)
    if (box !== undefined && box.queued > 0) this.#schedule(box)
  }

  /** `incarnation` of `id` stopped stepping for `reason`: reject what was bound to it. */
  incarnationEnded (id: string, incarnation: number, reason: ExitReason): void {
    const box = this.#boxes.get(id)
    if (box === undefined) return
    this.#rejectWhere(box, (r) => r.incarnation === incarnation, () => new ServerExitedError(id, incarnation, reason))
  }

  /** The server will not run again for now: reject everything waiting for it. */
  rejectWaiting (id: string, error: () => Error): void {
    const box = this.#boxes.get(id)
    if (box !== undefined) this.#rejectWhere(box, () => true, error)
  }

  /** Checks the state and the name, and decodes an encoded input. Throws what the caller gets. */
  #check (id: string, input: unknown, encoded: boolean, options: SubmitOptions): { box: Mailbox, value: unknown } {
    if (this.#closed !== undefined) throw this.#closed
    if (options.signal?.aborted === true) throw new CallAbortedError(id, { cause: options.signal.reason })
    const box = this.#boxes.get(id)
    if (box === undefined) throw new UnknownServerError(id)
    if (!encoded) return { box, value: input }
    try {
      return { box, value: decodeWith(box.host.codecs.input, input as Uint8Array) }
    } catch (err) {
      throw new BadInputError(id, err)
    }
  }

  /** Takes one unit of capacity if there is one and nobody waits for it first (rule 1). */
  #takeSpace (): boolean {
    if (this.#live < this.#capacity && this.#spaceWaiters.length === 0) {
      this.#live++
      return true
    }
    return false
  }

  #full (): QueueFullError {
    this.counters.refusedFull++
    return new QueueFullError(this.#capacity)
  }

  /** Queues a call that holds capacity; its deadline is `timeoutMs` from now. */
  #queueCall (id: string, box: Mailbox, value: unknown, encoded: boolean, options: SubmitOptions, timeoutMs: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const reply: CallReply = { resolve, reject, encode: encoded, timeoutMs: options.timeoutMs, deadlineMs: timeoutMs, detach: undefined }
      const request = this.#enqueue(box, value, reply)
      if (request === undefined) return
      this.counters.calls++
      this.#deadlines.add(request, timeoutMs)
      const signal = options.signal
      if (signal !== undefined) {
        const onAbort = (): void => {
          this.counters.aborts++
          this.#withdraw(request, new CallAbortedError(id, { cause: signal.reason }))
        }
        signal.addEventListener('abort', onAbort, { once: true })
        reply.detach = () => signal.removeEventListener('abort', onAbort)
        if (signal.aborted) onAbort()
      }
    })
  }

  /** Waits for a unit of capacity (FIFO), at most `timeoutMs`; rejects with `QueueFullError` then. */
  async #waitForSpace (id: string, options: SubmitOptions): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      let settled = false
      const finish = (error?: Error): void => {
        if (settled) return
        settled = true
        timer.cancel()
        options.signal?.removeEventListener('abort', onAbort)
        const i = this.#spaceWaiters.indexOf(waiter)
        if (i >= 0) this.#spaceWaiters.splice(i, 1)
        if (error === undefined) resolve(); else reject(error)
      }
      const waiter: SpaceWaiter = {
        grant: () => {
          if (this.#closed !== undefined) { finish(this.#closed); return }
          this.#live++
          finish()
        }
      }
      const onAbort = (): void => { finish(new CallAbortedError(id, { cause: options.signal?.reason })) }
      const timer = this.#clock.setTimer(options.timeoutMs, () => {
        this.counters.refusedFull++
        finish(new QueueFullError(this.#capacity, `the request queue stayed full for ${options.timeoutMs} ms`))
      })
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.#spaceWaiters.push(waiter)
    })
  }

  /** Gives back one unit of capacity: to the first waiter, or to the pool. */
  #release (): void {
    this.#live--
    const waiter = this.#spaceWaiters[0]
    if (waiter !== undefined) waiter.grant()
  }

  /** Binds a request that holds capacity to an incarnation and queues it; `undefined` if refused. */
  #enqueue (box: Mailbox, input: unknown, reply: CallReply | undefined): Request | undefined {
    if (this.#closed !== undefined) return this.#refuse(reply, this.#closed)
    if (!box.registered) return this.#refuse(reply, new UnknownServerError(box.host.id))
    const admission = box.host.admission()
    if (admission.kind === 'refuse') return this.#refuse(reply, admission.error)
    const request: Request = { box, incarnation: admission.incarnation, input, reply, state: 'queued' }
    box.items.push(request)
    box.queued++
    if (box.host.isRunning(admission.incarnation)) this.#schedule(box)
    return request
  }

  /** Gives back the capacity a refused request held; a call rejects, a cast throws. */
  #refuse (reply: CallReply | undefined, error: Error): undefined {
    this.#release()
    if (reply === undefined) throw error
    reply.reject(error)
    return undefined
  }

  /**
   * Settles `request` once (rule 3) with an output (`ok`) or an error; a second settlement is
   * counted and dropped. (Two arguments rather than a result object: one allocation less per call.)
   */
  #settle (request: Request, ok: boolean, outcome: unknown): void {
    if (request.state === 'settled') {
      this.counters.lateRepliesDropped++
      return
    }
    request.state = 'settled'
    request.box.queued--
    this.#release()
    const reply = request.reply
    if (reply === undefined) return
    this.#deadlines.trim(reply.deadlineMs)
    reply.detach?.()
    if (!ok) {
      reply.reject(outcome as Error)
      return
    }
    if (!reply.encode) {
      reply.resolve(outcome)
      return
    }
    try {
      reply.resolve(encodeWith(request.box.host.codecs.output, outcome))
    } catch (err) {
      reply.reject(new BadOutputError(request.box.host.id, err))
    }
  }

  /** A timeout or abort: settle with `error` and leave a tombstone the drain skips. */
  #withdraw (request: Request, error: Error): void {
    if (request.state === 'settled') return
    this.#settle(request, false, error)
    this.#compact(request.box)
  }

  #rejectWhere (box: Mailbox, match: (r: Request) => boolean, error: () => Error): void {
    if (box.queued === 0) return
    for (let i = box.head; i < box.items.length; i++) {
      const r = box.items[i]!
      if (r.state === 'queued' && match(r)) {
        this.counters.rejectedExited++
        this.#settle(r, false, error())
      }
    }
    this.#compact(box)
  }

  /**
   * Keeps a mailbox's array from growing: emptied in place when nothing is queued, its stepped
   * head dropped once it is most of the array, its settled tombstones dropped once they outnumber
   * the queued requests. A request in hand (before `head`) is unaffected.
   */
  #compact (box: Mailbox): void {
    if (box.queued === 0) {
      box.items.length = 0
      box.head = 0
    } else if (box.head > 1024 && box.head * 2 > box.items.length) {
      box.items = box.items.slice(box.head)
      box.head = 0
    } else if (box.items.length - box.head - box.queued > 64 && box.items.length - box.head > 2 * box.queued) {
      box.items = box.items.slice(box.head).filter((r) => r.state === 'queued')
      box.head = 0
    }
  }

  #schedule (box: Mailbox): void {
    if (box.inRunQueue) return
    box.inRunQueue = true
    this.#runQueue.push(box)
    if (!this.#drainScheduled) {
      this.#drainScheduled = true
      queueMicrotask(this.#drainTask)
    }
  }

  /** Steps up to BATCH requests, servers taking turns (rule 4), then yields if work is left. */
  #drain (): void {
    let budget = BATCH
    while (budget > 0 && this.#runHead < this.#runQueue.length) {
      const box = this.#runQueue[this.#runHead++]!
      box.inRunQueue = false
      const request = this.#next(box)
      if (request === undefined) continue
      if (!box.host.isRunning(request.incarnation)) {
        // Not running yet (starting, or the next incarnation): `runnable` reschedules it.
        box.head--
        continue
      }
      budget--
      this.#stepOne(request)
      this.#compact(box)
      if (box.queued > 0 && box.registered) {
        const peek = this.#peek(box)
        if (peek !== undefined && box.host.isRunning(peek.incarnation)) {
          box.inRunQueue = true
          this.#runQueue.push(box)
        }
      }
    }
    if (this.#runHead > 1024 && this.#runHead * 2 > this.#runQueue.length) {
      this.#runQueue = this.#runQueue.slice(this.#runHead)
      this.#runHead = 0
    }
    if (this.#runHead < this.#runQueue.length) {
      setImmediate(this.#drainTask)
    } else {
      this.#runQueue = []
      this.#runHead = 0
      this.#drainScheduled = false
    }
  }

  #stepOne (request: Request): void {
    const host = request.box.host
    this.counters.steps++
    let outcome: StepOutcome
    try {
      outcome = host.step(request.input)
    } catch (err) {
      // host.step catches the user's errors; reaching here is a bug in the layer itself.
      log.error('server %s: step failed inside the supervision layer: %e', host.id, err)
      outcome = { kind: 'crashed', incarnation: request.incarnation, error: err }
    }
    if (outcome.kind === 'answered') {
      this.#settle(request, true, outcome.output)
    } else {
      this.counters.crashes++
      this.#settle(request, false, new ServerCrashedError(host.id, outcome.incarnation, outcome.error))
    }
  }

  /** The next queued request of `box`, advancing past tombstones; `undefined` if none. */
  #next (box: Mailbox): Request | undefined {
    while (box.head < box.items.length) {
      const r = box.items[box.head++]!
      if (r.state === 'queued') return r
    }
    return undefined
  }

  #peek (box: Mailbox): Request | undefined {
    for (let i = box.head; i < box.items.length; i++) {
      const r = box.items[i]!
      if (r.state === 'queued') return r
    }
    return undefined
  }
}
