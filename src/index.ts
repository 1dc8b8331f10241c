/**
 * Legion: clusters of identical Node.js processes that share one replicated state, an
 * **EventFold** (an event-sourced CRDT in which totally ordered events fold into a settled
 * *infimum* once every participant has acknowledged them), exchanged over libp2p.
 *
 * This entry point exports the public contract only: the EventFold and its data types, the
 * binary codec through which applications serialise their own events, states and outputs, and
 * the built-in partition table event spec. The peer runtime (start-up, propagation over
 * libp2p, messaging) is in progress and will be exported here.
 *
 * @example
 * Two replicas of a counter: `b` joins through `a`, adds an event, and a diff carries it back.
 * ```ts
 * import { EventFold, type EventSpec } from 'legion'
 *
 * const counter: EventSpec<number, number, number> = {
 *   init: () => 0,
 *   apply: (n, total) => ({ ok: true, output: total + n, state: total + n })
 * }
 *
 * // a founds the cluster and admits b; b starts from a's whole fold and acknowledges it.
 * const a = EventFold.create('my-cluster', 'a', counter)
 * a.participate('b')
 * const b = EventFold.fromSnapshot(a.snapshot(), 'b', counter)
 * b.acknowledge()                 // b's Join folds on b
 * a.mergeFull(b.snapshot())       // ... and on a, which adopts b's infimum
 *
 * // b adds an event: its projected output is immediate, it folds once a acknowledges it.
 * b.event(5).output               // 5
 * a.mergeDiff(b.diffFor('a')!)    // a acknowledges: the event folds on a
 * b.mergeDiff(a.diffFor('b')!)    // a's infimum tells b everyone has it: it folds on b
 * a.infimumValue()                // 5
 * b.infimumValue()                // 5
 * ```
 *
 * @packageDocumentation
 */

// ---------------------------------------------------------------------------------------------
// The EventFold: the replicated state and its plain-data forms.
// ---------------------------------------------------------------------------------------------

export {
  EventFold,
  type EventResult,
  type MembershipResult,
  type MergeResult
} from './eventfold/event-fold.js'
export {
  BOTTOM,
  isBottom,
  compareEventIds,
  eventIdKey,
  type Participant,
  type EventId,
  type EventSpec,
  type EventFoldOptions,
  type ApplyResult,
  type Delta,
  type InfimumDigest,
  type InfimumSnapshot,
  type OutstandingEvent,
  type EventFoldSnapshot,
  type DiffEvent,
  type Diff,
  type ConsistentOutput,
  type UpdateResult
} from './eventfold/types.js'
export { EMPTY_DIGEST } from './eventfold/digest.js'
export { MergeError, DifferentOriginsError, DiffTooNewError, DiffTooSparseError } from './eventfold/errors.js'

// ---------------------------------------------------------------------------------------------
// The codec: how folds, diffs and user values become bytes. Writer and Reader are public
// because an application's own Codec writes and reads through them.
// ---------------------------------------------------------------------------------------------

export {
  DEFAULT_DECODE_LIMITS,
  resolveDecodeLimits,
  encodeWith,
  decodeWith,
  type Codec,
  type DecodeLimits
} from './codec/codec.js'
export { DecodeError, EncodeError, type DecodeErrorCode } from './codec/errors.js'
export { Writer, Reader } from './codec/buffer.js'
export { jsonCodec, type JsonValue, type JsonArray, type JsonObject } from './codec/json.js'
export {
  FORMAT_VERSION,
  encodeEventId,
  decodeEventId,
  encodeEventFold,
  decodeEventFold,
  encodeDiff,
  decodeDiff,
  type FoldCodecs
} from './codec/eventfold.js'

// ---------------------------------------------------------------------------------------------
// The partition table: a built-in event spec that assigns partitions to participants.
// ---------------------------------------------------------------------------------------------

export {
  MAX_PARTITIONS,
  partitionTableSpec,
  ownerOf,
  partitionsOf,
  partitionForKey,
  fnv1a32,
  isBalanced,
  formatPartitionTable,
  type PartitionTable,
  type PartitionTableEvent,
  type PartitionTableOutput
} from './partitions/partition-table.js'

// ---------------------------------------------------------------------------------------------
// RUNTIME EXPORTS GO HERE (src/runtime/, in progress): the Runtime handle, its start-up
// options and errors. The runtime module must import src/transport first, since that applies
// the Promise.withResolvers polyfill before libp2p loads.
// ---------------------------------------------------------------------------------------------
