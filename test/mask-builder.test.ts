/**
 * MaskBuilder (src/eventfold/participants.ts): participant indexes collected in 32-bit words
 * make the same mask as OR-ing each index's bit, across word boundaries and the sign bit of a
 * word.
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
