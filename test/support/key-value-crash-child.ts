/**
 * Child process of the key-value crash test (test/key-value-storage.test.ts): opens the LMDB
 * store in the directory given as argv[2], continues numbering from the head it finds, and
 * writes `crashBatch(n)` in a bounded loop with up to three batches in flight, printing
 * `committed <n>` as each batch resolves. The parent SIGKILLs it at some point and checks that
 * what survived is a prefix of the batches, each whole.
 */
import { lmdbKeyValueStore } from '../../src/storage/lmdb-key-value.js'
import { crashBatch, crashHead } from './key-value-crash-batches.js'

const directory = process.argv[2]
const maxBatches = Number(process.argv[3] ?? '2000')
if (directory === undefined) throw new Error('usage: key-value-crash-child.ts <directory> [maxBatches]')

const store = await lmdbKeyValueStore(directory)
const start = await crashHead(store) + 1
process.stdout.write(`start ${start}\n`)
const inFlight: Array<Promise<void>> = []
for (let n = start; n < start + maxBatches; n++) {
  inFlight.push(store.batch(crashBatch(n)).then(() => { process.stdout.write(`committed ${n}\n`) }))
  if (inFlight.length >= 3) await inFlight.shift()
}
await Promise.all(inFlight)
await store.close()
process.stdout.write('done\n')
