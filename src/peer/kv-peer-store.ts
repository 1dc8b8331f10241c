/**
 * A {@link PeerStore} over a namespaced {@link KeyValueStore}: each save writes only what
 * changed since the last one, in one atomic, durable batch across every group.
 *
 * Layout (keys are `tupleKey`s):
 * - namespace `identity`, key `("peer")`: the cluster's name and the private key.
 * - namespace `groups`, per group id `g` (`""` is the cluster's own group):
 *   - `(g, "i")`: a checkpoint of the infimum (an EventFold with no events and no logs: id,
 *     digest, participants, state);
 *   - `(g, "s", counter, participant)`: an event folded since that checkpoint (codec kind 5:
 *     its log and position, and the outcome it folded with);
 *   - `(g, "h")`: the infimum id and digest those events reach (codec kind 8), present while
 *     there are any;
 *   - `(g, "l", participant, since)`: one log of one participant (codec kind 6: how many of its
 *     events are held, the chain hash, the signed head, the base), written when it grew or its
 *     base moved;
 *   - `(g, "e", counter, participant)`: one outstanding event (codec kind 5: its log and
 *     position, body, acknowledgements), written when it is new or its acknowledgements grew,
 *     deleted once it folded (or was dropped).
 *
 * When the infimum moves, a save appends the events that moved it (`EventFold.takeSettled`)
 * instead of rewriting the settled state; once those records add up to the size of the last
 * checkpoint, it writes a new checkpoint and deletes them. So a save costs the events and logs
 * that changed, plus a checkpoint now and then whose cost is spread over as many bytes of
 * events: it does not grow with the fold (docs/BENCHMARKS.md). Recovery folds the settled
 * records onto the checkpoint as acknowledged by everyone (`EventFold.refoldSettled`) and
 * checks that they reach the saved id and digest; the logs are saved as they stand after the
 * events that folded, so refolding leaves them alone. A save that fails forces a checkpoint at
 * the next one, and so does a fold that took another's infimum whole (`takeSettled` says so)
 * or a replica that replaced its fold, so no folded event is ever missing from the records.
 *
 * Records of codec formats 4 and 5 (no logs) are read by `GroupRegistry.fromStored`, which
 * migrates a group that had nothing outstanding and refuses one that had (`LegacyFoldError`).
 * A data directory of format 6 written before settled records existed holds only checkpoints
 * and reads as one with none; a build from before them refuses a directory that holds some
 * (an unknown group record: `StorageCorruptError`) until a checkpoint has replaced them.
 *
 * A data directory of the single-record format (storage layout 1) is converted by the LMDB
 * adapter into a legacy record; it is read as the cluster's group alone, and the first save
 * replaces it.
 *
 * @module
 */
import { Reader, finishPooled, takeWriter } from '../codec/buffer.js'
import { encodeEventFold, encodeStoredEvent, encodeStoredLog, encodeStoredReach } from '../codec/eventfold.js'
import type { CreatorLog, OutstandingEvent } from '../eventfold/types.js'
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
 * What was last saved of one group: where the infimum stood, each log's and each event's
 * record (by `since:n` and `counter:n`, `n` the participant's {@link ParticipantNumbers}
 * number), the fold whose settled events are being appended (a replica that replaces its fold
 * needs a checkpoint), and the bytes of the last checkpoint and of the settled records since.
 */
interface SavedGroup {
  infimum?: SavedInfimum
  logs: Map<string, SavedRecord>
  events: Map<string, SavedRecord>
  fold?: object
  checkpointBytes: number
  settledBytes: number
}

/** The infimum's id and digest as last saved. */
interface SavedInfimum {
  readonly counter: number
  readonly participant: string
  readonly count: number
  readonly hash: number
}

/**
 * One stored log or event: the state it was written in, and its storage key, kept so that a
 * rewrite or the delete does not encode the key again (most are rewritten or deleted within
 * a save or two of being written).
 */
interface SavedRecord {
  readonly state: string
  readonly key: Uint8Array
}

/**
 * Small numbers for participants' names in the strings a save builds and compares: a key and a
 * state for every outstanding event and log of every group it writes, where a peer id is 52
 * characters (about 170 for an event acknowledged by three). One per store, for its lifetime.
 */
class ParticipantNumbers {
  private readonly numbers = new Map<string, number>()

  of (participant: string): number {
    let n = this.numbers.get(participant)
    if (n === undefined) { n = this.numbers.size; this.numbers.set(participant, n) }
    return n
  }

  /** The numbers of `participants`, each followed by a comma. */
  list (participants: readonly string[]): string {
    let out = ''
    for (const p of participants) out += `${this.of(p)},`
    return out
  }
}

function emptySaved (): SavedGroup {
  return { logs: new Map(), events: new Map(), checkpointBytes: 0, settledBytes: 0 }
}

/** A peer store over a key-value store; see the module comment. */
export function keyValuePeerStore (store: KeyValueStore): PeerStore {
  const saved = new Map<string, SavedGroup>()
  const numbers = new ParticipantNumbers()
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
      return { ...identity, groups: await loadGroups(store, saved, numbers) }
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
        // A group dropped in this batch has nothing stored any more, whatever was saved of it.
        const before = (dropped.includes(id) ? undefined : saved.get(id)) ?? emptySaved()
        const after: SavedGroup = { infimum: before.infimum, logs: new Map(), events: new Map(), fold, checkpointBytes: before.checkpointBytes, settledBytes: before.settledBytes }
        const codecs = replica.definition.codecs
        // Taken at every save, so the record holds exactly what folded since the last one.
        const settled = fold.takeSettled()
        // Kept here: heads not yet checked are checked after a restore, before they travel.
        const snapshot = fold.snapshot({ checkSignatures: false })
        const digest = fold.infimumDigest()
        const infimumId = fold.infimumId()
        const was = before.infimum
        if (was === undefined || was.counter !== infimumId.counter || was.participant !== infimumId.participant || was.count !== digest.count || was.hash !== digest.hash) {
          // No record of what moved it (none kept, another fold, or nothing folded: the
          // infimum moved some other way): only a checkpoint says where it stands.
          const records = settled === undefined || settled.length === 0 || before.fold !== fold
            ? undefined
            : settled.map(e => ({ e, bytes: encodeStoredEvent(e, codecs) }))
          const adding = records?.reduce((n, r) => n + r.bytes.length, 0) ?? 0
          if (records === undefined || before.settledBytes + adding >= before.checkpointBytes) {
            const checkpoint = encodeEventFold({ ...snapshot, logs: [], events: [] }, codecs)
            ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 'i'), value: checkpoint })
            ops.push({ type: 'delete-range', namespace: GROUPS, range: { prefix: tupleKey(id, 's') } })
            ops.push({ type: 'delete', namespace: GROUPS, key: tupleKey(id, 'h') })
            after.checkpointBytes = checkpoint.length
            after.settledBytes = 0
          } else {
            for (const r of records) ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 's', r.e.id.counter, r.e.id.participant), value: r.bytes })
            ops.push({ type: 'put', namespace: GROUPS, key: tupleKey(id, 'h'), value: encodeStoredReach({ id: infimumId, digest }) })
            after.settledBytes = before.settledBytes + adding
          }
          after.infimum = { counter: infimumId.counter, participant: infimumId.participant, count: digest.count, hash: digest.hash }
        }
        for (const l of snapshot.logs) {
          const name = `${l.since}:${numbers.of(l.participant)}`
          const state = logState(l)
          const stored = before.logs.get(name)
          if (stored?.state === state) { after.logs.set(name, stored); continue }
          const key = stored?.key ?? tupleKey(id, 'l', l.participant, l.since)
          after.logs.set(name, { state, key })
          ops.push({ type: 'put', namespace: GROUPS, key, value: encodeStoredLog(l) })
        }
        for (const e of snapshot.events) {
          const name = `${e.id.counter}:${numbers.of(e.id.participant)}`
          const state = ackState(e, numbers)
          const stored = before.events.get(name)
          if (stored?.state === state) { after.events.set(name, stored); continue }
          const key = stored?.key ?? tupleKey(id, 'e', e.id.counter, e.id.participant)
          after.events.set(name, { state, key })
          ops.push({ type: 'put', namespace: GROUPS, key, value: encodeStoredEvent(e, codecs) })
        }
        for (const [name, stored] of before.events) {
          if (!after.events.has(name)) ops.push({ type: 'delete', namespace: GROUPS, key: stored.key })
        }
        for (const [name, stored] of before.logs) {
          if (!after.logs.has(name)) ops.push({ type: 'delete', namespace: GROUPS, key: stored.key })
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

/** What must be rewritten when it changes: acknowledgements, a failure's, and stand-in positions. */
function ackState (e: OutstandingEvent<unknown, unknown>, numbers: ParticipantNumbers): string {
  const d = e.delta
  const standIn = e.standIn === undefined ? '' : e.standIn.map(p => `${p.since}.${p.seq}`).join(',')
  return `${e.since}.${e.seq}|${numbers.list(e.acks)}|${d.kind === 'error' ? numbers.list(d.errorAcks) : ''}|${standIn}`
}

/** What must be rewritten when it changes: the head, its signature, and the base. */
function logState (l: CreatorLog): string {
  return `${l.seq}|${l.signature === undefined ? 0 : 1}|${l.base?.counter ?? 0}`
}

async function loadGroups (store: KeyValueStore, saved: Map<string, SavedGroup>, numbers: ParticipantNumbers): Promise<Map<string, StoredGroup>> {
  const infima = new Map<string, Uint8Array>()
  const reached = new Map<string, Uint8Array>()
  type Found = Array<{ name: string, key: Uint8Array, bytes: Uint8Array }>
  const events = new Map<string, Found>()
  const logs = new Map<string, Found>()
  // Settled records are only read back: no name or key is kept for them.
  const settled = new Map<string, Uint8Array[]>()
  const add = (map: Map<string, Found>, group: string, name: string, key: Uint8Array, bytes: Uint8Array): void => {
    let list = map.get(group)
    if (list === undefined) { list = []; map.set(group, list) }
    // A copy: the key is kept for the record's rewrite or delete, and a range may reuse buffers.
    list.push({ name, key: key.slice(), bytes })
  }
  for await (const { key, value } of store.namespace(GROUPS).range()) {
    const parts = readTupleKey(key)
    const group = parts[0]
    if (typeof group !== 'string') throw new StorageCorruptError('invalid', 'a group record without a group id')
    if (parts[1] === 'i') infima.set(group, value)
    else if (parts[1] === 'h') reached.set(group, value)
    else if (parts[1] === 's' && typeof parts[2] === 'number' && typeof parts[3] === 'string') {
      const list = settled.get(group)
      if (list === undefined) settled.set(group, [value])
      else list.push(value)
    } else if (parts[1] === 'e' && typeof parts[2] === 'number' && typeof parts[3] === 'string') add(events, group, `${parts[2]}:${numbers.of(parts[3])}`, key, value)
    else if (parts[1] === 'l' && typeof parts[2] === 'string' && typeof parts[3] === 'number') add(logs, group, `${parts[3]}:${numbers.of(parts[2])}`, key, value)
    else throw new StorageCorruptError('invalid', `an unknown group record ${JSON.stringify(parts.slice(1).map(String))}`)
  }
  const out = new Map<string, StoredGroup>()
  for (const [group, infimum] of infima) {
    const eventList = events.get(group) ?? []
    const logList = logs.get(group) ?? []
    const settledList = settled.get(group) ?? []
    const reachedBytes = reached.get(group)
    if ((settledList.length > 0) !== (reachedBytes !== undefined)) throw new StorageCorruptError('invalid', `group ${JSON.stringify(group)} has settled event records without the infimum they reach, or the reverse`)
    out.set(group, {
      kind: 'records',
      infimum,
      events: eventList.map(e => e.bytes),
      logs: logList.map(l => l.bytes),
      ...(reachedBytes !== undefined ? { settled: settledList, reached: reachedBytes } : {})
    })
    // What is stored is known by key; its contents are compared afresh at the first save
    // (which rewrites the group's records once, and checkpoints).
    saved.set(group, { ...emptySaved(), logs: new Map(logList.map(l => [l.name, { state: '', key: l.key }])), events: new Map(eventList.map(e => [e.name, { state: '', key: e.key }])) })
  }
  for (const group of [...events.keys(), ...logs.keys(), ...settled.keys(), ...reached.keys()]) if (!infima.has(group)) throw new StorageCorruptError('invalid', `group ${JSON.stringify(group)} has event, log or settled records but no infimum record`)
  return out
}

function encodeIdentity (identity: PeerIdentity): Uint8Array {
  const w = takeWriter()
  w.writeUint8(IDENTITY_FORMAT)
  w.writeString(identity.cluster)
  w.writeBytes(identity.privateKey)
  return finishPooled(w)
}

function decodeIdentity (bytes: Uint8Array): PeerIdentity {
  const r = new Reader(bytes)
  const format = r.readUint8()
  if (format !== IDENTITY_FORMAT) throw new StorageCorruptError('unknown-version', `identity record format ${format}`)
  const identity = { cluster: r.readString(4096), privateKey: r.readBytes(4096) }
  r.expectEnd()
  return identity
}
