import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 0, backpressure: "fail" })
  yield* WorkerPool.submit(pool, Effect.never)
  const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void))
  assert.strictEqual(error.reason._tag, "QueueFull")
  yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
})
await Effect.runPromise(Effect.scoped(program))
