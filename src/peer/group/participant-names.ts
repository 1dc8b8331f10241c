/**
 * Participant fingerprints, and the implied origin, for the Diffs participants push to each
 * other (since codec format 3, {@link DiffContext}).
 *
 * A peer id is about 52 bytes, and a Diff names every participant its acknowledgement sets
 * mention, so in small clusters under steady load the participant table was most of every
 * message. A sender now names by fingerprint the participants every receiver knows (its
 * infimum participants: every participant acknowledged their Joins), and a receiver
 * resolves fingerprints against every participant its fold has seen; one it cannot resolve
 * makes it pull a sync, whose answer names everyone in full. The cluster name is in every
 * protocol id and topic, so a pushed Diff leaves its origin out too.
 *
 * The fingerprint is the first 8 bytes of SHA-256 over the peer id's UTF-8: choosing a key
 * whose id collides with a participant's costs about 2^64 hashes.
 *
 * Since protocol 7.0.0 a sender names its whole infimum participant list by one **table hash**
 * instead of one fingerprint each (8 bytes per message instead of 8 per participant: 256 of
 * the about 400 bytes of a message among 32 peers), once every receiver's acknowledgement
 * shows an infimum at or past the one at which the list became the sender's. A receiver
 * resolves the hash against its own infimum participant lists (the current one and the last
 * few) and its projected participants; a hash it cannot resolve makes it pull a sync, as an
 * unknown fingerprint does.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { FINGERPRINT_BYTES, TABLE_HASH_BYTES, type DiffContext, type SharedTable } from '../../codec/eventfold.js'
import { Writer, equalBytes } from '../../codec/buffer.js'
import { compareEventIds, sameParticipants, type EventId, type Participant } from '../../eventfold/types.js'

/** How many of its own past infimum participant lists a replica resolves table hashes against. */
const RECENT_TABLES = 4

/**
 * A list of participants with its table hash, the same participants as a set (what
 * {@link ParticipantFingerprints.sending} takes), and the infimum at which this replica first
 * saw it as its own.
 */
interface NotedTable { readonly table: SharedTable, readonly shared: ReadonlySet<Participant>, readonly since: EventId }

/** No more lists to resolve a table hash against. */
const NO_LISTS = (): ReadonlyArray<readonly Participant[]> => []

/**
 * The table hash of a sorted participant list: the first 8 bytes of SHA-256 over the list
 * written as a participant table names it in full (`varuint n · n × str`).
 */
export function tableHash (participants: readonly Participant[]): Uint8Array {
  const w = new Writer(64)
  w.writeVarUint(participants.length)
  for (const p of participants) w.writeString(p)
  return createHash('sha256').update(w.finish()).digest().subarray(0, TABLE_HASH_BYTES)
}

/** Computes, caches and resolves participant fingerprints for one peer. */
export class ParticipantFingerprints {
  private readonly prints = new Map<Participant, Uint8Array>()
  private resolved: { known: readonly Participant[], size: number, byPrint: Map<string, Participant | null> } | undefined
  /**
   * The contexts last handed out, given again while their inputs are the same objects: a
   * replica asks for one per Diff it encodes or decodes, and the participants rarely change.
   */
  private lastSending: { origin: string, shared: ReadonlySet<Participant>, table: SharedTable | undefined, context: DiffContext } | undefined
  private lastReceiving: { origin: string, byPrint: Map<string, Participant | null>, also: () => ReadonlyArray<readonly Participant[]>, context: DiffContext } | undefined
  /** This replica's own infimum participant lists, newest last (at most {@link RECENT_TABLES}). */
  private readonly recent: NotedTable[] = []

  /** The fingerprint of `participant`. */
  of (participant: Participant): Uint8Array {
    let fp = this.prints.get(participant)
    if (fp === undefined) {
      fp = createHash('sha256').update(participant, 'utf8').digest().subarray(0, FINGERPRINT_BYTES)
      this.prints.set(participant, fp)
    }
    return fp
  }

  /**
   * The context for a message to participants that all know `shared` (those go by
   * fingerprint) over a channel that names cluster `origin` (left out of the message).
   */
  sending (origin: string, shared: ReadonlySet<Participant>, table?: SharedTable): DiffContext {
    const last = this.lastSending
    if (last !== undefined && last.origin === origin && last.shared === shared && last.table === table) return last.context
    const context: DiffContext = { origin, fingerprint: (p) => shared.has(p) ? this.of(p) : undefined, ...(table !== undefined ? { table } : {}) }
    this.lastSending = { origin, shared, table, context }
    return context
  }

  /**
   * Notes `participants` (sorted) as this replica's infimum participants at infimum `at`;
   * returns the list's table hash and the infimum at which it was first noted (a receiver
   * whose infimum is at or past that one has had the list, or a later one, as its own).
   */
  noteInfimum (participants: readonly Participant[], at: EventId): NotedTable {
    const last = this.recent[this.recent.length - 1]
    if (last !== undefined && sameParticipants(last.table.participants, participants)) return last
    const noted = { table: { hash: tableHash(participants), participants: [...participants] }, shared: new Set(participants), since: at }
    this.recent.push(noted)
    if (this.recent.length > RECENT_TABLES) this.recent.shift()
    return noted
  }

  /**
   * The table to name in a message to `receivers` whose acknowledgements report the infimum
   * ids `reported` gives (`undefined`: none taken yet), or `undefined` when one of them may not
   * know the list yet.
   */
  tableFor (noted: NotedTable, receivers: readonly Participant[], reported: (p: Participant) => EventId | undefined): SharedTable | undefined {
    for (const p of receivers) {
      const at = reported(p)
      if (at === undefined || compareEventIds(at, noted.since) < 0) return undefined
    }
    return noted.table
  }

  /**
   * The context for reading a message over a channel that names cluster `origin`, resolving
   * fingerprints against `known` (every participant the fold has seen; it only grows while
   * the fold lives), and table hashes against this replica's recent infimum lists
   * ({@link noteInfimum}) and the lists `also` gives (asked only when those do not resolve
   * it). A fingerprint two known participants share resolves to neither, and so does a table
   * hash two lists share.
   */
  receiving (origin: string, known: readonly Participant[], also: () => ReadonlyArray<readonly Participant[]> = NO_LISTS): DiffContext {
    let r = this.resolved
    if (r === undefined || r.known !== known || r.size !== known.length) {
      const byPrint = r !== undefined && r.known === known ? r.byPrint : new Map<string, Participant | null>()
      for (let i = r !== undefined && r.known === known ? r.size : 0; i < known.length; i++) {
        const p = known[i]!
        const key = Buffer.from(this.of(p)).toString('hex')
        byPrint.set(key, byPrint.has(key) && byPrint.get(key) !== p ? null : p)
      }
      r = this.resolved = { known, size: known.length, byPrint }
    }
    const byPrint = r.byPrint
    const last = this.lastReceiving
    if (last !== undefined && last.origin === origin && last.byPrint === byPrint && last.also === also) return last.context
    const context: DiffContext = { origin, resolve: (fp) => byPrint.get(Buffer.from(fp).toString('hex')) ?? undefined, resolveTable: (hash) => this.resolveTable(hash, also) }
    this.lastReceiving = { origin, byPrint, also, context }
    return context
  }

  /**
   * The list `hash` names: one of this replica's recent infimum lists, or else one of `also`
   * (hashed only then); `undefined` when none does, or two different ones do.
   */
  private resolveTable (hash: Uint8Array, also: () => ReadonlyArray<readonly Participant[]>): readonly Participant[] | undefined {
    // Loops rather than a shared closure, hashes compared without a native call: this runs for
    // every Diff decoded.
    let found: readonly Participant[] | undefined
    for (const n of this.recent) {
      if (!equalBytes(n.table.hash, hash)) continue
      if (found !== undefined && !sameParticipants(found, n.table.participants)) return undefined
      found = n.table.participants
    }
    if (found !== undefined) return found
    for (const list of also()) {
      if (!equalBytes(tableHash(list), hash)) continue
      if (found !== undefined && !sameParticipants(found, list)) return undefined
      found = list
    }
    return found
  }
}
