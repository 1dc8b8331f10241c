/**
 * Where servers' states are kept between incarnations: the small {@link StateStore} contract
 * (load and save opaque bytes by key) and two adapters, one in memory and one over plain files.
 * The supervision layer encodes and decodes with each server's state codec; a store only keeps
 * bytes. A later step plugs the peer's own storage in behind the same two methods.
 *
 * @module
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Keeps one byte string per key. Both methods may be called concurrently for different keys; for
 * one key the supervision layer never overlaps a load with a save.
 */
export interface StateStore {
  /** The bytes last saved under `key`, or `undefined` if none. */
  load: (key: string) => Promise<Uint8Array | undefined>
  /** Replaces what is saved under `key`. Resolves once it is kept. */
  save: (key: string, bytes: Uint8Array) => Promise<void>
}

/** A {@link StateStore} held in memory, for tests and for restarts within one process. */
export class MemoryStateStore implements StateStore {
  readonly #entries = new Map<string, Uint8Array>()

  /** See {@link StateStore.load}; returns a copy. */
  async load (key: string): Promise<Uint8Array | undefined> {
    const bytes = this.#entries.get(key)
    return bytes === undefined ? undefined : bytes.slice()
  }

  /** See {@link StateStore.save}; keeps a copy. */
  async save (key: string, bytes: Uint8Array): Promise<void> {
    this.#entries.set(key, bytes.slice())
  }

  /** The keys saved so far. */
  keys (): string[] {
    return [...this.#entries.keys()]
  }
}

/** A new, empty {@link MemoryStateStore}. */
export function memoryStateStore (): MemoryStateStore {
  return new MemoryStateStore()
}

/** Longest key {@link fileStateStore} accepts, in UTF-8 bytes (file names are limited). */
export const MAX_FILE_STATE_KEY_BYTES = 128

/**
 * A {@link StateStore} over files in `directory` (created on first save): one file per key,
 * named by the key in base64url, replaced atomically (written aside, then renamed), so a crash
 * during a save leaves the previous state, never half of a new one.
 * @throws TypeError if `directory` is not a non-empty string
 */
export function fileStateStore (directory: string): StateStore {
  if (typeof directory !== 'string' || directory === '') throw new TypeError('fileStateStore: directory must be a non-empty string')
  let writes = 0
  const fileOf = (key: string): string => {
    if (typeof key !== 'string' || key === '') throw new TypeError('fileStateStore: key must be a non-empty string')
    const bytes = Buffer.from(key, 'utf8')
    if (bytes.length > MAX_FILE_STATE_KEY_BYTES) throw new RangeError(`fileStateStore: key longer than ${MAX_FILE_STATE_KEY_BYTES} bytes`)
    return join(directory, `${bytes.toString('base64url')}.state`)
  }
  return {
    async load (key: string): Promise<Uint8Array | undefined> {
      try {
        return new Uint8Array(await readFile(fileOf(key)))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw err
      }
    },
    async save (key: string, bytes: Uint8Array): Promise<void> {
      const file = fileOf(key)
      await mkdir(directory, { recursive: true })
      const aside = `${file}.${process.pid}.${writes++}.tmp`
      await writeFile(aside, bytes, { flush: true })
      await rename(aside, file)
    }
  }
}
