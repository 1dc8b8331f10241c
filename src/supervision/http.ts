/**
 * An HTTP endpoint onto a tree's queue (the seed's first suggested extension): a
 * `(req, res)` handler for `node:http` that an application, or later Legion's admin service,
 * mounts wherever it likes. It owns no server and no port.
 *
 * Routes, under a prefix (default `/servers`):
 * - `POST <prefix>/<name>/call`: answers with the server's output;
 * - `POST <prefix>/<name>/cast`: answers 202 once the input is queued.
 *
 * Bodies: `Content-Type: application/octet-stream` carries the input as bytes in the server's
 * input codec (and the answer comes back as bytes in its output codec); `application/json` (or no
 * content type) carries JSON text, which is turned into `jsonCodec` bytes first, so it reaches
 * servers whose input codec reads `jsonCodec` (the default); its answer is JSON text, unless the
 * request asks `Accept: application/octet-stream`.
 *
 * Errors are JSON `{ "error": <error name>, "message": ... }` with: 404 unknown server or route,
 * 405 not POST, 400 bad input, 413 body too large, 415 other content types, 406 an output that
 * JSON text cannot carry, 500 the step crashed, 503 queue full or server unavailable, 504 timeout.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { decodeWith, encodeWith } from '../codec/codec.js'
import { jsonCodec, type JsonValue } from '../codec/json.js'
import type { SupervisionTree } from './tree.js'

/** Options of {@link supervisionHttpHandler}. */
export interface SupervisionHttpOptions {
  /**
   * Path prefix of the routes.
   * @default '/servers'
   */
  readonly prefix?: string
  /**
   * Timeout of each call, in milliseconds.
   * @default 5000
   */
  readonly timeoutMs?: number
  /**
   * Largest request body accepted, in bytes.
   * @default 1048576 (1 MiB)
   */
  readonly maxBodyBytes?: number
  /**
   * When the tree's queue is full: answer 503 at once (`'reject'`) or wait for space.
   * @default 'reject'
   */
  readonly overflow?: 'reject' | 'wait'
}

/** An error answer. */
class HttpFailure extends Error {
  override readonly name = 'HttpFailure'
  constructor (readonly status: number, readonly errorName: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message)
  }
}

/** Status code of each error the tree can reject with. */
const STATUS_OF_ERROR: Readonly<Record<string, number>> = Object.freeze({
  UnknownServerError: 404,
  BadInputError: 400,
  QueueFullError: 503,
  ServerExitedError: 503,
  ServerStoppedError: 503,
  SupervisionStoppedError: 503,
  CallTimeoutError: 504,
  ServerCrashedError: 500,
  BadOutputError: 500
})

/**
 * A `node:http` request handler that writes requests onto `tree`'s queue. See the module comment
 * for routes, bodies and status codes. The handler never throws; a client that goes away before
 * the answer withdraws its call.
 * @throws TypeError if `tree` or an option is not what it should be
 */
export function supervisionHttpHandler (tree: SupervisionTree, options: SupervisionHttpOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  if (typeof tree !== 'object' || tree === null || typeof tree.callEncoded !== 'function') {
    throw new TypeError('supervisionHttpHandler: tree must be a SupervisionTree')
  }
  const prefix = (options.prefix ?? '/servers').replace(/\/+$/, '')
  if (typeof options.prefix === 'string' && !options.prefix.startsWith('/')) throw new TypeError("supervisionHttpHandler: options.prefix must start with '/'")
  const timeoutMs = options.timeoutMs ?? 5000
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs === Infinity) throw new TypeError('supervisionHttpHandler: options.timeoutMs must be a finite number > 0')
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 0) throw new TypeError('supervisionHttpHandler: options.maxBodyBytes must be an integer >= 0')
  const overflow = options.overflow ?? 'reject'
  if (overflow !== 'reject' && overflow !== 'wait') throw new TypeError("supervisionHttpHandler: options.overflow must be 'reject' or 'wait'")

  return (req, res) => {
    const controller = new AbortController()
    res.on('close', () => { if (!res.writableFinished) controller.abort() })
    handle(req, res, controller.signal).catch((err: unknown) => {
      if (controller.signal.aborted) return // the client went away; nobody to answer
      if (err instanceof HttpFailure) {
        answerError(res, err.status, err.errorName, err.message, err.headers)
        return
      }
      const name = err instanceof Error ? err.name : 'Error'
      const message = err instanceof Error ? err.message : String(err)
      answerError(res, STATUS_OF_ERROR[name] ?? 500, name, message)
    })
  }

  async function handle (req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const route = parseRoute(req.url ?? '/', prefix)
    if (route === undefined) throw new HttpFailure(404, 'NotFound', 'no such route')
    if (req.method !== 'POST') throw new HttpFailure(405, 'MethodNotAllowed', 'use POST', { allow: 'POST' })
    const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase()
    const binary = contentType === 'application/octet-stream'
    if (!binary && contentType !== 'application/json') {
      throw new HttpFailure(415, 'UnsupportedMediaType', 'send application/json or application/octet-stream')
    }
    if (!tree.hasServer(route.name)) throw new HttpFailure(404, 'UnknownServerError', `no server named ${JSON.stringify(route.name)}`)
    const body = await readBody(req, maxBodyBytes)
    const input = binary ? body : jsonTextToCodecBytes(body)
    const callOptions = { timeoutMs, signal, overflow }
    if (route.verb === 'cast') {
      await tree.castEncoded(route.name, input, callOptions)
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"queued":true}')
      return
    }
    const output = await tree.callEncoded(route.name, input, callOptions)
    const wantsBytes = binary || (req.headers.accept ?? '').includes('application/octet-stream')
    if (wantsBytes) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': output.length }).end(output)
      return
    }
    const text = codecBytesToJsonText(output)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
  }
}

function parseRoute (url: string, prefix: string): { name: string, verb: 'call' | 'cast' } | undefined {
  const path = url.split('?')[0]!
  if (!path.startsWith(prefix + '/')) return undefined
  const parts = path.slice(prefix.length + 1).split('/')
  if (parts.length !== 2 || parts[0] === '' || (parts[1] !== 'call' && parts[1] !== 'cast')) return undefined
  let name: string
  try {
    name = decodeURIComponent(parts[0]!)
  } catch {
    throw new HttpFailure(400, 'BadRequest', 'the server name is not valid percent-encoding')
  }
  return { name, verb: parts[1] }
}

async function readBody (req: IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = (): HttpFailure => new HttpFailure(413, 'PayloadTooLarge', `the body exceeds ${maxBytes} bytes`, { connection: 'close' })
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > maxBytes) {
    req.resume()
    throw tooLarge()
  }
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length
    if (length > maxBytes) {
      req.resume()
      throw tooLarge()
    }
    chunks.push(chunk)
  }
  return new Uint8Array(Buffer.concat(chunks, length))
}

/** JSON text to `jsonCodec` bytes; anything unreadable is a 400. */
function jsonTextToCodecBytes (body: Uint8Array): Uint8Array {
  let value: JsonValue
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as JsonValue
    return encodeWith(jsonCodec, value)
  } catch (err) {
    throw new HttpFailure(400, 'BadInputError', `the body is not JSON text: ${err instanceof Error ? err.message : String(err)}`)
  }
}

/** An output in `jsonCodec` bytes to JSON text; a 406 if JSON text cannot carry it exactly. */
function codecBytesToJsonText (bytes: Uint8Array): string {
  const refuse = (why: string): HttpFailure => new HttpFailure(406, 'NotAcceptable', `the output cannot be JSON text (${why}); ask with Accept: application/octet-stream`)
  let value: JsonValue
  try {
    value = decodeWith(jsonCodec, bytes)
  } catch {
    throw refuse('the output codec is not jsonCodec')
  }
  const check = (v: JsonValue, depth: number): void => {
    if (depth > 1000) throw refuse('too deep')
    if (typeof v === 'bigint') throw refuse('a bigint')
    if (typeof v === 'number' && !Number.isFinite(v)) throw refuse('a non-finite number')
    if (v instanceof Uint8Array) throw refuse('bytes')
    if (Array.isArray(v)) for (const x of v as JsonValue[]) check(x, depth + 1)
    else if (typeof v === 'object' && v !== null) for (const x of Object.values(v)) check(x, depth + 1)
  }
  check(value, 0)
  return JSON.stringify(value)
}

function answerError (res: ServerResponse, status: number, error: string, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const text = JSON.stringify({ error, message })
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
}
