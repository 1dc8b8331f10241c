/**
 * Why a join through one address failed, in words an operator can act on (`JoinError.attempts`).
 *
 * A join that fails at protocol negotiation means the sponsor does not speak this peer's join
 * protocol, `/legion/<cluster>/join/<version>`. The protocols the sponsor says it speaks (an
 * identify request, answered within a second) tell which of the three reasons it is: another
 * cluster, another protocol version of this one (a cluster upgraded one peer at a time, which
 * cannot work: PROTOCOL.md 1.2), or no Legion peer at all.
 *
 * @module
 */

/** The cluster (percent-encoded, as in the id) and version of a join protocol id, or `undefined`. */
function parseJoinProtocol (id: string): { readonly cluster: string, readonly version: string } | undefined {
  const m = /^\/legion\/([^/]*)\/join\/([^/]+)$/.exec(id)
  return m === null ? undefined : { cluster: m[1]!, version: m[2]! }
}

function shown (encodedCluster: string): string {
  try { return JSON.stringify(decodeURIComponent(encodedCluster)) } catch { return JSON.stringify(encodedCluster) }
}

/** Whether `err` says the remote does not speak the requested protocol. */
export function isNegotiationFailure (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const cause = (err as { cause?: unknown }).cause
  const text = `${err.message} ${cause instanceof Error ? `${cause.name} ${cause.message}` : ''}`
  return /negotiate|UnsupportedProtocol|protocol selection/i.test(text)
}

/**
 * Describes `err`, the failure of a join request; `own` is this peer's join protocol id and
 * `remote` the protocols the sponsor announced (empty when unknown).
 */
export function describeJoinFailure (err: unknown, own: string, remote: readonly string[]): string {
  if (!(err instanceof Error)) return String(err)
  if (!isNegotiationFailure(err)) return `${err.name}: ${err.message}`
  const mine = parseJoinProtocol(own)
  const theirs = remote.map(parseJoinProtocol).filter(p => p !== undefined)
  const base = 'this peer is not a member of this cluster'
  if (mine !== undefined) {
    const sameCluster = theirs.filter(p => p.cluster === mine.cluster)
    if (sameCluster.length > 0) {
      return `${base} on this protocol version: it speaks Legion protocol ${sameCluster.map(p => p.version).join(', ')} of cluster ${shown(mine.cluster)}, this peer ${mine.version}; ` +
        'peers of different protocol versions never exchange a message, so every peer of a cluster must run one (stop them all and start them on the new build)'
    }
    if (theirs.length > 0) return `${base}: it is a member of cluster ${[...new Set(theirs.map(p => shown(p.cluster)))].join(', ')}, not ${shown(mine.cluster)}`
  }
  if (remote.length > 0) return `${base}: it is not a Legion peer (it speaks no Legion join protocol)`
  return `${base} (it does not speak its join protocol: another cluster, another Legion version, or not a Legion peer)`
}
