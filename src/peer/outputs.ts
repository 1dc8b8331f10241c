/**
 * Consistent outputs for other creators: a peer that folds an event another peer created sends
 * its output to that creator, one message per creator per flush covering every group, so the
 * creator's `applyConsistent` resolves as soon as anyone knows the outcome (even if the
 * creator itself skipped the event through a full merge). Receiving is the other half: an
 * output for an event this peer awaits resolves it.
 *
 * @module
 */
import type { Logger } from '@libp2p/interface'
import type { DecodeLimits } from '../codec/codec.js'
import { decodeWith } from '../codec/codec.js'
import type { Participant } from '../eventfold/types.js'
import type { Inbound } from './inbound.js'
import type { Lifecycle, SomeReplica } from './lifecycle.js'
import type { LegionCounters } from './options.js'
import { OUTPUTS_PROTOCOL, decodeOutputs, encodeOutputs, type EncodedOutput, type GroupOutputs } from './protocol/outputs.js'

/** What output forwarding needs. */
export interface OutputsComponents {
  /** This peer. */
  readonly self: Participant
  /** The admission pipeline (registers the protocol). */
  readonly inbound: Inbound
  /** The peer's lifecycle. */
  readonly lifecycle: Lifecycle
  /** Sends a one-way message (dialling first if needed). */
  readonly sendOneWay: (peer: Participant, protocol: string, payload: Uint8Array) => void
  /** The peer's counters. */
  readonly counters: LegionCounters
  /** Message limits. */
  readonly limits: DecodeLimits
  /** The part's logger. */
  readonly log: Logger
}

/** Outputs owed to creators, by creator, then by group. */
export type OwedOutputs = Map<Participant, GroupOutputs[]>

/** Forwards and receives consistent outputs; see the module comment. */
export class OutputForwarding {
  constructor (private readonly components: OutputsComponents) {}

  /** Registers the protocol. */
  async start (): Promise<void> {
    await this.components.inbound.oneWay(OUTPUTS_PROTOCOL, 'members', decodeOutputs, (from, groups) => { this.receive(from, groups) })
  }

  /** Takes what `replicas` owe other creators. */
  take (replicas: readonly SomeReplica[]): OwedOutputs {
    const owed: OwedOutputs = new Map()
    for (const replica of replicas) {
      for (const [creator, outputs] of replica.takeOutputs() as Map<Participant, EncodedOutput[]>) {
        let list = owed.get(creator)
        if (list === undefined) { list = []; owed.set(creator, list) }
        list.push({ group: replica.id, outputs })
      }
    }
    return owed
  }

  /** Sends what {@link take} took: one message per creator. */
  send (owed: OwedOutputs): void {
    const c = this.components
    for (const [creator, groups] of owed) {
      const payload = encodeOutputs(groups)
      for (const g of groups) c.counters.outputsForwarded += g.outputs.length
      c.inbound.countOut(payload)
      c.sendOneWay(creator, c.inbound.protocol(OUTPUTS_PROTOCOL), payload)
    }
  }

  private receive (from: Participant, groups: readonly GroupOutputs[]): void {
    const c = this.components
    const incarnation = c.lifecycle.incarnation
    if (incarnation === undefined) return
    for (const g of groups) {
      const replica = incarnation.groups.get(g.group)
      if (replica === undefined) continue
      for (const o of g.outputs) {
        if (o.id.participant !== c.self || !replica.awaits(o.id)) continue
        try {
          replica.resolveForwarded(o.id, 'thrown' in o ? { thrown: o.thrown } : { output: decodeWith(replica.definition.codecs.output, o.value, c.limits) })
        } catch (err) {
          c.counters.droppedUndecodable++
          c.log('undecodable output from %s: %s', from, err)
        }
      }
    }
  }
}
