/**
 * The status page `GET /` serves: one self-contained HTML document (inline style and script,
 * nothing fetched from elsewhere, no build step) that reads the endpoint's own JSON views with
 * relative URLs (so it works wherever the handler is mounted) and refreshes itself every
 * second: this peer and its readiness, the members and their health, the partition table,
 * the views other layers contribute (the keyspace's partitions, table and handoffs, the
 * registry's elected holders and registrations, when those services run),
 * the supervision trees, and the recent changes. Every value reaches the page through
 * `textContent`, never as markup, so nothing a peer id or a view holds can inject script.
 *
 * @module
 */

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; padding: 16px 24px; }
header { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: baseline; border-bottom: 1px solid var(--line); padding-bottom: 8px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 16px; margin: 20px 0 8px; }
h3 { font-size: 14px; margin: 12px 0 6px; }
table.fields th { font-weight: normal; color: var(--muted); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); }
.badge.alive, .badge.ready, .badge.running, .badge.member { background: var(--ok); }
.badge.joining, .badge.leaving, .badge.restarting, .badge.starting { background: var(--warn); }
.badge.suspected, .badge.stuck, .badge.not-ready, .badge.down, .badge.ejected, .badge.stopped { background: var(--bad); }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid var(--line); vertical-align: top; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(34px, 1fr)); gap: 3px; max-width: 960px; }
#grid div { font-size: 11px; text-align: center; padding: 4px 0; border-radius: 3px; color: #fff; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
#changes { list-style: none; padding: 0; margin: 0; max-height: 320px; overflow: auto; }
#changes li { padding: 2px 0; border-bottom: 1px solid var(--line); }
ul.tree { margin: 0; padding-left: 18px; }
#error { color: var(--bad); font-weight: 600; }
`

const SCRIPT = `
'use strict'
const params = new URLSearchParams(location.search)
const refreshMs = Math.max(250, Number(params.get('refresh')) || 1000)
const $ = (id) => document.getElementById(id)
function el (tag, attrs, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v
    else if (k === 'title') e.title = v
    else e.setAttribute(k, v)
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)))
  return e
}
const short = (id) => id.length > 14 ? '…' + id.slice(-10) : id
const ms = (n) => n == null ? '' : n < 1000 ? n + ' ms' : n < 120000 ? (n / 1000).toFixed(1) + ' s' : Math.round(n / 60000) + ' min'
function colour (id) {
  let h = 0
  for (const ch of id) h = (h * 31 + ch.codePointAt(0)) >>> 0
  return 'hsl(' + (h % 360) + ', 55%, 42%)'
}
async function get (path) {
  const res = await fetch(path, { cache: 'no-store' })
  const body = await res.json().catch(() => ({}))
  return { status: res.status, body }
}
function peerCell (id, self) {
  return el('td', { class: 'mono', title: id }, short(id), self ? el('span', { class: 'muted' }, ' (this peer)') : '')
}
function renderStatus (s) {
  $('cluster').textContent = s.cluster
  $('self').textContent = short(s.self)
  $('self').title = s.self
  $('phase').textContent = s.phase
  $('phase').className = 'badge ' + s.phase
  $('ready').textContent = s.ready ? 'ready' : 'not ready'
  $('ready').className = 'badge ' + (s.ready ? 'ready' : 'not-ready')
  $('version').textContent = 'legion ' + s.version
  $('summary').textContent = s.members == null ? '' :
    s.members + ' members, ' + s.suspected + ' suspected, ' + s.stuck + ' stuck, ' + s.outstanding + ' outstanding events'
}
function renderMembers (m) {
  const rows = m.members.map((p) => el('tr', { 'data-peer': p.peer, 'data-status': p.status },
    peerCell(p.peer, p.self),
    el('td', {}, el('span', { class: 'badge ' + p.status }, p.status)),
    el('td', {}, p.self ? '' : ms(p.silentForMs)),
    el('td', {}, p.stuck ? ms(p.stuck.sinceProgressMs) + ' in ' + (p.stuck.group || 'cluster') + (p.stuck.reason ? ': ' + p.stuck.reason : '') : ''),
    el('td', {}, p.divergent ? 'behind for ' + ms(p.divergent.sinceProgressMs) : ''),
    el('td', { title: (p.unreachable || []).join(', ') }, (p.unreachable || []).map(short).join(', '))))
  $('member-count').textContent = String(m.members.length)
  $('members').replaceChildren(...rows)
}
function renderPartitions (r) {
  const box = $('partitions')
  if (r.status !== 200) { box.replaceChildren(el('p', { class: 'muted' }, r.body.message || 'no partition table')); return }
  const t = r.body
  const grid = el('div', { id: 'grid' }, ...t.owners.map((o, i) => el('div', {
    'data-partition': String(i), 'data-owner': o || '', title: 'partition ' + i + ': ' + (o || 'unowned'),
    style: 'background:' + (o ? colour(o) : '#888')
  }, String(i))))
  const legend = el('p', { class: 'legend' }, ...Object.entries(t.byOwner).map(([o, ps]) =>
    el('span', { title: o }, el('i', { style: 'background:' + colour(o) }), short(o) + ': ' + ps.length)))
  box.replaceChildren(el('p', { class: 'muted' }, 'version ' + t.version + (t.settledVersion !== t.version ? ' (settled: ' + t.settledVersion + ')' : '') +
    ', ' + t.partitions + ' partitions, ' + (t.balanced ? 'balanced' : 'unbalanced')), grid, legend)
}
const PEER_ID = /^(12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]{40,}$/
const isRecord = (x) => x !== null && typeof x === 'object' && !Array.isArray(x)
function cell (x) {
  if (x !== null && typeof x === 'object') return el('td', { class: 'mono' }, JSON.stringify(x))
  if (typeof x === 'string' && PEER_ID.test(x)) return el('td', { class: 'mono', title: x }, short(x))
  return el('td', { class: 'mono' }, x)
}
// A view's data: an array of objects as a table (one row each); an object as a table of its
// plain fields, then each structured field under its own heading; anything else as JSON.
function renderValue (v, depth) {
  depth = depth || 0
  if (Array.isArray(v) && v.length === 0) return el('p', { class: 'muted' }, '(none)')
  if (Array.isArray(v) && v.every(isRecord)) {
    const cols = [...new Set(v.flatMap((x) => Object.keys(x)))]
    return el('table', {}, el('thead', {}, el('tr', {}, ...cols.map((c) => el('th', {}, c)))),
      el('tbody', {}, ...v.map((x) => el('tr', {}, ...cols.map((c) => cell(x[c]))))))
  }
  if (isRecord(v) && depth < 2) {
    const entries = Object.entries(v)
    const plain = entries.filter(([, x]) => x === null || typeof x !== 'object')
    const nested = entries.filter(([, x]) => x !== null && typeof x === 'object')
    return el('div', {},
      plain.length > 0 ? el('table', { class: 'fields' }, el('tbody', {}, ...plain.map(([k, x]) => el('tr', { 'data-field': k }, el('th', {}, k), cell(x))))) : '',
      ...nested.map(([k, x]) => el('div', { 'data-field': k }, el('h3', {}, k), renderValue(x, depth + 1))))
  }
  return el('pre', { class: 'mono' }, JSON.stringify(v, null, 2))
}
async function renderViews (list) {
  const parts = []
  for (const v of list.views) {
    const r = await get('views/' + v.name.split('/').map(encodeURIComponent).join('/'))
    parts.push(el('section', { 'data-view': v.name, 'data-service': v.name.split('/')[0] },
      el('h2', {}, v.title, ' ', el('span', { class: 'muted mono' }, v.name)),
      r.status === 200 ? renderValue(r.body.data) : el('p', { class: 'muted' }, r.body.message || 'unavailable')))
  }
  $('views').replaceChildren(...parts)
}
function renderTree (info) {
  return el('ul', { class: 'tree' }, ...info.children.map((c) => el('li', {},
    el('span', { class: 'mono' }, c.id), ' ', el('span', { class: 'badge ' + c.status.kind }, c.status.kind),
    ' ', el('span', { class: 'muted' }, c.kind + ', ' + c.restarts + ' restart' + (c.restarts === 1 ? '' : 's')),
    c.subtree ? renderTree(c.subtree) : '')))
}
function renderSupervision (s) {
  $('supervision-section').hidden = s.trees.length === 0
  $('supervision').replaceChildren(...s.trees.map((t) => el('div', { 'data-tree': t.name },
    el('p', {}, el('strong', {}, t.name), ' ', el('span', { class: 'badge ' + t.status }, t.status),
      el('span', { class: 'muted' }, ' ' + t.stats.restarts + ' restarts, ' + t.stats.queued + ' queued')),
    t.root ? el('div', {}, el('span', { class: 'mono' }, t.root.id + ' (' + t.root.strategy + ')'), renderTree(t.root)) : '')))
}
function renderChanges (c) {
  $('changes').replaceChildren(...c.changes.slice().reverse().map((x) => el('li', { 'data-kind': x.kind },
    el('span', { class: 'muted mono' }, x.at.replace('T', ' ').replace(/\\.\\d+Z$/, 'Z')), ' ', x.message)))
}
async function refresh () {
  try {
    const status = await get('status')
    renderStatus(status.body)
    if (status.body.members != null) {
      const [members, partitions, changes, views, supervision] = await Promise.all([get('members'), get('partitions'), get('changes'), get('views'), get('supervision')])
      if (members.status === 200) renderMembers(members.body)
      renderPartitions(partitions)
      if (changes.status === 200) renderChanges(changes.body)
      if (views.status === 200) await renderViews(views.body)
      if (supervision.status === 200) renderSupervision(supervision.body)
    }
    $('error').textContent = ''
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString()
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1)
  } catch (err) {
    $('error').textContent = 'cannot reach the peer: ' + err.message
  } finally {
    setTimeout(refresh, refreshMs)
  }
}
refresh()
`

/** The page: see the module comment. */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Legion peer status</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>Legion <span id="cluster" class="mono"></span></h1>
  <span>peer <code id="self"></code></span>
  <span id="phase" class="badge"></span>
  <span id="ready" class="badge"></span>
  <span id="summary" class="muted"></span>
  <span id="version" class="muted"></span>
  <span id="updated" class="muted"></span>
  <span id="error"></span>
</header>
<main>
  <section><h2>Members (<span id="member-count">0</span>)</h2>
    <table><thead><tr><th>Peer</th><th>Status</th><th>Silent for</th><th>Stuck</th><th>Divergent</th><th>Cannot reach</th></tr></thead><tbody id="members"></tbody></table>
  </section>
  <section><h2>Partition table</h2><div id="partitions"></div></section>
  <div id="views"></div>
  <section id="supervision-section" hidden><h2>Supervision trees</h2><div id="supervision"></div></section>
  <section><h2>Recent changes</h2><ul id="changes"></ul></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`
