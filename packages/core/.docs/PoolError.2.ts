import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* WorkerPool.shutdown(pool)
  const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void))
  assert.strictEqual(error.reason._tag, "PoolClosed")
})
await Effect.runPromise(Effect.scoped(program))
