/**
 * How long a cancel shutdown takes with a long queue: N jobs queued behind one blocked job (concurrency 1,
 * unbounded capacity), then `WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })`. Prints one JSON
 * line: the shutdown's wall time, and per queued job. Usage: `npx node bench/cancel-queue.ts [N]`.
 */
import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const n = Number(process.argv[2] ?? 1_000_000)

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1, capacity: Infinity, shutdown: { interruptTimeout: 10 } })
  yield* WorkerPool.submit(pool, Effect.never)
  for (let i = 0; i < n; i++) yield* WorkerPool.submit(pool, Effect.void)
  const started = performance.now()
  const report = yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0, interruptTimeout: 10 })
  const millis = performance.now() - started
  if (report.totals.cancelled !== n) throw new Error(`cancelled ${report.totals.cancelled} of ${n}`)
  console.log(
    JSON.stringify({ n, shutdownMillis: Math.round(millis * 10) / 10, nanosPerJob: Math.round(millis * 1e6 / n) })
  )
})

await Effect.runPromise(Effect.scoped(program))
