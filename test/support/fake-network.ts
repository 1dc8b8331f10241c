/**
 * Test support: a manual clock and an in-memory network, so that whole peers run in one
 * process with no sockets and no real time. Timers fire only when the test advances the
 * clock; messages are delivered on the next turns of the event loop (`settle()` waits until
 * nothing is in flight). Links can be cut in one or both directions, and a peer can be
 * crashed (it neither sends nor receives anything again).
 *
 * The network mimics what the peer relies on in libp2p: a request or a send to a peer that is
 * not connected fails with `PeerUnreachableError`; dialling a bare peer id works only once its
 * address is known (both ends of a connection learn each other's addresses, as libp2p's
 * identify does); a protocol nobody handles fails to negotiate.
 */
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import type { PeerClock, Random, Timer } from '../../src/peer/clock.js'
import type { Network } from '../../src/peer/network.js'
import { AbortError, PeerUnreachableError, RemoteError, TimeoutError } from '../../src/transport/errors.js'
import type { ChannelHandler } from '../../src/transport/channel.js'
import type { GossipHandler } from '../../src/transport/gossip.js'

/** A clock whose time moves only when the test says so. */
export class ManualClock implements PeerClock {
  private time = 0
  private nextId = 1
  private readonly timers = new Map<number, { at: number, fn: () => void, every: number | undefined }>()

  now (): number { return this.time }
  wallNow (): number { return 1_700_000_000_000 + this.time }
  setTimer (ms: number, fn: () => void): Timer { return this.add(fn, ms, undefined) }
  every (ms: number, fn: () => void): Timer { return this.add(fn, ms, ms) }
  defer (fn: () => void): void { setImmediate(fn) }

  private add (fn: () => void, ms: number, every: number | undefined): Timer {
    const id = this.nextId++
    this.timers.set(id, { at: this.time + Math.max(0, ms), fn, every })
    return { cancel: () => { this.timers.delete(id) } }
  }

  /**
   * Moves time forward by `ms` with nothing running meanwhile: a stalled process (a long
   * synchronous task, a starved CPU). The timers that came due fire late, at the next `advance`,
   * all before any message is delivered, as Node runs expired timers before polling for I/O.
   */
  stall (ms: number): void {
    this.time += ms
  }

  /**
   * Moves time forward by `ms`, firing due timers in time order, and lets the event loop run
   * after each (so what a timer starts happens before the next one fires).
   */
  async advance (ms: number, step = 50): Promise<void> {
    await this.fireOverdue()
    const end = this.time + ms
    while (this.time < end) {
      const next = Math.min(end, this.time + step)
      for (;;) {
        let due: [number, { at: number, fn: () => void, every: number | undefined }] | undefined
        for (const t of this.timers) if (t[1].at <= next && (due === undefined || t[1].at < due[1].at)) due = t
        if (due === undefined) break
        const [id, timer] = due
        this.time = Math.max(this.time, timer.at)
        if (timer.every !== undefined) timer.at += timer.every
        else this.timers.delete(id)
        timer.fn()
        await settleTurns(20)
      }
      this.time = next
      await settleTurns(20)
    }
  }

  /**
   * Fires the timers a {@link stall} left overdue, oldest first, with only microtasks between
   * them (deliveries wait for the next turns); a periodic one resumes `every` after now.
   */
  private async fireOverdue (): Promise<void> {
    const overdue = [...this.timers].filter(([, t]) => t.at < this.time).sort(([, x], [, y]) => x.at - y.at)
    if (overdue.length === 0) return
    for (const [id, timer] of overdue) {
      if (this.timers.get(id) !== timer) continue // cancelled by an earlier one
      if (timer.every !== undefined) timer.at = this.time + timer.every
      else this.timers.delete(id)
      timer.fn()
      await Promise.resolve()
    }
    await settleTurns(20)
  }
}

/** A seeded source of randomness (mulberry32). */
export function seededRandom (seed: number): Random {
  let a = seed >>> 0
  return {
    next: () => {
      a = (a + 0x6d2b79f5) >>> 0
      let t = a
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
  }
}

/** Lets the event loop turn `n` times (message deliveries and flushes run in between). */
export async function settleTurns (n = 50): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve))
}

/**
 * Advances `clock` `stepMs` at a time until `predicate` holds, at most `maxMs` of simulated
 * time (then throws, naming `what`); returns the simulated time it took.
 */
export async function advanceUntil (clock: ManualClock, predicate: () => boolean, what: string, maxMs = 60_000, stepMs = 50): Promise<number> {
  const start = clock.now()
  await settleTurns()
  while (!predicate()) {
    if (clock.now() - start >= maxMs) throw new Error(`not true after ${maxMs} simulated ms: ${what}`)
    await clock.advance(stepMs)
  }
  return clock.now() - start
}

/** Advances `clock` (as {@link advanceUntil}) until `promise` settles, and returns its outcome. */
export async function advanceUntilSettled<T> (clock: ManualClock, promise: Promise<T>, what: string, maxMs = 60_000, stepMs = 50): Promise<T> {
  let done = false
  const watched = promise.finally(() => { done = true })
  watched.catch(() => {})
  await advanceUntil(clock, () => done, what, maxMs, stepMs)
  return await watched
}

/** A fake node: the {@link Network} a peer uses, plus `stop`. */
export type FakeNode = Network & { stop(): Promise<void> }

/** The in-memory network; see the module comment. */
export class FakeNetwork {
  private readonly nodes = new Map<string, NodeState>()
  private readonly cut = new Set<string>()
  private readonly crashed = new Set<string>()
  private readonly muted = new Map<string, Set<string>>()
  /** Protocols muted on one directed link, by `from>to`. */
  private readonly mutedLinks = new Map<string, Set<string>>()
  /** Messages sent, by protocol name (the part after the cluster). */
  readonly delivered = new Map<string, number>()
  /** Messages sent, by sender, then protocol name. */
  readonly sentBy = new Map<string, Map<string, number>>()
  /** Dials attempted, by `from>to` (the target as a peer id). */
  readonly dials = new Map<string, number>()
  /** Hang-ups, by `from>to`. */
  readonly hangUps = new Map<string, number>()
  private delays: { readonly random: Random, readonly maxMs: number } | undefined
  /** With {@link delay}: when the last message on each channel (`from>to protocol`) arrives. */
  private readonly channelDue = new Map<string, number>()
  /** One-way messages in the order they were sent, once {@link recordSends} was called. */
  private sendLog: Array<{ from: string, to: string, protocol: string, payload: Uint8Array }> | undefined

  constructor (private readonly clock: PeerClock) {}

  /** Creates the node of the peer with `privateKey` (for `PeerInternals.network`). */
  async node (privateKey: PrivateKey): Promise<FakeNode> {
    const id = peerIdFromPrivateKey(privateKey).toString()
    const state: NodeState = { id, handlers: new Map(), topics: new Map(), connected: new Set(), known: new Set(), onConnect: new Set(), stopped: false }
    // A node created under the id of a crashed one is that peer restarted.
    const earlier = this.nodes.get(id)
    if (earlier !== undefined) { earlier.stopped = true; for (const p of earlier.connected) this.nodes.get(p)?.connected.delete(id) }
    this.crashed.delete(id)
    this.nodes.set(id, state)
    const net = this
    const addressOf = (peer: string): string => `/memory/fake/p2p/${peer}`
    return {
      peerId: id,
      multiaddrs: () => [addressOf(id)],
      async dial (addr: string) {
        const target = addr.includes('/p2p/') ? addr.slice(addr.lastIndexOf('/p2p/') + 5) : addr
        net.dials.set(`${id}>${target}`, (net.dials.get(`${id}>${target}`) ?? 0) + 1)
        if (!addr.includes('/p2p/') && !state.known.has(target) && !state.connected.has(target)) throw new PeerUnreachableError(`no address known for ${target}`, target)
        const other = net.nodes.get(target)
        if (other === undefined || other.stopped || net.crashed.has(target) || net.isCut(id, target) || net.isCut(target, id)) throw new PeerUnreachableError(`cannot reach ${target}`, target)
        const opened = !state.connected.has(target)
        state.connected.add(target); state.known.add(target)
        other.connected.add(id); other.known.add(id)
        if (opened) {
          for (const listener of [...state.onConnect]) listener(target)
          for (const listener of [...other.onConnect]) listener(id)
        }
        return target
      },
      peerAddresses: async (peer: string) => state.known.has(peer) ? [addressOf(peer)] : [],
      async rememberAddresses (peer: string, addresses: readonly string[]) { if (addresses.length > 0) state.known.add(peer) },
      peerProtocols: async (peer: string, _options?: { readonly waitMs?: number }) => [...(net.nodes.get(peer)?.handlers.keys() ?? [])],
      async hangUp (peer: string) {
        net.hangUps.set(`${id}>${peer}`, (net.hangUps.get(`${id}>${peer}`) ?? 0) + 1)
        state.connected.delete(peer)
        net.nodes.get(peer)?.connected.delete(id)
      },
      onPeerConnected (listener: (peer: string) => void) {
        state.onConnect.add(listener)
        return () => { state.onConnect.delete(listener) }
      },
      connectedPeers: () => [...state.connected].filter(p => !net.crashed.has(p) && net.nodes.get(p)?.stopped !== true),
      subscribe (topic: string, handler: GossipHandler) {
        state.topics.set(topic, handler)
        return () => { state.topics.delete(topic) }
      },
      async publish (topic: string, data: Uint8Array) {
        let n = 0
        for (const peer of state.connected) if (net.deliverable(id, peer)) { n++; net.later(() => { net.nodes.get(peer)?.topics.get(topic)?.(id, data) }, `${id}>${peer} ${topic}`) }
        return n
      },
      async handle (protocol: string, handler: ChannelHandler) { state.handlers.set(protocol, handler) },
      async request (peer: string, protocol: string, payload: Uint8Array, options: { timeoutMs?: number, signal?: AbortSignal } = {}) {
        const target = net.route(state, peer, protocol)
        net.count(id, protocol)
        // A muted sender's requests are lost, and so are a muted receiver's answers.
        const lost = net.isMuted(id, protocol, peer) || net.isMuted(peer, protocol, id)
        return await new Promise<Uint8Array>((resolve, reject) => {
          const timeoutMs = options.timeoutMs ?? 10_000
          const timer = net.clock.setTimer(timeoutMs, () => { reject(new TimeoutError(`no answer within ${timeoutMs} ms`, timeoutMs)) })
          const signal = options.signal
          if (signal !== undefined) {
            const onAbort = (): void => { timer.cancel(); reject(new AbortError(undefined, { cause: signal.reason })) }
            if (signal.aborted) { onAbort(); return }
            signal.addEventListener('abort', onAbort, { once: true })
          }
          net.later(() => {
            if (lost || !net.deliverable(id, peer)) return // lost: the timer rejects
            Promise.resolve().then(async () => await target(id, payload)).then(answer => {
              net.later(() => {
                if (!net.deliverable(peer, id)) return
                timer.cancel()
                resolve(answer ?? new Uint8Array(0))
              }, `${peer}>${id} ${protocol} answers`)
            }, err => {
              timer.cancel()
              reject(new RemoteError(err instanceof Error ? err.message : String(err), peer, protocol))
            })
          }, `${id}>${peer} ${protocol} requests`)
        })
      },
      async send (peer: string, protocol: string, payload: Uint8Array) {
        const target = net.route(state, peer, protocol)
        net.count(id, protocol)
        net.sendLog?.push({ from: id, to: peer, protocol: protocol.split('/')[3] ?? protocol, payload })
        if (net.isMuted(id, protocol, peer)) return
        // Written before a graceful stop, a one-way message still arrives (TCP sends the data
        // before it closes); a crash loses it.
        net.later(() => { if (net.deliverable(id, peer, true)) void Promise.resolve().then(async () => await target(id, payload)).catch(() => {}) }, `${id}>${peer} ${protocol}`)
      },
      async stop () {
        state.stopped = true
        for (const p of state.connected) net.nodes.get(p)?.connected.delete(id)
        state.connected.clear()
      }
    }
  }

  /** Cuts the link from `a` to `b` (both directions unless `oneWay`). */
  cutLink (a: string, b: string, oneWay = false): void {
    this.cut.add(`${a}>${b}`)
    if (!oneWay) this.cut.add(`${b}>${a}`)
  }

  /**
   * Drops everything `from` sends on the protocols named (e.g. `fold`, `sync`), its answers
   * included, from now on.
   */
  dropProtocols (from: string, names: readonly string[]): void {
    this.muted.set(from, new Set(names))
  }

  /**
   * Drops what `from` sends to `to` on the protocols named, its answers to `to`'s requests
   * included, from now on (a one-way fault of one link: `from` still reaches everyone else).
   */
  dropProtocolsTo (from: string, to: string, names: readonly string[]): void {
    this.mutedLinks.set(`${from}>${to}`, new Set(names))
  }

  private isMuted (from: string, protocol: string, to?: string): boolean {
    const name = protocol.split('/')[3] ?? ''
    return this.muted.get(from)?.has(name) === true || (to !== undefined && this.mutedLinks.get(`${from}>${to}`)?.has(name) === true)
  }

  /** Heals every cut link. */
  heal (): void {
    this.cut.clear()
  }

  /** The peer `id` crashes: it neither sends nor receives anything again. */
  crash (id: string): void {
    this.crashed.add(id)
  }

  private isCut (from: string, to: string): boolean {
    return this.cut.has(`${from}>${to}`)
  }

  private deliverable (from: string, to: string, sentBeforeStop = false): boolean {
    return !this.crashed.has(from) && !this.crashed.has(to) && !this.isCut(from, to) && this.nodes.get(to)?.stopped !== true && (sentBeforeStop || this.nodes.get(from)?.stopped !== true)
  }

  private route (state: NodeState, peer: string, protocol: string): ChannelHandler {
    if (this.crashed.has(state.id) || state.stopped) throw new PeerUnreachableError('this node is down', peer)
    if (!state.connected.has(peer)) throw new PeerUnreachableError(`not connected to ${peer}`, peer)
    const handler = this.nodes.get(peer)?.handlers.get(protocol)
    if (handler === undefined) throw new PeerUnreachableError(`cannot open ${protocol} to ${peer}: could not negotiate ${protocol}`, peer)
    return handler
  }

  /**
   * Starts recording one-way messages in the order they are sent (sender, receiver, protocol
   * name, payload) and returns the record, which grows as they are sent.
   */
  recordSends (): ReadonlyArray<{ readonly from: string, readonly to: string, readonly protocol: string, readonly payload: Uint8Array }> {
    this.sendLog = []
    return this.sendLog
  }

  private count (from: string, protocol: string): void {
    const name = protocol.split('/')[3] ?? protocol
    this.delivered.set(name, (this.delivered.get(name) ?? 0) + 1)
    let mine = this.sentBy.get(from)
    if (mine === undefined) { mine = new Map(); this.sentBy.set(from, mine) }
    mine.set(name, (mine.get(name) ?? 0) + 1)
  }

  /**
   * From now on every message and answer arrives after a delay drawn from `random`, 0 -
   * `maxMs` of simulated time, in the order sent on each link and protocol (as on one stream) but
   * not across them: what TCP and yamux may do to streams of one connection, and what different
   * connections may do to each other.
   */
  delay (random: Random, maxMs: number): void {
    this.delays = { random, maxMs }
  }

  /** Runs `fn` in a later turn, or, with {@link delay}, after its channel's delay. */
  private later (fn: () => void, channel?: string): void {
    if (this.delays === undefined || channel === undefined) { setImmediate(fn); return }
    const now = this.clock.now()
    const at = Math.max(now + Math.floor(this.delays.random.next() * (this.delays.maxMs + 1)), this.channelDue.get(channel) ?? 0)
    this.channelDue.set(channel, at)
    this.clock.setTimer(at - now, fn)
  }
}

interface NodeState {
  readonly id: string
  readonly handlers: Map<string, ChannelHandler>
  readonly topics: Map<string, GossipHandler>
  readonly connected: Set<string>
  readonly known: Set<string>
  readonly onConnect: Set<(peer: string) => void>
  stopped: boolean
}
