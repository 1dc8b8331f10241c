/**
 * What a replicated group is, independently of any one incarnation of it: its id, the origin
 * its folds carry, the user's event spec and codecs, and who decides its membership.
 *
 * - The cluster's own group (id `""`) is the state the application passes to `startLegion`;
 *   its participants *are* the cluster's members, and its folds have the cluster's name as
 *   their origin (as every fold had before groups existed, so stored folds stay readable).
 * - A **cluster-wide** group follows the cluster: every member is a participant. The founder
 *   creates it, a sponsor admits a joiner to it together with the cluster, and an ejection
 *   removes the ejected peer from it.
 * - A **managed** group has the participants its owner (a service) gives it, any subset of the
 *   members: the owner adds and removes them; an ejection from the cluster removes the ejected
 *   peer from every group all the same.
 *
 * @module
 */
import type { FoldCodecs } from '../../codec/eventfold.js'
import type { EventSpec } from '../../eventfold/types.js'

/** Who decides a group's participants. */
export type GroupMembership = 'cluster' | 'managed'

/** One replicated group, as every peer defines it alike. */
export interface GroupDefinition<E, S, O> {
  /** The group's id, unique in the cluster; `""` is the cluster's own group. */
  readonly id: string
  /** The origin of its folds (see {@link groupOrigin}). */
  readonly origin: string
  /** What its events do. */
  readonly spec: EventSpec<E, S, O>
  /** How its events, states and outputs travel and persist. */
  readonly codecs: FoldCodecs<E, S, O>
  /** Who decides its participants. */
  readonly membership: GroupMembership
  /** Acknowledgements of its events go to every participant at once (`GroupOptions.acknowledgeAtOnce`). */
  readonly acknowledgeAtOnce?: boolean
  /** A managed group whose fold survives a rejoin for its service (`GroupOptions.keepAcrossRejoin`). */
  readonly keepAcrossRejoin?: boolean
}

/** The id of the cluster's own group. */
export const CLUSTER_GROUP = ''

/** Longest group id, in UTF-8 bytes. */
export const MAX_GROUP_ID_LENGTH = 128

/**
 * The origin of group `id`'s folds in `cluster`: the cluster's name for its own group, the
 * name and the id joined by a NUL otherwise. Signatures cover the origin, so an event signed
 * for one group (or cluster) is forged in any other. NUL may appear in neither part, which
 * keeps the join unambiguous.
 */
export function groupOrigin (cluster: string, id: string): string {
  return id === CLUSTER_GROUP ? cluster : `${cluster}\u0000${id}`
}

/**
 * Checks a group id a service chose: 1 to {@link MAX_GROUP_ID_LENGTH} bytes of printable
 * characters (no control characters, so no NUL), conventionally `<service>/<name>`.
 * @throws TypeError naming what is wrong
 */
export function checkGroupId (id: unknown): string {
  if (typeof id !== 'string') throw new TypeError(`a group id must be a string, got ${typeof id}`)
  if (id === CLUSTER_GROUP) throw new TypeError('the empty group id is the cluster\'s own group')
  if (Buffer.byteLength(id, 'utf8') > MAX_GROUP_ID_LENGTH) throw new TypeError(`a group id must be at most ${MAX_GROUP_ID_LENGTH} bytes: ${JSON.stringify(id.slice(0, 40))}...`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new TypeError(`a group id must not contain control characters: ${JSON.stringify(id)}`)
  return id
}
