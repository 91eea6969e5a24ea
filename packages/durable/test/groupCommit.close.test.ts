import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as GroupCommit from "../src/internal/groupCommit.ts"

describe("GroupCommit after its scope closed", () => {
  // a write after the close has no fiber to run its statement: it must not wait for one forever
  it.live("a write is interrupted at once, and its statement never runs", () =>
    Effect.gen(function*() {
      const flushed: Array<ReadonlyArray<number>> = []
      const scope = yield* Scope.make()
      const commit = yield* GroupCommit.make({
        maxSize: 10,
        flush: (items: ReadonlyArray<number>) => Effect.sync(() => void flushed.push([...items]))
      }).pipe(Scope.provide(scope))
      yield* commit.write(1)
      yield* Scope.close(scope, Exit.void)
      const late = yield* Effect.exit(commit.write(2)).pipe(Effect.timeout("1 second"))
      assert.isTrue(Exit.hasInterrupts(late))
      assert.deepStrictEqual(flushed, [[1]])
    }))
})
