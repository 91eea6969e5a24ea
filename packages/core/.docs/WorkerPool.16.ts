import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 2 })
  for (let i = 0; i < 5; i++) yield* WorkerPool.submit(pool, Effect.sleep("5 millis"))
  yield* WorkerPool.awaitIdle(pool)
  assert.strictEqual((yield* WorkerPool.stats(pool)).succeeded, 5)
})
await Effect.runPromise(Effect.scoped(program))
