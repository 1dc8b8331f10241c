/**
 * An example service (docs/SERVICES.md walks through it): chat rooms, each replicated among
 * its own members only.
 *
 * - A **cluster-wide group** `rooms/directory` says which rooms exist and who should be in
 *   each: every peer holds it, so every peer agrees on it.
 * - Each room is a **managed group** `rooms/room:<name>` whose participants are the room's
 *   members that are in the cluster. The member with the smallest id that holds a room's state
 *   (its *owner*) founds it and adds the members it lacks, whenever the directory or the
 *   cluster's membership changes; an ejected member leaves every room by the peer's own rule,
 *   and is added back by the owner once it rejoins.
 *
 * Run `node --import tsx demo/rooms.ts` for a three-peer session on loopback.
 *
 * @module
 */
import { defineService, startLegion, type Group, type EventSpec, type Participant, type WaitOptions } from '../src/index.js'

/** The directory: room name to the members it should have. */
export interface Directory { readonly rooms: Readonly<Record<string, readonly Participant[]>> }
/** A line said in a room. */
export interface Line { readonly from: Participant, readonly text: string }

const directorySpec: EventSpec<{ room: string, members: Participant[] }, Directory, boolean> = {
  init: () => ({ rooms: {} }),
  apply: (e, s) => s.rooms[e.room] !== undefined
    ? { ok: false, output: false } // the room exists: creating it again changes nothing
    : { ok: true, output: true, state: { rooms: { ...s.rooms, [e.room]: [...e.members].sort() } } }
}

const roomSpec: EventSpec<Line, Line[], number> = {
  init: () => [],
  apply: (line, transcript) => ({ ok: true, output: transcript.length, state: [...transcript, line] })
}

/** What the service offers. */
export interface Rooms {
  /** Creates `room` with `members` (a consistent event of the directory). */
  create(room: string, members: readonly Participant[]): Promise<void>
  /** Says `text` in `room`; resolves with the line's position once every member has it. */
  say(room: string, text: string, timeoutMs?: number): Promise<number>
  /** Whether this peer holds `room`'s state. */
  held(room: string): boolean
  /** `room`'s settled transcript (throws `GroupNotReadyError` on a peer that is not in it). */
  transcript(room: string): readonly Line[]
  /** `room`'s participants (projected). */
  participants(room: string): readonly Participant[]
  /** Every room, by name. */
  directory(): string[]
}

/** The rooms service; see the module comment. */
export function rooms (): ReturnType<typeof defineRooms> {
  return defineRooms()
}

function defineRooms () {
  return defineService({
    name: 'rooms',
    needs: ['self', 'groups', 'membership', 'log'],
    create: ({ self, groups, membership, log }) => {
      const directory = groups.clusterWide('directory', { spec: directorySpec })
      const open = new Map<string, Group<Line, Line[], number>>()
      const room = (name: string): Group<Line, Line[], number> => {
        let g = open.get(name)
        if (g === undefined) { g = groups.managed(`room:${name}`, { spec: roomSpec }); open.set(name, g) }
        return g
      }
      /** Founds and fills the rooms this peer owns: see the module comment. */
      const reconcile = (): void => {
        if (!membership.isMember() || !directory.held()) return
        const members = new Set(membership.members())
        for (const [name, wanted] of Object.entries(directory.readState().infimum.rooms)) {
          const g = room(name)
          const desired = wanted.filter(p => members.has(p))
          if (!g.held()) {
            // The first desired member founds the room, once, when it is created.
            if (desired[0] === self && !everHeld.has(name)) groups.found(`room:${name}`)
            if (!g.held()) continue
          }
          everHeld.add(name)
          const inRoom = new Set(g.readState().projectedParticipants)
          if (desired.filter(p => inRoom.has(p))[0] !== self) continue // not the owner
          for (const p of desired) {
            if (!inRoom.has(p)) void g.participate(p).catch(err => { log('adding %s to %s failed: %s', p, name, err) })
          }
        }
      }
      const everHeld = new Set<string>()
      const unsubscribes: Array<() => void> = []
      return {
        start () {
          unsubscribes.push(directory.subscribe(reconcile), membership.subscribe(reconcile))
          reconcile()
        },
        stop () {
          for (const u of unsubscribes) u()
        },
        async create (name: string, members: readonly Participant[]): Promise<void> {
          await directory.applyConsistent({ room: name, members: [...members] })
        },
        async say (name: string, text: string, timeoutMs = 10_000): Promise<number> {
          const options: WaitOptions = { timeoutMs }
          await room(name).whenHeld(options)
          return await room(name).applyConsistent({ from: self, text }, options)
        },
        held: (name: string) => room(name).held(),
        transcript: (name: string) => room(name).readState().infimum,
        participants: (name: string) => room(name).readState().projectedParticipants,
        directory: () => directory.held() ? Object.keys(directory.readState().infimum.rooms).sort() : []
      } satisfies Rooms & { start(): void, stop(): void }
    }
  })
}

// A three-peer session, when run directly.
if (import.meta.url === `file://${process.argv[1]}`) {
  const base = { cluster: 'rooms-demo', spec: { init: () => 0, apply: (_: null, s: number) => ({ ok: true as const, output: s, state: s }) }, services: { rooms: rooms() } }
  const a = await startLegion({ ...base, startup: { mode: 'new' } })
  const b = await startLegion({ ...base, startup: { mode: 'join', peers: a.multiaddrs() } })
  const c = await startLegion({ ...base, startup: { mode: 'join', peers: a.multiaddrs() } })
  await a.services.rooms.create('ab', [a.self, b.self])
  await b.services.rooms.say('ab', 'hello from b')
  await a.services.rooms.say('ab', 'hello from a')
  console.log('ab, as a sees it:', a.services.rooms.transcript('ab').map(l => l.text))
  console.log('c holds ab?', c.services.rooms.held('ab'), '- the directory on c:', c.services.rooms.directory())
  await Promise.all([a, b, c].map(async p => { await p.stop() }))
}
