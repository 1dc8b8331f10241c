/**
 * The `join` protocol (request/response): a peer asks a participant (its sponsor) to admit it.
 *
 * JoinRequest (kind 17): `list<str> addresses` (where the asker listens), then `list<str>
 * unreachable` (peer ids: participants of its last membership that a rejoining asker hears
 * no longer; empty on a first join), then `varuint counter` (the largest event counter of
 * its last membership, at most 2^52; 0 on a first join), then `list<group> handed` (`group`
 * as below: a rejoining asker's whole fold of each group where it still takes part and has
 * events of its own outstanding; empty on a first join).
 * JoinAccepted (kind 18): `list<group>`, `group` = `str id`, `bytes fold` (an EventFold, kind
 * 1: the sponsor's whole fold of each group the asker was admitted to, the cluster's own
 * group `""` first); then `list<peer>`, `peer` = `str id`, `list<str> addresses` (every
 * other participant, with the addresses the sponsor knows, possibly none, then the sponsor).
 * A join may also be answered by a Refusal.
 *
 * @module
 */
import type { Reader } from '../../codec/buffer.js'
import type { DecodeLimits } from '../../codec/codec.js'
import { EncodeError } from '../../codec/errors.js'
import { MAX_EVENT_COUNTER, checkDecodedCounter } from '../../codec/header.js'
import { readGroupPayloads, writeGroupPayloads, type GroupPayload } from './fold-batch.js'
import { PeerMessageKind, decodeMessage, encodeMessage, readAddresses, readList, readPeerId, writeAddresses, writeList, type Refusal } from './message.js'

/** Protocol name. */
export const JOIN_PROTOCOL = 'join'

/** A peer and where it listens. */
export interface PeerAddresses {
  /** The peer id. */
  readonly id: string
  /** Its multiaddrs. */
  readonly addresses: readonly string[]
}

/** The sponsor's answer. */
export interface JoinAccepted {
  /** Discriminant. */
  readonly kind: 'joinAccepted'
  /** The whole fold of every group the asker was admitted to. */
  readonly groups: readonly GroupPayload[]
  /** Other participants and their addresses. */
  readonly peers: readonly PeerAddresses[]
}

/** A request to be admitted. */
export interface JoinRequest {
  /** Where the asker listens (its own multiaddrs, with `/p2p/`). */
  readonly addresses: readonly string[]
  /**
   * Participants of the asker's last membership that it cannot reach now (a rejoining peer
   * cut from them): a sponsor that hears one of them
   * refuses with `cannot-reach`, since admitting the asker would stall their folds.
   */
  readonly unreachable: readonly string[]
  /**
   * The largest event counter the asker's last membership saw, in any group (0 on a first
   * join): the sponsor makes the readmission's UnJoin and Join past it, so every event the
   * asker's earlier incarnation created is ordered before that Join.
   */
  readonly counter: number
  /**
   * A rejoining asker's whole fold (kind 1) of each group of its last membership where it
   * still takes part and holds events of its own that have not folded (empty on a first
   * join): the sponsor takes those events before its UnJoin stands in for the asker's earlier
   * incarnation, so none of them can fold at some replicas and not at others.
   */
  readonly handed: readonly GroupPayload[]
}

/** Encodes a join request. */
export function encodeJoinRequest (request: JoinRequest): Uint8Array {
  return encodeMessage(PeerMessageKind.joinRequest, w => {
    writeAddresses(w, request.addresses)
    writeList(w, request.unreachable, (w, id) => { w.writeString(id) })
    const counter = request.counter
    if (!Number.isSafeInteger(counter) || counter < 0 || counter > MAX_EVENT_COUNTER) throw new EncodeError(`a join request's counter must be an integer from 0 to 2^52, got ${String(counter)}`)
    w.writeVarUint(counter)
    writeGroupPayloads(w, request.handed)
  })
}

/** Decodes a join request. Throws only `DecodeError`. */
export function decodeJoinRequest (bytes: Uint8Array, limits: DecodeLimits): JoinRequest {
  return decodeMessage(bytes, limits, PeerMessageKind.joinRequest, (r): JoinRequest => ({
    addresses: readAddresses(r),
    unreachable: readList(r, limits, 2, 'unreachable', readPeerId),
    counter: readCounter(r),
    handed: readGroupPayloads(r, limits)
  }))
}

function readCounter (r: Reader): number {
  const counter = r.readVarUint()
  checkDecodedCounter(counter)
  return counter
}

/** Encodes an admission. */
export function encodeJoinAccepted (groups: readonly GroupPayload[], peers: readonly PeerAddresses[]): Uint8Array {
  return encodeMessage(PeerMessageKind.joinAccepted, w => {
    writeGroupPayloads(w, groups)
    writeList(w, peers, (w, p) => { w.writeString(p.id); writeAddresses(w, p.addresses) })
  })
}

/** Decodes the answer to a join. Throws only `DecodeError`. */
export function decodeJoinAnswer (bytes: Uint8Array, limits: DecodeLimits): JoinAccepted | Refusal {
  return decodeMessage(bytes, limits, PeerMessageKind.joinAccepted, (r): JoinAccepted => ({
    kind: 'joinAccepted',
    groups: readGroupPayloads(r, limits),
    peers: readList(r, limits, 2, 'peers', r => ({ id: readPeerId(r), addresses: readAddresses(r) }))
  }), true)
}
