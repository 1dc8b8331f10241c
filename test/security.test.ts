/**
 * Who may take part in a cluster: the cluster secret (a libp2p private network) and the
 * allow-list of peer ids, seen from the runtime. Real peers over TCP on 127.0.0.1.
 * (The transport-level behaviour is in transport.test.ts, hostile frames in fuzz.test.ts.)
 */
import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startLegion } from '../src/runtime/runtime.js'
import type { Legion, LegionOptions } from '../src/runtime/options.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { stopAll } from './support/cluster.js'

const countSpec: EventSpec<number, number, number> = {
  init: () => 0,
  apply: (e, s) => ({ ok: true, output: s + e, state: s + e })
}
const base: Omit<LegionOptions<number, number, number>, 'startup'> = { cluster: 'security-test', spec: countSpec, joinTimeoutMs: 1_500 }
type Peer = Legion<number, number, number>

const everyone: Peer[] = []
after(async () => { await stopAll(everyone) })
async function start (options: Partial<LegionOptions<number, number, number>> & Pick<LegionOptions<number, number, number>, 'startup'>): Promise<Peer> {
  const peer = await startLegion({ ...base, ...options })
  everyone.push(peer)
  return peer
}

/** Resolves once `predicate` holds, checking every few milliseconds; counters have no event. */
async function eventually (predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

const secret = (): Uint8Array => crypto.getRandomValues(new Uint8Array(32))

describe('cluster secret', () => {
  test('a peer with the secret joins; one without it, or with another, fails with JoinError and is counted', async () => {
    const key = secret()
    const a = await start({ clusterSecret: key, startup: { mode: 'new' } })
    const b = await start({ clusterSecret: key, startup: { mode: 'join', peers: a.multiaddrs() } })
    assert.equal(await b.applyConsistent(5, { timeoutMs: 5_000 }), 5)
    assert.deepEqual(a.readState().participants, [a.self, b.self].sort())

    for (const clusterSecret of [undefined, secret()]) {
      await assert.rejects(startLegion({ ...base, ...(clusterSecret !== undefined ? { clusterSecret } : {}), startup: { mode: 'join', peers: a.multiaddrs() } }), (err: Error) => {
        assert.equal(err.name, 'JoinError')
        assert.match(err.message, /PeerUnreachableError/)
        return true
      })
    }
    // the member counts each refused connection once it has closed (at the latest when
    // libp2p's inbound upgrade timeout of 10 s ends it)
    await eventually(() => a.stats().counters.refusedConnections >= 2, 12_000, 'a counts both strangers')
    assert.deepEqual(a.readState().projectedParticipants, [a.self, b.self].sort())
    assert.equal(await a.applyConsistent(1, { timeoutMs: 5_000 }), 6)
    await stopAll([a, b])
  })
})

describe('allow-list', () => {
  test('a listed peer joins; an unlisted one fails with JoinError and is counted', async () => {
    const [ka, kb, kc] = await Promise.all([generateKeyPair('Ed25519'), generateKeyPair('Ed25519'), generateKeyPair('Ed25519')])
    const members = new Set([ka, kb].map(k => peerIdFromPrivateKey(k).toString()))
    const allowPeers = (peer: string): boolean => members.has(peer)
    const a = await start({ privateKey: ka, allowPeers, startup: { mode: 'new' } })
    const b = await start({ privateKey: kb, allowPeers, startup: { mode: 'join', peers: a.multiaddrs() } })
    assert.equal(await b.applyConsistent(2, { timeoutMs: 5_000 }), 2)

    await assert.rejects(startLegion({ ...base, privateKey: kc, startup: { mode: 'join', peers: a.multiaddrs() } }), { name: 'JoinError' })
    await eventually(() => a.stats().counters.refusedConnections >= 1, 5_000, 'a counts the refusal')
    assert.deepEqual(a.readState().projectedParticipants, [a.self, b.self].sort())

    // A list works the same way, and the application may grow the set a predicate reads.
    members.add(peerIdFromPrivateKey(kc).toString())
    const c = await start({ privateKey: kc, allowPeers: [...members], startup: { mode: 'join', peers: a.multiaddrs() } })
    assert.equal(await c.applyConsistent(3, { timeoutMs: 10_000 }), 5)
    await stopAll([a, b, c])
  })
})
