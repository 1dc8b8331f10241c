/**
 * The save-before-send gate (src/peer/persistence.ts) with the real flush, on stubs: a wait
 * for a save ends once the version is saved, and ends as "not saved" when the replica is
 * replaced before its save (its group forgotten, the peer rejoined) or the peer stops. A push
 * merged into a replica replaced meanwhile is answered, as refused, instead of never.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_DECODE_LIMITS } from '../src/codec/codec.js'
import { Writer } from '../src/codec/buffer.js'
import { MessageKind, writeHeader } from '../src/codec/eventfold.js'
import { Flusher } from '../src/peer/flush.js'
import type { Inbound } from '../src/peer/inbound.js'
import type { Intake } from '../src/peer/intake.js'
import { Lifecycle, type SomeReplica } from '../src/peer/lifecycle.js'
import type { Network } from '../src/peer/network.js'
import type { LegionCounters } from '../src/peer/options.js'
import type { OutputForwarding } from '../src/peer/outputs.js'
import { PersistenceGate, type PeerStore } from '../src/peer/persistence.js'
import type { Propagation } from '../src/peer/propagation.js'
import { decodePushAnswer } from '../src/peer/protocol/push.js'
import { Push } from '../src/peer/push.js'
import { within } from './support/deadline.js'

const log = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) as never

/** A replica as the gate and the flush see it: an id, a fold, versions. */
function replica (id: string, fold: object | undefined = {}): SomeReplica {
  return { id, fold, version: 1, savedVersion: 0, notifiedVersion: 0, clearNews: () => {}, isParticipant: () => true } as unknown as SomeReplica
}

/** A store whose saves finish only when the test says so. */
function heldStore (): { store: PeerStore, saves: string[][], finish: () => void, saving: () => Promise<void> } {
  const saves: string[][] = []
  let pending: Array<() => void> = []
  let started: (() => void) | undefined
  const store: PeerStore = {
    load: async () => undefined,
    save: async (_identity, replicas) => {
      saves.push(replicas.map(r => r.id))
      started?.()
      await new Promise<void>(resolve => { pending.push(resolve) })
    },
    close: async () => {}
  }
  return {
    store,
    saves,
    finish: () => { const p = pending; pending = []; for (const f of p) f() },
    saving: async () => { await new Promise<void>(resolve => { started = resolve }) }
  }
}

/** A member peer's gate and flush over `store`, holding groups `g` and `h`. */
function peer (store: PeerStore): { gate: PersistenceGate, lifecycle: Lifecycle, g: SomeReplica, h: SomeReplica } {
  const lifecycle = new Lifecycle()
  const incarnation = lifecycle.newIncarnation()
  const g = replica('g')
  const h = replica('h')
  incarnation.groups.set('g', g)
  incarnation.groups.set('h', h)
  lifecycle.becomeMember(incarnation)
  let flusher: Flusher | undefined
  const gate = new PersistenceGate({
    store,
    identity: () => ({ cluster: 'c', privateKey: new Uint8Array() }),
    schedule: (r) => { flusher!.schedule(r) },
    log,
    failed: () => {}
  })
  flusher = new Flusher({
    clock: { defer: (f: () => void) => { setImmediate(f) } } as never,
    lifecycle,
    persistence: gate,
    propagation: { prepare: () => undefined, send: () => {} } as unknown as Propagation,
    outputs: { take: () => [], send: () => {} } as unknown as OutputForwarding,
    notify: () => {},
    inspect: () => {},
    failed: () => {},
    log
  })
  return { gate, lifecycle, g, h }
}

test('a wait for a save ends saved once the store saved the version, and unsaved when the replica is replaced first', async () => {
  const s = heldStore()
  const p = peer(s.store)
  const kept = p.gate.persisted(p.g)
  const replaced = p.gate.persisted(p.h)
  // Replaced before the flush runs (the peer forgot group h): the flush never saves it.
  p.lifecycle.incarnation!.groups.set('h', replica('h'))
  assert.equal(await within(replaced, 5000, 'the wait on the replaced replica'), false)
  assert.deepEqual(s.saves, [['g']], 'only the current replica is saved')
  s.finish()
  assert.equal(await within(kept, 5000, 'the wait on the kept replica'), true)
  assert.equal(p.g.savedVersion, 1)
  assert.equal(await p.gate.persisted(p.g), true, 'a saved version answers at once')
})

test('a save that fails is counted, marks nothing saved, and the next save forgets the groups the failed one was to forget', async () => {
  const calls: Array<{ replicas: string[], dropped: string[] }> = []
  let failNext = true
  const store: PeerStore = {
    load: async () => undefined,
    save: async (_identity, replicas, dropped) => {
      calls.push({ replicas: replicas.map(r => r.id), dropped: [...dropped] })
      if (failNext) { failNext = false; throw new Error('disk full') }
    },
    close: async () => {}
  }
  let failures = 0
  const gate = new PersistenceGate({ store, identity: () => ({ cluster: 'c', privateKey: new Uint8Array() }), schedule: () => {}, log, failed: () => { failures++ } })
  const g = replica('g')
  gate.drop('left')
  await assert.rejects(gate.save([g]), /disk full/)
  assert.equal(failures, 1)
  assert.equal(g.savedVersion, 0, 'nothing of a failed save counts as saved')
  assert.ok(gate.owesDrop(), 'the drop is still owed')
  await gate.save([g])
  assert.deepEqual(calls, [{ replicas: ['g'], dropped: ['left'] }, { replicas: ['g'], dropped: ['left'] }])
  assert.equal(g.savedVersion, 1)
  assert.ok(!gate.owesDrop())
})

test('a flush that throws is counted, and the next change of its groups is flushed', async () => {
  const lifecycle = new Lifecycle()
  const incarnation = lifecycle.newIncarnation()
  const g = replica('g')
  incarnation.groups.set('g', g)
  lifecycle.becomeMember(incarnation)
  const saves: string[][] = []
  const store: PeerStore = { load: async () => undefined, save: async (_identity, replicas) => { saves.push(replicas.map(r => r.id)) }, close: async () => {} }
  let flusher: Flusher | undefined
  const gate = new PersistenceGate({ store, identity: () => ({ cluster: 'c', privateKey: new Uint8Array() }), schedule: (r) => { flusher!.schedule(r) }, log, failed: () => {} })
  let throwNext = true
  let failures = 0
  flusher = new Flusher({
    clock: { defer: (f: () => void) => { setImmediate(f) } } as never,
    lifecycle,
    persistence: gate,
    propagation: { prepare: () => { if (throwNext) { throwNext = false; throw new Error('a batch that does not encode') } }, send: () => {} } as unknown as Propagation,
    outputs: { take: () => [], send: () => {} } as unknown as OutputForwarding,
    notify: () => {},
    inspect: () => {},
    failed: () => { failures++ },
    log
  })
  flusher.schedule(g)
  await flusher.flushNow()
  assert.equal(failures, 1)
  assert.deepEqual(saves, [], 'nothing of the failed flush was saved or sent')
  flusher.schedule(g)
  await flusher.flushNow()
  assert.equal(failures, 1)
  assert.deepEqual(saves, [['g']])
})

test('a peer that stops ends the waits still unsaved, and later ones at once, as unsaved', async () => {
  const s = heldStore()
  const p = peer(s.store)
  // Nothing to save yet (it waits for its state): the wait stays open until the stop.
  const open = p.gate.persisted(replica('w', undefined))
  p.gate.releaseAll()
  assert.equal(await within(open, 5000, 'the open wait'), false)
  assert.equal(await within(p.gate.persisted(p.h), 5000, 'a wait after the stop'), false)
})

test('a push merged into a replica that is replaced while it waits for its save is answered, as refused for that group', async () => {
  const s = heldStore()
  const p = peer(s.store)
  let serve: ((from: string, entries: Array<{ group: string, payload: Uint8Array }>) => Promise<Uint8Array>) | undefined
  const push = new Push({
    network: {} as Network,
    inbound: { request: async (_name: string, _fence: string, _decode: unknown, handler: typeof serve) => { serve = handler } } as unknown as Inbound,
    lifecycle: p.lifecycle,
    intake: {
      full: (r: SomeReplica) => { r.version++; return { kind: 'merged', acknowledged: true } }
    } as unknown as Intake,
    persistence: p.gate,
    allows: () => true,
    counters: {} as LegionCounters,
    limits: DEFAULT_DECODE_LIMITS,
    log,
    now: () => 0
  })
  await push.start()
  const w = new Writer()
  writeHeader(w, MessageKind.diff)
  const diff = w.finish()
  const answer = serve!('b', [{ group: 'g', payload: diff }, { group: 'h', payload: diff }])
  // Both merged and wait for their save; before the flush runs, the peer forgets group g.
  p.lifecycle.incarnation!.groups.set('g', replica('g'))
  await within(s.saving(), 5000, 'the save to start')
  assert.deepEqual(s.saves, [['h']])
  s.finish()
  const results = decodePushAnswer(await within(answer, 5000, 'the push answer'), DEFAULT_DECODE_LIMITS)
  assert.deepEqual(results, [
    { group: 'g', merged: false, code: 'not-participant' },
    { group: 'h', merged: true }
  ])
})
