/**
 * The batches the key-value crash test writes (test/key-value-storage.test.ts): batch n puts
 * a number of values of mixed sizes (some spanning many LMDB pages) into namespace
 * `crash/data`, moves the one key of `crash/scratch` from n - 1 to n (a delete and a put), and
 * sets `crash`'s head to n, all in one batch across three namespaces. Everything follows from n,
 * so the parent can check that what survived is batches 1..k, each whole, and nothing else.
 */
import assert from 'node:assert/strict'
import type { KeyValueOperation, KeyValueView } from '../../src/storage/key-value.js'
import { readTupleKey, tupleKey } from '../../src/storage/tuple-key.js'

const SIZES = [64, 2048, 40_000, 250_000]

/** How many values batch n puts. */
function valueCount (n: number): number {
  return 1 + ((n * 7) % 12)
}

/** Value i of batch n. */
function crashValue (n: number, i: number): Uint8Array {
  const value = new Uint8Array(SIZES[(n * 3 + i) % SIZES.length]!)
  for (let j = 0; j < value.length; j++) value[j] = (n * 13 + i * 7 + j) & 0xff
  new DataView(value.buffer).setUint32(0, n)
  return value
}

function u32 (n: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n)
  return out
}

/** Batch number n, relative to the store's root. */
export function crashBatch (n: number): KeyValueOperation[] {
  const operations: KeyValueOperation[] = []
  for (let i = 0; i < valueCount(n); i++) operations.push({ type: 'put', namespace: 'crash/data', key: tupleKey(n, i), value: crashValue(n, i) })
  if (n > 1) operations.push({ type: 'delete', namespace: 'crash/scratch', key: tupleKey(n - 1) })
  operations.push({ type: 'put', namespace: 'crash/scratch', key: tupleKey(n), value: u32(n) })
  operations.push({ type: 'put', namespace: 'crash', key: tupleKey('head'), value: u32(n) })
  return operations
}

/** The head (number of the last batch) stored, 0 when none. */
export async function crashHead (store: KeyValueView): Promise<number> {
  const head = await store.namespace('crash').get(tupleKey('head'))
  return head === undefined ? 0 : new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(0)
}

/**
 * Asserts that `store` holds exactly batches 1..k, each whole, where k is its head, and
 * returns k.
 */
export async function assertWholeBatches (store: KeyValueView): Promise<number> {
  const head = await crashHead(store)
  let expectedBatch = 1
  let expectedIndex = 0
  for await (const { key, value } of store.namespace('crash/data').range()) {
    const [n, i] = readTupleKey(key) as [number, number]
    if (n !== expectedBatch) {
      assert.equal(expectedIndex, valueCount(expectedBatch), `batch ${expectedBatch} has ${expectedIndex} of its ${valueCount(expectedBatch)} values`)
      expectedBatch++
      expectedIndex = 0
    }
    assert.equal(n, expectedBatch, `found a value of batch ${n} where batch ${expectedBatch} was due`)
    assert.equal(i, expectedIndex, `batch ${n}: value ${i} where ${expectedIndex} was due`)
    assert.deepEqual(value, crashValue(n, i), `batch ${n}: value ${i} differs`)
    expectedIndex++
  }
  if (head === 0) {
    assert.equal(expectedIndex, 0, 'values stored without a head')
    return 0
  }
  assert.equal(expectedBatch, head, `values stop at batch ${expectedBatch}, the head says ${head}`)
  assert.equal(expectedIndex, valueCount(head), `the last batch has ${expectedIndex} of its ${valueCount(head)} values`)
  const scratch: number[] = []
  for await (const { key } of store.namespace('crash/scratch').range()) scratch.push(readTupleKey(key)[0] as number)
  assert.deepEqual(scratch, [head], 'the scratch namespace holds exactly the head')
  return head
}
