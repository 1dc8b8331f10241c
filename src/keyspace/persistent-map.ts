/**
 * An immutable map from strings to values with structural sharing (a hash array mapped trie,
 * 32-way): `set` and `remove` copy only the path to the changed entry and return a new map,
 * so a partition's state can move from one EventFold state to the next without copying every
 * key. The keyspace keeps each partition's keys in one; nothing here knows about partitions.
 *
 * Nodes are plain objects and arrays, never mutated after creation, so the fold may
 * deep-freeze them (it freezes only the new path: frozen subtrees stop the walk). Iteration
 * order depends only on the set of keys (the trie is canonical: removing a key collapses the
 * nodes it leaves with one child), so equal maps encode to equal bytes.
 *
 * @module
 */

const BITS = 5
const WIDTH = 1 << BITS
const MASK = WIDTH - 1
/** Below this shift every bit of the 32-bit hash is used: equal hashes share a bucket. */
const MAX_SHIFT = 30

interface Leaf<V> { readonly kind: 0, readonly hash: number, readonly key: string, readonly value: V }
interface Bucket<V> { readonly kind: 1, readonly hash: number, readonly entries: ReadonlyArray<Leaf<V>> }
interface Branch<V> { readonly kind: 2, readonly bitmap: number, readonly children: ReadonlyArray<Child<V>> }
type Child<V> = Leaf<V> | Bucket<V> | Branch<V>

const EMPTY_BRANCH: Branch<never> = Object.freeze({ kind: 2, bitmap: 0, children: Object.freeze([]) })

/** An immutable string-keyed map; see the module comment. */
export class PersistentMap<V> {
  private static readonly emptyMap = new PersistentMap<never>(EMPTY_BRANCH, 0)

  private constructor (private readonly root: Branch<V>, readonly size: number) {}

  /** The empty map. */
  static empty<V> (): PersistentMap<V> {
    return PersistentMap.emptyMap as PersistentMap<V>
  }

  /** A map of `entries` (a later duplicate key wins). */
  static from<V> (entries: Iterable<readonly [string, V]>): PersistentMap<V> {
    let map = PersistentMap.empty<V>()
    for (const [k, v] of entries) map = map.set(k, v)
    return map
  }

  /** The value of `key`, if any. */
  get (key: string): V | undefined {
    const hash = hashString(key)
    let node: Child<V> = this.root
    for (let shift = 0; ; shift += BITS) {
      if (node.kind === 0) return node.key === key ? node.value : undefined
      if (node.kind === 1) return node.entries.find(e => e.key === key)?.value
      const bit = 1 << ((hash >>> shift) & MASK)
      if ((node.bitmap & bit) === 0) return undefined
      node = node.children[popcount(node.bitmap & (bit - 1))]!
    }
  }

  /** Whether `key` is present. */
  has (key: string): boolean {
    return this.get(key) !== undefined
  }

  /** A map with `key` set to `value` (this map if it already holds that very value). */
  set (key: string, value: V): PersistentMap<V> {
    const hash = hashString(key)
    const added = { grew: false }
    const root = setIn(this.root, 0, { kind: 0, hash, key, value }, added) as Branch<V>
    return root === this.root ? this : new PersistentMap(root, this.size + (added.grew ? 1 : 0))
  }

  /** A map without `key` (this map if it has no such key). */
  remove (key: string): PersistentMap<V> {
    const root = removeIn(this.root, 0, hashString(key), key)
    if (root === this.root) return this
    // The root never collapses (removeIn keeps a branch at shift 0).
    return new PersistentMap(root === undefined ? EMPTY_BRANCH : root as Branch<V>, this.size - 1)
  }

  /** Every entry, in the trie's canonical order. */
  * entries (): IterableIterator<[string, V]> {
    const stack: Array<Child<V>> = [this.root]
    while (stack.length > 0) {
      const node = stack.pop()!
      if (node.kind === 0) yield [node.key, node.value]
      else if (node.kind === 1) for (const e of node.entries) yield [e.key, e.value]
      else for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]!)
    }
  }
}

function setIn<V> (node: Child<V>, shift: number, leaf: Leaf<V>, added: { grew: boolean }): Child<V> {
  if (node.kind === 0) {
    if (node.key === leaf.key) return node.value === leaf.value ? node : leaf
    added.grew = true
    return merge(node, leaf, shift)
  }
  if (node.kind === 1) {
    const at = node.entries.findIndex(e => e.key === leaf.key)
    if (at >= 0 && node.entries[at]!.value === leaf.value) return node
    if (at < 0) added.grew = true
    const entries = at >= 0 ? node.entries.map((e, i) => i === at ? leaf : e) : [...node.entries, leaf].sort(byKey)
    return { kind: 1, hash: node.hash, entries }
  }
  const bit = 1 << ((leaf.hash >>> shift) & MASK)
  const at = popcount(node.bitmap & (bit - 1))
  if ((node.bitmap & bit) === 0) {
    added.grew = true
    const children = [...node.children]
    children.splice(at, 0, leaf)
    return { kind: 2, bitmap: node.bitmap | bit, children }
  }
  const child = node.children[at]!
  const next = setIn(child, shift + BITS, leaf, added)
  if (next === child) return node
  const children = [...node.children]
  children[at] = next
  return { kind: 2, bitmap: node.bitmap, children }
}

/** A node holding two leaves with different keys, from `shift` down. */
function merge<V> (a: Leaf<V>, b: Leaf<V>, shift: number): Child<V> {
  if (shift > MAX_SHIFT || a.hash === b.hash) return { kind: 1, hash: a.hash, entries: [a, b].sort(byKey) }
  const ia = (a.hash >>> shift) & MASK
  const ib = (b.hash >>> shift) & MASK
  if (ia === ib) return { kind: 2, bitmap: 1 << ia, children: [merge(a, b, shift + BITS)] }
  return { kind: 2, bitmap: (1 << ia) | (1 << ib), children: ia < ib ? [a, b] : [b, a] }
}

/**
 * `node` without `key`: the same node if absent, `undefined` if nothing is left, and a lone
 * leaf or bucket lifted up in place of a branch it would be the only child of (which keeps
 * the trie canonical).
 */
function removeIn<V> (node: Child<V>, shift: number, hash: number, key: string): Child<V> | undefined {
  if (node.kind === 0) return node.key === key ? undefined : node
  if (node.kind === 1) {
    const entries = node.entries.filter(e => e.key !== key)
    if (entries.length === node.entries.length) return node
    return entries.length === 1 ? entries[0] : { kind: 1, hash: node.hash, entries }
  }
  const bit = 1 << ((hash >>> shift) & MASK)
  if ((node.bitmap & bit) === 0) return node
  const at = popcount(node.bitmap & (bit - 1))
  const child = node.children[at]!
  const next = removeIn(child, shift + BITS, hash, key)
  if (next === child) return node
  if (next === undefined) {
    const bitmap = node.bitmap & ~bit
    if (bitmap === 0) return undefined
    const children = node.children.filter((_, i) => i !== at)
    // A branch left with one leaf or bucket collapses into it (except the root, which the
    // caller re-wraps).
    if (children.length === 1 && children[0]!.kind !== 2 && shift > 0) return children[0]
    return { kind: 2, bitmap, children }
  }
  if (next.kind !== 2 && node.children.length === 1 && shift > 0) return next
  const children = [...node.children]
  children[at] = next
  return { kind: 2, bitmap: node.bitmap, children }
}

/** Bucket entries in key order, so that iteration depends only on the set of keys. */
function byKey<V> (a: Leaf<V>, b: Leaf<V>): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

function popcount (n: number): number {
  n = n - ((n >>> 1) & 0x55555555)
  n = (n & 0x33333333) + ((n >>> 2) & 0x33333333)
  return (((n + (n >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24
}

/** FNV-1a over the UTF-16 code units of `s`: fast, and the same on every machine. */
function hashString (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
