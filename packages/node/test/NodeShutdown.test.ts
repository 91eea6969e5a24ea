import { assert, describe, it } from "@effect/vitest"
import { PoolError } from "@fiberpool/core"
import { NodeMetrics, NodeShutdown } from "@fiberpool/node"
import { Cause, Data, Exit, Result, Runtime } from "effect"

class Custom extends Data.TaggedError("Custom")<{}> {
  override readonly [Runtime.errorExitCode] = 42
}

describe("NodeShutdown.exitCodeOf", () => {
  it("0 for success, and for an interruption after a graceful request", () => {
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.succeed(1), "running"), 0)
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.succeed(1), "graceful"), 0)
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.interrupt(1), "graceful"), 0)
  })

  it("130 for an interruption nobody asked for, as effect's runMain", () => {
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.interrupt(1), "running"), 130)
  })

  it("3 for anything once the shutdown was forced", () => {
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.void, "forced"), 3)
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.interrupt(1), "forced"), 3)
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.fail("boom"), "forced"), 3)
  })

  it("1 for failures and defects, 2 for InvalidOptions, an error's own code when it sets one", () => {
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.fail("boom"), "running"), 1)
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.die(new Error("bug")), "graceful"), 1)
    assert.strictEqual(
      NodeShutdown.exitCodeOf(
        Exit.fail(new NodeMetrics.ListenError({ host: "h", port: 1, code: "EADDRINUSE" })),
        "running"
      ),
      1
    )
    const invalid = new PoolError.InvalidOptions({ option: "port", value: "-1", expected: "a port" })
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.fail(invalid), "running"), 2)
    assert.strictEqual(NodeShutdown.exitCodeOf(Exit.failCause(Cause.fail(new Custom())), "running"), 42)
  })
})

describe("NodeShutdown.validateOptions", () => {
  it("defaults forceExitAfter to 750 ms", () => {
    const resolved = NodeShutdown.validateOptions(undefined)
    assert.ok(Result.isSuccess(resolved) && resolved.success.forceExitAfterMillis === 750)
  })

  it("accepts positive durations in any form", () => {
    for (const [input, millis] of [["2 seconds", 2000], [300, 300], ["10 millis", 10]] as const) {
      const resolved = NodeShutdown.validateOptions({ forceExitAfter: input })
      assert.ok(Result.isSuccess(resolved) && resolved.success.forceExitAfterMillis === millis, String(input))
    }
  })

  it("rejects zero, negative, infinite and malformed durations, naming the option", () => {
    for (const input of [0, -1, "-5 seconds", "Infinity", "soon", Number.NaN] as const) {
      const resolved = NodeShutdown.validateOptions({ forceExitAfter: input as never })
      assert.ok(Result.isFailure(resolved), String(input))
      if (Result.isFailure(resolved)) {
        assert.strictEqual(resolved.failure.option, "forceExitAfter")
        assert.include(resolved.failure.message, "positive, finite duration")
      }
    }
  })
})
