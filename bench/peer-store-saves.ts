/**
 * What the peer's saves cost per event, without the network: the key-value peer store
 * (`src/peer/kv-peer-store.ts`) saving the folds of 64 groups of three participants, as a
 * keyspace replica does under write load. Participant `a` creates events with a 100-byte value
 * in groups taken in turn; `b` and `c` merge and acknowledge each at once. Every 24 events `a`
 * saves the groups that changed, then merges the acknowledgements of `b` and `c` (a round trip
 * later, as on the wire) and saves again: each event is written as outstanding, then folded
 * (written as settled, its outstanding record deleted), and its creator's log twice.
 * Part of `bench/storage.ts`; the state is a count, so checkpoints stay small.
 */
import { jsonCodec } from '../src/codec/json.js'
import { EventFold, type EventSpec, type MergeResult } from '../src/eventfold/index.js'
import { keyValuePeerStore } from '../src/peer/kv-peer-store.js'
import type { SomeReplica } from '../src/peer/lifecycle.js'
import type { KeyValueStore } from '../src/storage/key-value.js'

const GROUPS = 64
const EVENTS = 60_000
const SAVE_EVERY = 24

interface Event { readonly key: string, readonly value: string }
const spec: EventSpec<Event, number, string> = {
  init: () => 0,
  apply: (e, count) => ({ ok: true, output: e.key, state: count + 1 })
}
const codecs = { event: jsonCodec, state: jsonCodec, output: jsonCodec }
/** Names as long as libp2p peer ids. */
const name = (letter: string): string => `12D3KooW${letter.repeat(44)}`

function ok<O> (r: MergeResult<O>): void {
  if (!r.ok) throw r.error
}

function sync (from: EventFold<Event, number, string>, to: EventFold<Event, number, string>): void {
  const diff = from.diffFor(to.self)
  if (diff === undefined) return
  const r = to.mergeDiff(diff)
  if (!r.ok) ok(to.mergeFull(from.snapshot()))
}

interface Group { a: EventFold<Event, number, string>, b: EventFold<Event, number, string>, c: EventFold<Event, number, string>, replica: SomeReplica }

function groups (): Group[] {
  const out: Group[] = []
  for (let g = 0; g < GROUPS; g++) {
    const a = EventFold.create(`bench\u0000p${g}`, name('a'), spec)
    a.participate(name('b'))
    a.participate(name('c'))
    const b = EventFold.fromSnapshot(a.snapshot(), name('b'), spec)
    const c = EventFold.fromSnapshot(a.snapshot(), name('c'), spec)
    b.acknowledge()
    c.acknowledge()
    for (let i = 0; i < 3; i++) for (const [x, y] of [[b, a], [c, a], [a, b], [a, c], [b, c], [c, b]] as const) sync(x, y)
    // The store reads only these three of a replica.
    out.push({ a, b, c, replica: { id: `p${g}`, fold: a, definition: { codecs } } as unknown as SomeReplica })
  }
  return out
}

/** Microseconds of wall time and of CPU (every thread, kernel included) the saves took per event. */
export async function peerStoreSaves (store: KeyValueStore): Promise<{ wallUs: number, cpuUs: number }> {
  const peerStore = keyValuePeerStore(store)
  const identity = { cluster: 'bench', privateKey: new Uint8Array(68) }
  const all = groups()
  const dirty = new Set<Group>()
  const value = 'x'.repeat(100)
  let wallMs = 0
  let cpuUs = 0
  const save = async (): Promise<void> => {
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    await peerStore.save(identity, [...dirty].map(g => g.replica), [])
    const cpu = process.cpuUsage(cpu0)
    cpuUs += cpu.user + cpu.system
    wallMs += performance.now() - t0
  }
  for (let i = 0; i < EVENTS; i++) {
    const g = all[(i * 7919) % GROUPS]!
    g.a.event({ key: `k${i}`, value })
    sync(g.a, g.b)
    sync(g.a, g.c)
    g.b.acknowledge()
    g.c.acknowledge()
    dirty.add(g)
    if (i % SAVE_EVERY !== SAVE_EVERY - 1) continue
    await save()
    for (const d of dirty) { sync(d.b, d.a); sync(d.c, d.a) }
    await save()
    dirty.clear()
  }
  return { wallUs: 1000 * wallMs / EVENTS, cpuUs: cpuUs / EVENTS }
}
