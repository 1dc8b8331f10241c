/**
 * What the parts of a peer need from the network: the subset of the transport node they use,
 * so that a test can give them an in-memory stand-in instead of libp2p.
 *
 * @module
 */
import type { TransportNode } from '../transport/node.js'

/** The transport operations the peer's parts use. */
export type Network = Pick<TransportNode,
  | 'peerId'
  | 'multiaddrs'
  | 'dial'
  | 'peerAddresses'
  | 'rememberAddresses'
  | 'peerProtocols'
  | 'hangUp'
  | 'connectedPeers'
  | 'onPeerConnected'
  | 'subscribe'
  | 'publish'
  | 'handle'
  | 'request'
  | 'send'
>
