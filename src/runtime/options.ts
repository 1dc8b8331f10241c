/**
 * The public contract of one Legion peer: start-up options, the runtime handle, the state
 * it exposes and its statistics. Implementation lives in `runtime.ts`.
 *
 * @module
 */
import type { PrivateKey } from '@libp2p/interface'
import type { FoldCodecs } from '../codec/eventfold.js'
import type { EventId, EventSpec, Participant } from '../eventfold/types.js'
import type { PeerStorage } from '../storage/storage.js'

/**
 * How a peer starts:
 * - `new`: the only participant of a fresh cluster.
 * - `join`: asks an existing peer (the first of `peers` that answers) to admit it. A peer that
 *   restarts with the same private key joins the same way and replaces its earlier self.
 * - `recover`: resumes as the participant it was, from what it saved in `storage`, then
 *   reconnects through `peers`.
 */
export type StartupMode =
  | {
    /** Found a new cluster. */
    readonly mode: 'new'
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

/** Handler of incoming `call`s: returns the reply bytes. A thrown error reaches the caller as a `RemoteError`. */
export type CallHandler = (from: Participant, payload: Uint8Array) => Promise<Uint8Array> | Uint8Array
/** Handler of incoming `cast`s and `broadcast`s. */
export type CastHandler = (from: Participant, payload: Uint8Array) => void

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
   * fans it out. Measured on loopback: a gossipsub round trip costs 5-11 ms, a request on a
   * reused stream 0.1 ms (docs/BENCHMARKS.md).
   * @default 16
   */
  directFanout?: number
  /**
   * Send the consistent output of every event this peer folds to the event's creator, so
   * `applyConsistent` there resolves as early as possible even if the creator skipped the
   * event through a full merge.
   * @default true
   */
  forwardOutputs?: boolean
}

/** Options of {@link startLegion}. */
export interface LegionOptions<E, S, O> {
  /** The cluster's name: peers of different clusters never exchange state. */
  cluster: string
  /** What events do to the shared state. */
  spec: EventSpec<E, S, O>
  /**
   * How events, states and outputs travel and persist.
   * @default the JSON-like {@link jsonCodec} for all three (only sound for JSON-like types)
   */
  codecs?: FoldCodecs<E, S, O>
  /** New cluster, join, or recover. */
  startup: StartupMode
  /**
   * Where the peer persists its fold and private key. Everything the peer acknowledges is
   * saved before it leaves the process. Without storage the peer keeps nothing and cannot
   * recover.
   * @default none
   */
  storage?: PeerStorage
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
}

/** A participant that has not acknowledged the newest event. */
export interface DivergentPeer {
  /** The participant. */
  readonly peer: Participant
  /** The newest event it is known to have acknowledged. */
  readonly latestAcknowledged: EventId
  /** Milliseconds since its acknowledgements last moved forward (as seen here). */
  readonly sinceProgressMs: number
}

/** Counters of one peer since it started. */
export interface LegionCounters {
  /** Events applied here (applyFast + applyConsistent). */
  eventsApplied: number
  /** Consistent outputs produced here. */
  eventsFolded: number
  /** Diffs merged. */
  diffMerges: number
  /** Whole folds merged. */
  fullMerges: number
  /** Diffs refused as too new or too sparse (each followed by a sync). */
  mergeRefusals: number
  /** Sync requests this peer sent. */
  syncsRequested: number
  /** Sync requests this peer answered. */
  syncsServed: number
  /** Consistent outputs sent to their events' creators. */
  outputsForwarded: number
  /** Messages dropped because they could not be decoded. */
  droppedUndecodable: number
  /** Messages dropped because they belong to another cluster. */
  droppedWrongCluster: number
  /** Messages dropped because their sender is not a participant. */
  droppedNonParticipant: number
  /** Requests refused by the per-peer rate limit. */
  droppedRateLimited: number
  /** Frames dropped by the transport (oversized or malformed). */
  droppedFrames: number
  /** Bytes received (streams and gossip). */
  bytesIn: number
  /** Bytes sent (streams and gossip). */
  bytesOut: number
  /** Messages received (streams and gossip). */
  messagesIn: number
  /** Messages sent (streams and gossip). */
  messagesOut: number
}

/** What {@link Legion.stats} reports. */
export interface LegionStats {
  /** This peer. */
  readonly self: Participant
  /** Infimum participants. */
  readonly participants: number
  /** Events not yet folded. */
  readonly outstanding: number
  /** The infimum id. */
  readonly infimumId: EventId
  /** Peers that have not acknowledged the newest event. */
  readonly divergent: readonly DivergentPeer[]
  /** Counters since start. */
  readonly counters: Readonly<LegionCounters>
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
 */
export interface Legion<E, S, O> {
  /** This peer's participant id (its libp2p peer id). */
  readonly self: Participant
  /** The cluster's name. */
  readonly clusterName: string
  /** Where other peers can reach this one. */
  multiaddrs(): string[]
  /**
   * Applies an event and returns its output on the projected value at once. The output may
   * differ from the consistent one if an earlier event is still on its way.
   */
  applyFast(event: E): O
  /**
   * Applies an event and resolves with its output once it has folded into the infimum, that
   * is once every current participant has acknowledged it. Rejects with
   * `ConsistencyTimeoutError` (default timeout: 30 s) or `AbortError`; the event then stays
   * applied and may still fold later.
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
  /** Sends bytes to a peer without waiting for an answer. */
  cast(peer: Participant, payload: Uint8Array): Promise<void>
  /** Sends bytes to a peer and resolves with its reply (default timeout: 10 s). */
  call(peer: Participant, payload: Uint8Array, options?: WaitOptions): Promise<Uint8Array>
  /** Sends bytes to every other participant without waiting for answers. */
  broadcast(payload: Uint8Array): Promise<void>
  /**
   * Calls every other participant; resolves with each one's reply, or `undefined` for those
   * that did not answer in time (default timeout: 10 s).
   */
  broadcall(payload: Uint8Array, options?: WaitOptions): Promise<Map<Participant, Uint8Array | undefined>>
  /**
   * Removes `peer` from the cluster on its behalf (an UnJoin acknowledged for it), and
   * resolves once that has been merged by every reachable participant.
   */
  eject(peer: Participant, options?: WaitOptions): Promise<Dissemination>
  /** Counters and divergence. */
  stats(): LegionStats
  /**
   * Leaves the cluster (unless `leave: false`) and closes everything. Pending
   * `applyConsistent` calls reject with `StoppedError`.
   */
  stop(options?: { leave?: boolean, timeoutMs?: number }): Promise<void>
}
