/**
 * Legion: clusters of identical Node.js processes that share one replicated state, an
 * **EventFold** (an event-sourced CRDT in which totally ordered events fold into a settled
 * *infimum* once every participant has acknowledged them), exchanged over libp2p, plus
 * `cast` / `call` / `broadcast` / `broadcall` messaging between the peers.
 *
 * This entry point exports the public contract: {@link startLegion} and the {@link Legion}
 * handle it returns, storage adapters, the EventFold itself and its data types, the binary
 * codec through which applications serialise their events, states and outputs, and the
 * built-in partition table event spec.
 *
 * @example
 * Two peers on loopback share a partition table; `b` joins through `a`.
 * ```ts
 * import { startLegion, partitionTableSpec, formatPartitionTable } from 'legion'
 *
 * const spec = partitionTableSpec(16)
 * const a = await startLegion({ cluster: 'demo', spec, startup: { mode: 'new' } })
 * const b = await startLegion({ cluster: 'demo', spec, startup: { mode: 'join', peers: a.multiaddrs() } })
 *
 * await b.applyConsistent({ type: 'rebalance' })        // resolves once both acknowledged it
 * console.log(formatPartitionTable(b.readState().infimum)) // 8 partitions each
 *
 * await b.stop()   // leaves the cluster gracefully
 * await a.stop()
 * ```
 *
 * @example
 * The EventFold on its own, without a network: two replicas of a counter.
 * ```ts
 * import { EventFold, type EventSpec } from 'legion'
 *
 * const counter: EventSpec<number, number, number> = {
 *   init: () => 0,
 *   apply: (n, total) => ({ ok: true, output: total + n, state: total + n })
 * }
 * const a = EventFold.create('my-cluster', 'a', counter)
 * a.participate('b')
 * const b = EventFold.fromSnapshot(a.snapshot(), 'b', counter)
 * b.acknowledge()                 // b's Join folds on b
 * a.mergeFull(b.snapshot())       // ... and on a
 * b.event(5).outcome              // { status: 'applied', output: 5 }, at once (projected)
 * a.mergeDiff(b.diffFor('a')!)    // a acknowledges: the event folds on a
 * b.mergeDiff(a.diffFor('b')!)    // a's infimum tells b everyone has it
 * b.infimumValue()                // 5
 * ```
 *
 * @packageDocumentation
 */

// ---------------------------------------------------------------------------------------------
// The runtime: one peer of a cluster. (Importing it loads the transport, which applies the
// Promise.withResolvers polyfill Node 20 needs before libp2p loads.)
// ---------------------------------------------------------------------------------------------

export { startLegion } from './runtime/runtime.js'
export type {
  Legion,
  LegionOptions,
  StartupMode,
  PropagationOptions,
  FailureDetectionOptions,
  AutoEjectOptions,
  CallHandler,
  CastHandler,
  ClusterState,
  LegionStats,
  LegionCounters,
  DivergentPeer,
  WaitOptions,
  Dissemination
} from './runtime/options.js'
export { ConsistencyTimeoutError, StoppedError, JoinError, RecoverError, NotParticipantError, EjectedError } from './runtime/errors.js'
export { RemoteError, TimeoutError, AbortError, PeerUnreachableError, FrameTooLargeError } from './transport/errors.js'

// ---------------------------------------------------------------------------------------------
// Storage: where a peer persists its fold and its private key.
// ---------------------------------------------------------------------------------------------

export {
  memoryStorage,
  MemoryStore,
  lmdbStorage,
  openPeerStorageFor,
  StorageCorruptError,
  StorageClosedError,
  WrongClusterError,
  ForeignDirectoryError,
  StorageInUseError,
  type PeerStorage,
  type PeerRecord,
  type ClusterPeerStorage,
  type MemoryStorage,
  type MemoryStorageOptions,
  type LmdbStorageOptions,
  type StorageCorruptReason
} from './storage/index.js'

// ---------------------------------------------------------------------------------------------
// The EventFold: the replicated state and its plain-data forms.
// ---------------------------------------------------------------------------------------------

export { EventFold } from './eventfold/event-fold.js'
export type { EventResult, ProjectedOutcome, MembershipResult, MergeResult } from './eventfold/results.js'
export {
  BOTTOM,
  isBottom,
  compareEventIds,
  eventIdKey,
  type Participant,
  type EventId,
  type EventSpec,
  type EventFoldOptions,
  type EventSignatures,
  type SignedDelta,
  type MergeOptions,
  type ApplyResult,
  type Delta,
  type InfimumDigest,
  type InfimumSnapshot,
  type OutstandingEvent,
  type EventFoldSnapshot,
  type DiffEvent,
  type Diff,
  type ConsistentOutput,
  type HookName,
  type ThrownHook,
  type UpdateResult
} from './eventfold/types.js'
export { EMPTY_DIGEST } from './eventfold/digest.js'
export { MergeError, DifferentOriginsError, DiffTooNewError, DiffTooSparseError, ForgedEventError } from './eventfold/errors.js'

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
  OLDEST_READABLE_FORMAT_VERSION,
  encodeEventId,
  decodeEventId,
  encodeEventFold,
  decodeEventFold,
  encodeDiff,
  decodeDiff,
  FINGERPRINT_BYTES,
  MAX_SIGNATURE_BYTES,
  encodeSignedEvent,
  type DiffContext,
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
