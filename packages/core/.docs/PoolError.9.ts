import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  const handle = yield* WorkerPool.submit(pool, Effect.uninterruptible(Effect.sleep("1 second")))
  yield* Effect.yieldNow
  const report = yield* WorkerPool.shutdown(pool, { gracePeriod: 0, interruptTimeout: "10 millis" })
  assert.deepStrictEqual(report.jobs.abandoned, [handle.id])
  const error = yield* Effect.flip(handle.await)
  assert.ok(error._tag === "JobError" && error.reason._tag === "JobAbandoned")
})
await Effect.runPromise(Effect.scoped(program))
