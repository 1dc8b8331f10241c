/**
 * Type-level specification, checked by `npm test`'s type-check: the options require codecs
 * exactly when the event, state or output types are not JSON values, so a `Map` in the state
 * fails to compile instead of failing when a second peer joins. (`@ts-expect-error` lines
 * fail the type-check if they stop being errors.) The runtime part only checks IsJson's
 * verdicts through a value-level witness.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startLegion } from '../src/peer/start.js'
import type { EventSpec } from '../src/eventfold/types.js'
import { jsonCodec, jsonCodecFor, type IsJson } from '../src/codec/json.js'
import type { Codec } from '../src/codec/codec.js'
import { partitionTableSpec } from '../src/partitions/partition-table.js'

interface Move { readonly from: string, readonly to: string, readonly note?: string }
interface Board { readonly moves: readonly Move[], readonly score: bigint, readonly snapshot: Uint8Array }
const jsonSpec: EventSpec<Move, Board, number> = {
  init: () => ({ moves: [], score: 0n, snapshot: new Uint8Array() }),
  apply: (m, s) => ({ ok: true, output: s.moves.length, state: { ...s, moves: [...s.moves, m] } })
}
const mapSpec: EventSpec<string, Map<string, number>, number> = {
  init: () => new Map(),
  apply: (k, s) => ({ ok: true, output: s.size, state: new Map(s).set(k, 1) })
}
const dateSpec: EventSpec<{ at: Date }, number, number> = { init: () => 0, apply: (_e, s) => ({ ok: true, output: s, state: s + 1 }) }
const mapCodec = jsonCodec as unknown as Codec<Map<string, number>>

/** Compiles only if its argument is `true` (a type-level assertion). */
function yes<T extends true> (): T | undefined { return undefined }
/** Compiles only if its argument is `false`. */
function no<T extends false> (): T | undefined { return undefined }

test('codecs are optional for JSON types and required otherwise (checked at compile time)', () => {
  // Never called: these only have to compile (or not).
  const compileOnly = (): unknown[] => [
    startLegion({ cluster: 'types', spec: jsonSpec, startup: { mode: 'new' } }),
    startLegion({ cluster: 'types', spec: partitionTableSpec(8), startup: { mode: 'new' } }),
    // @ts-expect-error a Map state needs explicit codecs
    startLegion({ cluster: 'types', spec: mapSpec, startup: { mode: 'new' } }),
    startLegion({ cluster: 'types', spec: mapSpec, codecs: { event: jsonCodecFor<string>(), state: mapCodec, output: jsonCodecFor<number>() }, startup: { mode: 'new' } }),
    // @ts-expect-error a Date inside an event needs explicit codecs
    startLegion({ cluster: 'types', spec: dateSpec, startup: { mode: 'new' } }),
    // @ts-expect-error jsonCodecFor refuses a type that is not JSON
    jsonCodecFor<Map<string, number>>()
  ]
  assert.equal(typeof compileOnly, 'function')
  assert.equal(yes<IsJson<Board>>(), undefined)
  assert.equal(yes<IsJson<Move | null>>(), undefined)
  assert.equal(no<IsJson<{ at: Date }>>(), undefined)
  assert.equal(no<IsJson<{ f: () => void }>>(), undefined)
  assert.equal(no<IsJson<string | undefined>>(), undefined)
  assert.equal(no<IsJson<Set<string>>>(), undefined)
})
