/**
 * Names of the files that mark a data directory as Legion's, and the layout of the LMDB
 * key-value adapter's directory: plain constants, apart from the code that opens a directory
 * (which depends on LMDB's types), so that the public declarations never reach into `lmdb`'s.
 *
 * @module
 */

/** The marker file that says a directory holds Legion peer storage. */
export const MARKER = 'LEGION-PEER'
/** The marker being written (renamed to {@link MARKER} once synced). */
export const MARKER_TEMP = 'LEGION-PEER.tmp'

/** Names of the files in a data directory of the LMDB key-value adapter (layout 2). */
export const LMDB_KEY_VALUE_LAYOUT = {
  /** The marker file that says a directory holds Legion peer storage. */
  marker: MARKER,
  /** The marker being written (renamed to `marker` once synced). */
  markerTemp: MARKER_TEMP,
  /** The LMDB environment file. */
  database: 'store.mdb',
  /** LMDB's lock file, next to the environment file. */
  lock: 'store.mdb-lock',
  /** The layout version the marker carries. */
  version: 2
} as const
