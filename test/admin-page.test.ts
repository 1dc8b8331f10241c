/**
 * The status page in a real browser: headless Debian Chromium driven by playwright-core opens
 * one peer's page in a 3-peer cluster that runs a keyspace and discovery, checks what it shows
 * (the peer, its readiness, the members, the partition table, the keyspace's and discovery's
 * sections), then a peer crashes (the page shows it suspected) and an operator ejects it (the
 * page shows two members, the change, and the keyspace without it), all by the page's own
 * refreshing. A screenshot is saved as a test artifact in test-artifacts/ (gitignored).
 * Skips only when Chromium cannot be installed, and says so loudly.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, rename, stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'
import { cacheKeyspace, type Cache } from '../demo/cache/cache.js'
import { discovery, type DiscoveryInstance } from '../src/discovery/service.js'
import type { JsonValue } from '../src/codec/json.js'
import { adminCluster, request, stopPeers, TOKEN, urlOf, type AdminPeer } from './support/admin-cluster.js'
import { CHROMIUM_ARGS, findChromium } from './support/chromium.js'

const running: AdminPeer[] = []
let browser: Browser | undefined
after(async () => {
  await browser?.close()
  await stopPeers(running.splice(0))
})

const artifacts = fileURLToPath(new URL('../test-artifacts/', import.meta.url))

test('the status page shows the members, their health and the partition table, and follows a crash and an ejection live', async (t) => {
  const found = await findChromium()
  if ('missing' in found) {
    process.stderr.write(`\n${'!'.repeat(78)}\n!! BROWSER TEST SKIPPED: ${found.missing}\n${'!'.repeat(78)}\n\n`)
    t.skip(`no Chromium: ${found.missing}`)
    return
  }
  const peers = await adminCluster(3, undefined, 12, () => ({ cache: cacheKeyspace({ name: 'cache', partitions: 8, replication: 2 }), discovery: discovery() }))
  running.push(...peers)
  const [a, b, c] = peers
  const cacheOf = (p: AdminPeer): Cache => (p.services as unknown as { cache: Cache }).cache
  const discoveryOf = (p: AdminPeer): DiscoveryInstance<JsonValue, JsonValue> => (p.services as unknown as { discovery: DiscoveryInstance<JsonValue, JsonValue> }).discovery
  await Promise.all(peers.map(async p => { await cacheOf(p).whenSettled({ timeoutMs: 45_000 }) }))
  discoveryOf(b!).register('worker', { slots: 2 })
  await discoveryOf(a!).elect('boss', () => () => {}).whenRunning({ timeoutMs: 15_000 })
  browser = await chromium.launch({ executablePath: found.path, args: CHROMIUM_ARGS, timeout: 30_000 })
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } })
  const pageErrors: string[] = []
  page.on('pageerror', err => { pageErrors.push(err.message) })
  // Nothing but the endpoint itself is ever requested (the page is self-contained).
  const origin = new URL(urlOf(a!)).origin
  const foreign: string[] = []
  page.on('request', r => { if (!r.url().startsWith(origin)) foreign.push(r.url()) })
  await page.goto(`${urlOf(a!)}/?refresh=300`)

  await page.waitForFunction("document.querySelectorAll('#members tr[data-peer]').length === 3", undefined, { timeout: 15_000 })
  assert.equal(await page.textContent('#cluster'), a!.clusterName)
  assert.equal(await page.getAttribute('#self', 'title'), a!.self)
  assert.equal(await page.textContent('#ready'), 'ready')
  const rows = await page.$$eval('#members tr[data-peer]', trs => trs.map(tr => [tr.getAttribute('data-peer'), tr.getAttribute('data-status')]))
  assert.deepEqual(rows, peers.map(p => p.self).sort().map(p => [p, 'alive']))
  const owners = await page.$$eval('#grid [data-partition]', cells => cells.map(cell => cell.getAttribute('data-owner')))
  assert.deepEqual(owners, a!.readState().projected.owners, 'one cell per partition, coloured by its owner')
  assert.equal(await page.locator('.legend span').count(), 3)

  // The keyspace's and discovery's sections: a table each, peer ids shortened with the full id as the title.
  await page.waitForFunction(`document.querySelectorAll('section[data-view="cache/table"] [data-field="byMember"] tbody tr').length === 3 &&
    document.querySelector('section[data-view="cache/handoffs"] [data-field="inProgress"]')?.textContent.includes('(none)') &&
    document.querySelectorAll('section[data-view="discovery/registry"] tbody tr').length === 1`, undefined, { timeout: 15_000 })
  const view = (name: string): string => `section[data-view="${name}"]`
  assert.deepEqual(await page.$$eval(`${view('cache/partitions')} tbody tr`, trs => trs.length), cacheOf(a!).stats().owned, 'one row per partition this peer serves')
  assert.deepEqual(await page.$$eval(`${view('cache/partitions')} thead th`, ths => ths.map(th => th.textContent)), ['partition', 'generation', 'role', 'owners', 'incoming', 'held', 'keys'])
  assert.equal(await page.textContent(`${view('cache/table')} tr[data-field="version"] td`), String(cacheOf(a!).table()!.version))
  assert.equal(await page.textContent(`${view('cache/table')} tr[data-field="partitions"] td`), '8')
  assert.deepEqual(await page.$$eval(`${view('cache/table')} [data-field="byMember"] tbody tr td:first-child`, tds => tds.map(td => td.getAttribute('title'))), peers.map(p => p.self).sort())
  assert.match(await page.textContent(`${view('cache/table')} h2`) ?? '', /Keyspace cache: ownership table/)
  const holder = await page.$$eval(`${view('discovery/holders')} tbody tr`, trs => trs.map(tr => [...tr.querySelectorAll('td')].map(td => td.getAttribute('title') ?? td.textContent)))
  assert.deepEqual(holder.map(cells => cells.slice(0, 2)), [['boss', a!.self]])

  // c crashes (stops without leaving): after the suspicion timeout the page shows it suspected.
  await c!.stop({ leave: false })
  await page.waitForFunction(`document.querySelector('#members tr[data-peer="${c!.self}"]')?.getAttribute('data-status') === 'suspected'`, undefined, { timeout: 15_000 })

  // An operator ejects it: the page shows two members, the change, and c's partitions moved.
  const ejected = await request(`${urlOf(a!)}/members/${c!.self}/eject`, { body: {}, token: TOKEN })
  assert.equal(ejected.status, 200, JSON.stringify(ejected.body))
  await page.waitForFunction("document.querySelectorAll('#members tr[data-peer]').length === 2", undefined, { timeout: 15_000 })
  await page.waitForFunction(`[...document.querySelectorAll('#changes li[data-kind="member-removed"]')].some(li => li.textContent.includes('${c!.self}'))`, undefined, { timeout: 15_000 })
  await page.waitForFunction(`document.querySelectorAll('#grid [data-partition]').length > 0 &&
    [...document.querySelectorAll('#grid [data-partition]')].every(cell => cell.getAttribute('data-owner') !== '${c!.self}')`, undefined, { timeout: 15_000 })
  assert.equal(await page.locator('.legend span').count(), 2)
  await page.waitForFunction(`document.querySelectorAll('section[data-view="cache/table"] [data-field="byMember"] tbody tr').length === 2`, undefined, { timeout: 15_000 })

  await mkdir(artifacts, { recursive: true })
  const shot = `${artifacts}admin-status-page.png`
  const partial = `${shot}.${process.pid}.tmp`
  await page.screenshot({ path: partial, fullPage: true, type: 'png' })
  await rename(partial, shot) // whole, even with other copies of the suite writing the same artifact
  assert.ok((await stat(shot)).size > 10_000, 'a screenshot with something in it')
  assert.deepEqual(pageErrors, [], 'the page\'s script threw nothing')
  assert.deepEqual(foreign, [], 'the page requested nothing from elsewhere')
})
