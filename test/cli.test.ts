/**
 * The `legion` command as a user runs it (a child process per command): its help, its exit
 * codes, its tables and `--json` against real peers' admin endpoints, and `legion start`
 * running peers that found, join and leave a cluster with their data in a directory.
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { LEGION_VERSION } from '../src/version.js'
import { cacheKeyspace, type Cache } from '../demo/cache/cache.js'
import { adminCluster, stopPeers, TOKEN, urlOf, waitUntil, type AdminPeer } from './support/admin-cluster.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const main = join(root, 'src', 'cli', 'main.ts')
const running: AdminPeer[] = []
const children: ChildProcess[] = []
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  await stopPeers(running.splice(0))
})

/** The environment of a user's shell: none of the test runner's variables, no admin defaults. */
function env (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT' && k !== 'NODE_OPTIONS' && !k.startsWith('LEGION_')))
  return { ...e, ...extra }
}

/** Runs `legion ...args` to completion (bounded), with its exit code and output. */
async function legion (args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    execFile(process.execPath, ['--import', 'tsx', main, ...args], { cwd: root, env: env(extraEnv), timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

test('legion --help lists the commands, --version prints the version, a wrong command exits 2', async () => {
  const help = await legion(['--help'])
  assert.equal(help.code, 0)
  for (const command of ['start', 'status', 'members', 'partitions', 'eject', 'leave', 'views', 'view', 'moves', 'plan', 'commit', 'metrics', 'ready']) {
    assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'), `help lists ${command}`)
  }
  const version = await legion(['--version'])
  assert.equal(version.stdout.trim(), LEGION_VERSION)
  const wrong = await legion(['frobnicate'])
  assert.equal(wrong.code, 2)
  assert.match(wrong.stderr, /unknown command/)
})

test('against a running cluster: tables for people, --json for scripts, and exit codes for unreachable, forbidden, not found and conflict', async () => {
  const peers = await adminCluster(3, (i) => i === 0 ? { allowMutations: true, token: TOKEN } : {})
  running.push(...peers)
  const [a, b, c] = peers
  const url = urlOf(a!)

  const status = await legion(['status', '--json'], { LEGION_ADMIN_URL: url })
  assert.equal(status.code, 0, status.stderr)
  assert.equal(JSON.parse(status.stdout).members, 3)
  const human = await legion(['status', '--url', url])
  assert.match(human.stdout, /^cluster +\S+ \(legion \d+\.\d+\.\d+, protocol 13\.0\.0\)$/m, human.stdout)
  const members = await legion(['members', '--url', url])
  assert.equal(members.code, 0, members.stderr)
  const lines = members.stdout.trim().split('\n')
  assert.match(lines[0]!, /^PEER +STATUS +SILENT +STUCK +BEHIND +CANNOT REACH$/)
  assert.equal(lines.length, 4)
  for (const p of peers) assert.ok(lines.some(l => l.startsWith(p.self) && /\balive\b/.test(l)), `a row for ${p.self}`)
  const partitions = await legion(['partitions', '--json', '--url', url])
  assert.deepEqual(JSON.parse(partitions.stdout).owners, a!.readState().projected.owners)
  const ready = await legion(['ready', '--url', url])
  assert.equal(ready.code, 0)
  assert.equal(ready.stdout.trim(), 'ready')

  const plan = await legion(['plan', 'leave', c!.self, '--url', url])
  assert.equal(plan.code, 0, plan.stderr)
  const version = a!.readState().projected.version
  assert.match(plan.stdout, new RegExp(`^plan at table version ${version}: leave moves 4 partition\\(s\\)`))
  assert.match(plan.stdout, new RegExp(`commit it with: legion commit leave ${c!.self} --at ${version}`))

  // Independent commands, run at once to keep the test short.
  const codes = await Promise.all([
    legion(['status', '--url', 'http://127.0.0.1:1']),
    legion(['eject', c!.self, '--url', url]),
    legion(['eject', c!.self, '--url', urlOf(b!)], { LEGION_ADMIN_TOKEN: TOKEN }),
    legion(['eject', 'nobody', '--url', url], { LEGION_ADMIN_TOKEN: TOKEN }),
    legion(['commit', 'rebalance', '--at', String(version + 7), '--url', url], { LEGION_ADMIN_TOKEN: TOKEN }),
    legion(['plan', 'move', '--url', url])
  ])
  assert.deepEqual(codes.map(r => r.code), [
    3, // unreachable
    4, // no token
    4, // mutations disabled there
    5, // not a member
    6, // plan outdated
    2 // a change missing its arguments
  ], codes.map(r => r.stderr).join('\n'))

  const commit = await legion(['commit', 'leave', c!.self, '--json', '--url', url], { LEGION_ADMIN_TOKEN: TOKEN })
  assert.equal(commit.code, 0, commit.stderr)
  assert.equal(JSON.parse(commit.stdout).ejected, c!.self)
  await waitUntil(() => a!.readState().participants.length === 2, 'c ejected')
  const metrics = await legion(['metrics', '--url', url])
  assert.match(metrics.stdout, /^legion_participants 2$/m)
})

test('legion status of an ejected peer whose rejoin waits for a broken link says whom it cannot reach', async () => {
  // An endpoint answering what an ejected peer's /status holds then (docs/ADMIN.md): cutting a
  // link between processes for this is test/broken-link.test.ts's job; here, the rendering.
  const status = {
    self: 'peer-x', cluster: 'c', version: LEGION_VERSION, protocol: '13.0.0', phase: 'ejected', ready: false, uptimeSeconds: 9,
    mutations: false, addresses: [], partitionTable: false, supervision: [], views: [],
    membership: 'ejected', cannotReach: ['peer-y', 'peer-z'], members: 5, settledMembers: 5, suspected: 2, stuck: 0, divergent: 0,
    outstanding: 3, infimumId: null, health: { kind: 'ok' }, groups: { defined: 1, held: 1, outstanding: 3 }
  }
  const server = createServer((req, res) => {
    res.writeHead(req.url === '/status' ? 200 : 404, { 'content-type': 'application/json' })
    res.end(JSON.stringify(req.url === '/status' ? status : { error: 'NotFound', message: req.url }))
  })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const human = await legion(['status', '--url', url])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /^rejoin +refused until it reaches peer-y, peer-z$/m, human.stdout)
    const member = await legion(['status', '--url', url, '--json'])
    assert.deepEqual(JSON.parse(member.stdout).cannotReach, ['peer-y', 'peer-z'])
    status.cannotReach = []
    assert.doesNotMatch((await legion(['status', '--url', url])).stdout, /^rejoin/m, 'no line when nothing is waited for')
  } finally {
    server.close()
  }
})

test('views, view and plan --service show a keyspace to people (tables) and scripts (--json), with exit codes for what is not there', async () => {
  const peers = await adminCluster(3, (i) => i === 0 ? { allowMutations: true, token: TOKEN } : {}, 12, () => ({ cache: cacheKeyspace({ name: 'cache', partitions: 8, replication: 2 }) }))
  running.push(...peers)
  const [a, , c] = peers
  const cacheOf = (p: AdminPeer): Cache => (p.services as unknown as { cache: Cache }).cache
  await Promise.all(peers.map(async p => { await cacheOf(p).whenSettled({ timeoutMs: 45_000 }) }))
  await waitUntil(() => peers.every(p => cacheOf(p).table()?.members.length === 3 && cacheOf(p).stats().movesInFlight === 0), 'the keyspace settled on 3 members', 45_000)
  const url = urlOf(a!)
  const held = cacheOf(a!).table()!.assignments.filter(x => x.owners.includes(c!.self)).length

  const [views, partitions, table, tableJson, plan, planJson, moves, movesJson] = await Promise.all([
    legion(['views', '--url', url]),
    legion(['view', 'cache/partitions', '--url', url]),
    legion(['view', 'cache/table', '--url', url]),
    legion(['view', 'cache/table', '--json', '--url', url]),
    legion(['plan', 'leave', c!.self, '--service', 'cache', '--url', url]),
    legion(['plan', 'leave', c!.self, '--service', 'cache', '--json', '--url', url]),
    legion(['moves', 'cache', '--url', url]),
    legion(['moves', 'cache', '--json', '--url', url])
  ])
  for (const r of [views, partitions, table, tableJson, plan, planJson, moves, movesJson]) assert.equal(r.code, 0, r.stderr)
  assert.match(views.stdout, /^NAME +TITLE +PLANS$/m)
  assert.match(views.stdout, /^cache\/table +Keyspace cache: ownership table +yes$/m)
  const rows = partitions.stdout.trim().split('\n')
  assert.equal(rows[0], 'Keyspace cache: partitions on this peer (cache/partitions)')
  assert.match(rows[1]!, /^PARTITION +GENERATION +ROLE +OWNERS +INCOMING +HELD +KEYS$/)
  assert.equal(rows.length - 2, cacheOf(a!).stats().owned, 'a row per partition this peer serves')
  assert.match(table.stdout, /^partitions +8$/m)
  assert.match(table.stdout, /^byMember:\nPEER +OWNER +OUTGOING +INCOMING +DRAINING$/m)
  assert.equal(JSON.parse(tableJson.stdout).data.replication, 2)
  assert.match(plan.stdout, new RegExp(`^plan of cache at table version \\d+: a leave of ${c!.self} moves ${held} partition\\(s\\), ${held} transfer\\(s\\)$`, 'm'))
  assert.match(plan.stdout, /^PARTITION +ADDING +REMOVING$/m)
  assert.deepEqual([JSON.parse(planJson.stdout).transfers, JSON.parse(planJson.stdout).lost], [held, []])
  assert.match(moves.stdout, /^cache: no move in flight at table version \d+ \(3 members, 8 partitions\)$/m)
  assert.equal(JSON.parse(movesJson.stdout).movesInFlight, 0)

  const codes = await Promise.all([
    legion(['view', 'cache/nope', '--url', url]),
    legion(['view', 'nonsense', '--url', url]),
    legion(['plan', 'leave', c!.self, '--service', 'nope', '--url', url]),
    legion(['plan', 'join', c!.self, '--service', 'cache', '--url', url]),
    legion(['plan', 'rebalance', '--service', 'cache', '--url', url]),
    legion(['commit', 'leave', c!.self, '--service', 'cache', '--url', url], { LEGION_ADMIN_TOKEN: TOKEN }),
    legion(['moves', 'nope', '--url', url])
  ])
  assert.deepEqual(codes.map(r => r.code), [
    5, // no such view
    2, // not <service>/<view>
    5, // no service offers that plan
    6, // a join of a member: refused
    2, // a keyspace plans joins and leaves only
    2, // a keyspace's layout is not committed
    5 // no keyspace of that name: no table view to wait on
  ], codes.map(r => r.stderr).join('\n'))
  assert.match(codes[5]!.stderr, /follows the membership/)
})

/** Starts `legion start ...` and resolves with the JSON line it prints once running. */
async function startPeer (args: string[], extraEnv: Record<string, string> = {}): Promise<{ child: ChildProcess, info: { self: string, multiaddrs: string[], admin: string } }> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'start', '--json', '--admin-port', '0', ...args], { cwd: root, env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString() })
  const line = await new Promise<string>((resolve, reject) => {
    // A deadline, as the process harness's START_MS: `legion start` compiles through tsx and
    // starts a libp2p node; with three test suites at once on 2 cores it once took over 30 s.
    const timer = setTimeout(() => { reject(new Error(`legion start printed nothing in 60 s: ${stderr}`)) }, 60_000)
    createInterface({ input: child.stdout! }).once('line', l => { clearTimeout(timer); resolve(l) })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`legion start exited with ${String(code)}: ${stderr}`)) })
  })
  return { child, info: JSON.parse(line) as { self: string, multiaddrs: string[], admin: string } }
}

async function exited (child: ChildProcess, timeoutMs = 20_000): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('the peer process did not exit')) }, timeoutMs)
    child.once('exit', code => { clearTimeout(timer); resolve(code) })
  })
}

test('legion start founds and joins a cluster with data directories; leave through the endpoint and SIGTERM each stop a peer with exit code 0', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'legion-cli-test-'))
  after(async () => { await rm(dir, { recursive: true, force: true }) })
  const cluster = `cli-${process.pid}`
  const first = await startPeer(['--cluster', cluster, '--new', '--data', join(dir, 'a'), '--partitions', '8'])
  const second = await startPeer(['--cluster', cluster, '--join', first.info.multiaddrs[0]!, '--data', join(dir, 'b'), '--allow-mutations'], { LEGION_ADMIN_TOKEN: TOKEN })
  await waitUntil(async () => {
    const r = await legion(['members', '--json', '--url', first.info.admin])
    return r.code === 0 && (JSON.parse(r.stdout) as { members: unknown[] }).members.length === 2
  }, 'two members', 20_000)

  const leave = await legion(['leave', '--url', second.info.admin], { LEGION_ADMIN_TOKEN: TOKEN })
  assert.equal(leave.code, 0, leave.stderr)
  assert.match(leave.stdout, new RegExp(`${second.info.self} left the cluster`))
  assert.equal(await exited(second.child), 0)
  const left = await legion(['status', '--json', '--url', first.info.admin])
  assert.equal(JSON.parse(left.stdout).members, 1)

  first.child.kill('SIGTERM')
  assert.equal(await exited(first.child), 0)
  // Its data directory holds the peer: it recovers as the same participant.
  const again = await startPeer(['--cluster', cluster, '--recover', '--data', join(dir, 'a')])
  assert.equal(again.info.self, first.info.self)
  again.child.kill('SIGTERM')
  assert.equal(await exited(again.child), 0)
})
