/**
 * One node of the example cache cluster (demo/cache/cache.ts): a Legion peer on TCP loopback
 * running the cache keyspace with durable LMDB storage, and a small JSON-over-HTTP API on
 * 127.0.0.1 for the command line (demo/cache/cli.ts starts these and talks to them).
 *
 * `node --import tsx demo/cache/node.ts <data-dir> [join <multiaddr> | recover <multiaddr>...]`
 * Once started it writes `<data-dir>/node.json` ({ pid, self, address, http }).
 *
 * HTTP API (bodies and answers are JSON):
 * - `GET /key/<key>[?consistency=one]` → `{ value }` (null: not set)
 * - `PUT /key/<key>` with `{ value, tags? }` → `{ previous }` (tags default to the key's prefix)
 * - `DELETE /key/<key>` → `{ previous }`
 * - `GET /search[?from=<tag>][&after=<cursor>][&limit=<n>]` → `{ records: [{ tag, key }], next }`
 * - `GET /stats` → the keyspace's and the peer's statistics
 * - `POST /stop` → stops gracefully (hands its partitions off, leaves), then exits
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { lmdbKeyValueStore, startLegion, type EventSpec, type StartupMode } from '../../src/index.js'
import { cacheKeyspace, defaultTags } from './cache.js'

const [dir, mode, ...addresses] = process.argv.slice(2)
if (dir === undefined) {
  process.stderr.write('usage: node.ts <data-dir> [join <multiaddr> | recover <multiaddr>...]\n')
  process.exit(2)
}
const startup: StartupMode = mode === 'join' ? { mode: 'join', peers: addresses } : mode === 'recover' ? { mode: 'recover', peers: addresses } : { mode: 'new' }
const noState: EventSpec<null, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s }) }
const legion = await startLegion({
  cluster: 'legion-cache',
  spec: noState,
  services: { cache: cacheKeyspace({ partitions: 32, replication: 3 }) },
  storage: await lmdbKeyValueStore(join(dir, 'data')),
  startup,
  listen: ['/ip4/127.0.0.1/tcp/0']
})
const cache = legion.services.cache

async function body (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > 1 << 20) throw new RangeError('request body over 1 MiB')
    chunks.push(chunk as Buffer)
  }
  return chunks.length === 0 ? {} : JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

function answer (res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(value) + '\n')
}

const STATUS: Record<string, number> = { TypeError: 400, RangeError: 400, HandlerError: 400, BadRequestError: 400, InvalidCursorError: 400, ForeignCursorError: 400, PartitionUnavailableError: 503, RequestTimeoutError: 504, StoppedError: 503 }

let stopping = false
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const handle = async (): Promise<void> => {
    const keyPath = url.pathname.startsWith('/key/') ? decodeURIComponent(url.pathname.slice(5)) : undefined
    if (keyPath !== undefined && req.method === 'GET') {
      const consistency = url.searchParams.get('consistency') === 'one' ? 'one' : 'agreed'
      answer(res, 200, { value: await cache.request(keyPath, { op: 'get' }, { consistency }) })
    } else if (keyPath !== undefined && req.method === 'PUT') {
      const b = await body(req) as { value?: unknown, tags?: unknown }
      if (typeof b.value !== 'string') { answer(res, 400, { error: 'the body must be { "value": string, "tags"?: string[] }' }); return }
      const tags = Array.isArray(b.tags) ? b.tags.map(String) : defaultTags(keyPath)
      answer(res, 200, { previous: await cache.request(keyPath, { op: 'set', value: b.value, tags }) })
    } else if (keyPath !== undefined && req.method === 'DELETE') {
      answer(res, 200, { previous: await cache.request(keyPath, { op: 'delete' }) })
    } else if (url.pathname === '/search' && req.method === 'GET') {
      const limit = Math.max(1, Math.min(10_000, Number(url.searchParams.get('limit') ?? 100) || 100))
      const after = url.searchParams.get('after')
      const from = after !== null ? { after } : url.searchParams.get('from') ?? undefined
      const records: Array<{ tag: string, key: string }> = []
      let last = ''
      let next: string | null = null
      for await (const r of cache.search(from)) {
        if (records.length === limit) { next = last; break } // there is more: continue after the last one shown
        records.push({ tag: r.tag, key: r.key })
        last = r.cursor
      }
      answer(res, 200, { records, next })
    } else if (url.pathname === '/stats' && req.method === 'GET') {
      const s = cache.stats()
      answer(res, 200, { self: legion.self, keyspace: { ...s, handoff: { ...s.handoff } }, peer: { participants: legion.stats().participants, membership: legion.stats().membership } })
    } else if (url.pathname === '/stop' && req.method === 'POST') {
      answer(res, 200, { stopping: true })
      void shutdown()
    } else {
      answer(res, 404, { error: `no ${req.method ?? ''} ${url.pathname}` })
    }
  }
  handle().catch((err: Error) => { answer(res, STATUS[err.name] ?? 500, { error: `${err.name}: ${err.message}` }) })
})
await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
const http = (server.address() as { port: number }).port
// Written whole, then renamed: the command line never reads half of it.
await writeFile(join(dir, 'node.json.tmp'), JSON.stringify({ pid: process.pid, self: legion.self, address: legion.multiaddrs()[0], http }))
await rename(join(dir, 'node.json.tmp'), join(dir, 'node.json'))
process.stdout.write(`cache node ${legion.self} on http://127.0.0.1:${http}\n`)

async function shutdown (): Promise<void> {
  if (stopping) return
  stopping = true
  server.close()
  await legion.stop()
  process.exit(0)
}
process.on('SIGTERM', () => { void shutdown() })
process.on('SIGINT', () => { void shutdown() })
