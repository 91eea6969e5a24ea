import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as NodeError from "../src/NodeError.ts"
import * as NodeWorkerPool from "../src/NodeWorkerPool.ts"
import { Divide, Misbehave, Ping } from "./fixtures/thread-tasks.ts"

const worker = new URL("./fixtures/thread-worker.ts", import.meta.url)

/** The reason of the NodeError that `self` fails with. */
const reasonOf = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(self), (error) => {
    assert.instanceOf(error, NodeError.NodeError)
    return (error as NodeError.NodeError).reason
  })

// tasks whose main-side definition disagrees with what the worker file serves under the same name
const PingString = NodeWorkerPool.defineTask({ name: "ping", input: Schema.String, output: Schema.Number })
const PingReturnsString = NodeWorkerPool.defineTask({ name: "ping", input: Schema.Number, output: Schema.String })
const NotServed = NodeWorkerPool.defineTask({ name: "resize", input: Schema.Number, output: Schema.Number })

describe("NodeWorkerPool: bad values fail their job with a typed error, and the worker keeps working", () => {
  it.live("input, output and error that do not match the task's Schemas; a task the worker does not serve", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })

      const mainInput = yield* reasonOf(NodeWorkerPool.run(threads, Divide, { a: "six", b: 3 } as never))
      assert.strictEqual(mainInput._tag, "InvalidInput")
      assert.deepInclude(mainInput, { task: "divide", side: "main" })
      assert.include((mainInput as NodeError.InvalidInput).issue, "[\"a\"]")

      const threadInput = yield* reasonOf(NodeWorkerPool.run(threads, PingString, "hello"))
      assert.strictEqual(threadInput._tag, "InvalidInput")
      assert.deepInclude(threadInput, { task: "ping", side: "thread" })

      const threadOutput = yield* reasonOf(NodeWorkerPool.run(threads, Misbehave, "output"))
      assert.strictEqual(threadOutput._tag, "InvalidOutput")
      assert.deepInclude(threadOutput, { task: "misbehave", part: "output" })

      const threadError = yield* reasonOf(NodeWorkerPool.run(threads, Misbehave, "error"))
      assert.strictEqual(threadError._tag, "InvalidOutput")
      assert.deepInclude(threadError, { task: "misbehave", part: "error" })

      const mainOutput = yield* reasonOf(NodeWorkerPool.run(threads, PingReturnsString, 1))
      assert.strictEqual(mainOutput._tag, "InvalidOutput")
      assert.deepInclude(mainOutput, { task: "ping", part: "output" })

      const unknown = yield* reasonOf(NodeWorkerPool.run(threads, NotServed, 1))
      assert.strictEqual(unknown._tag, "TaskNotServed")
      assert.include(unknown.message, "\"resize\"")
      assert.includeMembers([...(unknown as NodeError.TaskNotServed).served], ["divide", "ping", "misbehave"])

      // the same thread served every one of them, and serves on
      assert.strictEqual((yield* NodeWorkerPool.run(threads, Divide, { a: 6, b: 3 })).quotient, 2)
      assert.isNumber(yield* NodeWorkerPool.run(threads, Ping, 0))
      assert.deepStrictEqual(yield* NodeWorkerPool.threadStats(threads), { busy: 0, idle: 1, respawned: 0 })
    }).pipe(Effect.scoped))

  it.live("one reason is matched with Effect.catchReason", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })
      const served = yield* NodeWorkerPool.run(threads, NotServed, 1).pipe(
        Effect.catchReason("NodeError", "TaskNotServed", (reason) => Effect.succeed(reason.served.length)),
        Effect.orDie
      )
      assert.isAbove(served, 0)
    }).pipe(Effect.scoped))
})
