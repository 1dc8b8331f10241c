/**
 * Debian's Chromium for the browser tests, driven by playwright-core (whose own browser
 * downloads cannot work here). `.ci/run` installs the `chromium` package; when it is missing
 * here and this process may install packages (root, apt-get present), the helper installs it
 * once. Only when that is impossible does it return a reason, which the test prints loudly and
 * skips on.
 */
import { execFile } from 'node:child_process'
import { access, constants } from 'node:fs/promises'

/** Where Debian puts Chromium. */
export const CHROMIUM = '/usr/bin/chromium'

/**
 * The flags the machine needs: headless, no sandbox (root), no GPU, and none of Chromium's own
 * background connections (this machine's network refuses them, many at a time).
 */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']

async function exists (path: string): Promise<boolean> {
  return await access(path, constants.X_OK).then(() => true, () => false)
}

async function run (command: string, args: string[], timeoutMs: number): Promise<string | undefined> {
  return await new Promise(resolve => {
    execFile(command, args, { timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }, (err, _stdout, stderr) => {
      resolve(err === null ? undefined : `${command} ${args.join(' ')}: ${err.message} ${stderr.slice(-500)}`)
    })
  })
}

/** The path of Chromium, installing it if needed and possible; or why there is none. */
export async function findChromium (): Promise<{ path: string } | { missing: string }> {
  if (await exists(CHROMIUM)) return { path: CHROMIUM }
  if (process.getuid?.() !== 0 || !await exists('/usr/bin/apt-get')) return { missing: `${CHROMIUM} is missing and this process cannot install it (not root, or no apt-get)` }
  const failed = await run('apt-get', ['install', '-y', '-q', 'chromium'], 600_000) !== undefined
    ? (await run('apt-get', ['update', '-q'], 300_000)) ?? await run('apt-get', ['install', '-y', '-q', 'chromium'], 600_000)
    : undefined
  if (failed !== undefined || !await exists(CHROMIUM)) return { missing: `installing chromium failed: ${failed ?? 'no binary afterwards'}` }
  return { path: CHROMIUM }
}
