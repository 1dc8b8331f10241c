/**
 * Waiting for something of the service to become true (a holder known, a replica set complete,
 * a run ready): each wait is re-checked whenever the service says something changed, bounded
 * by a timeout on the injected clock and by an `AbortSignal`, and reports which of the two
 * ended it, so that callers turn it into their own typed error.
 *
 * @module
 */
import type { Clock } from '../time/clock.js'

/** How a wait ended without its condition. */
export type WaitEnd = { readonly kind: 'timeout' } | { readonly kind: 'aborted', readonly reason: unknown }

/** A wait's result: the probe's value, or why there is none. */
export type WaitResult<T> = { readonly kind: 'value', readonly value: T } | WaitEnd

/** The conditions waited for; see the module comment. */
export class Waits {
  private readonly checks = new Set<() => void>()

  constructor (private readonly clock: Clock) {}

  /** Re-checks every wait. */
  changed (): void {
    for (const check of [...this.checks]) check()
  }

  /** Waits in flight (for tests: nothing may be left behind). */
  get pending (): number {
    return this.checks.size
  }

  /**
   * Resolves with the first value of `probe` other than `undefined` (checked now and after every
   * {@link changed}), or with `timeout` after `timeoutMs`, or `aborted` when `signal` fires.
   * Never rejects: a probe that throws counts as no value yet (and is logged by the caller's
   * own code, which owns the probe).
   */
  async until<T> (probe: () => T | undefined, timeoutMs: number, signal?: AbortSignal): Promise<WaitResult<T>> {
    const attempt = (): T | undefined => { try { return probe() } catch { return undefined } }
    const first = attempt()
    if (first !== undefined) return { kind: 'value', value: first }
    if (signal?.aborted === true) return { kind: 'aborted', reason: signal.reason }
    if (timeoutMs <= 0) return { kind: 'timeout' }
    return await new Promise<WaitResult<T>>((resolve) => {
      const finish = (result: WaitResult<T>): void => {
        timer.cancel()
        this.checks.delete(check)
        signal?.removeEventListener('abort', onAbort)
        resolve(result)
      }
      const check = (): void => {
        const value = attempt()
        if (value !== undefined) finish({ kind: 'value', value })
      }
      const onAbort = (): void => { finish({ kind: 'aborted', reason: signal?.reason }) }
      const timer = this.clock.setTimer(timeoutMs, () => { finish({ kind: 'timeout' }) })
      this.checks.add(check)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Waits `ms` (or less, if `signal` fires); resolves whether it fired. */
  async pause (ms: number, signal?: AbortSignal): Promise<boolean> {
    const r = await this.until<never>(() => undefined, ms, signal)
    return r.kind === 'aborted'
  }
}
