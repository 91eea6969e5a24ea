import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  console.log(yield* WorkerPool.run(pool, Effect.succeed("ok"))) // => ok
})
await Effect.runPromise(Effect.scoped(program))
