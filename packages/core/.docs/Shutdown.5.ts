import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* WorkerPool.submit(pool, Effect.sleep("20 millis"), { id: "slow" })
  yield* WorkerPool.submit(pool, Effect.void, { id: "queued" })
  const report = yield* WorkerPool.shutdown(pool, { mode: "cancel" })
  assert.deepStrictEqual(report.jobs.succeeded, ["slow"])
  assert.deepStrictEqual(report.jobs.cancelled, ["queued"])
})
await Effect.runPromise(Effect.scoped(program))
