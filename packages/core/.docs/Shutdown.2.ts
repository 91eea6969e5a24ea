import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({
    concurrency: 4,
    shutdown: { mode: "drain", gracePeriod: "10 seconds", interruptTimeout: "1 second" }
  })
  yield* WorkerPool.submit(pool, Effect.log("work"))
  const report = yield* WorkerPool.shutdown(pool)
  console.log(report.totals.succeeded) // => 1
})
await Effect.runPromise(Effect.scoped(program))
