/**
 * How the ownership table travels and persists: its state in a compact binary form (every
 * peer id written once, in `members`, and referred to by index), its events and outputs with
 * the JSON codec (they are small and rare). Decoding checks every index and count, so a
 * malformed table is a `DecodeError`, never a table that names peers it does not list.
 *
 * Layout of the state (format 2): `varuint 0` (format 1 began with the partition count, never
 * 0), `varuint 2`, `varuint partitions`, `varuint replication`, `varuint version`, `varuint n`
 * then n member ids (strings, sorted), `varuint d` then d indices (draining), then per
 * partition: `varuint generation`, four lists (owners, incoming, outgoing, abandoned) each as
 * `varuint count` then indices, `varuint founder + 1` (0: none), `varuint dataSince`, and the
 * last owner as `varuint generation + 1` (0: none) followed, if any, by its id as a string
 * (it need not be a member). Format 1, the same without the first two and last two fields,
 * still decodes (no last owner; `dataSince` is the generation).
 *
 * @module
 */
import type { Codec, DecodeLimits } from '../codec/codec.js'
import type { Reader, Writer } from '../codec/buffer.js'
import { DecodeError } from '../codec/errors.js'
import { jsonCodec } from '../codec/json.js'
import type { FoldCodecs } from '../codec/eventfold.js'
import type { Participant } from '../eventfold/types.js'
import { MAX_KEYSPACE_PARTITIONS, MAX_REPLICATION, type KeyspaceTable, type PartitionAssignment, type TableEvent, type TableOutput } from './table.js'

/** Longest peer id accepted in a table. */
const MAX_PEER_ID_BYTES = 256
/** The format written. */
const TABLE_FORMAT = 2

/** The table's state codec. */
export const tableStateCodec: Codec<KeyspaceTable> = Object.freeze({
  encode: (t: KeyspaceTable, w: Writer) => {
    const index = new Map(t.members.map((m, i) => [m, i]))
    const at = (p: Participant): number => {
      const i = index.get(p)
      if (i === undefined) throw new TypeError(`the table names ${p}, which is not a member`)
      return i
    }
    const list = (l: readonly Participant[]): void => { w.writeVarUint(l.length); for (const p of l) w.writeVarUint(at(p)) }
    w.writeVarUint(0)
    w.writeVarUint(TABLE_FORMAT)
    w.writeVarUint(t.partitions)
    w.writeVarUint(t.replication)
    w.writeVarUint(t.version)
    w.writeVarUint(t.members.length)
    for (const m of t.members) w.writeString(m)
    list(t.draining)
    for (const a of t.assignments) {
      w.writeVarUint(a.generation)
      list(a.owners)
      list(a.incoming)
      list(a.outgoing)
      list(a.abandoned)
      w.writeVarUint(a.founder === null ? 0 : at(a.founder) + 1)
      w.writeVarUint(a.dataSince)
      w.writeVarUint(a.lastOwner === null ? 0 : a.lastOwner.generation + 1)
      if (a.lastOwner !== null) w.writeString(a.lastOwner.peer)
    }
  },
  decode: (r: Reader, limits: DecodeLimits): KeyspaceTable => {
    let partitions = r.readVarUint()
    const format = partitions === 0 ? r.readVarUint() : 1
    if (format !== 1 && format !== TABLE_FORMAT) throw new DecodeError('invalid', `a keyspace table of format ${format}, which this version does not know`)
    if (format !== 1) partitions = r.readVarUint()
    const replication = r.readVarUint()
    if (partitions < 1 || partitions > MAX_KEYSPACE_PARTITIONS || replication < 1 || replication > MAX_REPLICATION) throw new DecodeError('invalid', 'a keyspace table of an impossible shape')
    const version = r.readVarUint()
    const n = r.readCount(limits.maxItems, 1, 'members')
    const members: Participant[] = []
    for (let i = 0; i < n; i++) members.push(r.readString(MAX_PEER_ID_BYTES))
    for (let i = 1; i < n; i++) if (!(members[i - 1]! < members[i]!)) throw new DecodeError('invalid', 'table members must be sorted and distinct')
    const list = (): Participant[] => {
      const count = r.readCount(n, 1, 'peers')
      const out: Participant[] = []
      for (let i = 0; i < count; i++) {
        const at = r.readVarUint()
        if (at >= n) throw new DecodeError('invalid', 'a table list names a peer that is not a member')
        out.push(members[at]!)
      }
      return out
    }
    const draining = list()
    const assignments: PartitionAssignment[] = []
    for (let p = 0; p < partitions; p++) {
      const generation = r.readVarUint()
      const owners = list()
      const incoming = list()
      const outgoing = list()
      const abandoned = list()
      const f = r.readVarUint()
      if (f > n) throw new DecodeError('invalid', 'a table founder that is not a member')
      const founder = f === 0 ? null : members[f - 1]!
      if (format === 1) { assignments.push({ generation, owners, incoming, outgoing, abandoned, founder, lastOwner: null, dataSince: generation }); continue }
      const dataSince = r.readVarUint()
      const last = r.readVarUint()
      if (dataSince > generation || last > generation + 1) throw new DecodeError('invalid', 'a table partition that continues, or waits for, a later generation')
      const lastOwner = last === 0 ? null : { peer: r.readString(MAX_PEER_ID_BYTES), generation: last - 1 }
      assignments.push({ generation, owners, incoming, outgoing, abandoned, founder, lastOwner, dataSince })
    }
    return { partitions, replication, version, members, draining, assignments }
  }
})

/** The codecs of the table's group. */
export const tableCodecs: FoldCodecs<TableEvent, KeyspaceTable, TableOutput> = Object.freeze({
  event: jsonCodec as unknown as Codec<TableEvent>,
  state: tableStateCodec,
  output: jsonCodec as unknown as Codec<TableOutput>
})
