/**
 * The seed's example server: a key-value store with a deliberate bug (looking up the key
 * `"crash"` divides by zero). Shared by `demo/supervision.ts` and the test that reproduces the
 * seed's transcript (`test/supervision-seed.test.ts`); `say` is where its lines go.
 */
import { checkedJsonCodec, defineServer, type JsonValue, type ServerSpec } from '../src/index.js'

/** An input: store a number under a key, or look a key up. */
export type KvInput =
  | { readonly op: 'store', readonly key: string, readonly value: number }
  | { readonly op: 'lookup', readonly key: string }

/** An output: `{ stored }` for a store, `{ result }` (null when absent) for a lookup. */
export type KvOutput = { readonly stored: string } | { readonly result: number | null }

/** The state: the stored numbers by key. */
export type KvState = Readonly<Record<string, number>>

function isKvInput (v: JsonValue): v is KvInput {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return false
  const o = v as Record<string, JsonValue>
  if (typeof o.key !== 'string') return false
  return (o.op === 'store' && typeof o.value === 'number') || o.op === 'lookup'
}

function isKvOutput (v: JsonValue): v is KvOutput {
  return typeof v === 'object' && v !== null && ('stored' in v || 'result' in v)
}

/** The key-value server; `say` receives its "starting" and "terminating" lines. */
export function kvStore (say: (line: string) => void): ServerSpec<KvInput, KvState, KvOutput> {
  return defineServer<KvInput, KvState, KvOutput>({
    init ({ name }) {
      say(`KV store starting: ${name}`)
      return {}
    },
    step (input, state) {
      if (input.op === 'store') {
        return { state: { ...state, [input.key]: input.value }, output: { stored: input.key } }
      }
      // The seed's deliberate bug: 1 `div` 0. BigInt division by zero throws, as Haskell's does.
      if (input.key === 'crash') return { state, output: { result: Number(1n / 0n) } }
      return { state, output: { result: state[input.key] ?? null } }
    },
    terminate (_reason, _state, { name }) {
      say(`KV store terminating: ${name}`)
    },
    codecs: {
      input: checkedJsonCodec(isKvInput, 'KV store input'),
      output: checkedJsonCodec(isKvOutput, 'KV store output')
    }
  })
}
