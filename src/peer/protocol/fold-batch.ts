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
import type { Reader, Writer } from '../../codec/buffer.js'
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

/** Encodes a message of `kind` that is one list of group payloads (a batch, a push). */
export function encodeGroupPayloads (kind: number, entries: readonly GroupPayload[]): Uint8Array {
  return encodeMessage(kind, w => { writeGroupPayloads(w, entries) })
}

/** Decodes what {@link encodeGroupPayloads} wrote. Throws only `DecodeError`. */
export function decodeGroupPayloads (kind: number, bytes: Uint8Array, limits: DecodeLimits): GroupPayload[] {
  return decodeMessage(bytes, limits, kind, r => readGroupPayloads(r, limits))
}

/** Writes `list<entry>`, `entry` = `str group`, `bytes payload`. */
export function writeGroupPayloads (w: Writer, entries: readonly GroupPayload[]): void {
  writeList(w, entries, (w, e) => { w.writeString(e.group); w.writeBytes(e.payload) })
}

/** Reads what {@link writeGroupPayloads} wrote. */
export function readGroupPayloads (r: Reader, limits: DecodeLimits): GroupPayload[] {
  return readList(r, limits, 2, 'groups', r => ({ group: readGroupId(r), payload: r.readBytes(limits.maxBytes) }))
}

/** Encodes a batch. */
export function encodeFoldBatch (entries: readonly GroupPayload[]): Uint8Array {
  return encodeGroupPayloads(PeerMessageKind.foldBatch, entries)
}

/** Decodes a batch. Throws only `DecodeError`. */
export function decodeFoldBatch (bytes: Uint8Array, limits: DecodeLimits): GroupPayload[] {
  return decodeGroupPayloads(PeerMessageKind.foldBatch, bytes, limits)
}
