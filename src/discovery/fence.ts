/**
 * A fence for a resource outside the fold (a database row, a file, a device): it remembers, per
 * name, the highest fencing token it has admitted, and refuses any lower one. A holder passes
 * its token with every write; once a successor's write got through, the deposed holder's are
 * refused, whatever it believes. The tokens are the ids of the granting events, totally ordered
 * and known to every peer, so the resource needs no clock and no lease arithmetic.
 *
 * Inside Legion no fence is needed: `Discovery.isCurrent(name, token)` checks a token against
 * the settled grant, and a checkpoint from a deposed holder folds as a `fenced` failure.
 *
 * @module
 */
import { compareEventIds, type EventId } from '../eventfold/types.js'
import { FencedError } from './errors.js'

/**
 * The highest token seen per name, for a resource to refuse deposed holders.
 *
 * @example
 * ```ts
 * const fence = new Fence()
 * fence.admit('boss', ctx.token)      // the holder's write goes through
 * fence.admit('boss', olderToken)     // throws FencedError
 * ```
 */
export class Fence {
  private readonly highest = new Map<string, EventId>()

  /**
   * Admits a write under `token` for `name`: at least as high as every token admitted before.
   * @throws FencedError when a higher token was admitted already
   */
  admit (name: string, token: EventId): void {
    if (!this.check(name, token)) throw new FencedError(name, token)
  }

  /** Whether a write under `token` for `name` is admitted (recording it if so). */
  check (name: string, token: EventId): boolean {
    if (typeof name !== 'string') throw new TypeError('name must be a string')
    if (typeof token !== 'object' || token === null || !Number.isSafeInteger(token.counter) || typeof token.participant !== 'string') throw new TypeError('token must be an EventId { counter, participant }')
    const seen = this.highest.get(name)
    if (seen !== undefined && compareEventIds(token, seen) < 0) return false
    if (seen === undefined || compareEventIds(token, seen) > 0) this.highest.set(name, { counter: token.counter, participant: token.participant })
    return true
  }

  /** The highest token admitted for `name`, if any. */
  highestFor (name: string): EventId | undefined {
    return this.highest.get(name)
  }
}
