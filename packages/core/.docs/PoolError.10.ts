import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 0, backpressure: "dropping" })
  yield* WorkerPool.submit(pool, Effect.never)
  const dropped = yield* WorkerPool.submit(pool, Effect.void)
  const error = yield* Effect.flip(dropped.await)
  assert.ok(error._tag === "JobError" && error.reason._tag === "JobDropped")
  yield* WorkerPool.shutdown(pool, { gracePeriod: 0 })
})
await Effect.runPromise(Effect.scoped(program))
