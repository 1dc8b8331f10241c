/**
 * Where a key-value store keeps the one {@link PeerRecord} of a data directory converted from
 * layout 1 (the record the runtime saved before it hosted many folds): its three fields as
 * three keys of the namespace {@link LEGACY_PEER_RECORD_NAMESPACE}. The migration writes them;
 * the runtime reads them on `recover` with {@link readLegacyPeerRecord}, turns the fold into its
 * root group and deletes them in the same batch that saves the group. Works on any
 * {@link KeyValueView}, memory or disk.
 *
 * Keys (tuple keys, see `tuple-key.ts`), all in namespace `legacy-peer-record` of the root:
 * ```
 * tupleKey('cluster')       the cluster name, UTF-8
 * tupleKey('private-key')   the libp2p private key, protobuf-encoded, as saved
 * tupleKey('fold')          the encoded EventFold, as saved
 * ```
 *
 * @module
 */
import type { KeyValueOperation, KeyValueView } from './key-value.js'
import { StorageCorruptError } from './storage.js'
import type { PeerRecord } from './storage.js'
import { tupleKey } from './tuple-key.js'

/**
 * The namespace (below the store's root) that holds a converted layout-1 record. Delete it with
 * `{ type: 'delete-range', namespace: LEGACY_PEER_RECORD_NAMESPACE }` in the batch that stores
 * what replaces it.
 */
export const LEGACY_PEER_RECORD_NAMESPACE = 'legacy-peer-record'

const CLUSTER = tupleKey('cluster')
const PRIVATE_KEY = tupleKey('private-key')
const FOLD = tupleKey('fold')

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The layout-1 record converted into `store`, or `undefined` when there is none (a store that
 * was never layout 1, a layout-1 directory that never saved, or a record already deleted).
 *
 * @example
 * ```ts
 * const store = await lmdbKeyValueStore(dir) // converts a layout-1 directory in place
 * const legacy = await readLegacyPeerRecord(store)
 * if (legacy !== undefined) {
 *   // legacy.cluster, legacy.privateKey, legacy.fold: what lmdbStorage(dir).load() returned
 * }
 * ```
 *
 * @param store - the store's root view
 * @returns the record (fresh arrays), or undefined
 * @throws {@link StorageCorruptError} when only some of the fields are present, the cluster
 * name is not UTF-8, or a value is damaged
 */
export async function readLegacyPeerRecord (store: KeyValueView): Promise<PeerRecord | undefined> {
  const namespace = store.namespace(LEGACY_PEER_RECORD_NAMESPACE)
  const [cluster, privateKey, fold] = await Promise.all([namespace.get(CLUSTER), namespace.get(PRIVATE_KEY), namespace.get(FOLD)])
  if (cluster === undefined && privateKey === undefined && fold === undefined) return undefined
  if (cluster === undefined || privateKey === undefined || fold === undefined) {
    throw new StorageCorruptError('invalid', `the legacy peer record in namespace ${LEGACY_PEER_RECORD_NAMESPACE} lacks a field`)
  }
  let name: string
  try {
    name = utf8Decoder.decode(cluster)
  } catch (cause) {
    throw new StorageCorruptError('invalid', 'the legacy peer record\'s cluster name is not valid UTF-8', { cause })
  }
  return { cluster: name, privateKey, fold }
}

/**
 * The batch operations (relative to the store's root) that store `record` where
 * {@link readLegacyPeerRecord} finds it. The migration uses them; tests can use them to put a
 * "converted" record into a memory store.
 *
 * @param record - the record to store
 * @returns three put operations
 * @throws TypeError when a field has the wrong type
 */
export function legacyPeerRecordOperations (record: PeerRecord): KeyValueOperation[] {
  if (typeof record !== 'object' || record === null) throw new TypeError('record must be an object')
  if (typeof record.cluster !== 'string') throw new TypeError('record.cluster must be a string')
  if (!(record.privateKey instanceof Uint8Array)) throw new TypeError('record.privateKey must be a Uint8Array')
  if (!(record.fold instanceof Uint8Array)) throw new TypeError('record.fold must be a Uint8Array')
  const namespace = LEGACY_PEER_RECORD_NAMESPACE
  return [
    { type: 'put', namespace, key: CLUSTER, value: utf8Encoder.encode(record.cluster) },
    { type: 'put', namespace, key: PRIVATE_KEY, value: record.privateKey },
    { type: 'put', namespace, key: FOLD, value: record.fold }
  ]
}
