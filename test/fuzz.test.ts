/**
 * Fuzzing a running peer's inputs (protocol 6). Raw libp2p nodes (`createTransportNode`, no
 * Legion layer) connected to a Legion peer drive every protocol handler (fold, sync, push,
 * join, heartbeat, outputs, call, cast) and the fold topic with random bytes and with
 * mutations (bit flips, byte edits, insertions, deletions, truncations, splices) of valid
 * messages, and of valid messages whose inner Diffs and folds were mutated before they were
 * wrapped. The peer hosts several groups: the cluster's own (`""`), a cluster-wide one, a
 * managed one the participant is not in, and a managed one the peer still waits for; frames
 * also name groups nobody defined. Part of the run comes from a stranger, the rest from a
 * node holding the private key of a real participant (started, joined, stopped without
 * leaving), so its frames pass the participant fence and reach the decoders.
 *
 * How the checks are designed: the test decodes every frame itself, before sending it, with
 * the decoders, codecs and limits the peer uses, against a mirror of what the peer holds (each
 * group's fold as last fetched, and every participant the peer may know there, so that pushed
 * Diffs resolve their fingerprints as the peer does). It predicts what the peer does with the
 * frame, or with each group's part of it (the "verdicts", see `Verdict`): rejected and counted
 * (undecodable, other origin, not a participant, unknown group), ignored without a counter,
 * accepted (valid, even though mutated), or handed to the application (call and cast bodies).
 * Then:
 * - strict phases (the stranger; the participant sending only frames predicted to be
 *   rejected or ignored, plus opaque ones): the state of every group (`readState()`) is
 *   identical before and after;
 * - in every phase, the drop counters grow by at least the number of parts predicted to be
 *   rejected-and-counted, every frame reached a handler (`messagesIn`), every cast on the
 *   default channel reached the application once, and every answer is the one predicted
 *   (which refusal, which group merged, which sync result, the call's reply);
 * - the open phase (the participant sends valid-but-mutated frames too): the participant's
 *   own events are signed with its key, so a mutation that keeps a frame valid may change
 *   the state in the participant's own name (a mutation of a signed body is dropped as
 *   forged, counted in `droppedForged`); what must hold is that every fold keeps its origin,
 *   every answer is the predicted one, no handler throws, and once the fake participant is
 *   ejected the peer still settles `applyConsistent`;
 * - an oversized frame (over `maxMessageBytes`) is refused and counted, on a stream and on
 *   the topic.
 * Frames the peer would accept but that would remove it are never sent (see `removesPeer`);
 * a frame that changes the participant's own membership is sent last in its batch, alone, so
 * the frames around it are judged against the membership they meet.
 *
 * Budget: `LEGION_FUZZ_FRAMES` frames (default 5,000; `npm run test:fuzz` runs 100,000).
 * The seed is printed; replay a run with `LEGION_SEED=<seed>`.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHash } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { enable as enableLogs } from '@libp2p/logger'
import { startLegion } from '../src/peer/start.js'
import type { Legion, LegionCounters } from '../src/peer/options.js'
import { defineService } from '../src/peer/services.js'
import type { Group } from '../src/peer/group/groups.js'
import { groupOrigin } from '../src/peer/group/definition.js'
import { ParticipantFingerprints } from '../src/peer/group/participant-names.js'
import { eventSignatures, peerSigner } from '../src/peer/event-signatures.js'
import { PeerMessageKind, type Refusal, type RefusalCode } from '../src/peer/protocol/message.js'
import { decodeFoldBatch, encodeFoldBatch, type GroupPayload } from '../src/peer/protocol/fold-batch.js'
import { decodeFoldPush, decodePushAnswer, encodeFoldPush } from '../src/peer/protocol/push.js'
import { decodeSyncAnswer, decodeSyncRequest, encodeSyncRequest, type SyncWant } from '../src/peer/protocol/sync.js'
import { decodeJoinAnswer, decodeJoinRequest, encodeJoinRequest } from '../src/peer/protocol/join.js'
import { decodeHeartbeat, decodeHeartbeatAnswer, encodeHeartbeat } from '../src/peer/protocol/heartbeat.js'
import { decodeOutputs, encodeOutputs } from '../src/peer/protocol/outputs.js'
import { KIND_MESSAGE, KIND_REPLY, decodeFrame, decodeReply, encodeFrame } from '../src/peer/messaging.js'
import { type Delta, type Diff, type EventFoldSnapshot, type EventSignatures, type EventSpec, type Participant } from '../src/eventfold/types.js'
import { EventFold } from '../src/eventfold/event-fold.js'
import { createTransportNode, type TransportNode } from '../src/transport/index.js'
import {
  DEFAULT_DECODE_LIMITS, DecodeError, MessageKind, decodeDiff, decodeEventFold, encodeDiff, encodeEventFold, encodeWith, jsonCodec,
  type Codec, type DecodeLimits, type FoldCodecs
} from '../src/codec/index.js'
import { peekKind } from '../src/codec/eventfold.js'
import { protocolIds } from './support/wire.js'
import { stopAll } from './support/cluster.js'

const FRAMES = Number(process.env.LEGION_FUZZ_FRAMES ?? 5_000)
const SEED = process.env.LEGION_SEED !== undefined ? Number(process.env.LEGION_SEED) >>> 0 : crypto.getRandomValues(new Uint32Array(1))[0]!
const CLUSTER = 'fuzz'
const MAX_MESSAGE_BYTES = 64 * 1024
const LIMITS: DecodeLimits = { ...DEFAULT_DECODE_LIMITS, maxBytes: MAX_MESSAGE_BYTES }
const BATCH = 128

// -------------------------------------------------------------------------------------------
// The application: a log of event names, with codecs that validate what they decode (an
// application whose codecs accept any JSON would hand its `apply` states of the wrong shape).

interface Log { readonly log: readonly string[] }
const spec: EventSpec<string, Log, number> = {
  init: () => ({ log: [] }),
  apply: (e, s) => e === 'fail' ? { ok: false, output: -1 } : { ok: true, output: s.log.length, state: { log: [...s.log, e] } }
}
function checked<T> (guard: (v: unknown) => v is T, what: string): Codec<T> {
  return {
    encode: (v, w) => { jsonCodec.encode(v as never, w) },
    decode: (r, limits) => {
      const v = jsonCodec.decode(r, limits)
      if (!guard(v)) throw new DecodeError('invalid', `not ${what}`)
      return v
    }
  }
}
const isString = (v: unknown): v is string => typeof v === 'string'
const codecs: FoldCodecs<string, Log, number> = {
  event: checked(isString, 'an event name'),
  state: checked((v): v is Log => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 &&
    Array.isArray((v as { log?: unknown }).log) && ((v as { log: unknown[] }).log).every(isString), 'a log'),
  output: checked((v): v is number => typeof v === 'number' && Number.isSafeInteger(v), 'a position')
}
type Snapshot = EventFoldSnapshot<string, Log, number>
type LogDiff = Diff<string, number>

// -------------------------------------------------------------------------------------------
// The groups the peer hosts, besides the cluster's own (""): one every member takes part in,
// one only the peer takes part in (the participant is outside it), one the peer waits to be
// given (it holds no state of it); and one nobody defines.

const LOG = 'fuzz/log'
const PRIVATE = 'fuzz/private'
const WAITING = 'fuzz/waiting'
const UNKNOWN = 'fuzz/unknown'
const DEFINED: readonly string[] = ['', LOG, PRIVATE, WAITING]
const originOf = (group: string): string => groupOrigin(CLUSTER, group)

type LogGroup = Group<string, Log, number>
const fuzzGroups = (founder: boolean) => defineService({
  name: 'fuzz',
  needs: ['groups'],
  create: ({ groups }) => {
    const handles: Record<string, LogGroup> = {
      [LOG]: groups.clusterWide('log', { spec, codecs }),
      [PRIVATE]: groups.managed('private', { spec, codecs }),
      [WAITING]: groups.managed('waiting', { spec, codecs })
    }
    return { handles, start: () => { if (founder) groups.found('private') } }
  }
})
type FuzzPeer = Legion<string, Log, number, { fuzz: ReturnType<typeof fuzzGroups> }>

// -------------------------------------------------------------------------------------------
// Seeded randomness (sfc32).

class Random {
  #a: number; #b: number; #c: number; #d: number
  constructor (seed: number) {
    this.#a = 0x9e3779b9; this.#b = 0x243f6a88; this.#c = 0xb7e15162; this.#d = seed >>> 0
    for (let i = 0; i < 16; i++) this.u32()
  }

  u32 (): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0
    this.#d = (this.#d + 1) | 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) | 0
    this.#c = (this.#c << 21) | (this.#c >>> 11)
    this.#c = (this.#c + t) | 0
    return t >>> 0
  }

  int (n: number): number { return this.u32() % n }
  chance (p: number): boolean { return this.u32() / 2 ** 32 < p }
  pick<T> (items: readonly T[]): T { return items[this.int(items.length)]! }
  bytes (n: number): Uint8Array { return Uint8Array.from({ length: n }, () => this.int(256)) }
}

const INTERESTING = [0x00, 0x01, 0x02, 0x04, 0x7f, 0x80, 0xff, MessageKind.eventFold, MessageKind.diff, ...Object.values(PeerMessageKind), KIND_MESSAGE, KIND_REPLY]
const HUGE_VARUINT = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f)

/** One to four random edits of `seed`; `other` is a second seed for splices. */
function mutate (rng: Random, seed: Uint8Array, other: Uint8Array): Uint8Array {
  // a copy: `slice` on a Node Buffer (what the transport hands out) would be a view
  let b: Uint8Array = new Uint8Array(seed)
  // mostly one or two edits: more of the results still decode and reach the merge
  const edits = 1 + Math.floor((rng.u32() / 2 ** 32) ** 2 * 4)
  for (let i = 0; i < edits; i++) {
    const at = b.length === 0 ? 0 : rng.int(b.length)
    switch (rng.int(9)) {
      case 0: if (b.length > 0) b[at] = b[at]! ^ (1 << rng.int(8)); break
      case 1: if (b.length > 0) b[at] = rng.int(256); break
      case 2: if (b.length > 0) b[at] = rng.pick(INTERESTING); break
      case 3: b = concat(b.subarray(0, at), rng.bytes(1 + rng.int(8)), b.subarray(at)); break
      case 4: b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(8)))); break
      case 5: b = b.subarray(0, rng.int(b.length + 1)); break
      case 6: { const n = 1 + rng.int(16); b = concat(b.subarray(0, at), b.subarray(at, at + n), b.subarray(at)); break }
      case 7: b = concat(b.subarray(0, at), HUGE_VARUINT.subarray(rng.int(8)), b.subarray(at + 1)); break
      default: b = concat(b.subarray(0, at), other.subarray(rng.int(other.length + 1))); break
    }
  }
  return b
}

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')

// -------------------------------------------------------------------------------------------
// What the peer does with a frame, predicted with its own decoders.

type Protocol = 'topic' | 'fold' | 'sync' | 'push' | 'join' | 'heartbeat' | 'outputs' | 'call' | 'cast'
const REQUESTS: ReadonlySet<Protocol> = new Set(['sync', 'push', 'join', 'heartbeat', 'call'])

/**
 * What the peer does with a frame, or with one group's part of a batch or push:
 * - `undecodable`, `other-cluster`, `not-participant`, `unknown-group`: rejected, and counted
 *   in a `dropped*` counter;
 * - `ignored`: well-formed, and left alone without a counter (a group the peer waits for,
 *   an empty batch, a call or cast on a channel nobody handles);
 * - `valid`: decodes and belongs where it says: the peer acts on it;
 * - `opaque`: a call or cast on the default channel: its body goes to the application.
 */
type Verdict = 'undecodable' | 'other-cluster' | 'not-participant' | 'unknown-group' | 'ignored' | 'valid' | 'opaque'
const COUNTED: ReadonlySet<Verdict> = new Set(['undecodable', 'other-cluster', 'not-participant', 'unknown-group'])

interface Judgement {
  /** One verdict for the frame, or one per group of a batch or push. */
  readonly verdicts: readonly Verdict[]
  /** Valid, and would make the peer leave a group or rejoin the cluster (never sent, see `removesPeer`). */
  readonly removesPeer: boolean
  /** Valid, and changes the participant's own membership somewhere (sent last in its batch, alone). */
  readonly changesMembership: boolean
  /** Checks the peer's answer to a request; throws an AssertionError when it is not the predicted one. */
  readonly answer?: (bytes: Uint8Array) => void
  /** Records what sending the frame teaches the peer (participant names), once it is sent. */
  readonly commit: () => void
}

/** What the test knows of one group on the peer, as of the last fetch. */
type GroupView =
  | { readonly kind: 'undefined' }
  | { readonly kind: 'waiting' }
  | { readonly kind: 'outside' }
  | { readonly kind: 'inside', readonly snapshot: Snapshot, readonly bytes: Uint8Array }

/** Decodes with the peer's decoders: `undefined` when they refuse, and a failure if they throw anything but DecodeError. */
function attempt<T> (decode: () => T): T | undefined {
  try {
    return decode()
  } catch (err) {
    assert.equal((err as Error).name, 'DecodeError', `decoders throw only DecodeError, not ${String(err)}`)
    return undefined
  }
}

/** Every participant a Diff or fold names (its participant table). */
function namesIn (m: LogDiff | Snapshot): Participant[] {
  const out: Participant[] = []
  if ('infimum' in m) {
    out.push(m.infimum.id.participant, ...m.infimum.participants, ...m.logs.map(l => l.participant))
    for (const e of m.events) {
      out.push(e.id.participant, ...e.acks)
      if (e.delta.kind === 'error') out.push(...e.delta.errorAcks)
    }
  } else {
    for (const a of m.acknowledgements) {
      out.push(a.participant, a.infimumId.participant, ...a.holds.map(h => h.participant), ...a.failures.map(f => f.id.participant), ...a.departing.map(d => d.unjoin.participant))
    }
    out.push(...m.runs.map(r => r.creator))
  }
  for (const d of bodiesOf(m)) if (d.kind === 'join' || d.kind === 'unjoin') out.push(d.participant)
  return out.filter(p => p !== '')
}

/** The bodies a Diff's runs or a fold's outstanding events carry. */
function bodiesOf (m: LogDiff | Snapshot): Array<Delta<string, number>> {
  return 'infimum' in m ? m.events.map(e => e.delta) : m.runs.flatMap(r => r.events.map(e => e.delta))
}

function describe (m: unknown): string {
  return JSON.stringify(m, (_k, v: unknown) => v instanceof Uint8Array ? `<${v.length} bytes>` : v)
}

function expectRefusal (m: unknown, code: RefusalCode, what: string): void {
  const r = m as Partial<Refusal>
  assert.ok(r.kind === 'refusal' && r.code === code, `${what} is refused with ${code}, not answered ${describe(m)}`)
}

/** The event ids a message carries (`creator#counter`), each with its log (`creator/since`). */
function idsOf (m: LogDiff | Snapshot): Array<[string, string]> {
  return 'infimum' in m
    ? m.events.map(e => [`${e.id.participant}#${e.id.counter}`, `${e.id.participant}/${e.since}`])
    : m.runs.flatMap(r => r.events.map((e): [string, string] => [`${r.creator}#${e.counter}`, `${r.creator}/${r.since}`]))
}

/** A push's expected answer for one group. */
interface PushExpectation {
  readonly merged: boolean
  /** Why not, when not merged. */
  readonly code?: RefusalCode
  /** A whole fold may be refused as rate-limited instead. */
  readonly rateLimitable: boolean
  /** Merged, or refused with this code. */
  readonly orRefused?: RefusalCode
  /**
   * The group was waiting, and an earlier part of the same push gave it a fold to adopt: the
   * peer may judge this part before or after that adoption has taken effect (it saves first),
   * as waiting or as taking part, so any answer of either is right (LEGION_SEED=1447262979).
   */
  readonly afterAdoption?: true
}

/**
 * The peer as the test sees it: each group's fold at the last fetch, and, per group, every
 * participant the peer may know there. The peer resolves the fingerprints of a pushed Diff
 * against every participant its fold has seen, which only grows; the mirror keeps a superset
 * (every name of every fetched fold and of every valid part it sent), so a frame it predicts
 * undecodable for an unknown fingerprint is undecodable on the peer too.
 */
class Mirror {
  private readonly views = new Map<string, GroupView>()
  private known = new Map<string, Participant[]>()
  private readonly prints = new Map<string, ParticipantFingerprints>()
  private readonly sentInBatch = new Map<string, Array<LogDiff | Snapshot>>()
  /**
   * Groups where the peer may hold events of the participant's own log whose signature does
   * not check: taken first-hand unchecked, then left out of the folds the peer sends (so of
   * the view), and the events the participant builds afresh from the view can collide with
   * them on the peer.
   */
  private readonly unchecked = new Set<string>()
  /** Per group, every event id of a valid message sent, with the log that carried it first. */
  private readonly sentIds = new Map<string, Map<string, string>>()

  constructor (readonly self: Participant, readonly participant: Participant, private readonly key: PrivateKey) {
    for (const g of DEFINED) {
      this.known.set(g, [self, participant])
      this.prints.set(g, new ParticipantFingerprints())
    }
  }

  view (group: string): GroupView {
    return this.views.get(group) ?? { kind: 'undefined' }
  }

  signatures (group: string): EventSignatures<string, number> {
    return eventSignatures(originOf(group), this.participant, peerSigner(this.key), codecs)
  }

  /** Takes the groups as fetched. */
  update (views: ReadonlyMap<string, GroupView>): void {
    for (const [group, view] of views) {
      this.views.set(group, view)
      if (view.kind === 'inside') this.learn(this.known, group, namesIn(view.snapshot))
    }
  }

  private learn (known: Map<string, Participant[]>, group: string, names: readonly Participant[]): void {
    const list = known.get(group)
    if (list === undefined) return
    for (const n of names) if (!list.includes(n)) list.push(n)
  }

  /**
   * Whether the peer would leave a group or rejoin the cluster on `message`: an UnJoin of it,
   * an infimum without it, or a fold settled past it on a history it does not share. The
   * participant is the peer's only other one, so its word alone makes the peer rejoin
   * (through the participant, which as a raw node never admits it). The frames of a batch go
   * out at once on several streams, so the peer may have merged any of the batch's earlier
   * valid frames before this one: a fold whose history lacks an event that an earlier diff
   * of the batch carried diverges only if that diff arrived first. Judged against the fold
   * at the last fetch alone, with each earlier frame of the batch, and with all of them.
   */
  private removesPeer (group: string, message: LogDiff | Snapshot, inFrame: ReadonlyArray<{ readonly group: string, readonly message: LogDiff | Snapshot }> = []): boolean {
    if (bodiesOf(message).some(d => d.kind === 'unjoin' && d.participant === this.self)) return true
    // a group the peer waits for takes a fold with the peer's Join still outstanding
    const view = this.view(group)
    if (!('infimum' in message) || view.kind !== 'inside') return false
    if (!message.infimum.participants.includes(this.self)) return true
    const earlier = [...this.sentInBatch.get(group) ?? [], ...inFrame.filter(m => m.group === group).map(m => m.message)]
    const cases = [[], ...earlier.map(m => [m]), ...(earlier.length > 1 ? [earlier] : [])]
    return cases.some(before => {
      const mirror = EventFold.fromSnapshot(view.snapshot, this.self, spec, { signatures: this.signatures(group) })
      for (const m of before) {
        if ('infimum' in m) mirror.mergeFull(m, { from: this.participant })
        else mirror.mergeDiff(m, { from: this.participant })
      }
      const merged = mirror.mergeFull(message, { from: this.participant })
      return merged.ok && merged.diverged
    })
  }

  /** Starts a batch: no valid frame of it sent yet. */
  beginBatch (): void {
    this.sentInBatch.clear()
  }

  /** Records the valid messages of a frame being sent, for `removesPeer`'s later judgements in the batch. */
  private sent (messages: ReadonlyArray<{ readonly group: string, readonly message: LogDiff | Snapshot }>): void {
    for (const { group, message } of messages) {
      const list = this.sentInBatch.get(group) ?? []
      list.push(message)
      this.sentInBatch.set(group, list)
      const ids = this.sentIds.get(group) ?? new Map<string, string>()
      for (const [id, log] of idsOf(message)) if (!ids.has(id)) ids.set(id, log)
      this.sentIds.set(group, ids)
    }
  }

  /**
   * Whether the mirror drops `message` as forged, merging it as the peer does: first-hand once
   * its own Join has folded, trusting before. The peer checks the signature of every body it
   * does not hold above its infimum, but for the participant's own log once it merges
   * first-hand; it holds every event the mirror holds, its infimum is no lower, and it has
   * joined if the mirror has, so it checks no more bodies: what the peer finds forged, the
   * mirror does too.
   */
  private forged (group: string, message: LogDiff | Snapshot): boolean {
    const view = this.view(group)
    if (view.kind !== 'inside') return false
    const mirror = EventFold.fromSnapshot(view.snapshot, this.self, spec, { signatures: this.signatures(group) })
    const firstHand = mirror.hasJoined()
    const merge = (m: EventFold<string, Log, number>, options: { from?: Participant }): boolean => {
      const merged = 'infimum' in message ? m.mergeFull(message, options) : m.mergeDiff(message, options)
      return !merged.ok && merged.error.name === 'ForgedEventError'
    }
    if (merge(mirror, firstHand ? { from: this.participant } : {})) return true
    if (firstHand && merge(EventFold.fromSnapshot(view.snapshot, this.self, spec, { signatures: this.signatures(group) }), {})) this.unchecked.add(group)
    return this.unchecked.has(group)
  }

  /** Whether a fold can be taken whole (as a group the peer waits for takes it): its events sit in their logs, which chain to their heads. */
  private holdable (group: string, snapshot: Snapshot): boolean {
    try {
      EventFold.fromSnapshot(snapshot, this.self, spec, { signatures: this.signatures(group) })
      return true
    } catch {
      return false
    }
  }

  /**
   * Whether an earlier valid frame of the batch carried events of one of the logs `message`
   * carries, or an earlier valid message events with its ids in another log: the peer may have
   * taken them first, and a log's positions the participant filled twice (the test builds its
   * events afresh from the last fetch) then do not chain to the signed head, or repeat held
   * ids: the peer refuses the second as forged, as it should an equivocating creator.
   */
  private mayConflict (group: string, message: LogDiff | Snapshot, inFrame: ReadonlyArray<{ readonly group: string, readonly message: LogDiff | Snapshot }>): boolean {
    const logsOf = (m: LogDiff | Snapshot): string[] => 'infimum' in m ? m.logs.map(l => `${l.participant}/${l.since}`) : m.runs.map(r => `${r.creator}/${r.since}`)
    // Ids too: building afresh from a fetch that missed its last events (the peer merged them
    // after it answered), the participant starts a new log whose first ids are theirs, and the
    // peer refuses the repeated ids as forged (LEGION_SEED=87187827 under load).
    const sentIds = this.sentIds.get(group)
    if (sentIds !== undefined && idsOf(message).some(([id, log]) => sentIds.has(id) && sentIds.get(id) !== log)) return true
    const mine = new Set(logsOf(message))
    if (mine.size === 0) return false
    const earlier = [...this.sentInBatch.get(group) ?? [], ...inFrame.filter(m => m.group === group).map(m => m.message)]
    return earlier.some(m => logsOf(m).some(l => mine.has(l)))
  }

  /** Whether `message` changes whether the participant takes part in its group. */
  private touchesParticipant (message: LogDiff | Snapshot): boolean {
    if (bodiesOf(message).some(d => (d.kind === 'join' || d.kind === 'unjoin') && d.participant === this.participant)) return true
    // a fold's settled participants replace the peer's own before its Join folded
    return 'infimum' in message && !message.infimum.participants.includes(this.participant)
  }

  /** What the peer does with `bytes` on `protocol` from the participant (`participant`) or the stranger. */
  judge (protocol: Protocol, bytes: Uint8Array, participant: boolean): Judgement {
    if (!participant && protocol !== 'join') return this.fenced(protocol)
    switch (protocol) {
      case 'topic':
      case 'fold': return this.batch(bytes)
      case 'push': return this.push(bytes)
      case 'sync': return this.sync(bytes)
      case 'join': return this.join(bytes)
      case 'heartbeat': return this.heartbeat(bytes)
      case 'outputs': return simple(attempt(() => decodeOutputs(bytes, LIMITS)) === undefined ? 'undecodable' : 'valid')
      case 'call':
      case 'cast': return this.message(protocol, bytes)
    }
  }

  /** Every protocol but join refuses a non-participant before it decodes anything. */
  private fenced (protocol: Protocol): Judgement {
    const refused = (decode: (b: Uint8Array) => unknown) => (b: Uint8Array) => { expectRefusal(decode(b), 'not-participant', `a stranger's ${protocol} request`) }
    const answers: Partial<Record<Protocol, (b: Uint8Array) => void>> = {
      sync: refused(b => decodeSyncAnswer(b, LIMITS)),
      push: refused(b => decodePushAnswer(b, LIMITS)),
      heartbeat: refused(b => decodeHeartbeatAnswer(b, LIMITS)),
      call: refused(b => decodeReply(b, LIMITS))
    }
    return { ...simple('not-participant'), ...(answers[protocol] !== undefined ? { answer: answers[protocol] } : {}) }
  }

  private batch (bytes: Uint8Array): Judgement {
    const entries = attempt(() => decodeFoldBatch(bytes, LIMITS))
    if (entries === undefined) return simple('undecodable')
    if (entries.length === 0) return simple('ignored')
    const known = this.scratch()
    const verdicts: Verdict[] = []
    const sent: Array<{ group: string, message: LogDiff }> = []
    let removesPeer = false
    let changesMembership = false
    for (const { group, payload } of entries) {
      const view = this.view(group)
      if (view.kind !== 'inside') { verdicts.push(view.kind === 'undefined' ? 'unknown-group' : view.kind === 'waiting' ? 'ignored' : 'not-participant'); continue }
      const context = this.prints.get(group)!.receiving(originOf(group), [...known.get(group)!])
      const diff = attempt(() => decodeDiff(payload, codecs, LIMITS, context))
      if (diff === undefined) { verdicts.push('undecodable'); continue }
      if (diff.origin !== originOf(group)) { verdicts.push('other-cluster'); continue }
      verdicts.push('valid')
      removesPeer ||= this.removesPeer(group, diff, sent)
      changesMembership ||= this.touchesParticipant(diff)
      this.learn(known, group, namesIn(diff))
      sent.push({ group, message: diff })
    }
    return { verdicts, removesPeer, changesMembership, commit: () => { this.known = known; this.sent(sent) } }
  }

  private push (bytes: Uint8Array): Judgement {
    const entries = attempt(() => decodeFoldPush(bytes, LIMITS))
    if (entries === undefined) return { ...simple('undecodable'), answer: b => { expectRefusal(decodePushAnswer(b, LIMITS), 'bad-request', 'an undecodable push') } }
    const known = this.scratch()
    const verdicts: Verdict[] = []
    const expected: PushExpectation[] = []
    const sent: Array<{ group: string, message: LogDiff | Snapshot }> = []
    let removesPeer = false
    let changesMembership = false
    const refuse = (verdict: Verdict, code: RefusalCode, rateLimitable: boolean): void => { verdicts.push(verdict); expected.push({ merged: false, code, rateLimitable }) }
    const adopted = new Set<string>()
    for (const { group, payload } of entries) {
      const view = this.view(group)
      if (view.kind === 'undefined') { refuse('unknown-group', 'unknown-group', false); continue }
      if (adopted.has(group)) {
        verdicts.push('ignored')
        expected.push({ merged: false, code: 'not-participant', rateLimitable: true, afterAdoption: true })
        continue
      }
      let kind: number | undefined
      try { kind = peekKind(payload) } catch { kind = undefined }
      if (kind !== MessageKind.diff && kind !== MessageKind.eventFold) { refuse('undecodable', 'bad-request', false); continue }
      const fold = kind === MessageKind.eventFold
      if (view.kind === 'outside') { refuse('not-participant', 'not-participant', fold); continue }
      const message: LogDiff | Snapshot | undefined = attempt(() => fold ? decodeEventFold(payload, codecs, LIMITS) : decodeDiff(payload, codecs, LIMITS))
      if (view.kind === 'waiting') {
        // A group the peer waits for (a managed one) takes a whole fold that names it and the
        // sender (adopt), with a Join of it pending; a diff, or a fold that counts it in through a
        // replica it no longer holds (settled, no Join pending), is refused as a group it does
        // not hold, for the sender to readmit it.
        if (!fold) { refuse('ignored', 'unknown-group', false); continue }
        if (message === undefined) { refuse('undecodable', 'not-participant', true); continue }
        if (message.origin !== originOf(group)) { refuse('other-cluster', 'not-participant', true); continue }
        const snapshot = message as Snapshot
        const joining = snapshot.events.some(e => e.delta.kind === 'join' && e.delta.participant === this.self)
        const admitted = snapshot.infimum.participants.includes(this.self) || joining
        if (!admitted || !snapshot.infimum.participants.includes(this.participant)) { refuse('not-participant', 'not-participant', true); continue }
        if (!joining) { refuse('ignored', 'unknown-group', true); continue }
        // a fold no replica would write (a log that does not chain to its head) is not taken
        if (!this.holdable(group, snapshot)) { refuse('undecodable', 'not-participant', true); continue }
        changesMembership = true
        adopted.add(group)
        verdicts.push('valid')
        expected.push({ merged: true, rateLimitable: true })
      } else {
        if (message === undefined) { refuse('undecodable', 'bad-request', fold); continue }
        if (message.origin !== originOf(group)) { refuse('other-cluster', 'bad-request', fold); continue }
        changesMembership ||= this.touchesParticipant(message)
        verdicts.push('valid')
        // a forged body is a bad request; one the mirror finds forged may not be on the peer,
        // which may hold the event already (see `forged`)
        // and so may one whose logs an earlier frame of the batch extended on the peer with other
        // bodies (the frames of a batch go out at once; see `mayConflict`)
        const refusable = this.forged(group, message) || this.mayConflict(group, message, sent)
        expected.push({ merged: true, rateLimitable: fold, ...(refusable ? { orRefused: 'bad-request' as const } : {}) })
      }
      removesPeer ||= this.removesPeer(group, message, sent)
      this.learn(known, group, namesIn(message))
      sent.push({ group, message })
    }
    const answer = (b: Uint8Array): void => {
      const m = decodePushAnswer(b, LIMITS)
      assert.ok(Array.isArray(m), `a push is answered group by group, not ${describe(m)}`)
      assert.equal(m.length, entries.length, 'one answer per group pushed')
      m.forEach((r, i) => {
        const e = expected[i]!
        assert.equal(r.group, entries[i]!.group)
        if (e.rateLimitable && !r.merged && r.code === 'rate-limited') return
        if (e.orRefused !== undefined && !r.merged && r.code === e.orRefused) return
        if (e.afterAdoption === true && (r.merged || r.code === 'bad-request' || r.code === 'unknown-group')) return
        assert.deepEqual(r.merged ? { merged: true } : { merged: false, code: r.code }, e.merged ? { merged: true } : { merged: false, code: e.code },
          `push part ${i} (group ${JSON.stringify(r.group)}, judged ${verdicts[i]!})`)
      })
    }
    return { verdicts: verdicts.length > 0 ? verdicts : ['ignored'], removesPeer, changesMembership, answer, commit: () => { this.known = known; this.sent(sent) } }
  }

  private sync (bytes: Uint8Array): Judgement {
    const wants = attempt(() => decodeSyncRequest(bytes, LIMITS))
    if (wants === undefined) return { ...simple('undecodable'), answer: b => { expectRefusal(decodeSyncAnswer(b, LIMITS), 'bad-request', 'an undecodable sync request') } }
    return { ...simple('valid'), answer: b => { this.checkSyncAnswer(wants, decodeSyncAnswer(b, LIMITS)) } }
  }

  /** A sync answer gives each group asked for, once, in order: its diff or fold, or why not. */
  checkSyncAnswer (asked: readonly SyncWant[], m: ReturnType<typeof decodeSyncAnswer>): void {
    const wants = asked.filter((w, i) => asked.findIndex(x => x.group === w.group) === i)
    if (!Array.isArray(m)) {
      // a whole fold costs the peer: full answers are rate-limited
      assert.ok(m.code === 'rate-limited' && wants.some(w => this.view(w.group).kind === 'inside'), `a sync request is answered, not ${describe(m)}`)
      return
    }
    assert.equal(m.length, wants.length, 'one answer per group asked for, however often')
    m.forEach((r, i) => {
      const group = wants[i]!.group
      assert.equal(r.group, group)
      const view = this.view(group)
      if (view.kind !== 'inside') {
        assert.ok(r.kind === 'refused' && r.code === (view.kind === 'outside' ? 'not-participant' : 'unknown-group'), `group ${JSON.stringify(group)} (${view.kind}) is refused, not answered ${describe(r)}`)
        return
      }
      assert.ok(r.kind !== 'refused', `group ${JSON.stringify(group)} is answered, not ${describe(r)}`)
      if (wants[i]!.full) assert.equal(r.kind, 'fold', 'a full sync is answered with the whole fold')
      const state = r.kind === 'diff' ? decodeDiff(r.bytes, codecs, LIMITS) : decodeEventFold(r.bytes, codecs, LIMITS)
      assert.equal(state.origin, originOf(group), 'a group keeps its origin')
    })
  }

  private join (bytes: Uint8Array): Judgement {
    if (attempt(() => decodeJoinRequest(bytes, LIMITS)) !== undefined) return simple('valid') // never sent: see `run`
    return { ...simple('undecodable'), answer: b => { expectRefusal(decodeJoinAnswer(b, LIMITS), 'bad-request', 'an undecodable join request') } }
  }

  private heartbeat (bytes: Uint8Array): Judgement {
    if (attempt(() => decodeHeartbeat(bytes, LIMITS)) === undefined) {
      return { ...simple('undecodable'), answer: b => { expectRefusal(decodeHeartbeatAnswer(b, LIMITS), 'bad-request', 'an undecodable heartbeat') } }
    }
    return { ...simple('valid'), answer: b => { const m = decodeHeartbeatAnswer(b, LIMITS); assert.ok(Array.isArray(m), `a heartbeat is answered, not ${describe(m)}`) } }
  }

  /** Call and cast frames: the default channel ("") is the application's; no other is handled. */
  private message (protocol: 'call' | 'cast', bytes: Uint8Array): Judgement {
    const frame = attempt(() => decodeFrame(bytes, LIMITS))
    if (frame === undefined) {
      return { ...simple('undecodable'), ...(protocol === 'call' ? { answer: (b: Uint8Array) => { expectRefusal(decodeReply(b, LIMITS), 'bad-request', 'an undecodable call') } } : {}) }
    }
    const verdict: Verdict = frame.channel === '' ? 'opaque' : 'ignored'
    if (protocol === 'cast') return simple(verdict)
    return {
      ...simple(verdict),
      answer: b => {
        const reply = decodeReply(b, LIMITS)
        if (verdict === 'opaque') assert.ok('status' in reply && reply.status === 'replied' && hex(reply.body) === hex(frame.body), `a call is answered by the application, not ${describe(reply)}`)
        else assert.ok('status' in reply && reply.status === 'no-handler', `a call on a channel nobody handles is answered no-handler, not ${describe(reply)}`)
      }
    }
  }

  /** A copy of the known names, which a judgement extends as it reads valid parts. */
  private scratch (): Map<string, Participant[]> {
    return new Map([...this.known].map(([g, list]) => [g, [...list]]))
  }
}

function simple (verdict: Verdict): Judgement {
  return { verdicts: [verdict], removesPeer: false, changesMembership: false, commit: () => {} }
}

// -------------------------------------------------------------------------------------------

const everyone: FuzzPeer[] = []
const raws: TransportNode[] = []

// A one-way handler that throws does not reach the sender: the admission pipeline logs it
// (`legion:inbound:error`, "the ... handler threw"). Those lines are enabled and collected, so
// the test sees them; they still reach stderr.
const handlerThrows: string[] = []
enableLogs([process.env.DEBUG, 'legion:inbound:error'].filter(d => d !== undefined && d !== '').join(','))
const writeStderr = process.stderr.write.bind(process.stderr) as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean
process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()
  if (text.includes('legion:inbound:error') && text.includes('handler threw')) handlerThrows.push(text.trim())
  return writeStderr(chunk, ...rest)
}) as typeof process.stderr.write

after(async () => {
  await stopAll(everyone as unknown as Array<Legion<unknown, unknown, unknown>>)
  await Promise.all(raws.map(async r => { await r.stop() }))
  process.stderr.write = writeStderr as typeof process.stderr.write
})

const DROPPED: ReadonlyArray<keyof LegionCounters> = ['droppedUndecodable', 'droppedWrongCluster', 'droppedNonParticipant', 'droppedUnknownGroup', 'droppedUnknownParticipants', 'droppedForged', 'droppedRateLimited', 'droppedFrames']
const dropped = (c: LegionCounters): number => DROPPED.reduce((n, k) => n + c[k], 0)

/** Resolves once `predicate` holds, checking every few milliseconds; counters have no event. */
async function eventually (predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

type Tally = Record<Verdict | 'sent', number>

test(`garbage and mutated frames on every protocol never crash a peer, never change it unless valid, and are counted (seed ${SEED}, ${FRAMES} frames)`, async (t) => {
  t.diagnostic(`seed ${SEED}: replay with LEGION_SEED=${SEED} LEGION_FUZZ_FRAMES=${FRAMES}`)
  const rng = new Random(SEED)
  const ids = protocolIds(CLUSTER)
  let casts = 0
  let rejoins = 0
  const base = { cluster: CLUSTER, spec, codecs, maxMessageBytes: MAX_MESSAGE_BYTES }

  // Keys derived from the seed, so peer ids, and with them every seed encoding and every
  // frame of the strict phases, are the same in a replay. (The open phase also draws the
  // same random choices, but applies them to the peer's state, which depends on timing.)
  const keyFor = async (name: string): Promise<PrivateKey> =>
    await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(`legion-fuzz:${SEED}:${name}`).digest())
  const a: FuzzPeer = await startLegion({
    ...base,
    privateKey: await keyFor('peer'),
    startup: { mode: 'new' },
    services: { fuzz: fuzzGroups(true) },
    onCall: (_from, p) => p,
    onCast: () => { casts++ }
  })
  everyone.push(a)
  const groupOf = (id: string): LogGroup | undefined => a.services.fuzz.handles[id]
  const key = await keyFor('participant')
  const insider: FuzzPeer = await startLegion({ ...base, privateKey: key, startup: { mode: 'join', peers: a.multiaddrs() }, services: { fuzz: fuzzGroups(false) } })
  everyone.push(insider)
  await insider.applyConsistent('legit', { timeoutMs: 5_000 })
  await insider.services.fuzz.handles[LOG]!.applyConsistent('legit', { timeoutMs: 5_000 })
  await insider.stop({ leave: false })

  /** The state of every group the peer holds. */
  const states = (): Record<string, unknown> => {
    const out: Record<string, unknown> = { '': a.readState() }
    for (const id of DEFINED.slice(1)) out[id] = groupOf(id)!.held() ? groupOf(id)!.readState() : 'waiting'
    return out
  }

  // The insider's key on a raw node (a participant), and a stranger. Their frame limit is
  // the default 4 MiB, above the peer's, so they can send oversized frames.
  const forger = await createTransportNode({ privateKey: key, logPrefix: 'forger' })
  const stranger = await createTransportNode({ privateKey: await keyFor('stranger'), logPrefix: 'stranger' })
  raws.push(forger, stranger)
  for (const raw of [forger, stranger]) {
    await raw.dial(a.multiaddrs()[0]!)
    await raw.waitForTopicPeers(ids.topic, 1, { timeoutMs: 10_000 })
  }
  const mirror = new Mirror(a.self, forger.peerId, key)

  /**
   * Every group's whole fold, as the participant gets it (copied: the transport hands out
   * views of its buffers), or why not, taken into the mirror; `undefined` when the peer
   * rate-limited the request.
   */
  const fetchGroups = async (): Promise<Map<string, GroupView> | undefined> => {
    const wants = DEFINED.map(group => ({ group, full: true }))
    const answer = decodeSyncAnswer(await forger.request(a.self, ids.sync, encodeSyncRequest(wants)), LIMITS)
    if (!Array.isArray(answer)) { expectRefusal(answer, 'rate-limited', 'the participant\'s sync'); return undefined }
    const views = new Map<string, GroupView>()
    for (const r of answer) {
      if (r.kind === 'fold') {
        const bytes = new Uint8Array(r.bytes)
        views.set(r.group, { kind: 'inside', snapshot: decodeEventFold(bytes, codecs, LIMITS), bytes })
      } else if (r.kind === 'refused') {
        views.set(r.group, r.code === 'not-participant' ? { kind: 'outside' } : { kind: 'waiting' })
      }
    }
    mirror.update(views)
    mirror.checkSyncAnswer(wants, answer) // every group answered as the views say, keeping its origin
    return views
  }
  /** Brings the mirror up to date (bounded: the flood may have emptied the full-sync bucket). */
  const refresh = async (): Promise<void> => {
    const deadline = Date.now() + 10_000
    for (;;) {
      if (await fetchGroups() !== undefined) return
      assert.ok(Date.now() < deadline, 'the peer answers a full sync within 10 s')
      await new Promise(resolve => setTimeout(resolve, 100)) // 10 full syncs per second
    }
  }

  // ----- valid encodings to mutate, built from the peer's real folds as the participant would
  // build its own messages: replicas that acknowledge everything and add a few events of
  // their own. Rebuilt after every batch of the open phase, so that the participant keeps up
  // with the peer and the peer's events fold.
  let generation = 0
  interface Seeds {
    /** Per group, Diffs in the pushed form a batch carries (fingerprints, implied origin). */
    readonly pushed: Map<string, Uint8Array[]>
    /** Per group, Diffs in full and whole folds, as a push carries them. */
    readonly full: Map<string, Uint8Array[]>
    /** Whole valid messages per protocol. */
    readonly messages: Record<Protocol, Uint8Array[]>
  }
  const buildSeeds = (): Seeds => {
    generation++
    const pushed = new Map<string, Uint8Array[]>()
    const full = new Map<string, Uint8Array[]>()
    let first = { counter: 1, participant: forger.peerId }
    for (const group of DEFINED) {
      const view = mirror.view(group)
      const origin = originOf(group)
      const signatures = mirror.signatures(group)
      let replica: EventFold<string, Log, number>
      const folds: Uint8Array[] = []
      if (view.kind === 'inside') {
        replica = EventFold.fromSnapshot(view.snapshot, forger.peerId, spec, { signatures })
        replica.acknowledge()
        folds.push(view.bytes)
      } else {
        // the participant's own fold of a group it is not in, or that the peer waits for:
        // it names the peer (so that the peer would adopt it) and its events stay outstanding
        replica = EventFold.create(origin, forger.peerId, spec, { signatures })
        replica.participate(a.self)
      }
      replica.event(`forged-${generation}`)
      if (generation % 4 === 1) replica.event('fail')
      if (generation % 8 === 1 && group === '') { replica.participate(stranger.peerId); replica.disassociate(stranger.peerId) }
      folds.push(encodeEventFold(replica.snapshot(), codecs))
      const events = replica.outstandingEvents()
      if (group === '') first = events[0]!.id
      // Its acknowledgement and the outstanding events of its own log, under its signature.
      const acknowledgement = replica.acknowledgement()
      const run = replica.run(forger.peerId, replica.log, 1)
      const diff: LogDiff = { origin, acknowledgements: [acknowledgement], runs: run === undefined ? [] : [run] }
      const variants: LogDiff[] = [
        diff,
        { ...diff, runs: [] },
        { ...diff, acknowledgements: [] },
        { ...diff, acknowledgements: [{ ...acknowledgement, failures: [{ id: { counter: events[0]!.id.counter, participant: a.self }, output: -1 }] }] },
        { ...diff, origin: 'elsewhere' }
      ]
      const sending = new ParticipantFingerprints().sending(origin, new Set(replica.infimumParticipants()))
      pushed.set(group, variants.map(d => encodeDiff(d, codecs, sending)))
      full.set(group, [...variants.map(d => encodeDiff(d, codecs)), ...folds])
    }
    pushed.set(UNKNOWN, pushed.get('')!)
    full.set(UNKNOWN, full.get('')!)
    const p = (group: string, i = 0): GroupPayload => ({ group, payload: pushed.get(group)![i]! })
    const f = (group: string, i = 0): GroupPayload => ({ group, payload: full.get(group)![i]! })
    const lastFold = (group: string): GroupPayload => ({ group, payload: full.get(group)!.at(-1)! })
    const batches = [[p('')], [p(LOG)], [p(''), p(LOG, 1)], [p(UNKNOWN), p('', 2)], [p(PRIVATE)], [p(WAITING)], [p(''), p(LOG), p(PRIVATE), p(WAITING), p(UNKNOWN)], []].map(encodeFoldBatch)
    const address = `/ip4/127.0.0.1/tcp/4001/p2p/${forger.peerId}`
    const value = encodeWith(codecs.output, 3)
    const bodies = [Uint8Array.of(1, 2, 3), new Uint8Array(0), batches[0]!]
    return {
      pushed,
      full,
      messages: {
        fold: batches,
        topic: batches,
        push: [[f('')], [lastFold('')], [f(LOG), f('', 2)], [lastFold(WAITING)], [f(PRIVATE), f(UNKNOWN)], [f(''), lastFold(LOG), f(WAITING)], []].map(encodeFoldPush),
        sync: [[{ group: '', full: false }], [{ group: '', full: true }], [{ group: LOG, full: false }, { group: '', full: false }], [{ group: UNKNOWN, full: false }, { group: PRIVATE, full: true }, { group: WAITING, full: false }], [], [{ group: LOG, full: false }, { group: '', full: true }, { group: LOG, full: true }, { group: '', full: false }]].map(encodeSyncRequest),
        join: [encodeJoinRequest({ addresses: [address], unreachable: [], counter: 0, handed: [] }), encodeJoinRequest({ addresses: [address], unreachable: [a.self, stranger.peerId], counter: 2 ** 52, handed: [lastFold(''), { group: LOG, payload: Uint8Array.of(1, 2, 3) }, lastFold(UNKNOWN)] })],
        heartbeat: [
          encodeHeartbeat({ suspects: [], stuck: undefined }),
          encodeHeartbeat({ suspects: [{ peer: a.self, reason: 'stuck' }, { peer: stranger.peerId, reason: 'silent' }], stuck: 'blocked at an event' })
        ],
        outputs: [
          encodeOutputs([{ group: '', outputs: [{ id: first, value }, { id: { counter: 9, participant: a.self }, value }] }, { group: LOG, outputs: [] }]),
          encodeOutputs([{ group: UNKNOWN, outputs: [{ id: { counter: 1, participant: a.self }, value }] }, { group: WAITING, outputs: [] }])
        ],
        call: bodies.flatMap(b => [encodeFrame('', b), encodeFrame('fuzz/none', b)]),
        cast: bodies.flatMap(b => [encodeFrame('', b), encodeFrame('fuzz/none', b)])
      }
    }
  }
  await refresh()
  let seeds = buildSeeds()
  const allMessages = (): Uint8Array[] => Object.values(seeds.messages).flat()

  const weights: Array<[Protocol, number]> = [['fold', 20], ['topic', 8], ['push', 18], ['sync', 10], ['join', 5], ['heartbeat', 7], ['outputs', 10], ['call', 11], ['cast', 11]]
  const protocols = weights.flatMap(([p, w]) => Array<Protocol>(w).fill(p))
  const groupChoices = ['', '', '', LOG, LOG, LOG, PRIVATE, WAITING, UNKNOWN]

  /** A batch or push of zero to three groups, each part a seed of that group, often mutated, wrapped validly. */
  const structured = (protocol: 'fold' | 'topic' | 'push'): Uint8Array => {
    const entries: GroupPayload[] = []
    for (let i = rng.int(4); i > 0; i--) {
      const group = rng.chance(0.1) ? `fuzz/${rng.u32()}` : rng.pick(groupChoices)
      const pool = (protocol === 'push' ? seeds.full : seeds.pushed).get(group) ?? seeds.pushed.get('')!
      let payload = rng.pick(pool)
      if (rng.chance(0.6)) payload = mutate(rng, payload, rng.pick(pool))
      entries.push({ group, payload })
    }
    return protocol === 'push' ? encodeFoldPush(entries) : encodeFoldBatch(entries)
  }

  /** A random frame for `protocol`: mostly a mutated message of the right kind, sometimes of another kind, sometimes noise. */
  const frame = (protocol: Protocol): Uint8Array => {
    const roll = rng.int(20)
    if (roll === 0) return rng.bytes(rng.int(300))
    if (roll === 1) return concat(seeds.messages.fold[0]!.subarray(0, 4), Uint8Array.of(rng.pick(INTERESTING)), rng.bytes(rng.int(200)))
    if (roll === 2) return mutate(rng, rng.pick(allMessages()), rng.pick(allMessages()))
    if (roll < 9 && (protocol === 'fold' || protocol === 'topic' || protocol === 'push')) return structured(protocol)
    return mutate(rng, rng.pick(seeds.messages[protocol]), rng.pick(allMessages()))
  }

  /** Whether the participant takes part in the cluster and in the cluster-wide group. */
  const admitted = (): boolean => a.readState().projectedParticipants.includes(forger.peerId) &&
    groupOf(LOG)!.readState().projectedParticipants.includes(forger.peerId)

  /**
   * If a valid UnJoin in its name fenced the participant (from the cluster, or the
   * cluster-wide group), it joins again (as a restarted peer would), so that its frames keep
   * reaching the decoders.
   */
  const rejoin = async (): Promise<void> => {
    const deadline = Date.now() + 10_000
    while (!admitted()) {
      assert.ok(Date.now() < deadline, 'the participant could not join again')
      const answer = decodeJoinAnswer(await forger.request(a.self, ids.join, encodeJoinRequest({ addresses: forger.multiaddrs(), unreachable: [], counter: 0, handed: [] })), LIMITS)
      if (answer.kind === 'joinAccepted') rejoins++
      else { expectRefusal(answer, 'rate-limited', 'the participant\'s join'); await new Promise(resolve => setTimeout(resolve, 100)) } // 5 joins per second
    }
  }

  const withheld = { removesPeer: 0, join: 0, strict: 0 }
  let membershipFrames = 0
  const byProtocol: Record<Protocol, number> = { topic: 0, fold: 0, sync: 0, push: 0, join: 0, heartbeat: 0, outputs: 0, call: 0, cast: 0 }

  /** Sends one frame; checks the answer it was predicted to get, and that no handler threw. */
  const deliver = async (raw: TransportNode, protocol: Protocol, bytes: Uint8Array, judgement: Judgement): Promise<void> => {
    if (protocol === 'topic') {
      assert.ok(await raw.publish(ids.topic, bytes) >= 1, 'published to the peer')
      return
    }
    if (!REQUESTS.has(protocol)) {
      await raw.send(a.self, ids[protocol], bytes)
      return
    }
    const answer = await raw.request(a.self, ids[protocol], bytes).then(b => b, (err: Error) => err)
    if (!(answer instanceof Uint8Array)) assert.fail(`the peer answers every ${protocol} request, but ${answer.name}: ${answer.message} (frame ${hex(bytes)})`)
    try {
      judgement.answer!(answer)
    } catch (err) {
      assert.fail(`${protocol} frame ${hex(bytes)} judged ${judgement.verdicts.join(',')}: ${(err as Error).message}`)
    }
  }

  /**
   * Sends `count` frames from `raw` in batches, each frame judged first; with `strict`,
   * frames the peer would accept are replaced by others. Waits after each batch until the
   * peer's handlers have seen every frame of it.
   */
  const run = async (raw: TransportNode, count: number, strict: boolean): Promise<Tally> => {
    const participant = raw === forger
    const tally: Tally = { sent: 0, undecodable: 0, 'other-cluster': 0, 'not-participant': 0, 'unknown-group': 0, ignored: 0, valid: 0, opaque: 0 }
    const droppedBefore = dropped(a.stats().counters)
    const castsBefore = casts
    let expectedCasts = 0
    while (tally.sent < count) {
      const firstIn = a.stats().counters.messagesIn
      mirror.beginBatch()
      let pending: Array<Promise<void>> = []
      let inBatch = 0
      while (inBatch < BATCH && tally.sent + inBatch < count) {
        const protocol = rng.pick(protocols)
        let bytes = frame(protocol)
        let judgement = mirror.judge(protocol, bytes, participant)
        // Strict phases send no valid frame. No phase sends a valid join (it would admit the
        // stranger, or restart the participant's membership), nor a valid message that
        // removes the peer itself: that is a participant forging an UnJoin in the peer's
        // name, the known limit of docs/PROTOCOL.md 7.4, after which the peer is out.
        while (judgement.verdicts.includes('valid') && (strict || protocol === 'join' || judgement.removesPeer)) {
          if (strict) withheld.strict++
          else if (protocol === 'join') withheld.join++
          else withheld.removesPeer++
          bytes = frame(protocol)
          judgement = mirror.judge(protocol, bytes, participant)
        }
        judgement.commit()
        for (const v of judgement.verdicts) tally[v]++
        byProtocol[protocol]++
        if (protocol === 'cast' && judgement.verdicts[0] === 'opaque') expectedCasts++
        inBatch++
        if (judgement.changesMembership) {
          membershipFrames++
          // last, alone, once everything before it was handled under the old membership
          await Promise.all(pending)
          pending = []
          const seen = inBatch - 1
          await eventually(() => a.stats().counters.messagesIn >= firstIn + seen, 10_000, `the peer's handlers saw the ${seen} frames before a membership change`)
          pending.push(deliver(raw, protocol, bytes, judgement))
          break
        }
        pending.push(deliver(raw, protocol, bytes, judgement))
      }
      await Promise.all(pending)
      tally.sent += inBatch
      await eventually(() => a.stats().counters.messagesIn >= firstIn + inBatch, 10_000, `the peer's handlers saw all ${inBatch} frames of the batch`)
      if (participant && !strict) {
        await rejoin()
        await refresh()
        seeds = buildSeeds()
      }
    }
    assert.deepEqual(handlerThrows, [], 'no one-way handler threw')
    assert.equal(casts - castsBefore, expectedCasts, 'every cast on the default channel reached the application once')
    const counted = dropped(a.stats().counters) - droppedBefore
    const predicted = [...COUNTED].reduce((n, v) => n + tally[v], 0)
    assert.ok(counted >= predicted, `${counted} drops counted, ${predicted} frames or parts predicted to be rejected and counted`)
    return tally
  }

  const started = performance.now()
  const report = (name: string, tally: Tally, ms: number): void => {
    const { sent, ...verdicts } = tally
    t.diagnostic(`${name}: ${sent} frames in ${(ms / 1000).toFixed(1)} s (${Math.round(sent / ms * 1000)}/s); verdicts (per frame, or per group of a batch or push): ${JSON.stringify(verdicts)}`)
  }

  // 1. The stranger: everything it sends is fenced (joins: only invalid ones).
  const initial = states()
  let phase = performance.now()
  report('stranger', await run(stranger, Math.round(FRAMES * 0.1), false), performance.now() - phase)
  assert.deepEqual(states(), initial, 'the stranger changed nothing')

  // 2. The participant, strict: only frames the peer must reject or ignore (and opaque ones).
  phase = performance.now()
  report('participant, rejected frames only', await run(forger, Math.round(FRAMES * 0.45), true), performance.now() - phase)
  assert.deepEqual(states(), initial, 'rejected frames changed nothing')

  // 3. Oversized: on a stream the frame is refused before it is read (the stream dropped and
  // counted); on the topic it reaches the decoder, which refuses it by size.
  const big = concat(seeds.messages.fold[0]!, new Uint8Array(MAX_MESSAGE_BYTES + 1024))
  const before = a.stats().counters
  await forger.send(a.self, ids.fold, big)
  await assert.rejects(forger.request(a.self, ids.push, big, { timeoutMs: 5_000 }), { name: 'PeerUnreachableError' })
  assert.ok(await forger.publish(ids.topic, big) >= 1)
  await eventually(() => a.stats().counters.droppedFrames >= before.droppedFrames + 2 && a.stats().counters.droppedUndecodable >= before.droppedUndecodable + 1, 10_000, 'the oversized frames are counted')
  assert.deepEqual(states(), initial, 'oversized frames changed nothing')

  // 4. The participant, open: valid-but-mutated frames too. A participant may change the
  // state (that is what participants do); the peer must stay sound.
  phase = performance.now()
  const open = await run(forger, FRAMES - Math.round(FRAMES * 0.1) - Math.round(FRAMES * 0.45), false)
  report('participant, all frames', open, performance.now() - phase)
  t.diagnostic(`frames per protocol: ${JSON.stringify(byProtocol)}`)
  const held = DEFINED.map(g => `${JSON.stringify(g)}: ${mirror.view(g).kind}`).join(', ')
  t.diagnostic(`${membershipFrames} frames changed the participant's membership (sent alone); groups as the participant sees them: ${held}`)
  t.diagnostic(`the participant joined again ${rejoins} times (fenced by a valid UnJoin in its name); valid frames not sent: ` +
    `${withheld.removesPeer} that would remove the peer itself, ${withheld.join} joins, ${withheld.strict} in the strict phase`)
  const seconds = (performance.now() - started) / 1000
  t.diagnostic(`total: ${FRAMES} frames in ${seconds.toFixed(1)} s (${Math.round(FRAMES / seconds)}/s); counters: ${JSON.stringify(a.stats().counters)}`)

  // Every group keeps its origin (checked by the fetch); the peer answers; once the fake
  // participant is ejected, and with it every participant its valid-but-mutated messages
  // made up (a forged fold can bring an infimum with participants that do not exist), the
  // peer settles alone.
  await rejoin()
  await refresh()
  const others = a.readState().projectedParticipants.filter(p => p !== a.self)
  t.diagnostic(`participants to eject at the end: the fake one and ${others.filter(p => p !== forger.peerId).length} made up by forged messages`)
  for (const p of others) await a.eject(p, { timeoutMs: 1_000 })
  const output = await a.applyConsistent('after-eject', { timeoutMs: 10_000 })
  assert.equal(a.readState().infimum.log[output], 'after-eject')
  assert.deepEqual(a.readState().participants, [a.self])
  // The cluster-wide group lost the participant with the cluster; participants made up in it
  // alone are not members, which `eject` cannot remove.
  const log = groupOf(LOG)!
  const strangers = log.readState().projectedParticipants.filter(p => p !== a.self)
  if (strangers.length === 0) {
    const at = await log.applyConsistent('after-eject', { timeoutMs: 10_000 })
    assert.equal(log.readState().infimum.log[at], 'after-eject')
  } else t.diagnostic(`the cluster-wide group keeps ${strangers.length} participants made up in it alone: it cannot settle`)
})
