/**
 * One run of a placed child on its host: what this peer does while the registry grants it the
 * child's name. It runs the child as the only worker of a one-child supervision tree of its own
 * (the single-peer layer, unchanged: event loop, restarts on the host within the child's
 * intensity, backoff, shutdown), answers the requests the holder endpoint brings, and hands the
 * server's saved state to the next host through the election's fenced checkpoint (a server
 * with `persistence` saves at `terminate`; the next `init`, on whichever peer, is given it).
 *
 * The run ends when the grant does (`stop`, called by the service when the signal fires), or by
 * itself: the local supervisor gave up, `init` failed (the child is `failed`), or a transient
 * server stopped normally (`finished`); the service then records that in the table.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { JsonValue } from '../codec/json.js'
import type { HolderContext } from '../discovery/api.js'
import { supervisor, worker } from '../supervision/child-spec.js'
import { describeThrown } from '../supervision/errors.js'
import type { ServerSpec } from '../supervision/server.js'
import type { StateStore } from '../supervision/state-store.js'
import { startSupervision, type SupervisionTree } from '../supervision/tree.js'
import type { Clock } from '../time/clock.js'
import type { ClusterChildInfo, ClusterSupervisionEvent } from './api.js'
import type { ChildRecord } from './children-spec.js'
import type { Waits } from './waiting.js'
import { errorToWire, type ChildReply, type ChildRequest } from './wire.js'

/** Replies kept per run for request ids seen again (a caller's retry reaching the same host). */
const REMEMBERED_REPLIES = 1024

/** What a run needs from the service. */
export interface PlacedRunComponents {
  /** The child as the settled table had it when the run began. */
  readonly record: ChildRecord
  /** Its server definition. */
  readonly server: ServerSpec<unknown, unknown, unknown>
  /** The grant: token, signal, checkpoint. */
  readonly context: HolderContext<JsonValue>
  /** Time. */
  readonly clock: Clock
  /** Chance, for backoff jitter. */
  readonly random: () => number
  /** The service's logger. */
  readonly log: Logger
  /** The service's waits (told of every change of the run). */
  readonly waits: Waits
  /** The service's event listener. */
  readonly emit: (event: ClusterSupervisionEvent) => void
  /** The child ended by itself on this host: finished or failed, and why. */
  readonly ended: (how: 'finished' | 'failed', reason: string) => void
}

type Phase =
  | { readonly kind: 'starting', readonly done: Promise<void> }
  | { readonly kind: 'running', readonly tree: SupervisionTree }
  | { readonly kind: 'stopping', readonly done: Promise<void> }
  | { readonly kind: 'stopped' }

/** One run of a placed child; see the module comment. */
export class PlacedRun {
  private phase: Phase
  private readonly replies = new Map<string, Promise<ChildReply>>()

  constructor (private readonly c: PlacedRunComponents) {
    this.phase = { kind: 'starting', done: this.start() }
  }

  /** The child's name. */
  get name (): string {
    return this.c.record.name
  }

  /** Whether it serves (or is about to). */
  get live (): boolean {
    return this.phase.kind === 'starting' || this.phase.kind === 'running'
  }

  /** The local server's status and restarts, while it runs. */
  local (): ClusterChildInfo['local'] {
    if (this.phase.kind !== 'running') return undefined
    const w = this.phase.tree.whichChildren()[0]
    return w === undefined ? undefined : { status: w.status, restarts: w.restarts }
  }

  private async start (): Promise<void> {
    const { record, server, context, clock, random, log } = this.c
    const l = record.local
    const child = worker(record.name, server, {
      restart: record.restart,
      shutdown: l.shutdown,
      significant: record.restart === 'transient',
      ...(l.startTimeoutMs !== null ? { startTimeoutMs: l.startTimeoutMs } : {})
    })
    const root = supervisor(`${record.name}/host`, {
      strategy: 'one_for_one',
      intensity: l.intensity,
      periodMs: l.periodMs,
      ...(l.backoff !== null ? { backoff: l.backoff } : {}),
      autoShutdown: record.restart === 'transient' ? 'any_significant' : 'never'
    }, [child])
    let tree: SupervisionTree
    try {
      tree = await startSupervision(root, {
        clock,
        random,
        queueCapacity: l.queueCapacity,
        stateStore: checkpointStore(context, log),
        onEvent: (event) => { this.c.emit({ type: 'local', child: record.name, event }) }
      })
    } catch (err) {
      log('%s: failed to start on this host: %s', record.name, err)
      if (this.phase.kind === 'starting') {
        this.phase = { kind: 'stopped' }
        this.c.waits.changed()
        this.c.ended('failed', `init failed: ${describeThrown((err as { cause?: unknown }).cause ?? err)}`)
      }
      return
    }
    if (this.phase.kind !== 'starting') { // stopped while starting: stop what started
      await tree.stop()
      return
    }
    this.phase = { kind: 'running', tree }
    this.c.waits.changed()
    void tree.exited.then((reason) => {
      if (this.phase.kind !== 'running' || this.phase.tree !== tree) return // stopped by the service
      this.phase = { kind: 'stopped' }
      this.c.waits.changed()
      if (reason.kind === 'gave-up') this.c.ended('failed', `its supervisor on ${record.name}'s host gave up after ${reason.restarts} restarts in ${reason.periodMs} ms`)
      else this.c.ended('finished', `it stopped (${reason.kind})`)
    })
  }

  /**
   * Answers one request: waits (within its time) for the server to have started, then calls
   * or casts it. `moved` when the run is over. A request id seen before gets the same reply.
   */
  async answer (req: ChildRequest): Promise<ChildReply> {
    const known = this.replies.get(req.r)
    if (known !== undefined) return await known
    const reply = this.serve(req)
    this.replies.set(req.r, reply)
    if (this.replies.size > REMEMBERED_REPLIES) this.replies.delete(this.replies.keys().next().value!)
    return await reply
  }

  private async serve (req: ChildRequest): Promise<ChildReply> {
    const ready = await this.c.waits.until(() => this.phase.kind === 'running' ? this.phase.tree : this.live ? undefined : null, req.t, this.c.context.signal)
    if (ready.kind !== 'value' || ready.value === null) return { k: 'moved' }
    const tree = ready.value
    try {
      if (req.k === 'cast') {
        await tree.castEncoded(this.name, req.b, { timeoutMs: req.t })
        return { k: 'ok', b: new Uint8Array(0) }
      }
      return { k: 'ok', b: await tree.callEncoded(this.name, req.b, { timeoutMs: req.t }) }
    } catch (err) {
      // The tree stopping under the request (this run ended) is a move, not the server's failure.
      if ((err as Error).name === 'SupervisionStoppedError' && !this.live) return { k: 'moved' }
      return { k: 'error', e: errorToWire(err) }
    }
  }

  /** Stops the server (its `terminate`, within its shutdown); resolves once stopped. Idempotent. */
  async stop (): Promise<void> {
    for (;;) {
      const p = this.phase
      if (p.kind === 'stopped') return
      if (p.kind === 'stopping') { await p.done; return }
      if (p.kind === 'starting') {
        const done = p.done.then(async () => {
          // The start finished while we waited: stop the tree if it began running.
          const now = this.phase as Phase
          if (now.kind === 'running') await now.tree.stop()
          this.phase = { kind: 'stopped' }
          this.c.waits.changed()
        })
        this.phase = { kind: 'stopping', done }
        this.c.waits.changed()
        await done
        return
      }
      const tree = p.tree
      const done = tree.stop().then(() => { this.phase = { kind: 'stopped' }; this.c.waits.changed() }, (err: unknown) => {
        this.c.log('%s: stopping failed: %s', this.name, err)
        this.phase = { kind: 'stopped' }
        this.c.waits.changed()
      })
      this.phase = { kind: 'stopping', done }
      this.c.waits.changed()
      await done
      return
    }
  }
}

/** The envelope of a placed child's state in its election's checkpoint. */
interface StateCheckpoint { readonly key: string, readonly state: Uint8Array }

function isStateCheckpoint (data: unknown): data is StateCheckpoint {
  return typeof data === 'object' && data !== null && typeof (data as StateCheckpoint).key === 'string' && (data as StateCheckpoint).state instanceof Uint8Array
}

/**
 * A {@link StateStore} over the election's checkpoint: `load` gives the state the previous host
 * (or this run) saved, `save` writes it through the fold, fenced by the grant's token (refused
 * once this host is deposed, so a deposed host never overwrites its successor's state).
 */
function checkpointStore (context: HolderContext<JsonValue>, log: Logger): StateStore {
  let latest: StateCheckpoint | undefined = isStateCheckpoint(context.checkpoint?.data) ? context.checkpoint.data : undefined
  return {
    load: async (key) => latest?.key === key ? latest.state.slice() : undefined,
    save: async (key, bytes) => {
      const checkpoint: StateCheckpoint = { key, state: bytes.slice() }
      try {
        await context.saveCheckpoint(checkpoint as unknown as JsonValue, { timeoutMs: 10_000 })
        latest = checkpoint
      } catch (err) {
        log('%s: the state was not handed over: %s', context.name, err)
        throw err
      }
    }
  }
}
