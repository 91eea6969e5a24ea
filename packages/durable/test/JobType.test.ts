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

  it.effect("a batch type's maxSize is checked by DurableWorker.make, naming the option", () =>
    Effect.gen(function*() {
      for (const maxSize of [0, 1.5, 1001, Number.NaN]) {
        const Bad = JobType.makeBatch({ name: "bulk", payload: Schema.Null, maxSize, handler: () => Effect.void })
        const error = yield* Effect.flip(DurableWorker.make({ types: [Noop, Bad], concurrency: 1 }))
        assert.strictEqual(error._tag, "InvalidOptions")
        assert.strictEqual(error.option, "JobType(bulk).maxSize")
        assert.include(error.message, "an integer from 1 to 1000")
      }
      const Good = JobType.makeBatch({ name: "bulk", payload: Schema.Null, maxSize: 1000, handler: () => Effect.void })
      assert.strictEqual(Good.batch?.maxSize, 1000)
      assert.strictEqual(Good.result, undefined)
      yield* DurableWorker.make({ types: [Good], concurrency: 1 })
    }).pipe(Effect.scoped, Effect.provide(DurableQueue.layerMemory())))

  it.effect("a batch type's job on its own is a batch of one, with its context", () =>
    Effect.gen(function*() {
      const calls: Array<ReadonlyArray<JobType.BatchJob<string>>> = []
      const Bulk = JobType.makeBatch({
        name: "bulk",
        payload: Schema.String,
        maxSize: 10,
        maxAttempts: 3,
        handler: (jobs) => Effect.sync(() => void calls.push(jobs))
      })
      yield* Bulk.handler("hello", { id: "j1", type: "bulk", attempt: 2, maxAttempts: 3 })
      assert.deepStrictEqual(calls, [[{ id: "j1", type: "bulk", attempt: 2, maxAttempts: 3, payload: "hello" }]])
      // the same from a contract (producers import only that)
      const Contract = JobType.define({ name: "bulk", payload: Schema.String, maxAttempts: 3 })
      const Implemented = JobType.implementBatch(Contract, { maxSize: 10 }, (jobs) =>
        Effect.sync(() =>
          void calls.push(jobs)
        ))
      assert.strictEqual(Implemented.batch?.maxSize, 10)
      assert.strictEqual(Implemented.maxAttempts, 3)
      yield* Implemented.handler("again", { id: "j2", type: "bulk", attempt: 1, maxAttempts: 3 })
      assert.deepStrictEqual(calls[1], [{ id: "j2", type: "bulk", attempt: 1, maxAttempts: 3, payload: "again" }])
    }))

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

  it.effect("a contract declared without its handler: producers use it, the worker attaches the handler", () =>
    Effect.gen(function*() {
      // what a producer imports: no handler, none of its services
      const Resize = JobType.define({
        name: "resize",
        payload: Schema.Struct({ url: Schema.String, width: Schema.Int }),
        result: Schema.String,
        maxAttempts: 2
      })
      assert.isTrue(JobType.isContract(Resize))
      assert.isFalse(JobType.isJobType(Resize))
      // @ts-expect-error a contract has no handler: the worker needs an implemented type
      const _notRunnable: DurableWorker.Options<JobType.Any> = { types: [Resize], concurrency: 1 }

      const seen: Array<number> = []
      const ResizeHandler = JobType.implement(Resize, ({ url, width }, { attempt }) =>
        Effect.sync(() => {
          seen.push(attempt)
          return `${url}@${width}`
        }))
      assert.strictEqual(ResizeHandler.maxAttempts, 2, "the contract's options carry over")
      yield* DurableWorker.make({ types: [ResizeHandler], concurrency: 1 })
      const id = yield* DurableQueue.enqueue(Resize, { url: "a.png", width: 100 })
      const result = yield* Effect.forkChild(DurableQueue.result(Resize, id, { pollInterval: "10 millis" }), {
        startImmediately: true
      })
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(yield* Fiber.join(result), "a.png@100")
      assert.deepStrictEqual(seen, [1])
      // a bad payload is refused by the contract's schema, as with make
      const error = yield* Effect.flip(DurableQueue.enqueue(Resize, { url: "b.png", width: 1.5 }))
      assert.strictEqual(error._tag, "EncodeFailed")
    }).pipe(Effect.provide(DurableQueue.layerMemory())))
})
