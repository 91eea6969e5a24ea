import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.Service
  return yield* WorkerPool.run(pool, Effect.succeed("from the app's pool"))
})
const result = await Effect.runPromise(
  program.pipe(Effect.provide(WorkerPool.layer({ concurrency: 2 })))
)
console.log(result) // => from the app's pool
