/**
 * The cost of a cancel-mode shutdown with many queued jobs: `node packages/core/benchmark/shutdown.ts [N]`.
 * Prints the wall time of `WorkerPool.shutdown` and the cost per cancelled job.
 */
import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const n = Number(process.argv[2] ?? 1_000_000)

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1, capacity: Infinity })
  yield* WorkerPool.submit(pool, Effect.never)
  for (let i = 0; i < n; i++) yield* WorkerPool.submit(pool, Effect.void)
  const start = performance.now()
  const report = yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0, interruptTimeout: 0 })
  const millis = performance.now() - start
  console.log(
    `shutdown with ${n} queued: ${millis.toFixed(1)} ms, ${(millis * 1e6 / n).toFixed(0)} ns per job, ` +
      `${report.jobs.cancelled.length} cancelled`
  )
})

Effect.runPromise(Effect.scoped(program))
