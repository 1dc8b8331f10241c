/**
 * The `fold` protocol (one-way) and the fold gossip topic: a peer's batch of news, one
 * encoded Diff per group that changed in a tick, sent to every participant of those groups.
 *
 * FoldBatch (kind 23): `list<entry>`, `entry` = `str group`, `bytes diff` (a Diff, kind 2, in
 * the pushed form: participants by fingerprint, origin implied by the group).
 *
 * @module
 */
import type { DecodeLimits } from '../../codec/codec.js'
import { PeerMessageKind, decodeMessage, encodeMessage, readGroupId, readList, writeList } from './message.js'

/** Protocol name of direct batches. */
export const FOLD_PROTOCOL = 'fold'
/** Name of the gossip topic that carries batches of cluster-wide groups in large clusters. */
export const FOLD_TOPIC = 'fold-topic'

/** One group's part of a batch. */
export interface GroupPayload {
  /** The group. */
  readonly group: string
  /** Its encoded Diff (or, in a push, a Diff or a whole EventFold). */
  readonly payload: Uint8Array
}

/** Encodes a batch. */
export function encodeFoldBatch (entries: readonly GroupPayload[]): Uint8Array {
  let size = 16
  for (const e of entries) size += e.payload.length + e.group.length + 8
  return encodeMessage(PeerMessageKind.foldBatch, w => {
    writeList(w, entries, (w, e) => { w.writeString(e.group); w.writeBytes(e.payload) })
  }, size)
}

/** Decodes a batch. Throws only `DecodeError`. */
export function decodeFoldBatch (bytes: Uint8Array, limits: DecodeLimits): GroupPayload[] {
  return decodeMessage(bytes, limits, PeerMessageKind.foldBatch, r =>
    readList(r, limits, 2, 'groups', r => ({ group: readGroupId(r), payload: r.readBytes(limits.maxBytes) })))
}
