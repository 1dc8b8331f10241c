/**
 * Fault tests of election with peers as separate OS processes on TCP loopback
 * (test/support/discovery-peer.ts): the holder is killed with SIGKILL, then partitioned into the
 * minority (through `allowPeers`, both ways), then the partition heals; throughout, every run
 * any peer reports is recorded, and the holder's writes go to a fenced resource (this process).
 * It checks that a successor always takes over, that no two peers ever ran the name at the same
 * time, and that the tokens the resource saw only grew (it never had to refuse a write).
 *
 * `npm test` runs one round of each fault with three peers (the holder is partitioned alone);
 * LEGION_DISCOVERY_ROUNDS=n (`npm run test:discovery-faults`) runs n rounds with five peers
 * (the holder and one other in the minority).
 */
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { DiscoveryCluster, compareTokens, longestOverlap, type DiscoveryChild } from './support/discovery-cluster.js'

const ROUNDS = Math.max(1, Number(process.env.LEGION_DISCOVERY_ROUNDS ?? 1))
/** Three peers in the short run (each process takes seconds to start on a busy machine), five in long ones. */
const SIZE = ROUNDS > 1 ? 5 : 3
const detection = { heartbeatIntervalMs: 250, suspectAfterMs: 1500, stuckAfterMs: 10_000 }
const clusters: DiscoveryCluster[] = []
after(() => { for (const c of clusters) c.killAll() })
process.on('exit', () => { for (const c of clusters) c.killAll() })

async function holderOf (cluster: DiscoveryCluster, name: string, except: ReadonlySet<string> = new Set()): Promise<DiscoveryChild> {
  const run = await cluster.waitFor(() => cluster.running(name).find(r => !except.has(r.peer)), `a holder of ${name}`, 30_000)
  return cluster.children.find(c => c.self === run.peer)!
}

test(`election across OS processes: ${ROUNDS} round(s) of killing the holder and of partitioning it into the minority; no overlap, tokens only grow`, { timeout: 120_000 * ROUNDS }, async () => {
  const cluster = new DiscoveryCluster(`discovery-faults-${process.pid}`, { failureDetection: detection, writeEveryMs: 20 })
  clusters.push(cluster)
  const founder = await cluster.add()
  await Promise.all(Array.from({ length: SIZE - 1 }, async () => await cluster.add(founder)))
  await Promise.all(cluster.alive().map(async c => await c.command('elect', { name: 'boss' })))
  const t0 = Date.now()
  const mark = (what: string): void => { if (process.env.LEGION_DISCOVERY_TRACE !== undefined) process.stdout.write(`# ${Date.now() - t0} ms: ${what}\n`) }
  for (let round = 0; round < ROUNDS; round++) {
    // 1. Kill the holder: another takes over; a fresh process replaces it.
    const victim = await holderOf(cluster, 'boss')
    mark('kill')
    await cluster.kill(victim)
    const successor = await holderOf(cluster, 'boss', new Set([victim.self]))
    assert.notEqual(successor.self, victim.self)
    mark('successor')
    const fresh = await cluster.add(successor)
    await fresh.command('elect', { name: 'boss' })
    mark('replaced')

    // 2. Partition the holder and one other into the minority: the majority elects another.
    const holder = await holderOf(cluster, 'boss')
    const minority = SIZE === 5 ? [holder, cluster.alive().find(c => c !== holder)!] : [holder]
    const majority = cluster.alive().filter(c => !minority.includes(c))
    const ids = (cs: DiscoveryChild[]): string[] => cs.map(c => c.self)
    await Promise.all([
      ...minority.map(async c => await c.command('block', { peers: ids(majority) })),
      ...majority.map(async c => await c.command('block', { peers: ids(minority) }))
    ])
    mark('partitioned')
    const next = await holderOf(cluster, 'boss', new Set(ids(minority)))
    mark('majority elected')
    assert.ok(ids(majority).includes(next.self))
    const started = cluster.running('boss').find(r => r.peer === next.self)!.start
    // Lines from different processes may arrive in any order: compare the times they carry.
    const old = await cluster.waitFor(() => { const rs = cluster.runs.filter(r => r.peer === holder.self); return rs.every(r => r.end !== undefined) ? rs : undefined }, 'the old holder to report its stop')
    assert.ok(old.every(r => r.end! <= started), 'the old holder stopped before the majority\'s holder started')

    // 3. Heal: the minority rejoins and stands again; still one holder.
    await Promise.all(cluster.alive().map(async c => await c.command('block', { peers: [] })))
    for (const c of minority) {
      await cluster.waitFor(() => c.members.membership === 'participant' && c.members.members === SIZE ? true : undefined, `${c.name} to rejoin`, 30_000)
      await c.command('elect', { name: 'boss' })
    }
    await cluster.waitFor(() => cluster.alive().every(c => c.members.members === SIZE) || undefined, 'every participant everywhere')
    mark('healed')
  }
  const now = performance.timeOrigin + performance.now()
  assert.equal(longestOverlap(cluster.runs, now), 0, `runs overlapped: ${JSON.stringify(cluster.runs)}`)
  // The fenced resource: in the order the writes were made (as stamped; pipes from different
  // processes may deliver out of order), tokens never go back, so it never had to refuse one.
  const made = [...cluster.writes].sort((x, y) => x.at - y.at)
  assert.ok(made.length > 0, 'the holders wrote')
  for (let i = 1; i < made.length; i++) assert.ok(compareTokens(made[i - 1]!.token, made[i]!.token) <= 0, `a write under ${made[i]!.token} came after one under ${made[i - 1]!.token}`)
  const tokens = [...new Set(cluster.runs.map(r => r.token))]
  assert.ok(tokens.every((t, i) => i === 0 || compareTokens(tokens[i - 1]!, t) < 0), `grants in increasing token order: ${tokens.join(', ')}`)
  assert.ok(cluster.runs.length >= 1 + 2 * ROUNDS)
  cluster.killAll()
})

