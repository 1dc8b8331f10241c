/**
 * The published package, as a user gets it: `npm pack` of a copy of this checkout (the files a
 * clean clone has, plus work not yet committed), the tarball installed from the registry into a
 * new project outside the repository (no override, no lockfile of ours, no dev tooling), then
 * used from plain Node ESM and type-checked from strict TypeScript with module NodeNext.
 *
 * Everything happens in a fresh temporary directory, so copies of the suite running at once
 * share nothing but npm's cache (which npm keeps safe for concurrent use). The checkout's own
 * `dist/` is never touched: the copy builds its own through the `prepack` script, the way
 * `npm pack` and `npm publish` do.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, sep } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = join(root, 'test', 'fixtures', 'package-consumer')

/** The fields of package.json this test reads. */
interface Manifest {
  readonly name: string
  readonly version: string
  readonly bin?: Record<string, string>
  readonly license?: string
  readonly main?: string
  readonly types?: string
  readonly exports: Record<string, Record<string, string>>
  readonly devDependencies: Record<string, string>
}

/** What `npm pack --json` says about one tarball. */
interface PackReport {
  readonly filename: string
  readonly size: number
  readonly unpackedSize: number
  readonly entryCount: number
  readonly files: ReadonlyArray<{ readonly path: string }>
}

/** The outcome of a child process that exited 0 in time. */
interface Finished { readonly stdout: string, readonly stderr: string, readonly ms: number }

/**
 * Runs a command to completion within `timeoutMs`, rejecting with everything it printed.
 * The environment loses what `npm test` and `node --test` put in it (npm_package_*,
 * npm_lifecycle_*, npm_config_local_prefix naming this checkout, NODE_TEST_CONTEXT) and any
 * NODE_OPTIONS, so the child sees what a user's shell would; the npm cache setting stays, so
 * installs reuse what `npm ci` downloaded.
 */
async function run (command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<Finished> {
  const kept = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig'])
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) =>
    kept.has(key) || !(key.startsWith('npm_') || key === 'INIT_CWD' || key === 'NODE_OPTIONS' || key === 'NODE_TEST_CONTEXT')))
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const ms = Math.round(performance.now() - started)
      if (err === null) resolve({ stdout, stderr, ms })
      else reject(new Error(`${command} ${args.join(' ')} in ${cwd} failed after ${ms} ms (limit ${timeoutMs} ms): ${err.message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`))
    })
  })
}

/** npm's own launcher, so that `npm` runs the same way on every platform. */
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/**
 * Copies what a clean clone plus uncommitted work would hold (tracked and untracked files that
 * .gitignore does not exclude) into `target`: no node_modules, no dist, no .git.
 */
async function copyCheckout (target: string): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], root, 30_000)
  for (const file of stdout.split('\0').filter(name => name !== '')) {
    await mkdir(dirname(join(target, file)), { recursive: true })
    // a tracked file deleted in the working tree is not part of the package
    await copyFile(join(root, file), join(target, file)).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
  }
}

/** Every file under `directory`, as paths relative to it with `/` separators. */
async function listFiles (directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true })
  return entries.filter(e => e.isFile()).map(e => relative(directory, join(e.parentPath, e.name)).split(sep).join('/'))
}

describe('the packed package', { concurrency: true }, () => {
  let work = ''
  let consumer = ''
  let manifest: Manifest
  let packed: PackReport

  before(async () => {
    // Outside the repository: Node must find legion and its dependencies only in the
    // consumer's node_modules, never by walking up into this checkout's.
    work = await realpath(await mkdtemp(join(tmpdir(), 'legion-package-test-')))
    assert.ok(!work.startsWith(await realpath(root)), `the temporary directory ${work} must lie outside the repository`)
    manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest

    const stage = join(work, 'stage')
    await copyCheckout(stage)
    // The build (prepack) needs the compiler and the dependencies' declarations, not a reinstall.
    await symlink(join(root, 'node_modules'), join(stage, 'node_modules'), 'junction')
    const pack = await run(npm, ['pack', '--json', '--pack-destination', work], stage, 120_000)
    const reports = JSON.parse(pack.stdout) as PackReport[]
    assert.equal(reports.length, 1)
    packed = reports[0]!
    process.stdout.write(`npm pack (with its prepack build): ${pack.ms} ms; ${packed.filename}: ${packed.size} bytes, ${packed.unpackedSize} unpacked, ${packed.entryCount} files\n`)

    consumer = join(work, 'consumer')
    await mkdir(consumer)
    // A project with no overrides: whatever Legion's dependencies need must come from the package.
    await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'legion-consumer', private: true, type: 'module' }, null, 2))
    for (const file of ['consumer.mjs', 'consumer.ts', 'tsconfig.json']) await copyFile(join(fixtures, file), join(consumer, file))
    // @types/node is the consumer's own, as in any Node TypeScript project; from npm's cache
    // when `npm ci` already fetched this version.
    const typesNode = `@types/node@${manifest.devDependencies['@types/node'] ?? '20'}`
    const install = await run(npm, ['install', join(work, packed.filename), typesNode,
      '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], consumer, 180_000)
    process.stdout.write(`npm install of the tarball: ${install.ms} ms\n`)
  })

  after(async () => {
    if (work !== '') await rm(work, { recursive: true, force: true })
  })

  test('the tarball holds the compiled library, README, LICENSE and package.json, and nothing else', async () => {
    const paths = packed.files.map(f => f.path).sort()
    const unexpected = paths.filter(p => !/^(README\.md|LICENSE|package\.json)$/.test(p) && !/^dist\/.+\.(js|d\.ts)$/.test(p))
    assert.deepEqual(unexpected, [], 'only dist/*.js and dist/*.d.ts besides README, LICENSE and package.json')
    const required = ['README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']
    if (manifest.license !== undefined) required.push('LICENSE')
    for (const target of [manifest.main, manifest.types, ...Object.values(manifest.exports).flatMap(conditions => Object.values(conditions))]) {
      if (target !== undefined) required.push(target.replace(/^\.\//, ''))
    }
    for (const file of required) assert.ok(paths.includes(file), `the tarball lacks ${file}`)
    // Every module ships its declarations, so no import of a public type resolves to nothing.
    for (const js of paths.filter(p => p.endsWith('.js'))) {
      assert.ok(paths.includes(js.replace(/\.js$/, '.d.ts')), `${js} has no declarations`)
    }
  })

  test('the installed files name no source map (none is shipped for them to point to)', async () => {
    const installed = join(consumer, 'node_modules', manifest.name)
    const files = await listFiles(installed)
    assert.ok(files.includes('dist/index.js'), `installed: ${files.join(', ')}`)
    for (const file of files.filter(f => f.endsWith('.js') || f.endsWith('.d.ts'))) {
      const text = await readFile(join(installed, file), 'utf8')
      assert.doesNotMatch(text, /sourceMappingURL/, `${file} points to a source map`)
    }
  })

  test('plain Node ESM imports it, runs an EventFold and its codec, and settles an event between two peers', async () => {
    const { stdout, ms } = await run(process.execPath, ['consumer.mjs'], consumer, 90_000)
    process.stdout.write(`consumer.mjs: ${ms} ms\n`)
    const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>
    assert.deepEqual(result, { entry: 'legion/dist/index.js', counter: 5, output: 'rebalanced', owners: 16 })
  })

  test('the installed legion executable runs from node_modules/.bin: --help lists its commands, --version the package\'s', async () => {
    assert.deepEqual(Object.keys(manifest.bin ?? {}), ['legion'])
    const bin = join(consumer, 'node_modules', '.bin', 'legion')
    const help = await run(bin, ['--help'], consumer, 60_000)
    assert.match(help.stdout, /^Usage: legion /m)
    for (const command of ['start', 'status', 'members', 'partitions', 'eject', 'leave', 'plan', 'commit', 'metrics']) {
      assert.match(help.stdout, new RegExp(`^  ${command}\\b`, 'm'), `legion --help lists ${command}`)
    }
    const version = await run(bin, ['--version'], consumer, 60_000)
    assert.equal(version.stdout.trim(), manifest.version)
  })

  test('strict TypeScript with module NodeNext type-checks a program against its declarations', async () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const { ms } = await run(process.execPath, [tsc, '-p', join(consumer, 'tsconfig.json')], consumer, 120_000)
    process.stdout.write(`tsc on consumer.ts: ${ms} ms\n`)
  })
})
