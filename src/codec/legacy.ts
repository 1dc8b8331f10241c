/**
 * Formats 4 and 5, read only: a fold stored before format 6 is read to be migrated
 * ({@link migrateEventFold}), and the golden vectors of those formats stay readable. Neither
 * format has logs: events carry per-event signatures and acknowledgement sets instead of
 * positions in their creators' logs, and nothing can give them positions every replica would
 * agree on. So a fold of format 4 or 5 migrates only when nothing is outstanding in it (its
 * infimum is all there is, and every log starts afresh after it); one with outstanding events
 * is refused with {@link LegacyFoldError}.
 *
 * The layouts are those of docs/PROTOCOL.md for protocol 5.0.0: format 5 is format 4 plus
 * delta tag 5 (a thrown failure) and a digest's `throws`.
 *
 * @module
 */
import type { Reader } from './buffer.js'
import { decodeWithin, resolveDecodeLimits, type DecodeLimits } from './codec.js'
import { DecodeError, LegacyFoldError } from './errors.js'
import { expectKind, peekVersion, FORMAT_VERSION, MessageKind } from './header.js'
import { ParticipantTableReader, type DiffContext } from './participant-table.js'
import { decodeEventFold, type FoldCodecs } from './eventfold.js'
import type { EventFoldSnapshot, EventId, InfimumDigest, InfimumSnapshot, Participant } from '../eventfold/types.js'

/** A delta of formats 4 and 5: an error carried its failure but not its event. */
export type LegacyDelta<E, O> =
  | { readonly kind: 'event', readonly event: E }
  | { readonly kind: 'join', readonly participant: Participant }
  | { readonly kind: 'unjoin', readonly participant: Participant }
  | { readonly kind: 'error', readonly output: O, readonly thrown?: undefined, readonly errorAcks: readonly Participant[] }
  | { readonly kind: 'error', readonly thrown: string, readonly output?: undefined, readonly errorAcks: readonly Participant[] }

/** An event of formats 4 and 5, with its acknowledgement set and its own signature. */
export interface LegacyEvent<E, O> {
  /** Its id. */
  readonly id: EventId
  /** Its body (a Diff could leave it out). */
  readonly delta: LegacyDelta<E, O> | undefined
  /** Who acknowledged it. */
  readonly acks: readonly Participant[]
  /** Its creator's signature of it. */
  readonly signature?: Uint8Array | undefined
}

/** A fold of formats 4 and 5. */
export interface LegacyEventFoldSnapshot<E, S, O> {
  /** Its origin. */
  readonly origin: string
  /** Its infimum. */
  readonly infimum: InfimumSnapshot<S>
  /** Its outstanding events. */
  readonly events: ReadonlyArray<LegacyEvent<E, O>>
}

/** A Diff of formats 4 and 5. */
export interface LegacyDiff<E, O> {
  /** Its origin. */
  readonly origin: string
  /** The sender's infimum id. */
  readonly infimumId: EventId
  /** The sender's infimum digest. */
  readonly infimumDigest: InfimumDigest
  /** Every outstanding event, bodies the receiver held left out. */
  readonly events: ReadonlyArray<LegacyEvent<E, O>>
}

const LEGACY_VERSIONS = [4, 5] as const

const DELTA_OMITTED = 0
const DELTA_EVENT = 1
const DELTA_JOIN = 2
const DELTA_UNJOIN = 3
const DELTA_ERROR = 4
/** An error whose `apply` threw: a description instead of an output. Format 5 on. */
const DELTA_THROWN = 5
/** Added to the tag of a body that carries its creator's signature. */
const DELTA_SIGNED = 16

/** Largest signature a format 4 or 5 body may carry. */
const MAX_SIGNATURE_BYTES = 128

/** Smallest encoded event: counter step, pidx, delta tag, empty ack set. */
const MIN_EVENT_BYTES = 4

function readDigest (r: Reader, version: number): InfimumDigest {
  const count = r.readVarUint()
  const hash = r.readVarUint()
  if (version < 5) return { count, hash }
  const throws = r.readVarUint()
  if (throws > count) throw new DecodeError('invalid', `a digest counts ${throws} throws among ${count} events`)
  return throws === 0 ? { count, hash } : { count, hash, throws }
}

function readEvents<E, S, O> (
  r: Reader,
  table: ParticipantTableReader,
  codecs: FoldCodecs<E, S, O>,
  limits: DecodeLimits,
  infimumId: EventId,
  allowOmitted: boolean,
  version: number
): Array<LegacyEvent<E, O>> {
  const n = r.readCount(limits.maxItems, MIN_EVENT_BYTES, 'event list')
  const events: Array<LegacyEvent<E, O>> = []
  let previousCounter = infimumId.counter
  // BOTTOM has no index; -1 sorts below every participant, as "" does.
  let previousIndex = infimumId.counter === 0 ? -1 : table.participants.indexOf(infimumId.participant)
  for (let i = 0; i < n; i++) {
    const step = r.readVarUint()
    const counter = previousCounter + step
    const index = table.readIndex(r)
    if (!Number.isSafeInteger(counter) || counter < 1) throw new DecodeError('invalid', `event counter ${counter} is not a safe integer >= 1`)
    if (step === 0 && index <= previousIndex) {
      throw new DecodeError('invalid', `event ids not strictly ascending above the infimum at event ${i}`)
    }
    const id: EventId = { counter, participant: table.participants[index] as Participant }
    let tag = r.readUint8()
    let signature: Uint8Array | undefined
    if (tag > DELTA_SIGNED && tag <= DELTA_SIGNED + DELTA_UNJOIN) {
      signature = r.readBytes(MAX_SIGNATURE_BYTES)
      tag -= DELTA_SIGNED
    }
    let delta: LegacyDelta<E, O> | undefined
    switch (tag) {
      case DELTA_EVENT:
        delta = { kind: 'event', event: codecs.event.decode(r, limits) }
        break
      case DELTA_JOIN:
        delta = { kind: 'join', participant: table.readParticipant(r) }
        break
      case DELTA_UNJOIN:
        delta = { kind: 'unjoin', participant: table.readParticipant(r) }
        break
      case DELTA_ERROR: {
        const output = codecs.output.decode(r, limits)
        delta = { kind: 'error', output, errorAcks: table.readSet(r, limits) }
        break
      }
      case DELTA_THROWN: {
        if (version < 5) throw new DecodeError('bad-tag', `delta tag 5 (a thrown failure) in format version ${version} at offset ${r.offset - 1}`)
        const thrown = r.readString(limits.maxStringBytes)
        delta = { kind: 'error', thrown, errorAcks: table.readSet(r, limits) }
        break
      }
      case DELTA_OMITTED:
        // Only a diff may leave a body out; an EventFold carries every one.
        if (!allowOmitted) throw new DecodeError('bad-tag', `delta tag 0 (body left out) in an EventFold at offset ${r.offset - 1}`)
        delta = undefined
        break
      default:
        throw new DecodeError('bad-tag', `unknown delta tag ${tag} at offset ${r.offset - 1}`)
    }
    const acks = table.readSet(r, limits)
    events.push(signature === undefined ? { id, delta, acks } : { id, delta, acks, signature })
    previousCounter = counter
    previousIndex = index
  }
  return events
}

/** Decodes a whole fold of format 4 or 5. Throws only {@link DecodeError}. */
export function decodeLegacyEventFold<E, S, O> (
  bytes: Uint8Array,
  codecs: FoldCodecs<E, S, O>,
  limits?: Partial<DecodeLimits>
): LegacyEventFoldSnapshot<E, S, O> {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    const version = expectKind(r, MessageKind.eventFold, LEGACY_VERSIONS)
    const origin = r.readString(resolved.maxStringBytes)
    const table = ParticipantTableReader.read(r, resolved)
    const id = table.readEventId(r)
    const digest = readDigest(r, version)
    const participants = table.readSet(r, resolved)
    const state = codecs.state.decode(r, resolved)
    const events = readEvents(r, table, codecs, resolved, id, false, version) as Array<LegacyEvent<E, O>>
    table.expectAllUsed()
    return { origin, infimum: { id, digest, participants, state }, events }
  })
}

/** Decodes a Diff of format 4 or 5. Throws only {@link DecodeError}. */
export function decodeLegacyDiff<E, S, O> (bytes: Uint8Array, codecs: FoldCodecs<E, S, O>, limits?: Partial<DecodeLimits>, context?: DiffContext): LegacyDiff<E, O> {
  const resolved = resolveDecodeLimits(limits)
  return decodeWithin(bytes, resolved, (r) => {
    const version = expectKind(r, MessageKind.diff, LEGACY_VERSIONS)
    const written = r.readString(resolved.maxStringBytes)
    const origin = written === '' && context?.origin !== undefined ? context.origin : written
    const table = ParticipantTableReader.read(r, resolved, context)
    const infimumId = table.readEventId(r)
    const infimumDigest = readDigest(r, version)
    const events = readEvents(r, table, codecs, resolved, infimumId, true, version)
    table.expectAllUsed()
    return { origin, infimumId, infimumDigest, events }
  })
}

/**
 * A stored fold in the format this build uses: format 6 as it is; format 4 or 5 migrated when
 * nothing is outstanding in it (its infimum kept, every log starting afresh after it).
 * @throws {@link LegacyFoldError} for a format 4 or 5 fold with outstanding events;
 * {@link DecodeError} for bytes that are not a fold
 */
export function migrateEventFold<E, S, O> (bytes: Uint8Array, codecs: FoldCodecs<E, S, O>, limits?: Partial<DecodeLimits>): EventFoldSnapshot<E, S, O> {
  const version = peekVersion(bytes)
  if (version === FORMAT_VERSION) return decodeEventFold(bytes, codecs, limits)
  const legacy = decodeLegacyEventFold(bytes, codecs, limits)
  if (legacy.events.length > 0) throw new LegacyFoldError(version, legacy.events.length)
  return { origin: legacy.origin, infimum: legacy.infimum, logs: [], events: [] }
}
