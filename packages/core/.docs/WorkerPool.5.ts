import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  assert.ok(WorkerPool.isWorkerPool(pool))
  assert.ok(!WorkerPool.isWorkerPool({ concurrency: 1 }))
})
await Effect.runPromise(Effect.scoped(program))
