/**
 * What every peer protocol shares: its protocol id, the frame of a message (the codec's
 * header, then fields), the {@link Refusal} any request may be answered with, and the
 * bounded readers for the values several protocols carry (group ids, peer ids, addresses).
 * Each protocol module (`fold-batch.ts`, `sync.ts`, `push.ts`, `join.ts`, `heartbeat.ts`,
 * `outputs.ts`) owns its own message kinds and `write`/`read` pairs; kinds are unique across
 * them so that bytes sent on the wrong protocol fail to decode instead of being misread.
 *
 * Refusal (kind 19): `str code` (a {@link RefusalCode}), `str message` (for people, at most
 * 4096 bytes). Texts and address lists are cut on encoding to what decoding takes, so a
 * peer never sends a message its own decoder would refuse.
 *
 * @module
 */
import { decodeWithin, type DecodeLimits } from '../../codec/codec.js'
import { Writer, type Reader, finishPooled, takeWriter } from '../../codec/buffer.js'
import { DecodeError } from '../../codec/errors.js'
import { FORMAT_VERSION, readHeader, writeHeader } from '../../codec/eventfold.js'
import { PROTOCOL_VERSION } from '../../version.js'

/** The version every peer protocol id ends with (kept in version.ts beside the package's). */
export { PROTOCOL_VERSION }

/** The protocol id of `name` in `cluster` (percent-encoded, so any cluster name is one path segment). */
export function protocolId (cluster: string, name: string, version: string = PROTOCOL_VERSION): string {
  return `/legion/${encodeURIComponent(cluster)}/${name}/${version}`
}

/** Message kinds of the peer protocols (the codec reserves 16..255 for them). */
export const PeerMessageKind = Object.freeze({
  joinRequest: 17,
  joinAccepted: 18,
  refusal: 19,
  outputs: 20,
  heartbeat: 22,
  foldBatch: 23,
  syncRequest: 24,
  syncAnswer: 25,
  foldPush: 26,
  pushAnswer: 27,
  heartbeatAnswer: 28
})

/** Why a peer refuses a request (or one group of a request). */
export type RefusalCode =
  | 'not-participant'
  | 'rate-limited'
  | 'stopping'
  | 'bad-request'
  | 'unknown-group'
  | 'not-ready'
  | 'cannot-reach'

const REFUSAL_CODES: ReadonlySet<string> = new Set<RefusalCode>(['not-participant', 'rate-limited', 'stopping', 'bad-request', 'unknown-group', 'not-ready', 'cannot-reach'])

/** A typed refusal of a request. */
export interface Refusal {
  /** Discriminant. */
  readonly kind: 'refusal'
  /** Why. */
  readonly code: RefusalCode
  /** Details, for people. */
  readonly message: string
}

/** Longest group id, in UTF-8 bytes. */
export const MAX_GROUP_ID_BYTES = 128
/** Longest peer id accepted off the wire, in bytes. */
export const MAX_PEER_ID_BYTES = 256
/** Most addresses per peer. */
export const MAX_ADDRESSES = 64
/** Longest multiaddr, in bytes. */
export const MAX_ADDRESS_BYTES = 1024
/** Longest refusal message, in UTF-8 bytes. */
export const MAX_MESSAGE_TEXT = 4096

/** Encodes one message: the header with `kind`, then what `write` writes. */
export function encodeMessage (kind: number, write: (w: Writer) => void): Uint8Array {
  const w = takeWriter()
  writeHeader(w, kind)
  write(w)
  return finishPooled(w)
}

/**
 * Decodes one message of `kind` (or a {@link Refusal}, when `refusalAllowed`), bounded by
 * `limits`. Throws only `DecodeError`.
 */
export function decodeMessage<T> (bytes: Uint8Array, limits: DecodeLimits, kind: number, read: (r: Reader) => T, refusalAllowed: true): T | Refusal
export function decodeMessage<T> (bytes: Uint8Array, limits: DecodeLimits, kind: number, read: (r: Reader) => T, refusalAllowed?: false): T
export function decodeMessage<T> (bytes: Uint8Array, limits: DecodeLimits, kind: number, read: (r: Reader) => T, refusalAllowed = false): T | Refusal {
  return decodeWithin(bytes, limits, (r) => {
    // Only the format this build writes: the codec still reads format 4 for stored folds, but
    // a peer message has one encoding, and a peer of another format speaks another protocol.
    if (bytes.length >= 4 && bytes[3] !== FORMAT_VERSION) throw new DecodeError('bad-version', `format version ${bytes[3]}, expected ${FORMAT_VERSION}`)
    const actual = readHeader(r)
    if (actual === kind) return read(r)
    if (refusalAllowed && actual === PeerMessageKind.refusal) return readRefusal(r)
    throw new DecodeError('bad-kind', `message kind ${actual}, expected ${kind}`)
  })
}

/** Encodes a refusal (its message cut to {@link MAX_MESSAGE_TEXT} bytes). */
export function encodeRefusal (code: RefusalCode, message: string): Uint8Array {
  return encodeMessage(PeerMessageKind.refusal, w => { w.writeString(code); w.writeString(clipText(message, MAX_MESSAGE_TEXT)) })
}

/**
 * `text` made fit for a bounded text field: lone surrogates (which UTF-8 cannot carry)
 * replaced, and cut to at most `maxBytes` bytes of UTF-8, never inside a character. Texts
 * for people (refusals, error replies, stuck reasons) can come from anywhere, an
 * application's error message included; cut by UTF-16 units, one could end in half a
 * surrogate pair and make the encoder throw, and cut longer than the field, the receiver
 * would refuse the whole message.
 */
export function clipText (text: string, maxBytes: number): string {
  const whole = text.toWellFormed()
  if (whole.length * 3 <= maxBytes) return whole // a UTF-16 unit is at most 3 bytes of UTF-8
  const bytes = new TextEncoder().encode(whole)
  if (bytes.length <= maxBytes) return whole
  let end = maxBytes
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end-- // back to the first byte of a character
  return new TextDecoder().decode(bytes.subarray(0, end))
}

function readRefusal (r: Reader): Refusal {
  return { kind: 'refusal', code: readRefusalCode(r), message: r.readString(MAX_MESSAGE_TEXT) }
}

/** Reads a refusal code, refusing unknown ones. */
export function readRefusalCode (r: Reader): RefusalCode {
  const code = r.readString(64)
  if (!REFUSAL_CODES.has(code)) throw new DecodeError('invalid', `unknown refusal code ${JSON.stringify(code)}`)
  return code as RefusalCode
}

/** Reads a group id ('' is the cluster's own group). */
export function readGroupId (r: Reader): string {
  return r.readString(MAX_GROUP_ID_BYTES)
}

/** Reads a peer id. */
export function readPeerId (r: Reader): string {
  const id = r.readString(MAX_PEER_ID_BYTES)
  if (id === '') throw new DecodeError('invalid', 'empty peer id')
  return id
}

/**
 * Writes a list of multiaddrs as {@link readAddresses} takes it: the first
 * {@link MAX_ADDRESSES} of those no longer than {@link MAX_ADDRESS_BYTES} (a host with many
 * interfaces listens on more, and one address too many would make the whole message
 * undecodable: a join refused, a heartbeat answer lost).
 */
export function writeAddresses (w: Writer, addresses: readonly string[]): void {
  const fit = addresses.filter(a => Buffer.byteLength(a, 'utf8') <= MAX_ADDRESS_BYTES).slice(0, MAX_ADDRESSES)
  w.writeVarUint(fit.length)
  for (const a of fit) w.writeString(a)
}

/** Reads a list of multiaddrs. */
export function readAddresses (r: Reader): string[] {
  const n = r.readCount(MAX_ADDRESSES, 1, 'addresses')
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(r.readString(MAX_ADDRESS_BYTES))
  return out
}

/** Writes a list of items with `write`. */
export function writeList<T> (w: Writer, items: readonly T[], write: (w: Writer, item: T) => void): void {
  w.writeVarUint(items.length)
  for (const item of items) write(w, item)
}

/** Reads a list of at most `limits.maxItems` items, each at least `minItemBytes` long. */
export function readList<T> (r: Reader, limits: DecodeLimits, minItemBytes: number, what: string, read: (r: Reader) => T): T[] {
  const n = r.readCount(limits.maxItems, minItemBytes, what)
  const out: T[] = []
  for (let i = 0; i < n; i++) out.push(read(r))
  return out
}
