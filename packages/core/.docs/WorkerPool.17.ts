import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* WorkerPool.submit(pool, Effect.never, { id: "stuck" })
  const report = yield* WorkerPool.shutdown(pool, { gracePeriod: "10 millis" })
  assert.deepStrictEqual(report.jobs.interrupted, ["stuck"])
  assert.ok(report.graceExpired)
  assert.strictEqual(yield* WorkerPool.shutdown(pool), report)
})
await Effect.runPromise(Effect.scoped(program))
