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
