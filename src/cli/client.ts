/**
 * The CLI's side of the admin endpoint: JSON over HTTP to one peer's admin URL, and the exit
 * codes every command shares, so that scripts can tell a peer they cannot reach from one that
 * refused, from one that is not ready. The CLI talks to peers through this alone.
 *
 * @module
 */

/** Exit codes of the `legion` command (docs/ADMIN.md, "CLI"). */
export const EXIT = Object.freeze({
  /** Done. */
  ok: 0,
  /** The operation failed (the peer answered an error not listed below, or start-up failed). */
  failed: 1,
  /** The command line is wrong. */
  usage: 2,
  /** The admin endpoint cannot be reached (refused, timed out, not an admin endpoint). */
  unreachable: 3,
  /** Refused: mutations are disabled there, or the token is wrong (403). */
  forbidden: 4,
  /** No such member, partition, view or route (404). */
  notFound: 5,
  /** Conflict: the table moved since the plan, or the change is refused (409). */
  conflict: 6,
  /** The peer is not ready, or not a member (503). */
  notReady: 7
})

/** A failed command: its message for stderr and its exit code. */
export class CommandError extends Error {
  override readonly name = 'CommandError'
  constructor (message: string, readonly exitCode: number, readonly body?: unknown) {
    super(message)
  }
}

/** The exit code of an HTTP status the endpoint answered. */
export function exitCodeOf (status: number): number {
  if (status === 403) return EXIT.forbidden
  if (status === 404) return EXIT.notFound
  if (status === 409) return EXIT.conflict
  if (status === 503) return EXIT.notReady
  return EXIT.failed
}

/** An answer of the endpoint. */
export interface Answer {
  readonly status: number
  readonly body: unknown
  readonly text: string
}

/** Talks to one admin endpoint. */
export class AdminClient {
  private readonly base: string

  constructor (url: string, private readonly token: string | undefined, private readonly timeoutMs: number) {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw new CommandError(`not a URL: ${url}`, EXIT.usage)
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CommandError(`not an http(s) URL: ${url}`, EXIT.usage)
    this.base = parsed.href.replace(/\/+$/, '')
  }

  /** GET `path`; resolves with any answer (the caller decides what a status means). */
  async get (path: string): Promise<Answer> {
    return await this.request('GET', path, undefined)
  }

  /** POST `body` as JSON to `path`, with the token. */
  async post (path: string, body: unknown): Promise<Answer> {
    return await this.request('POST', path, body)
  }

  /** GET or POST, and fail unless the answer is 2xx; resolves with the JSON body. */
  async expect (method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const answer = await this.request(method, path, body)
    if (answer.status >= 200 && answer.status < 300) return answer.body
    const b = answer.body as { error?: string, message?: string } | undefined
    throw new CommandError(`${method} ${path}: ${answer.status} ${b?.error ?? ''}: ${b?.message ?? answer.text.slice(0, 200)}`, exitCodeOf(answer.status), answer.body)
  }

  private async request (method: 'GET' | 'POST', path: string, body: unknown): Promise<Answer> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (method === 'POST') headers['content-type'] = 'application/json'
    if (method === 'POST' && this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    let res: Response
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs)
      })
    } catch (err) {
      const c = (err as { cause?: { code?: string, message?: string } }).cause
      const cause = c?.code ?? c?.message ?? (err as Error).message
      throw new CommandError(`cannot reach the admin endpoint at ${this.base} (${cause})`, EXIT.unreachable)
    }
    const text = await res.text()
    const type = res.headers.get('content-type') ?? ''
    let parsed: unknown
    if (type.startsWith('application/json')) {
      try { parsed = JSON.parse(text) } catch { throw new CommandError(`${this.base} answered malformed JSON`, EXIT.unreachable) }
    }
    return { status: res.status, body: parsed, text }
  }
}
