/**
 * Crashes across OS processes. Three peers (child processes on TCP loopback,
 * test/support/process-cluster.ts) keep their folds in durable LMDB storage and run
 * `applyConsistent` load throughout. The test kills one of them with SIGKILL, five times, at
 * random moments, keeps it down for a random time (shorter than the 3 s after which the others
 * suspect it, long enough for them to eject it, or near that edge, where one of them may eject
 * it and the other not), and restarts it with
 * `startup: { mode: 'recover' }` from its storage. It checks that:
 * - every restarted peer is a participant again and folds events again before the next crash
 *   (recovered as it was, or ejected meanwhile and rejoined);
 * - at the end every peer converges on one log, and every `applyConsistent` that resolved
 *   anywhere (including on a peer that was killed later) is in it exactly once, at the index
 *   it resolved with;
 * - the same holds for each of two more groups of every peer (cluster-wide groups of a
 *   service, with load of their own), saved beside the cluster's group: every group keeps the
 *   save-before-send rule across SIGKILL.
 * The schedule comes from a seed, printed before the run; replay it with
 * `LEGION_SEED=<seed> node --import tsx --test test/crash.test.ts`.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Load, PeerProcess, converged, startCluster, waitFor, whatEachCounted, whatEachHolds, whatEachSaw } from './support/process-cluster.js'

/** mulberry32: a small seeded PRNG, so a failing schedule can be replayed. */
function prng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let x = Math.imul(s ^ (s >>> 15), 1 | s)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

test('peers killed with SIGKILL and recovered from durable storage rejoin the cluster and lose no acknowledged event', { timeout: 180_000 }, async (t) => {
  const seed = process.env.LEGION_SEED !== undefined && process.env.LEGION_SEED !== '' ? Number(process.env.LEGION_SEED) : (Math.random() * 0x7fffffff) | 0
  t.diagnostic(`seed=${seed}`)
  const random = prng(seed)
  const dirs = await Promise.all([0, 1, 2].map(async () => await mkdtemp(join(tmpdir(), 'legion-crash-'))))
  t.after(async () => { await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) })) })

  const groups = ['g0', 'g1']
  const current = await startCluster(t, 3, i => ({ storage: dirs[i]!, summary: true, groups: groups.length }))
  const names = current.map(p => p.name)
  const load = new Load({ timeoutMs: 3000, paceMs: 25 })
  names.forEach((name, i) => { load.add(name, () => current[i]!) })
  const groupLoads = groups.map(group => new Load({ timeoutMs: 3000, paceMs: 60, group }))
  for (const l of groupLoads) names.forEach((name, i) => { l.add(name, () => current[i]!) })
  t.after(() => { for (const l of [load, ...groupLoads]) l.halt() })
  const crashes: Array<{ victim: string, downMs: number, recoveredMs: number, ejected: boolean }> = []
  /** A failed wait's error, rethrown with what each peer saw since `since` and counted. */
  const explained = (since: number) => async (err: Error): Promise<never> => {
    throw new Error(`${err.message}; crashes so far: ${JSON.stringify(crashes)}; ${whatEachSaw(current, load, since)}; ${await whatEachCounted(current)}; ${await whatEachHolds(current)}`)
  }
  const began = Date.now()
  await waitFor(() => names.every(n => load.count(n, began, 'resolved') >= 3) || undefined, 'every peer to fold 3 events of its own')

  for (let round = 0; round < 5; round++) {
    const i = Math.floor(random() * 3)
    const victim = current[i]!
    // Fault timing, not synchronisation: crash at a random moment of the load, stay down a
    // random time: a third of the crashes outlast suspicion and get the peer ejected, a third
    // end near it (with the restart's own second or so, one of the others may eject the peer
    // while the other does not, and the peer rejoins while its ejector is still at it), a
    // third are short.
    await delay(100 + random() * 900)
    await victim.kill()
    const killedAt = Date.now()
    const kind = random()
    const downMs = kind < 1 / 3 ? 4500 + random() * 1000 : kind < 2 / 3 ? 1500 + random() * 1000 : random() * 1500
    await delay(downMs)
    const others = current.filter(p => p !== victim)
    const restarted = await new PeerProcess(victim.name, {
      cluster: victim.env.cluster,
      storage: dirs[i]!,
      recover: others.map(p => p.address),
      summary: true,
      groups: groups.length
    }).ready()
    assert.equal(restarted.self, victim.self, 'recovered under the same peer id')
    current[i] = restarted
    // Back as a participant of all three, and folding its own events again.
    const ids = current.map(p => p.self).sort()
    await waitFor(() => current.every(p => JSON.stringify(p.state?.participants) === JSON.stringify(ids)) || undefined, `${victim.name} to be a participant everywhere again`)
      .catch(explained(killedAt))
    const backAt = Date.now()
    await waitFor(() => load.count(victim.name, backAt, 'resolved') >= 2 || undefined, `${victim.name} to fold events again`)
      .catch(explained(backAt))
    const ejected = await restarted.command<{ counters: { rejoins: number } }>('stats').then(s => s.counters.rejoins > 0)
    crashes.push({ victim: victim.name, downMs: Math.round(downMs), recoveredMs: backAt - killedAt, ejected })
  }

  await Promise.all([load.stop(), ...groupLoads.map(async l => { await l.stop() })])
  await converged(current, 'after the last crash, load stopped')
  const logs = await Promise.all(current.map(async p => (await p.command<{ infimum: string[] }>('readState')).infimum))
  for (const [i, l] of logs.entries()) assert.deepEqual(l, logs[0], `${names[i]}'s log`)
  const log = logs[0]!
  assert.equal(new Set(log).size, log.length, 'no event folded twice')
  const resolved = load.resolved()
  for (const call of resolved) assert.equal(log[call.output!], call.event, `${call.event} resolved with index ${call.output}`)
  const failures = new Map<string, number>()
  for (const c of load.calls) if (c.error !== undefined) failures.set(c.error, (failures.get(c.error) ?? 0) + 1)
  assert.deepEqual([...failures.keys()].filter(k => !['ConsistencyTimeoutError', 'EjectedError', 'PeerExited'].includes(k)), [], 'no other failure')

  for (const [g, group] of groups.entries()) {
    // The children report only the cluster's group on their own: poll the others, bounded.
    let groupLog: string[] | undefined
    for (let tries = 0; groupLog === undefined; tries++) {
      const states = await Promise.all(current.map(async p => await p.command<{ infimum: string[], outstanding: number, participants: string[], projectedParticipants: string[], projected: unknown[], infimumId: unknown, joined: boolean }>('readState', { group })))
      if (states.every(x => x.outstanding === 0 && JSON.stringify(x.infimum) === JSON.stringify(states[0]!.infimum))) groupLog = states[0]!.infimum
      else if (tries === 200) {
        const seen = states.map((x, i) => `${names[i]}: ${JSON.stringify({ participants: x.participants, projectedParticipants: x.projectedParticipants, joined: x.joined, outstanding: x.outstanding, infimum: x.infimum.length, infimumId: x.infimumId, projected: x.projected.length })}`)
        assert.fail(`group ${group} did not converge within 20 s (${seen.join('; ')}); crashes: ${JSON.stringify(crashes)}; ${await whatEachCounted(current)}; ${await whatEachHolds(current, group)}`)
      } else await delay(100)
    }
    assert.equal(new Set(groupLog).size, groupLog.length, `no event folded twice in ${group}`)
    const groupResolved = groupLoads[g]!.resolved()
    for (const call of groupResolved) assert.equal(groupLog[call.output!], call.event, `${group}: ${call.event} resolved with index ${call.output}`)
    t.diagnostic(`group ${group}: ${groupLoads[g]!.calls.length} applyConsistent, ${groupResolved.length} resolved and checked in a log of ${groupLog.length}`)
  }

  t.diagnostic(`crashes: ${crashes.map(c => `${c.victim} down ${c.downMs} ms, participant again after ${c.recoveredMs} ms${c.ejected ? ' (ejected, rejoined)' : ''}`).join('; ')}`)
  t.diagnostic(`events: ${load.calls.length} applyConsistent, ${resolved.length} resolved and checked in a log of ${log.length}; failures: ${JSON.stringify(Object.fromEntries(failures))}`)
  await Promise.all(current.map(async p => { await p.stop() }))
})
