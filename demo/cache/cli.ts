/**
 * The command line of the example cache (demo/cache/cache.ts): runs a local cluster of cache
 * node processes (demo/cache/node.ts) in the background and talks to them over HTTP.
 *
 * ```sh
 * npm run cache -- start 3            # three node processes on 127.0.0.1, data under the state dir
 * npm run cache -- set user:1 alice   # tagged `user` (its prefix); --tags a,b to choose
 * npm run cache -- get user:1         # through any node; --node 2 to pick one, --one for one replica
 * npm run cache -- search user        # the tag index from `user` on, in order
 * npm run cache -- status             # partitions and keys per node, moves in flight
 * npm run cache -- kill 1             # SIGKILL node 1; `restart 1` recovers it from its disk
 * npm run cache -- add                # one more node joins; partitions move to it
 * npm run cache -- stop               # every node stops gracefully
 * npm run demo:cache                  # a scripted tour of all of the above
 * ```
 *
 * The cluster's state (node addresses, pids, data directories) lives in
 * `$LEGION_CACHE_DIR` (default: `legion-cache` in the system's temporary directory).
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const STATE = process.env.LEGION_CACHE_DIR ?? join(tmpdir(), 'legion-cache')
const NODE_SCRIPT = fileURLToPath(new URL('./node.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface NodeInfo { pid: number, self: string, address: string, http: number }

function nodeDir (i: number): string {
  return join(STATE, `node-${i}`)
}

/** The nodes that have a data directory, by index. */
function nodes (): number[] {
  if (!existsSync(STATE)) return []
  const out: number[] = []
  for (let i = 1; i < 1000 && existsSync(nodeDir(i)); i++) out.push(i)
  return out
}

function info (i: number): NodeInfo | undefined {
  const file = join(nodeDir(i), 'node.json')
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as NodeInfo : undefined
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

function live (): Array<{ i: number, node: NodeInfo }> {
  return nodes().flatMap(i => { const n = info(i); return n !== undefined && alive(n.pid) ? [{ i, node: n }] : [] })
}

/** Starts node `i` in the background and waits (bounded) until it has written its address. */
async function launch (i: number, mode: string[]): Promise<NodeInfo> {
  const dir = nodeDir(i)
  mkdirSync(dir, { recursive: true })
  rmSync(join(dir, 'node.json'), { force: true })
  const log = openSync(join(dir, 'node.log'), 'a')
  const child = spawn(process.execPath, ['--import', 'tsx', NODE_SCRIPT, dir, ...mode], { cwd: ROOT, detached: true, stdio: ['ignore', log, log] })
  child.unref()
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    const n = info(i)
    if (n !== undefined && n.pid === child.pid) return n
    if (child.exitCode !== null) break
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`node ${i} did not start; see ${join(dir, 'node.log')}`)
}

async function http (method: string, path: string, body?: unknown, node?: number): Promise<unknown> {
  const candidates = live().filter(n => node === undefined || n.i === node)
  if (candidates.length === 0) throw new Error(node === undefined ? 'no node is running: npm run cache -- start' : `node ${node} is not running`)
  let last: unknown
  for (const { node: n } of candidates) {
    try {
      const res = await fetch(`http://127.0.0.1:${n.http}${path}`, { method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) })
      const value = await res.json() as { error?: string }
      if (!res.ok) throw new Error(value.error ?? `HTTP ${res.status}`)
      return value
    } catch (err) {
      last = err
      if (node !== undefined || !(err instanceof TypeError)) throw err // a refused connection is a TypeError: try the next node
    }
  }
  throw last
}

function option (args: string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`)
  if (at < 0) return undefined
  const value = args[at + 1]
  args.splice(at, 2)
  return value
}

function flag (args: string[], name: string): boolean {
  const at = args.indexOf(`--${name}`)
  if (at >= 0) args.splice(at, 1)
  return at >= 0
}

/** Runs one command; returns what to print. */
export async function run (argv: string[]): Promise<string> {
  const args = [...argv]
  const node = option(args, 'node')
  const at = node === undefined ? undefined : Number(node)
  const [command, ...rest] = args
  switch (command) {
    case 'start': {
      if (live().length > 0) return 'a cluster is running already (npm run cache -- stop, or status)'
      rmSync(STATE, { recursive: true, force: true })
      const n = Math.max(1, Number(rest[0] ?? 3))
      const first = await launch(1, [])
      const started = [first, ...await Promise.all(Array.from({ length: n - 1 }, async (_, k) => await launch(k + 2, ['join', first.address])))]
      return started.map((s, k) => `node ${k + 1}: ${s.self} http://127.0.0.1:${s.http}`).join('\n')
    }
    case 'add': {
      const running = live()
      if (running.length === 0) return 'no node is running: npm run cache -- start'
      const i = (nodes().at(-1) ?? 0) + 1
      const s = await launch(i, ['join', running[0]!.node.address])
      return `node ${i}: ${s.self} http://127.0.0.1:${s.http}`
    }
    case 'kill': {
      const n = info(Number(rest[0]))
      if (n === undefined || !alive(n.pid)) return `node ${rest[0]} is not running`
      process.kill(n.pid, 'SIGKILL')
      return `node ${rest[0]} killed (SIGKILL); its data stays on disk: npm run cache -- restart ${rest[0]}`
    }
    case 'restart': {
      const i = Number(rest[0])
      const n = info(i)
      if (n === undefined) return `no node ${rest[0]}`
      if (alive(n.pid)) return `node ${i} is running`
      const others = live().map(x => x.node.address)
      const s = await launch(i, ['recover', ...others])
      return `node ${i}: ${s.self} recovered from its disk, http://127.0.0.1:${s.http}`
    }
    case 'set': {
      const [key, value] = rest
      if (key === undefined || value === undefined) return 'usage: set <key> <value> [--tags a,b]'
      const tags = option(rest, 'tags')
      const r = await http('PUT', `/key/${encodeURIComponent(key)}`, { value, ...(tags !== undefined ? { tags: tags.split(',').filter(t => t !== '') } : {}) }, at) as { previous: string | null }
      return `${key} = ${JSON.stringify(value)} (was ${JSON.stringify(r.previous)})`
    }
    case 'get': {
      const one = flag(rest, 'one')
      if (rest[0] === undefined) return 'usage: get <key> [--one]'
      const r = await http('GET', `/key/${encodeURIComponent(rest[0])}${one ? '?consistency=one' : ''}`, undefined, at) as { value: string | null }
      return JSON.stringify(r.value)
    }
    case 'del': {
      if (rest[0] === undefined) return 'usage: del <key>'
      const r = await http('DELETE', `/key/${encodeURIComponent(rest[0])}`, undefined, at) as { previous: string | null }
      return `deleted ${rest[0]} (was ${JSON.stringify(r.previous)})`
    }
    case 'search': {
      const limit = option(rest, 'limit') ?? '100'
      const after = option(rest, 'after')
      const q = new URLSearchParams({ limit, ...(rest[0] !== undefined ? { from: rest[0] } : {}), ...(after !== undefined ? { after } : {}) })
      const r = await http('GET', `/search?${q.toString()}`, undefined, at) as { records: Array<{ tag: string, key: string }>, next: string | null }
      const lines = r.records.map(x => `${x.tag}\t${x.key}`)
      if (r.next !== null) lines.push(`(more: --after ${r.next})`)
      return lines.length === 0 ? '(no records)' : lines.join('\n')
    }
    case 'status': {
      const lines: string[] = []
      for (const i of nodes()) {
        const n = info(i)
        if (n === undefined || !alive(n.pid)) { lines.push(`node ${i}: down`); continue }
        try {
          const s = await http('GET', '/stats', undefined, i) as { keyspace: { tableVersion: number, owned: number, keys: number, movesInFlight: number, members: number } }
          const k = s.keyspace
          lines.push(`node ${i}: ${n.self.slice(-8)} owns ${k.owned} partitions, ${k.keys} keys; table v${k.tableVersion}, ${k.members} members, ${k.movesInFlight} moves in flight`)
        } catch (err) {
          lines.push(`node ${i}: not answering (${(err as Error).message})`)
        }
      }
      return lines.length === 0 ? 'no cluster: npm run cache -- start' : lines.join('\n')
    }
    case 'stop': {
      const running = live()
      await Promise.all(running.map(async ({ i }) => await http('POST', '/stop', undefined, i).catch(() => {})))
      const deadline = Date.now() + 60_000
      while (live().length > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 200))
      return `${running.length} node(s) stopped`
    }
    default:
      return 'commands: start [n], add, kill <i>, restart <i>, set <key> <value> [--tags a,b], get <key> [--one], del <key>, search [tag] [--limit n] [--after cursor], status, stop; --node <i> picks a node'
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(process.argv.slice(2)).then(
    out => { process.stdout.write(out + '\n') },
    (err: Error) => { process.stderr.write(`${err.message}\n`); process.exitCode = 1 }
  )
}
