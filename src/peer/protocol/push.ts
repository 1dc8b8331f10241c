/**
 * The `push` protocol (request/response): give a participant this peer's diff or whole fold
 * of several groups and wait until it has merged them. Ejections, a leaving peer, a new
 * member of a group and om-legion's `periodic` propagation use it.
 *
 * FoldPush (kind 26): `list<entry>`, `entry` = `str group`, `bytes payload` (a Diff, kind 2,
 * or an EventFold, kind 1; either with participants in full and the origin written).
 * PushAnswer (kind 27): `list<answer>`, `answer` = `str group`, `u8 merged` (1: merged; 0:
 * refused, then a refusal code `str`). A push may also be answered by a Refusal as a whole.
 *
 * @module
 */
import type { DecodeLimits } from '../../codec/codec.js'
import { DecodeError } from '../../codec/errors.js'
import { decodeGroupPayloads, encodeGroupPayloads, type GroupPayload } from './fold-batch.js'
import { PeerMessageKind, decodeMessage, encodeMessage, readGroupId, readList, readRefusalCode, writeList, type Refusal, type RefusalCode } from './message.js'

/** Protocol name. */
export const PUSH_PROTOCOL = 'push'

/** What the receiver did with one group of a push. */
export type PushResult =
  | { readonly group: string, readonly merged: true }
  | { readonly group: string, readonly merged: false, readonly code: RefusalCode }

/** Encodes a push. */
export function encodeFoldPush (entries: readonly GroupPayload[]): Uint8Array {
  return encodeGroupPayloads(PeerMessageKind.foldPush, entries)
}

/** Decodes a push. Throws only `DecodeError`. */
export function decodeFoldPush (bytes: Uint8Array, limits: DecodeLimits): GroupPayload[] {
  return decodeGroupPayloads(PeerMessageKind.foldPush, bytes, limits)
}

/** Encodes the answer to a push. */
export function encodePushAnswer (results: readonly PushResult[]): Uint8Array {
  return encodeMessage(PeerMessageKind.pushAnswer, w => {
    writeList(w, results, (w, x) => {
      w.writeString(x.group)
      w.writeUint8(x.merged ? 1 : 0)
      if (!x.merged) w.writeString(x.code)
    })
  })
}

/** Decodes the answer to a push (or a refusal of the whole push). Throws only `DecodeError`. */
export function decodePushAnswer (bytes: Uint8Array, limits: DecodeLimits): PushResult[] | Refusal {
  return decodeMessage(bytes, limits, PeerMessageKind.pushAnswer, r => readList(r, limits, 2, 'groups', (r): PushResult => {
    const group = readGroupId(r)
    const merged = r.readUint8()
    if (merged === 1) return { group, merged: true }
    if (merged === 0) return { group, merged: false, code: readRefusalCode(r) }
    throw new DecodeError('invalid', 'the merged flag must be 0 or 1')
  }), true)
}
