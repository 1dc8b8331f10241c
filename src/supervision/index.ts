/**
 * The supervision layer: servers as pure step functions, an event loop over a bounded queue,
 * and OTP-style supervisor trees with backoff, on one process. It imports only the codec and the
 * logger; nothing of the peer runtime.
 *
 * @module
 */
export { systemClock, ManualClock, type Clock, type Timer } from '../time/clock.js'
export {
  defineServer, serverRef, isAbnormalExit,
  type ServerSpec, type InitContext, type TerminateContext, type StepResult, type ServerCodecs, type ServerPersistence,
  type ExitReason, type ServerRef, type ServerTypes
} from './server.js'
export {
  worker, supervisor, DEFAULT_WORKER_SHUTDOWN_MS,
  type WorkerSpec, type SupervisorSpec, type ChildSpec, type ChildOptions, type WorkerOptions, type SupervisorOptions,
  type SupervisorFlags, type BackoffOptions, type ResolvedBackoff, type RestartType, type Shutdown,
  type Strategy, type AutoShutdown
} from './child-spec.js'
export {
  decideRestart, backoffDelay, EMPTY_HISTORY,
  type RestartDecision, type RestartHistory, type ChildExit, type PolicyChild, type PolicyOutcome
} from './restart-policy.js'
export {
  isAlive,
  type ChildStatus, type ChildInfo, type ChildCounts, type SupervisorInfo, type SupervisedChildInfo, type SupervisionEvent,
  type ChildEventFields, type ChildStartEvent, type ChildStopEvent, type ServerCrashEvent, type RestartDecidedEvent,
  type CallbackFailedEvent
} from './lifecycle.js'
export {
  startSupervision,
  type SupervisionTree, type SupervisionOptions, type CallOptions, type CastOptions, type TreeStatus,
  type SupervisionStats
} from './tree.js'
export type { LoopCounters } from './event-loop.js'
export { memoryStateStore, MemoryStateStore, fileStateStore, MAX_FILE_STATE_KEY_BYTES, type StateStore } from './state-store.js'
export { supervisionHttpHandler, type SupervisionHttpOptions } from './http.js'
export {
  UnknownServerError, QueueFullError, CallTimeoutError, CallAbortedError, ServerCrashedError,
  ServerExitedError, ServerStoppedError, SupervisionStoppedError, BadInputError, BadOutputError,
  ChildStartError, StartTimeoutError, DuplicateChildError, UnknownChildError
} from './errors.js'
