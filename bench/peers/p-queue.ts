/**
 * p-queue, bounded (`await queue.onSizeLessThan(100)` before adding once 100 wait) or unbounded.
 * Fire-and-forget ignores the promises of `add` and waits for `onIdle`; submit-and-await collects them.
 */
import PQueue from "p-queue"
import type { Peer } from "../lib.ts"
import { gate, now, sleep } from "../lib.ts"

const bound = 100

export const make = (bounded: boolean): Peer => ({
  throughput: async ({ concurrency, mode, n }, tracker) => {
    const queue = new PQueue({ concurrency })
    if (mode === "fire") {
      for (let i = 0; i < n; i++) {
        if (bounded && queue.size >= bound) await queue.onSizeLessThan(bound)
        queue.add(async () => tracker.hit(i))
      }
      await queue.onIdle()
      return undefined
    }
    const results = new Array<Promise<number>>(n)
    for (let i = 0; i < n; i++) {
      if (bounded && queue.size >= bound) await queue.onSizeLessThan(bound)
      results[i] = queue.add(async () => tracker.hit(i))
    }
    let sum = 0
    for (const result of results) sum += await result
    return sum
  },

  io: async ({ concurrency, n, sleepMs }, tracker) => {
    const queue = new PQueue({ concurrency })
    const results = new Array<Promise<number>>(n)
    for (let i = 0; i < n; i++) {
      if (bounded && queue.size >= bound) await queue.onSizeLessThan(bound)
      results[i] = queue.add(async () => {
        await sleep(sleepMs)
        return tracker.hit(i)
      })
    }
    let sum = 0
    for (const result of results) sum += await result
    return sum
  },

  memory: async ({ n }, tracker, measure) => {
    const queue = new PQueue({ concurrency: 1 })
    const blocker = gate()
    queue.add(() => blocker.promise)
    for (let i = 0; i < n; i++) queue.add(async () => tracker.hit(i))
    measure()
    blocker.open()
    await queue.onIdle()
  },

  // graceful: `onIdle` (p-queue has no close; nothing is added after it is called);
  // forced: abort every task's signal, clear the queue, wait until every task promise settled
  shutdown: async ({ jobMs, jobs, mode }, tracker) => {
    const queue = new PQueue({ concurrency: jobs })
    const controller = new AbortController()
    const startedAt = now()
    const results: Array<Promise<number>> = []
    for (let i = 0; i < jobs; i++) {
      results.push(queue.add(({ signal }) =>
        new Promise<number>((resolve, reject) => {
          tracker.started++
          const timer = setTimeout(() => {
            tracker.finalized++
            resolve(tracker.hit(i))
          }, jobMs)
          signal!.addEventListener("abort", () => {
            clearTimeout(timer)
            tracker.finalized++
            reject(signal!.reason)
          }, { once: true })
        }), { signal: controller.signal }))
    }
    if (mode === "forced") await sleep(20)
    if (tracker.started !== jobs) throw new Error(`only ${tracker.started} of ${jobs} jobs started`)
    const shutdownAt = now()
    let completed = 0
    if (mode === "graceful") {
      await queue.onIdle()
      for (const result of results) completed += (await result) >= 0 ? 1 : 0
    } else {
      queue.clear()
      controller.abort()
      const settled = await Promise.allSettled(results)
      completed = settled.filter((s) => s.status === "fulfilled").length
    }
    const doneAt = now()
    return { shutdownMs: doneAt - shutdownAt, totalMs: doneAt - startedAt, completed, finalized: tracker.finalized }
  }
})
