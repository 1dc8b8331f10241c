/**
 * A tiny dependency-free SVG line-chart generator for the benchmark charts: one or more
 * panels side by side, each with a log2 x axis (cluster sizes) and a linear or log10 y axis,
 * one line per series, and one legend for all panels. Points marked `open` (a lower bound:
 * the run did not converge by its deadline) are drawn hollow.
 *
 * @module
 */

export interface Point { x: number, y: number, open?: boolean }
export interface Series { name: string, color: string, dash?: string, points: Point[] }
export interface Panel { title: string, series: Series[] }
export interface ChartOptions {
  title: string
  xLabel: string
  yLabel: string
  panels: Panel[]
  /** log10 y axis (default true). */
  logY?: boolean
  /** Values on the x axis (default: every x of every point). */
  xTicks?: number[]
  panelWidth?: number
  panelHeight?: number
  /** Extra line under the title. */
  subtitle?: string
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function fmtTick (v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`
  if (v >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`
  if (v >= 1) return String(+v.toPrecision(3))
  return String(+v.toPrecision(2))
}

/** Renders the chart as a standalone SVG document. */
export function lineChart (o: ChartOptions): string {
  const logY = o.logY ?? true
  const pw = o.panelWidth ?? 300
  const ph = o.panelHeight ?? 240
  const margin = { top: o.subtitle !== undefined ? 64 : 48, left: 64, right: 16, bottom: 112, gap: 28 }
  const width = margin.left + o.panels.length * pw + (o.panels.length - 1) * margin.gap + margin.right
  const height = margin.top + ph + margin.bottom
  const all = o.panels.flatMap(p => p.series.flatMap(s => s.points)).filter(p => Number.isFinite(p.y) && (!logY || p.y > 0))
  const xs = o.xTicks ?? [...new Set(all.map(p => p.x))].sort((a, b) => a - b)
  const xMin = Math.log2(Math.min(...xs))
  const xMax = Math.log2(Math.max(...xs))
  let yMin = Math.min(...all.map(p => p.y))
  let yMax = Math.max(...all.map(p => p.y))
  if (!Number.isFinite(yMin)) { yMin = 1; yMax = 10 }
  let yTicks: number[]
  let ty: (v: number) => number
  if (logY) {
    const lo = Math.floor(Math.log10(yMin))
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(yMax)))
    yTicks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i))
    ty = v => ph - (Math.log10(v) - lo) / (hi - lo) * ph
  } else {
    const hi = yMax <= 0 ? 1 : yMax * 1.1
    const step = 10 ** Math.floor(Math.log10(hi / 4))
    const n = Math.ceil(hi / step)
    const stride = Math.ceil(n / 6)
    yTicks = Array.from({ length: Math.floor(n / stride) + 1 }, (_, i) => i * stride * step)
    const top = yTicks[yTicks.length - 1]!
    ty = v => ph - v / top * ph
  }
  const tx = (v: number): number => xMax === xMin ? pw / 2 : (Math.log2(v) - xMin) / (xMax - xMin) * (pw - 20) + 10

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`)
  if (o.subtitle !== undefined) out.push(`<text x="${width / 2}" y="40" text-anchor="middle" fill="#555">${esc(o.subtitle)}</text>`)
  o.panels.forEach((panel, i) => {
    const ox = margin.left + i * (pw + margin.gap)
    const oy = margin.top
    out.push(`<g transform="translate(${ox},${oy})">`)
    out.push(`<text x="${pw / 2}" y="-8" text-anchor="middle" font-size="12" font-weight="bold">${esc(panel.title)}</text>`)
    out.push(`<rect width="${pw}" height="${ph}" fill="none" stroke="#999"/>`)
    for (const t of yTicks) {
      const y = ty(t)
      out.push(`<line x1="0" x2="${pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#e4e4e4"/>`)
      if (i === 0) out.push(`<text x="-6" y="${(y + 4).toFixed(1)}" text-anchor="end">${fmtTick(t)}</text>`)
    }
    for (const x of xs) {
      const X = tx(x)
      out.push(`<line x1="${X.toFixed(1)}" x2="${X.toFixed(1)}" y1="0" y2="${ph}" stroke="#f0f0f0"/>`)
      out.push(`<text x="${X.toFixed(1)}" y="${ph + 16}" text-anchor="middle">${x}</text>`)
    }
    out.push(`<text x="${pw / 2}" y="${ph + 34}" text-anchor="middle" fill="#333">${esc(o.xLabel)}</text>`)
    for (const s of panel.series) {
      const pts = s.points.filter(p => Number.isFinite(p.y) && (!logY || p.y > 0)).sort((a, b) => a.x - b.x)
      if (pts.length === 0) continue
      const d = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${tx(p.x).toFixed(1)},${ty(p.y).toFixed(1)}`).join(' ')
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash !== undefined ? ` stroke-dasharray="${s.dash}"` : ''}/>`)
      for (const p of pts) {
        out.push(`<circle cx="${tx(p.x).toFixed(1)}" cy="${ty(p.y).toFixed(1)}" r="3.5" fill="${p.open === true ? '#fff' : s.color}" stroke="${s.color}" stroke-width="1.5"><title>${esc(`${s.name}, n=${p.x}: ${fmtTick(p.y)}${p.open === true ? ' (did not converge: lower bound)' : ''}`)}</title></circle>`)
      }
    }
    out.push('</g>')
  })
  out.push(`<text transform="translate(16,${margin.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(o.yLabel)}</text>`)
  // Legend: every distinct series name once.
  const legend = new Map<string, Series>()
  for (const p of o.panels) for (const s of p.series) if (!legend.has(s.name)) legend.set(s.name, s)
  // Legend items flow left to right and wrap at the chart's width.
  let lx = margin.left
  let ly = margin.top + ph + 54
  const place = (w: number): void => { if (lx + w > width - margin.right) { lx = margin.left; ly += 18 } }
  for (const s of legend.values()) {
    const w = 40 + s.name.length * 6.2
    place(w)
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash !== undefined ? ` stroke-dasharray="${s.dash}"` : ''}/>`)
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(s.name)}</text>`)
    lx += w
  }
  const openNote = 'hollow: did not converge by the deadline (a lower bound)'
  place(20 + openNote.length * 6)
  out.push(`<circle cx="${lx + 4}" cy="${ly}" r="3.5" fill="#fff" stroke="#555" stroke-width="1.5"/><text x="${lx + 12}" y="${ly + 4}">${esc(openNote)}</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
