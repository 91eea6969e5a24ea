import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  const handle = yield* pool.pipe(WorkerPool.submit(Effect.succeed(7)))
  console.log(yield* handle.await) // => 7
})
await Effect.runPromise(Effect.scoped(program))
