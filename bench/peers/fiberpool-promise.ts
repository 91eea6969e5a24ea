/**
 * fiberpool through its Promise API (`@fiberpool/core/promise`): plain async functions added with
 * `pool.add`, p-queue's and fastq's own ground. The queue is unbounded (`capacity: Infinity`, like fastq and
 * `p-queue-unbounded`): under the default `"suspend"` every `add` past the bound would hold a waiting
 * submitter. Fire-and-forget drops the promises of `add` and waits for `onIdle`; submit-and-await awaits
 * every one.
 */
import { createPool } from "@fiberpool/core/promise"
import type { Peer, ThroughputParams } from "../lib.ts"
import { awaited, sleep } from "../lib.ts"

const run = async (
  { concurrency, mode, n }: ThroughputParams,
  job: (i: number) => Promise<number>
): Promise<number | undefined> => {
  const pool = createPool({ concurrency, capacity: Infinity })
  try {
    if (mode === "fire") {
      for (let i = 0; i < n; i++) void pool.add(() => job(i))
      await pool.onIdle()
      return undefined
    }
    const results = new Array<Promise<number>>(n)
    for (let i = 0; i < n; i++) results[i] = pool.add(() => job(i))
    let sum = 0
    for (const result of results) sum += await result
    return sum
  } finally {
    await pool.close()
  }
}

export const peer: Peer = {
  throughput: (params, tracker) => run(params, async (i) => tracker.hit(i)),

  promise: (params, tracker) => run(params, (i) => awaited(tracker, i)),

  io: async ({ concurrency, n, sleepMs }, tracker) =>
    (await run({ concurrency, mode: "await", n }, async (i) => {
      await sleep(sleepMs)
      return tracker.hit(i)
    }))!
}
