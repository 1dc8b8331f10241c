/**
 * MaskBuilder (src/eventfold/participants.ts): participant indexes collected in 32-bit words
 * make the same mask as OR-ing each index's bit, across word boundaries and the sign bit of a
 * word. And the participant table's lists of masks, which it keeps.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MaskBuilder, ParticipantTable } from '../src/eventfold/participants.js'

test('the mask of the indexes added is the OR of their bits, at word edges and past 64; take starts over', () => {
  const table = new ParticipantTable()
  for (let i = 0; i < 130; i++) table.intern(`p${String(i).padStart(3, '0')}`)
  const builder = new MaskBuilder()
  const sets = [[0], [31], [32], [31, 32], [63], [64], [0, 31, 63, 64, 95, 96, 127, 129], [5, 5, 5], Array.from({ length: 130 }, (_, i) => i)]
  for (const indexes of sets) {
    let expected = 0n
    for (const i of indexes) {
      builder.add(i)
      expected |= table.bit(i)
    }
    assert.equal(builder.empty, false)
    assert.equal(builder.take(), expected, `indexes ${indexes.join(',')}`)
    assert.equal(builder.empty, true)
  }
})

test('a builder nothing was added to is empty and makes the empty mask', () => {
  const builder = new MaskBuilder()
  assert.equal(builder.empty, true)
  assert.equal(builder.take(), 0n)
})

test('a mask lists its participants sorted, the same after the table grew, and a list changed by its caller changes nothing listed later', () => {
  const table = new ParticipantTable()
  for (const p of ['carol', 'alice', 'bob']) table.intern(p)
  const mask = table.bit(0) | table.bit(1)
  const first = table.list(mask)
  assert.deepEqual(first, ['alice', 'carol'])
  first.push('mallory')
  first.sort().reverse()
  table.intern('aaron')
  assert.deepEqual(table.list(mask), ['alice', 'carol'])
  assert.deepEqual(table.list(mask | table.bit(3)), ['aaron', 'alice', 'carol'])
  // Past the lists it keeps, it starts over and still lists right.
  for (let i = 0; i < 100; i++) table.intern(`p${String(i).padStart(3, '0')}`)
  for (let i = 4; i < 104; i++) assert.deepEqual(table.list(table.bit(i)), [`p${String(i - 4).padStart(3, '0')}`])
  assert.deepEqual(table.list(mask), ['alice', 'carol'])
})

