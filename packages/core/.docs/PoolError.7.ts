import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
  const queued = yield* WorkerPool.submit(pool, Effect.void)
  yield* queued.cancel
  const error = yield* Effect.flip(queued.await)
  assert.ok(error._tag === "JobError" && error.reason._tag === "JobCancelled")
  assert.strictEqual(error.reason.by, "handle")
  yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
})
await Effect.runPromise(Effect.scoped(program))
