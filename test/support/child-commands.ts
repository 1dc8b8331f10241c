/**
 * The child side of the test harness's process protocol: JSON lines on stdout (`say`) and
 * commands as JSON lines on stdin, each answered by a `reply` with its id. Shared by every
 * peer process a test starts (test/support/*-process.ts, discovery-peer.ts).
 */
import { createInterface } from 'node:readline'

/** Writes one message for the parent, as a JSON line. */
export function say (message: object): void {
  process.stdout.write(JSON.stringify(message) + '\n')
}

/**
 * Runs each command line through `run` and replies with its value or its error. After the
 * `stop` command is answered, stdin is closed; stdin closing without a stop means the test
 * runner is gone, so `abandon` stops the peer too.
 */
export function serveCommands (run: (command: string, args: Record<string, unknown>) => Promise<unknown>, abandon: () => void): void {
  const commands = createInterface({ input: process.stdin })
  let stopped = false
  commands.on('line', line => {
    const { id, command, ...args } = JSON.parse(line) as { id: number, command: string } & Record<string, unknown>
    run(command, args).then(
      value => {
        say({ type: 'reply', id, value })
        if (command === 'stop') { stopped = true; commands.close(); process.stdin.destroy() }
      },
      (err: Error) => { say({ type: 'reply', id, error: `${err.name}: ${err.message}` }) }
    )
  })
  commands.on('close', () => { if (!stopped) abandon() })
}
