import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 2 })
  const sum = yield* WorkerPool.run(pool, Effect.succeed(1 + 1))
  assert.strictEqual(sum, 2)
  const error = yield* Effect.flip(WorkerPool.run(pool, Effect.fail("bad input" as const)))
  assert.strictEqual(error, "bad input")
})
await Effect.runPromise(Effect.scoped(program))
