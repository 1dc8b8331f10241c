/**
 * The `outputs` protocol (one-way): consistent outputs of events the receiver created, sent by
 * a peer that folded them, so that the creator's `applyConsistent` resolves as soon as anyone
 * knows the outcome.
 *
 * Outputs (kind 20): `list<group>`, `group` = `str id`, `list<output>`, `output` = `varuint
 * counter` (>= 1), `str participant`, `u8 outcome`, then for 0 `bytes value` (the output in
 * the group's output codec; a returned failure's output likewise) and for 1 `str thrown` (the
 * event's `apply` threw: what was thrown, described, as the fold carries it).
 *
 * @module
 */
import type { DecodeLimits } from '../../codec/codec.js'
import { DecodeError } from '../../codec/errors.js'
import type { EventId } from '../../eventfold/types.js'
import { PeerMessageKind, decodeMessage, encodeMessage, readGroupId, readList, readPeerId, writeList } from './message.js'

/** Protocol name. */
export const OUTPUTS_PROTOCOL = 'outputs'

/** Longest description of a throw accepted (the fold writes at most 1024 UTF-16 units). */
const MAX_THROWN_BYTES = 4096

/** One consistent outcome, its output still encoded. */
export type EncodedOutput =
  | {
    /** The event. */
    readonly id: EventId
    /** Its output, in the group's output codec. */
    readonly value: Uint8Array
  }
  | {
    /** The event. */
    readonly id: EventId
    /** It folded as a failure whose `apply` threw: what was thrown, described. */
    readonly thrown: string
  }

/** The outputs of one group. */
export interface GroupOutputs {
  /** The group. */
  readonly group: string
  /** Its outputs. */
  readonly outputs: readonly EncodedOutput[]
}

/** Encodes outputs. */
export function encodeOutputs (groups: readonly GroupOutputs[]): Uint8Array {
  return encodeMessage(PeerMessageKind.outputs, w => {
    writeList(w, groups, (w, g) => {
      w.writeString(g.group)
      writeList(w, g.outputs, (w, o) => {
        w.writeVarUint(o.id.counter)
        w.writeString(o.id.participant)
        if ('thrown' in o) { w.writeUint8(1); w.writeString(o.thrown) } else { w.writeUint8(0); w.writeBytes(o.value) }
      })
    })
  })
}

/** Decodes outputs. Throws only `DecodeError`. */
export function decodeOutputs (bytes: Uint8Array, limits: DecodeLimits): GroupOutputs[] {
  return decodeMessage(bytes, limits, PeerMessageKind.outputs, r => readList(r, limits, 2, 'groups', r => ({
    group: readGroupId(r),
    outputs: readList(r, limits, 3, 'outputs', (r): EncodedOutput => {
      const counter = r.readVarUint()
      if (counter < 1) throw new DecodeError('invalid', 'an output must name a real event (counter >= 1)')
      const id = { counter, participant: readPeerId(r) }
      const outcome = r.readUint8()
      if (outcome === 0) return { id, value: r.readBytes(limits.maxBytes) }
      if (outcome === 1) return { id, thrown: r.readString(MAX_THROWN_BYTES) }
      throw new DecodeError('invalid', `unknown output outcome ${outcome}`)
    })
  })))
}
