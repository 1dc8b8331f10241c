/**
 * Child process of the migration crash tests (test/storage-migration.test.ts): opens the
 * layout-1 directory argv[2] with the layout-2 adapter, which converts it. With argv[3] =
 * `step:<name>` it SIGKILLs itself right after that step of the conversion; with `timed` it
 * prints `opening` and lets the parent kill it whenever it likes. Prints `opened` if it gets
 * through.
 */
import { openLmdbKeyValueStore } from '../../src/storage/lmdb-key-value.js'
import type { MigrationStep } from '../../src/storage/layout-migration.js'

const directory = process.argv[2]
const mode = process.argv[3] ?? 'timed'
if (directory === undefined) throw new Error('usage: migration-crash-child.ts <directory> [step:<name> | timed]')

const killAt = mode.startsWith('step:') ? mode.slice('step:'.length) : undefined
process.stdout.write('opening\n')
const store = await openLmdbKeyValueStore(directory, {}, (step: MigrationStep) => {
  if (step === killAt) process.kill(process.pid, 'SIGKILL')
})
process.stdout.write('opened\n')
await store.close()
