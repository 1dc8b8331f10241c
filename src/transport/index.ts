/**
 * Legion's transport layer: libp2p nodes that move bytes between the
 * processes of a cluster, by topic gossip and by request/response over reused
 * streams. It knows nothing about EventFolds.
 *
 * @example
 * ```ts
 * import { createTransportNode } from './transport/index.js'
 *
 * const a = await createTransportNode()
 * const b = await createTransportNode()
 * await b.handle('/legion/demo/echo/1.0.0', async (_from, payload) => payload)
 * const peer = await a.dial(b.multiaddrs()[0]!)
 * const answer = await a.request(peer, '/legion/demo/echo/1.0.0', new Uint8Array([1, 2, 3]))
 * await Promise.all([a.stop(), b.stop()])
 * ```
 *
 * @module
 */

// Must stay the first import: libp2p calls Promise.withResolvers, which Node 20 lacks.
export { promiseWithResolversPolyfilled } from './polyfill.js'
export { createTransportNode } from './node.js'
export type { TransportNode, TransportNodeOptions, TransportStats, DialOptions } from './node.js'
export { createConnectionGuard, swarmKeyFromSecret, CLUSTER_SECRET_BYTES } from './security.js'
export type { AllowPeers, ConnectionGuard, ConnectionStats } from './security.js'
export { createChannel } from './channel.js'
export type {
  Channel,
  ChannelComponents,
  ChannelHandler,
  ChannelInit,
  ChannelStats,
  HandleOptions,
  RequestOptions,
  SendOptions
} from './channel.js'
export { createGossip, encodeUnsignedEnvelope, decodeUnsignedEnvelope } from './gossip.js'
export type {
  Gossip,
  GossipComponents,
  GossipHandler,
  GossipInit,
  GossipSigning,
  GossipStats,
  UnsignedEnvelope,
  WaitForTopicPeersOptions
} from './gossip.js'
export {
  FrameKind,
  decodeFrame,
  encodeFrame,
  encodeLengthPrefixedFrame,
  frameLength,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FRAME_HEADER_BYTES
} from './frame.js'
export type { Frame, DecodeFrameResult } from './frame.js'
export {
  AbortError,
  FrameTooLargeError,
  GossipDisabledError,
  PeerUnreachableError,
  RemoteError,
  TimeoutError
} from './errors.js'
