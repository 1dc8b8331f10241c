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
  const wrap = (target: (formatter: unknown, ...args: unknown[]) => void) =>
    (formatter: unknown, ...args: unknown[]): void => {
      target(typeof formatter === 'string' ? tag + formatter : `${tag}%o`, ...(typeof formatter === 'string' ? args : [formatter, ...args]))
    }
  const log = wrap(base) as Logger
  log.error = wrap(base.error)
  log.trace = wrap(base.trace)
  log.enabled = base.enabled
  log.newScope = (name: string) => prefixed(base.newScope(name), tag)
  return log
}
