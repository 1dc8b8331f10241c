/**
 * Change notifications of one group: listeners called after every flush that changed the
 * group, an async iterator that yields the latest state (a slow consumer skips intermediate
 * ones), and waiting for a condition on the group with a timeout and an `AbortSignal`.
 * Everything ends when the peer stops.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import { AbortError, TimeoutError } from '../../transport/errors.js'
import type { PeerClock } from '../clock.js'
import type { Lifecycle } from '../lifecycle.js'
import type { ClusterState, WaitOptions } from '../options.js'
import { StoppedError } from '../errors.js'

/** Listeners and iterators of one group's state. */
export class StateChanges<S> {
  private readonly listeners = new Set<(state: ClusterState<S>) => void>()
  private readonly wakers = new Set<() => void>()

  constructor (private readonly lifecycle: Lifecycle, private readonly clock: PeerClock, private readonly log: Logger, private readonly group: string) {}

  /** Whether anyone listens (so the state is worth reading). */
  watched (): boolean {
    return this.listeners.size > 0 || this.wakers.size > 0
  }

  /** Tells every listener of `state`; a listener that throws is logged, the others still run. */
  publish (state: ClusterState<S>): void {
    for (const l of [...this.listeners]) {
      try { l(state) } catch (err) { this.log.error('a change listener of group %s threw: %s', this.group === '' ? '(cluster)' : this.group, err) }
    }
    for (const w of [...this.wakers]) w()
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe (listener: (state: ClusterState<S>) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function')
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** The state after each change, as an async iterator; see `Legion.changes`. */
  iterate (options: { signal?: AbortSignal } = {}): AsyncIterableIterator<ClusterState<S>> {
    let latest: ClusterState<S> | undefined
    let wake: (() => void) | undefined
    let done = this.lifecycle.stopped || options.signal?.aborted === true
    const finish = (): void => { done = true; unsubscribe(); unStop(); options.signal?.removeEventListener('abort', finish); wake?.() }
    const unsubscribe = this.subscribe(state => { latest = state; wake?.() })
    const unStop = this.lifecycle.onStop(finish)
    options.signal?.addEventListener('abort', finish, { once: true })
    const iterator: AsyncIterableIterator<ClusterState<S>> = {
      next: async () => {
        while (latest === undefined && !done) await new Promise<void>(resolve => { wake = resolve })
        wake = undefined
        if (latest === undefined) return { done: true, value: undefined }
        const value = latest
        latest = undefined
        return { done: false, value }
      },
      return: async () => { finish(); return { done: true, value: undefined } },
      [Symbol.asyncIterator]: () => iterator
    }
    return iterator
  }

  /**
   * Resolves once `predicate` holds, checked now and after every change; rejects with
   * `TimeoutError` after `timeoutMs` (default 30 s), `AbortError`, or `StoppedError`.
   */
  async until (predicate: () => boolean, what: string, options: WaitOptions = {}): Promise<void> {
    if (predicate()) return
    if (this.lifecycle.stopped) throw new StoppedError()
    const timeoutMs = options.timeoutMs ?? 30_000
    await new Promise<void>((resolve, reject) => {
      const check = (): void => { if (predicate()) { cleanup(); resolve() } }
      const onAbort = (): void => { cleanup(); reject(new AbortError(undefined, { cause: options.signal?.reason })) }
      const timer = this.clock.setTimer(timeoutMs, () => { cleanup(); reject(new TimeoutError(`${what}: not ready within ${timeoutMs} ms`, timeoutMs)) })
      const unStop = this.lifecycle.onStop(() => { cleanup(); reject(new StoppedError()) })
      const cleanup = (): void => {
        timer.cancel()
        unStop()
        this.wakers.delete(check)
        options.signal?.removeEventListener('abort', onAbort)
      }
      this.wakers.add(check)
      if (options.signal?.aborted === true) { onAbort(); return }
      options.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Ends every listener (the peer stops). */
  close (): void {
    this.listeners.clear()
  }
}
