/**
 * A scripted tour of the example cache (`npm run demo:cache`): the commands of
 * demo/cache/cli.ts run one after the other against a local cluster of three node processes,
 * printed as a transcript. A node is killed with SIGKILL and its keys are still served, it is
 * recovered from its disk, a fourth node joins and takes its share of the partitions, and the
 * tag index is scrolled in order. Everything runs in a fresh temporary directory, removed at
 * the end.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

process.env.LEGION_CACHE_DIR = mkdtempSync(join(tmpdir(), 'legion-cache-tour-'))
const { run } = await import('./cli.js')

async function say (command: string): Promise<string> {
  process.stdout.write(`\n$ npm run cache -- ${command}\n`)
  const t0 = Date.now()
  const out = await run(command.split(' '))
  process.stdout.write(`${out}\n  (${Date.now() - t0} ms)\n`)
  return out
}

/** Re-runs `status` until `done` holds for its output (at most `timeoutMs`). */
async function waitForStatus (what: string, done: (status: string) => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await run(['status'])
    if (done(status)) return
    if (Date.now() > deadline) throw new Error(`the cluster did not get to: ${what}\n${status}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

try {
  await say('start 3')
  await say('set user:1 alice')
  await say('set user:2 bob')
  await say('set user:3 carol')
  await say('set team:red alice,bob --tags team,red')
  await say('get user:2')
  await say('status')
  process.stdout.write('\n# every key has three replicas; killing a node loses nothing (requests on its partitions wait\n# until the others have ejected it, a few seconds)\n')
  await say('kill 2')
  await say('get user:2 --node 1')
  await say('set user:4 dave')
  await waitForStatus('two members', s => s.includes('2 members'))
  await say('status')
  process.stdout.write('\n# node 2 comes back from its disk (it was ejected meanwhile, so it rejoins)\n')
  await say('restart 2')
  await waitForStatus('three members, no move in flight', s => s.split('\n').filter(l => l.includes('3 members, 0 moves')).length === 3)
  await say('status')
  process.stdout.write('\n# a fourth node joins: partitions move to it, while every key stays served\n')
  await say('add')
  await waitForStatus('four members, no move in flight', s => s.split('\n').filter(l => l.includes('4 members, 0 moves')).length === 4)
  await say('status')
  process.stdout.write('\n# the tag index, one ordered list across the cluster\n')
  await say('search')
  await say('search user --limit 2')
  await say('del user:1')
  await say('search user')
} finally {
  await say('stop')
  rmSync(process.env.LEGION_CACHE_DIR, { recursive: true, force: true })
}
