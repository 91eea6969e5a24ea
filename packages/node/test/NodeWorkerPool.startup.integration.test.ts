import { assert, describe, it } from "@effect/vitest"
import { PoolError } from "@fiberpool/core"
import { Cause, Effect, Exit, Result } from "effect"
import * as NodeError from "../src/NodeError.ts"
import * as NodeWorkerPool from "../src/NodeWorkerPool.ts"
import { Crash, Ping } from "./fixtures/thread-tasks.ts"

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url)

/** Fails the test if `self` takes longer than `millis`: a hang shows as a failure, not as a stuck run. */
const within = <A, E, R>(millis: number, self: Effect.Effect<A, E, R>) =>
  self.pipe(
    Effect.timeoutOrElse({
      duration: millis,
      orElse: () => Effect.die(new Error(`still waiting after ${millis} ms`))
    })
  )

/** The `ThreadStartFailed` that `self` fails with. */
const startFailure = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(self), (exit) => {
    assert.isTrue(Exit.isFailure(exit), "expected a failure")
    const error = Cause.findError((exit as Exit.Failure<A, E>).cause)
    assert.isTrue(
      Result.isSuccess(error),
      `expected a typed error, got ${Cause.pretty((exit as Exit.Failure<A, E>).cause)}`
    )
    const failure = (error as Result.Success<unknown, unknown>).success
    assert.instanceOf(failure, NodeError.NodeError)
    const reason = (failure as NodeError.NodeError).reason
    assert.strictEqual(reason._tag, "ThreadStartFailed")
    return reason as NodeError.ThreadStartFailed
  })

describe("NodeWorkerPool startup never waits unbounded", () => {
  it.live("a file that never calls serve fails make with ThreadStartFailed (timedOut) after startupTimeout", () =>
    Effect.gen(function*() {
      const worker = fixture("thread-never-serves.ts")
      const reason = yield* within(
        15_000,
        startFailure(NodeWorkerPool.make({ worker, threads: 2, startupTimeout: "1 second" }))
      )
      assert.strictEqual(reason.reason, "timedOut")
      assert.strictEqual(reason.worker, worker.href)
      assert.include(reason.message, worker.href)
      assert.include(reason.message, "did not call NodeThreadRunner.serve within 1000 ms")
    }).pipe(Effect.scoped))

  it.live("a worker file whose setup dies during import (thread kept alive) fails make, not hangs", () =>
    Effect.gen(function*() {
      const worker = fixture("thread-setup-dies.ts")
      const reason = yield* within(
        20_000,
        startFailure(NodeWorkerPool.make({ worker, threads: 1, startupTimeout: "2 seconds" }))
      )
      assert.strictEqual(reason.reason, "timedOut")
      assert.strictEqual(reason.worker, worker.href)
    }).pipe(Effect.scoped))

  it.live("a worker file that throws at import, or does not exist, fails make with ThreadStartFailed (loadFailed)", () =>
    Effect.gen(function*() {
      const throws = fixture("thread-throws-at-import.ts")
      const thrown = yield* within(15_000, startFailure(NodeWorkerPool.make({ worker: throws, threads: 2 })))
      assert.strictEqual(thrown.reason, "loadFailed")
      assert.include(thrown.message, throws.href)
      assert.include(thrown.detail, "boom at import")

      const missing = fixture("thread-does-not-exist.ts")
      const notFound = yield* within(15_000, startFailure(NodeWorkerPool.make({ worker: missing, threads: 1 })))
      assert.strictEqual(notFound.reason, "loadFailed")
      assert.include(notFound.detail, "thread-does-not-exist.ts")
    }).pipe(Effect.scoped))

  it.live("a respawned thread that never calls serve fails the job waiting on it within startupTimeout", () =>
    Effect.gen(function*() {
      const starts = new SharedArrayBuffer(4)
      const threads = yield* NodeWorkerPool.make({
        worker: fixture("thread-serves-once.ts"),
        threads: 1,
        startupTimeout: "4 seconds",
        workerOptions: { workerData: { starts } }
      })
      assert.isNumber(yield* NodeWorkerPool.run(threads, Ping, 0))
      // the crash respawns the thread; the respawn never serves
      const crash = yield* Effect.flip(NodeWorkerPool.run(threads, Crash, "exit"))
      assert.strictEqual(crash._tag === "NodeError" && crash.reason._tag, "ThreadCrashed")
      const reason = yield* within(20_000, startFailure(NodeWorkerPool.run(threads, Ping, 1)))
      assert.strictEqual(reason.reason, "timedOut")
      assert.strictEqual(new Int32Array(starts)[0], 2)
      // the pool is still usable: the next job starts a thread again (and it fails the same way, bounded)
      const again = yield* within(20_000, startFailure(NodeWorkerPool.run(threads, Ping, 2)))
      assert.strictEqual(again.reason, "timedOut")
      assert.deepStrictEqual(yield* NodeWorkerPool.threadStats(threads), { busy: 0, idle: 0, respawned: 1 })
    }).pipe(Effect.scoped))

  it.live("an invalid worker option is InvalidOptions naming it, not a defect", () =>
    Effect.gen(function*() {
      for (const worker of ["x", "worker.ts", "", new URL("https://example.com/worker.ts")]) {
        const exit = yield* Effect.exit(NodeWorkerPool.make({ worker, threads: 1 }))
        assert.isTrue(Exit.isFailure(exit))
        const error = Cause.findError((exit as Exit.Failure<unknown, unknown>).cause)
        assert.isTrue(Result.isSuccess(error), `a typed error for ${String(worker)}`)
        const invalid = (error as Result.Success<unknown, unknown>).success
        assert.instanceOf(invalid, PoolError.InvalidOptions)
        assert.strictEqual((invalid as PoolError.InvalidOptions).option, "worker")
      }
      const bad = yield* Effect.flip(NodeWorkerPool.make({ worker: "x", threads: 1 }))
      assert.strictEqual(
        bad.message,
        "Invalid option \"worker\": expected a URL (new URL(\"./worker.ts\", import.meta.url)), an absolute path, " +
          "or a path starting with ./ or ../, got \"x\""
      )
    }).pipe(Effect.scoped))
})
