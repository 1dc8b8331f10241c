/**
 * Demo: five OS processes (demo/peer.ts) on 127.0.0.1 form a Legion cluster that shares a
 * 64-partition table. The demo waits until every peer reports the same settled table, kills
 * one peer with SIGKILL, has a survivor eject it, waits until the four survivors agree on the
 * rebalanced table (16 partitions each), then stops them all.
 *
 * This file only orchestrates: it talks to each peer over stdin/stdout, one JSON object per
 * line, and every wait is for an answer or a reported state, bounded by one overall deadline.
 * Exit status 0 on success, 1 on any failure or timeout; no peer process outlives the demo.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { formatPartitionTable, partitionsOf, type PartitionTable } from '../src/index.js'

const PEERS = 5
const DEADLINE_MS = 60_000
const root = fileURLToPath(new URL('..', import.meta.url))
const peerScript = fileURLToPath(new URL('./peer.ts', import.meta.url))
const started = Date.now()

/** What demo/peer.ts prints. */
type PeerMessage =
  | { type: 'ready', self: string, address: string }
  | { type: 'state', infimumId: string, outstanding: number, table: PartitionTable }
  | { type: 'reply', id: number, value?: unknown, error?: string }

/** One peer process, with the latest state it reported. */
class Peer {
  readonly child: ChildProcess
  self = ''
  address = ''
  state: Extract<PeerMessage, { type: 'state' }> | undefined
  exit: { code: number | null, signal: string | null } | undefined
  expectExit = false
  private nextId = 1
  private readonly replies = new Map<number, Extract<PeerMessage, { type: 'reply' }>>()

  constructor (readonly name: string, joinAddress?: string) {
    const args = ['--import', 'tsx', peerScript, ...(joinAddress !== undefined ? [joinAddress] : [])]
    this.child = spawn(process.execPath, args, { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] })
    createInterface({ input: this.child.stdout! }).on('line', line => {
      let message: PeerMessage
      try { message = JSON.parse(line) as PeerMessage } catch { console.log(`${this.name}| ${line}`); return }
      if (message.type === 'ready') { this.self = message.self; this.address = message.address }
      if (message.type === 'state') this.state = message
      if (message.type === 'reply') this.replies.set(message.id, message)
      recheck()
    })
    this.child.on('exit', (code, signal) => { this.exit = { code, signal }; recheck() })
    this.child.stdin!.on('error', () => {}) // a dead peer's closed pipe: its exit is what we report
  }

  get label (): string { return `${this.name} ${shortId(this.self)}` }

  /** Sends a command and resolves with the peer's answer. */
  async command (command: string, fields: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++
    this.child.stdin!.write(JSON.stringify({ id, command, ...fields }) + '\n')
    const reply = await until(() => this.replies.get(id), `${this.name} to answer ${command}`)
    if (reply.error !== undefined) throw new Error(`${this.name}: ${command} failed: ${reply.error}`)
    return reply.value
  }
}

// ---------------------------------------------------------------------------------------------
// Waiting: every reported line re-evaluates the pending conditions; the deadline fails them all.

const waiters = new Set<() => void>()
function recheck (): void { for (const w of [...waiters]) w() }

/** Resolves with the first value of `check` other than undefined; fails on the deadline or an unexpected exit. */
async function until<T> (check: () => T | undefined, what: string): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { done(); reject(new Error(`timed out waiting for ${what}`)) }, Math.max(0, started + DEADLINE_MS - Date.now()))
    const done = (): void => { clearTimeout(timer); waiters.delete(evaluate) }
    const evaluate = (): void => {
      const crashed = peers.find(p => p.exit !== undefined && !p.expectExit)
      if (crashed !== undefined) { done(); reject(new Error(`${crashed.name} exited unexpectedly (${JSON.stringify(crashed.exit)}) while waiting for ${what}`)); return }
      const value = check()
      if (value !== undefined) { done(); resolve(value) }
    }
    waiters.add(evaluate)
    evaluate()
  })
}

/** The table, once every one of `group` reports the same infimum with nothing outstanding and `size` participants. */
function agreement (group: Peer[], size: number): () => { infimumId: string, table: PartitionTable } | undefined {
  return () => {
    const first = group[0]?.state
    if (first === undefined || first.outstanding > 0 || first.table.participants.length !== size) return undefined
    const agreed = group.every(p => p.state !== undefined && p.state.outstanding === 0 &&
      p.state.infimumId === first.infimumId && isDeepStrictEqual(p.state.table, first.table))
    return agreed ? { infimumId: first.infimumId, table: first.table } : undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Output

const shortId = (id: string): string => `…${id.slice(-6)}`
const shortEventId = (key: string): string => key.replace(/:(.*)$/, (_, p: string) => `:${shortId(p)}`)
function say (line: string): void {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(4)}s] ${line}`)
}
function showAgreement (group: Peer[], { infimumId, table }: { infimumId: string, table: PartitionTable }): void {
  say(`agreed by ${group.map(p => p.name).join(' ')} at infimum ${shortEventId(infimumId)}, nothing outstanding`)
  // formatPartitionTable names participants by the end of their ids; add the peer names, and sort by them.
  const names = new Map(group.map(p => [shortId(p.self), p.name]))
  const [header, ...rows] = formatPartitionTable(table).split('\n')
  const named = rows.map(row => row.replace(/^ {2}(…\S+)/, (_, id: string) => `  ${names.get(id) ?? '??'} ${id}`)).sort()
  for (const line of [header, ...named]) console.log(`        ${line}`)
}

// ---------------------------------------------------------------------------------------------
// The demo

const peers: Peer[] = []

function killAll (): void {
  for (const p of peers) if (p.exit === undefined) p.child.kill('SIGKILL')
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => { killAll(); process.exit(1) })

async function main (): Promise<void> {
  console.log(`Legion demo: ${PEERS} processes on 127.0.0.1 share a 64-partition table\n`)

  const founder = new Peer('p1')
  peers.push(founder)
  await until(() => founder.self !== '' ? true : undefined, 'p1 to start')
  say(`${founder.label} founded the cluster at ${founder.address}`)

  // The others join at once, all through p1: concurrent joins are ordinary concurrent events.
  const joiners = Array.from({ length: PEERS - 1 }, (_, i) => new Peer(`p${i + 2}`, founder.address))
  peers.push(...joiners)
  await Promise.all(joiners.map(async p => {
    await until(() => p.self !== '' ? true : undefined, `${p.name} to join`)
    say(`${p.label} joined through p1`)
  }))
  showAgreement(peers, await until(agreement(peers, PEERS), `all ${PEERS} peers to agree`))

  const victim = peers[2]!
  const survivors = peers.filter(p => p !== victim)
  victim.expectExit = true
  victim.child.kill('SIGKILL')
  await until(() => victim.exit, `${victim.name} to die`)
  say(`${victim.label} killed with SIGKILL; the others still count it as a participant`)

  const ejecter = survivors[0]!
  const { reached, unreachable } = await ejecter.command('eject', { peer: victim.self }) as { reached: string[], unreachable: string[] }
  const names = (ids: string[]): string => ids.map(id => peers.find(p => p.self === id)?.name ?? shortId(id)).join(' ') || 'none'
  say(`${ejecter.name} ejected ${victim.name}: reached ${names(reached)}; unreachable ${names(unreachable)}`)
  const rebalanced = await until(agreement(survivors, PEERS - 1), 'the survivors to agree')
  showAgreement(survivors, rebalanced)
  const counts = survivors.map(p => partitionsOf(rebalanced.table, p.self).length)
  if (!counts.every(c => c === 64 / (PEERS - 1))) throw new Error(`unbalanced table: ${counts.join(', ')}`)
  say(`every survivor owns ${64 / (PEERS - 1)} partitions`)

  for (const p of survivors) p.expectExit = true
  await Promise.all(survivors.map(async p => await p.command('stop')))
  const exits = await Promise.all(survivors.map(async p => await until(() => p.exit, `${p.name} to exit`)))
  const failed = survivors.filter((_, i) => exits[i]!.code !== 0)
  if (failed.length > 0) throw new Error(`${failed.map(p => `${p.name} exited with ${JSON.stringify(p.exit)}`).join(', ')}`)
  say(`stopped: ${survivors.map(p => p.name).join(' ')} left the cluster and exited with status 0`)
}

try {
  await main()
  console.log('\nOK')
} catch (err) {
  console.error(`\nFAILED: ${err instanceof Error ? err.message : String(err)}`)
  killAll()
  process.exitCode = 1
}
