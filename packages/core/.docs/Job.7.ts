import { Job, WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  const handle = yield* WorkerPool.submit(pool, Effect.void)
  assert.ok(Job.isJobHandle(handle))
  assert.ok(!Job.isJobHandle({ id: "x" }))
})
await Effect.runPromise(Effect.scoped(program))
