import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 4, capacity: 100 })
  const results = yield* Effect.forEach([1, 2, 3], (n) => WorkerPool.run(pool, Effect.succeed(n * 10)), {
    concurrency: "unbounded"
  })
  console.log(results) // => [ 10, 20, 30 ]
})
await Effect.runPromise(Effect.scoped(program))
