/**
 * Progress of the CLI's long operations (starting and joining, leaving, committing a change
 * and waiting for every member to acknowledge it), as a `cli-progress` bar over named steps on
 * a terminal, and as nothing at all otherwise: a script reading the output, or `--json`, gets
 * only the result.
 *
 * @module
 */
import cliProgress from 'cli-progress'

/** Steps of one operation. */
export interface Progress {
  /** Moves to step `value` of the total, named `step`. */
  update(value: number, step: string): void
  /** Changes the total (e.g. once the number of members is known). */
  setTotal(total: number): void
  /** Ends the bar (leaves it on screen). */
  stop(): void
}

const SILENT: Progress = { update: () => {}, setTotal: () => {}, stop: () => {} }

/** A bar on stderr when it is a terminal and `enabled`; otherwise a progress that prints nothing. */
export function progress (total: number, enabled: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled || stream.isTTY !== true) return SILENT
  const bar = new cliProgress.SingleBar({ format: '{bar} {value}/{total} {step}', stream, hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic)
  bar.start(total, 0, { step: '' })
  return {
    update: (value, step) => { bar.update(value, { step }) },
    setTotal: (t) => { bar.setTotal(t) },
    stop: () => { bar.stop() }
  }
}
