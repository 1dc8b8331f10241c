/**
 * Waiting for a condition of the discovery service to hold (a candidacy settled or running, a
 * registration settled, a holder known): re-checked whenever the service says something
 * changed, bounded by a timeout on the injected clock and an `AbortSignal`.
 *
 * @module
 */
import type { Clock } from '../time/clock.js'
import type { WaitOptions } from '../peer/options.js'
import { AbortError, TimeoutError } from '../transport/errors.js'

/** The default bound of a wait, in milliseconds. */
export const DEFAULT_WAIT_MS = 30_000

/** Conditions waited for; see the module comment. */
export class Conditions {
  private readonly checks = new Set<() => void>()

  constructor (private readonly clock: Clock) {}

  /** Re-checks every condition waited for. */
  changed (): void {
    for (const check of [...this.checks]) check()
  }

  /**
   * Resolves with the first value of `probe` other than `undefined`, checked now and after every
   * {@link changed}; `probe` may throw to reject. Rejects with `TimeoutError` after `timeoutMs`
   * (default 30 s) or `AbortError` when `signal` fires.
   */
  async until<T> (probe: () => T | undefined, what: string, options: WaitOptions = {}): Promise<T> {
    const first = probe()
    if (first !== undefined) return first
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS
    return await new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        timer.cancel()
        this.checks.delete(check)
        options.signal?.removeEventListener('abort', onAbort)
      }
      const check = (): void => {
        let value: T | undefined
        try { value = probe() } catch (err) { finish(); reject(err); return }
        if (value !== undefined) { finish(); resolve(value) }
      }
      const onAbort = (): void => { finish(); reject(new AbortError(undefined, { cause: options.signal?.reason })) }
      const timer = this.clock.setTimer(timeoutMs, () => { finish(); reject(new TimeoutError(`${what}: not within ${timeoutMs} ms`, timeoutMs)) })
      this.checks.add(check)
      if (options.signal?.aborted === true) { onAbort(); return }
      options.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }
}
