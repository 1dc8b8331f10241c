/**
 * Persistence of a peer's state, in two contracts side by side while the runtime moves from the
 * first to the second:
 * - {@link PeerStorage}: one record per peer (cluster, libp2p private key, the whole encoded
 *   EventFold), so that a restarted peer resumes as the same participant. {@link memoryStorage}
 *   and {@link lmdbStorage} (data directory layout 1) implement it; `runStorageAcceptanceTests`
 *   in `./acceptance.js` is its suite.
 * - {@link KeyValueStore}: a namespaced, ordered key-value store with atomic durable batches,
 *   for a peer that hosts many replicated folds, each saving only what changed.
 *   {@link memoryKeyValueStore} and {@link lmdbKeyValueStore} (layout 2, which converts a
 *   layout-1 directory on open; {@link readLegacyPeerRecord} reads the old record back)
 *   implement it; `runKeyValueStoreTests` in `./key-value-acceptance.js` is its suite.
 * The suites stay out of this index because they load `node:test`. Storage never interprets the
 * bytes it keeps.
 *
 * @example
 * ```ts
 * import { lmdbStorage, openPeerStorageFor } from './storage/index.js'
 *
 * const storage = await openPeerStorageFor(await lmdbStorage('./data/peer-1'), 'orders')
 * // storage.recovered: the record of the previous run, or undefined on first start
 * await storage.save({ cluster: 'orders', privateKey, fold })
 * await storage.close()
 * ```
 *
 * @module
 */
export type { ClusterPeerStorage, PeerRecord, PeerStorage, StorageCorruptReason } from './storage.js'
export {
  openPeerStorageFor,
  copyPeerRecord,
  StorageClosedError,
  StorageCorruptError,
  WrongClusterError
} from './storage.js'
export { memoryStorage, MemoryStore } from './memory.js'
export type { MemoryStorage, MemoryStorageOptions } from './memory.js'
export { lmdbStorage } from './lmdb.js'
export type { LmdbStorageOptions } from './lmdb.js'
export { ForeignDirectoryError, StorageInUseError } from './directory-errors.js'
export { encodePeerRecord, decodePeerRecord, RECORD_FORMAT_VERSION } from './record-format.js'

export type { KeyBounds, KeyRange, KeyValueEntry, KeyValueOperation, KeyValueStore, KeyValueView } from './key-value.js'
export { KEY_VALUE_LIMITS, isValidNamespaceName } from './key-value.js'
export { tupleKey, readTupleKey, KeyDecodeError } from './tuple-key.js'
export type { KeyPart } from './tuple-key.js'
export { memoryKeyValueStore, MemoryKeyValueData } from './memory-key-value.js'
export type { MemoryKeyValueStore, MemoryKeyValueStoreOptions } from './memory-key-value.js'
export { lmdbKeyValueStore, LegacyLayoutError, LMDB_KEY_VALUE_LAYOUT } from './lmdb-key-value.js'
export type { LmdbKeyValueStoreOptions } from './lmdb-key-value.js'
export { readLegacyPeerRecord, legacyPeerRecordOperations, LEGACY_PEER_RECORD_NAMESPACE } from './legacy-peer-record.js'
