/**
 * Legion: clusters of identical Node.js processes that share one replicated state, an
 * **EventFold** (an event-sourced CRDT in which totally ordered events fold into a settled
 * *infimum* once every participant has acknowledged them), exchanged over libp2p, plus
 * `cast` / `call` / `broadcast` / `broadcall` messaging between the peers.
 *
 * This entry point exports the public contract: {@link startLegion} and the {@link Legion}
 * handle it returns, storage adapters, the EventFold itself and its data types, the binary
 * codec through which applications serialise their events, states and outputs, the
 * built-in partition table event spec, and supervised state machines on one process
 * ({@link startSupervision}: servers as pure step functions under OTP-style supervisor trees).
 * Layers plug into a peer as services ({@link defineService}): a partitioned keyspace with
 * routing, replication, handoff and a tag index ({@link defineKeyspace}), service discovery with
 * leader election and fencing tokens ({@link discovery}), supervision across the cluster
 * ({@link clusterSupervision}), and the operator's admin endpoint with Prometheus metrics and a
 * status page ({@link admin}).
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
 * @example
 * A supervised server: a counter that crashes on a negative input and is restarted.
 * ```ts
 * import { defineServer, startSupervision, supervisor, worker } from 'legion'
 *
 * const counter = defineServer<number, number, number>({
 *   init: () => 0,
 *   step: (n, total) => {
 *     if (n < 0) throw new RangeError('negative')
 *     return { state: total + n, output: total + n }
 *   }
 * })
 * const c = worker('counter', counter)
 * const tree = await startSupervision(supervisor('root', {}, [c]))
 * await tree.call(c, 5)                            // 5
 * await tree.call(c, -1).catch((e) => e.name)      // 'ServerCrashedError'
 * await tree.call(c, 1)                            // 1: the restarted counter starts over
 * await tree.stop()
 * ```
 *
 * @packageDocumentation
 */

// ---------------------------------------------------------------------------------------------
// The runtime: one peer of a cluster. (Importing it loads the transport, which applies the
// Promise.withResolvers polyfill Node 20 needs before libp2p loads.)
// ---------------------------------------------------------------------------------------------

export { startLegion } from './peer/start.js'
export type {
  Legion,
  LegionOptions,
  LegionBaseOptions,
  CodecsOption,
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
  BrokenLink,
  WaitOptions,
  Dissemination
} from './peer/options.js'
export type { StuckPeer, SelfHealth, PeerSilence } from './peer/membership/heartbeats.js'
export type { HeldBack } from './peer/membership/progress.js'
export {
  ConsistencyTimeoutError,
  StoppedError,
  JoinError,
  JoinRefusedError,
  RecoverError,
  NotParticipantError,
  EjectedError,
  ExistingStateError,
  NoHandlerError,
  BadReplyError,
  UnknownGroupError,
  GroupNotReadyError
} from './peer/errors.js'
export { RemoteError, TimeoutError, AbortError, PeerUnreachableError, FrameTooLargeError } from './transport/errors.js'

// ---------------------------------------------------------------------------------------------
// Typed messaging between peers, on named channels.
// ---------------------------------------------------------------------------------------------

export {
  messageChannel,
  type MessageChannel,
  type MessageContext,
  type ChannelHandle,
  type ChannelCallHandler,
  type ChannelCastHandler,
  type BroadcallResult
} from './peer/messaging.js'

// ---------------------------------------------------------------------------------------------
// Services: layers that plug into a peer and host replicated groups of their own.
// ---------------------------------------------------------------------------------------------

export {
  defineService,
  type ServiceDefinition,
  type ServiceComponents,
  type ServiceInstance,
  type ServiceStopContext,
  type ServiceMap,
  type ServiceInstances,
  type MembershipView,
  type ServiceGroups,
  type ServiceMessaging
} from './peer/services.js'
export type { FormerState, Liveness, PeerContact } from './peer/services.js'
export type { Group, GroupOptions, GroupParticipants } from './peer/group/groups.js'
export type { GroupMembership } from './peer/group/definition.js'
export type { Metrics } from './peer/metrics.js'
export type { PeerClock, Random } from './peer/clock.js'

// ---------------------------------------------------------------------------------------------
// Discovery and election: a service with a registry every peer replicates (lookups from the
// local replica, gap-free watches), elections whose grants carry fencing tokens, holders that
// step down before a majority could eject them, and calls addressed to a name.
// ---------------------------------------------------------------------------------------------

export { discovery, type DiscoveryInstance, type DiscoveryNeeds } from './discovery/service.js'
export { Fence } from './discovery/fence.js'
export { RegistryInputError, ElectionConflictError, NoHolderError, FencedError, CandidacyClosedError } from './discovery/errors.js'
export { defaultLeaseWindows, leaseOf, type Lease, type LeaseInputs, type LeaseWindows } from './discovery/lease.js'
export type {
  Discovery,
  DiscoveryOptions,
  LookupConsistency,
  FencingToken,
  ServiceEntry,
  Lookup,
  LookupOptions,
  RegistryWatchEvent,
  Holder,
  HolderEvent,
  Checkpoint,
  HolderContext,
  StopFunction,
  StartFunction,
  ElectOptions,
  CandidacyStatus,
  Candidacy,
  Registration,
  HolderCallOptions,
  HolderCallContext,
  HolderEndpoint
} from './discovery/api.js'

// ---------------------------------------------------------------------------------------------
// Supervision across the cluster: children placed on peers and restarted on another when their
// peer goes (exactly once: one election per child), replicated servers whose state is a group
// among their replicas (poison inputs quarantined on every replica), calls by name from any peer.
// ---------------------------------------------------------------------------------------------

export { clusterSupervision, type ClusterSupervisionInstance, type SupervisionNeeds } from './cluster-supervision/service.js'
export { PoisonInputError, ChildConflictError, ReplicasUnavailableError, RemoteChildError } from './cluster-supervision/errors.js'
export type {
  ClusterSupervision,
  ClusterSupervisionOptions,
  ClusterSupervisionEvent,
  ClusterSupervisionStats,
  ClusterChildInfo,
  ChildHolder,
  LocalServerInfo,
  ClusterCallOptions,
  ChildRef,
  Placement,
  PlacedChildOptions,
  ReplicatedChildOptions,
  QuarantinedInput,
  ServerTable,
  InputOf,
  OutputOf
} from './cluster-supervision/api.js'
export type { QuarantineRecord } from './cluster-supervision/replicated-spec.js'

// ---------------------------------------------------------------------------------------------
// The operator's view: the admin endpoint (health, readiness, JSON views, Prometheus metrics, a
// status page, guarded mutations with plan-then-commit), and what services show operators.
// ---------------------------------------------------------------------------------------------

export {
  admin,
  planLayoutChange,
  parseLayoutChange,
  committedEvent,
  readiness,
  type AdminOptions,
  type AdminEndpoint,
  type AdminNeeds,
  type LayoutChange,
  type LayoutPlan,
  type PartitionMove,
  type RefusedChange,
  type Readiness,
  type ReadinessCheck,
  type MemberView,
  type Change,
  type ChangeKind,
  isPlanningView,
  type PlanningView,
  type PlannedMembershipChange
} from './admin/index.js'
export type { OperatorControl, OperatorView, OperatorViews, PeerPhase, GroupSummary } from './peer/operator.js'
export { LEGION_VERSION, PROTOCOL_VERSION } from './version.js'

// ---------------------------------------------------------------------------------------------
// The keyspace: a service that partitions keys over the peers, replicates each partition among
// R owners, routes requests from any peer, hands partitions off as peers come and go, and
// indexes keys by tag for a cluster-wide ordered search (after the Haskell legion framework).
// ---------------------------------------------------------------------------------------------

export {
  defineKeyspace,
  type Keyspace,
  type KeyspaceOptions,
  type RequestOptions,
  type LocalRead,
  type KeyspaceStats,
  type KeyspaceNeeds,
  type PartitionEvent
} from './keyspace/keyspace.js'
export {
  stringKeys,
  bytesKeys,
  MAX_KEY_BYTES,
  MAX_TAG_BYTES,
  MAX_TAGS_PER_KEY,
  type KeyCodec,
  type KeyspaceApplication
} from './keyspace/partition-state.js'
export type { IndexRecord, SearchFrom, SearchOptions } from './keyspace/search.js'
export type { RequestConsistency } from './keyspace/wire.js'
export {
  MAX_KEYSPACE_PARTITIONS,
  MAX_REPLICATION,
  type KeyspaceTable,
  type LastOwner,
  type PartitionAssignment,
  type TableChange
} from './keyspace/table.js'
export type { HandoffProgress, ReceivingPartition, SendingPartition, ReleasingPartition } from './keyspace/handoff-progress.js'
export type { KeyspaceCounters } from './keyspace/context.js'
export type { KeyspacePlan, MembershipChange, ReplicaMove, RefusedPlan } from './keyspace/plan.js'
export {
  HandlerError,
  RequestTimeoutError,
  PartitionUnavailableError,
  BadRequestError,
  ForeignCursorError,
  InvalidCursorError
} from './keyspace/errors.js'

// ---------------------------------------------------------------------------------------------
// Storage: where a peer persists its fold and its private key (PeerStorage, used by the runtime
// today), and the namespaced key-value store that replaces it for peers hosting many folds.
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
  type StorageCorruptReason,
  memoryKeyValueStore,
  MemoryKeyValueData,
  lmdbKeyValueStore,
  LegacyLayoutError,
  readLegacyPeerRecord,
  legacyPeerRecordOperations,
  LEGACY_PEER_RECORD_NAMESPACE,
  tupleKey,
  readTupleKey,
  KeyDecodeError,
  KEY_VALUE_LIMITS,
  isValidNamespaceName,
  type KeyValueStore,
  type KeyValueView,
  type KeyValueEntry,
  type KeyValueOperation,
  type KeyBounds,
  type KeyRange,
  type KeyPart,
  type MemoryKeyValueStore,
  type MemoryKeyValueStoreOptions,
  type LmdbKeyValueStoreOptions
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
  type UnsignedHead,
  type SignedDelta,
  type MergeOptions,
  type SnapshotOptions,
  type ApplyResult,
  type Delta,
  type InfimumDigest,
  type InfimumSnapshot,
  type Admission,
  type SettledInfimum,
  type OutstandingEvent,
  type EventFoldSnapshot,
  type Diff,
  type Acknowledgement,
  type VersionEntry,
  type DepartingPosition,
  type FailureReport,
  type LogRun,
  type RunEvent,
  type LogBase,
  type LogPosition,
  type CreatorLog,
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
export { DecodeError, EncodeError, LegacyFoldError, type DecodeErrorCode } from './codec/errors.js'
export { Writer, Reader } from './codec/buffer.js'
export { jsonCodec, jsonCodecFor, type JsonValue, type JsonArray, type JsonObject, type IsJson, type JsonCheck, type OptionalKeys } from './codec/json.js'
export { checkedJsonCodec } from './codec/checked-json.js'
export {
  FORMAT_VERSION,
  OLDEST_READABLE_FORMAT_VERSION,
  MAX_EVENT_COUNTER,
  encodeEventId,
  decodeEventId,
  encodeEventFold,
  decodeEventFold,
  encodeDiff,
  decodeDiff,
  FINGERPRINT_BYTES,
  TABLE_HASH_BYTES,
  MAX_SIGNATURE_BYTES,
  MAX_HEADS_PER_SIGNATURE,
  MAX_HASH_BYTES,
  encodeLogLink,
  encodeLogHead,
  encodeHeadsRoot,
  type DiffContext,
  type SharedTable,
  type FoldCodecs
} from './codec/eventfold.js'
export { migrateEventFold } from './codec/legacy.js'

// ---------------------------------------------------------------------------------------------
// The partition table: a built-in event spec that assigns partitions to participants.
// ---------------------------------------------------------------------------------------------

export {
  MAX_PARTITIONS,
  partitionTableSpec,
  isPartitionTableSpec,
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
// Supervision: servers as pure step functions, an event loop over a bounded queue, and
// OTP-style supervisor trees with backoff, on one process. Independent of the runtime.
// ---------------------------------------------------------------------------------------------

export {
  systemClock,
  ManualClock,
  defineServer,
  serverRef,
  isAbnormalExit,
  worker,
  supervisor,
  DEFAULT_WORKER_SHUTDOWN_MS,
  decideRestart,
  backoffDelay,
  EMPTY_HISTORY,
  isAlive,
  startSupervision,
  memoryStateStore,
  MemoryStateStore,
  fileStateStore,
  MAX_FILE_STATE_KEY_BYTES,
  supervisionHttpHandler,
  UnknownServerError,
  QueueFullError,
  CallTimeoutError,
  CallAbortedError,
  ServerCrashedError,
  ServerExitedError,
  ServerStoppedError,
  SupervisionStoppedError,
  BadInputError,
  BadOutputError,
  ChildStartError,
  StartTimeoutError,
  DuplicateChildError,
  UnknownChildError,
  type Clock,
  type Timer,
  type ServerSpec,
  type InitContext,
  type TerminateContext,
  type StepResult,
  type ServerCodecs,
  type ServerPersistence,
  type ExitReason,
  type ServerRef,
  type ServerTypes,
  type WorkerSpec,
  type SupervisorSpec,
  type ChildSpec,
  type ChildOptions,
  type WorkerOptions,
  type SupervisorOptions,
  type SupervisorFlags,
  type BackoffOptions,
  type ResolvedBackoff,
  type RestartType,
  type Shutdown,
  type Strategy,
  type AutoShutdown,
  type RestartDecision,
  type RestartHistory,
  type ChildExit,
  type PolicyChild,
  type PolicyOutcome,
  type ChildStatus,
  type ChildInfo,
  type ChildCounts,
  type SupervisorInfo,
  type SupervisionEvent,
  type SupervisedChildInfo,
  type ChildEventFields,
  type ChildStartEvent,
  type ChildStopEvent,
  type ServerCrashEvent,
  type RestartDecidedEvent,
  type CallbackFailedEvent,
  type SupervisionTree,
  type SupervisionOptions,
  type CallOptions,
  type CastOptions,
  type TreeStatus,
  type SupervisionStats,
  type LoopCounters,
  type StateStore,
  type SupervisionHttpOptions
} from './supervision/index.js'
