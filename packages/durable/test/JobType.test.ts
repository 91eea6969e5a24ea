import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
import { Duration, Effect, Fiber, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"
import { retryDelay } from "../src/JobType.ts"

const Noop = JobType.make({ name: "noop", payload: Schema.Null, handler: () => Effect.void })

describe("JobType", () => {
  it.effect("replays the retry schedule from the attempt count alone", () =>
    Effect.gen(function*() {
      const delays = yield* Effect.forEach([1, 2, 3, 4], (attempts) => retryDelay(Noop, attempts))
      assert.deepStrictEqual(delays.map(Duration.toMillis), [1000, 2000, 4000, 8000])
      const capped = JobType.make({
        name: "capped",
        payload: Schema.Null,
        retry: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 })),
        handler: () => Effect.void
      })
      // once the schedule is done, its last delay is kept
      const after = yield* Effect.forEach([1, 2, 5], (attempts) => retryDelay(capped, attempts))
      assert.deepStrictEqual(after.map(Duration.toMillis), [1000, 1000, 1000])
    }))

  it.effect("never throws: bad options are a typed error of DurableWorker.make", () =>
    Effect.gen(function*() {
      const NoAttempts = JobType.make({ name: "x", payload: Schema.Null, maxAttempts: 0, handler: () => Effect.void })
      const error = yield* Effect.flip(DurableWorker.make({ types: [Noop, NoAttempts], concurrency: 1 }))
      assert.strictEqual(error.option, "JobType(x).maxAttempts")
      const NoName = JobType.make({ name: "", payload: Schema.Null, handler: () => Effect.void })
      assert.strictEqual(
        (yield* Effect.flip(DurableWorker.make({ types: [NoName], concurrency: 1 }))).option,
        "JobType.name"
      )
      assert.strictEqual(Noop.maxAttempts, 5)
      assert.isTrue(JobType.isJobType(Noop))
    }).pipe(Effect.provide(DurableQueue.layerMemory())))

  it.effect("a delivery that times out counts as a failed attempt and is retried after the type's delay", () =>
    Effect.gen(function*() {
      const attempts: Array<number> = []
      const Slow = JobType.make({
        name: "slow",
        payload: Schema.Null,
        timeout: "1 second",
        retry: Schedule.spaced("10 seconds"),
        maxAttempts: 2,
        result: Schema.Number,
        handler: (_, { attempt }) =>
          Effect.as(
            Effect.andThen(
              Effect.sync(() => attempts.push(attempt)),
              Effect.sleep(attempt === 1 ? "1 hour" : "0 millis")
            ),
            attempt
          )
      })
      yield* DurableWorker.make({ types: [Slow], concurrency: 1 })
      yield* DurableQueue.enqueue(Slow, null, { id: "s" })
      const result = yield* Effect.forkChild(DurableQueue.result(Slow, "s", { pollInterval: "1 second" }), {
        startImmediately: true
      })
      yield* TestClock.adjust("1 second") // attempt 1 times out
      yield* TestClock.adjust("9 seconds")
      assert.deepStrictEqual(attempts, [1])
      yield* TestClock.adjust("1 second") // retry delay elapsed
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(attempts, [1, 2])
      assert.strictEqual(yield* Fiber.join(result), 2)
    }).pipe(Effect.provide(DurableQueue.layerMemory())))
})
