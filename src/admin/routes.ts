/**
 * The routes of the admin endpoint (docs/ADMIN.md lists them with bodies and status codes):
 * a `(req, res)` handler over one peer's `operator` component, its views, its metrics registry
 * and the change journal. Read-only routes answer anyone who reaches the port; mutations
 * (leave, eject, move, commit) need `allowMutations` and the bearer token. The handler never
 * throws and never crashes the process: every failure is a JSON answer. It reaches nothing but
 * its own peer: no route takes an address, and no route calls out.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { Participant } from '../eventfold/types.js'
import type { PartitionTable, PartitionTableOutput } from '../partitions/partition-table.js'
import type { OperatorControl, OperatorViews } from '../peer/operator.js'
import type { SupervisionTree } from '../supervision/tree.js'
import { LEGION_VERSION, PROTOCOL_VERSION } from '../version.js'
import type { ChangeJournal } from './changes.js'
import { AdminRequestError, answerJson, answerText, bearerMatches, readJsonBody } from './http.js'
import { committedEvent, parseLayoutChange, planLayoutChange, type LayoutChange } from './plan.js'
import { isPlanningView, servicePlan } from './service-plans.js'
import { STATUS_PAGE } from './status-page.js'
import { membersView, partitionTables, partitionView, partitionsView, readiness, supervisionView } from './views.js'
import { isPartitionTableSpec } from '../partitions/partition-table.js'

/** Everything the routes read and act on. */
export interface AdminContext {
  readonly self: Participant
  readonly cluster: string
  readonly operator: OperatorControl
  readonly views: OperatorViews
  readonly registry: Registry
  readonly journal: ChangeJournal
  readonly trees: ReadonlyMap<string, SupervisionTree>
  /** `undefined`: mutations are disabled. */
  readonly tokenDigest: Buffer | undefined
  readonly basePath: string
  readonly maxBodyBytes: number
  readonly mutationTimeoutMs: number
  readonly wallNow: () => number
  readonly startedAt: number
  /** Counts an answered request by route and status code (bounded labels). */
  readonly answered: (route: string, status: number) => void
}

interface Request {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly params: readonly string[]
  readonly query: URLSearchParams
}

interface Route {
  /** The route's name in metrics and errors. */
  readonly name: string
  /** Path segments; `:x` matches any one segment. */
  readonly path: readonly string[]
  readonly method: 'GET' | 'POST'
  readonly mutation: boolean
  readonly run: (ctx: AdminContext, r: Request) => Promise<void> | void
}

/** The route table. */
const ROUTES: readonly Route[] = [
  { name: 'page', path: [], method: 'GET', mutation: false, run: (_ctx, r) => { answerText(r.res, 200, 'text/html; charset=utf-8', STATUS_PAGE) } },
  { name: 'alive', path: ['alive'], method: 'GET', mutation: false, run: (ctx, r) => { answerJson(r.res, 200, { alive: true, phase: ctx.operator.phase() }) } },
  {
    name: 'ready',
    path: ['ready'],
    method: 'GET',
    mutation: false,
    run: (ctx, r) => { const ready = readiness(ctx.operator); answerJson(r.res, ready.ready ? 200 : 503, ready) }
  },
  { name: 'status', path: ['status'], method: 'GET', mutation: false, run: (ctx, r) => { answerJson(r.res, 200, statusView(ctx)) } },
  { name: 'members', path: ['members'], method: 'GET', mutation: false, run: (ctx, r) => { answerJson(r.res, 200, membersView(member(ctx))) } },
  { name: 'stats', path: ['stats'], method: 'GET', mutation: false, run: (ctx, r) => { answerJson(r.res, 200, member(ctx).stats()) } },
  { name: 'groups', path: ['groups'], method: 'GET', mutation: false, run: (ctx, r) => { answerJson(r.res, 200, { groups: member(ctx).groups() }) } },
  { name: 'partitions', path: ['partitions'], method: 'GET', mutation: false, run: (ctx, r) => { answerJson(r.res, 200, partitionsView(tables(ctx))) } },
  {
    name: 'partition',
    path: ['partitions', ':p'],
    method: 'GET',
    mutation: false,
    run: (ctx, r) => { const t = tables(ctx); answerJson(r.res, 200, partitionView(t, partitionParam(r.params[0]!, t.projected))) }
  },
  { name: 'supervision', path: ['supervision'], method: 'GET', mutation: false, run: (ctx, r) => { answerJson(r.res, 200, supervisionView(ctx.trees)) } },
  {
    name: 'views',
    path: ['views'],
    method: 'GET',
    mutation: false,
    run: (ctx, r) => { answerJson(r.res, 200, { views: [...ctx.views.all()].map(([name, v]) => ({ name, title: v.title, plans: isPlanningView(v) })) }) }
  },
  { name: 'view', path: ['views', ':service', ':name'], method: 'GET', mutation: false, run: (ctx, r) => { answerJson(r.res, 200, readView(ctx, `${r.params[0]!}/${r.params[1]!}`)) } },
  {
    name: 'service-plan',
    path: ['services', ':service', 'plan'],
    method: 'GET',
    mutation: false, // a plan changes nothing
    run: (ctx, r) => {
      const op = member(ctx)
      answerJson(r.res, 200, servicePlan(ctx.views, op.clusterState().projectedParticipants, r.params[0]!, r.query))
    }
  },
  {
    name: 'changes',
    path: ['changes'],
    method: 'GET',
    mutation: false,
    run: (ctx, r) => {
      const after = r.query.get('after') ?? '0'
      if (!/^\d{1,15}$/.test(after)) throw new AdminRequestError(400, 'BadQuery', 'after must be a non-negative integer')
      answerJson(r.res, 200, { latest: ctx.journal.latest, changes: ctx.journal.after(Number(after)) })
    }
  },
  {
    name: 'metrics',
    path: ['metrics'],
    method: 'GET',
    mutation: false,
    run: async (ctx, r) => { answerText(r.res, 200, ctx.registry.contentType, await ctx.registry.metrics()) }
  },
  {
    name: 'leave',
    path: ['leave'],
    method: 'POST',
    mutation: true,
    run: async (ctx, r) => {
      await readJsonBody(r.req, ctx.maxBodyBytes)
      member(ctx)
      leaveAfterAnswer(ctx, r)
    }
  },
  {
    name: 'eject',
    path: ['members', ':peer', 'eject'],
    method: 'POST',
    mutation: true,
    run: async (ctx, r) => {
      await readJsonBody(r.req, ctx.maxBodyBytes)
      answerJson(r.res, 200, await eject(ctx, r.params[0]!))
    }
  },
  {
    name: 'move',
    path: ['partitions', ':p', 'move'],
    method: 'POST',
    mutation: true,
    run: async (ctx, r) => {
      const body = await readJsonBody(r.req, ctx.maxBodyBytes) as { to?: unknown }
      const t = tables(ctx)
      const partition = partitionParam(r.params[0]!, t.projected)
      const change = parseLayoutChange({ type: 'move', partition, to: typeof body === 'object' && body !== null ? body.to : undefined })
      if (typeof change === 'string') throw new AdminRequestError(400, 'BadChange', change)
      answerJson(r.res, 200, await commit(ctx, r, change, undefined))
    }
  },
  {
    name: 'plan',
    path: ['plan'],
    method: 'POST',
    mutation: false, // a plan changes nothing: anyone who may read may plan
    run: async (ctx, r) => {
      const change = parseLayoutChange(await readJsonBody(r.req, ctx.maxBodyBytes))
      if (typeof change === 'string') throw new AdminRequestError(400, 'BadChange', change)
      answerJson(r.res, 200, plan(ctx, change))
    }
  },
  {
    name: 'commit',
    path: ['commit'],
    method: 'POST',
    mutation: true,
    run: async (ctx, r) => {
      const body = await readJsonBody(r.req, ctx.maxBodyBytes)
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AdminRequestError(400, 'BadChange', 'a commit is { "change": {...}, "version": <the plan\'s version> }')
      const { change: raw, version } = body as { change?: unknown, version?: unknown }
      const change = parseLayoutChange(raw)
      if (typeof change === 'string') throw new AdminRequestError(400, 'BadChange', change)
      if (!Number.isSafeInteger(version)) throw new AdminRequestError(400, 'BadChange', 'a commit needs "version", the version of the table its plan was computed on')
      const result = await commit(ctx, r, change, version as number)
      if (result !== undefined) answerJson(r.res, 200, result)
    }
  }
]

/**
 * The admin endpoint's request handler over `ctx`; see the module comment. Requests whose path
 * is not under `ctx.basePath` get 404.
 */
export function adminRequestHandler (ctx: AdminContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    let routeName = 'unknown'
    res.on('finish', () => { ctx.answered(routeName, res.statusCode) })
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://admin.invalid')
      const path = url.pathname
      if (!path.startsWith(ctx.basePath)) throw new AdminRequestError(404, 'NotFound', `no route ${path}`)
      const rest = path.slice(ctx.basePath.length)
      if (rest !== '' && !rest.startsWith('/')) throw new AdminRequestError(404, 'NotFound', `no route ${path}`)
      if (rest === '' && ctx.basePath !== '') { // the page's relative links need the trailing slash
        res.writeHead(308, { location: `${ctx.basePath}/` })
        res.end()
        return
      }
      let segments: string[]
      try {
        segments = rest.split('/').filter(s => s !== '').map(s => decodeURIComponent(s))
      } catch {
        throw new AdminRequestError(400, 'BadPath', 'the path is not well-formed percent-encoding')
      }
      const matching = ROUTES.map(route => ({ route, params: match(route.path, segments) })).filter(m => m.params !== undefined)
      if (matching.length === 0) throw new AdminRequestError(404, 'NotFound', `no route ${path}`)
      const method = req.method === 'HEAD' ? 'GET' : req.method
      const found = matching.find(m => m.route.method === method)
      if (found === undefined) {
        const allow = [...new Set(matching.map(m => m.route.method))].join(', ')
        throw new AdminRequestError(405, 'MethodNotAllowed', `${path} takes ${allow}`, { allow })
      }
      routeName = found.route.name
      if (found.route.mutation) guard(ctx, req)
      await found.route.run(ctx, { req, res, params: found.params!, query: url.searchParams })
    })().catch((err: unknown) => {
      if (res.headersSent) { res.end(); return }
      if (err instanceof AdminRequestError) {
        answerJson(res, err.status, { error: err.code, message: err.message }, err.headers)
        return
      }
      const name = err instanceof Error ? err.name : 'Error'
      const message = err instanceof Error ? err.message : String(err)
      const status = STATUS_OF_ERROR[name] ?? 500
      answerJson(res, status, { error: name, message })
    })
  }
}

/** Errors of the peer, as status codes. */
const STATUS_OF_ERROR: Readonly<Record<string, number>> = Object.freeze({
  NotParticipantError: 404,
  StoppedError: 503,
  EjectedError: 503,
  GroupNotReadyError: 503,
  ConsistencyTimeoutError: 504,
  TimeoutError: 504
})

function match (pattern: readonly string[], segments: readonly string[]): string[] | undefined {
  if (pattern.length !== segments.length) return undefined
  const params: string[] = []
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i]!.startsWith(':')) params.push(segments[i]!)
    else if (pattern[i] !== segments[i]) return undefined
  }
  return params
}

/** Mutations need `allowMutations` and the bearer token: 403 otherwise. */
function guard (ctx: AdminContext, req: IncomingMessage): void {
  if (ctx.tokenDigest === undefined) throw new AdminRequestError(403, 'MutationsDisabled', 'this endpoint is read-only: start it with allowMutations and a token')
  if (!bearerMatches(req, ctx.tokenDigest)) throw new AdminRequestError(403, 'BadToken', 'mutations need the header Authorization: Bearer <token>')
}

/** The operator, once the peer is a participant (503 before, and once it left). */
function member (ctx: AdminContext): OperatorControl {
  const phase = ctx.operator.phase()
  if (phase === 'starting' || phase === 'stopped') throw new AdminRequestError(503, 'NotMember', `this peer is ${phase}`)
  return ctx.operator
}

function tables (ctx: AdminContext): { projected: PartitionTable, settled: PartitionTable } {
  const t = partitionTables(member(ctx))
  if (t === undefined) throw new AdminRequestError(404, 'NoPartitionTable', 'the cluster\'s state is not a partition table (start the peers with partitionTableSpec)')
  return t
}

function partitionParam (text: string, table: PartitionTable): number {
  if (!/^\d{1,6}$/.test(text)) throw new AdminRequestError(400, 'BadPartition', `${JSON.stringify(text)} is not a partition number`)
  const p = Number(text)
  if (p >= table.partitions) throw new AdminRequestError(404, 'NoSuchPartition', `the table has partitions 0 to ${table.partitions - 1}`)
  return p
}

function readView (ctx: AdminContext, name: string): unknown {
  const view = ctx.views.all().get(name)
  if (view === undefined) throw new AdminRequestError(404, 'NoSuchView', `no view named ${JSON.stringify(name)}`)
  return { name, title: view.title, data: view.read() }
}

function statusView (ctx: AdminContext): unknown {
  const op = ctx.operator
  const phase = op.phase()
  const ready = readiness(op)
  const base = {
    self: ctx.self,
    cluster: ctx.cluster,
    version: LEGION_VERSION,
    protocol: PROTOCOL_VERSION,
    phase,
    ready: ready.ready,
    uptimeSeconds: Math.round((ctx.wallNow() - ctx.startedAt) / 1000),
    mutations: ctx.tokenDigest !== undefined,
    addresses: phase === 'stopped' ? [] : op.multiaddrs(),
    partitionTable: isPartitionTableSpec(op.clusterSpec),
    supervision: [...ctx.trees.keys()],
    views: [...ctx.views.all().keys()]
  }
  if (phase === 'starting' || phase === 'stopped') return base
  const s = op.stats()
  return {
    ...base,
    membership: s.membership,
    cannotReach: s.cannotReach,
    members: op.clusterState().projectedParticipants.length,
    settledMembers: s.participants,
    suspected: s.suspected.length,
    stuck: s.stuck.length,
    divergent: s.divergent.length,
    outstanding: s.outstanding,
    infimumId: s.infimumId,
    health: s.health,
    groups: s.groups
  }
}

async function eject (ctx: AdminContext, peer: Participant): Promise<unknown> {
  const op = member(ctx)
  if (peer === ctx.self) throw new AdminRequestError(400, 'CannotEjectSelf', 'this is the peer itself: POST /leave to leave')
  if (!op.clusterState().projectedParticipants.includes(peer)) throw new AdminRequestError(404, 'NotMember', `${peer} is not a member of the cluster`)
  ctx.journal.record('operator', `an operator ejected ${peer}`, peer)
  const d = await op.eject(peer, { timeoutMs: ctx.mutationTimeoutMs })
  return { ejected: peer, reached: d.reached, unreachable: d.unreachable }
}

/** Answers 202, and stops the peer (leaving the cluster) once the answer went out. */
function leaveAfterAnswer (ctx: AdminContext, r: Request): void {
  ctx.journal.record('operator', 'an operator asked this peer to leave')
  r.res.on('finish', () => { ctx.operator.leave({ timeoutMs: ctx.mutationTimeoutMs }).catch(() => {}) })
  answerJson(r.res, 202, { leaving: ctx.self })
}

function plan (ctx: AdminContext, change: LayoutChange): unknown {
  const t = tables(ctx)
  checkMembers(ctx, change)
  const spec = ctx.operator.clusterSpec
  if (!isPartitionTableSpec(spec)) throw new AdminRequestError(404, 'NoPartitionTable', 'the cluster\'s state is not a partition table')
  const p = planLayoutChange(spec, t.projected, change)
  if ('refused' in p) throw new AdminRequestError(409, 'ChangeRefused', p.refused)
  return p
}

/** Peers a change names must be members (404), except the one a join would add. */
function checkMembers (ctx: AdminContext, change: LayoutChange): void {
  const members = ctx.operator.clusterState().projectedParticipants
  const peer = change.type === 'leave' ? change.peer : change.type === 'move' ? change.to : undefined
  if (peer !== undefined && !members.includes(peer)) throw new AdminRequestError(404, 'NotMember', `${peer} is not a member of the cluster`)
}

/**
 * Carries out a change: a move, rebalance or resize as one event of the cluster's fold
 * (answered once it folded, with what it did); a leave of this peer as {@link leaveAfterAnswer}
 * (then `undefined`: answered already); a leave of another as an ejection. With `version`,
 * refuses (409) when the table is no longer the one the plan was computed on.
 */
async function commit (ctx: AdminContext, r: Request, change: LayoutChange, version: number | undefined): Promise<unknown> {
  const planned = plan(ctx, change) as { version: number, moves: unknown }
  if (version !== undefined && planned.version !== version) {
    throw new AdminRequestError(409, 'PlanOutdated', `the table is at version ${planned.version}, the plan was made at ${version}: plan again`)
  }
  if (change.type === 'join') throw new AdminRequestError(400, 'CannotCommit', 'a join happens when the new peer starts (legion start --join ...); it can only be planned')
  if (change.type === 'leave') {
    if (change.peer === ctx.self) { leaveAfterAnswer(ctx, r); return undefined }
    return { planned: planned.moves, ...await eject(ctx, change.peer) as object }
  }
  ctx.journal.record('operator', `an operator committed ${describe(change)}`)
  const output = await ctx.operator.applyToCluster(committedEvent(change)!, { timeoutMs: ctx.mutationTimeoutMs }) as PartitionTableOutput
  if (output.type === 'error') throw new AdminRequestError(409, 'ChangeRefused', output.message)
  return { planned: planned.moves, output, version: (ctx.operator.clusterState().projected as PartitionTable).version }
}

function describe (change: LayoutChange): string {
  switch (change.type) {
    case 'move': return `a move of partition ${change.partition} to ${change.to}`
    case 'configure': return `a resize to ${change.partitions} partitions`
    default: return `a ${change.type}`
  }
}
