/**
 * Soak test (`npm run test:soak`; not part of `npm test`, whose glob is `test/*.test.ts`).
 *
 * Three peers, each a separate OS process with durable LMDB storage (test/support/
 * process-cluster.ts), run under constant mixed load for LEGION_SOAK_SECONDS (default 180):
 * every 100 ms each peer gets an `applyFast`, up to 4 `applyConsistent` in flight, a `call`
 * to another peer every other tick and a `broadcall` every fifth. Halfway through, C is
 * killed with SIGKILL and restarted at once with `startup: { mode: 'recover' }`.
 *
 * The replicated state is the `ranges` spec of peer-process.ts: per writer, its events'
 * sequence numbers as intervals, so the state does not grow with the number of events and
 * any growth of the heap is the runtime's, not the data's.
 *
 * Every few seconds each process is sampled after a full GC (`memory`): live heap, rss,
 * active handles and resources, open streams, outstanding events. Checks:
 * - all peers converge once the load stops (same infimum, nothing outstanding, all three
 *   participants); every `applyConsistent` that resolved is in the final state, with a
 *   distinct output, and no event was folded twice;
 * - heap: per process (C's two incarnations apart), after a warm-up, the median live heap
 *   of the last third is at most 1.25 × that of the first third (see `HEAP_RATIO`);
 * - handles: the number of active handles, lasting resources (sockets, servers, pipes) and
 *   open streams during the last third is no higher than during the first third; the timers
 *   and immediates of calls in flight come and go with the load, so for them the medians of
 *   the thirds are compared (a maximum compared a transient: a sample that caught more calls
 *   in flight once failed the run with "resourcesTotal grew from 13 to 17", although every
 *   count was back to its baseline after the load); once the load stops and the peers have
 *   converged, handles and resources are back to what they were before the load began, and
 *   open streams (reused, one per peer and protocol) no more than during the load.
 * Prints a summary, writes every sample to bench/results/soak.json.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PeerProcess, converged, killAll, startCluster, waitFor } from '../support/process-cluster.js'
import type { Ranges } from '../support/peer-process.js'

const SECONDS = Number(process.env.LEGION_SOAK_SECONDS ?? 180)
/** How many times C is killed and recovered, evenly spread over the run (default once, midway). */
const RESTARTS = Number(process.env.LEGION_SOAK_RESTARTS ?? 1)
const TICK_MS = 100
const MAX_CONSISTENT_IN_FLIGHT = 4
const CONSISTENT_TIMEOUT_MS = 5000
const CALL_TIMEOUT_MS = 3000
/** Sampling period: about 45 samples per run, 1-5 s apart. */
const SAMPLE_MS = Math.min(5000, Math.max(1000, Math.round(SECONDS * 1000 / 45)))
/** Samples of a process's first `WARMUP_MS` are left out of the heap and handle trends. */
const WARMUP_MS = Math.max(10_000, SECONDS * 1000 * 0.15)
/**
 * Largest accepted ratio of the last third's median live heap to the first third's. The
 * samples are taken after a full GC, so garbage does not count: what remains is the live
 * set, which for a bounded state should be flat up to in-flight work (pending calls, batches,
 * buffers), a few percent here. 1.25 leaves room for that noise and still fails a leak that
 * adds a quarter of the baseline over two thirds of the run (at a ~25 MB baseline and 3
 * minutes, about 50 KB/s, i.e. a few hundred bytes per event).
 */
const HEAP_RATIO = 1.25
/** Slack on handle and resource counts between two quiet moments (a heartbeat or sync request in flight). */
const HANDLE_SLACK = 3

interface Memory {
  heapUsedRaw: number
  heapUsed: number
  heapTotal: number
  rss: number
  external: number
  arrayBuffers: number
  /** Used bytes per V8 heap space (old_space, code_space, ...). */
  spaces: Record<string, number>
  handles: number
  requests: number
  resources: Record<string, number>
  openStreams: number
  connectedPeers: number
  outstanding: number
  eventsApplied: number
}
interface Sample extends Memory {
  /** Seconds since the load began (negative: before). */
  t: number
  peer: string
  /** 0 for the first process of a peer, k for C after its k-th restart. */
  incarnation: number
  phase: 'before' | 'load' | 'after'
  resourcesTotal: number
  /** Resources that are not timers or immediates: sockets, servers, pipes. */
  lastingResources: number
}
interface ConsistentCall { peer: string, event: string, output?: number, error?: string }

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2 }
const mb = (bytes: number): string => (bytes / 1048576).toFixed(1)
const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0)
const errorName = (err: unknown): string => (err as Error).message.split(':')[0] ?? 'Error'
// Interrupted (Ctrl-C, the runner's timeout): take the children down too ('exit' alone misses signals).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => { killAll(); process.exit(130) })

test(`soak: three peers with durable storage under mixed load for ${SECONDS} s, one restarted, stay bounded and converge`, { timeout: (SECONDS + 240) * 1000 }, async (t) => {
  const dirs = await Promise.all([0, 1, 2].map(async () => await mkdtemp(join(tmpdir(), 'legion-soak-'))))
  t.after(async () => { await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) })) })
  const current = await startCluster(t, 3, i => ({ storage: dirs[i]!, summary: true, spec: 'ranges' }))
  const names = current.map(p => p.name)
  const incarnation = [0, 0, 0]
  const samples: Sample[] = []
  let loadStart = Date.now()

  const sample = async (i: number, phase: Sample['phase']): Promise<Sample | undefined> => {
    const p = current[i]!
    if (p.exit !== undefined || p.self === '') return undefined
    const inc = incarnation[i]!
    try {
      const m = await p.command<Memory>('memory')
      const s: Sample = { t: (Date.now() - loadStart) / 1000, peer: p.name, incarnation: inc, phase, ...m, resourcesTotal: total(m.resources), lastingResources: total(m.resources) - (m.resources.Timeout ?? 0) - (m.resources.Immediate ?? 0) }
      samples.push(s)
      return s
    } catch (err) {
      if (p.exit !== undefined) return undefined // killed while sampling
      throw err
    }
  }
  const sampleAll = async (phase: Sample['phase']): Promise<void> => { await Promise.all(names.map(async (_, i) => { await sample(i, phase) })) }

  // Quiet baseline: the cluster has formed and converged, nothing applied yet.
  await sampleAll('before')

  // ---- Load: a fixed-rate loop; every command's reply is awaited on its own, with a deadline.
  const calls: ConsistentCall[] = []
  const inFlight = [0, 0, 0]
  const fastSeq = [0, 0, 0]
  const consistentSeq = [0, 0, 0]
  const counts = { fastOk: 0, fastFailed: 0, callOk: 0, callFailed: 0, broadcalls: 0, broadcallAnswers: 0, broadcallMissing: 0 }
  const failures = new Map<string, number>()
  const fail = (what: string, err: unknown): void => { const k = `${what} ${errorName(err)}`; failures.set(k, (failures.get(k) ?? 0) + 1) }
  const settling = new Set<Promise<void>>()
  const track = (promise: Promise<void>): void => { settling.add(promise); void promise.finally(() => settling.delete(promise)) }
  let tick = 0
  let lastTickAt = Date.now()
  const up = (i: number): PeerProcess | undefined => { const p = current[i]!; return p.exit === undefined && p.self !== '' ? p : undefined }

  const onTick = (): void => {
    tick++
    lastTickAt = Date.now()
    for (let i = 0; i < 3; i++) {
      const p = up(i)
      if (p === undefined) continue
      const name = names[i]!
      const fastId = p.send('applyFast', { event: `${name}-f-${++fastSeq[i]!}` })
      track(p.reply(fastId).then(() => { counts.fastOk++ }, err => { counts.fastFailed++; fail('applyFast', err) }))
      if (inFlight[i]! < MAX_CONSISTENT_IN_FLIGHT) {
        inFlight[i]!++
        const call: ConsistentCall = { peer: name, event: `${name}-c-${++consistentSeq[i]!}` }
        calls.push(call)
        const id = p.send('applyConsistent', { event: call.event, timeoutMs: CONSISTENT_TIMEOUT_MS })
        track(p.reply<number>(id, CONSISTENT_TIMEOUT_MS + 20_000).then(
          output => { call.output = output },
          err => { call.error = errorName(err) }
        ).finally(() => { inFlight[i]!-- }))
      }
      if (tick % 2 === i % 2) {
        const target = current[(i + 1 + (tick % 2)) % 3]!
        if (target.self !== '') {
          const payload = `${name}-${tick}`
          track(p.reply<string>(p.send('call', { peer: target.self, payload, timeoutMs: CALL_TIMEOUT_MS }), CALL_TIMEOUT_MS + 20_000).then(
            reply => { assert.equal(reply, payload, 'call echoes'); counts.callOk++ },
            err => { counts.callFailed++; fail('call', err) }))
        }
      }
      if (tick % 5 === i) {
        track(p.reply<{ answered: number, missing: number }>(p.send('broadcall', { payload: `${name}-b-${tick}`, timeoutMs: CALL_TIMEOUT_MS }), CALL_TIMEOUT_MS + 20_000).then(
          r => { counts.broadcalls++; counts.broadcallAnswers += r.answered; counts.broadcallMissing += r.missing },
          err => { fail('broadcall', err) }))
      }
    }
  }

  let sampling: Promise<void> | undefined
  const restarts: Array<{ killedAt: number, readyAt?: number, firstFoldAt?: number, othersFoldAt?: number, ejected?: boolean }> = []
  const loadTimer = setInterval(onTick, TICK_MS)
  const sampleTimer = setInterval(() => { sampling ??= sampleAll('load').finally(() => { sampling = undefined }) }, SAMPLE_MS)
  const stopTimers = (): void => { clearInterval(loadTimer); clearInterval(sampleTimer) }
  t.after(stopTimers)
  loadStart = Date.now()
  const loadEnd = loadStart + SECONDS * 1000

  try {
    // ---- Midway (or at k/(RESTARTS+1) of the run): SIGKILL C, restart it at once from its storage.
    for (let k = 1; k <= RESTARTS; k++) {
      await delay(Math.max(0, loadStart + SECONDS * 1000 * k / (RESTARTS + 1) - Date.now())) // the fault's timing, not synchronisation
      const victim = current[2]!
      await victim.kill()
      const restart: (typeof restarts)[number] = { killedAt: Date.now() }
      restarts.push(restart)
      const resolvedBefore = (peer: string): number => calls.filter(c => c.peer === peer && c.output !== undefined).length
      const seenA = resolvedBefore('A')
      const seenC = resolvedBefore('C')
      incarnation[2] = k
      current[2] = new PeerProcess('C', { cluster: victim.env.cluster, storage: dirs[2]!, recover: [current[0]!.address, current[1]!.address], summary: true, spec: 'ranges' })
      await current[2].ready()
      restart.readyAt = Date.now()
      assert.equal(current[2].self, victim.self, 'recovered under the same peer id')
      await waitFor(() => resolvedBefore('C') > seenC || undefined, 'the restarted C to resolve an applyConsistent', 60_000)
      restart.firstFoldAt = Date.now()
      await waitFor(() => resolvedBefore('A') > seenA + 2 || undefined, 'A to resolve applyConsistent again', 60_000)
      restart.othersFoldAt = Date.now()
      restart.ejected = await current[2].command<{ counters: { rejoins: number } }>('stats').then(s => s.counters.rejoins > 0)
    }

    // ---- Run to the end, then stop the load and let everything in flight settle.
    await delay(Math.max(0, loadEnd - Date.now())) // the run's length, not synchronisation
  } finally {
    stopTimers()
  }
  const stoppedAt = lastTickAt
  await waitFor(() => (settling.size === 0 && sampling === undefined) || undefined, 'every command in flight to settle', CONSISTENT_TIMEOUT_MS + 25_000)
  const state = await converged(current, 'after the load', () => true, 60_000)
  const convergenceMs = Date.now() - stoppedAt
  await sampleAll('after')

  // ---- Checks on the history.
  const finals = await Promise.all(current.map(async p => (await p.command<{ infimum: Ranges }>('readState')).infimum))
  for (const [i, f] of finals.entries()) assert.deepEqual(f, finals[0], `${names[i]}'s final state`)
  const final = finals[0]!
  assert.equal(final.duplicates, 0, 'no event folded twice')
  const size = (writer: string): number => (final.writers[writer] ?? []).reduce((a, [lo, hi]) => a + hi - lo + 1, 0)
  assert.equal(Object.keys(final.writers).reduce((a, w) => a + size(w), 0), final.n, 'n counts the distinct events')
  const has = (event: string): boolean => {
    const dash = event.lastIndexOf('-')
    const seq = Number(event.slice(dash + 1))
    return (final.writers[event.slice(0, dash)] ?? []).some(([lo, hi]) => lo <= seq && seq <= hi)
  }
  const resolved = calls.filter(c => c.output !== undefined)
  for (const c of resolved) assert.ok(has(c.event), `${c.event} resolved (output ${c.output}) and is in the final state`)
  const outputs = resolved.map(c => c.output!)
  assert.equal(new Set(outputs).size, outputs.length, 'resolved calls have distinct outputs')
  assert.ok(outputs.every(o => o >= 0 && o < final.n), 'every output is an index below n')
  const unexpected = [...failures.keys()].filter(k => !/^(applyFast|call|broadcall) (PeerExited|EjectedError|TimeoutError|PeerUnreachableError|RemoteError|StreamError|NotParticipantError)/.test(k))
  for (const c of calls) if (c.error !== undefined && !['ConsistencyTimeoutError', 'EjectedError', 'PeerExited'].includes(c.error)) unexpected.push(`applyConsistent ${c.error}`)
  assert.deepEqual(unexpected, [], 'no unexpected failure')
  const fastInState = names.reduce((a, n) => a + size(`${n}-f`), 0)

  // ---- Checks on the samples, per process (C before and after its restart apart).
  const processes = [...new Set(samples.map(s => `${s.peer}#${s.incarnation}`))]
  const rows: Array<Record<string, string | number>> = []
  const verdicts: string[] = []
  /** Failed checks on the samples: reported after the summary is written, so a failing run still leaves its numbers. */
  const problems: string[] = []
  const check = (ok: boolean, message: string): void => { if (!ok) problems.push(message) }
  for (const key of processes) {
    const own = samples.filter(s => `${s.peer}#${s.incarnation}` === key)
    const load = own.filter(s => s.phase === 'load')
    const born = own[0]!.t
    const steady = load.filter(s => s.t - Math.max(born, 0) >= WARMUP_MS / 1000)
    const third = Math.floor(steady.length / 3)
    const first = steady.slice(0, third)
    const last = steady.slice(steady.length - third)
    const before = own.find(s => s.phase === 'before')
    const after = own.find(s => s.phase === 'after')
    const row: Record<string, string | number> = {
      process: key,
      samples: own.length,
      'heap first (MB)': third > 0 ? mb(median(first.map(s => s.heapUsed))) : '-',
      'heap last (MB)': third > 0 ? mb(median(last.map(s => s.heapUsed))) : '-',
      'heap max (MB)': mb(Math.max(...own.map(s => s.heapUsed))),
      'rss first/last (MB)': third > 0 ? `${mb(median(first.map(s => s.rss)))}/${mb(median(last.map(s => s.rss)))}` : '-',
      'handles before/first/last/after': [before?.handles ?? '-', third > 0 ? Math.max(...first.map(s => s.handles)) : '-', third > 0 ? Math.max(...last.map(s => s.handles)) : '-', after?.handles ?? '-'].join('/'),
      'resources before/first/last/after': [before?.resourcesTotal ?? '-', third > 0 ? Math.max(...first.map(s => s.resourcesTotal)) : '-', third > 0 ? Math.max(...last.map(s => s.resourcesTotal)) : '-', after?.resourcesTotal ?? '-'].join('/'),
      'streams before/max/after': [before?.openStreams ?? '-', Math.max(...load.map(s => s.openStreams)), after?.openStreams ?? '-'].join('/'),
      'outstanding max/after': `${Math.max(...load.map(s => s.outstanding))}/${after?.outstanding ?? '-'}`
    }
    rows.push(row)
    if (third >= 3) {
      const ratio = median(last.map(s => s.heapUsed)) / median(first.map(s => s.heapUsed))
      const bySpace = Object.keys(first[0]!.spaces)
        .map(space => [space, median(last.map(s => s.spaces[space] ?? 0)) - median(first.map(s => s.spaces[space] ?? 0))] as const)
        .filter(([, d]) => Math.abs(d) >= 64 * 1024)
        .map(([space, d]) => `${space} ${d > 0 ? '+' : ''}${Math.round(d / 1024)} KB`)
      // Least-squares slope of the live heap over the steady samples.
      const ts = steady.map(s => s.t)
      const hs = steady.map(s => s.heapUsed)
      const tm = ts.reduce((a, b) => a + b, 0) / ts.length
      const hm = hs.reduce((a, b) => a + b, 0) / hs.length
      const slope = ts.reduce((a, x, j) => a + (x - tm) * (hs[j]! - hm), 0) / ts.reduce((a, x) => a + (x - tm) ** 2, 0)
      verdicts.push(`${key}: heap last/first third ${ratio.toFixed(2)} (${bySpace.join(', ') || 'no space moved 64 KB'}), slope ${(slope * 60 / 1024).toFixed(0)} KB/min`)
      check(ratio <= HEAP_RATIO, `${key}: live heap grew ${ratio.toFixed(2)}x from the first third to the last (limit ${HEAP_RATIO})`)
      for (const field of ['handles', 'lastingResources', 'openStreams'] as const) {
        const a = Math.max(...first.map(s => s[field]))
        const b = Math.max(...last.map(s => s[field]))
        check(b <= a + HANDLE_SLACK, `${key}: ${field} grew from ${a} (first third) to ${b} (last third)`)
      }
      const transientFirst = median(first.map(s => s.resourcesTotal - s.lastingResources))
      const transientLast = median(last.map(s => s.resourcesTotal - s.lastingResources))
      check(transientLast <= transientFirst + HANDLE_SLACK, `${key}: timers and immediates grew from a median of ${transientFirst} (first third) to ${transientLast} (last third)`)
    }
    if (after !== undefined) {
      check(after.outstanding === 0, `${key}: ${after.outstanding} outstanding after the load`)
      // Streams are reused, one per peer and protocol, and stay open: the quiet cluster before the
      // load had not opened those of calls and outputs yet, so the bound is the load's, not the baseline's.
      check(after.openStreams <= Math.max(...load.map(s => s.openStreams)), `${key}: ${after.openStreams} open streams after the load, at most ${Math.max(...load.map(s => s.openStreams))} during it`)
      // The restarted C has no quiet baseline of its own; its first incarnation's stands in (same role, same code).
      const base = before ?? samples.find(s => s.peer === own[0]!.peer && s.phase === 'before')
      if (base !== undefined) {
        for (const field of ['handles', 'resourcesTotal'] as const) {
          check(after[field] <= base[field] + HANDLE_SLACK, `${key}: ${field} ${after[field]} after the load, ${base[field]} before it`)
        }
        check(after.heapUsed <= base.heapUsed * 2 + 8 * 1048576, `${key}: live heap ${mb(after.heapUsed)} MB after the load, ${mb(base.heapUsed)} MB before it`)
      }
    }
  }

  // ---- Summary and samples.
  const applied = resolved.length + counts.fastOk
  const summary = {
    seconds: SECONDS,
    sampleMs: SAMPLE_MS,
    warmupMs: WARMUP_MS,
    events: {
      applyConsistentSent: calls.length,
      applyConsistentResolved: resolved.length,
      applyConsistentFailed: Object.fromEntries(['ConsistencyTimeoutError', 'EjectedError', 'PeerExited'].map(e => [e, calls.filter(c => c.error === e).length])),
      applyFastOk: counts.fastOk,
      applyFastFailed: counts.fastFailed,
      applyFastInFinalState: fastInState,
      finalStateEvents: final.n,
      perSecond: Math.round(applied / SECONDS)
    },
    calls: { ok: counts.callOk, failed: counts.callFailed, broadcalls: counts.broadcalls, broadcallAnswers: counts.broadcallAnswers, broadcallMissing: counts.broadcallMissing },
    failures: Object.fromEntries(failures),
    restarts: restarts.map(r => ({
      atSeconds: Math.round((r.killedAt - loadStart) / 1000),
      readyMs: (r.readyAt ?? NaN) - r.killedAt,
      firstFoldMs: (r.firstFoldAt ?? NaN) - r.killedAt,
      othersFoldAgainMs: (r.othersFoldAt ?? NaN) - r.killedAt,
      ejected: r.ejected
    })),
    convergenceMs,
    finalInfimumId: state.infimumId,
    verdicts,
    problems,
    processes: rows
  }
  const file = fileURLToPath(new URL('../../bench/results/soak.json', import.meta.url))
  await mkdir(join(file, '..'), { recursive: true })
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, summary, samples }, null, 1) + '\n')

  const lines = [
    `duration ${SECONDS} s, samples every ${SAMPLE_MS} ms after a full GC, warm-up ${Math.round(WARMUP_MS / 1000)} s`,
    `applyConsistent: ${calls.length} sent, ${resolved.length} resolved (all in the final state), failed ${JSON.stringify(summary.events.applyConsistentFailed)}`,
    `applyFast: ${counts.fastOk} applied (${fastInState} in the final state), ${counts.fastFailed} failed; final state: ${final.n} events; ${summary.events.perSecond} events/s`,
    `call: ${counts.callOk} ok, ${counts.callFailed} failed; broadcall: ${counts.broadcalls} (${counts.broadcallAnswers} answers, ${counts.broadcallMissing} missing)`,
    ...summary.restarts.map(r => `restart of C at ${r.atSeconds} s: ready after ${r.readyMs} ms, folding again after ${r.firstFoldMs} ms (A after ${r.othersFoldAgainMs} ms)${r.ejected === true ? ', ejected and rejoined' : ', not ejected'}`),
    `converged ${convergenceMs} ms after the last command was sent; other failures: ${JSON.stringify(summary.failures)}`,
    verdicts.join('; ')
  ]
  const headers = Object.keys(rows[0]!)
  const table = [headers, ...rows.map(r => headers.map(h => String(r[h])))]
  const widths = headers.map((_, c) => Math.max(...table.map(r => r[c]!.length)))
  for (const r of table) lines.push(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '))
  for (const l of lines) t.diagnostic(l)
  process.stderr.write(lines.join('\n') + '\n')
  assert.deepEqual(problems, [], 'heap, handles and streams stay bounded')

  await Promise.all(current.map(async p => { await p.stop() }))
})
