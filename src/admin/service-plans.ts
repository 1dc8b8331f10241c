/**
 * Plans of a service's own layout (`GET /services/<service>/plan?leave=<peer>` or
 * `?join=<peer>`): a service whose layout follows the cluster's membership (the keyspace's
 * ownership table) offers, besides its views, a *planning view*: a view with a `plan(change)`
 * function that says what a peer leaving or joining would move, computed by the function its
 * own rebalancing runs. This module recognises such views, reads the query, checks the peer,
 * and asks. Read-only: a plan changes nothing, so it needs no token.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Participant } from '../eventfold/types.js'
import type { OperatorView, OperatorViews } from '../peer/operator.js'
import { AdminRequestError } from './http.js'

/** A change of membership a service plans for. */
export interface PlannedMembershipChange {
  /** `leave`: the peer leaves or is ejected; `join`: a new peer joins. */
  readonly type: 'join' | 'leave'
  /** The peer. */
  readonly peer: Participant
}

/**
 * A view that also plans: what `GET /services/<service>/plan` asks. A service offers one with
 * `views.add(name, { title, read, plan })` (one per service; the first found is asked).
 */
export interface PlanningView extends OperatorView {
  /**
   * What `change` would do to the service's layout: plain JSON data, or `{ refused: reason }`
   * when it cannot be planned (answered 409). Changes nothing. A throw answers 500 (503 for a
   * `GroupNotReadyError`).
   */
  plan(change: PlannedMembershipChange): unknown
}

/** Whether `view` plans (see {@link PlanningView}). */
export function isPlanningView (view: OperatorView): view is PlanningView {
  return typeof (view as Partial<PlanningView>).plan === 'function'
}

/** The planning view of `service`, by its full name, if it offers one. */
function planningViewOf (views: OperatorViews, service: string): PlanningView | undefined {
  for (const [name, view] of views.all()) {
    if (name.startsWith(`${service}/`) && isPlanningView(view)) return view
  }
  return undefined
}

/** The services that offer plans. */
export function planningServices (views: OperatorViews): string[] {
  return [...new Set([...views.all()].filter(([, v]) => isPlanningView(v)).map(([name]) => name.slice(0, name.indexOf('/'))))]
}

/**
 * Answers `GET /services/<service>/plan`: the query names exactly one change (`leave=<peer>`
 * or `join=<peer>`); a leave names a member of the cluster, a join a well-formed peer id.
 * @throws AdminRequestError 404 `NoSuchService`, 400 `BadQuery` or `BadPeerId`, 404 `NotMember`, 409 `ChangeRefused`
 */
export function servicePlan (views: OperatorViews, members: readonly Participant[], service: string, query: URLSearchParams): unknown {
  const view = planningViewOf(views, service)
  if (view === undefined) {
    const offered = planningServices(views)
    throw new AdminRequestError(404, 'NoSuchService', `no service ${JSON.stringify(service)} offers plans${offered.length > 0 ? `; these do: ${offered.join(', ')}` : ''}`)
  }
  const change = changeOf(query)
  if (change.type === 'leave' && !members.includes(change.peer)) {
    checkPeerId(change.peer)
    throw new AdminRequestError(404, 'NotMember', `${change.peer} is not a member of the cluster`)
  }
  if (change.type === 'join') checkPeerId(change.peer)
  const plan = view.plan(change)
  if (typeof plan === 'object' && plan !== null && typeof (plan as { refused?: unknown }).refused === 'string') {
    throw new AdminRequestError(409, 'ChangeRefused', (plan as { refused: string }).refused)
  }
  return { service, ...(plan as object) }
}

function changeOf (query: URLSearchParams): PlannedMembershipChange {
  const keys = [...new Set(query.keys())]
  const usage = 'name one change: ?leave=<peer id> or ?join=<peer id>'
  if (keys.length !== 1 || (keys[0] !== 'leave' && keys[0] !== 'join')) throw new AdminRequestError(400, 'BadQuery', usage)
  const type = keys[0]
  const values = query.getAll(type)
  if (values.length !== 1 || values[0] === '') throw new AdminRequestError(400, 'BadQuery', usage)
  return { type, peer: values[0]! }
}

function checkPeerId (peer: string): void {
  try {
    if (peer.length > 128) throw new Error('too long')
    peerIdFromString(peer)
  } catch {
    throw new AdminRequestError(400, 'BadPeerId', `${JSON.stringify(peer.slice(0, 128))} is not a peer id`)
  }
}
