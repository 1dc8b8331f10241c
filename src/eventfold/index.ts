/**
 * The pure EventFold core: types, the fold, its merge errors and the infimum digest. No I/O,
 * no timers, no imports from other layers.
 *
 * @module
 */
export * from './types.js'
export * from './errors.js'
export { EventFold } from './event-fold.js'
export type { EventResult, ProjectedOutcome, MembershipResult, MergeResult } from './results.js'
export { EMPTY_DIGEST } from './digest.js'
