/**
 * The typed refusals of opening a data directory, apart from the code that opens one (which
 * depends on LMDB's types), so that the public declarations never reach into `lmdb`'s.
 *
 * @module
 */

/**
 * The directory is neither empty nor marked as Legion peer storage, so it was not opened and
 * nothing was created in it.
 */
export class ForeignDirectoryError extends Error {
  /** Always `'ForeignDirectoryError'`. */
  override readonly name = 'ForeignDirectoryError'
  /** The directory that was refused. */
  readonly directory: string

  /**
   * @param directory - the directory that was refused
   * @param message - why, for humans
   */
  constructor (directory: string, message: string) {
    super(message)
    this.directory = directory
  }
}

/**
 * The directory already has an open storage in this process (through either LMDB adapter): two
 * writers would silently replace each other's state. (Other processes are not detected.)
 */
export class StorageInUseError extends Error {
  /** Always `'StorageInUseError'`. */
  override readonly name = 'StorageInUseError'
  /** The directory already open. */
  readonly directory: string

  /** @param directory - the directory already open */
  constructor (directory: string) {
    super(`storage in ${directory} is already open in this process`)
    this.directory = directory
  }
}

