/**
 * Test support for talking to a peer as a raw libp2p node: the protocol ids of a cluster and
 * the few messages tests hand-craft (a batch carrying one group's diff, a sync request, a push).
 */
import { protocolId } from '../../src/peer/protocol/message.js'
import { encodeFoldBatch } from '../../src/peer/protocol/fold-batch.js'
import { decodeSyncAnswer, encodeSyncRequest } from '../../src/peer/protocol/sync.js'
import { encodeFoldPush } from '../../src/peer/protocol/push.js'
import { DEFAULT_DECODE_LIMITS } from '../../src/codec/codec.js'

/** The protocol ids of `cluster`'s peer protocols. */
export function protocolIds (cluster: string): Record<'fold' | 'sync' | 'push' | 'join' | 'heartbeat' | 'outputs' | 'call' | 'cast' | 'topic', string> {
  const id = (name: string): string => protocolId(cluster, name)
  return { fold: id('fold'), sync: id('sync'), push: id('push'), join: id('join'), heartbeat: id('heartbeat'), outputs: id('outputs'), call: id('call'), cast: id('cast'), topic: id('fold-topic') }
}

/** A batch (the `fold` protocol) carrying `diff` (an encoded Diff) for `group`. */
export function batchOf (diff: Uint8Array, group = ''): Uint8Array {
  return encodeFoldBatch([{ group, payload: diff }])
}

/** A push carrying `payload` (an encoded Diff or EventFold) for `group`. */
export function pushOf (payload: Uint8Array, group = ''): Uint8Array {
  return encodeFoldPush([{ group, payload }])
}

/** A sync request for `group`'s whole fold (or diff). */
export function syncRequest (group = '', full = true): Uint8Array {
  return encodeSyncRequest([{ group, full }])
}

/** The payload a sync answer gives for `group` (an encoded Diff or EventFold), or undefined. */
export function syncPayload (answer: Uint8Array, group = ''): Uint8Array | undefined {
  const results = decodeSyncAnswer(answer, DEFAULT_DECODE_LIMITS)
  if (!Array.isArray(results)) return undefined
  const r = results.find(x => x.group === group)
  return r !== undefined && r.kind !== 'refused' ? r.bytes : undefined
}
