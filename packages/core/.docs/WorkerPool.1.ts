import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const pool: WorkerPool.WorkerPool = yield* WorkerPool.make({ name: "mailer", concurrency: 3 })
  console.log(pool.name, pool.concurrency) // => mailer 3
})
await Effect.runPromise(Effect.scoped(program))
