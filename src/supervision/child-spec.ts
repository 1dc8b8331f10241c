/**
 * Declaring a supervision tree: {@link worker} and {@link supervisor} build child specs, plain
 * frozen values with every default filled in and every field checked (a `TypeError` naming the
 * field for anything wrong, so mistakes surface when the tree is declared, not when it first
 * restarts). The vocabulary is OTP's: strategies, restart types, intensity and period, shutdown,
 * significant children and auto_shutdown, plus Akka's restart backoff.
 *
 * Specs describe; they run nothing. `supervisor.ts` and `worker.ts` run them, and the pure
 * `restart-policy.ts` decides restarts from the flags declared here.
 *
 * @module
 */
import { checkServerSpec, type ServerRef, type ServerSpec } from './server.js'

/**
 * When a child that exited is restarted:
 * - `permanent`: always;
 * - `transient`: only after an abnormal exit (crash, kill, a supervisor giving up);
 * - `temporary`: never; it is removed from its supervisor when it exits.
 */
export type RestartType = 'permanent' | 'transient' | 'temporary'

/**
 * How a child is stopped by its supervisor:
 * - a number: call `terminate` and wait at most that many milliseconds, then abandon it;
 * - `'brutal'`: do not call `terminate` at all (nothing is saved);
 * - `'infinity'`: wait for `terminate` however long it takes (the default for supervisors).
 */
export type Shutdown = number | 'brutal' | 'infinity'

/**
 * What a supervisor restarts when a child exits and must be restarted:
 * - `one_for_one`: that child;
 * - `one_for_all`: every child (the others are stopped first, in reverse order);
 * - `rest_for_one`: that child and those declared after it (stopped in reverse order first);
 * - `simple_one_for_one`: as `one_for_one`, for a supervisor declared without children whose
 *   children are all added at run time (`startChild`) and stopped concurrently.
 */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one' | 'simple_one_for_one'

/**
 * When a supervisor shuts itself down (with reason `shutdown`) because significant children
 * ended without being restarted (a transient one exiting normally, a temporary one exiting):
 * `never`; on `any_significant` child ending; once `all_significant` children have ended.
 */
export type AutoShutdown = 'never' | 'any_significant' | 'all_significant'

/** Options shared by every child spec. */
export interface ChildOptions {
  /**
   * When the child is restarted after it exits.
   * @default 'permanent'
   */
  readonly restart?: RestartType
  /**
   * How the child is stopped.
   * @default 5000 for a worker, 'infinity' for a supervisor
   */
  readonly shutdown?: Shutdown
  /**
   * Whether the child's ending (without restart) can shut its supervisor down (see
   * {@link AutoShutdown}). Only for transient or temporary children of a supervisor whose
   * `autoShutdown` is not `never`.
   * @default false
   */
  readonly significant?: boolean
}

/** Options of {@link worker}: a child's options, and a bound on its start. */
export interface WorkerOptions extends ChildOptions {
  /**
   * The longest `init` (with the load of saved state) may take, in milliseconds; past it the
   * start fails with `StartTimeoutError` and counts as a crash. The abandoned `init` is not
   * cancelled: if it finishes later, what it made is dropped without `terminate`.
   * @default undefined (no limit, as OTP's default start timeout `infinity`)
   */
  readonly startTimeoutMs?: number
}

/**
 * Exponential restart backoff with jitter (after Akka's `restartWithBackoff`). Restart number
 * `n` of a child (counted from 0) waits `min(maxMs, minMs * factor^n) * (1 + randomFactor * r)`
 * with `r` drawn from the tree's random source in [0, 1). The count returns to 0 once the child
 * has run `resetAfterMs` without exiting.
 */
export interface BackoffOptions {
  /** The first delay, in milliseconds. */
  readonly minMs: number
  /** The largest delay before jitter, in milliseconds. */
  readonly maxMs: number
  /**
   * Growth of the delay per restart.
   * @default 2
   */
  readonly factor?: number
  /**
   * Up to this fraction of the delay is added at random, so restarts of many children spread.
   * @default 0.2
   */
  readonly randomFactor?: number
  /**
   * A child that ran this long without exiting starts its backoff over, in milliseconds.
   * @default maxMs
   */
  readonly resetAfterMs?: number
}

/** {@link BackoffOptions} with the defaults filled in. */
export interface ResolvedBackoff {
  /** See {@link BackoffOptions.minMs}. */
  readonly minMs: number
  /** See {@link BackoffOptions.maxMs}. */
  readonly maxMs: number
  /** See {@link BackoffOptions.factor}. */
  readonly factor: number
  /** See {@link BackoffOptions.randomFactor}. */
  readonly randomFactor: number
  /** See {@link BackoffOptions.resetAfterMs}. */
  readonly resetAfterMs: number
}

/** Options of {@link supervisor}: its flags, and its own options as a child. */
export interface SupervisorOptions extends ChildOptions {
  /**
   * The restart strategy.
   * @default 'one_for_one'
   */
  readonly strategy?: Strategy
  /**
   * The most restarts allowed within `periodMs`; one more and the supervisor gives up: it stops
   * its children and exits with reason `gave-up`, escalating to its own supervisor.
   * @default 1 (OTP's default)
   */
  readonly intensity?: number
  /**
   * The window of `intensity`, in milliseconds.
   * @default 5000 (OTP's default)
   */
  readonly periodMs?: number
  /**
   * Delay restarts with exponential backoff and jitter.
   * @default undefined (restart at once, as OTP does)
   */
  readonly backoff?: BackoffOptions
  /**
   * When significant children shut the supervisor down.
   * @default 'never'
   */
  readonly autoShutdown?: AutoShutdown
}

/** A supervisor's flags with every default filled in. */
export interface SupervisorFlags {
  /** See {@link SupervisorOptions.strategy}. */
  readonly strategy: Strategy
  /** See {@link SupervisorOptions.intensity}. */
  readonly intensity: number
  /** See {@link SupervisorOptions.periodMs}. */
  readonly periodMs: number
  /** See {@link SupervisorOptions.backoff}; `undefined` restarts at once. */
  readonly backoff: ResolvedBackoff | undefined
  /** See {@link SupervisorOptions.autoShutdown}. */
  readonly autoShutdown: AutoShutdown
}

/**
 * A worker child: a server under a supervisor. Also a typed {@link ServerRef} to that server,
 * so `tree.call(spec, input)` type-checks. Made by {@link worker}.
 * @typeParam I - the server's inputs
 * @typeParam O - the server's outputs
 */
export interface WorkerSpec<I = unknown, O = unknown> extends ServerRef<I, O> {
  /** Always `'worker'`. */
  readonly kind: 'worker'
  /** The server's definition, with its types erased. */
  readonly server: ServerSpec<unknown, unknown, unknown>
  /** See {@link ChildOptions.restart}. */
  readonly restart: RestartType
  /** See {@link ChildOptions.shutdown}. */
  readonly shutdown: Shutdown
  /** See {@link ChildOptions.significant}. */
  readonly significant: boolean
  /** See {@link WorkerOptions.startTimeoutMs}; `undefined`: no limit. */
  readonly startTimeoutMs: number | undefined
}

/** A supervisor child (or the root of a tree). Made by {@link supervisor}. */
export interface SupervisorSpec {
  /** Always `'supervisor'`. */
  readonly kind: 'supervisor'
  /** The supervisor's id, unique in the tree. */
  readonly id: string
  /** Its flags. */
  readonly flags: SupervisorFlags
  /** Its children in start order. */
  readonly children: readonly ChildSpec[]
  /** See {@link ChildOptions.restart}. */
  readonly restart: RestartType
  /** See {@link ChildOptions.shutdown}. */
  readonly shutdown: Shutdown
  /** See {@link ChildOptions.significant}. */
  readonly significant: boolean
}

/** A child of a supervisor. */
export type ChildSpec = WorkerSpec | SupervisorSpec

/** Default shutdown time of a worker, OTP's: 5 seconds. */
export const DEFAULT_WORKER_SHUTDOWN_MS = 5000

/**
 * A worker child running `server` under the name `id` (unique in the tree: calls address it).
 * @throws TypeError naming the argument or option that is wrong
 */
export function worker<I, S, O> (id: string, server: ServerSpec<I, S, O>, options: WorkerOptions = {}): WorkerSpec<I, O> {
  checkId(id, 'worker')
  checkServerSpec(server, 'worker: server')
  const common = checkChildOptions(options, 'worker', DEFAULT_WORKER_SHUTDOWN_MS)
  const startTimeoutMs = options.startTimeoutMs
  if (startTimeoutMs !== undefined && (typeof startTimeoutMs !== 'number' || !(startTimeoutMs > 0) || startTimeoutMs === Infinity)) {
    throw new TypeError('worker: options.startTimeoutMs must be a finite number of milliseconds > 0')
  }
  return Object.freeze({
    kind: 'worker',
    id,
    server: server as unknown as ServerSpec<unknown, unknown, unknown>,
    ...common,
    startTimeoutMs
  })
}

/**
 * A supervisor with id `id` over `children`, started in the order given (depth first) and
 * stopped in reverse order.
 * @throws TypeError naming the argument or option that is wrong, including two children with
 *   one id, or significant children the flags do not allow
 */
export function supervisor (id: string, options: SupervisorOptions, children: readonly ChildSpec[] = []): SupervisorSpec {
  checkId(id, 'supervisor')
  if (typeof options !== 'object' || options === null) throw new TypeError('supervisor: options must be an object')
  if (!Array.isArray(children)) throw new TypeError('supervisor: children must be an array of child specs')
  const flags = resolveFlags(options)
  const common = checkChildOptions(options, 'supervisor', 'infinity')
  if (flags.strategy === 'simple_one_for_one' && children.length > 0) {
    throw new TypeError('supervisor: a simple_one_for_one supervisor starts without children (add them with startChild)')
  }
  const ids = new Set<string>()
  for (const child of children) {
    checkChildForParent(child, flags, 'supervisor: children')
    if (ids.has(child.id)) throw new TypeError(`supervisor: two children with id ${JSON.stringify(child.id)}`)
    ids.add(child.id)
  }
  return Object.freeze({ kind: 'supervisor', id, flags, children: Object.freeze([...children]), ...common })
}

/**
 * Checks that `child` is a child spec that a supervisor with `flags` may hold: made by
 * {@link worker} or {@link supervisor}, and significant only where `autoShutdown` allows it.
 */
export function checkChildForParent (child: unknown, flags: SupervisorFlags, argument: string): asserts child is ChildSpec {
  if (typeof child !== 'object' || child === null) throw new TypeError(`${argument}: each child must be a spec made by worker() or supervisor()`)
  const c = child as Partial<ChildSpec>
  if ((c.kind !== 'worker' && c.kind !== 'supervisor') || typeof c.id !== 'string') {
    throw new TypeError(`${argument}: each child must be a spec made by worker() or supervisor()`)
  }
  if (c.significant === true && flags.autoShutdown === 'never') {
    throw new TypeError(`${argument}: ${JSON.stringify(c.id)} is significant but the supervisor's autoShutdown is 'never'`)
  }
}

/** Every id in the tree under `root` (root included), depth first; throws on a duplicate. */
export function collectIds (root: SupervisorSpec, into = new Set<string>()): Set<string> {
  const visit = (spec: ChildSpec): void => {
    if (into.has(spec.id)) throw new TypeError(`id ${JSON.stringify(spec.id)} is used twice in the supervision tree`)
    into.add(spec.id)
    if (spec.kind === 'supervisor') for (const child of spec.children) visit(child)
  }
  visit(root)
  return into
}

function checkId (id: unknown, fn: string): void {
  if (typeof id !== 'string' || id === '') throw new TypeError(`${fn}: id must be a non-empty string`)
}

function checkChildOptions (options: ChildOptions, fn: string, defaultShutdown: Shutdown): { restart: RestartType, shutdown: Shutdown, significant: boolean } {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${fn}: options must be an object`)
  const restart = options.restart ?? 'permanent'
  if (restart !== 'permanent' && restart !== 'transient' && restart !== 'temporary') {
    throw new TypeError(`${fn}: options.restart must be 'permanent', 'transient' or 'temporary'`)
  }
  const shutdown = options.shutdown ?? defaultShutdown
  if (!(shutdown === 'brutal' || shutdown === 'infinity' || (typeof shutdown === 'number' && Number.isFinite(shutdown) && shutdown >= 0))) {
    throw new TypeError(`${fn}: options.shutdown must be milliseconds >= 0, 'brutal' or 'infinity'`)
  }
  const significant = options.significant ?? false
  if (typeof significant !== 'boolean') throw new TypeError(`${fn}: options.significant must be a boolean`)
  if (significant && restart === 'permanent') {
    throw new TypeError(`${fn}: a significant child must be transient or temporary (options.restart)`)
  }
  return { restart, shutdown, significant }
}

function resolveFlags (options: SupervisorOptions): SupervisorFlags {
  const strategy = options.strategy ?? 'one_for_one'
  if (!['one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one'].includes(strategy)) {
    throw new TypeError("supervisor: options.strategy must be 'one_for_one', 'one_for_all', 'rest_for_one' or 'simple_one_for_one'")
  }
  const intensity = options.intensity ?? 1
  if (!Number.isInteger(intensity) || intensity < 0) throw new TypeError('supervisor: options.intensity must be an integer >= 0')
  const periodMs = options.periodMs ?? 5000
  if (typeof periodMs !== 'number' || !Number.isFinite(periodMs) || periodMs <= 0) throw new TypeError('supervisor: options.periodMs must be a number > 0')
  const autoShutdown = options.autoShutdown ?? 'never'
  if (autoShutdown !== 'never' && autoShutdown !== 'any_significant' && autoShutdown !== 'all_significant') {
    throw new TypeError("supervisor: options.autoShutdown must be 'never', 'any_significant' or 'all_significant'")
  }
  return Object.freeze({ strategy, intensity, periodMs, backoff: resolveBackoff(options.backoff), autoShutdown })
}

function resolveBackoff (backoff: BackoffOptions | undefined): ResolvedBackoff | undefined {
  if (backoff === undefined) return undefined
  if (typeof backoff !== 'object' || backoff === null) throw new TypeError('supervisor: options.backoff must be an object')
  const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x)
  const { minMs, maxMs } = backoff
  if (!finite(minMs) || minMs < 0) throw new TypeError('supervisor: options.backoff.minMs must be a number >= 0')
  if (!finite(maxMs) || maxMs < minMs) throw new TypeError('supervisor: options.backoff.maxMs must be a number >= minMs')
  const factor = backoff.factor ?? 2
  if (!finite(factor) || factor < 1) throw new TypeError('supervisor: options.backoff.factor must be a number >= 1')
  const randomFactor = backoff.randomFactor ?? 0.2
  if (!finite(randomFactor) || randomFactor < 0) throw new TypeError('supervisor: options.backoff.randomFactor must be a number >= 0')
  const resetAfterMs = backoff.resetAfterMs ?? maxMs
  if (!finite(resetAfterMs) || resetAfterMs < 0) throw new TypeError('supervisor: options.backoff.resetAfterMs must be a number >= 0')
  return Object.freeze({ minMs, maxMs, factor, randomFactor, resetAfterMs })
}
