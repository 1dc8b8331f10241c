/**
 * The `outputs` protocol (one-way): consistent outputs of events the receiver created, sent by
 * a peer that folded them, so that the creator's `applyConsistent` resolves as soon as anyone
 * knows the outcome.
 *
 * Outputs (kind 20): `list<group>`, `group` = `str id`, `list<output>`, `output` = `varuint
 * counter` (>= 1), `str participant`, `bytes value` (the output in the group's output codec,
 * a failure's output likewise).
 *
 * @module
 */
import type { DecodeLimits } from '../../codec/codec.js'
import { DecodeError } from '../../codec/errors.js'
import type { EventId } from '../../eventfold/types.js'
import { PeerMessageKind, decodeMessage, encodeMessage, readGroupId, readList, readPeerId, writeList } from './message.js'

/** Protocol name. */
export const OUTPUTS_PROTOCOL = 'outputs'

/** One consistent output, still encoded. */
export interface EncodedOutput {
  /** The event. */
  readonly id: EventId
  /** Its encoded outcome. */
  readonly value: Uint8Array
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
      writeList(w, g.outputs, (w, o) => { w.writeVarUint(o.id.counter); w.writeString(o.id.participant); w.writeBytes(o.value) })
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
      const participant = readPeerId(r)
      return { id: { counter, participant }, value: r.readBytes(limits.maxBytes) }
    })
  })))
}
