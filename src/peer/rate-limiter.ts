/**
 * A per-peer token bucket for expensive requests (full syncs, joins): each peer may burst up
 * to `burst` requests and then `perSecond` on average. Buckets of peers not seen for a while
 * are forgotten, so a flood of distinct peer ids cannot grow the table without bound.
 *
 * @module
 */

const MAX_TRACKED_PEERS = 4096

/** Token buckets keyed by peer id. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private readonly burst: number
  private readonly perSecond: number
  private readonly now: () => number

  /**
   * @param burst - requests a peer may make at once
   * @param perSecond - sustained requests per second per peer
   * @param now - clock in milliseconds (injectable for tests)
   */
  constructor (burst: number, perSecond: number, now: () => number = Date.now) {
    this.burst = burst
    this.perSecond = perSecond
    this.now = now
  }

  /** Takes one token for `peer`; false when its bucket is empty. */
  take (peer: string): boolean {
    const t = this.now()
    let b = this.buckets.get(peer)
    if (b === undefined) {
      if (this.buckets.size >= MAX_TRACKED_PEERS) this.buckets.delete(this.buckets.keys().next().value!)
      b = { tokens: this.burst, at: t }
      this.buckets.set(peer, b)
    }
    b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * this.perSecond / 1000)
    b.at = t
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}
