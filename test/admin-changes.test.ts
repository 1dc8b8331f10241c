/**
 * The admin endpoint's journal of recent changes (src/admin/changes.ts), fed snapshots as the
 * endpoint takes them from the peer every `observeIntervalMs`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChangeJournal, type Snapshot } from '../src/admin/changes.js'

const base: Snapshot = { phase: 'member', members: ['a', 'b', 'c', 'd'], suspected: [], stuck: [], brokenLinks: [], health: 'ok', tableVersion: undefined }

test('links between two members are recorded when they break and when they heal; one gone with its end is that end\'s removal', () => {
  const journal = new ChangeJournal(10, () => Date.UTC(2026, 11, 6))
  journal.observe(base)
  journal.observe({ ...base, brokenLinks: [['a', 'b'], ['a', 'c']] })
  journal.observe({ ...base, brokenLinks: [['a', 'b'], ['a', 'c']] })
  journal.observe({ ...base, brokenLinks: [['a', 'c']] })
  journal.observe({ ...base, members: ['b', 'c', 'd'], brokenLinks: [] })
  assert.deepEqual(journal.after().map(c => [c.kind, c.message]), [
    ['link-broken', 'a and b cannot reach each other (a broken link; both reach this peer)'],
    ['link-broken', 'a and c cannot reach each other (a broken link; both reach this peer)'],
    ['link-restored', 'a and b reach each other again'],
    ['member-removed', 'a left or was ejected']
  ])
  assert.equal(journal.after()[0]!.at, '2026-12-06T00:00:00.000Z')
})

test('the journal keeps the newest changes up to its capacity, numbered on', () => {
  const journal = new ChangeJournal(2, () => 0)
  journal.observe(base)
  for (const p of ['e', 'f', 'g']) journal.observe({ ...base, members: [...base.members, p] })
  assert.deepEqual(journal.after().map(c => c.seq), [4, 5], 'e joined (1), f joined and e left (2, 3), g joined and f left (4, 5)')
  assert.equal(journal.latest, 5)
  assert.deepEqual(journal.after(4).map(c => c.message), ['f left or was ejected'])
})
