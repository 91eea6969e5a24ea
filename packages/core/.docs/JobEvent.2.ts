import { WorkerPool } from "@fiberpool/core"
import { Effect, Stream } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  const events = yield* WorkerPool.subscribe(pool)
  yield* WorkerPool.run(pool, Effect.succeed(1), { id: "a" })
  yield* WorkerPool.shutdown(pool)
  const kinds = yield* Stream.runCollect(Stream.map(events, (e) => `${e._tag} ${e.jobId}`))
  assert.deepStrictEqual(kinds, ["Submitted a", "Started a", "Succeeded a"])
})
await Effect.runPromise(Effect.scoped(program))
