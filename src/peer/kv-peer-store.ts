/**
 * A {@link PeerStore} over a namespaced {@link KeyValueStore}: each save writes only what
 * changed since the last one, in one atomic, durable batch across every group.
 *
 * Layout (keys are `tupleKey`s):
 * - namespace `identity`, key `("peer")`: the cluster's name and the private key.
 * - namespace `groups`, per group id `g` (`""` is the cluster's own group):
 *   - `(g, "i")`: a checkpoint of the infimum (an EventFold with no events: id, digest,
 *     participants, state);
 *   - `(g, "s", counter, participant)`: an event folded since that checkpoint, with the
 *     outcome it folded with (a Diff holding it alone);
 *   - `(g, "h")`: the infimum id and digest those events reach (a Diff with no events), present
 *     while there are any;
 *   - `(g, "e", counter, participant)`: one outstanding event (a Diff holding it alone: body,
 *     signature, acknowledgements), written when it is new or its acknowledgements grew,
 *     deleted once it folded (or was dropped).
 *
 * When the infimum moves, a save appends the events that moved it (`EventFold.takeSettled`)
 * instead of rewriting the settled state; once those records add up to the size of the last
 * checkpoint, it writes a new checkpoint and deletes them. So a save costs the events that
 * changed, plus a checkpoint now and then whose cost is spread over as many bytes of events:
 * it does not grow with the fold. Recovery folds the settled records onto the checkpoint as
 * acknowledged by everyone (`EventFold.refoldSettled`) and checks that they reach the saved
 * id and digest. A save that fails forces a checkpoint at the next one, and so does a fold
 * that took another's infimum whole (`takeSettled` says so), so no folded event is ever
 * missing from the records.
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

/**
 * What was last saved of one group: the infimum's key, each event's acknowledgements, the fold
 * whose settled events are being appended (a replica that replaces its fold needs a
 * checkpoint), and the bytes of the last checkpoint and of the settled records since.
 */
interface SavedGroup {
  infimum: string
  events: Map<string, string>
  fold?: object
  checkpointBytes: number
  settledBytes: number
}

function emptySaved (): SavedGroup {
  return { infimum: '', events: new Map(), checkpointBytes: 0, settledBytes: 0 }
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
        next.set(id, emptySaved())
      }
      for (const replica of replicas) {
        const fold = replica.fold
        if (fold === undefined) continue
        const id = replica.id
        const before = saved.get(id) ?? emptySaved()
        const after: SavedGroup = { ...before, events: new Map(), fold }
        const codecs = replica.definition.codecs
        const origin = replica.definition.origin
        // Taken at every save, so the record holds exactly what folded since the last one.
        const settled = fold.takeSettled()
        const infimumKey = `${eventIdKey(fold.infimumId())}/${fold.infimumDigest().count}`
        if (infimumKey !== before.infimum) {
          const records = settled === undefined || before.fold !== fold
            ? undefined
            : settled.map(e => ({ e, bytes: encodeDiff({ origin, infimumId: BOTTOM, infimumDigest: EMPTY_DIGEST, events: [e] }, codecs) }))
          const adding = records?.reduce((n, r) => n + r.bytes.length, 0) ?? 0
          if (records === undefined || before.settledBytes + adding >= before.checkpointBytes) {
            const checkpoint = encodeEventFold({ ...fold.snapshot(), events: [] }, codecs)
            ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 'i'), value: checkpoint })
            ops.push({ type: 'delete-range', namespace: GROUPS, range: { prefix: tupleKey(id, 's') } })
            ops.push({ type: 'delete', namespace: GROUPS, key: tupleKey(id, 'h') })
            after.checkpointBytes = checkpoint.length
            after.settledBytes = 0
          } else {
            for (const r of records) ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 's', r.e.id.counter, r.e.id.participant), value: r.bytes })
            ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 'h'), value: encodeDiff({ origin, infimumId: fold.infimumId(), infimumDigest: fold.infimumDigest(), events: [] }, codecs) })
            after.settledBytes = before.settledBytes + adding
          }
          after.infimum = infimumKey
        }
        for (const e of fold.outstandingEvents()) {
          const key = eventIdKey(e.id)
          const state = ackState(e)
          after.events.set(key, state)
          if (before.events.get(key) === state) continue
          const diff: Diff<unknown, unknown> = { origin, infimumId: BOTTOM, infimumDigest: EMPTY_DIGEST, events: [e] }
          ops.push({ type: 'put', namespace: GROUPS, key: eventKey(id, e), value: encodeDiff(diff, codecs) })
        }
        for (const [key] of before.events) {
          if (after.events.has(key)) continue
          const colon = key.indexOf(':')
          ops.push({ type: 'delete', namespace: GROUPS, key: tupleKey(id, 'e', Number(key.slice(0, colon)), key.slice(colon + 1)) })
        }
        next.set(id, after)
      }
      if (ops.length === 0) return
      try {
        await store.batch(ops)
      } catch (err) {
        // What this save took of the folds' settled records is not stored: checkpoint next time.
        for (const group of saved.values()) group.fold = undefined
        throw err
      }
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
  const reached = new Map<string, Uint8Array>()
  const events = new Map<string, Array<{ key: string, bytes: Uint8Array }>>()
  const settled = new Map<string, Uint8Array[]>()
  for await (const { key, value } of store.namespace(GROUPS).range()) {
    const parts = readTupleKey(key)
    const group = parts[0]
    if (typeof group !== 'string') throw new StorageCorruptError('invalid', 'a group record without a group id')
    if (parts[1] === 'i') infima.set(group, value)
    else if (parts[1] === 'h') reached.set(group, value)
    else if (parts[1] === 's' && typeof parts[2] === 'number' && typeof parts[3] === 'string') {
      let list = settled.get(group)
      if (list === undefined) { list = []; settled.set(group, list) }
      list.push(value)
    } else if (parts[1] === 'e' && typeof parts[2] === 'number' && typeof parts[3] === 'string') {
      let list = events.get(group)
      if (list === undefined) { list = []; events.set(group, list) }
      list.push({ key: `${parts[2]}:${parts[3]}`, bytes: value })
    } else throw new StorageCorruptError('invalid', `an unknown group record ${JSON.stringify(parts.slice(1).map(String))}`)
  }
  const out = new Map<string, StoredGroup>()
  for (const [group, infimum] of infima) {
    const list = events.get(group) ?? []
    const settledList = settled.get(group) ?? []
    const reachedBytes = reached.get(group)
    if ((settledList.length > 0) !== (reachedBytes !== undefined)) throw new StorageCorruptError('invalid', `group ${JSON.stringify(group)} has settled event records without the infimum they reach, or the reverse`)
    out.set(group, { kind: 'records', infimum, events: list.map(e => e.bytes), ...(reachedBytes !== undefined ? { settled: settledList, reached: reachedBytes } : {}) })
    // What is stored is known by key; its contents are compared afresh at the first save
    // (which rewrites the group's records once, and checkpoints).
    saved.set(group, { ...emptySaved(), events: new Map(list.map(e => [e.key, ''])) })
  }
  for (const group of [...events.keys(), ...settled.keys(), ...reached.keys()]) if (!infima.has(group)) throw new StorageCorruptError('invalid', `group ${JSON.stringify(group)} has event records but no infimum record`)
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
