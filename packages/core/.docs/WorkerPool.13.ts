import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* WorkerPool.run(pool, Effect.void)
  const { submitted, succeeded } = yield* WorkerPool.stats(pool)
  console.log(submitted, succeeded) // => 1 1
})
await Effect.runPromise(Effect.scoped(program))
