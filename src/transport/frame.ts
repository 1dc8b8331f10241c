/**
 * The channel wire format: pure encode/decode of one frame, no I/O.
 *
 * A channel stream carries a sequence of length-prefixed messages: unsigned
 * varint length, then that many bytes (the same framing as `lpStream` from
 * `@libp2p/utils`, so any libp2p peer can speak it). Each message is one frame:
 *
 * ```
 * offset  size     field
 * 0       1        kind       unsigned varint: 0 request, 1 response,
 *                             2 error-response, 3 one-way (always one byte)
 * 1       1..8     requestId  unsigned LEB128 varint, at most 2^53 - 1;
 *                             >= 1 for request/response/error-response,
 *                             exactly 0 for one-way
 * 2..9    rest     payload    opaque bytes; for error-response the UTF-8
 *                             message of the remote error (<= 1024 bytes)
 * ```
 *
 * The protocol version lives in the protocol id (`/legion/<cluster>/<name>/13.0.0`),
 * so the frame itself carries none. Golden vectors in the tests pin the layout.
 *
 * @module
 */

/** Frame kinds, as they appear in the first byte of a frame. */
export const FrameKind = {
  /** A request; the receiver answers with a response or error-response of the same id. */
  Request: 0,
  /** A successful answer to the request with the same id. */
  Response: 1,
  /** The remote handler failed; payload is its UTF-8 error message. */
  ErrorResponse: 2,
  /** A message that expects no answer; requestId is 0. */
  OneWay: 3
} as const

/** One of the {@link FrameKind} values. */
export type FrameKind = typeof FrameKind[keyof typeof FrameKind]

/** A decoded frame. */
export interface Frame {
  /** What the frame is. */
  kind: FrameKind
  /** Correlates a response with its request; 0 for one-way frames. */
  requestId: number
  /** The frame body (a view into the decoded buffer, not a copy). */
  payload: Uint8Array
}

/** Result of {@link decodeFrame}: a frame, or the reason the bytes are not one. */
export type DecodeFrameResult =
  | {
    /** The bytes are a frame. */
    ok: true
    /** The decoded frame. */
    frame: Frame
  }
  | {
    /** The bytes are not a frame. */
    ok: false
    /** Why not, for logs. */
    reason: string
  }

/** Longest varint accepted for a request id: 8 bytes carry 56 bits, enough for 2^53 - 1. */
export const MAX_REQUEST_ID_BYTES = 8

/** Error messages carried by error-response frames are truncated to this many bytes. */
export const MAX_ERROR_MESSAGE_BYTES = 1024

/** Largest frame header: one kind byte plus the longest request id. */
export const MAX_FRAME_HEADER_BYTES = 1 + MAX_REQUEST_ID_BYTES

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { fatal: false })

/** Number of bytes the unsigned varint encoding of `value` takes. */
export function varintLength (value: number): number {
  let length = 1
  let rest = value
  while (rest >= 0x80) {
    rest = Math.floor(rest / 128)
    length++
  }
  return length
}

/**
 * Writes `value` as an unsigned LEB128 varint into `target` at `offset` and
 * returns the offset after it. `value` must be a safe non-negative integer.
 */
export function writeVarint (target: Uint8Array, offset: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`varint value must be a safe non-negative integer, got ${value}`)
  }
  let rest = value
  let at = offset
  while (rest >= 0x80) {
    target[at++] = (rest % 128) | 0x80
    rest = Math.floor(rest / 128)
  }
  target[at++] = rest
  return at
}

/** Result of {@link readVarint}: the value and the offset after it, or a failure reason. */
export type ReadVarintResult =
  | {
    /** A varint was read. */
    ok: true
    /** Its value. */
    value: number
    /** The offset just after it. */
    offset: number
  }
  | {
    /** No valid varint at the offset. */
    ok: false
    /** Why not, for logs. */
    reason: string
  }

/**
 * Reads an unsigned LEB128 varint of at most `maxBytes` bytes from `source` at
 * `offset`. Values above `Number.MAX_SAFE_INTEGER` are refused.
 */
export function readVarint (source: Uint8Array, offset: number, maxBytes: number): ReadVarintResult {
  let value = 0
  let scale = 1
  for (let i = 0; i < maxBytes; i++) {
    const byte = source[offset + i]
    if (byte === undefined) {
      return { ok: false, reason: 'truncated varint' }
    }
    value += (byte & 0x7f) * scale
    if (value > Number.MAX_SAFE_INTEGER) {
      return { ok: false, reason: 'varint exceeds 2^53 - 1' }
    }
    if ((byte & 0x80) === 0) {
      return { ok: true, value, offset: offset + i + 1 }
    }
    scale *= 128
  }
  return { ok: false, reason: `varint longer than ${maxBytes} bytes` }
}

/** Size in bytes of the frame {@link encodeFrame} would produce. */
export function frameLength (requestId: number, payloadLength: number): number {
  return 1 + varintLength(requestId) + payloadLength
}

/**
 * Encodes one frame with its length prefix (unsigned varint of the frame
 * size), ready to be sent, into a single fresh buffer. The payload is copied
 * once.
 */
export function encodeLengthPrefixedFrame (kind: FrameKind, requestId: number, payload: Uint8Array): Uint8Array {
  const size = frameLength(requestId, payload.byteLength)
  const out = new Uint8Array(varintLength(size) + size)
  let offset = writeVarint(out, 0, size)
  out[offset++] = kind
  offset = writeVarint(out, offset, requestId)
  out.set(payload, offset)
  return out
}

/**
 * Encodes one frame (without the outer length prefix) into a fresh buffer.
 * The payload is copied once.
 */
export function encodeFrame (kind: FrameKind, requestId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(frameLength(requestId, payload.byteLength))
  out[0] = kind
  const offset = writeVarint(out, 1, requestId)
  out.set(payload, offset)
  return out
}

/** Encodes an error message as an error-response payload, truncated to {@link MAX_ERROR_MESSAGE_BYTES}. */
export function encodeErrorMessage (message: string): Uint8Array {
  const bytes = textEncoder.encode(message)
  return bytes.byteLength <= MAX_ERROR_MESSAGE_BYTES ? bytes : bytes.subarray(0, MAX_ERROR_MESSAGE_BYTES)
}

/** Decodes an error-response payload; invalid UTF-8 becomes U+FFFD, length is capped. */
export function decodeErrorMessage (payload: Uint8Array): string {
  return textDecoder.decode(payload.subarray(0, MAX_ERROR_MESSAGE_BYTES))
}

/**
 * Decodes one frame. Never throws: bytes that are not a valid frame yield
 * `{ ok: false, reason }`. Rules checked: known kind, request id varint of at
 * most 8 bytes and at most 2^53 - 1, id 0 exactly for one-way frames.
 */
export function decodeFrame (bytes: Uint8Array): DecodeFrameResult {
  const kind = bytes[0]
  if (kind === undefined) {
    return { ok: false, reason: 'empty frame' }
  }
  if (kind !== FrameKind.Request && kind !== FrameKind.Response &&
      kind !== FrameKind.ErrorResponse && kind !== FrameKind.OneWay) {
    return { ok: false, reason: `unknown frame kind ${kind}` }
  }
  const id = readVarint(bytes, 1, MAX_REQUEST_ID_BYTES)
  if (!id.ok) {
    return { ok: false, reason: `bad request id: ${id.reason}` }
  }
  if (kind === FrameKind.OneWay ? id.value !== 0 : id.value === 0) {
    return { ok: false, reason: `request id ${id.value} not allowed for frame kind ${kind}` }
  }
  return { ok: true, frame: { kind, requestId: id.value, payload: bytes.subarray(id.offset) } }
}
