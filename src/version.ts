/**
 * The version of this package, for `legion_build_info`, the CLI's `--version` and the admin
 * endpoint's status. Kept equal to package.json's by a test (test/admin-metrics.test.ts), since
 * the built package must not read its own package.json at run time.
 *
 * @module
 */

/** This package's version (package.json's `version`). */
export const LEGION_VERSION = '0.1.0'

/**
 * The peer protocol version (docs/PROTOCOL.md 1.2): the last segment of every protocol id.
 * Peers of different protocol versions never exchange a message, so every peer of a cluster
 * must run the same one.
 */
export const PROTOCOL_VERSION = '13.0.0'
