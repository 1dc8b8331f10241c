/**
 * One libp2p stream seen as a sequence of length-prefixed frames: the I/O
 * shell under the channel's client and server sides.
 *
 * Wire: unsigned varint length, then that many bytes (`frame.ts` describes
 * what is inside). This module only splits and joins; it does not look inside
 * a frame.
 *
 * @module
 */

import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'

/** Traffic counters a framed stream updates (shared by all streams of a channel). */
export interface ByteCounters {
  /** Bytes read, length prefixes included. */
  bytesIn: number
  /** Bytes written, length prefixes included. */
  bytesOut: number
  /** Frames read. */
  messagesIn: number
  /** Frames written. */
  messagesOut: number
}

const EMPTY = new Uint8Array(0)

/** A length prefix longer than this many bytes is refused (8 bytes already exceed any sane limit). */
const MAX_PREFIX_BYTES = 8

/** How a remote broke the length-prefix framing. */
export type FramingViolation = 'oversized' | 'invalid-prefix'

/** What a {@link FramedStream} reports to the side (client or server) that owns it. */
export interface FrameSink {
  /** One complete frame (length prefix removed). */
  onFrame(bytes: Uint8Array): void
  /** The remote closed its writing side and every byte it sent was delivered. */
  onEnd(): void
  /** The stream closed, gracefully (`err` undefined) or not. */
  onClose(err: Error | undefined): void
  /** The remote broke the length-prefix rules; the stream has been aborted. */
  onViolation(violation: FramingViolation, reason: string): void
  /** True while the owner wants no more frames; the stream is paused until `resume()`. */
  isBusy(): boolean
}

/**
 * The framed view of one stream: splits incoming bytes into length-prefixed
 * frames as they arrive (no read loop, no per-byte promises), refuses frames
 * over the limit as soon as their prefix is read, pauses the stream while its
 * owner is busy (yamux then stops granting the sender window, so a fast sender
 * is slowed instead of buffered without bound), and waits for 'drain' before
 * writing to a backed-up stream.
 *
 * `lpStream` from `@libp2p/utils` is not used for reading: it buffers every
 * unread byte and aborts the stream once that buffer passes its limit, so a
 * burst of legitimate frames read slower than they arrive kills the stream.
 * The bytes on the wire are the same (unsigned varint length + frame).
 */
export class FramedStream {
  readonly stream: Stream
  readonly peer: string
  readonly #maxFrameBytes: number
  readonly #counters: ByteCounters
  #sink: FrameSink | undefined
  readonly #chunks: Uint8Array[] = []
  /** Offset of the first unread byte in `#chunks[0]`. */
  #head = 0
  #buffered = 0
  /** Size of the frame being assembled, once its prefix was read; -1 before. */
  #expected = -1
  #paused = false
  #dead = false

  constructor (stream: Stream, peer: string, maxFrameBytes: number, counters: ByteCounters) {
    this.stream = stream
    this.peer = peer
    this.#maxFrameBytes = maxFrameBytes
    this.#counters = counters
  }

  /** Starts delivering events to `sink`. */
  attach (sink: FrameSink): void {
    this.#sink = sink
    this.stream.addEventListener('message', (evt: StreamMessageEvent) => {
      const data = evt.data
      if (data instanceof Uint8Array) {
        this.#append(data)
      } else {
        for (const chunk of data) this.#append(chunk)
      }
      this.#parse()
    })
    this.stream.addEventListener('end', () => {
      if (this.#dead) return
      if (this.#buffered > 0) {
        this.stream.log('remote ended the stream inside a frame (%d bytes unread)', this.#buffered)
      }
      sink.onEnd()
    }, { once: true })
    this.stream.addEventListener('close', (evt: StreamCloseEvent) => {
      this.#dead = true
      this.#chunks.length = 0
      this.#buffered = 0
      sink.onClose(evt.error)
    }, { once: true })
  }

  /** Writes bytes that already carry their length prefix. Rejects if the stream is closed. */
  async write (bytes: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.stream.writableNeedsDrain) {
      await this.stream.onDrain({ signal })
    }
    this.stream.send(bytes)
    this.#counters.bytesOut += bytes.byteLength
    this.#counters.messagesOut++
  }

  /** Called by the owner when it is no longer busy. */
  resume (): void {
    if (!this.#paused || this.#dead) return
    this.#paused = false
    this.#parse()
    if (!this.#paused && this.stream.readStatus === 'paused') {
      this.stream.resume()
    }
  }

  #append (chunk: Uint8Array): void {
    if (this.#dead || chunk.byteLength === 0) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.byteLength
  }

  #parse (): void {
    const sink = this.#sink
    // bounded: every iteration consumes one whole frame or returns
    while (sink !== undefined && !this.#dead) {
      if (sink.isBusy()) {
        this.#pause()
        return
      }
      if (this.#expected < 0) {
        const prefix = this.#peekPrefix()
        if (prefix === 'incomplete') return
        if (prefix === 'invalid') {
          this.#violate('invalid-prefix', `length prefix longer than ${MAX_PREFIX_BYTES} bytes`)
          return
        }
        if (prefix.value > this.#maxFrameBytes) {
          this.#violate('oversized', `frame of ${prefix.value} bytes exceeds the limit of ${this.#maxFrameBytes}`)
          return
        }
        this.#skip(prefix.bytes)
        this.#counters.bytesIn += prefix.bytes
        this.#expected = prefix.value
      }
      if (this.#buffered < this.#expected) return
      const frame = this.#take(this.#expected)
      this.#expected = -1
      this.#counters.bytesIn += frame.byteLength
      this.#counters.messagesIn++
      sink.onFrame(frame)
    }
  }

  #pause (): void {
    if (this.#paused) return
    this.#paused = true
    if (this.stream.readStatus === 'readable') {
      this.stream.pause()
    }
  }

  #violate (violation: FramingViolation, reason: string): void {
    this.#dead = true
    this.#chunks.length = 0
    this.#buffered = 0
    this.stream.abort(new Error(`protocol violation: ${reason}`))
    this.#sink?.onViolation(violation, reason)
  }

  #peekPrefix (): { value: number, bytes: number } | 'incomplete' | 'invalid' {
    let value = 0
    let scale = 1
    let count = 0
    for (let c = 0; c < this.#chunks.length; c++) {
      const chunk = this.#chunks[c]!
      for (let i = c === 0 ? this.#head : 0; i < chunk.byteLength; i++) {
        const byte = chunk[i]!
        value += (byte & 0x7f) * scale
        count++
        if ((byte & 0x80) === 0) return { value, bytes: count }
        if (count >= MAX_PREFIX_BYTES) return 'invalid'
        scale *= 128
      }
    }
    return 'incomplete'
  }

  #skip (n: number): void {
    this.#consume(n, undefined)
  }

  #take (n: number): Uint8Array {
    const first = this.#chunks[0]
    if (n === 0) return EMPTY
    if (first !== undefined && first.byteLength - this.#head >= n) {
      // the common case: the frame lies in one chunk, hand out a view
      const view = first.subarray(this.#head, this.#head + n)
      this.#consume(n, undefined)
      return view
    }
    const out = new Uint8Array(n)
    this.#consume(n, out)
    return out
  }

  /** Drops `n` buffered bytes, copying them into `into` if given. */
  #consume (n: number, into: Uint8Array | undefined): void {
    let done = 0
    // bounded: every iteration consumes at least one byte of a chunk (n <= #buffered)
    while (done < n) {
      const chunk = this.#chunks[0]!
      const count = Math.min(chunk.byteLength - this.#head, n - done)
      into?.set(chunk.subarray(this.#head, this.#head + count), done)
      done += count
      this.#head += count
      if (this.#head === chunk.byteLength) {
        this.#chunks.shift()
        this.#head = 0
      }
    }
    this.#buffered -= n
  }
}
