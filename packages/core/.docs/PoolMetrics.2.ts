import { PoolMetrics, WorkerPool } from "@fiberpool/core"
import { Effect, Metric } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ name: "docs", concurrency: 1 })
  yield* WorkerPool.run(pool, Effect.void)
  const state = yield* Metric.value(Metric.withAttributes(PoolMetrics.submitted, { pool: "docs" }))
  assert.strictEqual(state.count, 1)
})
await Effect.runPromise(Effect.scoped(program).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
