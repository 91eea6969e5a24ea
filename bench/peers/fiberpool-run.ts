/**
 * fiberpool through `WorkerPool.run` (submit-and-await in one call): `Effect.forEach` drives the callers,
 * with enough of them (`concurrency` + the queue's 100) to keep every worker busy and the queue full.
 */
import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import type { Peer } from "../lib.ts"

const items = (n: number) => Array.from({ length: n }, (_, i) => i)
const sum = (results: ReadonlyArray<number>) => results.reduce((a, b) => a + b, 0)

export const peer: Peer = {
  throughput: ({ concurrency, mode, n }, tracker) => {
    if (mode === "fire") return Promise.reject(new Error("run is submit-and-await only"))
    return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency, capacity: 100 })
      const results = yield* Effect.forEach(
        items(n),
        (i) => WorkerPool.run(pool, Effect.sync(() => tracker.hit(i))),
        { concurrency: concurrency + 100 }
      )
      return sum(results)
    })))
  },

  io: ({ concurrency, n, sleepMs }, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency, capacity: 100 })
      const results = yield* Effect.forEach(
        items(n),
        (i) => WorkerPool.run(pool, Effect.map(Effect.sleep(sleepMs), () => tracker.hit(i))),
        { concurrency: concurrency + 100 }
      )
      return sum(results)
    })))
}
