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
 * The signer and verifier of one peer's events in cluster `origin`.
 * @throws TypeError if `privateKey` is not an Ed25519 key (only Ed25519 peer ids carry the
 * public key that lets others check a signature)
 */
export function eventSignatures<E, S, O> (origin: string, privateKey: PrivateKey, codecs: FoldCodecs<E, S, O>): EventSignatures<E, O> {
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
    sign: (id, delta) => new Uint8Array(sign(null, encodeSignedEvent(origin, id, delta, codecs), own)),
    verify: (id, delta, signature) => {
      const key = publicKeyOf(id.participant)
      if (key === null) return false
      try {
        return verify(null, encodeSignedEvent(origin, id, delta, codecs), key, signature)
      } catch {
        // A body the codec cannot encode again was not what its creator signed.
        return false
      }
    }
  }
}
