/**
 * What a server is: the user's contract with the supervision layer, after the seed's
 * `input -> state -> (state, output)`. A {@link ServerSpec} is a pure `step` over a state, an
 * `init` that makes the first state (possibly async, possibly from saved state), an optional
 * `terminate`, codecs so that inputs can arrive as bytes from the network and outputs leave as
 * bytes, and optional persistence of the state across restarts. Also the vocabulary every other
 * module of the layer shares: why a server or supervisor stopped ({@link ExitReason}).
 *
 * Nothing here runs anything; the worker (`worker.ts`) and the event loop (`event-loop.ts`) do.
 * Because `step` is pure and its inputs have codecs, the same definition can later be run as a
 * replicated fold: `step` is then an EventFold `apply` over encoded inputs.
 *
 * @module
 */
import type { Codec } from '../codec/codec.js'
import { jsonCodec } from '../codec/json.js'

/** What `init` is given. */
export interface InitContext<S> {
  /** The server's name (its child id, unique in the tree). */
  readonly name: string
  /** Which start this is: 1 for the first, then one more per restart. */
  readonly incarnation: number
  /**
   * The state saved when the previous incarnation terminated, when the server declares
   * {@link ServerSpec.persistence} and something was saved; otherwise `undefined`.
   */
  readonly restored: S | undefined
}

/** What `terminate` is given besides the reason and the state. */
export interface TerminateContext {
  /** The server's name. */
  readonly name: string
  /** Which start of the server is stopping. */
  readonly incarnation: number
}

/** What `step` returns. */
export interface StepResult<S, O> {
  /** The state after the input. */
  readonly state: S
  /** The answer to the caller (discarded for a cast). */
  readonly output: O
  /**
   * `true` asks the server to stop after answering, with reason `normal`: a transient server is
   * then not restarted, a permanent one is.
   * @default false
   */
  readonly stop?: boolean
}

/** How the server's inputs and outputs become bytes, for callers on the network or over HTTP. */
export interface ServerCodecs<I, O> {
  /** Decodes encoded inputs (and encodes them, for a client). */
  readonly input: Codec<I>
  /** Encodes outputs for encoded callers. */
  readonly output: Codec<O>
}

/** Saving the state when the server terminates and offering it to the next `init`. */
export interface ServerPersistence<S> {
  /**
   * How the state becomes bytes in the tree's state store.
   * @default jsonCodec (the state must then be a `JsonValue`)
   */
  readonly codec?: Codec<S>
  /**
   * The key in the state store.
   * @default the server's name
   */
  readonly key?: string
}

/**
 * A server: a pure step function over a state, with its lifecycle callbacks and codecs.
 *
 * Contract:
 * 1. `step` is synchronous and pure: it must not mutate `input` or `state` (return a new state)
 *    and should not do I/O. A step that throws crashes the server incarnation: the caller gets a
 *    `ServerCrashedError`, the state before the input is kept for `terminate`, and the
 *    supervisor restarts what its strategy says.
 * 2. `init` may be async; if it throws, the start fails (and counts as a crash for restarts).
 * 3. `terminate` runs when the incarnation stops for any reason except a brutal kill, with the
 *    last good state. It is bounded by the child's shutdown time; if it overruns, it is
 *    abandoned and nothing is saved.
 * 4. With `persistence`, the state passed to `terminate` is saved (after `terminate` returns) and
 *    given back to the next `init` as `restored`. A crash therefore restarts from the state
 *    before the crashing input, which the pure `step` never changed.
 *
 * @typeParam I - inputs
 * @typeParam S - the state
 * @typeParam O - outputs
 */
export interface ServerSpec<I, S, O> {
  /** Makes the first state of an incarnation. */
  init (context: InitContext<S>): S | Promise<S>
  /** Handles one input: the new state and the answer. */
  step (input: I, state: S): StepResult<S, O>
  /** Cleans up when the incarnation stops. */
  terminate? (reason: ExitReason, state: S, context: TerminateContext): void | Promise<void>
  /**
   * Codecs of inputs and outputs, used only for encoded requests (network, HTTP); in-process
   * `call` and `cast` hand values over as they are.
   * @default jsonCodec for both (inputs and outputs must then be `JsonValue`s)
   */
  readonly codecs?: ServerCodecs<I, O>
  /**
   * Save the state at terminate and restore it at init, through the tree's state store.
   * @default undefined (nothing is saved)
   */
  readonly persistence?: ServerPersistence<S>
}

/**
 * Why a server or a supervisor stopped.
 * - `normal`: the server's `step` asked to stop (`stop: true`).
 * - `shutdown`: its supervisor or the tree stopped it, or a supervisor shut itself down because
 *   a significant child ended (auto_shutdown). Counts as a normal exit.
 * - `killed`: stopped without (a finished) `terminate`: shutdown `'brutal'`, or `terminate`
 *   overran the shutdown time. Abnormal.
 * - `crashed`: `init` or `step` threw (`error`); for a step, `input` is the input that crashed
 *   it. Abnormal.
 * - `gave-up`: a supervisor whose children needed more than `intensity` restarts within
 *   `periodMs`; it stopped its children and itself. Abnormal, so its own supervisor reacts.
 */
export type ExitReason =
  | {
    /** The server's step asked to stop. */
    readonly kind: 'normal'
  }
  | {
    /** Stopped by its supervisor or the tree, or an auto_shutdown. */
    readonly kind: 'shutdown'
  }
  | {
    /** Stopped without a finished `terminate`. */
    readonly kind: 'killed'
  }
  | {
    /** `init` or `step` threw. */
    readonly kind: 'crashed'
    /** Which of the two. */
    readonly phase: 'init' | 'step'
    /** What it threw. */
    readonly error: unknown
    /** For a step: the input that crashed it. */
    readonly input?: unknown
  }
  | {
    /** A supervisor exceeded its restart intensity. */
    readonly kind: 'gave-up'
    /** Restarts counted in the window, the one that exceeded the intensity included. */
    readonly restarts: number
    /** The window, in milliseconds. */
    readonly periodMs: number
  }

/** Whether `reason` is abnormal, the condition under which a `transient` child is restarted. */
export function isAbnormalExit (reason: ExitReason): boolean {
  return reason.kind !== 'normal' && reason.kind !== 'shutdown'
}

/**
 * Types carried by a {@link ServerRef} for the compiler only; never present at run time.
 * @typeParam I - inputs
 * @typeParam O - outputs
 */
export interface ServerTypes<I, O> {
  /** The input type. */
  readonly input: I
  /** The output type. */
  readonly output: O
}

/**
 * A typed address of a server in a tree: its name, plus its input and output types so that
 * `tree.call(ref, input)` is checked. A `WorkerSpec` is one; {@link serverRef} makes one.
 * @typeParam I - inputs
 * @typeParam O - outputs
 */
export interface ServerRef<I, O> {
  /** The server's name (its child id). */
  readonly id: string
  /** Present only in the type system. */
  readonly types?: ServerTypes<I, O>
}

/** A typed {@link ServerRef} to the server named `id`, running `server`'s definition. */
export function serverRef<I, S, O> (id: string, server?: ServerSpec<I, S, O>): ServerRef<I, O> {
  if (typeof id !== 'string' || id === '') throw new TypeError('serverRef: id must be a non-empty string')
  if (server !== undefined) checkServerSpec(server, 'server')
  return Object.freeze({ id })
}

/**
 * Checks `spec` from plain JavaScript and returns it (frozen), so a server definition reads as
 * one expression. Throws `TypeError` naming the field that is wrong.
 */
export function defineServer<I, S, O> (spec: ServerSpec<I, S, O>): ServerSpec<I, S, O> {
  checkServerSpec(spec, 'spec')
  return Object.freeze({ ...spec })
}

/** The `TypeError` checks of {@link defineServer}, also run when a worker is declared. */
export function checkServerSpec (spec: unknown, argument: string): void {
  if (typeof spec !== 'object' || spec === null) throw new TypeError(`${argument} must be a server spec object`)
  const s = spec as Record<string, unknown>
  if (typeof s.init !== 'function') throw new TypeError(`${argument}.init must be a function`)
  if (typeof s.step !== 'function') throw new TypeError(`${argument}.step must be a function`)
  if (s.terminate !== undefined && typeof s.terminate !== 'function') throw new TypeError(`${argument}.terminate must be a function`)
  if (s.codecs !== undefined) {
    const c = s.codecs as Record<string, unknown> | null
    if (typeof c !== 'object' || c === null || !isCodec(c.input) || !isCodec(c.output)) {
      throw new TypeError(`${argument}.codecs must be { input, output }, each a Codec with encode and decode`)
    }
  }
  if (s.persistence !== undefined) {
    const p = s.persistence as Record<string, unknown> | null
    if (typeof p !== 'object' || p === null) throw new TypeError(`${argument}.persistence must be an object`)
    if (p.codec !== undefined && !isCodec(p.codec)) throw new TypeError(`${argument}.persistence.codec must be a Codec`)
    if (p.key !== undefined && (typeof p.key !== 'string' || p.key === '')) throw new TypeError(`${argument}.persistence.key must be a non-empty string`)
  }
}

function isCodec (value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const c = value as Record<string, unknown>
  return typeof c.encode === 'function' && typeof c.decode === 'function'
}

/** The codecs of `spec`, with the `jsonCodec` default applied. */
export function codecsOf<I, O> (spec: ServerSpec<I, unknown, O>): ServerCodecs<I, O> {
  return spec.codecs ?? (DEFAULT_CODECS as unknown as ServerCodecs<I, O>)
}

const DEFAULT_CODECS = Object.freeze({ input: jsonCodec, output: jsonCodec })

/** The persistence codec of `spec`, with the `jsonCodec` default applied. */
export function stateCodecOf<S> (persistence: ServerPersistence<S>): Codec<S> {
  return persistence.codec ?? (jsonCodec as unknown as Codec<S>)
}
