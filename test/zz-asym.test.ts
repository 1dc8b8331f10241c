import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startPeer } from '../src/peer/start.js'
import type { Legion } from '../src/peer/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { FakeNetwork, ManualClock, seededRandom, advanceUntil } from './support/fake-network.js'

interface Log { readonly log: readonly string[] }
const spec: EventSpec<string, Log, number> = { init: () => ({ log: [] }), apply: (e, s) => ({ ok: true, output: s.log.length, state: { log: [...s.log, e] } }) }
type Peer = Legion<string, Log, number>
const SEEDS = (process.env.SEEDS ?? '1,2,3').split(',').map(Number)
const CASE = process.env.CASE ?? 'star2'
const CUT_MS = Number(process.env.CUT_MS ?? 15000)

for (const seed of SEEDS) test(`asym ${CASE} seed ${seed}`, async () => {
  const clock = new ManualClock(); const net = new FakeNetwork(clock); const peers: Peer[] = []
  let s = seed * 10
  const start = async (startup: any): Promise<Peer> => {
    const p = await startPeer<string, Log, number, Record<never, never>>({ cluster: 'm', spec, startup, propagation: { intervalMs: 1000 }, failureDetection: { heartbeatIntervalMs: 1000, suspectAfterMs: 3000, stuckAfterMs: 5000 } }, { network: async key => await net.node(key), clock, random: seededRandom(s++) })
    peers.push(p); return p
  }
  const a = await start({ mode: 'new' })
  for (let i = 0; i < 4; i++) await start({ mode: 'join', peers: a.multiaddrs() })
  await advanceUntil(clock, () => peers.every(p => p.readState().participants.length === 5 && p.readState().outstanding === 0), '5', 60_000, 250)
  const sorted = [...peers].sort((p, q) => p.self < q.self ? -1 : 1)
  const name = (id: string): string => 'ABCDE'[sorted.findIndex(p => p.self === id)] ?? '?'
  const resolved: Array<{ event: string, output: number }> = []
  const kinds = new Map<string, number>(); let n = 0
  const load = clock.every(500, () => {
    for (const [i, p] of peers.entries()) {
      const event = `e${n++}-${i}`
      p.applyConsistent(event, { timeoutMs: 20_000 }).then(output => { resolved.push({ event, output }) }, (err: Error) => { kinds.set(err.name, (kinds.get(err.name) ?? 0) + 1) })
    }
  })
  const [A, B, C, D, E] = sorted as [Peer, Peer, Peer, Peer, Peer]
  if (CASE === 'star2') { net.cutLink(C.self, A.self); net.cutLink(C.self, E.self) }
  else if (CASE === 'star2-small') { net.cutLink(A.self, B.self); net.cutLink(A.self, C.self) }
  else if (CASE === 'chain') { net.cutLink(A.self, B.self); net.cutLink(C.self, D.self) }
  else if (CASE === 'star3') { net.cutLink(E.self, A.self); net.cutLink(E.self, B.self); net.cutLink(E.self, C.self) }
  await advanceUntil(clock, () => false, 'cut', CUT_MS, 250).catch(() => {})
  const during = peers.map(p => `${name(p.self)}:${p.readState().projectedParticipants.map(name).join('')}/${p.stats().counters.timesEjected}`).join(' ')
  net.heal()
  await advanceUntil(clock, () => false, 'healed', 5000, 250).catch(() => {})
  load.cancel()
  const names = JSON.stringify(peers.map(p => p.self).sort())
  try {
    await advanceUntil(clock, () => peers.every(p => JSON.stringify(p.readState().projectedParticipants) === names && p.readState().outstanding === 0) && peers.every(p => JSON.stringify(p.readState().infimum.log) === JSON.stringify(peers[0]!.readState().infimum.log)), 'converged', 120_000, 250)
  } catch (err) {
    console.log(during, peers.map(p => ({ p: name(p.self), parts: p.readState().projectedParticipants.map(name).join(''), out: p.readState().outstanding, inf: p.readState().infimum.log.length, stuck: p.stats().stuck.length, susp: p.stats().suspected.map(name).join(''), ejected: p.stats().counters.timesEjected })))
    throw err
  }
  const log = peers[0]!.readState().infimum.log
  assert.equal(new Set(log).size, log.length)
  for (const r of resolved) assert.equal(log[r.output], r.event)
  console.log(`${CASE} seed ${seed}: during cut ${during}; resolved ${resolved.length} ${JSON.stringify([...kinds])} log ${log.length} ejections ${sorted.map(p => p.stats().counters.timesEjected)}`)
  for (const p of peers) await p.stop({ leave: false }).catch(() => {})
})
