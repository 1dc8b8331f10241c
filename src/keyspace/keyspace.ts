/**
 * The partitioned keyspace as a service (after the Haskell `legion` framework): the
 * application writes the stateful part as `handle(key, input, state) => output` and a pure,
 * total `apply(input, state) => state`, and any peer of the cluster takes a request for any
 * key. {@link defineKeyspace} builds the service from those and the options.
 *
 * How it is put together (docs/ARCHITECTURE.md, "Keyspace", says why):
 * - the **ownership table** (`table.ts`) is a cluster-wide group `<service>/table`: which R
 *   peers own each partition, changed only by folded events, its version the fencing epoch;
 * - each partition's **data** is a managed group `<service>/p:<partition>.<generation>` among
 *   its owners (`partition-state.ts`): a request is an event of it;
 * - **requests** travel on the channel `<service>/request` to an owner (`router.ts` picks,
 *   `owner.ts` fences and applies); **search pages** on `<service>/search` (`search.ts`);
 * - **handoff** (`handoff.ts`) moves the groups as the table says, bounded and visible.
 *
 * @module
 */
import type { Codec } from '../codec/codec.js'
import { DEFAULT_DECODE_LIMITS, decodeWith, encodeWith } from '../codec/codec.js'
import { jsonCodec } from '../codec/json.js'
import { StoppedError } from '../peer/errors.js'
import { defineService, type ServiceDefinition, type ServiceInstance, type ServiceStopContext } from '../peer/services.js'
import type { WaitOptions } from '../peer/options.js'
import type { OperatorView } from '../peer/operator.js'
import { BadRequestError } from './errors.js'
import { PartitionGroups, TableView, newKeyspaceCounters, type KeyspaceCounters } from './context.js'
import { Handoff } from './handoff.js'
import type { HandoffProgress } from './handoff-progress.js'
import { Owner } from './owner.js'
import { MAX_KEY_BYTES, keyIdOf, partitionCodecs, partitionSpec, stringKeys, type KeyCodec, type KeyspaceApplication } from './partition-state.js'
import { Router, partitionOfBytes } from './router.js'
import { Scroll, cursorFingerprint, decodeCursor, type IndexRecord, type SearchFrom, type SearchOptions } from './search.js'
import { lostBetween, movesInFlight, tableChanges, tableSpec, type KeyspaceTable, type TableChange } from './table.js'
import { tableCodecs } from './table-codec.js'
import { requestCodec, requestReplyCodec, searchCodec, searchReplyCodec, type RequestConsistency } from './wire.js'
import { registerKeyspaceMetrics, type RequestOutcome } from './metrics.js'
import { planMembershipChange, type KeyspacePlan, type MembershipChange, type RefusedPlan } from './plan.js'
import { handoffsView, partitionsView, tableView } from './views.js'

/** The application and the options of a keyspace; see {@link defineKeyspace}. */
export interface KeyspaceOptions<K, I, O, S> extends KeyspaceApplication<K, I, O, S> {
  /**
   * The service's name: it namespaces its groups, channels, metrics and logs. Two keyspaces on
   * one peer need two names.
   * @default 'keyspace'
   */
  readonly name?: string
  /**
   * The number of partitions, fixed for the life of the cluster (the first peer's table decides).
   * Each partition is one replicated group among its owners, whose settled state is rewritten
   * to storage whenever it moves: more partitions, smaller rewrites (docs/BENCHMARKS.md).
   * @default 64
   */
  readonly partitions?: number
  /**
   * Replicas per partition, capped by the number of peers that are not stopping.
   * @default 3
   */
  readonly replication?: number
  /**
   * The fewest replicas of a partition that must hold an `agreed` input for its request to be
   * answered as done (capped by `replication` and by the members the table lists). An input
   * that folds on fewer (the others left the partition's group: ejected, crashed, or cut off
   * and taken as departed on one side of a split) stays applied there, but its request fails
   * with `RequestTimeoutError` (its outcome is not known), since that replica alone may be on
   * the losing side of a split. Only replicas the table lists as owners count (an incoming one
   * is not restored from if every owner goes). Writes wait for a new replica meanwhile, which
   * handoff adds.
   * @default 2
   */
  readonly minReplicas?: number
  /**
   * How keys become bytes (hashed into a partition, ordering the index).
   * @default stringKeys (UTF-8)
   */
  readonly keys?: KeyCodec<K>
  /**
   * The part of a key that picks its partition. Keys with the same partition key share a
   * partition: the same owners serve them, and requests to them that meet at an owner go into
   * one event (co-location, as Akka's shard id extractor or Kafka's record key). For example
   * `key => key.slice(0, key.indexOf(':'))` keeps `user42:profile` and `user42:cart` together.
   * A string is hashed as its UTF-8 bytes. Every peer must use the same function, and it must
   * not change while the cluster holds keys: a key stored in one partition is not found through
   * another. Keys stay keys everywhere else (the index orders them by their own bytes).
   * @default the whole key (its bytes under `keys`)
   */
  readonly partitionKey?: (key: K) => string | Uint8Array
  /**
   * Codecs of inputs, outputs and per-key states.
   * @default jsonCodec for each (only sound for JSON values)
   */
  readonly codecs?: {
    /** Inputs. */
    readonly input?: Codec<I>
    /** Outputs. */
    readonly output?: Codec<O>
    /** Per-key states. */
    readonly state?: Codec<S>
  }
  /**
   * Default deadline of a request, routing and retries included.
   * @default 10000
   */
  readonly requestTimeoutMs?: number
  /**
   * Partition transfers one peer runs at once (as the coordinator of the partitions it sends).
   * @default 4
   */
  readonly maxParallelMoves?: number
  /**
   * How long a graceful `stop()` waits for this peer's partitions to be handed off.
   * @default 30000
   */
  readonly drainTimeoutMs?: number
  /**
   * How long a replica that should hold a partition and cannot get its state (no owner left)
   * waits before it says so, so that the partition can be declared lost and refounded.
   * @default 5000
   */
  readonly abandonAfterMs?: number
  /**
   * How long a partition whose every serving replica left the cluster waits for the last of
   * them, which holds everything acknowledged there, to be admitted again (it then founds the
   * next generation from its copy, and nothing is lost) before a member declares it lost and
   * it starts again, empty, in a new generation (a `lost` partition event). Its requests fail
   * with `PartitionUnavailableError` meanwhile. `Infinity` waits for good (an operator can
   * still bring the peer back with its storage); a short wait trades acknowledged writes for
   * availability.
   * @default 60000
   */
  readonly lostAfterMs?: number
}

/** Options of one request. */
export interface RequestOptions {
  /**
   * `agreed`: answer once every replica of the partition acknowledged the input (its output
   * then is final). `one`: answer at once from the replica that takes it (the output may
   * change if a concurrent input is ordered before it, and the input may be lost with that
   * replica).
   * @default 'agreed'
   */
  readonly consistency?: RequestConsistency
  /**
   * Deadline, routing and retries included.
   * @default the keyspace's `requestTimeoutMs`
   */
  readonly timeoutMs?: number
  /** Aborts the request (its outcome is then unknown if it was sent). */
  readonly signal?: AbortSignal
}

/** What this peer holds of one key. */
export interface LocalRead<S> {
  /** The key's partition. */
  readonly partition: number
  /** Whether this peer holds the partition's state. */
  readonly held: boolean
  /** The key's settled state here (the default for a key never written), if held. */
  readonly infimum?: S
  /** The key's projected state here, if held. */
  readonly projected?: S
}

/** What {@link Keyspace.stats} reports. */
export interface KeyspaceStats {
  /** The settled table's version. */
  readonly tableVersion: number
  /** Partitions. */
  readonly partitions: number
  /** Replicas per partition wanted. */
  readonly replication: number
  /** Members of the table. */
  readonly members: number
  /** Partitions this peer serves. */
  readonly owned: number
  /** Partitions with a move in flight, cluster-wide. */
  readonly movesInFlight: number
  /** Keys (not in the default state) of the partitions this peer serves, as it projects them. */
  readonly keys: number
  /** Handoff on this peer. */
  readonly handoff: HandoffProgress
  /** Request counters of this peer. */
  readonly requests: Readonly<KeyspaceCounters>
}

/** A partition moved (its serving owners changed) or was lost; see `Keyspace.onPartitionEvent`. */
export type PartitionEvent = TableChange

/**
 * A keyspace on one peer: `peer.services.<name>`.
 *
 * @typeParam K - keys
 * @typeParam I - inputs
 * @typeParam O - outputs
 * @typeParam S - per-key states
 */
export interface Keyspace<K, I, O, S> {
  /**
   * Sends `input` for `key` to the owners of its partition and resolves with the output.
   * @throws TypeError for a key or input of the wrong type; `HandlerError` (the handler threw,
   * nothing was applied), `RequestTimeoutError` (outcome unknown), `PartitionUnavailableError`
   * (no owner took it, nothing was applied), `BadRequestError`, `StoppedError`, `AbortError`
   */
  request(key: K, input: I, options?: RequestOptions): Promise<O>
  /**
   * Scrolls the cluster-wide index: every (tag, key) record after `from`, ordered by tag, then
   * key bytes. `from` is a tag (records of that tag and after, the seed's `search(fromTag)`),
   * `{ after: cursor }` (strictly after that record), or nothing (from the start).
   * @throws TypeError for a bad `from`; `ForeignCursorError` for another keyspace's cursor
   */
  search(from?: SearchFrom, options?: SearchOptions): AsyncIterableIterator<IndexRecord<K>>
  /** The partition of `key`. */
  partitionOf(key: K): number
  /** The settled ownership table as this peer holds it. */
  table(): KeyspaceTable | undefined
  /** What this peer holds of `key` (for inspection and tests; requests go through `request`). */
  readLocal(key: K): LocalRead<S>
  /** Counters and handoff progress. */
  stats(): KeyspaceStats
  /** Calls `listener` for every partition that moves or is lost (from the settled table); returns the remover. */
  onPartitionEvent(listener: (event: PartitionEvent) => void): () => void
  /** Resolves once the settled table has no move in flight and every partition an owner. */
  whenSettled(options?: WaitOptions): Promise<void>
  /**
   * Which partitions' replicas would move if `change.peer` left the cluster (or was ejected),
   * or if it joined: computed by the ownership table's own rebalancing on the table as this
   * peer projects it. Changes nothing. The admin endpoint serves it as
   * `GET /services/<name>/plan?leave=<peer>` (docs/ADMIN.md).
   * @returns the plan, or why it cannot be made (a leave of a non-member, a join of a member)
   * @throws TypeError for a malformed change; `GroupNotReadyError` while this peer does not hold the table
   */
  plan(change: MembershipChange): KeyspacePlan | RefusedPlan
}

/** The components a keyspace service receives. */
export type KeyspaceNeeds = 'self' | 'cluster' | 'log' | 'clock' | 'metrics' | 'membership' | 'groups' | 'messaging' | 'views'

/**
 * Defines a keyspace service. Every peer of the cluster runs it with the same options.
 *
 * @example
 * ```ts
 * const cache = defineKeyspace<string, { set?: string }, string | null, string | null>({
 *   init: () => null,
 *   handle: (_key, input, value) => input.set ?? value,
 *   apply: (input, value) => input.set ?? value,
 *   index: (value) => value === null ? [] : [value.slice(0, 1)]
 * })
 * const peer = await startLegion({ cluster: 'c', spec, startup: { mode: 'new' }, services: { cache } })
 * await peer.services.cache.request('user:1', { set: 'alice' })   // 'alice', once every replica has it
 * for await (const r of peer.services.cache.search('a')) console.log(r.tag, r.key)
 * ```
 * @throws TypeError or RangeError naming the option that is wrong
 */
export function defineKeyspace<K = string, I = unknown, O = unknown, S = unknown> (options: KeyspaceOptions<K, I, O, S>): ServiceDefinition<Keyspace<K, I, O, S> & ServiceInstance, KeyspaceNeeds> {
  const settings = checkOptions(options)
  return defineService({
    name: settings.name,
    needs: ['self', 'cluster', 'log', 'clock', 'metrics', 'membership', 'groups', 'messaging', 'views'],
    create: (components) => createKeyspace(options, settings, components)
  })
}

interface Settings {
  readonly name: string
  readonly partitions: number
  readonly replication: number
  readonly minReplicas: number
  readonly requestTimeoutMs: number
  readonly maxParallelMoves: number
  readonly drainTimeoutMs: number
  readonly abandonAfterMs: number
  readonly lostAfterMs: number
}

function checkOptions<K, I, O, S> (o: KeyspaceOptions<K, I, O, S>): Settings {
  if (typeof o !== 'object' || o === null) throw new TypeError('defineKeyspace needs an object { init, handle, apply, ... }')
  for (const f of ['init', 'handle', 'apply'] as const) if (typeof o[f] !== 'function') throw new TypeError(`keyspace option ${f} must be a function`)
  for (const f of ['index', 'isDefault', 'partitionKey'] as const) if (o[f] !== undefined && typeof o[f] !== 'function') throw new TypeError(`keyspace option ${f} must be a function`)
  const positive = (name: string, value: unknown, fallback: number): number => {
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new RangeError(`keyspace option ${name} must be a positive number, got ${String(value)}`)
    return value
  }
  const partitions = o.partitions ?? 64
  const replication = o.replication ?? 3
  // Validated again by tableSpec; here so the error names the option.
  tableSpec(partitions, replication)
  const minReplicas = positive('minReplicas', o.minReplicas, 2)
  if (!Number.isInteger(minReplicas)) throw new RangeError('keyspace option minReplicas must be an integer')
  const maxParallelMoves = positive('maxParallelMoves', o.maxParallelMoves, 4)
  if (!Number.isInteger(maxParallelMoves)) throw new RangeError('keyspace option maxParallelMoves must be an integer')
  return {
    name: o.name ?? 'keyspace',
    partitions,
    replication,
    minReplicas,
    requestTimeoutMs: positive('requestTimeoutMs', o.requestTimeoutMs, 10_000),
    maxParallelMoves,
    drainTimeoutMs: positive('drainTimeoutMs', o.drainTimeoutMs, 30_000),
    abandonAfterMs: positive('abandonAfterMs', o.abandonAfterMs, 5000),
    lostAfterMs: o.lostAfterMs === Infinity ? Infinity : positive('lostAfterMs', o.lostAfterMs, 60_000)
  }
}

type Components = Parameters<ServiceDefinition<object, KeyspaceNeeds>['create']>[0]

/** The least time a participant the table does not list stays in a partition's group (see handoff.ts). */
const STRAY_AFTER_MS = 30_000

/** Answers to a remote peer leave this much after the owner's own deadline. */
const CALL_MARGIN_MS = 500

function createKeyspace<K, I, O, S> (app: KeyspaceOptions<K, I, O, S>, settings: Settings, components: Components): Keyspace<K, I, O, S> & ServiceInstance {
  const { self, cluster, log, clock, metrics, membership, groups, messaging, views } = components
  const keys = (app.keys ?? stringKeys) as KeyCodec<K>
  const codecs = {
    keys,
    input: (app.codecs?.input ?? jsonCodec) as Codec<I>,
    output: (app.codecs?.output ?? jsonCodec) as Codec<O>,
    state: (app.codecs?.state ?? jsonCodec) as Codec<S>
  }
  // One spec object: the group folds with it and plans run its join and unjoin.
  const spec = tableSpec(settings.partitions, settings.replication)
  const tableGroup = groups.clusterWide('table', { spec, codecs: tableCodecs, acknowledgeAtOnce: true }) // requests wait for a peer's table to settle
  const table = new TableView(tableGroup, clock)
  const partitionGroups = new PartitionGroups<K, I, O, S>(groups, { spec: partitionSpec(app, codecs), codecs: partitionCodecs(app, codecs) })
  const counters = newKeyspaceCounters()
  const requestChannel = messaging.channel('request', { request: requestCodec, reply: requestReplyCodec })
  const searchChannel = messaging.channel('search', { request: searchCodec, reply: searchReplyCodec })
  const parts = { self, clock, log, table, counters }
  let phase: 'created' | 'running' | 'stopped' = 'created'
  const owner: Owner<K, I, O, S> = new Owner({ ...parts, groups: partitionGroups, keys, input: codecs.input, output: codecs.output, limits: DEFAULT_DECODE_LIMITS, minReplicas: settings.minReplicas, idle: () => { handoff.idle() } })
  const handoff: Handoff<K, I, O, S> = new Handoff({ ...parts, groups: partitionGroups, membership, inFlight: (p, g) => owner.inFlight(p, g) }, {
    maxParallelMoves: settings.maxParallelMoves,
    abandonAfterMs: settings.abandonAfterMs,
    lostAfterMs: settings.lostAfterMs,
    recheckMs: 250,
    transferTimeoutMs: 10_000,
    // Longer than a released replica's drain (its requests in flight end within their deadline).
    strayAfterMs: Math.max(STRAY_AFTER_MS, 2 * settings.requestTimeoutMs)
  })
  const router = new Router({
    ...parts,
    send: async (peer, message, timeoutMs, signal) => await requestChannel.call(peer, message, { timeoutMs: timeoutMs + CALL_MARGIN_MS, ...(signal !== undefined ? { signal } : {}) }),
    local: async (message) => await owner.request(message),
    isMember: (peer) => membership.members().includes(peer),
    onMembership: (listener) => membership.subscribe(listener)
  })
  const fingerprint = cursorFingerprint(cluster, settings.name)
  const listeners = new Set<(event: PartitionEvent) => void>()
  const removers: Array<() => void> = []
  let seen: KeyspaceTable | undefined
  let lost = 0

  const onTable = (next: KeyspaceTable): void => {
    const before = seen
    seen = next
    if (before === undefined) return
    lost += lostBetween(before, next)
    if (listeners.size === 0) return
    for (const change of tableChanges(before, next)) {
      for (const l of [...listeners]) {
        try { l(change) } catch (err) { log.error('a partition event listener threw: %s', err) }
      }
    }
  }

  const keyBytesOf = (key: K): Uint8Array => {
    let bytes: Uint8Array
    try {
      bytes = keys.toBytes(key)
    } catch (err) {
      throw new TypeError(`key: ${(err as Error).message}`, { cause: err })
    }
    if (!(bytes instanceof Uint8Array)) throw new TypeError('key: the key codec did not return a Uint8Array')
    if (bytes.length > MAX_KEY_BYTES) throw new RangeError(`key: ${bytes.length} bytes, more than the ${MAX_KEY_BYTES} a key may have`)
    return bytes
  }
  const partitionCount = (): number => table.current()?.partitions ?? settings.partitions
  /** The partition of `key`, whose bytes are `bytes`. */
  const partitionOfKey = (key: K, bytes: Uint8Array): number =>
    partitionOfBytes(app.partitionKey === undefined ? bytes : partitionKeyBytes(app.partitionKey, key), partitionCount())

  const observe = registerKeyspaceMetrics(metrics.registry, { name: settings.name, self, table: () => table.current(), counters, handoff: () => handoff.progress(), lost: () => lost })
  const heldKeys = (partition: number, generation: number): { held: boolean, keys: number | null } => {
    const g = partitionGroups.get(partition, generation)
    return g.held() ? { held: true, keys: g.readState().projected.size } : { held: false, keys: null }
  }
  const plan = (change: MembershipChange): KeyspacePlan | RefusedPlan => {
    const c = change as Partial<MembershipChange> | null
    if (typeof c !== 'object' || c === null || (c.type !== 'join' && c.type !== 'leave') || typeof c.peer !== 'string' || c.peer === '') {
      throw new TypeError("change must be { type: 'join' | 'leave', peer: <peer id> }")
    }
    return planMembershipChange(spec, tableGroup.readState().projected, { type: c.type, peer: c.peer })
  }
  views.add('partitions', { title: `Keyspace ${settings.name}: partitions on this peer`, read: () => partitionsView(table.current(), self, heldKeys) })
  // The table's view also answers plans: the admin endpoint serves a view with a `plan`
  // function as GET /services/<name>/plan (its PlanningView, docs/SERVICES.md).
  const tableOperatorView: OperatorView & { plan: typeof plan } = { title: `Keyspace ${settings.name}: ownership table`, read: () => tableView(table.current(), lost), plan }
  views.add('table', tableOperatorView)
  views.add('handoffs', { title: `Keyspace ${settings.name}: handoffs on this peer`, read: () => handoffsView(handoff.progress()) })

  return {
    start () {
      table.start()
      seen = table.current()
      removers.push(table.subscribe(onTable))
      removers.push(requestChannel.handle(async (message) => await owner.request(message)))
      removers.push(searchChannel.handle(async (message) => await owner.search(message)))
      handoff.start()
      phase = 'running'
      const t = table.current()
      if (t !== undefined && (t.partitions !== settings.partitions || t.replication !== settings.replication)) {
        log.error('this peer asks for %d partitions and %d replicas, the cluster\'s table has %d and %d: the table wins', settings.partitions, settings.replication, t.partitions, t.replication)
      }
    },

    async stop (context: ServiceStopContext) {
      if (phase !== 'running') { phase = 'stopped'; return }
      if (context.leaving) await drain().catch(err => { log('draining before the stop: %s', err) })
      phase = 'stopped'
      handoff.stop()
      for (const r of removers.splice(0)) r()
      table.stop()
    },

    async request (key: K, input: I, options: RequestOptions = {}): Promise<O> {
      if (phase === 'stopped') throw new StoppedError('the keyspace is stopped')
      const { consistency = 'agreed', timeoutMs = settings.requestTimeoutMs, signal } = checkRequestOptions(options)
      const key_ = keyBytesOf(key)
      const partition = partitionOfKey(key, key_)
      let input_: Uint8Array
      try {
        input_ = encodeWith(codecs.input, input)
      } catch (err) {
        throw new TypeError(`input: the input codec cannot encode it: ${(err as Error).message}`, { cause: err })
      }
      const started = clock.now()
      try {
        const output = await router.route(partition, key_, input_, consistency, timeoutMs, signal)
        let decoded: O
        try {
          decoded = decodeWith(codecs.output, output, DEFAULT_DECODE_LIMITS)
        } catch (err) {
          throw new BadRequestError(`the owner's output does not decode: ${(err as Error).message}`)
        }
        observe('ok', (clock.now() - started) / 1000)
        return decoded
      } catch (err) {
        counters.failed++
        const outcome = outcomeOf(err)
        if (outcome === 'timeout') counters.timeouts++
        observe(outcome, (clock.now() - started) / 1000)
        throw err
      }
    },

    search (from?: SearchFrom, options: SearchOptions = {}): AsyncIterableIterator<IndexRecord<K>> {
      if (phase === 'stopped') throw new StoppedError('the keyspace is stopped')
      let start: { tag: string, key: Uint8Array | undefined } | undefined
      if (from === undefined) start = undefined
      else if (typeof from === 'string') start = { tag: from, key: undefined }
      else if (typeof from === 'object' && from !== null && 'after' in from) start = decodeCursor(fingerprint, from.after)
      else throw new TypeError('search(from): from must be a tag (string), { after: cursor } or nothing')
      if (typeof options !== 'object' || options === null) throw new TypeError('search options must be an object')
      if (options.pageSize !== undefined && (!Number.isInteger(options.pageSize) || options.pageSize < 1)) throw new RangeError('search option pageSize must be a positive integer')
      return new Scroll<K>({
        ...parts,
        keys,
        fingerprint,
        stopped: () => phase === 'stopped',
        send: async (peer, message, timeoutMs, signal) => await searchChannel.call(peer, message, { timeoutMs: timeoutMs + CALL_MARGIN_MS, ...(signal !== undefined ? { signal } : {}) }),
        local: async (message) => await owner.search(message)
      }, start, options)
    },

    partitionOf: (key: K) => partitionOfKey(key, keyBytesOf(key)),

    table: () => table.current(),

    readLocal (key: K): LocalRead<S> {
      const bytes = keyBytesOf(key)
      const t = table.current()
      const partition = partitionOfKey(key, bytes)
      const a = t?.assignments[partition]
      const g = a === undefined ? undefined : partitionGroups.get(partition, a.generation)
      if (g === undefined || !g.held()) return { partition, held: false }
      const state = g.readState()
      const keyId = keyIdOf(bytes)
      const init = app.init()
      return { partition, held: true, infimum: state.infimum.get(keyId)?.state ?? init, projected: state.projected.get(keyId)?.state ?? init }
    },

    stats (): KeyspaceStats {
      const t = table.current()
      let keyCount = 0
      if (t !== undefined) {
        t.assignments.forEach((a, p) => {
          if (!a.owners.includes(self)) return
          const g = partitionGroups.get(p, a.generation)
          if (g.held()) keyCount += g.readState().projected.size
        })
      }
      return {
        tableVersion: t?.version ?? 0,
        partitions: t?.partitions ?? settings.partitions,
        replication: t?.replication ?? settings.replication,
        members: t?.members.length ?? 0,
        owned: countOwned(t, self),
        movesInFlight: t === undefined ? 0 : movesInFlight(t),
        keys: keyCount,
        handoff: handoff.progress(),
        requests: { ...counters }
      }
    },

    onPartitionEvent (listener: (event: PartitionEvent) => void): () => void {
      if (typeof listener !== 'function') throw new TypeError('listener must be a function')
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },

    async whenSettled (options: WaitOptions = {}): Promise<void> {
      await table.until(t => movesInFlight(t) === 0 && t.assignments.every(a => a.owners.length > 0 && a.founder === null), options.timeoutMs ?? 30_000, options.signal)
    },

    plan
  }

  /** A graceful stop: hand every partition off (bounded by `drainTimeoutMs`). */
  async function drain (): Promise<void> {
    const t = table.current()
    if (t === undefined || membership.members().length <= 1 || !handoff.holdsAnything(t)) return
    const started = clock.now()
    log('draining: handing %d partition(s) off before stopping', countOwned(t, self))
    await tableGroup.applyConsistent({ type: 'drain', peer: self }, { timeoutMs: settings.drainTimeoutMs })
    const left = (): number => Math.max(1, settings.drainTimeoutMs - (clock.now() - started))
    // Done when nothing is left here, or when every member is leaving too (nobody to hand off to).
    const done = (t: KeyspaceTable): boolean => t.members.every(m => t.draining.includes(m)) || !t.assignments.some(a => a.owners.includes(self) || a.incoming.includes(self))
    const final = await table.until(done, left())
    if (final.members.every(m => final.draining.includes(m))) { log('draining: every member is stopping, nobody to hand off to'); return }
    await handoff.whenReleased(left())
    log('drained in %d ms', clock.now() - started)
  }
}

const utf8 = new TextEncoder()

/** What `partitionKey` gives for `key`, as bytes to hash. */
function partitionKeyBytes<K> (partitionKey: (key: K) => string | Uint8Array, key: K): Uint8Array {
  let value: unknown
  try {
    value = partitionKey(key)
  } catch (err) {
    throw new TypeError(`key: partitionKey threw: ${(err as Error).message}`, { cause: err })
  }
  if (typeof value === 'string') return utf8.encode(value)
  if (value instanceof Uint8Array) return value
  throw new TypeError(`key: partitionKey must return a string or a Uint8Array, got ${value === null ? 'null' : typeof value}`)
}

/** How the histogram labels a request that failed with `err`. */
function outcomeOf (err: unknown): RequestOutcome {
  switch ((err as Error | undefined)?.name) {
    case 'HandlerError': return 'handler_error'
    case 'RequestTimeoutError': return 'timeout'
    case 'PartitionUnavailableError': return 'unavailable'
    case 'BadRequestError': return 'bad_request'
    case 'AbortError': return 'aborted'
    case 'StoppedError': return 'stopped'
    default: return 'error'
  }
}

function countOwned (table: KeyspaceTable | undefined, self: string): number {
  return table === undefined ? 0 : table.assignments.reduce((n, a) => n + (a.owners.includes(self) ? 1 : 0), 0)
}

function checkRequestOptions (options: RequestOptions): RequestOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('request options must be an object')
  const { consistency, timeoutMs } = options
  if (consistency !== undefined && consistency !== 'agreed' && consistency !== 'one') throw new TypeError(`options.consistency must be 'agreed' or 'one', got ${JSON.stringify(consistency)}`)
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !(timeoutMs > 0))) throw new TypeError('options.timeoutMs must be a positive number')
  return options
}
