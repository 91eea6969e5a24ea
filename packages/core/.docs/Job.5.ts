import { WorkerPool } from "@fiberpool/core"
import { Effect, Schedule } from "effect"

const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 2 })
  return yield* WorkerPool.run(pool, Effect.succeed("sent"), {
    id: "email-42",
    timeout: "5 seconds",
    retry: Schedule.exponential("100 millis"),
    metadata: { to: "ada@example.com" }
  })
})
console.log(await Effect.runPromise(Effect.scoped(program))) // => sent
