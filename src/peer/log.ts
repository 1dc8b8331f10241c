/**
 * Loggers of one peer. Every line a peer logs starts with the peer's short id, so that the
 * lines of several peers in one process (tests, benchmarks, the demo) can be told apart, and
 * goes to the `debug` namespace `legion:<component>` (enable with `DEBUG=legion:*`; errors
 * under `legion:<component>:error`, traces under `legion:<component>:trace`).
 *
 * @module
 */
import { logger as libp2pLogger } from '@libp2p/logger'
import type { Logger } from '@libp2p/interface'

/** Makes the logger of one component of a peer. */
export type LoggerFactory = (component: string) => Logger

/** The last 6 characters of a peer id: enough to tell the peers of one cluster apart in logs. */
export function shortPeerId (peer: string): string {
  return peer.length <= 6 ? peer : peer.slice(-6)
}

/**
 * The logger factory of peer `self`: `legion:<component>` loggers whose every line starts
 * with `[<short id>]`.
 */
export function peerLoggers (self: string): LoggerFactory {
  const tag = `[${shortPeerId(self)}] `
  return (component) => prefixed(libp2pLogger(`legion:${component}`), tag)
}

function prefixed (base: Logger, tag: string): Logger {
  // Hot paths log (every merge, every send): a disabled namespace must cost a property read,
  // not a string concatenation and an array copy, hence the check before anything is built.
  const wrap = (target: Logger | Logger['error']) =>
    (formatter: unknown, ...args: unknown[]): void => {
      if (!(target as { enabled?: boolean }).enabled) return
      if (typeof formatter === 'string') target(tag + formatter, ...args)
      else target(`${tag}%o`, formatter, ...args)
    }
  const log = wrap(base) as Logger
  log.error = wrap(base.error)
  log.trace = wrap(base.trace)
  Object.defineProperty(log, 'enabled', { get: () => base.enabled })
  log.newScope = (name: string) => prefixed(base.newScope(name), tag)
  return log
}
