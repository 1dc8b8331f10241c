/**
 * The on-disk encoding of one {@link PeerRecord}, format version 1. It is what a durable adapter
 * stores as one value, so that the whole record is replaced in one write and any damage to it
 * (a flipped bit, a truncated value, a record from a newer build) is detected on load rather
 * than handed to the runtime. Pure functions, no I/O.
 *
 * Layout (integers big-endian):
 * ```
 * offset  size  field
 * 0       4     magic "LGPR"
 * 4       1     format version (1)
 * 5       4     n = cluster name length in bytes, then n bytes of UTF-8
 * ...     4     k = private key length, then k bytes
 * ...     4     f = fold length, then f bytes
 * ...     32    SHA-256 of every byte before it (magic included)
 * ```
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { StorageCorruptError } from './storage.js'
import type { PeerRecord } from './storage.js'

/** The first bytes of every encoded record: "LGPR" (Legion peer record). */
export const RECORD_MAGIC: readonly number[] = [0x4c, 0x47, 0x50, 0x52]
/** The format version {@link encodePeerRecord} writes and the only one {@link decodePeerRecord} reads. */
export const RECORD_FORMAT_VERSION = 1

const HEADER_BYTES = 5
const LENGTH_BYTES = 4
const CHECKSUM_BYTES = 32
const MIN_RECORD_BYTES = HEADER_BYTES + 3 * LENGTH_BYTES + CHECKSUM_BYTES
const MAX_FIELD_BYTES = 0xffff_ffff

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Encodes `record` in format version 1 (see the module comment). The output shares no memory
 * with `record`.
 *
 * @param record - the record to encode
 * @returns the encoded bytes, checksum included
 * @throws TypeError when a field has the wrong type or exceeds 4 GiB
 */
export function encodePeerRecord (record: PeerRecord): Uint8Array {
  if (typeof record.cluster !== 'string') throw new TypeError('record.cluster must be a string')
  if (!(record.privateKey instanceof Uint8Array)) throw new TypeError('record.privateKey must be a Uint8Array')
  if (!(record.fold instanceof Uint8Array)) throw new TypeError('record.fold must be a Uint8Array')
  const cluster = utf8Encoder.encode(record.cluster)
  const fields = [cluster, record.privateKey, record.fold]
  let total = MIN_RECORD_BYTES
  for (const field of fields) {
    if (field.length > MAX_FIELD_BYTES) throw new TypeError('a record field exceeds 4 GiB')
    total += field.length
  }
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  out.set(RECORD_MAGIC, 0)
  out[4] = RECORD_FORMAT_VERSION
  let offset = HEADER_BYTES
  for (const field of fields) {
    view.setUint32(offset, field.length)
    out.set(field, offset + LENGTH_BYTES)
    offset += LENGTH_BYTES + field.length
  }
  out.set(checksum(out.subarray(0, offset)), offset)
  return out
}

/**
 * Decodes bytes written by {@link encodePeerRecord}. Every length is checked against the input
 * before use, so nothing larger than the input is ever allocated, and the returned arrays are
 * fresh copies.
 *
 * @param bytes - the stored value
 * @returns the record
 * @throws {@link StorageCorruptError} when the bytes are not an intact version-1 record
 */
export function decodePeerRecord (bytes: Uint8Array): PeerRecord {
  if (bytes.length < HEADER_BYTES) throw new StorageCorruptError('truncated', `stored record is ${bytes.length} bytes, shorter than its header`)
  for (let i = 0; i < RECORD_MAGIC.length; i++) {
    if (bytes[i] !== RECORD_MAGIC[i]) throw new StorageCorruptError('bad-magic', 'stored value is not a Legion peer record')
  }
  if (bytes[4] !== RECORD_FORMAT_VERSION) {
    throw new StorageCorruptError('unknown-version', `stored record has format version ${String(bytes[4])}; this build reads version ${RECORD_FORMAT_VERSION}`)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const fields: Uint8Array[] = []
  let offset = HEADER_BYTES
  for (let i = 0; i < 3; i++) {
    if (offset + LENGTH_BYTES > bytes.length) throw new StorageCorruptError('truncated', 'stored record ends inside a length')
    const length = view.getUint32(offset)
    offset += LENGTH_BYTES
    if (offset + length + (i === 2 ? CHECKSUM_BYTES : LENGTH_BYTES) > bytes.length) {
      throw new StorageCorruptError('truncated', 'stored record ends before its declared contents')
    }
    fields.push(bytes.subarray(offset, offset + length))
    offset += length
  }
  if (offset + CHECKSUM_BYTES !== bytes.length) {
    throw new StorageCorruptError('invalid', `stored record has ${bytes.length - offset - CHECKSUM_BYTES} trailing bytes`)
  }
  const expected = checksum(bytes.subarray(0, offset))
  const found = bytes.subarray(offset)
  for (let i = 0; i < CHECKSUM_BYTES; i++) {
    if (expected[i] !== found[i]) throw new StorageCorruptError('checksum', 'stored record does not match its checksum')
  }
  const [cluster, privateKey, fold] = fields as [Uint8Array, Uint8Array, Uint8Array]
  let clusterName: string
  try {
    clusterName = utf8Decoder.decode(cluster)
  } catch (cause) {
    throw new StorageCorruptError('invalid', 'stored cluster name is not valid UTF-8', { cause })
  }
  return { cluster: clusterName, privateKey: new Uint8Array(privateKey), fold: new Uint8Array(fold) }
}

function checksum (bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}
