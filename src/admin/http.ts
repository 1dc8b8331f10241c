/**
 * HTTP plumbing of the admin endpoint, kept apart from the routes: the typed failure that
 * becomes a JSON error answer, reading a bounded JSON body, the bearer token check (in
 * constant time), and writing answers. Nothing here knows about peers.
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** A request the endpoint refuses: answered as JSON `{ error, message }` with `status`. */
export class AdminRequestError extends Error {
  override readonly name = 'AdminRequestError'
  constructor (readonly status: number, readonly code: string, message: string, readonly headers: Readonly<Record<string, string>> = {}) {
    super(message)
  }
}

/** Writes `body` as JSON with `status`; never cached (every view is live). */
export function answerJson (res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent) { res.end(); return }
  const text = JSON.stringify(body, null, 2) + '\n'
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** Writes a text answer (the page, the metrics). */
export function answerText (res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * Reads the request body as JSON: at most `maxBytes` (413 beyond), `application/json` or no
 * content type (415 otherwise), well-formed (400 otherwise). An empty body reads as `{}`.
 */
export async function readJsonBody (req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const contentType = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase()
  if (contentType !== 'application/json') throw new AdminRequestError(415, 'UnsupportedMediaType', 'send application/json')
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > maxBytes) throw new AdminRequestError(413, 'BodyTooLarge', `the body exceeds ${maxBytes} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) throw new AdminRequestError(413, 'BodyTooLarge', `the body exceeds ${maxBytes} bytes`)
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8').trim()
  if (text === '') return {}
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new AdminRequestError(400, 'MalformedBody', `the body is not JSON: ${(err as Error).message}`)
  }
}

/** The SHA-256 of a token: what the endpoint keeps instead of the token, and compares. */
export function tokenDigest (token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/** Whether the request's `Authorization: Bearer <token>` matches `digest` (in constant time). */
export function bearerMatches (req: IncomingMessage, digest: Buffer): boolean {
  const header = req.headers.authorization
  if (typeof header !== 'string') return false
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (match === null) return false
  return timingSafeEqual(tokenDigest(match[1]!), digest)
}
