/**
 * A {@link PeerStore} over a namespaced {@link KeyValueStore}: each save writes only what
 * changed since the last one, in one atomic, durable batch across every group.
 *
 * Layout (keys are `tupleKey`s):
 * - namespace `identity`, key `("peer")`: the cluster's name and the private key.
 * - namespace `groups`, per group id `g` (`""` is the cluster's own group):
 *   - `(g, "i")`: the infimum (an EventFold with no events: id, digest, participants, state),
 *     rewritten when it moved;
 *   - `(g, "e", counter, participant)`: one outstanding event (a Diff holding it alone: body,
 *     signature, acknowledgements), written when it is new or its acknowledgements grew,
 *     deleted once it folded (or was dropped).
 *
 * So a save costs the events that changed plus, when the infimum moved, the settled state
 * (see docs/BENCHMARKS.md for what that costs against the fold's size).
 *
 * A data directory of the single-record format (storage layout 1) is converted by the LMDB
 * adapter into a legacy record; it is read as the cluster's group alone, and the first save
 * replaces it.
 *
 * @module
 */
import { Reader, Writer } from '../codec/buffer.js'
import { encodeDiff, encodeEventFold } from '../codec/eventfold.js'
import { BOTTOM, eventIdKey, type Diff, type OutstandingEvent } from '../eventfold/types.js'
import { EMPTY_DIGEST } from '../eventfold/digest.js'
import type { KeyValueOperation, KeyValueStore } from '../storage/key-value.js'
import { LEGACY_PEER_RECORD_NAMESPACE, readLegacyPeerRecord } from '../storage/legacy-peer-record.js'
import { readTupleKey, tupleKey } from '../storage/tuple-key.js'
import { StorageCorruptError } from '../storage/storage.js'
import type { SomeReplica } from './lifecycle.js'
import type { PeerIdentity, PeerStore, StoredGroup, StoredPeer } from './persistence.js'

const IDENTITY = 'identity'
const GROUPS = 'groups'
const IDENTITY_FORMAT = 1

/** What was last saved of one group: the infimum's key and each event's acknowledgements. */
interface SavedGroup {
  infimum: string
  events: Map<string, string>
}

/** A peer store over a key-value store; see the module comment. */
export function keyValuePeerStore (store: KeyValueStore): PeerStore {
  const saved = new Map<string, SavedGroup>()
  let identitySaved = false
  let legacy = false
  return {
    async load (): Promise<StoredPeer | undefined> {
      const identityBytes = await store.namespace(IDENTITY).get(tupleKey('peer'))
      if (identityBytes === undefined) {
        const record = await readLegacyPeerRecord(store)
        if (record === undefined) return undefined
        legacy = true
        return { cluster: record.cluster, privateKey: record.privateKey, groups: new Map([['', { kind: 'fold', bytes: record.fold }]]) }
      }
      const identity = decodeIdentity(identityBytes)
      identitySaved = true
      return { ...identity, groups: await loadGroups(store, saved) }
    },

    async save (identity: PeerIdentity, replicas: readonly SomeReplica[], dropped: readonly string[]): Promise<void> {
      const ops: KeyValueOperation[] = []
      if (!identitySaved) ops.push({ type: 'put', namespace: IDENTITY, key: tupleKey('peer'), value: encodeIdentity(identity) })
      if (legacy) ops.push({ type: 'delete-range', namespace: LEGACY_PEER_RECORD_NAMESPACE })
      const next = new Map<string, SavedGroup>()
      for (const id of dropped) {
        ops.push({ type: 'delete-range', namespace: GROUPS, range: { prefix: tupleKey(id) } })
        next.set(id, { infimum: '', events: new Map() })
      }
      for (const replica of replicas) {
        const fold = replica.fold
        if (fold === undefined) continue
        const id = replica.id
        const before = saved.get(id) ?? { infimum: '', events: new Map<string, string>() }
        const after: SavedGroup = { infimum: before.infimum, events: new Map() }
        const infimumKey = `${eventIdKey(fold.infimumId())}/${fold.infimumDigest().count}`
        if (infimumKey !== before.infimum) {
          const snapshot = fold.snapshot()
          ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 'i'), value: encodeEventFold({ ...snapshot, events: [] }, replica.definition.codecs) })
          after.infimum = infimumKey
        }
        for (const e of fold.outstandingEvents()) {
          const key = eventIdKey(e.id)
          const state = ackState(e)
          after.events.set(key, state)
          if (before.events.get(key) === state) continue
          const diff: Diff<unknown, unknown> = { origin: replica.definition.origin, infimumId: BOTTOM, infimumDigest: EMPTY_DIGEST, events: [e] }
          ops.push({ type: 'put', namespace: GROUPS, key: eventKey(id, e), value: encodeDiff(diff, replica.definition.codecs) })
        }
        for (const [key] of before.events) {
          if (after.events.has(key)) continue
          const colon = key.indexOf(':')
          ops.push({ type: 'delete', namespace: GROUPS, key: tupleKey(id, 'e', Number(key.slice(0, colon)), key.slice(colon + 1)) })
        }
        next.set(id, after)
      }
      if (ops.length === 0) return
      await store.batch(ops)
      identitySaved = true
      legacy = false
      for (const [id, group] of next) {
        if (dropped.includes(id) && !replicas.some(r => r.id === id)) saved.delete(id)
        else saved.set(id, group)
      }
    },

    async close (): Promise<void> {
      await store.close()
    }
  }
}

function eventKey (group: string, e: OutstandingEvent<unknown, unknown>): Uint8Array {
  return tupleKey(group, 'e', e.id.counter, e.id.participant)
}

/** What must be rewritten when it changes: acknowledgements, and a failure's acknowledgements. */
function ackState (e: OutstandingEvent<unknown, unknown>): string {
  const d = e.delta
  return d.kind === 'error' ? `${e.acks.join(',')}!${d.errorAcks.join(',')}` : e.acks.join(',')
}

async function loadGroups (store: KeyValueStore, saved: Map<string, SavedGroup>): Promise<Map<string, StoredGroup>> {
  const infima = new Map<string, Uint8Array>()
  const events = new Map<string, Array<{ key: string, bytes: Uint8Array }>>()
  for await (const { key, value } of store.namespace(GROUPS).range()) {
    const parts = readTupleKey(key)
    const group = parts[0]
    if (typeof group !== 'string') throw new StorageCorruptError('invalid', 'a group record without a group id')
    if (parts[1] === 'i') infima.set(group, value)
    else if (parts[1] === 'e' && typeof parts[2] === 'number' && typeof parts[3] === 'string') {
      let list = events.get(group)
      if (list === undefined) { list = []; events.set(group, list) }
      list.push({ key: `${parts[2]}:${parts[3]}`, bytes: value })
    } else throw new StorageCorruptError('invalid', `an unknown group record ${JSON.stringify(parts.slice(1).map(String))}`)
  }
  const out = new Map<string, StoredGroup>()
  for (const [group, infimum] of infima) {
    const list = events.get(group) ?? []
    out.set(group, { kind: 'records', infimum, events: list.map(e => e.bytes) })
    // What is stored is known by key; its contents are compared afresh at the first save
    // (which rewrites the group's records once).
    saved.set(group, { infimum: '', events: new Map(list.map(e => [e.key, ''])) })
  }
  for (const group of events.keys()) if (!infima.has(group)) throw new StorageCorruptError('invalid', `group ${JSON.stringify(group)} has event records but no infimum record`)
  return out
}

function encodeIdentity (identity: PeerIdentity): Uint8Array {
  const w = new Writer(128)
  w.writeUint8(IDENTITY_FORMAT)
  w.writeString(identity.cluster)
  w.writeBytes(identity.privateKey)
  return w.finish()
}

function decodeIdentity (bytes: Uint8Array): PeerIdentity {
  const r = new Reader(bytes)
  const format = r.readUint8()
  if (format !== IDENTITY_FORMAT) throw new StorageCorruptError('unknown-version', `identity record format ${format}`)
  const identity = { cluster: r.readString(4096), privateKey: r.readBytes(4096) }
  r.expectEnd()
  return identity
}
