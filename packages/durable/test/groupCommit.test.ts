import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import * as GroupCommit from "../src/internal/groupCommit.ts"

/** A flush that records each statement's items and waits for the test to let it finish. */
const recorder = (options?: { readonly failWhen?: (items: ReadonlyArray<number>) => boolean }) => {
  const statements: Array<ReadonlyArray<number>> = []
  const gates: Array<Deferred.Deferred<void>> = []
  const flush = (items: ReadonlyArray<number>) =>
    Effect.gen(function*() {
      statements.push([...items])
      const gate = yield* Deferred.make<void>()
      gates.push(gate)
      yield* Deferred.await(gate)
      if (options?.failWhen?.(items)) return yield* Effect.fail(`statement ${items.join(",")} failed`)
    })
  return { statements, gates, flush }
}

describe("GroupCommit", () => {
  it.effect("writes made in one turn share a statement; writes made while it runs share the next", () =>
    Effect.gen(function*() {
      const { flush, gates, statements } = recorder()
      const commit = yield* GroupCommit.make({ maxSize: 100, flush })
      const first = yield* Effect.forkChild(Effect.forEach([1, 2, 3], commit.write, { concurrency: "unbounded" }))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      assert.deepStrictEqual(statements, [[1, 2, 3]])
      // the first statement is still running: these wait and go together
      const second = yield* Effect.forkChild(Effect.forEach([4, 5], commit.write, { concurrency: "unbounded" }))
      yield* Effect.yieldNow
      assert.deepStrictEqual(statements, [[1, 2, 3]])
      assert.isUndefined(first.pollUnsafe())
      yield* Deferred.succeed(gates[0], undefined)
      yield* Fiber.join(first)
      yield* Effect.yieldNow
      assert.deepStrictEqual(statements, [[1, 2, 3], [4, 5]])
      assert.isUndefined(second.pollUnsafe())
      yield* Deferred.succeed(gates[1], undefined)
      yield* Fiber.join(second)
    }))

  it.effect("writeAll joins the waiting group; takeNext hands a waiting group to another statement, giveBack returns it", () =>
    Effect.gen(function*() {
      const { flush, gates, statements } = recorder()
      const commit = yield* GroupCommit.make({ maxSize: 100, flush })
      const first = yield* Effect.forkChild(commit.writeAll([1, 2]))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      assert.deepStrictEqual(statements, [[1, 2]])
      // while it runs: a batch waits, and another statement takes it and writes it itself
      const second = yield* Effect.forkChild(commit.writeAll([3, 4, 5]))
      yield* Effect.yieldNow
      const taken = commit.takeNext()
      assert.deepStrictEqual(taken?.items, [3, 4, 5])
      assert.isUndefined(commit.takeNext(), "nothing else waits")
      taken!.end()
      yield* Fiber.join(second)
      // a taken group whose statement failed is given back: the group commit writes it
      const third = yield* Effect.forkChild(commit.writeAll([6]))
      yield* Effect.yieldNow
      const again = commit.takeNext()!
      yield* again.giveBack
      yield* Deferred.succeed(gates[0], undefined)
      yield* Fiber.join(first)
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      assert.deepStrictEqual(statements, [[1, 2], [6]])
      assert.isUndefined(third.pollUnsafe())
      yield* Deferred.succeed(gates[1], undefined)
      yield* Fiber.join(third)
    }))

  it.effect("a statement holds at most maxSize items", () =>
    Effect.gen(function*() {
      const { flush, gates, statements } = recorder()
      const commit = yield* GroupCommit.make({ maxSize: 2, flush })
      const writes = yield* Effect.forkChild(Effect.forEach([1, 2, 3, 4, 5], commit.write, { concurrency: 5 }))
      while (statements.length < 3) {
        yield* Effect.yieldNow
        const gate = gates[statements.length - 1]
        if (gate !== undefined) yield* Deferred.succeed(gate, undefined)
      }
      yield* Deferred.succeed(gates[2], undefined)
      yield* Fiber.join(writes)
      assert.deepStrictEqual(statements, [[1, 2], [3, 4], [5]])
    }))

  it.effect("a failed statement fails its own writers only", () =>
    Effect.gen(function*() {
      const { flush, gates } = recorder({ failWhen: (items) => items.includes(1) })
      const commit = yield* GroupCommit.make({ maxSize: 10, flush })
      const a = yield* Effect.forkChild(Effect.exit(commit.write(1)))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      const b = yield* Effect.forkChild(Effect.exit(commit.write(2)))
      yield* Effect.yieldNow
      yield* Deferred.succeed(gates[0], undefined)
      assert.deepStrictEqual(yield* Fiber.join(a), Exit.fail("statement 1 failed"))
      yield* Effect.yieldNow
      yield* Deferred.succeed(gates[1], undefined)
      assert.isTrue(Exit.isSuccess(yield* Fiber.join(b)))
    }))

  it.effect("closing the scope interrupts the writers still waiting", () =>
    Effect.gen(function*() {
      const { flush } = recorder()
      const scope = yield* Scope.make()
      const commit = yield* GroupCommit.make({ maxSize: 10, flush }).pipe(Scope.provide(scope))
      const running = yield* Effect.forkChild(Effect.exit(commit.write(1)))
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      const waiting = yield* Effect.forkChild(Effect.exit(commit.write(2)))
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.join(running)))
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.join(waiting)))
    }))
})
