/**
 * Hash chains and Ed25519 signatures of participants' logs, so that a participant can neither
 * create an event in another participant's name nor alter one it relays (PROTOCOL.md section
 * 7.4), at one signature per batch rather than one per event.
 *
 * Each participant's events form a log; the chain hash after an event is SHA-256 of the hash
 * before it and the event (`encodeLogLink`), and a creator signs the head of its log (how many
 * events, the hash after the last: `encodeLogHead`) once per batch. A participant id is a
 * libp2p peer id, and an Ed25519 peer id embeds its public key, so a receiver needs nothing
 * but the id to check a creator's signature: no key distribution.
 *
 * A peer that changed several groups in one flush signs their heads together, once: a hash
 * tree over the heads, its root signed, each head's signature carrying the proof that it is a
 * leaf of that tree ({@link signHeadsTogether}, PROTOCOL.md 4.7). A keyspace's flush under
 * load changes about seven partitions, each of which cost a signature of its own before.
 *
 * Node's own `crypto` does the work: about 2 µs a link, 35 µs to sign and 100 µs to verify on
 * the CI machine (against about 70 µs to sign through `PrivateKey.sign`). Public keys are
 * parsed once per participant and cached; the cache is bounded because the ids it is asked
 * about come off the wire.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { MAX_HEADS_PER_SIGNATURE, digestLogLink, encodeHeadsRoot, encodeLogHead, type FoldCodecs } from '../codec/eventfold.js'
import type { EventSignatures, Participant, UnsignedHead } from '../eventfold/types.js'

/** Public keys cached at most; past this the cache starts over (ids come off the wire). */
const MAX_CACHED_KEYS = 4096

const ED25519_KEY_BYTES = 32

function base64url (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
}

/**
 * One peer's keys for signing and checking events, shared by all its groups: its own private
 * key object, and the public keys of the creators it has checked (parsed once per participant,
 * bounded, since the ids it is asked about come off the wire).
 */
export interface PeerSigner {
  /** Signs `bytes` with this peer's key. */
  sign(bytes: Uint8Array): Uint8Array
  /** Whether `signature` is `participant`'s signature of `bytes`. */
  verify(participant: Participant, bytes: Uint8Array, signature: Uint8Array): boolean
}

/**
 * The signer of the peer whose key is `privateKey`; `signed` is called after each signature
 * it makes (the peer's `headsSigned` counter).
 * @throws TypeError if `privateKey` is not an Ed25519 key (only Ed25519 peer ids carry the
 * public key that lets others check a signature)
 */
export function peerSigner (privateKey: PrivateKey, signed?: () => void): PeerSigner {
  if (privateKey.type !== 'Ed25519') throw new TypeError(`events are signed with Ed25519; the peer's key is ${privateKey.type}`)
  // libp2p's raw Ed25519 private key is the 32-byte seed followed by the 32-byte public key.
  const seed = privateKey.raw.subarray(0, ED25519_KEY_BYTES)
  const own = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: base64url(seed), x: base64url(privateKey.publicKey.raw) }, format: 'jwk' })
  const keys = new Map<Participant, KeyObject | null>()
  const publicKeyOf = (participant: Participant): KeyObject | null => {
    let key = keys.get(participant)
    if (key !== undefined) return key
    key = null
    try {
      const embedded = peerIdFromString(participant).publicKey
      if (embedded?.type === 'Ed25519') key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: base64url(embedded.raw) }, format: 'jwk' })
    } catch {
      // Not a peer id at all: no key, so nothing it signs checks.
    }
    if (keys.size >= MAX_CACHED_KEYS) keys.clear()
    keys.set(participant, key)
    return key
  }
  return {
    sign: (bytes) => {
      const signature = new Uint8Array(sign(null, bytes, own))
      signed?.()
      return signature
    },
    verify: (participant, bytes, signature) => {
      const key = publicKeyOf(participant)
      if (key === null) return false
      try {
        return verify(null, bytes, key, signature)
      } catch {
        return false
      }
    }
  }
}

/**
 * The hash chains, signer and verifier of the logs of the fold of origin `origin`, for the peer
 * `self` whose signer is `signer`.
 */
export function eventSignatures<E, S, O> (origin: string, self: Participant, signer: PeerSigner, codecs: FoldCodecs<E, S, O>): EventSignatures<E, O> {
  return {
    chain: (previous, id, delta) => digestLogLink(previous, id, delta, codecs, sha256),
    sign: (since, seq, head, admittedBy) => signer.sign(encodeLogHead(origin, self, since, seq, head, admittedBy)),
    verify: (creator, since, seq, head, admittedBy, signature) => {
      const bytes = encodeLogHead(origin, creator, since, seq, head, admittedBy)
      return signature.length === SIGNATURE_BYTES ? signer.verify(creator, bytes, signature) : verifyTogether(signer, creator, bytes, signature)
    }
  }
}

/** An Ed25519 signature; a longer one carries a proof (below). */
const SIGNATURE_BYTES = 64
const PROOF_AT = SIGNATURE_BYTES + 2
const NODE_BYTES = 32
/** A leaf's and an inner node's first byte, so that no inner node passes for a head. */
const LEAF = new Uint8Array([0])
const INNER = 1

/** A group's own head waiting for a signature: the group's origin, and the head. */
export interface HeadOfGroup {
  /** The group's raw origin (what its {@link eventSignatures} were made with). */
  readonly origin: string
  /** The head, from `EventFold.unsignedHead`. */
  readonly head: UnsignedHead
}

/**
 * Signs `heads` (of this peer, `self`, in different groups) with one signature per
 * {@link MAX_HEADS_PER_SIGNATURE}: the root of a hash tree over their `encodeLogHead` bytes is
 * signed (`encodeHeadsRoot`), and each head gets that signature followed by `u8 count ·
 * u8 index` and the sibling hashes from its leaf up. One head alone is left to be signed on
 * its own (a plain 64-byte signature, as a peer with one busy group always sends).
 */
export function signHeadsTogether (signer: PeerSigner, self: Participant, heads: readonly HeadOfGroup[]): void {
  for (let start = 0; heads.length - start >= 2; start += MAX_HEADS_PER_SIGNATURE) {
    const chunk = heads.slice(start, start + MAX_HEADS_PER_SIGNATURE)
    const levels: Uint8Array[][] = [chunk.map(({ origin, head }) => sha256(Buffer.concat([LEAF, encodeLogHead(origin, self, head.since, head.seq, head.head, head.admittedBy)])))]
    for (let below = levels[0]!; below.length > 1; below = levels[levels.length - 1]!) {
      const up: Uint8Array[] = []
      for (let i = 0; i < below.length; i += 2) up.push(i + 1 < below.length ? innerNode(below[i]!, below[i + 1]!) : below[i]!)
      levels.push(up)
    }
    const signature = signer.sign(encodeHeadsRoot(chunk.length, levels[levels.length - 1]![0]!))
    chunk.forEach(({ head }, index) => {
      const siblings: Uint8Array[] = []
      for (let l = 0, p = index; l < levels.length - 1; l++, p >>= 1) {
        const sibling = levels[l]![p ^ 1]
        if (sibling !== undefined) siblings.push(sibling)
      }
      const proof = new Uint8Array(PROOF_AT + NODE_BYTES * siblings.length)
      proof.set(signature)
      proof[SIGNATURE_BYTES] = chunk.length
      proof[SIGNATURE_BYTES + 1] = index
      siblings.forEach((sibling, j) => proof.set(sibling, PROOF_AT + NODE_BYTES * j))
      head.sign(proof)
    })
  }
}

/** Whether `proof` (see {@link signHeadsTogether}) proves `creator` signed a tree with `headBytes` as a leaf. */
function verifyTogether (signer: PeerSigner, creator: Participant, headBytes: Uint8Array, proof: Uint8Array): boolean {
  if (proof.length < PROOF_AT) return false
  const count = proof[SIGNATURE_BYTES]!
  let p = proof[SIGNATURE_BYTES + 1]!
  if (count < 2 || count > MAX_HEADS_PER_SIGNATURE || p >= count) return false
  let node = sha256(Buffer.concat([LEAF, headBytes]))
  let offset = PROOF_AT
  for (let width = count; width > 1; width = (width + 1) >> 1, p >>= 1) {
    if ((p ^ 1) >= width) continue // the last node of an odd level: moved up unchanged
    if (offset + NODE_BYTES > proof.length) return false
    const sibling = proof.subarray(offset, offset + NODE_BYTES)
    offset += NODE_BYTES
    node = (p & 1) === 0 ? innerNode(node, sibling) : innerNode(sibling, node)
  }
  return offset === proof.length && signer.verify(creator, encodeHeadsRoot(count, node), proof.subarray(0, SIGNATURE_BYTES))
}

function innerNode (left: Uint8Array, right: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(1 + 2 * NODE_BYTES)
  bytes[0] = INNER
  bytes.set(left, 1)
  bytes.set(right, 1 + NODE_BYTES)
  return sha256(bytes)
}

function sha256 (bytes: Uint8Array): Uint8Array {
  const digest = hash('sha256', bytes, 'buffer')
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength)
}
