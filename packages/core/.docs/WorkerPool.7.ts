import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 2 })
  const handle = yield* WorkerPool.submit(pool, Effect.succeed("done"), { id: "report-1" })
  assert.strictEqual(yield* handle.await, "done")
  // data-last
  const other = yield* pool.pipe(WorkerPool.submit(Effect.succeed(1)))
  assert.strictEqual(yield* other.await, 1)
})
await Effect.runPromise(Effect.scoped(program))
