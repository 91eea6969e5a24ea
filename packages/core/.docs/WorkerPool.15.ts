import { WorkerPool } from "@fiberpool/core"
import { Effect, Fiber, Stream } from "effect"
import assert from "node:assert"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 2 })
  const done = yield* WorkerPool.events(pool).pipe(
    Stream.filter((event) => event._tag === "Succeeded"),
    Stream.take(2),
    Stream.runCollect,
    Effect.forkChild({ startImmediately: true })
  )
  yield* Effect.yieldNow
  yield* WorkerPool.run(pool, Effect.void)
  yield* WorkerPool.run(pool, Effect.void)
  assert.strictEqual((yield* Fiber.join(done)).length, 2)
})
await Effect.runPromise(Effect.scoped(program))
