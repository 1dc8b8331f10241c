import { partitionOfBytes } from './src/keyspace/router.ts'
for (const k of process.argv.slice(2)) console.log(k, partitionOfBytes(new TextEncoder().encode(k), 16))
