import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  const handle = yield* WorkerPool.submit(pool, Effect.never)
  yield* Effect.yieldNow
  yield* handle.cancel
  const error = yield* Effect.flip(handle.await)
  assert.ok(error._tag === "JobError" && error.reason._tag === "JobInterrupted")
})
await Effect.runPromise(Effect.scoped(program))
