import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  return yield* WorkerPool.run(pool, Effect.never, { timeout: "5 millis" }).pipe(
    Effect.catchReason(
      "JobError",
      "JobTimedOut",
      (reason) => Effect.succeed(`gave up after ${reason.timeoutMillis} ms`)
    )
  )
})
assert.strictEqual(await Effect.runPromise(Effect.scoped(program)), "gave up after 5 ms")
