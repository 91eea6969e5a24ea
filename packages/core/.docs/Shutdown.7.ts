import { Shutdown, WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const controller = Shutdown.makeController()
const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1 })
  yield* Shutdown.requestGraceful(controller)
  assert.strictEqual((yield* WorkerPool.stats(pool)).closed, true)
}).pipe(Effect.provideService(Shutdown.CurrentController, controller))
await Effect.runPromise(Effect.scoped(program))
