/**
 * Helpers for runtime tests: start in-process Legion peers over TCP loopback and wait for a
 * condition across them, woken by their change notifications, with a deadline.
 */
import { startLegion } from '../../src/peer/start.js'
import type { Legion, LegionOptions } from '../../src/peer/options.js'

/** Starts a new cluster of `n` peers, each joining through the first. */
export async function startCluster<E, S, O> (n: number, base: Omit<LegionOptions<E, S, O>, 'startup'>): Promise<Array<Legion<E, S, O>>> {
  // The options type decides on codecs from E, S, O, which a generic helper cannot: cast.
  const first = await startLegion({ ...base, startup: { mode: 'new' } } as LegionOptions<E, S, O>)
  const peers = [first]
  for (let i = 1; i < n; i++) peers.push(await startLegion({ ...base, startup: { mode: 'join', peers: first.multiaddrs() } } as LegionOptions<E, S, O>))
  return peers
}

/**
 * Resolves once `predicate` holds, re-checking whenever any of `peers` changes (and on a
 * coarse fallback timer, for conditions that change without a state change). Rejects with
 * the `describe()` text after `timeoutMs`.
 */
export async function until (peers: ReadonlyArray<Legion<unknown, unknown, unknown>>, predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  if (predicate()) return
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      let ok = false
      try { ok = predicate() } catch { ok = false }
      if (ok) { cleanup(); resolve() }
    }
    const unsubscribes = peers.map(p => p.subscribe(check))
    const poll = setInterval(check, 50)
    const deadline = setTimeout(() => { cleanup(); reject(new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)) }, timeoutMs)
    const cleanup = (): void => {
      for (const u of unsubscribes) u()
      clearInterval(poll)
      clearTimeout(deadline)
    }
  })
}

/** Whether every peer reports the same infimum id, infimum value and participants, with nothing outstanding. */
export function converged (peers: ReadonlyArray<Legion<unknown, unknown, unknown>>): boolean {
  const states = peers.map(p => p.readState())
  const ref = JSON.stringify(states[0])
  return states.every(s => s.outstanding === 0 && JSON.stringify(s) === ref)
}

/** Stops every peer, ignoring peers that already stopped. */
export async function stopAll (peers: ReadonlyArray<Legion<unknown, unknown, unknown>>): Promise<void> {
  await Promise.all(peers.map(async p => { await p.stop({ leave: false }).catch(() => {}) }))
}
