/**
 * Who may connect to a transport node: the cluster secret (a libp2p private
 * network) and the allow-list of peer ids, and the counters of what they refused.
 *
 * - The **cluster secret** is a 32-byte pre-shared key. With it, every
 *   connection is wrapped, before Noise even starts, in XSalsa20 keyed by the
 *   secret (`@libp2p/pnet`). A peer without the same secret cannot complete
 *   the protocol negotiation or the Noise handshake: its connection fails
 *   before it has a peer id, a stream or a byte of Legion's protocols. Noise
 *   still authenticates each peer and protects the traffic; the secret only
 *   decides membership of the network.
 * - The **allow-list** is checked by a libp2p connection gater once Noise has
 *   proven the remote peer id, in both directions, and before any dial.
 *
 * Boundary: this module decides on connections only; what a connected peer
 * may do is the runtime's business (fencing, rate limits).
 *
 * @module
 */

import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'

/** Length in bytes of a cluster secret. */
export const CLUSTER_SECRET_BYTES = 32

/** Which peers may connect: a list of peer id strings, or a predicate on them. */
export type AllowPeers = readonly string[] | ((peerId: string) => boolean)

/** Counters of refused connections. */
export interface ConnectionStats {
  /**
   * Inbound connections refused: `failedHandshakes` plus the inbound
   * connections denied by the allow-list.
   */
  refused: number
  /**
   * Inbound connections that closed before their Noise handshake completed:
   * typically a peer without the cluster secret (or with another one), or a
   * client that does not speak libp2p at all; also a peer that gave up or
   * timed out half-way.
   */
  failedHandshakes: number
  /** Connections (inbound or outbound) and dials refused because the allow-list excludes the peer. */
  deniedPeers: number
}

/**
 * Encodes a 32-byte cluster secret as the swarm key file `@libp2p/pnet` reads
 * (the same format as go-libp2p's `swarm.key`).
 *
 * @throws RangeError when `secret` is not exactly 32 bytes
 */
export function swarmKeyFromSecret (secret: Uint8Array): Uint8Array {
  if (!(secret instanceof Uint8Array) || secret.byteLength !== CLUSTER_SECRET_BYTES) {
    throw new RangeError(`a cluster secret must be exactly ${CLUSTER_SECRET_BYTES} bytes`)
  }
  const hex = Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength).toString('hex')
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`)
}

/** A connection gater plus the counters of what it saw refused. */
export interface ConnectionGuard {
  /** The gater to hand to libp2p. */
  readonly gater: ConnectionGater
  /** A snapshot of the counters. */
  stats(): ConnectionStats
  /** Stops counting: connections closed by our own shutdown are not refusals. */
  stop(): void
}

/**
 * Builds the gater that enforces `allowPeers` (when given) and counts inbound
 * connections that never finish their handshake.
 *
 * The handshake count works by watching each inbound connection from the
 * first gate (`denyInboundConnection`, before the cluster secret and Noise)
 * to the gate after Noise (`denyInboundEncryptedConnection`, which libp2p
 * calls with the same connection object): one that closes in between failed
 * its handshake. libp2p itself only logs such failures.
 */
export function createConnectionGuard (allowPeers: AllowPeers | undefined): ConnectionGuard {
  const counters: ConnectionStats = { refused: 0, failedHandshakes: 0, deniedPeers: 0 }
  const handshaking = new Set<MultiaddrConnection>()
  let stopped = false
  const allowed = allowPeers === undefined
    ? undefined
    : typeof allowPeers === 'function'
      ? allowPeers
      : ((list: ReadonlySet<string>) => (peer: string) => list.has(peer))(new Set(allowPeers))

  const isDenied = (peerId: PeerId): boolean => {
    if (allowed === undefined) return false
    let ok: boolean
    try {
      ok = allowed(peerId.toString()) === true
    } catch {
      ok = false // a throwing predicate denies: fail closed
    }
    if (!ok) counters.deniedPeers++
    return !ok
  }

  const gater: ConnectionGater = {
    denyDialPeer: (peerId) => isDenied(peerId),
    denyInboundConnection: (maConn) => {
      if (stopped) return false
      const failed = (): void => {
        if (handshaking.delete(maConn) && !stopped) {
          counters.failedHandshakes++
          counters.refused++
        }
      }
      handshaking.add(maConn)
      if (maConn.status === 'closed' || maConn.status === 'aborted' || maConn.status === 'reset') {
        failed() // closed before it reached us: its upgrade fails, and no close event will come
      } else {
        maConn.addEventListener('close', failed, { once: true })
      }
      return false
    },
    denyInboundEncryptedConnection: (peerId, maConn) => {
      handshaking.delete(maConn)
      const denied = isDenied(peerId)
      if (denied) counters.refused++
      return denied
    },
    denyOutboundEncryptedConnection: (peerId) => isDenied(peerId)
  }

  return {
    gater,
    stats: () => ({ ...counters }),
    stop: () => {
      stopped = true
      handshaking.clear()
    }
  }
}
