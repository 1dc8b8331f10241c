/**
 * Typed errors of discovery and election. Each class sets `name`, so callers can test
 * `err.name` across two copies of the package. Expected outcomes (nobody registered, nobody
 * holds a name) are return values, not errors; these are for what a caller asked and could not
 * get.
 *
 * @module
 */
import type { EventId } from '../eventfold/types.js'
import type { Holder } from './api.js'

/** A name, metadata or checkpoint the registry cannot take (empty, too large, refused by its codec). */
export class RegistryInputError extends Error {
  /** Always `'RegistryInputError'`. */
  override readonly name = 'RegistryInputError'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/**
 * `elect(name, ...)` with terms that differ from those the name's candidates already stand
 * on: another start function (its fingerprint, or the `kind` given), or another `minMembers`.
 */
export class ElectionConflictError extends Error {
  /** Always `'ElectionConflictError'`. */
  override readonly name = 'ElectionConflictError'
  /** The name. */
  readonly electionName: string
  /** The kind the name's candidates stand on. */
  readonly kind: string
  /** The `minMembers` they stand on. */
  readonly minMembers: number
  constructor (name: string, kind: string, minMembers: number, detail = 'its candidates run another start function (or another kind)') {
    super(`election ${JSON.stringify(name)}: ${detail} (kind ${kind}, minMembers ${minMembers})`)
    this.electionName = name
    this.kind = kind
    this.minMembers = minMembers
  }
}

/** Nobody holds the name (as this peer's settled state says), or no holder answered in time. */
export class NoHolderError extends Error {
  /** Always `'NoHolderError'`. */
  override readonly name = 'NoHolderError'
  /** The name. */
  readonly electionName: string
  constructor (name: string, detail = 'nobody holds it') {
    super(`election ${JSON.stringify(name)}: ${detail}`)
    this.electionName = name
  }
}

/**
 * A write or a call carried a fencing token that is not the name's current grant: the holder
 * that made it was deposed (it resigned, stepped down and was ejected, or was replaced).
 */
export class FencedError extends Error {
  /** Always `'FencedError'`. */
  override readonly name = 'FencedError'
  /** The name. */
  readonly electionName: string
  /** The token that was refused. */
  readonly token: EventId
  /** The current holder, if the refuser knows one. */
  readonly holder: Holder | undefined
  constructor (name: string, token: EventId, holder?: Holder) {
    super(`election ${JSON.stringify(name)}: token ${token.counter}:${token.participant} is not the current grant${holder === undefined ? '' : ` (held by ${holder.peer} with ${holder.token.counter}:${holder.token.participant})`}`)
    this.electionName = name
    this.token = token
    this.holder = holder
  }
}

/** The candidacy was withdrawn (resigned, or the service stopped): it runs nothing more. */
export class CandidacyClosedError extends Error {
  /** Always `'CandidacyClosedError'`. */
  override readonly name = 'CandidacyClosedError'
  constructor (name: string, why: string) {
    super(`election ${JSON.stringify(name)}: ${why}`)
  }
}
