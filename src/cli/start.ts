/**
 * `legion start`: one peer of a cluster in this process, with its data in a directory
 * (`lmdbKeyValueStore`) and the admin endpoint on a port, until SIGINT or SIGTERM (then it
 * leaves the cluster) or until an operator makes it leave through the endpoint. The cluster's
 * state is a partition table (`--partitions`), or what an application module exports
 * (`--spec ./app.js`: `spec`, and `codecs` and `services` if it has them).
 *
 * @module
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { admin } from '../admin/service.js'
import type { FoldCodecs } from '../codec/eventfold.js'
import type { EventSpec } from '../eventfold/types.js'
import { partitionTableSpec } from '../partitions/partition-table.js'
import type { Legion, LegionOptions, StartupMode } from '../peer/options.js'
import type { ServiceMap } from '../peer/services.js'
import { startLegion } from '../peer/start.js'
import { lmdbKeyValueStore } from '../storage/lmdb-key-value.js'
import { CommandError, EXIT } from './client.js'
import { progress } from './progress.js'

/** The options of `legion start`, as commander parses them. */
export interface StartOptions {
  readonly cluster: string
  readonly new?: boolean
  readonly join?: string[]
  readonly recover?: boolean
  readonly auto?: boolean
  readonly found?: boolean
  readonly peers?: string[]
  readonly data?: string
  readonly listen?: string[]
  readonly partitions: string
  readonly spec?: string
  readonly admin: boolean
  readonly adminHost: string
  readonly adminPort: string
  readonly allowMutations?: boolean
  readonly json?: boolean
}

/** What an application module for `--spec` exports. */
interface AppModule {
  readonly spec?: EventSpec<unknown, unknown, unknown>
  readonly codecs?: FoldCodecs<unknown, unknown, unknown>
  readonly services?: ServiceMap
}

/** Runs `legion start`; resolves with the exit code once the peer stopped. */
export async function startCommand (o: StartOptions, out: (line: string) => void): Promise<number> {
  const startup = startupMode(o)
  const app = await loadApp(o)
  const adminPort = Number(o.adminPort)
  if (!Number.isInteger(adminPort) || adminPort < 0 || adminPort > 65535) throw new CommandError(`--admin-port must be a port number, got ${o.adminPort}`, EXIT.usage)
  const token = process.env.LEGION_ADMIN_TOKEN
  if (o.allowMutations === true && (token === undefined || token.length < 16)) {
    throw new CommandError('--allow-mutations needs the token in the environment variable LEGION_ADMIN_TOKEN (at least 16 characters)', EXIT.usage)
  }
  const bar = progress(3, o.json !== true)
  bar.update(0, 'opening the data directory')
  const storage = o.data !== undefined ? await lmdbKeyValueStore(resolve(o.data)) : undefined
  bar.update(1, startup.mode === 'new' ? 'founding the cluster' : startup.mode === 'recover' ? 'recovering' : 'joining')
  const services: ServiceMap = {
    ...app.services,
    ...(o.admin
      ? {
          admin: admin({
            host: o.adminHost,
            port: adminPort,
            ...(o.allowMutations === true ? { allowMutations: true, token } : {})
          })
        }
      : {})
  }
  const options = {
    cluster: o.cluster,
    spec: app.spec ?? partitionTableSpec(partitionCount(o.partitions)),
    ...(app.codecs !== undefined ? { codecs: app.codecs } : {}),
    startup,
    services,
    ...(storage !== undefined ? { storage } : {}),
    ...(o.listen !== undefined ? { listen: o.listen } : {})
  } as unknown as LegionOptions<unknown, unknown, unknown, ServiceMap>
  let peer: Legion<unknown, unknown, unknown, ServiceMap>
  try {
    peer = await startLegion(options)
  } catch (err) {
    bar.stop()
    throw new CommandError(`the peer could not start: ${(err as Error).name}: ${(err as Error).message}`, EXIT.failed)
  }
  bar.update(3, 'running')
  bar.stop()
  // Signals are handled before anything is printed: whoever reads the output may signal at once.
  const running = runUntilStopped(peer)
  const adminUrl = (peer.services as { admin?: { url: string | undefined } }).admin?.url
  if (o.json === true) {
    out(JSON.stringify({ self: peer.self, cluster: peer.clusterName, multiaddrs: peer.multiaddrs(), admin: adminUrl ?? null }))
  } else {
    out(`peer ${peer.self} of cluster ${JSON.stringify(peer.clusterName)} is running`)
    for (const a of peer.multiaddrs()) out(`  listening on ${a}`)
    if (adminUrl !== undefined) out(`  status page and admin endpoint: ${adminUrl}/`)
    out(`  another peer joins with: legion start --cluster ${shellWord(peer.clusterName)} --join ${peer.multiaddrs()[0] ?? '<address>'}`)
    out('  Ctrl-C leaves the cluster and stops')
  }
  return await running
}

/** Waits for a signal (then leaves) or for the peer to stop on its own (an operator's leave). */
async function runUntilStopped (peer: Legion<unknown, unknown, unknown, ServiceMap>): Promise<number> {
  const stopped = (async () => { for await (const _ of peer.changes()) { /* until the peer stops */ } })()
  let signals = 0
  const onSignal = (): void => {
    if (++signals > 1) process.exit(EXIT.failed) // a second Ctrl-C: do not wait for the goodbye
    void peer.stop().catch(() => {})
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    await stopped
    await peer.stop() // already under way or done; waits for it to finish
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  return EXIT.ok
}

function startupMode (o: StartOptions): StartupMode {
  const chosen = [o.new === true, o.join !== undefined, o.recover === true, o.auto === true].filter(Boolean).length
  if (chosen !== 1) throw new CommandError('say how to start: exactly one of --new, --join <multiaddr...>, --recover, --auto', EXIT.usage)
  if ((o.recover === true || o.auto === true) && o.data === undefined) throw new CommandError('--recover and --auto need --data <dir>', EXIT.usage)
  const peers = o.peers ?? []
  if (o.new === true) return { mode: 'new' }
  if (o.join !== undefined) return { mode: 'join', peers: [...o.join, ...peers] }
  if (o.recover === true) return { mode: 'recover', peers }
  return { mode: 'auto', peers, found: o.found === true }
}

function partitionCount (text: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > 65536) throw new CommandError(`--partitions must be an integer in [1, 65536], got ${text}`, EXIT.usage)
  return n
}

async function loadApp (o: StartOptions): Promise<AppModule> {
  if (o.spec === undefined) return {}
  let module: AppModule
  try {
    module = await import(pathToFileURL(resolve(o.spec)).href) as AppModule
  } catch (err) {
    throw new CommandError(`cannot load ${o.spec}: ${(err as Error).message}`, EXIT.usage)
  }
  if (typeof module.spec?.init !== 'function' || typeof module.spec.apply !== 'function') throw new CommandError(`${o.spec} must export spec, an EventSpec { init, apply }`, EXIT.usage)
  return module
}

function shellWord (s: string): string {
  return /^[\w.-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`
}
