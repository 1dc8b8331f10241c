/**
 * The admin endpoint as a service: `admin(options)` gives a peer an HTTP endpoint for operators
 * (health, readiness, JSON views, Prometheus metrics, a status page, guarded mutations), either
 * listening on a port of its own (loopback by default) from before the peer joins until it
 * stops, or as a `(req, res)` handler the application mounts in its own `node:http` server.
 * It defines no groups and no channels, so peers of one cluster may differ in whether they run
 * it. The routes are in `routes.ts`; docs/ADMIN.md is the reference.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Logger } from '@libp2p/interface'
import { isPartitionTableSpec, partitionsOf, type PartitionTable } from '../partitions/partition-table.js'
import type { PeerClock, Timer } from '../peer/clock.js'
import type { MembershipView, ServiceDefinition } from '../peer/services.js'
import { defineService } from '../peer/services.js'
import type { SupervisionTree } from '../supervision/tree.js'
import { ChangeJournal } from './changes.js'
import { tokenDigest } from './http.js'
import { adminRequestHandler, type AdminContext } from './routes.js'

/** Options of {@link admin}. */
export interface AdminOptions {
  /**
   * Listen on a port of its own. `false`: only offer {@link AdminEndpoint.handler}, for the
   * application to mount in its own server.
   * @default true
   */
  readonly listen?: boolean
  /**
   * The interface to listen on. Anything but loopback exposes the endpoint to the network:
   * put it behind something that authenticates readers too (only mutations need the token).
   * @default '127.0.0.1'
   */
  readonly host?: string
  /**
   * The port to listen on; 0 picks a free one ({@link AdminEndpoint.url} tells which).
   * @default 0
   */
  readonly port?: number
  /**
   * Allow the mutating routes (leave, eject, move, commit). They then need
   * `Authorization: Bearer <token>`; without this flag they answer 403 whatever the token.
   * @default false
   */
  readonly allowMutations?: boolean
  /**
   * The bearer token mutations need: required with `allowMutations`, at least 16 characters.
   * Only its SHA-256 is kept, and compared in constant time.
   * @default none
   */
  readonly token?: string
  /**
   * Supervision trees to show (`GET /supervision`, the status page) and count restarts of,
   * by a name of your choice (a tree alone is named after its root).
   * @default none
   */
  readonly supervision?: SupervisionTree | Readonly<Record<string, SupervisionTree>>
  /**
   * Path prefix when mounted in another server (e.g. `'/admin'`): routes live below it.
   * @default ''
   */
  readonly basePath?: string
  /**
   * How many recent changes to keep for `GET /changes` and the status page.
   * @default 200
   */
  readonly recentChanges?: number
  /**
   * How often the endpoint looks for changes of membership, suspicion and the partition
   * table to record, in milliseconds.
   * @default 1000
   */
  readonly observeIntervalMs?: number
  /**
   * Largest request body accepted, in bytes.
   * @default 65536
   */
  readonly maxBodyBytes?: number
  /**
   * How long a mutation waits for the cluster (an ejection's dissemination, a commit's fold).
   * @default 10000
   */
  readonly mutationTimeoutMs?: number
  /**
   * Called with {@link AdminEndpoint.url} as soon as the port is open, before the peer has
   * joined (so a program can print where to look while a join is under way). A throw is logged.
   * @default none
   */
  readonly onListening?: (url: string) => void
}

/** What `peer.services.<name>` is for the admin service. */
export interface AdminEndpoint {
  /** The request handler, to mount in the application's own `node:http` server. Never throws. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void
  /** `http://host:port` once listening (from before the peer joins), else `undefined`. */
  readonly url: string | undefined
  /** Opens the port (called by the peer before it joins). */
  prepare(): Promise<void>
  /** Begins recording changes (called by the peer once it is a participant). */
  start(): void
  /** Closes the port (called by the peer as it stops). */
  stop(): Promise<void>
}

/** The components the admin service takes. */
export type AdminNeeds = 'self' | 'cluster' | 'clock' | 'log' | 'metrics' | 'membership' | 'operator' | 'views'

/**
 * The admin endpoint of a peer, as a service: `startLegion({ ..., services: { admin: admin({ port: 9000 }) } })`.
 * See docs/ADMIN.md for the routes.
 *
 * @example
 * ```ts
 * const peer = await startLegion({ cluster: 'demo', spec: partitionTableSpec(16), startup: { mode: 'new' },
 *   services: { admin: admin({ port: 9000, allowMutations: true, token: process.env.LEGION_TOKEN }) } })
 * console.log(peer.services.admin.url)   // http://127.0.0.1:9000: the status page, /members, /metrics...
 * ```
 * @throws TypeError naming the option that is wrong
 */
export function admin (options: AdminOptions = {}): ServiceDefinition<AdminEndpoint, AdminNeeds> {
  const settings = checkOptions(options)
  return defineService({
    name: 'admin',
    needs: ['self', 'cluster', 'clock', 'log', 'metrics', 'membership', 'operator', 'views'],
    create: (c) => {
      const journal = new ChangeJournal(settings.recentChanges, () => c.clock.wallNow())
      const answered = new Counter({ name: 'legion_admin_requests_total', help: 'Requests the admin endpoint answered, by route and status code.', labelNames: ['route', 'status'], registers: [c.metrics.registry] })
      registerLayerMetrics(c.metrics.registry, c.operator, c.self, settings.trees)
      const ctx: AdminContext = {
        self: c.self,
        cluster: c.cluster,
        operator: c.operator,
        views: c.views,
        registry: c.metrics.registry,
        journal,
        trees: settings.trees,
        tokenDigest: settings.tokenDigest,
        basePath: settings.basePath,
        maxBodyBytes: settings.maxBodyBytes,
        mutationTimeoutMs: settings.mutationTimeoutMs,
        wallNow: () => c.clock.wallNow(),
        startedAt: c.clock.wallNow(),
        answered: (route, status) => { answered.inc({ route, status: String(status) }) }
      }
      const handler = adminRequestHandler(ctx)
      return new AdminService(handler, settings, c.clock, c.log, c.membership, () => { observe(c.operator, journal) })
    }
  })
}

class AdminService implements AdminEndpoint {
  private server: Server | undefined
  private address: string | undefined
  private timer: Timer | undefined
  private pending: Timer | undefined
  private unsubscribe: (() => void) | undefined

  constructor (
    readonly handler: (req: IncomingMessage, res: ServerResponse) => void,
    private readonly settings: Settings,
    private readonly clock: PeerClock,
    private readonly log: Logger,
    private readonly membership: MembershipView,
    private readonly observe: () => void
  ) {}

  get url (): string | undefined {
    return this.address
  }

  async prepare (): Promise<void> {
    if (!this.settings.listen) return
    const server = createServer(this.handler)
    server.on('clientError', (_err, socket) => { socket.destroy() })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.settings.port, this.settings.host, () => { server.off('error', reject); resolve() })
    })
    server.on('error', (err) => { this.log('admin server error: %s', err) })
    this.server = server
    const a = server.address() as AddressInfo
    this.address = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
    this.log('admin endpoint at %s', this.address)
    try {
      this.settings.onListening?.(this.address)
    } catch (err) {
      this.log.error('onListening threw: %s', err)
    }
  }

  start (): void {
    this.observe()
    // The interval catches what has no event (a suspicion, a stuck peer); a membership change is
    // observed as it happens, so a member that joins and is ejected within one interval is still
    // recorded. The listener runs on every change of the cluster's state, so it compares the
    // member list first, and a burst of membership changes is observed once, on the next turn.
    this.timer = this.clock.every(this.settings.observeIntervalMs, this.observe)
    let members = this.membership.members()
    this.unsubscribe = this.membership.subscribe(() => {
      const now = this.membership.members()
      if (now.length === members.length && now.every((m, i) => m === members[i])) return
      members = now
      this.pending ??= this.clock.setTimer(0, () => { this.pending = undefined; this.observe() })
    })
  }

  async stop (): Promise<void> {
    this.timer?.cancel()
    this.timer = undefined
    this.pending?.cancel()
    this.pending = undefined
    this.unsubscribe?.()
    this.unsubscribe = undefined
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    // An answer already on its way (the 202 of a leave) goes out; idle keep-alive connections
    // are closed at once and the rest shortly after, so a browser cannot hold the peer open.
    const closed = new Promise<void>(resolve => { server.close(() => { resolve() }) })
    server.closeIdleConnections()
    const t = this.clock.setTimer(1000, () => { server.closeAllConnections() })
    await closed
    t.cancel()
  }
}

/** Feeds the journal a snapshot of the peer (nothing once it stopped). */
function observe (operator: AdminContext['operator'], journal: ChangeJournal): void {
  try {
    const phase = operator.phase()
    if (phase === 'stopped' || phase === 'starting') { journal.observe({ phase, members: [], suspected: [], stuck: [], brokenLinks: [], health: 'ok', tableVersion: undefined }); return }
    const s = operator.stats()
    const state = operator.clusterState()
    journal.observe({
      phase,
      members: state.projectedParticipants,
      suspected: s.suspected,
      stuck: s.stuck.map(x => x.peer),
      brokenLinks: s.brokenLinks.map(l => l.between),
      health: s.health.kind,
      tableVersion: isPartitionTableSpec(operator.clusterSpec) ? (state.projected as PartitionTable).version : undefined
    })
  } catch {
    // the peer stopped between the phase check and the reads: nothing to record
  }
}

/**
 * Metrics of what the admin layer shows and nobody else measures: partitions this peer owns
 * (when the cluster's state is a partition table) and, per supervision tree given, restarts,
 * crashes and queued requests. All read at scrape time; label values are the tree names the
 * application chose, a bounded set.
 */
function registerLayerMetrics (registry: Registry, operator: AdminContext['operator'], self: string, trees: ReadonlyMap<string, SupervisionTree>): void {
  if (isPartitionTableSpec(operator.clusterSpec)) {
    new Gauge({ // eslint-disable-line no-new
      name: 'legion_partitions_owned',
      help: 'Partitions of the cluster\'s partition table this peer owns (projected).',
      registers: [registry],
      collect () {
        const phase = operator.phase()
        this.set(phase === 'member' || phase === 'ejected' ? partitionsOf(operator.clusterState().projected as PartitionTable, self).length : 0)
      }
    })
  }
  if (trees.size === 0) return
  new Counter({ // eslint-disable-line no-new
    name: 'legion_supervision_restarts_total',
    help: 'Starts of a supervised child after its first, per tree.',
    labelNames: ['tree'],
    registers: [registry],
    collect () { this.reset(); for (const [name, tree] of trees) this.inc({ tree: name }, tree.stats().restarts) }
  })
  new Counter({ // eslint-disable-line no-new
    name: 'legion_supervision_crashes_total',
    help: 'Steps and inits of supervised servers that threw, per tree.',
    labelNames: ['tree'],
    registers: [registry],
    collect () { this.reset(); for (const [name, tree] of trees) this.inc({ tree: name }, tree.stats().crashes) }
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'legion_supervision_queued_requests',
    help: 'Requests admitted to a supervision tree\'s queue and not answered yet, per tree.',
    labelNames: ['tree'],
    registers: [registry],
    collect () { this.reset(); for (const [name, tree] of trees) this.set({ tree: name }, tree.stats().queued) }
  })
}

interface Settings {
  readonly listen: boolean
  readonly host: string
  readonly port: number
  readonly tokenDigest: Buffer | undefined
  readonly trees: ReadonlyMap<string, SupervisionTree>
  readonly basePath: string
  readonly recentChanges: number
  readonly observeIntervalMs: number
  readonly maxBodyBytes: number
  readonly mutationTimeoutMs: number
  readonly onListening: ((url: string) => void) | undefined
}

function checkOptions (options: AdminOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new TypeError('admin: options must be an object')
  const o = options
  const listen = o.listen ?? true
  if (typeof listen !== 'boolean') throw new TypeError('admin: options.listen must be a boolean')
  const host = o.host ?? '127.0.0.1'
  if (typeof host !== 'string' || host === '') throw new TypeError('admin: options.host must be a host name or address')
  const port = o.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError('admin: options.port must be an integer in [0, 65535]')
  if (o.onListening !== undefined && typeof o.onListening !== 'function') throw new TypeError('admin: options.onListening must be a function')
  const allowMutations = o.allowMutations ?? false
  if (typeof allowMutations !== 'boolean') throw new TypeError('admin: options.allowMutations must be a boolean')
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token.length < 16)) throw new TypeError('admin: options.token must be a string of at least 16 characters')
  if (allowMutations && o.token === undefined) throw new TypeError('admin: options.allowMutations needs options.token (mutations are never open to anyone who reaches the port)')
  const basePath = (o.basePath ?? '').replace(/\/+$/, '')
  if (typeof o.basePath === 'string' && o.basePath !== '' && !o.basePath.startsWith('/')) throw new TypeError("admin: options.basePath must start with '/'")
  const positive = (value: number | undefined, fallback: number, name: string): number => {
    const v = value ?? fallback
    if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`admin: options.${name} must be a positive integer`)
    return v
  }
  return {
    listen,
    host,
    port,
    tokenDigest: allowMutations ? tokenDigest(o.token!) : undefined,
    trees: checkTrees(o.supervision),
    basePath,
    recentChanges: positive(o.recentChanges, 200, 'recentChanges'),
    observeIntervalMs: positive(o.observeIntervalMs, 1000, 'observeIntervalMs'),
    maxBodyBytes: positive(o.maxBodyBytes, 65536, 'maxBodyBytes'),
    mutationTimeoutMs: positive(o.mutationTimeoutMs, 10_000, 'mutationTimeoutMs'),
    onListening: o.onListening
  }
}

function checkTrees (value: AdminOptions['supervision']): ReadonlyMap<string, SupervisionTree> {
  const isTree = (t: unknown): t is SupervisionTree => typeof t === 'object' && t !== null && typeof (t as SupervisionTree).inspect === 'function' && typeof (t as SupervisionTree).stats === 'function'
  if (value === undefined) return new Map()
  if (isTree(value)) return new Map([[value.root, value]])
  if (typeof value !== 'object' || value === null) throw new TypeError('admin: options.supervision must be a SupervisionTree or an object of them')
  const trees = new Map<string, SupervisionTree>()
  for (const [name, tree] of Object.entries(value)) {
    if (!isTree(tree)) throw new TypeError(`admin: options.supervision.${name} must be a SupervisionTree`)
    trees.set(name, tree)
  }
  return trees
}
