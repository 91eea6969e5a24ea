import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* WorkerPool.shutdown(pool)
  return yield* WorkerPool.submit(pool, Effect.succeed(1)).pipe(
    Effect.as("accepted"),
    Effect.catchReason("PoolError", "PoolClosed", () => Effect.succeed("closed"))
  )
})
assert.strictEqual(await Effect.runPromise(Effect.scoped(program)), "closed")
