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
 * @module
 */
import { createHash } from 'node:crypto'
import { FINGERPRINT_BYTES, type DiffContext } from '../../codec/eventfold.js'
import type { Participant } from '../../eventfold/types.js'

/** Computes, caches and resolves participant fingerprints for one peer. */
export class ParticipantFingerprints {
  private readonly prints = new Map<Participant, Uint8Array>()
  private resolved: { known: readonly Participant[], size: number, byPrint: Map<string, Participant | null> } | undefined

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
  sending (origin: string, shared: ReadonlySet<Participant>): DiffContext {
    return { origin, fingerprint: (p) => shared.has(p) ? this.of(p) : undefined }
  }

  /**
   * The context for reading a message over a channel that names cluster `origin`, resolving
   * fingerprints against `known` (every participant the fold has seen; it only grows while
   * the fold lives). A fingerprint two known participants share resolves to neither.
   */
  receiving (origin: string, known: readonly Participant[]): DiffContext {
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
    return { origin, resolve: (fp) => byPrint.get(Buffer.from(fp).toString('hex')) ?? undefined }
  }
}
