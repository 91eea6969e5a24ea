import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  const handle = yield* WorkerPool.submit(pool, Effect.succeed(42), { id: "answer" })
  assert.strictEqual(handle.id, "answer")
  assert.strictEqual(yield* handle.await, 42)
  assert.strictEqual(yield* handle.status, "succeeded")
})
await Effect.runPromise(Effect.scoped(program))
