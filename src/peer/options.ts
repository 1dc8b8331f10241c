/**
 * The public contract of one Legion peer: start-up options, the runtime handle and the state
 * it exposes; its statistics are in `stats.ts`, re-exported here. The implementation is
 * `peer.ts` and the parts it wires (`parts.ts`).
 *
 * @module
 */
import type { PrivateKey } from '@libp2p/interface'
import type { FoldCodecs } from '../codec/eventfold.js'
import type { IsJson } from '../codec/json.js'
import type { EventId, EventSpec, Participant } from '../eventfold/types.js'
import type { PeerStorage } from '../storage/storage.js'
import type { KeyValueStore } from '../storage/key-value.js'
import type { BroadcallResult, ChannelHandle, MessageChannel, MessageContext } from './messaging.js'
import type { ServiceInstances, ServiceMap } from './services.js'
import type { LegionCounters, LegionStats } from './stats.js'

export type { BrokenLink, DivergentPeer, LegionCounters, LegionStats } from './stats.js'

/**
 * How a peer starts:
 * - `new`: the only participant of a fresh cluster. Refused with `ExistingStateError` when
 *   `storage` already holds a peer, unless `overwrite` says to replace it (that discards the
 *   saved state and identity for good).
 * - `join`: asks an existing peer (the first of `peers` that answers) to admit it. A peer that
 *   restarts with the same private key joins the same way and replaces its earlier self.
 * - `recover`: resumes as the participant it was, from what it saved in `storage`, then
 *   reconnects through `peers`.
 * - `auto`: what a service restarted by its supervisor wants: `recover` when `storage` holds a
 *   peer of this cluster, otherwise `join` through `peers`, or, with `found: true` and no peer
 *   answering, `new`.
 */
export type StartupMode =
  | {
    /** Found a new cluster. */
    readonly mode: 'new'
    /**
     * Replace whatever `storage` holds (another peer's identity and state, even of another
     * cluster). Without it, a storage that holds a peer is refused.
     * @default false
     */
    readonly overwrite?: boolean
  }
  | {
    /** Join an existing cluster. */
    readonly mode: 'join'
    /** Multiaddrs of existing peers (ending in `/p2p/<peerId>`), tried in order. */
    readonly peers: readonly string[]
  }
  | {
    /** Resume from storage as the same participant. */
    readonly mode: 'recover'
    /** Multiaddrs of peers to reconnect through. */
    readonly peers?: readonly string[]
  }
  | {
    /** Recover if `storage` holds this peer, else join (or found). */
    readonly mode: 'auto'
    /** Multiaddrs of peers to join (or reconnect) through. */
    readonly peers?: readonly string[]
    /**
     * When nothing is saved and no peer of `peers` admits this one, found a new cluster
     * instead of failing with `JoinError`. Only one peer of a cluster should say so.
     * @default false
     */
    readonly found?: boolean
  }

/**
 * Handler of incoming `call`s on the default byte channel: returns the reply bytes. A thrown
 * error reaches the caller as a `RemoteError`; a reply that is not a `Uint8Array` as a
 * `BadReplyError`. `context` says who called (this peer itself for a call to itself).
 */
export type CallHandler = (from: Participant, payload: Uint8Array, context: MessageContext) => Promise<Uint8Array> | Uint8Array
/** Handler of incoming `cast`s and `broadcast`s on the default byte channel. A throw is logged. */
export type CastHandler = (from: Participant, payload: Uint8Array, context: MessageContext) => void

/** How state changes travel. */
export interface PropagationOptions {
  /**
   * `push`: every change is published (gossipsub) at the end of the tick it happened in, and
   * peers pull a sync from a random participant every `intervalMs` to repair losses.
   * `periodic`: om-legion's own strategy, offered as a baseline: nothing is pushed; every
   * `intervalMs` each peer sends its diff (or whole fold) to one random participant.
   * @default 'push'
   */
  mode?: 'push' | 'periodic'
  /**
   * Anti-entropy period (push) or send period (periodic), in milliseconds.
   * @default 1000
   */
  intervalMs?: number
  /**
   * In push mode, clusters of at most this many participants send each batch directly to
   * every participant over reused streams; larger ones publish it once on gossipsub, which
   * fans it out. Direct sends win on both counts measured (docs/BENCHMARKS.md): a gossipsub
   * round trip costs 5-11 ms on loopback against 0.1 ms for a request on a reused stream,
   * and gossipsub's mesh delivers each batch several times over (every copy encrypted and
   * its signature checked), so a 2,000-event burst among 32 in-process peers converged in
   * 5.4 s directly against 15.4 s through gossipsub. Gossipsub only spares the sender's
   * uplink, which matters beyond a few dozen peers.
   * @default 64
   */
  directFanout?: number
  /**
   * Send the consistent output of every event this peer folds to the event's creator, so
   * `applyConsistent` there resolves as early as possible even if the creator skipped the
   * event through a full merge.
   * @default true
   */
  forwardOutputs?: boolean
  /**
   * In push mode, who a replica sends its acknowledgement to after it took other participants'
   * events. `everyone`: the participants that may be waiting for it at once, every other one
   * within {@link acknowledgeDelayMs}, so every replica settles an event at most that long
   * after one round trip, at up to `(n-1) + (n-1)²` frames per event (fewer as
   * acknowledgements share messages). `creators`: only the participants that may be waiting
   * for it (the creators of the events it took, and of those ordered after them), and everyone
   * at the next anti-entropy round: `2(n-1)` frames per event, the creator settles its event
   * after one round trip, and every other replica up to `intervalMs` later (docs/ARCHITECTURE.md,
   * "How data flows"). Either way acknowledgements are version vectors, and a replica takes one
   * only once it holds its sender's log as far as the sender did.
   * @default 'everyone'
   */
  acknowledge?: 'everyone' | 'creators'
  /**
   * With `acknowledge: 'everyone'`: how long a replica's acknowledgement owed to participants
   * that are not waiting for it may wait for a message this peer sends them anyway (another
   * acknowledgement, its own events, another group's batch), in milliseconds. The creators of
   * the events it took (who may be waiting in `applyConsistent`) get it at once whatever this
   * says. A delay lets one message carry the acknowledgements of several events, at the price
   * of the other replicas settling those events up to this much later. `0` sends to everyone
   * at once; so do groups defined with `acknowledgeAtOnce` (a service's registry or table).
   * @default 50
   */
  acknowledgeDelayMs?: number
}

/**
 * Automatic ejection of participants a majority suspects. See {@link FailureDetectionOptions.autoEject}.
 */
export interface AutoEjectOptions {
  /**
   * Of the participants that suspect a peer, the one with the smallest id ejects it at once;
   * any other waits this long, and ejects only if the peer is still ejectable then (the first
   * one may have failed too). Concurrent ejections are harmless, only redundant.
   * @default 2 × `heartbeatIntervalMs`
   */
  backupDelayMs?: number
  /**
   * Count *stuck* participants (alive, but not acknowledging for `stuckAfterMs`) as suspected
   * for ejection, like silent ones. `false`: report them in `stats().stuck` only.
   * @default true
   */
  stuck?: boolean
  /**
   * How long an automatic ejection waits for the other participants to merge the UnJoin
   * (as {@link Legion.eject}'s `timeoutMs`).
   * @default 10000
   */
  timeoutMs?: number
}

/**
 * How peers notice silent participants, eject them, and come back after being ejected.
 * The rules are in docs/ARCHITECTURE.md, "Failure detection and automatic ejection".
 */
export interface FailureDetectionOptions {
  /**
   * Every this many milliseconds a peer sends a heartbeat to every other participant,
   * listing the participants it suspects, and re-evaluates its own suspicions.
   * @default 1000
   */
  heartbeatIntervalMs?: number
  /**
   * A participant this peer has heard nothing from (no heartbeat, diff, sync, answer or any
   * other message) for longer than this is *suspected* (compare Akka's acceptable heartbeat
   * pause). Long enough for the peer's last messages to have drained, which ejection
   * assumes; raise it for peers that pause for long (GC, overload). Time this peer itself
   * could not listen (its own event loop stalled: its timers ran 50 ms or more late) does not
   * count as anyone's silence.
   * @default 3000
   */
  suspectAfterMs?: number
  /**
   * A participant that is behind in some group (an outstanding event there waits for its
   * acknowledgement) and whose acknowledgements there have not moved past the first such event
   * for this long is *stuck*: it holds the fold back while answering heartbeats (it cannot
   * decode what it is sent, or an event failed only there, or its acknowledgements do not reach
   * this peer). Stuck participants are reported in `stats().stuck` and, unless
   * `autoEject.stuck` is false, count as suspected for automatic ejection. A peer that others
   * report stuck says why in its log and in `stats().health`.
   * @default 10000
   */
  stuckAfterMs?: number
  /**
   * Eject a participant once a strict majority of the infimum participants (this peer
   * included) suspects it; `false`: never eject automatically (call {@link Legion.eject}).
   * A minority never ejects anyone, and an automatic ejection stands in for the ejected peer
   * only while a strict majority of the participants remains, so a partition cannot split
   * the cluster in two; with two participants a majority is both, so the survivor of a pair
   * never ejects the other.
   * @default {} (on)
   */
  autoEject?: false | AutoEjectOptions
  /**
   * When this peer learns that it was ejected while alive (a participant refuses its
   * heartbeat as a non-participant after having acknowledged its Join, or its own UnJoin
   * reaches it), ask a reachable participant to admit it again, with the same peer id, as a
   * fresh participant. Its pending `applyConsistent` calls reject with `EjectedError` either
   * way. `false`: stay out; `applyFast` and `applyConsistent` then throw `EjectedError`.
   * @default true
   */
  rejoin?: boolean
}

/**
 * Options of `startLegion`: {@link LegionBaseOptions} and the codecs. `codecs` may be left out
 * only when the event, state and output types are all JSON values ({@link IsJson}), which the
 * default `jsonCodec` can carry; otherwise the types require them, so a `Map` or a class in the
 * state fails to compile instead of failing when a second peer joins.
 *
 * @typeParam E - event type
 * @typeParam S - state type
 * @typeParam O - output type
 * @typeParam Sv - the services, by name
 */
export type LegionOptions<E, S, O, Sv extends ServiceMap = Record<never, never>> = LegionBaseOptions<E, S, O, Sv> & CodecsOption<E, S, O>

/** The `codecs` option: optional for JSON types, required otherwise (see {@link LegionOptions}). */
export type CodecsOption<E, S, O> = [IsJson<E>, IsJson<S>, IsJson<O>] extends [true, true, true]
  ? {
      /**
       * How events, states and outputs travel and persist.
       * @default jsonCodec for all three
       */
      codecs?: FoldCodecs<E, S, O>
    }
  : {
      /** How events, states and outputs travel and persist (required: the types are not all JSON values). */
      codecs: FoldCodecs<E, S, O>
    }

/** Options of `startLegion` other than `codecs` (see {@link LegionOptions}). */
export interface LegionBaseOptions<E, S, O, Sv extends ServiceMap = Record<never, never>> {
  /** The cluster's name: peers of different clusters never exchange state. */
  cluster: string
  /** What events do to the shared state. */
  spec: EventSpec<E, S, O>
  /**
   * Services to run on this peer (built before it joins, started once it has, stopped in
   * reverse order before it leaves), by the name `Legion.services` gives them under. Every
   * peer of a cluster runs the same services. See `defineService` and docs/SERVICES.md.
   * @default none
   */
  services?: Sv
  /** New cluster, join, or recover. */
  startup: StartupMode
  /**
   * Where the peer persists its identity (private key) and its groups. Everything the peer
   * acknowledges is saved before it leaves the process. A {@link KeyValueStore}
   * (`lmdbKeyValueStore(dir)`, `memoryKeyValueStore()`) saves only what changed; a
   * single-record {@link PeerStorage} (`lmdbStorage`, `memoryStorage`) rewrites everything on
   * every save and suits small states only. The peer closes the storage when it stops.
   * Without storage the peer keeps nothing and cannot recover.
   * @default none
   */
  storage?: KeyValueStore | PeerStorage
  /**
   * Multiaddrs to listen on.
   * @default ['/ip4/127.0.0.1/tcp/0'] (tcp) or a unique memory address (memory)
   */
  listen?: string[]
  /**
   * libp2p transport: TCP, or in-process memory for tests and large simulations.
   * @default 'tcp'
   */
  transport?: 'tcp' | 'memory'
  /**
   * The peer's identity; its peer id is the participant id. In `recover` mode the saved key
   * is used and this must be absent or equal.
   * @default the saved key (recover), else a new Ed25519 key
   */
  privateKey?: PrivateKey
  /**
   * Handler of incoming `call`s.
   * @default refuse every call with a `RemoteError`
   */
  onCall?: CallHandler
  /**
   * Handler of incoming `cast`s and `broadcast`s.
   * @default ignore them
   */
  onCast?: CastHandler
  /** Propagation settings. */
  propagation?: PropagationOptions
  /**
   * Failure detection (heartbeats, suspicion), automatic ejection by a majority, and
   * rejoining after an ejection.
   * @default heartbeats every second, suspicion after 3 s, automatic ejection and rejoin on
   */
  failureDetection?: FailureDetectionOptions
  /**
   * Deep-freeze states so that an event spec that mutates its input fails loudly.
   * @default true unless NODE_ENV is 'production'
   */
  freezeStates?: boolean
  /**
   * Largest message accepted or sent, in bytes (frames and gossip).
   * @default 4 MiB
   */
  maxMessageBytes?: number
  /**
   * How long start-up waits for a join answer, per peer tried.
   * @default 10000
   */
  joinTimeoutMs?: number
  /**
   * The cluster secret: 32 random bytes shared by every peer of the cluster (generate them
   * once, e.g. `crypto.getRandomValues(new Uint8Array(32))`, and distribute them like a
   * password). The peer then runs a libp2p private network: a process without the same
   * secret cannot complete a connection to it, so it cannot join, gossip or send anything.
   * Its attempts are counted in {@link LegionCounters.refusedConnections}; a joiner without
   * the right secret fails with `JoinError`. Every peer of a cluster must use the same
   * secret, or all none. See docs/PROTOCOL.md, "Security".
   * @default none: any libp2p node that knows an address may connect (and join)
   */
  clusterSecret?: Uint8Array
  /**
   * Peer ids allowed to connect, as a list or a predicate, enforced on every connection
   * (both directions) once Noise has proven the remote peer id. Every peer that will join
   * must be allowed by every participant, so a predicate backed by a list the application
   * updates suits a cluster that grows. A predicate must be fast and must not throw (a
   * throw denies). Refusals are counted in {@link LegionCounters.refusedConnections}.
   * A predicate may change its answer: the runtime applies it to every message too, so a peer
   * it starts to deny is cut off at once (its messages and answers are dropped, counted in
   * {@link LegionCounters.droppedDenied}, and the runtime sends it nothing of its own) and its connections are
   * closed within one heartbeat interval. The partition test uses this as its switch.
   * @default none: every peer id is allowed
   */
  allowPeers?: readonly string[] | ((peerId: string) => boolean)
}

/** A snapshot of the shared state as this peer sees it. */
export interface ClusterState<S> {
  /** The projected value: the infimum with every outstanding event applied (what `applyFast` sees). */
  readonly projected: S
  /** The settled value, identical on every peer at the same infimum id. */
  readonly infimum: S
  /** The id of the last event folded into the infimum. */
  readonly infimumId: EventId
  /** The participants as of the infimum, sorted. */
  readonly participants: readonly Participant[]
  /** The participants once every outstanding Join and UnJoin has taken effect, sorted. */
  readonly projectedParticipants: readonly Participant[]
  /** Number of events not yet folded. */
  readonly outstanding: number
  /**
   * Whether this peer's own Join has folded here and no readmission of it (an UnJoin of it,
   * then a Join, both outstanding) is pending. From then on no event can fold without this
   * peer's acknowledgement, so this replica holds everything the others settled since; before,
   * its infimum may list this peer only through an earlier membership.
   */
  readonly joined: boolean
}

/** Options of anything that waits. */
export interface WaitOptions {
  /** Reject with a timeout error after this many milliseconds. */
  timeoutMs?: number
  /** Reject with an `AbortError` when this signal fires. */
  signal?: AbortSignal
}

/** What {@link Legion.eject} and a leaving {@link Legion.stop} report. */
export interface Dissemination {
  /** Participants that merged the change. */
  readonly reached: readonly Participant[]
  /** Participants that could not be reached in time. */
  readonly unreachable: readonly Participant[]
}

/**
 * One running Legion peer.
 *
 * @typeParam E - event type
 * @typeParam S - state type
 * @typeParam O - output type
 * @typeParam Sv - the services it runs, by name
 */
export interface Legion<E, S, O, Sv extends ServiceMap = Record<never, never>> {
  /** This peer's participant id (its libp2p peer id). */
  readonly self: Participant
  /** The cluster's name. */
  readonly clusterName: string
  /** The services this peer runs, by the names given in `options.services`. */
  readonly services: ServiceInstances<Sv>
  /** Where other peers can reach this one. */
  multiaddrs(): string[]
  /**
   * Applies an event and returns its output on the projected value at once. The output may
   * differ from the consistent one if an earlier event is still on its way. Throws
   * `EjectedError` while this peer knows it was ejected and is not admitted again yet.
   */
  applyFast(event: E): O
  /**
   * Applies an event and resolves with its output once it has folded into the infimum, that
   * is once every current participant has acknowledged it. Rejects with
   * `ConsistencyTimeoutError` (default timeout: 30 s) or `AbortError`; the event then stays
   * applied and may still fold later. Rejects with `EjectedError` if this peer learns that it
   * was ejected before the event folded here: the event's outcome is then unknown (see
   * `EjectedError`).
   */
  applyConsistent(event: E, options?: WaitOptions): Promise<O>
  /** The state as this peer sees it now. */
  readState(): ClusterState<S>
  /** Calls `listener` after every batch of changes; returns the unsubscribe function. */
  subscribe(listener: (state: ClusterState<S>) => void): () => void
  /**
   * Every change, as an async iterator. A slow consumer sees the latest state, not every
   * intermediate one. Ends when the runtime stops or `signal` fires.
   */
  changes(options?: { signal?: AbortSignal }): AsyncIterableIterator<ClusterState<S>>
  /** Sends bytes to a peer (this one included) without waiting for an answer. */
  cast(peer: Participant, payload: Uint8Array): Promise<void>
  /**
   * Sends bytes to a peer (this one included: dispatched locally) and resolves with its
   * reply (default timeout: 10 s). Rejects with `RemoteError` (the handler threw),
   * `NoHandlerError`, `BadReplyError`, `TimeoutError`, `AbortError` or `PeerUnreachableError`.
   */
  call(peer: Participant, payload: Uint8Array, options?: WaitOptions): Promise<Uint8Array>
  /** Sends bytes to every other participant without waiting for answers. */
  broadcast(payload: Uint8Array): Promise<void>
  /**
   * Calls every other participant; resolves with what each one did: replied, failed in its
   * handler, timed out, or could not be reached (default timeout: 10 s).
   */
  broadcall(payload: Uint8Array, options?: WaitOptions): Promise<Map<Participant, BroadcallResult<Uint8Array>>>
  /** Typed messaging on a named channel (see `messageChannel`). */
  channel<Req, Rep>(channel: MessageChannel<Req, Rep>): ChannelHandle<Req, Rep>
  /**
   * Removes `peer` from the cluster on its behalf (an UnJoin acknowledged for it, in every
   * group it takes part in), and resolves once that has been merged by every reachable
   * participant. `timeoutMs` (default 10 s) bounds the whole: saving the UnJoin here, then
   * pushing it; participants that had not merged it by then are listed as unreachable (they
   * still learn of it through anti-entropy). An abort of `signal` resolves the same way.
   * Unlike an automatic ejection, it needs no majority: the survivor of a pair, or the side
   * of an even split the operator picks, goes on (it also removes a peer whose automatic
   * ejection waits for a majority).
   */
  eject(peer: Participant, options?: WaitOptions): Promise<Dissemination>
  /** Counters, divergence, suspicion and health. */
  stats(): LegionStats
  /**
   * Stops the services (in reverse order), leaves the cluster (unless `leave: false`) and
   * closes everything. Pending `applyConsistent` calls reject with `StoppedError`. Leaving
   * saves this peer's UnJoin and pushes it to the others; `timeoutMs` (default 5 s) bounds
   * both, and at its deadline the peer goes on stopping whether or not everyone merged it.
   */
  stop(options?: { leave?: boolean, timeoutMs?: number }): Promise<void>
}
