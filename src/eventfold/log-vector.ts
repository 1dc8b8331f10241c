/**
 * An acknowledgement's version vector with participants by index (`Ack.holds` in core.ts):
 * how many events of each of a participant's logs its sender holds.
 *
 * Most participants write one log, so the first log listed for each sits in two arrays
 * indexed by the participant's index, and only further logs (a participant that left and came
 * back) go in a map. Every message brings one of these, listing a log per participant: as nested
 * maps they were a map per participant per message, a good part of a 64-peer burst's garbage.
 *
 * @module
 */
export class LogVector {
  /** Per participant index, the `since` of its first log listed (a hole: none). */
  readonly #since: number[] = []
  /** ...and how many of its events are held. */
  readonly #seq: number[] = []
  /** Participant index to further logs' `since` to how many of their events are held. */
  #more: Map<number, Map<number, number>> | undefined

  /** Sets how many events of participant `i`'s log `since` are held. */
  set (i: number, since: number, seq: number): void {
    const first = this.#since[i]
    if (first === undefined || first === since) {
      this.#since[i] = since
      this.#seq[i] = seq
      return
    }
    this.#more ??= new Map()
    let logs = this.#more.get(i)
    if (logs === undefined) { logs = new Map(); this.#more.set(i, logs) }
    logs.set(since, seq)
  }

  /** How many events of participant `i`'s log `since` are held (0: not listed). */
  get (i: number, since: number): number {
    if (this.#since[i] === since) return this.#seq[i]!
    return this.#more?.get(i)?.get(since) ?? 0
  }

  /** Calls `f` with each log listed: participant index, log, events held. */
  forEach (f: (i: number, since: number, seq: number) => void): void {
    const sinces = this.#since
    for (let i = 0; i < sinces.length; i++) {
      const since = sinces[i]
      if (since !== undefined) f(i, since, this.#seq[i]!)
    }
    if (this.#more !== undefined) for (const [i, logs] of this.#more) for (const [since, seq] of logs) f(i, since, seq)
  }
}
