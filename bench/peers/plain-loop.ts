/**
 * The floor: `concurrency` async functions pulling the next index from a shared counter. No queue, no
 * handles, no cancellation: the least any pool can do.
 */
import type { Peer } from "../lib.ts"
import { awaited, sleep } from "../lib.ts"

const loops = async (n: number, concurrency: number, job: (i: number) => Promise<number>): Promise<number> => {
  let next = 0
  let sum = 0
  const loop = async () => {
    while (next < n) {
      // read the result before adding: `sum += await ...` would add to a stale `sum`
      const result = await job(next++)
      sum += result
    }
  }
  const running: Array<Promise<void>> = []
  for (let k = 0; k < concurrency; k++) running.push(loop())
  await Promise.all(running)
  return sum
}

export const peer: Peer = {
  throughput: async ({ concurrency, mode, n }, tracker) => {
    const sum = await loops(n, concurrency, async (i) => tracker.hit(i))
    return mode === "fire" ? undefined : sum
  },
  promise: async ({ concurrency, mode, n }, tracker) => {
    const sum = await loops(n, concurrency, (i) => awaited(tracker, i))
    return mode === "fire" ? undefined : sum
  },
  io: ({ concurrency, n, sleepMs }, tracker) =>
    loops(n, concurrency, async (i) => {
      await sleep(sleepMs)
      return tracker.hit(i)
    })
}
