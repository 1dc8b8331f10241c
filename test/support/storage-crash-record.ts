/**
 * The records the lmdb crash test writes: record n carries n in its first fold bytes and a fold
 * whose size and contents follow from n, so the parent can tell which save survived and that
 * it survived whole.
 */
import type { PeerRecord } from '../../src/storage/storage.js'

/** Fold sizes cycled through, so a kill can land in small and in multi-page commits. */
const SIZES = [1024, 64 * 1024, 700 * 1024, 3 * 1024 * 1024]

/** Record number `n` of the crash test. */
export function crashRecord (n: number): PeerRecord {
  const fold = new Uint8Array(SIZES[n % SIZES.length]!)
  for (let i = 4; i < fold.length; i++) fold[i] = (n + i) & 0xff
  new DataView(fold.buffer).setUint32(0, n)
  const privateKey = new Uint8Array(32).fill(n & 0xff)
  return { cluster: 'crash-test', privateKey, fold }
}

/** The number of a record written by {@link crashRecord}. */
export function crashRecordNumber (record: PeerRecord): number {
  return new DataView(record.fold.buffer, record.fold.byteOffset, record.fold.byteLength).getUint32(0)
}
