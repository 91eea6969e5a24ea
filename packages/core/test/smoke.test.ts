import { assert, describe, it } from "@effect/vitest"
import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

describe("smoke", () => {
  it.effect("runs", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 2 })
      const r = yield* WorkerPool.run(pool, Effect.succeed(42))
      assert.strictEqual(r, 42)
    }))
})
