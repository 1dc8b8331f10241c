/**
 * One peer of the demo cluster, in its own process: the shortest complete use of the API.
 * It starts a Legion peer that shares a 64-partition table, founding a new cluster or joining
 * the one at the multiaddr given, reports every change of the shared state, and obeys
 * commands. demo/main.ts runs five of these; you can also run a few by hand:
 *
 *   node --import tsx demo/peer.ts                  # founds a cluster, prints its address
 *   node --import tsx demo/peer.ts /ip4/127.0.0.1/tcp/…/p2p/…   # joins it
 *
 * stdout, one JSON object per line:
 *   {"type":"ready","self":…,"address":…}
 *   {"type":"state","infimumId":…,"outstanding":…,"table":…}   (on every change)
 *   {"type":"reply","id":…,"value":…} or {"type":"reply","id":…,"error":…}
 * stdin, one JSON object per line:
 *   {"id":1,"command":"eject","peer":"12D3Koo…"}   removes a dead peer from the cluster
 *   {"id":2,"command":"stop"}                      leaves the cluster and exits
 */
import { createInterface } from 'node:readline'
import { startLegion, eventIdKey, partitionTableSpec, type ClusterState, type PartitionTable } from '../src/index.js'

const joinAddress = process.argv[2] ?? process.env.LEGION_JOIN

const legion = await startLegion({
  cluster: 'legion-demo',
  spec: partitionTableSpec(64), // join and unjoin rebalance the table: no events needed
  startup: joinAddress === undefined ? { mode: 'new' } : { mode: 'join', peers: [joinAddress] },
  listen: ['/ip4/127.0.0.1/tcp/0']
})

const say = (message: object): void => { process.stdout.write(JSON.stringify(message) + '\n') }
const report = (state: ClusterState<PartitionTable>): void => {
  // The infimum is the settled table: every peer at the same infimum id holds the same one.
  say({ type: 'state', infimumId: eventIdKey(state.infimumId), outstanding: state.outstanding, table: state.infimum })
}

say({ type: 'ready', self: legion.self, address: legion.multiaddrs()[0] })
report(legion.readState())
void (async () => { for await (const state of legion.changes()) report(state) })()

for await (const line of createInterface({ input: process.stdin })) {
  const { id, command, peer } = JSON.parse(line) as { id: number, command: string, peer?: string }
  try {
    if (command === 'eject') {
      const { reached, unreachable } = await legion.eject(peer ?? '')
      say({ type: 'reply', id, value: { reached, unreachable } })
    } else if (command === 'stop') {
      await legion.stop() // leaves: the others rebalance without waiting to eject us
      say({ type: 'reply', id, value: 'stopped' })
      break
    } else {
      say({ type: 'reply', id, error: `unknown command ${command}` })
    }
  } catch (err) {
    say({ type: 'reply', id, error: String(err) })
  }
}
// Without a stop command, stdin closed: the parent is gone, so leave quietly.
await legion.stop({ leave: false })
process.stdin.destroy() // readline leaves stdin open, which would keep the process alive
