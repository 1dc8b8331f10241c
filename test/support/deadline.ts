/**
 * Bounding a wait in tests: a promise raced against a deadline, so a test that would hang
 * fails with what it was waiting for instead.
 */

/** Resolves or rejects with `promise`, or rejects once `ms` have passed. */
export async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`deadline of ${ms} ms passed waiting for ${what}`)) }, ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}
