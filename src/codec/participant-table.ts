/**
 * The participant table of an EventFold or Diff encoding: peer ids are long and repeat in every
 * event id, set and vector, so a message lists each distinct participant once (in full, or by
 * an 8-byte fingerprint the receiver can resolve, {@link DiffContext}) and then refers to it by
 * its index in the union of both lists, sorted by name. Exported so the peer protocols can
 * share the layout.
 *
 * @module
 */
import { Reader, Writer, finishPooled, takeWriter } from './buffer.js'
import type { DecodeLimits } from './codec.js'
import { DecodeError, EncodeError } from './errors.js'
import { checkDecodedCounter, checkEventIdForEncoding } from './header.js'
import { BOTTOM, type EventId, type Participant } from '../eventfold/types.js'

/** Bytes of a participant fingerprint in a participant table. */
export const FINGERPRINT_BYTES = 8

/** Bytes of a {@link SharedTable}'s hash in a participant table. */
export const TABLE_HASH_BYTES = 8

/**
 * A whole list of participants that the sender and the receiver of a Diff both know as a
 * list (in a pushed Diff: the sender's infimum participants), named by one hash instead of one
 * fingerprint per participant. Its participants are in the message's table whether or not
 * the message refers to them.
 */
export interface SharedTable {
  /** The {@link TABLE_HASH_BYTES}-byte hash that names the list. */
  readonly hash: Uint8Array
  /** The participants, strictly ascending. */
  readonly participants: readonly Participant[]
}

/**
 * What the sender and the receiver of a Diff already share, so the Diff need not spell it
 * out: the participants the receiver knows (the sender fingerprints them, the receiver
 * resolves; the codec only carries the bytes, and choosing a hash nobody can collide on
 * purpose, such as a truncated SHA-256, is the caller's business), and the origin (when the
 * channel itself names the cluster).
 */
export interface DiffContext {
  /**
   * The origin both sides assume: a Diff from this origin is written with an empty origin,
   * and an empty origin reads back as this one.
   */
  readonly origin?: string
  /** The {@link FINGERPRINT_BYTES}-byte fingerprint to write for `participant`, or `undefined` to write it in full. */
  readonly fingerprint?: (participant: Participant) => Uint8Array | undefined
  /** The participant a fingerprint stands for, or `undefined` if it is unknown here. */
  readonly resolve?: (fingerprint: Uint8Array) => Participant | undefined
  /** A list of participants to write as one hash (its participants are then not fingerprinted). */
  readonly table?: SharedTable
  /** The participants a table hash stands for (strictly ascending), or `undefined` if it is unknown here. */
  readonly resolveTable?: (hash: Uint8Array) => readonly Participant[] | undefined
}


function compareBytes (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** A string with one char per byte, to use encoded bytes as a map key. */
function bytesKey (bytes: Uint8Array): string {
  let key = ''
  for (let i = 0; i < bytes.length; i += 4096) key += String.fromCharCode(...bytes.subarray(i, i + 4096))
  return key
}

/**
 * The encoding side of a participant table: collects participants, then writes the table
 * and refers to participants by index. Exported so runtime wire messages can share the
 * layout.
 */
export class ParticipantTableWriter {
  private readonly names = new Set<Participant>()
  private index: Map<Participant, number> | undefined
  private readonly sets = new Map<readonly Participant[], Uint8Array>()

  /** Adds a participant; call for every participant the message will write, before {@link write}. */
  add (participant: Participant): void {
    this.names.add(participant)
  }

  /** Adds every participant of a list. */
  addAll (participants: readonly Participant[]): void {
    for (let i = 0; i < participants.length; i++) this.names.add(participants[i] as Participant)
  }

  /** Adds the participant of an event id, unless it is BOTTOM. */
  addEventId (id: EventId): void {
    if (id.counter !== 0) this.names.add(id.participant)
  }

  /**
   * Writes the table (sorted), naming participants by fingerprint where `context` gives one;
   * no participant may be added afterwards.
   */
  write (w: Writer, context?: DiffContext): void {
    const shared = context?.table
    if (shared !== undefined) {
      if (shared.hash.length !== TABLE_HASH_BYTES) throw new EncodeError(`a table hash must have ${TABLE_HASH_BYTES} bytes`)
      this.addAll(shared.participants)
    }
    const inShared = shared === undefined ? undefined : new Set(shared.participants)
    const sorted = [...this.names].sort()
    this.index = new Map(sorted.map((name, i) => [name, i]))
    const full: Participant[] = []
    const short: Uint8Array[] = []
    for (const name of sorted) {
      if (inShared?.has(name) === true) continue
      const fp = context?.fingerprint?.(name)
      if (fp === undefined) { full.push(name); continue }
      if (fp.length !== FINGERPRINT_BYTES) throw new EncodeError(`a fingerprint must have ${FINGERPRINT_BYTES} bytes`)
      short.push(fp)
    }
    w.writeVarUint(full.length)
    for (const name of full) w.writeString(name)
    short.sort(compareBytes)
    // Twice the number of fingerprints, plus one when a table hash comes first: a table
    // without either (every full form) is the single byte 00 it always was.
    w.writeVarUint(short.length * 2 + (shared !== undefined ? 1 : 0))
    if (shared !== undefined) w.writeRaw(shared.hash)
    for (let i = 0; i < short.length; i++) {
      if (i > 0 && compareBytes(short[i - 1]!, short[i]!) === 0) throw new EncodeError('two participants share a fingerprint')
      w.writeRaw(short[i]!)
    }
  }

  /** Index of a participant in the written table. */
  indexOf (participant: Participant): number {
    const i = this.index?.get(participant)
    if (i === undefined) throw new EncodeError(`participant ${JSON.stringify(participant)} is not in the table`)
    return i
  }

  /** Writes a participant as its table index. */
  writeParticipant (w: Writer, participant: Participant): void {
    w.writeVarUint(this.indexOf(participant))
  }

  /** Writes an event id in indexed form. */
  writeEventId (w: Writer, id: EventId): void {
    checkEventIdForEncoding(id)
    w.writeVarUint(id.counter)
    if (id.counter !== 0) this.writeParticipant(w, id.participant)
  }

  /**
   * Writes a participant set; throws {@link EncodeError} unless it is sorted and unique. The
   * same array object is encoded once per message and copied after that: folds hand out one
   * array per distinct ack set.
   */
  writeSet (w: Writer, participants: readonly Participant[]): void {
    let bytes = this.sets.get(participants)
    if (bytes === undefined) {
      bytes = this.encodeSet(participants)
      this.sets.set(participants, bytes)
    }
    w.writeRaw(bytes)
  }

  private encodeSet (participants: readonly Participant[]): Uint8Array {
    const size = this.index?.size ?? 0
    const members: number[] = []
    let previous = -1
    for (let i = 0; i < participants.length; i++) {
      const index = this.indexOf(participants[i] as Participant)
      if (index <= previous) throw new EncodeError(`participant list not sorted and unique at ${JSON.stringify(participants[i])}`)
      members.push(index)
      previous = index
    }
    // More than half the table: list who is missing instead (acks are mostly complete).
    const complement = members.length * 2 > size
    let listed = members
    if (complement) {
      listed = []
      for (let i = 0, j = 0; i < size; i++) {
        if (members[j] === i) j++
        else listed.push(i)
      }
    }
    const w = takeWriter()
    w.writeVarUint(listed.length * 2 + (complement ? 1 : 0))
    previous = -1
    for (const index of listed) {
      w.writeVarUint(index - previous - 1)
      previous = index
    }
    return finishPooled(w)
  }
}

/**
 * The decoding side of a participant table: reads the table, resolves indexes, and checks at
 * the end that every entry was used (so the table is canonical).
 */
export class ParticipantTableReader {
  private readonly used: Uint8Array
  private usedCount = 0
  private readonly sets = new Map<string, Participant[]>()

  private constructor (private readonly names: readonly Participant[], shared?: ReadonlySet<Participant> | true) {
    this.used = new Uint8Array(names.length)
    // A shared table's participants are in the table whether or not the message refers to them.
    if (shared === true) { this.used.fill(1); this.usedCount = names.length } else if (shared !== undefined) for (let i = 0; i < names.length; i++) if (shared.has(names[i]!)) this.use(i)
  }

  /** Reads a table; its strings and its fingerprints must each be strictly ascending. */
  static read (r: Reader, limits: DecodeLimits, context?: DiffContext): ParticipantTableReader {
    const n = r.readCount(limits.maxItems, 1, 'participant table')
    const full: Participant[] = []
    for (let i = 0; i < n; i++) {
      const name = r.readString(limits.maxStringBytes)
      if (i > 0 && !((full[i - 1] as string) < name)) {
        throw new DecodeError('invalid', 'participant table not strictly ascending')
      }
      full.push(name)
    }
    const k2 = r.readVarUint()
    const hashed = k2 % 2 === 1
    const k = (k2 - (k2 % 2)) / 2
    if (k > limits.maxItems - n) throw new DecodeError('limit', `participant fingerprints of ${k} items exceed the limit of ${limits.maxItems - n}`)
    if (k * FINGERPRINT_BYTES + (hashed ? TABLE_HASH_BYTES : 0) > r.remaining) throw new DecodeError('truncated', `input ends within ${k} participant fingerprints`)
    if (k === 0 && !hashed) return new ParticipantTableReader(full)
    const all = new Set(full)
    let shared: Set<Participant> | undefined
    if (hashed) {
      const list = context?.resolveTable?.(r.readRaw(TABLE_HASH_BYTES))
      if (list === undefined) throw new DecodeError('unknown-participant', 'a participant table named by a hash unknown here')
      if (list.length > limits.maxItems - n - k) throw new DecodeError('limit', 'participant table exceeds the item limit')
      // Only a table hash, the usual case between replicas that agree on their participants:
      // the list it names is the table, every entry used.
      if (n === 0 && k === 0 && strictlyAscending(list)) return new ParticipantTableReader(list, true)
      shared = new Set(list)
      for (const name of list) {
        if (all.has(name)) throw new DecodeError('invalid', 'a participant is in the table twice')
        all.add(name)
      }
    }
    let previous: Uint8Array | undefined
    for (let i = 0; i < k; i++) {
      const fp = r.readRaw(FINGERPRINT_BYTES)
      if (previous !== undefined && compareBytes(previous, fp) >= 0) throw new DecodeError('invalid', 'participant fingerprints not strictly ascending')
      previous = fp
      const name = context?.resolve?.(fp)
      if (name === undefined) throw new DecodeError('unknown-participant', 'a participant named by a fingerprint unknown here')
      if (all.has(name)) throw new DecodeError('invalid', 'a participant is in the table twice')
      all.add(name)
    }
    return new ParticipantTableReader([...all].sort(), shared)
  }

  /** The table's participants, ascending. */
  get participants (): readonly Participant[] {
    return this.names
  }

  /** Reads a participant index, checks it and marks it used. */
  readIndex (r: Reader): number {
    const i = r.readVarUint()
    this.use(i)
    return i
  }

  private use (i: number): void {
    if (i >= this.names.length) throw new DecodeError('invalid', `participant index ${i} outside a table of ${this.names.length}`)
    if (this.used[i] === 0) {
      this.used[i] = 1
      this.usedCount++
    }
  }

  /** Reads a participant written as a table index. */
  readParticipant (r: Reader): Participant {
    return this.names[this.readIndex(r)] as Participant
  }

  /** Reads an event id in indexed form. */
  readEventId (r: Reader): EventId {
    const counter = r.readVarUint()
    if (counter === 0) return BOTTOM
    checkDecodedCounter(counter)
    return { counter, participant: this.readParticipant(r) }
  }

  /**
   * Reads a participant set (sorted and unique by construction). Equal encodings within one
   * message decode to the same array object, which callers must not mutate.
   */
  readSet (r: Reader, limits: DecodeLimits): Participant[] {
    const start = r.offset
    const size = this.names.length
    const header = r.readVarUint()
    const complement = header % 2 === 1
    const n = (header - (header % 2)) / 2
    if (n > size || n > limits.maxItems) throw new DecodeError('invalid', `a participant set lists ${n} of a table of ${size}`)
    const listed: number[] = []
    let index = -1
    for (let i = 0; i < n; i++) {
      index += r.readVarUint() + 1
      if (index >= size) throw new DecodeError('invalid', `participant index ${index} outside a table of ${size}`)
      listed.push(index)
    }
    const members = complement ? size - n : n
    // Canonical: the complement form exactly when the set holds more than half the table.
    if (complement !== (members * 2 > size)) throw new DecodeError('invalid', 'participant set not in its canonical form')
    const key = bytesKey(r.bytesFrom(start))
    const known = this.sets.get(key)
    if (known !== undefined) return known
    const set: Participant[] = []
    if (complement) {
      for (let i = 0, j = 0; i < size; i++) {
        if (listed[j] === i) { j++; continue }
        this.use(i)
        set.push(this.names[i] as Participant)
      }
    } else {
      for (const i of listed) { this.use(i); set.push(this.names[i] as Participant) }
    }
    this.sets.set(key, set)
    return set
  }

  /** Throws `invalid` if an entry of the table was never referenced. */
  expectAllUsed (): void {
    if (this.usedCount !== this.names.length) {
      throw new DecodeError('invalid', `${this.names.length - this.usedCount} participant table entries are never used`)
    }
  }
}

/** Whether `list` is strictly ascending (sorted, no participant twice). */
function strictlyAscending (list: readonly Participant[]): boolean {
  for (let i = 1; i < list.length; i++) if (!((list[i - 1] as string) < (list[i] as string))) return false
  return true
}
