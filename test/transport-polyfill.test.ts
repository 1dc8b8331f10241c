/**
 * The Promise.withResolvers polyfill: spec behaviour, and that importing the
 * transport alone installs it before libp2p runs (in a fresh process, so no
 * other test file has installed it first).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promiseWithResolversPolyfilled } from '../src/transport/polyfill.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const nativeMajor = Number(process.versions.node.split('.')[0])

test('Promise.withResolvers exists after import, and is only polyfilled where missing', async () => {
  assert.equal(typeof Promise.withResolvers, 'function')
  if (nativeMajor < 22) assert.equal(promiseWithResolversPolyfilled, true)
  const ok = Promise.withResolvers<number>()
  ok.resolve(7)
  assert.equal(await ok.promise, 7)
  const failed = Promise.withResolvers<number>()
  failed.reject(new Error('nope'))
  await assert.rejects(failed.promise, /nope/)
})

test('the polyfill is the first import of the modules that load libp2p', async () => {
  for (const file of ['src/transport/node.ts', 'src/transport/channel.ts', 'src/transport/index.ts']) {
    const source = await readFile(new URL(`../${file}`, import.meta.url), 'utf8')
    const first = source.split('\n').find(line => /^(import|export) /.test(line))
    assert.match(first ?? '', /['"]\.\/polyfill\.js['"]/, `${file} starts with ${first ?? 'nothing'}`)
  }
})

test('a fresh process that imports only the transport can run libp2p nodes', async () => {
  const script = `
    const before = typeof Promise.withResolvers
    const { createTransportNode } = await import('./src/transport/node.ts')
    const a = await createTransportNode({ transport: 'memory' })
    const b = await createTransportNode({ transport: 'memory' })
    await b.handle('/legion/polyfill/1.0.0', async (_from, payload) => payload)
    await a.dial(b.multiaddrs()[0])
    const answer = await a.request(b.peerId, '/legion/polyfill/1.0.0', new Uint8Array([42]))
    await a.stop(); await b.stop()
    console.log(JSON.stringify({ before, answer: [...answer] }))
  `
  const output = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: root, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${err.message}\n${stderr}`))
        else resolve(stdout)
      })
  })
  const result = JSON.parse(output.trim().split('\n').pop() ?? '{}') as { before: string, answer: number[] }
  if (nativeMajor < 22) assert.equal(result.before, 'undefined', 'the child must start without Promise.withResolvers')
  assert.deepEqual(result.answer, [42])
})
