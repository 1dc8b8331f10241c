/**
 * The storage contract: what one peer persists so that, after a restart, it comes back as the
 * same participant of the same cluster. Adapters (memory, lmdb) implement {@link PeerStorage}
 * and import nothing but this module; the runtime depends on this contract only. Storage treats
 * the encoded fold and the private key as opaque bytes: decoding them is the caller's job.
 *
 * Also here: the typed failures every adapter reports, and {@link openPeerStorageFor}, the guard
 * that stops a peer from adopting (or overwriting) a data directory of another cluster.
 *
 * @module
 */

/** What a peer persists: enough to recover as the same participant. */
export interface PeerRecord {
  /** The cluster's name (the fold's origin). */
  readonly cluster: string
  /** The peer's libp2p private key, protobuf-encoded (`privateKeyToProtobuf` from `@libp2p/crypto/keys`). */
  readonly privateKey: Uint8Array
  /** The encoded EventFold (opaque bytes to storage). */
  readonly fold: Uint8Array
}

/**
 * The storage contract every adapter implements. Bytes are copied in both directions: mutating a
 * record after `save` was called, or a record returned by `load`, never changes what is stored.
 */
export interface PeerStorage {
  /**
   * The stored record, or `undefined` when nothing was ever saved. It reflects every `save`
   * that had resolved before `load` was called. Throws {@link StorageCorruptError} when what is
   * stored cannot be read back intact, {@link StorageClosedError} after `close`.
   */
  load(): Promise<PeerRecord | undefined>
  /**
   * Replaces the stored record atomically and durably: resolves only once the write would
   * survive a process crash (kill -9); a crash mid-save leaves the previous record intact.
   * Concurrent calls are serialised in call order (the last call's record is the one that
   * stays). Rejects with {@link StorageClosedError} after `close`.
   */
  save(record: PeerRecord): Promise<void>
  /**
   * Releases resources once the saves already called have settled; further calls reject with
   * {@link StorageClosedError}. Idempotent: every call returns the same settled outcome.
   */
  close(): Promise<void>
}

/**
 * Why stored bytes could not be read back.
 * - `checksum`: the record's checksum does not match its contents.
 * - `truncated`: the record, or a file, ends before it should.
 * - `unknown-version`: a format or layout version this build does not read.
 * - `bad-magic`: the bytes do not start with the record's (or database file's) magic.
 * - `invalid`: readable but not a valid record (bad UTF-8, trailing bytes, an unreadable
 *   database file).
 */
export type StorageCorruptReason = 'checksum' | 'truncated' | 'unknown-version' | 'bad-magic' | 'invalid'

/**
 * What is stored cannot be read back intact. Nothing is repaired or overwritten when this is
 * thrown: the data stays on disk for a human to inspect.
 */
export class StorageCorruptError extends Error {
  /** Always `'StorageCorruptError'`, for `err.name` checks across package copies. */
  override readonly name = 'StorageCorruptError'
  /** What was wrong with the stored bytes. */
  readonly reason: StorageCorruptReason

  /**
   * @param reason - what was wrong with the stored bytes
   * @param message - details, for humans
   * @param options - `cause`: the underlying error, when one is wrapped
   */
  constructor (reason: StorageCorruptReason, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.reason = reason
  }
}

/** The storage was closed; it can no longer load or save. */
export class StorageClosedError extends Error {
  /** Always `'StorageClosedError'`. */
  override readonly name = 'StorageClosedError'

  constructor (message = 'storage is closed') {
    super(message)
  }
}

/**
 * The stored record belongs to another cluster (or a record of another cluster was about to
 * be saved). Nothing was written.
 */
export class WrongClusterError extends Error {
  /** Always `'WrongClusterError'`. */
  override readonly name = 'WrongClusterError'
  /** The cluster the caller runs. */
  readonly expected: string
  /** The cluster found in (or about to be written to) the storage. */
  readonly found: string

  /**
   * @param expected - the cluster the caller runs
   * @param found - the cluster found in the storage, or in the record being saved
   */
  constructor (expected: string, found: string) {
    super(`storage belongs to cluster ${JSON.stringify(found)}, not ${JSON.stringify(expected)}`)
    this.expected = expected
    this.found = found
  }
}

/**
 * A {@link PeerStorage} bound to one cluster by {@link openPeerStorageFor}: `load` throws
 * {@link WrongClusterError} if the stored record is of another cluster, and `save` refuses a
 * record of another cluster without writing anything.
 */
export interface ClusterPeerStorage extends PeerStorage {
  /** The cluster this storage is bound to. */
  readonly cluster: string
  /** The record found when the storage was bound: `undefined` for a peer that never saved. */
  readonly recovered: PeerRecord | undefined
}

/**
 * Binds `storage` to `cluster`: loads the stored record and refuses it, with
 * {@link WrongClusterError}, if it belongs to another cluster. Nothing is written either way,
 * so a data directory of another cluster is left exactly as it was. The returned storage keeps
 * guarding: its `save` rejects a record of another cluster before touching `storage`.
 *
 * `storage` is not closed on failure: the caller still owns it (close it in a `finally`).
 *
 * @example
 * ```ts
 * const storage = await openPeerStorageFor(await lmdbStorage(dir), 'orders')
 * const identity = storage.recovered?.privateKey ?? privateKeyToProtobuf(await generateKeyPair('Ed25519'))
 * ```
 *
 * @param storage - the adapter to bind
 * @param cluster - the cluster the caller runs
 * @returns the bound storage, with the record it recovered
 * @throws {@link WrongClusterError} when the stored record is of another cluster
 * @throws {@link StorageCorruptError} when the stored record cannot be read back intact
 */
export async function openPeerStorageFor (storage: PeerStorage, cluster: string): Promise<ClusterPeerStorage> {
  const recovered = await storage.load()
  if (recovered !== undefined && recovered.cluster !== cluster) {
    throw new WrongClusterError(cluster, recovered.cluster)
  }
  return {
    cluster,
    recovered,
    async load () {
      const record = await storage.load()
      if (record !== undefined && record.cluster !== cluster) throw new WrongClusterError(cluster, record.cluster)
      return record
    },
    async save (record) {
      if (record.cluster !== cluster) throw new WrongClusterError(cluster, record.cluster)
      await storage.save(record)
    },
    async close () {
      await storage.close()
    }
  }
}

/** A copy of `record` whose byte arrays share nothing with the original. */
export function copyPeerRecord (record: PeerRecord): PeerRecord {
  return {
    cluster: record.cluster,
    privateKey: new Uint8Array(record.privateKey),
    fold: new Uint8Array(record.fold)
  }
}
