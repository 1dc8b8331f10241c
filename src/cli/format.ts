/**
 * Human-readable output of the CLI: aligned tables and short summaries of the admin views.
 * (`--json` prints the views themselves instead.) Peer ids are long; tables show them whole,
 * since an operator copies them into `legion eject`.
 *
 * @module
 */

/** Aligns `rows` under `header` in columns two spaces apart. */
export function table (header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** Milliseconds for people. */
export function duration (ms: number | undefined): string {
  if (ms === undefined) return ''
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.round(ms / 60_000)} min`
}

/** Sorted partition numbers as ranges: `0-3, 7, 9-10`. */
export function ranges (partitions: readonly number[]): string {
  const out: string[] = []
  for (let i = 0; i < partitions.length;) {
    let j = i
    while (j + 1 < partitions.length && partitions[j + 1] === partitions[j]! + 1) j++
    out.push(i === j ? String(partitions[i]) : `${partitions[i]}-${partitions[j]}`)
    i = j + 1
  }
  return out.join(', ')
}

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

function cell (x: unknown): string {
  if (x === null || x === undefined) return ''
  return typeof x === 'object' ? JSON.stringify(x) : String(x)
}

/**
 * A service's view for people, as the status page shows it: an array of objects as a table
 * (one row each, a column per field); an object as its plain fields, one per line, then each
 * structured field under its own heading; anything else as JSON.
 */
export function viewText (data: unknown, depth = 0): string {
  if (Array.isArray(data) && data.length === 0) return '(none)'
  if (Array.isArray(data) && data.every(isRecord)) {
    const columns = [...new Set(data.flatMap(row => Object.keys(row)))]
    return table(columns.map(c => c.toUpperCase()), data.map(row => columns.map(c => cell(row[c]))))
  }
  if (isRecord(data) && depth < 2) {
    const entries = Object.entries(data)
    const plain = entries.filter(([, x]) => typeof x !== 'object' || x === null)
    const nested = entries.filter(([, x]) => typeof x === 'object' && x !== null)
    const width = Math.max(0, ...plain.map(([k]) => k.length))
    return [
      ...plain.map(([k, x]) => `${k.padEnd(width)}  ${cell(x)}`.trimEnd()),
      ...nested.map(([k, x]) => `\n${k}:\n${viewText(x, depth + 1)}`)
    ].join('\n')
  }
  return JSON.stringify(data, null, 2)
}
