/**
 * A replicated server as an EventFold: the pure `EventSpec` and the binary codecs of the group
 * that holds one replicated server's state among its replicas. Inputs are events, and the
 * spec's `apply` is the server's `step`, so every replica steps every input in the fold's one
 * order and an input's output is *consistent* (the same on every replica) once every replica
 * acknowledged it. No I/O, no clock.
 *
 * Rules:
 * 1. The state starts `uninitialised`; the first primary runs the server's `init` once and
 *    folds its result as an `init` event (a later `init` changes nothing).
 * 2. Every input carries the caller's request id. The state remembers the outputs of the last
 *    `window` requests, so an input retried after a failover (its first copy already folded,
 *    or folding after it) answers with the first copy's output and is stepped once.
 * 3. A `step` that throws is not caught here: the fold records the input as a failure that
 *    threw, on every replica alike, and never applies it (docs/ARCHITECTURE.md, "Hooks that
 *    throw"); the state stays as it was. The primary that submitted it then folds a
 *    `quarantine` record (rule 4), which is how every replica, and a restarted primary, know it.
 * 4. `quarantine` records (at most `maxQuarantined`, the oldest dropped; the total is kept) name
 *    the failed input's event id, its request id, the thrown message and the input's first
 *    bytes. One record per request id.
 *
 * @module
 */
import type { Codec, DecodeLimits } from '../codec/codec.js'
import type { Reader, Writer } from '../codec/buffer.js'
import { DecodeError } from '../codec/errors.js'
import type { FoldCodecs } from '../codec/eventfold.js'
import type { EventId, EventSpec } from '../eventfold/types.js'
import type { ServerSpec } from '../supervision/server.js'

/** The longest request id, in bytes. */
export const MAX_REQUEST_ID_BYTES = 256
/** The longest thrown message kept in a quarantine record, in characters. */
export const MAX_THROWN_CHARS = 1024
/** The most bytes of a quarantined input kept in its record. */
export const MAX_QUARANTINED_INPUT_BYTES = 1024

/** A quarantined input, as every replica records it. */
export interface QuarantineRecord {
  /** The request id of the call or cast that brought it. */
  readonly request: string
  /** The id of the event that carried it (the fold recorded it as a failure). */
  readonly event: EventId
  /** What `step` threw, as a one-line message. */
  readonly thrown: string
  /** The input's first bytes, in the server's input codec. */
  readonly input: Uint8Array
  /** Whether `input` was cut (at 1024 bytes). */
  readonly truncated: boolean
}

/** The replicated state. */
export interface ReplicatedState<S, O> {
  /** The server's state, once `init` folded. */
  readonly server: { readonly kind: 'uninitialised' } | { readonly kind: 'running', readonly state: S }
  /** Inputs stepped so far. */
  readonly steps: number
  /** The outputs of the latest requests, oldest first (rule 2). */
  readonly recent: ReadonlyArray<{ readonly request: string, readonly output: O }>
  /** The latest quarantined inputs, oldest first. */
  readonly quarantined: readonly QuarantineRecord[]
  /** Every input ever quarantined. */
  readonly quarantinedTotal: number
}

/** The group's events. */
export type ReplicatedEvent<I, S> =
  | { readonly t: 'init', readonly state: S }
  | { readonly t: 'input', readonly request: string, readonly input: I }
  | { readonly t: 'quarantine', readonly record: QuarantineRecord }

/** What an event gave. */
export type ReplicatedOutput<O> =
  | { readonly kind: 'output', readonly output: O }
  | { readonly kind: 'done' }
  | { readonly kind: 'uninitialised' }

/** Bounds of a replicated server's bookkeeping; part of the spec, so the same on every replica. */
export interface ReplicatedSettings {
  /** Requests whose outputs are remembered (rule 2). */
  readonly window: number
  /** Quarantine records kept. */
  readonly maxQuarantined: number
}

/** The spec of a replicated server's group, running `server`'s `step`. */
export function replicatedSpec<I, S, O> (server: ServerSpec<I, S, O>, settings: ReplicatedSettings): EventSpec<ReplicatedEvent<I, S>, ReplicatedState<S, O>, ReplicatedOutput<O>> {
  return {
    init: () => ({ server: { kind: 'uninitialised' }, steps: 0, recent: [], quarantined: [], quarantinedTotal: 0 }),
    apply: (event, state) => {
      switch (event.t) {
        case 'init':
          if (state.server.kind === 'running') return { ok: true, output: { kind: 'done' }, state }
          return { ok: true, output: { kind: 'done' }, state: { ...state, server: { kind: 'running', state: event.state } } }
        case 'input': {
          if (state.server.kind !== 'running') return { ok: true, output: { kind: 'uninitialised' }, state }
          const seen = state.recent.find(r => r.request === event.request)
          if (seen !== undefined) return { ok: true, output: { kind: 'output', output: seen.output }, state }
          const result = server.step(event.input, state.server.state) // a throw is the fold's: rule 3
          const recent = state.recent.length >= settings.window ? state.recent.slice(state.recent.length - settings.window + 1) : state.recent.slice()
          recent.push({ request: event.request, output: result.output })
          return { ok: true, output: { kind: 'output', output: result.output }, state: { ...state, server: { kind: 'running', state: result.state }, steps: state.steps + 1, recent } }
        }
        case 'quarantine': {
          if (state.quarantined.some(q => q.request === event.record.request)) return { ok: true, output: { kind: 'done' }, state }
          const kept = state.quarantined.length >= settings.maxQuarantined ? state.quarantined.slice(state.quarantined.length - settings.maxQuarantined + 1) : state.quarantined.slice()
          kept.push(event.record)
          return { ok: true, output: { kind: 'done' }, state: { ...state, quarantined: kept, quarantinedTotal: state.quarantinedTotal + 1 } }
        }
      }
    }
  }
}

/**
 * The group's codecs, over the server's input, state and output codecs. Events: a tag byte
 * (0 init, 1 input, 2 quarantine) and the fields; states: the server state (after a flag),
 * counters, recent outputs and quarantine records; outputs: a tag byte (0 done, 1 output,
 * 2 uninitialised). docs/PROTOCOL.md ("Supervision across the cluster") has the layouts.
 */
export function replicatedCodecs<I, S, O> (codecs: { readonly input: Codec<I>, readonly state: Codec<S>, readonly output: Codec<O> }): FoldCodecs<ReplicatedEvent<I, S>, ReplicatedState<S, O>, ReplicatedOutput<O>> {
  const event: Codec<ReplicatedEvent<I, S>> = {
    encode: (e, w) => {
      if (e.t === 'init') { w.writeUint8(0); codecs.state.encode(e.state, w) } else if (e.t === 'input') { w.writeUint8(1); w.writeString(e.request); codecs.input.encode(e.input, w) } else { w.writeUint8(2); writeRecord(e.record, w) }
    },
    decode: (r, limits) => {
      const tag = r.readUint8()
      if (tag === 0) return { t: 'init', state: codecs.state.decode(r, limits) }
      if (tag === 1) return { t: 'input', request: r.readString(MAX_REQUEST_ID_BYTES), input: codecs.input.decode(r, limits) }
      if (tag === 2) return { t: 'quarantine', record: readRecord(r) }
      throw new DecodeError('bad-tag', `unknown replicated event tag ${tag}`)
    }
  }
  const state: Codec<ReplicatedState<S, O>> = {
    encode: (s, w) => {
      if (s.server.kind === 'running') { w.writeUint8(1); codecs.state.encode(s.server.state, w) } else w.writeUint8(0)
      w.writeVarUint(s.steps)
      w.writeVarUint(s.recent.length)
      for (const r of s.recent) { w.writeString(r.request); codecs.output.encode(r.output, w) }
      w.writeVarUint(s.quarantined.length)
      for (const q of s.quarantined) writeRecord(q, w)
      w.writeVarUint(s.quarantinedTotal)
    },
    decode: (r, limits) => {
      const flag = r.readUint8()
      if (flag > 1) throw new DecodeError('bad-tag', `unknown server state flag ${flag}`)
      const server: ReplicatedState<S, O>['server'] = flag === 1 ? { kind: 'running', state: codecs.state.decode(r, limits) } : { kind: 'uninitialised' }
      const steps = r.readVarUint()
      const recent: Array<{ request: string, output: O }> = []
      for (let n = r.readCount(limits.maxItems, 2, 'recent outputs'), i = 0; i < n; i++) recent.push({ request: r.readString(MAX_REQUEST_ID_BYTES), output: codecs.output.decode(r, limits) })
      const quarantined: QuarantineRecord[] = []
      for (let n = r.readCount(limits.maxItems, 6, 'quarantine records'), i = 0; i < n; i++) quarantined.push(readRecord(r))
      return { server, steps, recent, quarantined, quarantinedTotal: r.readVarUint() }
    }
  }
  const output: Codec<ReplicatedOutput<O>> = {
    encode: (o, w) => { if (o.kind === 'output') { w.writeUint8(1); codecs.output.encode(o.output, w) } else w.writeUint8(o.kind === 'done' ? 0 : 2) },
    decode: (r, limits: DecodeLimits) => {
      const tag = r.readUint8()
      if (tag === 0) return { kind: 'done' }
      if (tag === 1) return { kind: 'output', output: codecs.output.decode(r, limits) }
      if (tag === 2) return { kind: 'uninitialised' }
      throw new DecodeError('bad-tag', `unknown replicated output tag ${tag}`)
    }
  }
  return { event, state, output }
}

function writeRecord (q: QuarantineRecord, w: Writer): void {
  w.writeString(q.request)
  w.writeVarUint(q.event.counter)
  w.writeString(q.event.participant)
  w.writeString(q.thrown)
  w.writeBytes(q.input)
  w.writeUint8(q.truncated ? 1 : 0)
}

function readRecord (r: Reader): QuarantineRecord {
  const request = r.readString(MAX_REQUEST_ID_BYTES)
  const event = { counter: r.readVarUint(), participant: r.readString(MAX_REQUEST_ID_BYTES) }
  const thrown = r.readString(4 * MAX_THROWN_CHARS)
  const input = r.readBytes(MAX_QUARANTINED_INPUT_BYTES)
  const flag = r.readUint8()
  if (flag > 1) throw new DecodeError('bad-tag', `unknown truncation flag ${flag}`)
  return { request, event, thrown, input, truncated: flag === 1 }
}

/** A quarantine record for an input of `request` whose event `event` threw `thrown`. */
export function quarantineRecord (request: string, event: EventId, thrown: string, input: Uint8Array): QuarantineRecord {
  const oneLine = thrown.replace(/\s+/g, ' ').slice(0, MAX_THROWN_CHARS)
  return { request, event, thrown: oneLine, input: input.slice(0, MAX_QUARANTINED_INPUT_BYTES), truncated: input.length > MAX_QUARANTINED_INPUT_BYTES }
}
