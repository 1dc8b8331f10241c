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
import { digestLogLink, encodeLogHead, type FoldCodecs } from '../codec/eventfold.js'
import type { EventSignatures, Participant } from '../eventfold/types.js'

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
 * The signer of the peer whose key is `privateKey`.
 * @throws TypeError if `privateKey` is not an Ed25519 key (only Ed25519 peer ids carry the
 * public key that lets others check a signature)
 */
export function peerSigner (privateKey: PrivateKey): PeerSigner {
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
    sign: (bytes) => new Uint8Array(sign(null, bytes, own)),
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
    sign: (since, seq, head) => signer.sign(encodeLogHead(origin, self, since, seq, head)),
    verify: (creator, since, seq, head, signature) => signer.verify(creator, encodeLogHead(origin, creator, since, seq, head), signature)
  }
}

function sha256 (bytes: Uint8Array): Uint8Array {
  const digest = hash('sha256', bytes, 'buffer')
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength)
}
