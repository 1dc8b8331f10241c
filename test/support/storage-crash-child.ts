/**
 * Child process of the lmdb crash test (test/storage.test.ts): opens the storage in the
 * directory given as argv[2], continues numbering from the record it finds, and saves records
 * in a bounded loop, printing `saved <n>` after each awaited save. The parent kills it with
 * SIGKILL at some point and checks what survived. Record n is `crashRecord(n)`.
 */
import { lmdbStorage } from '../../src/storage/lmdb.js'
import { crashRecord, crashRecordNumber } from './storage-crash-record.js'

const directory = process.argv[2]
const maxSaves = Number(process.argv[3] ?? '2000')
if (directory === undefined) throw new Error('usage: storage-crash-child.ts <directory> [maxSaves]')

const storage = await lmdbStorage(directory)
const previous = await storage.load()
const start = previous === undefined ? 1 : crashRecordNumber(previous) + 1
process.stdout.write(`start ${start}\n`)
for (let n = start; n < start + maxSaves; n++) {
  await storage.save(crashRecord(n))
  process.stdout.write(`saved ${n}\n`)
}
await storage.close()
process.stdout.write('done\n')
