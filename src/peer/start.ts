/**
 * `startLegion`: checks the options, builds a peer and starts it (founding, joining or
 * recovering), and makes sure a start-up that fails leaves nothing running behind.
 *
 * @module
 */
// First: applies the Promise.withResolvers polyfill before anything from libp2p loads.
import '../transport/polyfill.js'
import { resolveConfig } from './config.js'
import type { Legion, LegionOptions } from './options.js'
import { Peer, type PeerInternals } from './peer.js'
import type { ServiceMap } from './services.js'

/**
 * Starts a Legion peer and resolves once it is a participant (new, joined or recovered) and
 * its services have started.
 *
 * @example
 * ```ts
 * const spec = partitionTableSpec(64)
 * const a = await startLegion({ cluster: 'demo', spec, startup: { mode: 'new' } })
 * const b = await startLegion({ cluster: 'demo', spec, startup: { mode: 'join', peers: a.multiaddrs() } })
 * await b.applyConsistent({ type: 'rebalance' })
 * console.log(b.readState().infimum)
 * await b.stop(); await a.stop()
 * ```
 * @throws TypeError naming the option that is wrong; `JoinError`, `RecoverError`,
 * `ExistingStateError` when the peer cannot start as asked
 */
export async function startLegion<E, S, O, Sv extends ServiceMap = Record<never, never>> (options: LegionOptions<E, S, O, Sv>): Promise<Legion<E, S, O, Sv>> {
  return await startPeer(options)
}

/**
 * {@link startLegion} with test seams (a network, a clock, randomness).
 * @internal
 */
export async function startPeer<E, S, O, Sv extends ServiceMap> (options: LegionOptions<E, S, O, Sv>, internals: PeerInternals = {}): Promise<Legion<E, S, O, Sv>> {
  const config = resolveConfig<E, S, O>(options as LegionOptions<E, S, O, never>)
  const peer = new Peer<E, S, O, Sv>(config, options, internals)
  try {
    await peer.start()
  } catch (err) {
    await peer.stop({ leave: false }).catch(() => {})
    throw err
  }
  return peer
}
