/**
 * Ed25519 signatures of events, so that a participant can neither create an event in another
 * participant's name nor alter one it relays (PROTOCOL.md section 7.4).
 *
 * A participant id is a libp2p peer id, and an Ed25519 peer id embeds its public key, so a
 * receiver needs nothing but the id to check a creator's signature: no key distribution.
 * What is signed is `encodeSignedEvent`'s encoding (cluster, event id, body).
 *
 * Node's own `crypto` does the work (about 35 µs to sign and 100 µs to verify on the CI
 * machine, against about 70 µs to sign through `PrivateKey.sign`). Public keys are parsed
 * once per participant and cached; the cache is bounded because the ids it is asked about
 * come off the wire.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { encodeSignedEvent, type FoldCodecs } from '../codec/eventfold.js'
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

/** The signer and verifier of one peer's events in the fold of origin `origin`. */
export function eventSignatures<E, S, O> (origin: string, signer: PeerSigner, codecs: FoldCodecs<E, S, O>): EventSignatures<E, O> {
  return {
    sign: (id, delta) => signer.sign(encodeSignedEvent(origin, id, delta, codecs)),
    verify: (id, delta, signature) => {
      let bytes: Uint8Array
      try {
        bytes = encodeSignedEvent(origin, id, delta, codecs)
      } catch {
        // A body the codec cannot encode again was not what its creator signed.
        return false
      }
      return signer.verify(id.participant, bytes, signature)
    }
  }
}
