/**
 * The runtime across OS processes: every peer is a child process (test/support/peer-process.ts)
 * on TCP loopback, driven over stdin/stdout. The shared state is an append-only log, so
 * "converged" means every peer reports the same infimum id, nothing outstanding, and the same
 * log. Every wait is for a reported line and is bounded; children are killed after each test,
 * whatever its outcome (test/support/process-cluster.ts). Tests that kill a peer turn automatic
 * ejection off, so that what they check (a manual eject, a restart under the same key) is not
 * raced by it; test/partition.test.ts and test/crash.test.ts cover automatic ejection.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { PeerProcess, converged, startCluster, waitFor } from './support/process-cluster.js'

test('three processes converge on the same infimum after concurrent applyFast from each', { timeout: 120_000 }, async (t) => {
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

test('applyConsistent resolves in every process and the outputs agree with the final state', { timeout: 120_000 }, async (t) => {
  const peers = await startCluster(t, 3)
  const calls = peers.flatMap(p => [1, 2].map(i => ({ p, event: `${p.name}${i}`, id: p.send('applyConsistent', { event: `${p.name}${i}`, timeoutMs: 15_000 }) })))
  const outputs = await Promise.all(calls.map(async c => await c.p.reply<number>(c.id)))
  const final = await converged(peers, 'all 6 events folded', s => s.infimum.length === calls.length)
  calls.forEach((c, i) => { assert.equal(final.infimum[outputs[i]!], c.event, `the output of ${c.event} is its index in the log`) })
  assert.equal(new Set(outputs).size, calls.length)
  await Promise.all(peers.map(async p => { await p.stop() }))
})

test('a killed process ejected by a survivor unblocks the survivors\' pending applyConsistent', { timeout: 120_000 }, async (t) => {
  const [a, b, c] = await startCluster(t, 3, () => ({ failureDetection: { autoEject: false } })) as [PeerProcess, PeerProcess, PeerProcess]
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

test('a process restarted with the same private key rejoins and the cluster converges', { timeout: 120_000 }, async (t) => {
  const key = Buffer.from(privateKeyToProtobuf(await generateKeyPair('Ed25519'))).toString('hex')
  const [a, b, c] = await startCluster(t, 3, i => ({ failureDetection: { autoEject: false }, ...(i === 2 ? { privateKeyHex: key } : {}) })) as [PeerProcess, PeerProcess, PeerProcess]
  const id = c.self
  await c.kill()
  // An event while c is down stays outstanding: c is still a participant.
  await a.command('applyFast', { event: 'while-c-was-down' })
  await waitFor(() => [a, b].every(p => p.state?.projected.includes('while-c-was-down') === true && p.state.outstanding === 1) || undefined, 'a and b to hold the event, unfolded')

  const restarted = await new PeerProcess('C2', { cluster: a.env.cluster, join: b.address, privateKeyHex: key, failureDetection: { autoEject: false } }).ready()
  assert.equal(restarted.self, id, 'same key, same participant id')
  await converged([a, b, restarted], 'after the rejoin', s => s.infimum.includes('while-c-was-down'))
  const output = await restarted.command<number>('applyConsistent', { event: 'after-rejoin', timeoutMs: 15_000 })
  const final = await converged([a, b, restarted], 'after an event from the restarted peer', s => s.infimum.length === 2)
  assert.deepEqual(final.infimum, ['while-c-was-down', 'after-rejoin'])
  assert.equal(output, 1)
  await Promise.all([a.stop(), b.stop(), restarted.stop()])
})
