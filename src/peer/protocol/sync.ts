/**
 * The `sync` protocol (request/response): pull a participant's diff for the asker, or its
 * whole fold, for several groups at once (anti-entropy is batched per peer).
 *
 * SyncRequest (kind 24): `list<entry>`, `entry` = `str group`, `u8 full` (0 or 1).
 * SyncAnswer (kind 25): `list<answer>`, `answer` = `str group`, `u8 tag`, then for tag 1 a
 * `bytes` Diff (kind 2, participants in full, origin written), for tag 2 a `bytes` EventFold
 * (kind 1), for tag 3 a refusal code `str` (why that group is not answered). Each group asked
 * for is answered once, in the order of its first want (a repeated want gets no answer of its own).
 * A request may also be answered by a Refusal as a whole.
 *
 * @module
 */
import type { DecodeLimits } from '../../codec/codec.js'
import { DecodeError } from '../../codec/errors.js'
import { PeerMessageKind, decodeMessage, encodeMessage, readGroupId, readList, readRefusalCode, writeList, type RefusalCode, type Refusal } from './message.js'

/** Protocol name. */
export const SYNC_PROTOCOL = 'sync'

/** One group asked for. */
export interface SyncWant {
  /** The group. */
  readonly group: string
  /** Ask for the whole fold instead of a diff. */
  readonly full: boolean
}

/** One group's answer. */
export type SyncResult =
  | { readonly group: string, readonly kind: 'diff', readonly bytes: Uint8Array }
  | { readonly group: string, readonly kind: 'fold', readonly bytes: Uint8Array }
  | { readonly group: string, readonly kind: 'refused', readonly code: RefusalCode }

/** Encodes a sync request. */
export function encodeSyncRequest (wants: readonly SyncWant[]): Uint8Array {
  return encodeMessage(PeerMessageKind.syncRequest, w => {
    writeList(w, wants, (w, x) => { w.writeString(x.group); w.writeUint8(x.full ? 1 : 0) })
  })
}

/** Decodes a sync request. Throws only `DecodeError`. */
export function decodeSyncRequest (bytes: Uint8Array, limits: DecodeLimits): SyncWant[] {
  return decodeMessage(bytes, limits, PeerMessageKind.syncRequest, r => readList(r, limits, 2, 'groups', r => {
    const group = readGroupId(r)
    const full = r.readUint8()
    if (full > 1) throw new DecodeError('invalid', 'the full flag must be 0 or 1')
    return { group, full: full === 1 }
  }))
}

/** Encodes a sync answer. */
export function encodeSyncAnswer (results: readonly SyncResult[]): Uint8Array {
  return encodeMessage(PeerMessageKind.syncAnswer, w => {
    writeList(w, results, (w, x) => {
      w.writeString(x.group)
      if (x.kind === 'refused') { w.writeUint8(3); w.writeString(x.code); return }
      w.writeUint8(x.kind === 'diff' ? 1 : 2)
      w.writeBytes(x.bytes)
    })
  })
}

/** Decodes a sync answer (or a refusal of the whole request). Throws only `DecodeError`. */
export function decodeSyncAnswer (bytes: Uint8Array, limits: DecodeLimits): SyncResult[] | Refusal {
  return decodeMessage(bytes, limits, PeerMessageKind.syncAnswer, r => readList(r, limits, 3, 'groups', (r): SyncResult => {
    const group = readGroupId(r)
    const tag = r.readUint8()
    if (tag === 1) return { group, kind: 'diff', bytes: r.readBytes(limits.maxBytes) }
    if (tag === 2) return { group, kind: 'fold', bytes: r.readBytes(limits.maxBytes) }
    if (tag === 3) return { group, kind: 'refused', code: readRefusalCode(r) }
    throw new DecodeError('invalid', `unknown sync answer tag ${tag}`)
  }), true)
}
