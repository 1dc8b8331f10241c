/**
 * Which event bodies a batch carries (module invariant 3 of the flush, docs/ARCHITECTURE.md):
 * each body once, this peer's own at once, another's (a relay) only once it has been
 * outstanding here for an interval with someone's acknowledgement still missing. Its creator
 * sent it to everyone already, so relaying it at once mostly repeats what receivers hold (a
 * signed body is about 70 bytes); waiting an interval keeps the relay for whoever missed it.
 * Pure: time is a parameter.
 *
 * @module
 */
import { eventIdKey, type DiffEvent, type OutstandingEvent, type Participant } from '../../eventfold/types.js'

/** The relay bookkeeping of one group replica. */
export class RelayPolicy<E, O> {
  private readonly sent = new Set<string>()
  /** When this peer first considered each outstanding event of another's. */
  private readonly heldSince = new Map<string, number>()

  constructor (private readonly self: Participant, private readonly relayAfterMs: number) {}

  /**
   * The batch form of `events` (the outstanding events, in order): bodies where the policy
   * says so, ids and acknowledgements for the rest. `projected` gives the participants that
   * should hold each event.
   */
  select (events: ReadonlyArray<OutstandingEvent<E, O>>, projected: () => readonly Participant[], now: number): Array<DiffEvent<E, O>> {
    let participants: readonly Participant[] | undefined
    const out = events.map((e): DiffEvent<E, O> => {
      if (e.delta.kind === 'error') return e
      const key = eventIdKey(e.id)
      let send = false
      if (!this.sent.has(key)) {
        if (e.id.participant === this.self) send = true
        else {
          const since = this.heldSince.get(key)
          if (since === undefined) this.heldSince.set(key, now)
          else if (now - since >= this.relayAfterMs) {
            participants ??= projected()
            send = participants.some(p => !e.acks.includes(p))
          }
        }
      }
      if (send) this.sent.add(key)
      return send ? e : { id: e.id, delta: undefined, acks: e.acks }
    })
    // Forget events that have folded: both sets track outstanding events only (an event can
    // be in both, hence twice the slack).
    if (this.sent.size + this.heldSince.size > events.length * 4 + 64) {
      const live = new Set(events.map(e => eventIdKey(e.id)))
      for (const k of this.sent) if (!live.has(k)) this.sent.delete(k)
      for (const k of this.heldSince.keys()) if (!live.has(k)) this.heldSince.delete(k)
    }
    return out
  }
}
