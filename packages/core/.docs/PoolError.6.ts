import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  const error = yield* Effect.flip(WorkerPool.run(pool, Effect.never, { timeout: "10 millis" }))
  assert.ok(error._tag === "JobError" && error.reason._tag === "JobTimedOut")
})
await Effect.runPromise(Effect.scoped(program))
