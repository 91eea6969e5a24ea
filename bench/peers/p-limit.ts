/**
 * p-limit: `limit(fn)` per job (its internal queue is unbounded). Fire-and-forget ignores the promises and
 * waits on a counter the jobs bump (p-limit has no idle signal); submit-and-await collects the promises.
 */
import pLimit from "p-limit"
import type { Peer } from "../lib.ts"
import { gate, sleep } from "../lib.ts"

export const peer: Peer = {
  throughput: async ({ concurrency, mode, n }, tracker) => {
    const limit = pLimit(concurrency)
    if (mode === "fire") {
      const idle = gate()
      let done = 0
      for (let i = 0; i < n; i++) {
        limit(async () => {
          tracker.hit(i)
          if (++done === n) idle.open()
        })
      }
      await idle.promise
      return undefined
    }
    const results = new Array<Promise<number>>(n)
    for (let i = 0; i < n; i++) results[i] = limit(async () => tracker.hit(i))
    let sum = 0
    for (const result of results) sum += await result
    return sum
  },

  io: async ({ concurrency, n, sleepMs }, tracker) => {
    const limit = pLimit(concurrency)
    const results = new Array<Promise<number>>(n)
    for (let i = 0; i < n; i++) {
      results[i] = limit(async () => {
        await sleep(sleepMs)
        return tracker.hit(i)
      })
    }
    let sum = 0
    for (const result of results) sum += await result
    return sum
  }
}
