import { assert, describe, it } from "@effect/vitest"
import { PoolError } from "@fiberpool/core"
import { Effect } from "effect"
import * as NodeWorkerPool from "../src/NodeWorkerPool.ts"

// every case is rejected before any thread starts: no worker file is loaded
const worker = new URL("./fixtures/thread-worker.ts", import.meta.url)

describe("NodeWorkerPool options", () => {
  const rejected: ReadonlyArray<readonly [string, NodeWorkerPool.Options, string]> = [
    ["threads", { worker, threads: 0 }, "a positive integer, got 0"],
    ["threads", { worker, threads: 1.5 }, "a positive integer, got 1.5"],
    [
      "threads",
      { worker, threads: 2, maxThreads: 4 },
      "no fixed size together with minThreads, maxThreads or idleTimeout"
    ],
    ["minThreads", { worker, minThreads: 0 }, "a positive integer, got 0"],
    ["maxThreads", { worker, minThreads: 3, maxThreads: 2 }, "at least minThreads (3), got 2"],
    ["idleTimeout", { worker, maxThreads: 2, idleTimeout: -1 }, "a positive, finite duration, got -1"],
    [
      "startupTimeout",
      { worker, threads: 1, startupTimeout: "soon" as never },
      "a positive, finite duration, got \"soon\""
    ],
    ["worker", { worker: "x" }, "got \"x\""],
    ["name", { worker, threads: 1, name: "" }, "a non-empty string, got \"\""],
    ["workerOptions", { worker, threads: 1, workerOptions: 3 as never }, "an object, got 3"]
  ]
  for (const [option, options, expected] of rejected) {
    it.effect(`rejects ${option}: ${expected}`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(NodeWorkerPool.make(options))
        assert.instanceOf(error, PoolError.InvalidOptions)
        assert.strictEqual((error as PoolError.InvalidOptions).option, option)
        assert.include(error.message, expected)
      }).pipe(Effect.scoped))
  }
})
