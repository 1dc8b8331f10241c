/**
 * CRC-32C (Castagnoli), the checksum the durable key-value adapter stores beside every value so
 * that a damaged value is reported instead of returned. It is the checksum LevelDB, RocksDB and
 * ext4 use for the same job: it detects every burst error up to 32 bits and misses random
 * damage with probability 2^-32, at a fraction of SHA-256's cost per small value (a value of a
 * few dozen bytes is checked in well under a microsecond, where creating a SHA-256 hash alone
 * costs about one). It is not a defence against deliberate tampering, which storage does not
 * claim. Pure functions, no I/O; slice-by-8 tables computed once at load.
 *
 * @module
 */

/** The reflected Castagnoli polynomial. */
const POLYNOMIAL = 0x82f63b78

/** Eight 256-entry tables: table k advances the CRC over a byte followed by k zero bytes. */
const TABLES = buildTables()

function buildTables (): Uint32Array[] {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256))
  const first = tables[0]!
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1
    first[n] = c >>> 0
  }
  for (let t = 1; t < 8; t++) {
    const previous = tables[t - 1]!
    const table = tables[t]!
    for (let n = 0; n < 256; n++) table[n] = (previous[n]! >>> 8) ^ first[previous[n]! & 0xff]!
  }
  return tables
}

/**
 * Continues a CRC-32C over `bytes`. Start with `crc32cStart()`, feed any number of chunks, end
 * with {@link crc32cFinish}; feeding "ab" then "c" gives the same result as feeding "abc".
 *
 * @param state - the running state (from `crc32cStart` or a previous update)
 * @param bytes - the next bytes
 * @returns the new running state
 */
export function crc32cUpdate (state: number, bytes: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array]
  let crc = state
  let i = 0
  const end8 = bytes.length - (bytes.length % 8)
  while (i < end8) {
    const a = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))
    crc = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
      t3[bytes[i + 4]!]! ^ t2[bytes[i + 5]!]! ^ t1[bytes[i + 6]!]! ^ t0[bytes[i + 7]!]!
    i += 8
  }
  while (i < bytes.length) {
    crc = (crc >>> 8) ^ t0[(crc ^ bytes[i]!) & 0xff]!
    i++
  }
  return crc
}

/** The initial running state of a CRC-32C. */
export function crc32cStart (): number {
  return 0xffffffff
}

/** The checksum of a finished running state, as an unsigned 32-bit integer. */
export function crc32cFinish (state: number): number {
  return (state ^ 0xffffffff) >>> 0
}

/** The CRC-32C of `bytes` in one call. */
export function crc32c (bytes: Uint8Array): number {
  return crc32cFinish(crc32cUpdate(crc32cStart(), bytes))
}
