/**
 * The fields every format 6 layout shares (eventfold.ts's folds and stored records, diff.ts's
 * Diffs): the codecs of a fold's user types, delta tags, digests, bodies and bases, and the
 * bounds on hashes and signatures. Internal to the codec: the layouts themselves are described
 * in eventfold.ts and docs/PROTOCOL.md section 4.
 *
 * @module
 */
import type { Reader, Writer } from './buffer.js'
import type { Codec, DecodeLimits } from './codec.js'
import { DecodeError, EncodeError } from './errors.js'
import { checkDecodedCounter, checkEventIdForEncoding } from './header.js'
import type { ParticipantTableReader, ParticipantTableWriter } from './participant-table.js'
import type { Delta, InfimumDigest, LogBase, SignedDelta } from '../eventfold/types.js'

/** The codecs of a fold's user types. */
export interface FoldCodecs<E, S, O> {
  /** Codec of user events. */
  readonly event: Codec<E>
  /** Codec of the folded state. */
  readonly state: Codec<S>
  /** Codec of event outputs. */
  readonly output: Codec<O>
}

export const TAG_EVENT = 1
export const TAG_JOIN = 2
export const TAG_UNJOIN = 3
/** A user event that failed here: its `apply` returned a failure. */
export const TAG_FAILED = 4
/** A user event that failed here: its `apply` threw. */
export const TAG_THREW = 5
/** An UnJoin that stands in only for a majority (the failure detector's ejections: `quorum`). */
export const TAG_UNJOIN_QUORUM = 6

/**
 * Most heads one signature covers when a creator signs the heads of several groups together
 * (PROTOCOL.md 4.7): a proof then has at most 6 sibling hashes.
 */
export const MAX_HEADS_PER_SIGNATURE = 64
/**
 * Largest signature a run or log may carry: an Ed25519 signature (64 bytes) with a proof
 * that its head is among at most {@link MAX_HEADS_PER_SIGNATURE} signed together (2 bytes of
 * count and index, 32 per sibling hash).
 */
export const MAX_SIGNATURE_BYTES = 64 + 2 + 32 * 6
/** Largest chain hash a log may carry (a SHA-256 is 32 bytes). */
export const MAX_HASH_BYTES = 64



export function writeDigest (w: Writer, digest: InfimumDigest): void {
  w.writeVarUint(digest.count)
  w.writeVarUint(digest.hash)
  // Canonical: no throws is written as 0 and read back as the field left out.
  if (digest.throws === 0) throw new EncodeError('a digest with no throws must leave the field out')
  w.writeVarUint(digest.throws ?? 0)
}

export function readDigest (r: Reader): InfimumDigest {
  const count = r.readVarUint()
  const hash = r.readVarUint()
  const throws = r.readVarUint()
  if (throws > count) throw new DecodeError('invalid', `a digest counts ${throws} throws among ${count} events`)
  return throws === 0 ? { count, hash } : { count, hash, throws }
}

export function checkBytes (bytes: Uint8Array, max: number, what: string): void {
  if (bytes.length > max) throw new EncodeError(`a ${what} of ${bytes.length} bytes exceeds ${max}`)
}

export function collectBody<E, O> (table: ParticipantTableWriter, delta: Delta<E, O>): void {
  if (delta.kind === 'join' || delta.kind === 'unjoin') table.add(delta.participant)
  else if (delta.kind === 'error') table.addAll(delta.errorAcks)
}

export function writeBody<E, S, O> (w: Writer, table: ParticipantTableWriter, codecs: FoldCodecs<E, S, O>, delta: SignedDelta<E, O>): void {
  switch (delta.kind) {
    case 'event': w.writeUint8(TAG_EVENT); codecs.event.encode(delta.event, w); break
    case 'join': w.writeUint8(TAG_JOIN); table.writeParticipant(w, delta.participant); break
    case 'unjoin': w.writeUint8(delta.quorum === true ? TAG_UNJOIN_QUORUM : TAG_UNJOIN); table.writeParticipant(w, delta.participant); break
    default: throw new EncodeError(`a log holds no delta of kind ${String((delta as { kind: unknown }).kind)}`)
  }
}

export function readBody<E, S, O> (r: Reader, table: ParticipantTableReader, codecs: FoldCodecs<E, S, O>, limits: DecodeLimits, tag: number): SignedDelta<E, O> {
  switch (tag) {
    case TAG_EVENT: return { kind: 'event', event: codecs.event.decode(r, limits) }
    case TAG_JOIN: return { kind: 'join', participant: table.readParticipant(r) }
    case TAG_UNJOIN: return { kind: 'unjoin', participant: table.readParticipant(r) }
    case TAG_UNJOIN_QUORUM: return { kind: 'unjoin', participant: table.readParticipant(r), quorum: true }
    default: throw new DecodeError('bad-tag', `unknown body tag ${tag} at offset ${r.offset - 1}`)
  }
}

/** `varuint counter` (0: none), then, if there is one, `bytes hash`. */
export function writeBase (w: Writer, base: LogBase | undefined): void {
  if (base === undefined) { w.writeVarUint(0); return }
  checkEventIdForEncoding({ counter: base.counter, participant: 'x' })
  if (base.counter === 0) throw new EncodeError('a base event has a counter >= 1')
  checkBytes(base.hash, MAX_HASH_BYTES, 'hash')
  w.writeVarUint(base.counter)
  w.writeBytes(base.hash)
}

export function readBase (r: Reader): LogBase | undefined {
  const counter = r.readVarUint()
  if (counter === 0) return undefined
  checkDecodedCounter(counter)
  return { counter, hash: r.readBytes(MAX_HASH_BYTES) }
}
