/**
 * The runtime across OS processes: every peer is a child process (test/support/peer-process.ts)
 * on TCP loopback, driven over stdin/stdout. The shared state is an append-only log, so
 * "converged" means every peer reports the same infimum id, nothing outstanding, and the same
 * log. Every wait is for a reported line and is bounded; children are killed after each test,
 * whatever its outcome.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'

const root = fileURLToPath(new URL('..', import.meta.url))
const childScript = fileURLToPath(new URL('./support/peer-process.ts', import.meta.url))
const WAIT_MS = 20_000

interface ReportedState {
  infimumId: string
  outstanding: number
  participants: string[]
  infimum: string[]
  projected: string[]
}
interface Reply { id: number, value?: unknown, error?: string }

/** Conditions being waited for; every line from any child, and every exit, re-evaluates them. */
const waiters = new Set<() => void>()
const recheck = (): void => { for (const w of [...waiters]) w() }
const everyPeer = new Set<PeerProcess>()

class PeerProcess {
  readonly child: ChildProcess
  self = ''
  address = ''
  state: ReportedState | undefined
  exit: { code: number | null, signal: NodeJS.Signals | null } | undefined
  expectExit = false
  private nextId = 1
  private readonly replies = new Map<number, Reply>()

  constructor (readonly name: string, readonly env: { cluster: string, join?: string, privateKeyHex?: string }) {
    this.child = spawn(process.execPath, ['--import', 'tsx', childScript], {
      cwd: root,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: {
        ...process.env,
        LEGION_CLUSTER: env.cluster,
        ...(env.join !== undefined ? { LEGION_JOIN: env.join } : {}),
        ...(env.privateKeyHex !== undefined ? { LEGION_PRIVATE_KEY: env.privateKeyHex } : {})
      }
    })
    everyPeer.add(this)
    createInterface({ input: this.child.stdout! }).on('line', line => {
      const m = JSON.parse(line) as { type: string } & Record<string, unknown>
      if (m.type === 'ready') { this.self = m.self as string; this.address = m.address as string }
      if (m.type === 'state') this.state = m as unknown as ReportedState
      if (m.type === 'reply') this.replies.set(m.id as number, m as unknown as Reply)
      recheck()
    })
    this.child.on('exit', (code, signal) => { this.exit = { code, signal }; recheck() })
    this.child.stdin!.on('error', () => {}) // a dead child's closed pipe: its exit is what we report
  }

  async ready (): Promise<this> {
    await waitFor(() => this.self !== '' || undefined, `${this.name} to start`)
    return this
  }

  /** Sends a command; `reply()` waits for its answer. */
  send (command: string, args: Record<string, unknown> = {}): number {
    const id = this.nextId++
    this.child.stdin!.write(JSON.stringify({ id, command, ...args }) + '\n')
    return id
  }

  /** The answer to command `id`, or a rejection if the command failed. */
  async reply<T> (id: number, timeoutMs = WAIT_MS): Promise<T> {
    const r = await waitFor(() => this.replies.get(id), `${this.name} to answer command ${id}`, timeoutMs)
    if (r.error !== undefined) throw new Error(`${this.name}: ${r.error}`)
    return r.value as T
  }

  hasReplied (id: number): boolean { return this.replies.has(id) }

  async command<T> (command: string, args: Record<string, unknown> = {}): Promise<T> {
    return await this.reply<T>(this.send(command, args))
  }

  async kill (): Promise<void> {
    this.expectExit = true
    this.child.kill('SIGKILL')
    await waitFor(() => this.exit, `${this.name} to die`)
  }

  /** Asks the peer to stop and checks that its process exits with status 0. */
  async stop (leave = false): Promise<void> {
    this.expectExit = true
    await this.command('stop', { leave })
    const exit = await waitFor(() => this.exit, `${this.name} to exit`)
    assert.deepEqual(exit, { code: 0, signal: null }, `${this.name} exit`)
  }
}

/** Resolves with the first value of `check` other than undefined; rejects on timeout or when a child exits unexpectedly. */
async function waitFor<T> (check: () => T | undefined, what: string, timeoutMs = WAIT_MS): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)) }, timeoutMs)
    const done = (): void => { clearTimeout(timer); waiters.delete(evaluate) }
    const evaluate = (): void => {
      const crashed = [...everyPeer].find(p => p.exit !== undefined && !p.expectExit)
      if (crashed !== undefined) { done(); reject(new Error(`${crashed.name} exited unexpectedly (${JSON.stringify(crashed.exit)}) while waiting for ${what}`)); return }
      const value = check()
      if (value !== undefined) { done(); resolve(value) }
    }
    waiters.add(evaluate)
    evaluate()
  })
}

/** The common state once every peer of `peers` reports it with nothing outstanding, exactly `participants` and `check` true. */
async function converged (peers: PeerProcess[], what: string, check: (s: ReportedState) => boolean = () => true): Promise<ReportedState> {
  const ids = peers.map(p => p.self).sort()
  return await waitFor(() => {
    const first = peers[0]?.state
    if (first === undefined) return undefined
    const agree = peers.every(p => p.state !== undefined && p.state.outstanding === 0 &&
      p.state.infimumId === first.infimumId &&
      JSON.stringify(p.state.participants) === JSON.stringify(ids) &&
      JSON.stringify(p.state.infimum) === JSON.stringify(first.infimum))
    return agree && check(first) ? first : undefined
  }, `${peers.map(p => p.name).join(', ')} to converge (${what})`)
}

let clusters = 0
/** Starts `size` peers, the first founding the cluster and the others joining through it at once; waits for them to converge. */
async function startCluster (t: { after: (fn: () => void) => void }, size: number, keys: Array<string | undefined> = []): Promise<PeerProcess[]> {
  const cluster = `processes-${process.pid}-${++clusters}`
  const founder = new PeerProcess('A', { cluster, privateKeyHex: keys[0] })
  t.after(() => { killAll() })
  await founder.ready()
  const joiners = await Promise.all(Array.from({ length: size - 1 }, async (_, i) =>
    await new PeerProcess(String.fromCharCode(66 + i), { cluster, join: founder.address, privateKeyHex: keys[i + 1] }).ready()))
  const peers = [founder, ...joiners]
  await converged(peers, 'after the joins')
  return peers
}

function killAll (): void {
  for (const p of everyPeer) {
    if (p.exit === undefined) { p.expectExit = true; p.child.kill('SIGKILL') }
    everyPeer.delete(p)
  }
}
after(killAll)
process.on('exit', killAll)

test('three processes converge on the same infimum after concurrent applyFast from each', { timeout: 45_000 }, async (t) => {
  const peers = await startCluster(t, 3)
  const events = peers.flatMap(p => [1, 2, 3].map(i => `${p.name}${i}`))
  // Send everything before awaiting anything: the events are concurrent across processes.
  const sent = peers.flatMap(p => [1, 2, 3].map(i => ({ p, id: p.send('applyFast', { event: `${p.name}${i}` }) })))
  for (const { p, id } of sent) assert.equal(typeof await p.reply<number>(id), 'number')
  const final = await converged(peers, 'all 9 events folded', s => s.infimum.length === events.length)
  assert.deepEqual([...final.infimum].sort(), [...events].sort())
  for (const p of peers) assert.deepEqual(p.state!.projected, final.infimum, `${p.name} projects its infimum`)
  await Promise.all(peers.map(async p => { await p.stop() }))
})

test('applyConsistent resolves in every process and the outputs agree with the final state', { timeout: 45_000 }, async (t) => {
  const peers = await startCluster(t, 3)
  const calls = peers.flatMap(p => [1, 2].map(i => ({ p, event: `${p.name}${i}`, id: p.send('applyConsistent', { event: `${p.name}${i}`, timeoutMs: 15_000 }) })))
  const outputs = await Promise.all(calls.map(async c => await c.p.reply<number>(c.id)))
  const final = await converged(peers, 'all 6 events folded', s => s.infimum.length === calls.length)
  calls.forEach((c, i) => { assert.equal(final.infimum[outputs[i]!], c.event, `the output of ${c.event} is its index in the log`) })
  assert.equal(new Set(outputs).size, calls.length)
  await Promise.all(peers.map(async p => { await p.stop() }))
})

test('a killed process ejected by a survivor unblocks the survivors\' pending applyConsistent', { timeout: 45_000 }, async (t) => {
  const [a, b, c] = await startCluster(t, 3) as [PeerProcess, PeerProcess, PeerProcess]
  await c.kill()
  const fromA = a.send('applyConsistent', { event: 'a-after-kill', timeoutMs: 20_000 })
  const fromB = b.send('applyConsistent', { event: 'b-after-kill', timeoutMs: 20_000 })
  // Both events reach both survivors but cannot fold: the dead participant never acknowledges them.
  await waitFor(() => (a.state?.projected.length === 2 && b.state?.projected.length === 2) || undefined, 'both events on both survivors')
  const stats = await a.command<{ outstanding: number, divergent: Array<{ peer: string }> }>('stats')
  assert.equal(stats.outstanding, 2)
  assert.ok(stats.divergent.some(d => d.peer === c.self), 'the dead peer is the one holding the events back')
  assert.ok(!a.hasReplied(fromA) && !b.hasReplied(fromB), 'applyConsistent is still pending')

  const dissemination = await a.command<{ reached: string[], unreachable: string[] }>('eject', { peer: c.self })
  assert.deepEqual(dissemination, { reached: [b.self], unreachable: [] })
  const [outA, outB] = await Promise.all([a.reply<number>(fromA), b.reply<number>(fromB)])
  const final = await converged([a, b], 'without the ejected peer', s => s.infimum.length === 2)
  assert.equal(final.infimum[outA], 'a-after-kill')
  assert.equal(final.infimum[outB], 'b-after-kill')
  await Promise.all([a.stop(), b.stop()])
})

test('a process restarted with the same private key rejoins and the cluster converges', { timeout: 45_000 }, async (t) => {
  const key = Buffer.from(privateKeyToProtobuf(await generateKeyPair('Ed25519'))).toString('hex')
  const [a, b, c] = await startCluster(t, 3, [undefined, undefined, key]) as [PeerProcess, PeerProcess, PeerProcess]
  const id = c.self
  await c.kill()
  // An event while c is down stays outstanding: c is still a participant.
  await a.command('applyFast', { event: 'while-c-was-down' })
  await waitFor(() => [a, b].every(p => p.state?.projected.includes('while-c-was-down') === true && p.state.outstanding === 1) || undefined, 'a and b to hold the event, unfolded')

  const restarted = await new PeerProcess('C2', { cluster: a.env.cluster, join: b.address, privateKeyHex: key }).ready()
  assert.equal(restarted.self, id, 'same key, same participant id')
  await converged([a, b, restarted], 'after the rejoin', s => s.infimum.includes('while-c-was-down'))
  const output = await restarted.command<number>('applyConsistent', { event: 'after-rejoin', timeoutMs: 15_000 })
  const final = await converged([a, b, restarted], 'after an event from the restarted peer', s => s.infimum.length === 2)
  assert.deepEqual(final.infimum, ['while-c-was-down', 'after-rejoin'])
  assert.equal(output, 1)
  await Promise.all([a.stop(), b.stop(), restarted.stop()])
})
