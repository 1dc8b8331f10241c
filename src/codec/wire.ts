/**
 * Runtime wire messages: the small control messages peers exchange next to EventFolds and
 * Diffs (which keep their own kinds, 1 and 2). Each message is one header (magic "LGN",
 * format version, kind byte from {@link WireKind}) followed by its fields; decoding is
 * bounded like every other decoder and throws only {@link DecodeError}.
 *
 * Layouts (`str` = varuint length + UTF-8, `bytes` = varuint length + bytes, `list<T>` =
 * varuint count + items):
 * - SyncRequest (16): `str origin`, `u8 full` (0 or 1).
 * - JoinRequest (17): `str origin`, `list<str> addresses`.
 * - JoinAccepted (18): `bytes fold` (an encoded EventFold, kind 1), `list<peer>` where
 *   `peer` = `str id`, `list<str> addresses`.
 * - Refusal (19): `str code`, `str message`.
 * - Outputs (20): `str origin`, `list<output>` where `output` = `varuint counter`,
 *   `str participant`, `bytes value` (the output in the application's output codec).
 * - Ack (21): no fields.
 * - Heartbeat (22): `str origin`, `list<str> suspects` (participants the sender suspects).
 *
 * @module
 */
import { DEFAULT_DECODE_LIMITS, decodeWithin, type DecodeLimits } from './codec.js'
import { Writer, type Reader } from './buffer.js'
import { DecodeError } from './errors.js'
import { readHeader, writeHeader } from './eventfold.js'
import type { EventId } from '../eventfold/types.js'

/** Kind bytes of runtime wire messages. */
export const WireKind = Object.freeze({
  /** Asks a peer for its diff for the asker, or its whole fold. */
  syncRequest: 16,
  /** Asks a peer to admit the asker to the cluster. */
  joinRequest: 17,
  /** The answer to a join: the sponsor's whole fold and the addresses it knows. */
  joinAccepted: 18,
  /** A typed refusal of a request. */
  refusal: 19,
  /** Consistent outputs sent to the peer that created the events. */
  outputs: 20,
  /** An empty positive answer. */
  ack: 21,
  /** "I am alive", with the participants the sender currently suspects (failure detection). */
  heartbeat: 22
})

/** Reasons a peer refuses a request, carried by a {@link Refusal}. */
export type RefusalCode = 'wrong-cluster' | 'not-participant' | 'rate-limited' | 'stopping' | 'bad-request'

/** Asks for the sender's diff for the asker (or its whole fold when `full`). */
export interface SyncRequest { readonly kind: 'syncRequest', readonly origin: string, readonly full: boolean }
/** Asks the receiver to admit the sender; `addresses` are where the sender listens. */
export interface JoinRequest { readonly kind: 'joinRequest', readonly origin: string, readonly addresses: readonly string[] }
/** A participant and the multiaddrs it can be reached at. */
export interface PeerAddresses { readonly id: string, readonly addresses: readonly string[] }
/** The sponsor's answer to a join. */
export interface JoinAccepted { readonly kind: 'joinAccepted', readonly fold: Uint8Array, readonly peers: readonly PeerAddresses[] }
/** A typed refusal. */
export interface Refusal { readonly kind: 'refusal', readonly code: RefusalCode, readonly message: string }
/** One consistent output, its value still encoded with the application's output codec. */
export interface EncodedOutput { readonly id: EventId, readonly value: Uint8Array }
/** Consistent outputs for events the receiver created. */
export interface Outputs { readonly kind: 'outputs', readonly origin: string, readonly outputs: readonly EncodedOutput[] }
/** An empty positive answer. */
export interface Ack { readonly kind: 'ack' }
/** A liveness signal carrying the participants the sender suspects of having failed. */
export interface Heartbeat { readonly kind: 'heartbeat', readonly origin: string, readonly suspects: readonly string[] }

/** Every runtime wire message. */
export type WireMessage = SyncRequest | JoinRequest | JoinAccepted | Refusal | Outputs | Ack | Heartbeat

const REFUSAL_CODES: ReadonlySet<string> = new Set(['wrong-cluster', 'not-participant', 'rate-limited', 'stopping', 'bad-request'])
const MAX_ADDRESSES = 64
const MAX_ADDRESS_BYTES = 1024
const MAX_ID_BYTES = 256
const MAX_MESSAGE_TEXT = 4096

/** Encodes a wire message. */
export function encodeWireMessage (m: WireMessage): Uint8Array {
  const w = new Writer(64)
  switch (m.kind) {
    case 'syncRequest':
      writeHeader(w, WireKind.syncRequest)
      w.writeString(m.origin)
      w.writeUint8(m.full ? 1 : 0)
      break
    case 'joinRequest':
      writeHeader(w, WireKind.joinRequest)
      w.writeString(m.origin)
      writeStrings(w, m.addresses)
      break
    case 'joinAccepted':
      writeHeader(w, WireKind.joinAccepted)
      w.writeBytes(m.fold)
      w.writeVarUint(m.peers.length)
      for (const p of m.peers) { w.writeString(p.id); writeStrings(w, p.addresses) }
      break
    case 'refusal':
      writeHeader(w, WireKind.refusal)
      w.writeString(m.code)
      w.writeString(m.message)
      break
    case 'outputs':
      writeHeader(w, WireKind.outputs)
      w.writeString(m.origin)
      w.writeVarUint(m.outputs.length)
      for (const o of m.outputs) { w.writeVarUint(o.id.counter); w.writeString(o.id.participant); w.writeBytes(o.value) }
      break
    case 'ack':
      writeHeader(w, WireKind.ack)
      break
    case 'heartbeat':
      writeHeader(w, WireKind.heartbeat)
      w.writeString(m.origin)
      w.writeVarUint(m.suspects.length)
      for (const p of m.suspects) w.writeString(p)
      break
  }
  return w.finish()
}

/**
 * The kind byte of any Legion encoding (EventFold, Diff or wire message), after checking the
 * magic and version. Throws {@link DecodeError}.
 */
export function peekKind (bytes: Uint8Array): number {
  return decodeWithin(bytes.subarray(0, 5), DEFAULT_DECODE_LIMITS, readHeader)
}

/** Decodes a wire message (kinds 16 and up). Throws only {@link DecodeError}. */
export function decodeWireMessage (bytes: Uint8Array, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): WireMessage {
  return decodeWithin(bytes, limits, (r): WireMessage => {
    const kind = readHeader(r)
    switch (kind) {
      case WireKind.syncRequest: {
        const origin = r.readString(limits.maxStringBytes)
        const full = r.readUint8()
        if (full > 1) throw new DecodeError('invalid', 'sync request flag must be 0 or 1')
        return { kind: 'syncRequest', origin, full: full === 1 }
      }
      case WireKind.joinRequest:
        return { kind: 'joinRequest', origin: r.readString(limits.maxStringBytes), addresses: readStrings(r) }
      case WireKind.joinAccepted: {
        const fold = r.readBytes(limits.maxBytes)
        const n = r.readCount(limits.maxItems, 2, 'peers')
        const peers: PeerAddresses[] = []
        for (let i = 0; i < n; i++) peers.push({ id: r.readString(MAX_ID_BYTES), addresses: readStrings(r) })
        return { kind: 'joinAccepted', fold, peers }
      }
      case WireKind.refusal: {
        const code = r.readString(64)
        if (!REFUSAL_CODES.has(code)) throw new DecodeError('invalid', `unknown refusal code ${JSON.stringify(code)}`)
        return { kind: 'refusal', code: code as RefusalCode, message: r.readString(MAX_MESSAGE_TEXT) }
      }
      case WireKind.outputs: {
        const origin = r.readString(limits.maxStringBytes)
        const n = r.readCount(limits.maxItems, 3, 'outputs')
        const outputs: EncodedOutput[] = []
        for (let i = 0; i < n; i++) {
          const counter = r.readVarUint()
          if (counter < 1) throw new DecodeError('invalid', 'an output must name a real event (counter >= 1)')
          const participant = r.readString(MAX_ID_BYTES)
          outputs.push({ id: { counter, participant }, value: r.readBytes(limits.maxBytes) })
        }
        return { kind: 'outputs', origin, outputs }
      }
      case WireKind.ack:
        return { kind: 'ack' }
      case WireKind.heartbeat: {
        const origin = r.readString(limits.maxStringBytes)
        const n = r.readCount(limits.maxItems, 1, 'suspects')
        const suspects: string[] = []
        for (let i = 0; i < n; i++) suspects.push(r.readString(MAX_ID_BYTES))
        return { kind: 'heartbeat', origin, suspects }
      }
      default:
        throw new DecodeError('bad-kind', `message kind ${kind} is not a wire message`)
    }
  })
}

function writeStrings (w: Writer, xs: readonly string[]): void {
  w.writeVarUint(xs.length)
  for (const x of xs) w.writeString(x)
}

function readStrings (r: Reader): string[] {
  const n = r.readCount(MAX_ADDRESSES, 1, 'addresses')
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(r.readString(MAX_ADDRESS_BYTES))
  return out
}
