/**
 * The channel frame format and the unsigned gossip envelope: golden vectors pin
 * the bytes, properties show that decoding never throws and round-trips.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  decodeFrame,
  encodeFrame,
  frameLength,
  FrameKind,
  readVarint,
  varintLength,
  writeVarint,
  decodeErrorMessage,
  encodeErrorMessage,
  MAX_ERROR_MESSAGE_BYTES
} from '../src/transport/frame.js'
import { decodeUnsignedEnvelope, encodeUnsignedEnvelope } from '../src/transport/gossip.js'
import { propertyParameters } from './support/property.js'

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values)

describe('channel frame format', () => {
  test('golden vectors: kind byte, LEB128 request id, raw payload', () => {
    assert.deepEqual(encodeFrame(FrameKind.Request, 1, bytes(0xaa, 0xbb)), bytes(0x00, 0x01, 0xaa, 0xbb))
    assert.deepEqual(encodeFrame(FrameKind.Response, 300, bytes(0x01)), bytes(0x01, 0xac, 0x02, 0x01))
    assert.deepEqual(encodeFrame(FrameKind.ErrorResponse, 127, new TextEncoder().encode('no')), bytes(0x02, 0x7f, 0x6e, 0x6f))
    assert.deepEqual(encodeFrame(FrameKind.OneWay, 0, bytes()), bytes(0x03, 0x00))
    assert.deepEqual(encodeFrame(FrameKind.Request, Number.MAX_SAFE_INTEGER, bytes()),
      bytes(0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f))
  })

  test('frameLength matches the encoded size', () => {
    assert.equal(frameLength(1, 10), 12)
    assert.equal(frameLength(300, 0), 3)
    assert.equal(frameLength(Number.MAX_SAFE_INTEGER, 5), 14)
  })

  test('bytes that are not a frame are refused with a reason, never thrown', () => {
    const refused: Array<[Uint8Array, RegExp]> = [
      [bytes(), /empty/],
      [bytes(0x04, 0x01), /unknown frame kind 4/],
      [bytes(0xff), /unknown frame kind/],
      [bytes(0x00), /truncated/],
      [bytes(0x00, 0x80), /truncated/],
      [bytes(0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), /longer than 8 bytes/],
      [bytes(0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), /exceeds 2\^53/],
      [bytes(0x00, 0x00), /request id 0 not allowed/],
      [bytes(0x01, 0x00), /request id 0 not allowed/],
      [bytes(0x03, 0x05), /request id 5 not allowed/]
    ]
    for (const [input, reason] of refused) {
      const result = decodeFrame(input)
      assert.equal(result.ok, false, `accepted ${Buffer.from(input).toString('hex')}`)
      if (!result.ok) assert.match(result.reason, reason)
    }
  })

  test('any frame decodes back to its kind, id and payload', () => {
    fc.assert(fc.property(
      fc.constantFrom(FrameKind.Request, FrameKind.Response, FrameKind.ErrorResponse, FrameKind.OneWay),
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fc.uint8Array({ maxLength: 64 }),
      (kind, id, payload) => {
        const requestId = kind === FrameKind.OneWay ? 0 : id
        const encoded = encodeFrame(kind, requestId, payload)
        assert.equal(encoded.byteLength, frameLength(requestId, payload.byteLength))
        const decoded = decodeFrame(encoded)
        assert.ok(decoded.ok)
        assert.equal(decoded.frame.kind, kind)
        assert.equal(decoded.frame.requestId, requestId)
        assert.deepEqual(decoded.frame.payload, payload)
      }), propertyParameters('frame round trip', 500))
  })

  test('decoding arbitrary bytes never throws', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 32 }), (input) => {
      const result = decodeFrame(input)
      if (result.ok) {
        assert.deepEqual(encodeFrame(result.frame.kind, result.frame.requestId, result.frame.payload).byteLength <= input.byteLength, true)
      }
    }), propertyParameters('frame decode total', 2000))
  })

  test('varints round-trip at the boundaries', () => {
    for (const value of [0, 1, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      const buffer = new Uint8Array(varintLength(value))
      assert.equal(writeVarint(buffer, 0, value), buffer.byteLength)
      const read = readVarint(buffer, 0, 8)
      assert.ok(read.ok)
      assert.equal(read.value, value)
      assert.equal(read.offset, buffer.byteLength)
    }
    assert.throws(() => writeVarint(new Uint8Array(9), 0, -1), RangeError)
    assert.throws(() => writeVarint(new Uint8Array(9), 0, 1.5), RangeError)
  })

  test('error messages are truncated to 1 KiB', () => {
    const long = 'x'.repeat(5000)
    assert.equal(encodeErrorMessage(long).byteLength, MAX_ERROR_MESSAGE_BYTES)
    assert.equal(decodeErrorMessage(encodeErrorMessage('boom')), 'boom')
  })
})

describe('unsigned gossip envelope', () => {
  test('golden vector: author length, author, 8-byte sequence, data', () => {
    const envelope = encodeUnsignedEnvelope(new TextEncoder().encode('ab'), 0x01020304, 0x05060708, bytes(0xee))
    assert.deepEqual(envelope, bytes(2, 0x61, 0x62, 1, 2, 3, 4, 5, 6, 7, 8, 0xee))
    assert.deepEqual(decodeUnsignedEnvelope(envelope), { author: 'ab', data: bytes(0xee) })
  })

  test('malformed envelopes are refused', () => {
    assert.equal(decodeUnsignedEnvelope(bytes()), undefined)
    assert.equal(decodeUnsignedEnvelope(bytes(0)), undefined)
    assert.equal(decodeUnsignedEnvelope(bytes(200, 1, 2)), undefined)
    assert.equal(decodeUnsignedEnvelope(bytes(2, 0x61, 0x62, 1, 2, 3)), undefined)
    assert.equal(decodeUnsignedEnvelope(bytes(1, 0xff, 0, 0, 0, 0, 0, 0, 0, 0)), undefined)
  })

  test('decoding arbitrary bytes never throws', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), (input) => {
      decodeUnsignedEnvelope(input)
    }), propertyParameters('envelope decode total', 1000))
  })
})
