import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* WorkerPool.run(pool, Effect.succeed(1))
  const stats: WorkerPool.Stats = yield* WorkerPool.stats(pool)
  assert.strictEqual(stats.succeeded, 1)
  assert.strictEqual(stats.running, 0)
})
await Effect.runPromise(Effect.scoped(program))
