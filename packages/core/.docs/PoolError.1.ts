import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
import assert from "node:assert"

const error = await Effect.runPromise(
  Effect.flip(Effect.scoped(WorkerPool.make({ concurrency: 0 })))
)
assert.strictEqual(error._tag, "InvalidOptions")
assert.strictEqual(error.option, "concurrency")
console.log(error.message) // => Invalid option "concurrency": expected a positive integer, got 0
