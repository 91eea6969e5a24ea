import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* WorkerPool.submit(pool, Effect.never, { id: "invoice-7" })
  const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void, { id: "invoice-7" }))
  assert.strictEqual(error.reason._tag, "DuplicateJobId")
  yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
})
await Effect.runPromise(Effect.scoped(program))
