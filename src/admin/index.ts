/**
 * The operator's layer: the admin endpoint service (`admin`), the plans of partition layout
 * changes it offers, and the journal of recent changes it keeps. See docs/ADMIN.md.
 *
 * @module
 */
export { admin, type AdminOptions, type AdminEndpoint, type AdminNeeds } from './service.js'
export { planLayoutChange, parseLayoutChange, committedEvent, type LayoutChange, type LayoutPlan, type PartitionMove, type RefusedChange } from './plan.js'
export { readiness, type Readiness, type ReadinessCheck, type MemberView } from './views.js'
export type { Change, ChangeKind } from './changes.js'
export { isPlanningView, type PlanningView, type PlannedMembershipChange } from './service-plans.js'
