import { WorkerPool } from "@fiberpool/core"
import { ConfigProvider, Effect, Layer } from "effect"

const PoolLive = WorkerPool.layerConfig(WorkerPool.config({ concurrency: 2 })).pipe(
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { CONCURRENCY: "6" } })))
)
const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.Service
  return pool.concurrency
})
console.log(await Effect.runPromise(Effect.provide(program, PoolLive))) // => 6
