/**
 * A trace of one partition for the keyspace link-cuts exploration (`LEGION_KEYSPACE_CUT_TRACE`,
 * test/explore/keyspace-cuts.test.ts): what each peer's table says of it, which replicas and
 * former copies of its groups each peer holds (infimum, participants, outstanding events),
 * each peer's membership phase, the partition's events, and when a traced key's write was
 * acknowledged. Printed as lines on the simulated clock, each only when it changed, so a
 * failing seed shows how its partition went.
 *
 * It reads the peers' internals (their lifecycle and replicas), which no public API shows: a
 * debugging aid, not a contract. Folds themselves are not logged event by event (that takes a
 * hook in `src/eventfold/folding.ts`, done in a throwaway copy when needed); sampled every
 * 250 ms, the infimum and outstanding ids show most of it.
 *
 * @module
 */
import type { ManualClock } from './fake-network.js'
import type { EventId } from '../../src/eventfold/types.js'
import type { KeyspaceTable } from '../../src/keyspace/table.js'

/** What the trace needs of a peer: the peer itself (its internals are read) and its keyspace's table. */
export interface TracedPeer {
  readonly peer: { readonly self: string }
  readonly table: () => KeyspaceTable | undefined
}

/** The parts of a fold the trace prints. */
interface FoldView {
  infimumId: () => EventId
  infimumParticipants: () => string[]
  outstandingEvents: () => Array<{ readonly id: EventId }>
}

/** A peer's internals as far as the trace reads them. */
interface Internals {
  readonly lifecycle: {
    readonly phase?: { readonly kind: string }
    readonly incarnation?: {
      readonly groups: Map<string, { readonly fold?: FoldView }>
      readonly former: Map<string, FoldView>
    }
  }
}

const short = (id: string): string => id.slice(-6)
const eventId = (id: EventId): string => `${id.counter}.${short(id.participant)}`

function describe (name: string, f: FoldView): string {
  const outstanding = f.outstandingEvents().map(e => eventId(e.id))
  return `${name.split('/').pop() ?? name}@${eventId(f.infimumId())}{${f.infimumParticipants().map(short).join(',')}}+${outstanding.length}<${outstanding.join(',')}>`
}

/**
 * Starts tracing `partition` on `peers` (read each time, so peers added later are traced too)
 * every 250 simulated ms; `acknowledged(key)` says whether a traced key's write was
 * acknowledged. Returns what `onPartitionEvent` should be given, and a stop function.
 */
export function traceKeyspacePartition (clock: ManualClock, peers: () => readonly TracedPeer[], partition: number, key?: { readonly name: string, readonly acknowledged: () => boolean }): { readonly event: (peer: string, e: { readonly partition: number }) => void, readonly stop: () => void } {
  const at = (): string => (clock.now() / 1000).toFixed(2)
  const print = (line: string): void => { console.log(`TRACE ${at()} ${line}`) }
  let last = ''
  let acknowledged = false
  const prefix = `p:${partition}.`
  const timer = clock.every(250, () => {
    const lines: string[] = []
    for (const p of peers()) {
      const self = p.peer.self
      const a = p.table()?.assignments[partition]
      const table = a === undefined
        ? 'no table'
        : `g${a.generation} owners=${a.owners.map(short).join(',')} incoming=${a.incoming.map(short).join(',')} outgoing=${a.outgoing.map(short).join(',')} abandoned=${a.abandoned.map(short).join(',')} last=${a.lastOwner === null ? '-' : `${short(a.lastOwner.peer)}@${a.lastOwner.generation}`}`
      const { lifecycle } = p.peer as unknown as Internals
      const inc = lifecycle.incarnation
      const held = inc === undefined ? [] : [...inc.groups].filter(([id, r]) => id.includes(prefix) && r.fold !== undefined).map(([id, r]) => describe(id, r.fold!))
      const former = inc === undefined ? [] : [...inc.former].filter(([id]) => id.includes(prefix)).map(([id, f]) => describe(id, f))
      lines.push(`  ${short(self)} (${lifecycle.phase?.kind ?? '?'}) v${p.table()?.version ?? '-'} ${table} | held [${held.join(' ')}] former [${former.join(' ')}]`)
    }
    const now = lines.join('\n')
    if (now !== last) { print(`partition ${partition}\n${now}`); last = now }
    if (key !== undefined && !acknowledged && key.acknowledged()) { acknowledged = true; print(`write ${key.name} acknowledged`) }
  })
  return {
    event: (peer, e) => { if (e.partition === partition) print(`${short(peer)} partition event ${JSON.stringify(e).replace(/12D3KooW\w+?(\w{6})"/g, '$1"')}`) },
    stop: () => { timer.cancel() }
  }
}
