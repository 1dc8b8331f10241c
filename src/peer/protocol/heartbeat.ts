/**
 * The `heartbeat` protocol (request/response): "I am alive", with whom the sender suspects
 * and why, and whether the sender knows itself to be holding the fold back. The answer tells
 * the sender where to reach the participants it suspects, when the answering peer knows:
 * addresses travel with membership, so two peers that joined through different sponsors at
 * the same moment still find each other.
 *
 * Heartbeat (kind 22): `list<suspect>`, `suspect` = `str peer`, `u8 reason` (1 silent, 2
 * stuck: it has not acknowledged events it holds for too long); then `u8 status` (0 fine,
 * 1 stuck) and `str detail` (why, when stuck, at most 1024 bytes; empty otherwise, so that
 * every heartbeat has one encoding).
 * HeartbeatAnswer (kind 28): `list<peer>`, `peer` = `str id`, `list<str> addresses`.
 * A heartbeat may also be answered by a Refusal (`not-participant` tells the sender it was
 * ejected, if the refuser had acknowledged its Join).
 *
 * @module
 */
import type { DecodeLimits } from '../../codec/codec.js'
import { DecodeError } from '../../codec/errors.js'
import type { PeerAddresses } from './join.js'
import { PeerMessageKind, clipText, decodeMessage, encodeMessage, readAddresses, readList, readPeerId, writeAddresses, writeList, type Refusal } from './message.js'

/** Protocol name. */
export const HEARTBEAT_PROTOCOL = 'heartbeat'

/** Longest reason a stuck peer gives, in UTF-8 bytes (a longer one is cut). */
export const MAX_STUCK_DETAIL_BYTES = 1024

/** Why a participant is suspected: silent (nothing heard) or stuck (holding the fold back). */
export type SuspicionReason = 'silent' | 'stuck'

/** One suspicion in a heartbeat. */
export interface Suspicion {
  /** The suspected participant. */
  readonly peer: string
  /** Why. */
  readonly reason: SuspicionReason
}

/** A heartbeat. */
export interface Heartbeat {
  /** Whom the sender suspects. */
  readonly suspects: readonly Suspicion[]
  /** Why the sender knows itself to be stuck, or `undefined` when it is not. */
  readonly stuck: string | undefined
}

/** Encodes a heartbeat. */
export function encodeHeartbeat (h: Heartbeat): Uint8Array {
  return encodeMessage(PeerMessageKind.heartbeat, w => {
    writeList(w, h.suspects, (w, s) => { w.writeString(s.peer); w.writeUint8(s.reason === 'silent' ? 1 : 2) })
    w.writeUint8(h.stuck === undefined ? 0 : 1)
    w.writeString(clipText(h.stuck ?? '', MAX_STUCK_DETAIL_BYTES))
  })
}

/** Decodes a heartbeat. Throws only `DecodeError`. */
export function decodeHeartbeat (bytes: Uint8Array, limits: DecodeLimits): Heartbeat {
  return decodeMessage(bytes, limits, PeerMessageKind.heartbeat, (r): Heartbeat => {
    const suspects = readList(r, limits, 2, 'suspects', (r): Suspicion => {
      const peer = readPeerId(r)
      const reason = r.readUint8()
      if (reason !== 1 && reason !== 2) throw new DecodeError('invalid', `unknown suspicion reason ${reason}`)
      return { peer, reason: reason === 1 ? 'silent' : 'stuck' }
    })
    const status = r.readUint8()
    if (status > 1) throw new DecodeError('invalid', `unknown status ${status}`)
    const detail = r.readString(MAX_STUCK_DETAIL_BYTES)
    if (status === 0 && detail !== '') throw new DecodeError('invalid', 'a peer that is not stuck gives no reason')
    return { suspects, stuck: status === 1 ? detail : undefined }
  })
}

/** Encodes the answer to a heartbeat. */
export function encodeHeartbeatAnswer (addresses: readonly PeerAddresses[]): Uint8Array {
  return encodeMessage(PeerMessageKind.heartbeatAnswer, w => {
    writeList(w, addresses, (w, p) => { w.writeString(p.id); writeAddresses(w, p.addresses) })
  })
}

/** Decodes the answer to a heartbeat (or a refusal). Throws only `DecodeError`. */
export function decodeHeartbeatAnswer (bytes: Uint8Array, limits: DecodeLimits): PeerAddresses[] | Refusal {
  return decodeMessage(bytes, limits, PeerMessageKind.heartbeatAnswer, r =>
    readList(r, limits, 2, 'peers', r => ({ id: readPeerId(r), addresses: readAddresses(r) })), true)
}
