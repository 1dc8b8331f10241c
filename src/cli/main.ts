#!/usr/bin/env node
/**
 * The `legion` command: `legion start` runs a peer; every other command talks to a running
 * peer's admin endpoint over HTTP (`--url`, or `LEGION_ADMIN_URL`), printing tables for people
 * or, with `--json`, the endpoint's own JSON for scripts. Exit codes are in `client.ts` (`EXIT`)
 * and docs/ADMIN.md. Only `start` loads the peer's code (libp2p, LMDB); the others stay light.
 *
 * @module
 */
import { Command, CommanderError, Option } from 'commander'
import { LEGION_VERSION } from '../version.js'
import { AdminClient, CommandError, EXIT } from './client.js'
import { duration, ranges, table, viewText } from './format.js'
import { progress } from './progress.js'

interface GlobalOptions {
  readonly url: string
  readonly token?: string
  readonly json?: boolean
  readonly timeout: string
}

const out = (line: string): void => { process.stdout.write(line + '\n') }

function program (): Command {
  const p = new Command('legion')
    .description('Run a Legion peer, or look at and operate a running one through its admin endpoint.')
    .version(LEGION_VERSION)
    .addOption(new Option('--url <url>', 'the admin endpoint of the peer to talk to').env('LEGION_ADMIN_URL').default('http://127.0.0.1:9000'))
    .addOption(new Option('--token <token>', 'bearer token for mutations').env('LEGION_ADMIN_TOKEN'))
    .option('--json', 'print JSON for scripts instead of tables')
    .option('--timeout <ms>', 'how long to wait for the endpoint', '15000')
    .showHelpAfterError()
    .exitOverride()

  p.command('start')
    .description('run one peer of a cluster until Ctrl-C (which leaves the cluster)')
    .requiredOption('--cluster <name>', 'the cluster\'s name')
    .option('--new', 'found a new cluster')
    .option('--join <multiaddr...>', 'join through these peers')
    .option('--recover', 'resume from --data as the same participant')
    .option('--auto', 'recover if --data holds this peer, else join --peers (or found, with --found)')
    .option('--found', 'with --auto: found a new cluster when no peer answers')
    .option('--peers <multiaddr...>', 'peers to reconnect (or join) through')
    .option('--data <dir>', 'data directory (LMDB); without it the peer keeps nothing')
    .option('--listen <multiaddr...>', 'libp2p addresses to listen on (default: 127.0.0.1, a free TCP port)')
    .option('--partitions <n>', 'the cluster\'s state: a partition table of n partitions', '16')
    .option('--spec <module>', 'the cluster\'s state from an ES module exporting spec (and codecs, services)')
    .option('--admin-host <host>', 'admin endpoint interface', '127.0.0.1')
    .option('--admin-port <port>', 'admin endpoint port (0: any free one)', '9000')
    .option('--no-admin', 'no admin endpoint')
    .option('--allow-mutations', 'allow leave, eject, move and commit through the endpoint (token from LEGION_ADMIN_TOKEN)')
    .action(async (options, command: Command) => {
      const { startCommand } = await import('./start.js')
      const globals = command.optsWithGlobals<GlobalOptions>()
      process.exitCode = await startCommand({ ...options, json: globals.json }, out)
    })

  p.command('status').description('the peer, its readiness and a summary of the cluster').action(async (_o, command: Command) => {
    const { client, json } = connect(command)
    const s = await client.expect('GET', '/status') as Record<string, unknown>
    if (json) { out(JSON.stringify(s)); return }
    out(`peer      ${String(s.self)}`)
    out(`cluster   ${String(s.cluster)} (legion ${String(s.version)}, protocol ${String(s.protocol)})`)
    out(`phase     ${String(s.phase)}${s.ready === true ? ', ready' : ', not ready'}`)
    if (s.members !== undefined) {
      out(`members   ${String(s.members)} (${String(s.suspected)} suspected, ${String(s.stuck)} stuck, ${String(s.divergent)} behind)`)
      out(`events    ${String(s.outstanding)} outstanding`)
      const h = s.health as { kind: string, reason?: string }
      out(`health    ${h.kind}${h.reason !== undefined ? `: ${h.reason}` : ''}`)
      const cut = s.cannotReach as string[] | undefined
      if (cut !== undefined && cut.length > 0) out(`rejoin    refused until it reaches ${cut.join(', ')}`)
    }
    for (const a of s.addresses as string[]) out(`address   ${a}`)
  })

  p.command('ready').description('exit 0 if the peer is ready, 7 if not')
    .option('--wait <seconds>', 'wait up to this long for it to become ready', '0')
    .action(async (o: { wait: string }, command: Command) => {
      const { client, json } = connect(command)
      const deadline = performance.now() + Number(o.wait) * 1000
      for (;;) {
        const answer = await client.get('/ready')
        const ready = answer.status === 200
        if (ready || performance.now() >= deadline) {
          if (json) out(JSON.stringify(answer.body))
          else out(ready ? 'ready' : `not ready: ${((answer.body as { checks?: Array<{ ok: boolean, reason?: string }> })?.checks ?? []).filter(c => !c.ok).map(c => c.reason).join('; ')}`)
          if (!ready) process.exitCode = EXIT.notReady
          return
        }
        await new Promise(resolve => setTimeout(resolve, 250))
      }
    })

  p.command('members').description('the members, with suspected, stuck and lagging peers and for how long, and broken links').action(async (_o, command: Command) => {
    const { client, json } = connect(command)
    const m = await client.expect('GET', '/members') as { members: Array<{ peer: string, self: boolean, status: string, silentForMs?: number, stuck?: { sinceProgressMs: number, reason: string | null }, unreachable?: string[], divergent?: { sinceProgressMs: number } }> }
    if (json) { out(JSON.stringify(m)); return }
    out(table(['PEER', 'STATUS', 'SILENT', 'STUCK', 'BEHIND', 'CANNOT REACH'], m.members.map(x => [
      x.peer + (x.self ? ' (this)' : ''),
      x.status,
      duration(x.silentForMs),
      x.stuck !== undefined ? `${duration(x.stuck.sinceProgressMs)}${x.stuck.reason !== null ? ` (${x.stuck.reason})` : ''}` : '',
      x.divergent !== undefined ? duration(x.divergent.sinceProgressMs) : '',
      // The end of a peer id is what tells peers apart in a column; the PEER column has it whole.
      (x.unreachable ?? []).map(p => `…${p.slice(-10)}`).join(', ')
    ])))
  })

  p.command('partitions').description('the partition table: owners and partitions').action(async (_o, command: Command) => {
    const { client, json } = connect(command)
    const t = await client.expect('GET', '/partitions') as { partitions: number, version: number, settledVersion: number, balanced: boolean, byOwner: Record<string, number[]> }
    if (json) { out(JSON.stringify(t)); return }
    out(`partition table version ${t.version}${t.settledVersion !== t.version ? ` (settled: ${t.settledVersion})` : ''}: ${t.partitions} partitions, ${t.balanced ? 'balanced' : 'unbalanced'}`)
    out(table(['OWNER', 'COUNT', 'PARTITIONS'], Object.entries(t.byOwner).map(([owner, ps]) => [owner, String(ps.length), ranges(ps)])))
  })

  p.command('eject').description('remove a member from the cluster (needs mutations and the token)').argument('<peer>', 'the member\'s peer id')
    .action(async (peer: string, _o, command: Command) => {
      const { client, json } = connect(command)
      const r = await client.expect('POST', `/members/${encodeURIComponent(peer)}/eject`) as { reached: string[], unreachable: string[] }
      if (json) { out(JSON.stringify(r)); return }
      out(`ejected ${peer}: ${r.reached.length} member(s) merged it${r.unreachable.length > 0 ? `, not reached: ${r.unreachable.join(', ')}` : ''}`)
    })

  p.command('leave').description('make the peer leave the cluster and stop (needs mutations and the token)').action(async (_o, command: Command) => {
    const { client, json, globals } = connect(command)
    const r = await client.expect('POST', '/leave') as { leaving: string }
    await waitUntilGone(client, Number(globals.timeout), json)
    if (json) out(JSON.stringify({ left: r.leaving })); else out(`${r.leaving} left the cluster`)
  })

  const change = (type: string, args: string[]): unknown => {
    const need = (n: number, usage: string): void => { if (args.length !== n) throw new CommandError(`usage: ${usage}`, EXIT.usage) }
    switch (type) {
      case 'join': need(1, 'join <peer>'); return { type, peer: args[0] }
      case 'leave': need(1, 'leave <peer>'); return { type, peer: args[0] }
      case 'move': need(2, 'move <partition> <peer>'); return { type, partition: Number(args[0]), to: args[1] }
      case 'rebalance': need(0, 'rebalance'); return { type }
      case 'configure': need(1, 'configure <partitions>'); return { type, partitions: Number(args[0]) }
      default: throw new CommandError(`unknown change ${JSON.stringify(type)}: join, leave, move, rebalance or configure`, EXIT.usage)
    }
  }
  const changeHelp = 'join <peer> | leave <peer> | move <partition> <peer> | rebalance | configure <partitions>'

  p.command('views').description('the views the peer\'s services offer (a keyspace\'s partitions and handoffs, discovery\'s holders...)').action(async (_o, command: Command) => {
    const { client, json } = connect(command)
    const v = await client.expect('GET', '/views') as { views: Array<{ name: string, title: string, plans?: boolean }> }
    if (json) { out(JSON.stringify(v)); return }
    out(table(['NAME', 'TITLE', 'PLANS'], v.views.map(x => [x.name, x.title, x.plans === true ? 'yes' : ''])))
  })

  p.command('view').description('one view of a service, as tables').argument('<name>', '<service>/<view>, as `legion views` lists them')
    .action(async (name: string, _o, command: Command) => {
      const { client, json } = connect(command)
      const parts = name.split('/')
      if (parts.length !== 2 || parts.some(x => x === '')) throw new CommandError(`a view is named <service>/<view>, got ${JSON.stringify(name)}`, EXIT.usage)
      const v = await client.expect('GET', `/views/${parts.map(encodeURIComponent).join('/')}`) as { title: string, data: unknown }
      if (json) { out(JSON.stringify(v)); return }
      out(`${v.title} (${name})`)
      out(viewText(v.data))
    })

  p.command('moves').description('wait until a keyspace has no partition move in flight (a progress bar on a terminal)')
    .argument('<service>', 'the keyspace, by the name it runs under')
    .action(async (service: string, _o, command: Command) => {
      const { client, json, globals } = connect(command)
      const table = await waitForMoves(client, service, Number(globals.timeout), json)
      if (json) { out(JSON.stringify(table)); return }
      out(`${service}: no move in flight at table version ${table.version} (${table.members} members, ${table.partitions} partitions)`)
    })

  p.command('plan').description('show which partitions a change would move, without changing anything')
    .argument('<change>', changeHelp).argument('[args...]')
    .option('--service <name>', 'plan a service\'s own layout (a keyspace) instead of the cluster\'s partition table: join <peer> or leave <peer>')
    .action(async (type: string, args: string[], o: { service?: string }, command: Command) => {
      const { client, json } = connect(command)
      if (o.service !== undefined) {
        if ((type !== 'join' && type !== 'leave') || args.length !== 1) throw new CommandError('usage: plan join <peer> --service <name> | plan leave <peer> --service <name>', EXIT.usage)
        const plan = await client.expect('GET', `/services/${encodeURIComponent(o.service)}/plan?${type}=${encodeURIComponent(args[0]!)}`) as ServicePlan
        if (json) { out(JSON.stringify(plan)); return }
        printServicePlan(plan)
        return
      }
      const plan = await client.expect('POST', '/plan', change(type, args)) as Plan
      if (json) { out(JSON.stringify(plan)); return }
      printPlan(plan)
      if (type !== 'join') out(`commit it with: legion commit ${[type, ...args].join(' ')} --at ${plan.version}`)
    })

  p.command('commit').description('carry out a change (needs mutations and the token); with --at, only if the table is still at that version')
    .argument('<change>', changeHelp).argument('[args...]')
    .option('--at <version>', 'the table version the plan was made at (default: plan now and commit that)')
    .option('--service <name>', '(refused: a keyspace rebalances by itself; commit the membership change instead)')
    .action(async (type: string, args: string[], o: { at?: string, service?: string }, command: Command) => {
      if (o.service !== undefined) throw new CommandError(`${o.service}'s layout follows the membership: commit the membership change itself (legion eject <peer>, legion leave, or start the new peer); legion plan ... --service ${o.service} shows what it moves`, EXIT.usage)
      const { client, json, globals } = connect(command)
      const body = change(type, args)
      const bar = progress(3, !json)
      let version = o.at !== undefined ? Number(o.at) : undefined
      if (version === undefined) {
        bar.update(0, 'planning')
        const plan = await client.expect('POST', '/plan', body) as Plan
        version = plan.version
      }
      bar.update(1, 'committing: waiting for every member to acknowledge')
      const answer = await client.post('/commit', { change: body, version })
      if (answer.status === 202) {
        bar.update(2, 'leaving')
        await waitUntilGone(client, Number(globals.timeout), true)
      }
      bar.update(3, 'done')
      bar.stop()
      if (answer.status >= 300) {
        const b = answer.body as { error?: string, message?: string } | undefined
        throw new CommandError(`commit: ${answer.status} ${b?.error ?? ''}: ${b?.message ?? ''}`, exitCode(answer.status), answer.body)
      }
      if (json) { out(JSON.stringify(answer.body)); return }
      const r = answer.body as { planned?: PartitionMoveRow[], output?: unknown, version?: number, leaving?: string, ejected?: string }
      if (r.leaving !== undefined) { out(`${r.leaving} left the cluster`); return }
      out(`committed${r.version !== undefined ? `; table now at version ${r.version}` : ''}${r.ejected !== undefined ? `; ejected ${r.ejected}` : ''}`)
      if (r.planned !== undefined) out(moves(r.planned))
    })

  p.command('metrics').description('the peer\'s Prometheus metrics, as text').action(async (_o, command: Command) => {
    const { client } = connect(command)
    const answer = await client.get('/metrics')
    if (answer.status !== 200) throw new CommandError(`GET /metrics: ${answer.status}`, exitCode(answer.status))
    process.stdout.write(answer.text)
  })
  return p
}

interface PartitionMoveRow { partition: number, from: string | null, to: string | null }
interface Plan { version: number, change: { type: string }, moves: PartitionMoveRow[], after: { partitions: number, balanced: boolean, owned: Record<string, number> } }

function printPlan (plan: Plan): void {
  out(`plan at table version ${plan.version}: ${plan.change.type} moves ${plan.moves.length} partition(s)`)
  if (plan.moves.length > 0) out(moves(plan.moves))
  out(`afterwards: ${plan.after.partitions} partitions, ${plan.after.balanced ? 'balanced' : 'unbalanced'}`)
  out(table(['OWNER', 'PARTITIONS'], Object.entries(plan.after.owned).map(([o, n]) => [o, String(n)])))
}

interface ServicePlan {
  service: string
  version: number
  change: { type: string, peer: string }
  moves: Array<{ partition: number, generation: number, adding: string[], removing: string[] }>
  transfers: number
  lost: number[]
  unavailable?: number[]
  after: { balanced: boolean, replicas: Record<string, number> }
}

function printServicePlan (plan: ServicePlan): void {
  out(`plan of ${plan.service} at table version ${plan.version}: a ${plan.change.type} of ${plan.change.peer} moves ${plan.moves.length} partition(s), ${plan.transfers} transfer(s)`)
  if (plan.moves.length > 0) out(table(['PARTITION', 'ADDING', 'REMOVING'], plan.moves.map(m => [String(m.partition), m.adding.join(' '), m.removing.join(' ')])))
  if (plan.lost.length > 0) out(`LOST: the data of partition(s) ${ranges(plan.lost)} (no replica would be left)`)
  if ((plan.unavailable ?? []).length > 0) out(`UNAVAILABLE: partition(s) ${ranges(plan.unavailable ?? [])} would have no replica: they wait for ${plan.change.peer} to come back with its copy (lost after the keyspace's lostAfterMs)`)
  out(`afterwards: ${plan.after.balanced ? 'balanced' : 'unbalanced'}`)
  out(table(['PEER', 'REPLICAS'], Object.entries(plan.after.replicas).map(([peer, n]) => [peer, String(n)])))
}

function moves (list: readonly PartitionMoveRow[]): string {
  return table(['PARTITION', 'FROM', 'TO'], list.map(m => [String(m.partition), m.from ?? '(none)', m.to ?? '(none)']))
}

function exitCode (status: number): number {
  return status === 403 ? EXIT.forbidden : status === 404 ? EXIT.notFound : status === 409 ? EXIT.conflict : status === 503 ? EXIT.notReady : EXIT.failed
}

function connect (command: Command): { client: AdminClient, json: boolean, globals: GlobalOptions } {
  const globals = command.optsWithGlobals<GlobalOptions>()
  const timeout = Number(globals.timeout)
  if (!Number.isInteger(timeout) || timeout < 1) throw new CommandError('--timeout must be a positive number of milliseconds', EXIT.usage)
  return { client: new AdminClient(globals.url, globals.token, timeout), json: globals.json === true, globals }
}

/** What `moves` reads of a keyspace's `table` view. */
interface TableSummary { held?: false, version: number, members: number, partitions: number, movesInFlight: number }

/**
 * Polls `<service>/table` until no partition has a replica still incoming, within `timeoutMs`;
 * the bar counts the moves done out of the most seen in flight at once.
 */
async function waitForMoves (client: AdminClient, service: string, timeoutMs: number, quiet: boolean): Promise<TableSummary> {
  const path = `/views/${encodeURIComponent(service)}/table`
  const deadline = performance.now() + timeoutMs
  const bar = progress(1, !quiet)
  let most = 0
  try {
    for (;;) {
      const v = await client.expect('GET', path) as { data: TableSummary }
      const table = v.data
      if (table.held === false || typeof table.movesInFlight !== 'number') throw new CommandError(`${service} has no ownership table here (not a keyspace, or not settled on this peer yet)`, EXIT.notReady)
      if (table.movesInFlight > most) { most = table.movesInFlight; bar.setTotal(most) }
      bar.update(most - table.movesInFlight, `partition moves done, table version ${table.version}`)
      if (table.movesInFlight === 0) return table
      if (performance.now() >= deadline) throw new CommandError(`${service} still has ${table.movesInFlight} partition move(s) in flight after ${timeoutMs} ms`, EXIT.failed, table)
      await new Promise(resolve => setTimeout(resolve, 250))
    }
  } finally {
    bar.stop()
  }
}

/** After a leave: waits (bounded) until the endpoint stops answering, the sign the peer stopped. */
async function waitUntilGone (client: AdminClient, timeoutMs: number, quiet: boolean): Promise<void> {
  const bar = progress(1, !quiet)
  bar.update(0, 'leaving the cluster')
  const deadline = performance.now() + timeoutMs
  try {
    while (performance.now() < deadline) {
      try {
        await client.get('/alive')
      } catch (err) {
        if (err instanceof CommandError && err.exitCode === EXIT.unreachable) { bar.update(1, 'left'); return }
        throw err
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    throw new CommandError('the peer still answers after its leave was accepted', EXIT.failed)
  } finally {
    bar.stop()
  }
}

async function main (): Promise<void> {
  try {
    await program().parseAsync(process.argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage
      return
    }
    if (err instanceof CommandError) {
      process.stderr.write(`legion: ${err.message}\n`)
      if (err.body !== undefined && process.argv.includes('--json')) process.stdout.write(JSON.stringify(err.body) + '\n')
      process.exitCode = err.exitCode
      return
    }
    process.stderr.write(`legion: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = EXIT.failed
  }
}

await main()
