/**
 * LogVector (src/eventfold/log-vector.ts): an acknowledgement's version vector by participant
 * index, one log per participant in arrays and further logs in a map.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LogVector } from '../src/eventfold/log-vector.js'

test('a log per participant: positions by participant and log, 0 for what is not listed', () => {
  const v = new LogVector()
  v.set(0, 1, 10)
  v.set(5, 7, 3)
  assert.equal(v.get(0, 1), 10)
  assert.equal(v.get(5, 7), 3)
  assert.equal(v.get(5, 8), 0, 'another log of a listed participant')
  assert.equal(v.get(2, 1), 0, 'an index in the hole between two listed ones')
  assert.equal(v.get(99, 1), 0, 'an index past every listed one')
  v.set(0, 1, 12)
  assert.equal(v.get(0, 1), 12, 'set again, a log keeps one position')
})

test('a participant with several logs: each log keeps its own position, and forEach lists every log once', () => {
  const v = new LogVector()
  v.set(3, 100, 4)
  v.set(3, 200, 9)
  v.set(3, 300, 1)
  v.set(1, 50, 2)
  v.set(3, 200, 11)
  assert.equal(v.get(3, 100), 4)
  assert.equal(v.get(3, 200), 11)
  assert.equal(v.get(3, 300), 1)
  const listed: Array<[number, number, number]> = []
  v.forEach((i, since, seq) => listed.push([i, since, seq]))
  listed.sort((x, y) => x[0] - y[0] || x[1] - y[1])
  assert.deepEqual(listed, [[1, 50, 2], [3, 100, 4], [3, 200, 11], [3, 300, 1]])
})
