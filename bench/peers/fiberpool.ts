/**
 * fiberpool: `WorkerPool.make` with a bounded queue of 100 (backpressure "suspend"), jobs submitted with
 * `WorkerPool.submit` (fire-and-forget: handles dropped, then `WorkerPool.awaitIdle`; submit-and-await:
 * handles kept and awaited).
 */
import { type Job, WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import type { Peer } from "../lib.ts"
import { gate, now } from "../lib.ts"

export const peer: Peer = {
  throughput: ({ concurrency, mode, n }, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency, capacity: 100 })
      if (mode === "fire") {
        for (let i = 0; i < n; i++) yield* WorkerPool.submit(pool, Effect.sync(() => tracker.hit(i)))
        yield* WorkerPool.awaitIdle(pool)
        return undefined
      }
      const handles = new Array<Job.JobHandle<number>>(n)
      for (let i = 0; i < n; i++) handles[i] = yield* WorkerPool.submit(pool, Effect.sync(() => tracker.hit(i)))
      let sum = 0
      for (let i = 0; i < n; i++) sum += yield* handles[i]!.await
      return sum
    }))),

  io: ({ concurrency, n, sleepMs }, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency, capacity: 100 })
      const handles = new Array<Job.JobHandle<number>>(n)
      for (let i = 0; i < n; i++) {
        handles[i] = yield* WorkerPool.submit(pool, Effect.map(Effect.sleep(sleepMs), () => tracker.hit(i)))
      }
      let sum = 0
      for (let i = 0; i < n; i++) sum += yield* handles[i]!.await
      return sum
    }))),

  memory: ({ handles, n }, tracker, measure) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, capacity: Number.POSITIVE_INFINITY })
      const blocker = gate()
      yield* WorkerPool.submit(pool, Effect.promise(() => blocker.promise))
      const kept: Array<Job.JobHandle<number>> = []
      for (let i = 0; i < n; i++) {
        const handle = yield* WorkerPool.submit(pool, Effect.sync(() => tracker.hit(i)))
        if (handles) kept.push(handle)
      }
      measure()
      blocker.open()
      yield* WorkerPool.awaitIdle(pool)
      if (handles) {
        let sum = 0
        for (const handle of kept) sum += yield* handle.await
        if (sum !== tracker.expectedSum) throw new Error(`sum of results ${sum} !== ${tracker.expectedSum}`)
      }
    }))),

  shutdown: ({ jobMs, jobs, mode }, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: jobs, capacity: 100 })
      const startedAt = now()
      for (let i = 0; i < jobs; i++) {
        const job = Effect.suspend(() => {
          tracker.started++
          return Effect.map(Effect.sleep(jobMs), () => tracker.hit(i))
        }).pipe(Effect.ensuring(Effect.sync(() => tracker.finalized++)))
        yield* WorkerPool.submit(pool, job)
      }
      if (mode === "forced") yield* Effect.sleep(20)
      if (tracker.started !== jobs) throw new Error(`only ${tracker.started} of ${jobs} jobs started`)
      const shutdownAt = now()
      const report = yield* WorkerPool.shutdown(
        pool,
        mode === "graceful" ? { mode: "drain" } : { mode: "cancel", gracePeriod: 0 }
      )
      const doneAt = now()
      const expected = mode === "graceful" ? report.jobs.succeeded.length : report.jobs.interrupted.length
      if (expected !== jobs) throw new Error(`shutdown report: ${JSON.stringify(report.jobs)}`)
      return {
        shutdownMs: doneAt - shutdownAt,
        totalMs: doneAt - startedAt,
        completed: report.jobs.succeeded.length,
        finalized: tracker.finalized
      }
    })))
}
