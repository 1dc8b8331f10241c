/**
 * The protocol ids and gossip topic of a cluster. The cluster name is part of every id, so
 * peers of different clusters cannot even open a stream to each other's handlers; the
 * version suffix lets a later format run beside this one.
 *
 * @module
 */

/** Protocol ids and topic of one cluster. */
export interface ProtocolIds {
  /** Gossipsub topic carrying diffs (push propagation in large clusters). */
  readonly topic: string
  /** One-way: the same diffs as the topic, sent directly (push propagation in small clusters). */
  readonly delta: string
  /** Request/response: sync (diff or whole fold). */
  readonly sync: string
  /** Request/response: join a cluster. */
  readonly join: string
  /** Request/response: merge the pushed diff or fold, answer with an ack. */
  readonly push: string
  /** One-way: consistent outputs for the receiver's events. */
  readonly outputs: string
  /** Request/response: user calls. */
  readonly call: string
  /** One-way: user casts and broadcasts. */
  readonly cast: string
  /** Request/response: heartbeat with the sender's suspicions, answered by an ack or a refusal. */
  readonly heartbeat: string
}

/** The wire protocol version every id ends with. */
export const PROTOCOL_VERSION = '4.0.0'

/** Builds the ids of cluster `cluster` (percent-encoded, so any name is a valid path segment). */
export function protocolIds (cluster: string): ProtocolIds {
  const base = `/legion/${encodeURIComponent(cluster)}`
  return {
    topic: `${base}/fold/${PROTOCOL_VERSION}`,
    delta: `${base}/delta/${PROTOCOL_VERSION}`,
    sync: `${base}/sync/${PROTOCOL_VERSION}`,
    join: `${base}/join/${PROTOCOL_VERSION}`,
    push: `${base}/push/${PROTOCOL_VERSION}`,
    outputs: `${base}/outputs/${PROTOCOL_VERSION}`,
    call: `${base}/call/${PROTOCOL_VERSION}`,
    cast: `${base}/cast/${PROTOCOL_VERSION}`,
    heartbeat: `${base}/heartbeat/${PROTOCOL_VERSION}`
  }
}
