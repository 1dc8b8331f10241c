/**
 * A {@link PeerStore} over a single-record {@link PeerStorage} (the memory and LMDB adapters
 * of storage layout 1): the peer's identity and every group's whole fold in one record,
 * rewritten on every save. A record written before groups existed holds the cluster's group
 * alone (a bare EventFold) and is read as such.
 *
 * @module
 */
import type { DecodeLimits } from '../codec/codec.js'
import { MessageKind, peekKind } from '../codec/eventfold.js'
import type { PeerStorage } from '../storage/storage.js'
import type { SomeReplica } from './lifecycle.js'
import type { PeerIdentity, PeerStore, StoredPeer } from './persistence.js'
import { decodeFoldBatch, encodeFoldBatch } from './protocol/fold-batch.js'

/** A peer store over a single-record storage; see the module comment. */
export function recordPeerStore (storage: PeerStorage, limits: DecodeLimits): PeerStore {
  const folds = new Map<string, Uint8Array>()
  return {
    async load (): Promise<StoredPeer | undefined> {
      const record = await storage.load()
      if (record === undefined) return undefined
      folds.clear()
      if (peekKind(record.fold) === MessageKind.eventFold) folds.set('', record.fold)
      else for (const { group, payload } of decodeFoldBatch(record.fold, limits)) folds.set(group, payload)
      return { cluster: record.cluster, privateKey: record.privateKey, groups: new Map([...folds].map(([id, bytes]) => [id, { kind: 'fold' as const, bytes }])) }
    },
    async save (identity: PeerIdentity, replicas: readonly SomeReplica[], dropped: readonly string[]): Promise<void> {
      for (const r of replicas) if (r.fold !== undefined) folds.set(r.id, r.encodedFold(r.fold))
      for (const id of dropped) folds.delete(id)
      const entries = [...folds].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([group, payload]) => ({ group, payload }))
      await storage.save({ cluster: identity.cluster, privateKey: identity.privateKey, fold: encodeFoldBatch(entries) })
    },
    async close (): Promise<void> {
      await storage.close()
    }
  }
}
