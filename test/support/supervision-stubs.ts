/**
 * Stub servers for the supervision specifications: each records its starts and stops in a shared
 * log, crashes on the input `'crash'`, asks to stop on `'stop'`, and otherwise counts its inputs.
 * Its `init` and `terminate` can be made to wait on a gate or to hang, to exercise start-up races
 * and shutdown deadlines on a ManualClock.
 */
import { defineServer, type ManualClock, type ServerSpec } from '../../src/supervision/index.js'

/** A promise the test opens by hand. */
export interface Gate {
  readonly promise: Promise<void>
  open: () => void
}

/** A closed {@link Gate}. */
export function gate (): Gate {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

/** How a stub behaves. */
export interface StubOptions {
  /** Awaited by `init` before it returns (per incarnation: called with the incarnation). */
  readonly initGate?: (incarnation: number) => Promise<void> | undefined
  /** Thrown by `init` when it returns an error for this incarnation. */
  readonly initError?: (incarnation: number) => Error | undefined
  /** Awaited by `terminate` before it returns. */
  readonly terminateGate?: () => Promise<void>
  /** Inputs stepped, in order, across incarnations. */
  readonly stepped?: string[]
}

/** A stub server logging to `log`: `start <name>` at init, `stop <name> <reason>` at terminate. */
export function stub (log: string[], options: StubOptions = {}): ServerSpec<string, number, string> {
  return defineServer<string, number, string>({
    async init ({ name, incarnation }) {
      log.push(`start ${name}`)
      await options.initGate?.(incarnation)
      const error = options.initError?.(incarnation)
      if (error !== undefined) throw error
      return 0
    },
    step (input, n) {
      options.stepped?.push(input)
      if (input === 'crash') throw new Error('crash requested')
      if (input === 'stop') return { state: n, output: 'stopping', stop: true }
      return { state: n + 1, output: `${input}:${n + 1}` }
    },
    async terminate (reason, _state, { name }) {
      log.push(`stop ${name} ${reason.kind}`)
      await options.terminateGate?.()
    }
  })
}

/**
 * Lets the tree settle (timers due now fire, promise chains run) until `condition` holds, at
 * most `rounds` times; throws naming `what` if it never does. Time does not move.
 */
export async function until (clock: ManualClock, condition: () => boolean, what: string, rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (condition()) return
    await clock.advance(0)
  }
  if (!condition()) throw new Error(`timed out waiting for: ${what}`)
}

/** The state of a promise without waiting for it. */
export function track<T> (promise: Promise<T>): { readonly state: () => 'pending' | 'resolved' | 'rejected', readonly value: () => T | undefined, readonly error: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending'
  let value: T | undefined
  let error: unknown
  promise.then((v) => { state = 'resolved'; value = v }, (e: unknown) => { state = 'rejected'; error = e })
  return { state: () => state, value: () => value, error: () => error }
}
