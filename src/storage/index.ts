/**
 * Persistence of one peer's state: the cluster it belongs to, its libp2p private key and its
 * encoded EventFold, so that a restarted peer resumes as the same participant. The contract is
 * {@link PeerStorage}; {@link memoryStorage} and {@link lmdbStorage} implement it, and
 * `runStorageAcceptanceTests` in `./acceptance.js` is the suite any further adapter must pass
 * (kept out of this index because it loads `node:test`). Storage never interprets the bytes it
 * keeps.
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
export { lmdbStorage, ForeignDirectoryError, StorageInUseError } from './lmdb.js'
export type { LmdbStorageOptions } from './lmdb.js'
export { encodePeerRecord, decodePeerRecord, RECORD_FORMAT_VERSION } from './record-format.js'
