/**
 * An outbound stream of the channel is reused only while it can carry frames. A stream that
 * missed its own close event (most likely one opened on a connection that was closing) would
 * swallow writes (one-way messages) or leave them waiting for their timeout (requests). These tests drive a
 * `ClientStream` over a stand-in libp2p stream and connection, so that the close event can be
 * withheld, which real sockets do only in a narrow race.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Stream } from '@libp2p/interface'
import { ClientStream, type StreamOwner } from '../src/transport/channel-streams.js'
import { FramedStream } from '../src/transport/framed-stream.js'

/** A libp2p stream that takes writes and never fires an event. */
function silentStream (): Stream & { sent: number } {
  const stream = {
    status: 'open',
    writeStatus: 'writable',
    readStatus: 'readable',
    writableNeedsDrain: false,
    protocol: '/test/1',
    sent: 0,
    addEventListener () {},
    send () { stream.sent++; return true },
    abort () { stream.status = 'aborted'; stream.writeStatus = 'closed' },
    log: Object.assign(() => {}, { error: () => {}, trace: () => {} })
  }
  return stream as unknown as Stream & { sent: number }
}

function owner (forgotten: ClientStream[]): StreamOwner {
  return {
    settings: { maxFrameBytes: 1 << 20, maxConcurrentHandlers: 8 },
    handlerFor: () => undefined,
    handlerError () {},
    requestHandled () {},
    lateResponse () {},
    malformed () {},
    dropped () {},
    forgetClient (client) { forgotten.push(client) },
    forgetServer () {}
  }
}

test('a client stream whose connection closed without telling it is not reused, and its pending requests fail', () => {
  const forgotten: ClientStream[] = []
  const connection = { status: 'open' }
  const stream = silentStream()
  const client = new ClientStream(owner(forgotten), new FramedStream(stream, 'peer-b', 1 << 20, { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 }), '/test/1', connection)
  const failures: Error[] = []
  client.start(new Uint8Array([1, 2, 3]), { resolve: () => { assert.fail('no answer can come') }, reject: err => { failures.push(err) } })
  assert.equal(client.usable(), true, 'usable while its connection is open')
  assert.equal(stream.sent, 1, 'the request was written')

  connection.status = 'closed'
  assert.equal(client.usable(), false, 'not usable once its connection closed')
  assert.equal(client.closed, true)
  assert.deepEqual(forgotten, [client], 'the channel forgets it, so the next send opens a new stream')
  assert.deepEqual(failures.map(e => e.name), ['PeerUnreachableError'], 'the request in flight fails at once, not at its timeout')
})

test('a client stream that libp2p closed for writing is not reused either', () => {
  const forgotten: ClientStream[] = []
  const stream = silentStream()
  const client = new ClientStream(owner(forgotten), new FramedStream(stream, 'peer-b', 1 << 20, { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 }), '/test/1', { status: 'open' })
  ;(stream as unknown as { writeStatus: string }).writeStatus = 'closed'
  assert.equal(client.usable(), false)
  assert.deepEqual(forgotten, [client])
})
