import { WorkerPool } from "@fiberpool/core"
import { Effect, Layer } from "effect"

const PoolLive = WorkerPool.layer({ name: "images", concurrency: 4, capacity: 100 })
const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.Service
  console.log(pool.name) // => images
})
await Effect.runPromise(Effect.provide(program, PoolLive))
