/**
 * A {@link PeerStore} over a namespaced {@link KeyValueStore}: each save writes only what
 * changed since the last one, in one atomic, durable batch across every group.
 *
 * Layout (keys are `tupleKey`s):
 * - namespace `identity`, key `("peer")`: the cluster's name and the private key.
 * - namespace `groups`, per group id `g` (`""` is the cluster's own group):
 *   - `(g, "i")`: the infimum (an EventFold with no events and no logs: id, digest,
 *     participants, state), rewritten when it moved;
 *   - `(g, "l", participant, since)`: one log of one participant (codec kind 6: how many of its
 *     events are held, the chain hash, the signed head, the base), written when it grew or its
 *     base moved;
 *   - `(g, "e", counter, participant)`: one outstanding event (codec kind 5: its log and
 *     position, body, acknowledgements), written when it is new or its acknowledgements grew,
 *     deleted once it folded (or was dropped).
 *
 * So a save costs the events and logs that changed plus, when the infimum moved, the settled
 * state (see docs/BENCHMARKS.md for what that costs against the fold's size). Records of codec
 * formats 4 and 5 (no logs) are read by `GroupRegistry.fromStored`, which migrates a group that
 * had nothing outstanding and refuses one that had (`LegacyFoldError`).
 *
 * A data directory of the single-record format (storage layout 1) is converted by the LMDB
 * adapter into a legacy record; it is read as the cluster's group alone, and the first save
 * replaces it.
 *
 * @module
 */
import { Reader, Writer } from '../codec/buffer.js'
import { encodeEventFold, encodeStoredEvent, encodeStoredLog } from '../codec/eventfold.js'
import { eventIdKey, type CreatorLog, type OutstandingEvent } from '../eventfold/types.js'
import type { KeyValueOperation, KeyValueStore } from '../storage/key-value.js'
import { LEGACY_PEER_RECORD_NAMESPACE, readLegacyPeerRecord } from '../storage/legacy-peer-record.js'
import { readTupleKey, tupleKey } from '../storage/tuple-key.js'
import { StorageCorruptError } from '../storage/storage.js'
import type { SomeReplica } from './lifecycle.js'
import type { PeerIdentity, PeerStore, StoredGroup, StoredPeer } from './persistence.js'

const IDENTITY = 'identity'
const GROUPS = 'groups'
const IDENTITY_FORMAT = 1

/** What was last saved of one group: the infimum's key, each log's, and each event's acknowledgements. */
interface SavedGroup {
  infimum: string
  logs: Map<string, string>
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
        next.set(id, { infimum: '', logs: new Map(), events: new Map() })
      }
      for (const replica of replicas) {
        const fold = replica.fold
        if (fold === undefined) continue
        const id = replica.id
        const before = saved.get(id) ?? { infimum: '', logs: new Map<string, string>(), events: new Map<string, string>() }
        const after: SavedGroup = { infimum: before.infimum, logs: new Map(), events: new Map() }
        const snapshot = fold.snapshot()
        const infimumKey = `${eventIdKey(fold.infimumId())}/${fold.infimumDigest().count}`
        if (infimumKey !== before.infimum) {
          ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 'i'), value: encodeEventFold({ ...snapshot, logs: [], events: [] }, replica.definition.codecs) })
          after.infimum = infimumKey
        }
        for (const l of snapshot.logs) {
          const key = `${l.since}:${l.participant}`
          const state = logState(l)
          after.logs.set(key, state)
          if (before.logs.get(key) === state) continue
          ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 'l', l.participant, l.since), value: encodeStoredLog(l) })
        }
        for (const e of snapshot.events) {
          const key = eventIdKey(e.id)
          const state = ackState(e)
          after.events.set(key, state)
          if (before.events.get(key) === state) continue
          ops.push({ type: 'put', namespace: GROUPS, key: eventKey(id, e), value: encodeStoredEvent(e, replica.definition.codecs) })
        }
        for (const [key] of before.events) {
          if (after.events.has(key)) continue
          const colon = key.indexOf(':')
          ops.push({ type: 'delete', namespace: GROUPS, key: tupleKey(id, 'e', Number(key.slice(0, colon)), key.slice(colon + 1)) })
        }
        for (const [key] of before.logs) {
          if (after.logs.has(key)) continue
          const colon = key.indexOf(':')
          ops.push({ type: 'delete', namespace: GROUPS, key: tupleKey(id, 'l', key.slice(colon + 1), Number(key.slice(0, colon))) })
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

/** What must be rewritten when it changes: acknowledgements, a failure's, and stand-in positions. */
function ackState (e: OutstandingEvent<unknown, unknown>): string {
  const d = e.delta
  const standIn = (e.standIn ?? []).map(p => `${p.since}.${p.seq}`).join(',')
  return `${e.since}.${e.seq}|${e.acks.join(',')}|${d.kind === 'error' ? d.errorAcks.join(',') : ''}|${standIn}`
}

/** What must be rewritten when it changes: the head, its signature, and the base. */
function logState (l: CreatorLog): string {
  return `${l.seq}|${l.signature === undefined ? 0 : 1}|${l.base?.counter ?? 0}`
}

async function loadGroups (store: KeyValueStore, saved: Map<string, SavedGroup>): Promise<Map<string, StoredGroup>> {
  const infima = new Map<string, Uint8Array>()
  const events = new Map<string, Array<{ key: string, bytes: Uint8Array }>>()
  const logs = new Map<string, Array<{ key: string, bytes: Uint8Array }>>()
  const add = (map: Map<string, Array<{ key: string, bytes: Uint8Array }>>, group: string, key: string, bytes: Uint8Array): void => {
    let list = map.get(group)
    if (list === undefined) { list = []; map.set(group, list) }
    list.push({ key, bytes })
  }
  for await (const { key, value } of store.namespace(GROUPS).range()) {
    const parts = readTupleKey(key)
    const group = parts[0]
    if (typeof group !== 'string') throw new StorageCorruptError('invalid', 'a group record without a group id')
    if (parts[1] === 'i') infima.set(group, value)
    else if (parts[1] === 'e' && typeof parts[2] === 'number' && typeof parts[3] === 'string') add(events, group, `${parts[2]}:${parts[3]}`, value)
    else if (parts[1] === 'l' && typeof parts[2] === 'string' && typeof parts[3] === 'number') add(logs, group, `${parts[3]}:${parts[2]}`, value)
    else throw new StorageCorruptError('invalid', `an unknown group record ${JSON.stringify(parts.slice(1).map(String))}`)
  }
  const out = new Map<string, StoredGroup>()
  for (const [group, infimum] of infima) {
    const eventList = events.get(group) ?? []
    const logList = logs.get(group) ?? []
    out.set(group, { kind: 'records', infimum, events: eventList.map(e => e.bytes), logs: logList.map(l => l.bytes) })
    // What is stored is known by key; its contents are compared afresh at the first save
    // (which rewrites the group's records once).
    saved.set(group, { infimum: '', logs: new Map(logList.map(l => [l.key, ''])), events: new Map(eventList.map(e => [e.key, ''])) })
  }
  for (const group of [...events.keys(), ...logs.keys()]) if (!infima.has(group)) throw new StorageCorruptError('invalid', `group ${JSON.stringify(group)} has event or log records but no infimum record`)
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
