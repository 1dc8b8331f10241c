/**
 * LogPositions (src/eventfold/log-positions.ts): one log's outstanding entries by position, appended at
 * the head and removed from the front in the common case, and still right when entries come
 * back before the first one or past a hole.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LogPositions } from '../src/eventfold/log-positions.js'

test('appended at the head, removed from the front: positions map to their entries', () => {
  const p = new LogPositions<string>()
  for (let s = 5; s <= 2_000; s++) p.set(s, `e${s}`)
  assert.equal(p.size, 1_996)
  assert.equal(p.get(4), undefined)
  assert.equal(p.get(5), 'e5')
  assert.equal(p.get(2_000), 'e2000')
  assert.equal(p.get(2_001), undefined)
  for (let s = 5; s <= 1_500; s++) p.delete(s, `e${s}`)
  assert.equal(p.size, 500)
  assert.equal(p.first, 1_501, 'the start moved past what left (and the array was compacted)')
  assert.equal(p.last, 2_000)
  assert.equal(p.get(1_500), undefined)
  assert.equal(p.get(1_501), 'e1501')
  p.delete(1_600, 'not the entry there')
  assert.equal(p.get(1_600), 'e1600', 'only the entry itself is removed')
  for (let s = 1_501; s <= 2_000; s++) p.delete(s, `e${s}`)
  assert.equal(p.size, 0)
  p.set(9_000, 'again')
  assert.equal(p.first, 9_000, 'emptied, it starts over wherever the next entry is')
  assert.equal(p.get(9_000), 'again')
})

test('entries put back before the first one, and past a hole, are found at their positions', () => {
  const p = new LogPositions<string>()
  p.set(10, 'a')
  p.set(11, 'b')
  p.set(7, 'back')
  assert.deepEqual([p.first, p.last, p.size], [7, 11, 3])
  assert.deepEqual([7, 8, 9, 10, 11].map(s => p.get(s)), ['back', undefined, undefined, 'a', 'b'])
  p.set(14, 'past a hole')
  assert.deepEqual([12, 13, 14].map(s => p.get(s)), [undefined, undefined, 'past a hole'])
  p.delete(7, 'back')
  assert.equal(p.first, 10, 'the start skips the hole')
  p.set(11, 'replaced')
  assert.equal(p.size, 3)
  assert.equal(p.get(11), 'replaced')
})
