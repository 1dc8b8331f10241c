/**
 * `Promise.withResolvers` for Node 20.
 *
 * libp2p 3, its muxer and its encrypter call `Promise.withResolvers`, which
 * Node gained only in v22. This module installs a spec-shaped stand-in on
 * import, and leaves a native implementation untouched. Every module that
 * imports from libp2p must import this module first; in ESM the first import
 * statement of a module is evaluated before the later ones, so putting
 * `import './polyfill.js'` at the top is enough.
 *
 * @module
 */

/**
 * True when this module had to install `Promise.withResolvers` (the runtime
 * lacked it), false when the runtime already had it.
 */
export const promiseWithResolversPolyfilled: boolean = installPromiseWithResolvers()

function installPromiseWithResolvers (): boolean {
  if (typeof Promise.withResolvers === 'function') {
    return false
  }
  Object.defineProperty(Promise, 'withResolvers', {
    value: function withResolvers<T> (this: PromiseConstructor): PromiseWithResolvers<T> {
      let resolve!: (value: T | PromiseLike<T>) => void
      let reject!: (reason?: unknown) => void
      const promise = new this<T>((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    },
    writable: true,
    configurable: true,
    enumerable: false
  })
  return true
}
