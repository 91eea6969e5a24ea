import { WorkerPool } from "@fiberpool/core"
import { Effect, Stream } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  const events = yield* WorkerPool.subscribe(pool)
  yield* Effect.exit(WorkerPool.run(pool, Effect.fail("nope"), { id: "bad" }))
  yield* WorkerPool.shutdown(pool)
  const tags = yield* Stream.runCollect(Stream.map(events, (event) => event._tag))
  assert.deepStrictEqual(tags, ["Submitted", "Started", "AttemptFailed", "Failed"])
})
await Effect.runPromise(Effect.scoped(program))
