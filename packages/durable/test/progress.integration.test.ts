import { assert, describe, it } from "@effect/vitest"
import { Job } from "@fiberpool/core"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Deferred, Effect, Schema } from "effect"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

describe.each(stores)("progress on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test(
    "the handler reports progress, the producer reads it while the job runs and after it ends",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const step = yield* Deferred.make<void>()
        const finish = yield* Deferred.make<void>()
        const Export = JobType.make({
          name: "export",
          payload: Schema.Int,
          result: Schema.String,
          handler: (rows) =>
            Effect.gen(function*() {
              yield* JobType.reportProgress({ done: 0, total: rows })
              yield* Deferred.await(step)
              yield* JobType.reportProgress({ done: rows, total: rows, stage: "upload" })
              yield* Deferred.await(finish)
              return "done"
            })
        })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
          effect.pipe(Effect.provideContext(producer))
        assert.strictEqual(yield* run(DurableQueue.progress("export-1")), undefined)
        yield* startConsumer(connect(), { types: [Export], concurrency: 1 })
        yield* run(DurableQueue.enqueue(Export, 40, { id: "export-1" }))
        const read = run(DurableQueue.progress("export-1"))
        yield* waitUntil("the first report", Effect.map(read, (p) => p !== undefined))
        const first = yield* read
        assert.deepStrictEqual(first?.value, { done: 0, total: 40 })
        assert.strictEqual(first?.attempt, 1)

        yield* Deferred.succeed(step, undefined)
        yield* waitUntil("the second report", Effect.map(read, (p) => (p?.value as { done: number }).done === 40))
        assert.deepStrictEqual((yield* read)?.value, { done: 40, total: 40, stage: "upload" })

        yield* Deferred.succeed(finish, undefined)
        assert.strictEqual(yield* run(DurableQueue.result(Export, "export-1")), "done")
        assert.deepStrictEqual((yield* read)?.value, { done: 40, total: 40, stage: "upload" }, "kept after the end")
      }),
    30_000
  )

  test(
    "core's Job.Current progress in a handler is stored too, the last report before the result",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const Import = JobType.make({
          name: "import",
          payload: Schema.Int,
          result: Schema.String,
          handler: (rows) =>
            Effect.gen(function*() {
              const job = yield* Job.Current
              for (let done = 1; done <= rows; done++) yield* job.progress({ done, rows })
              return "imported"
            })
        })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
          effect.pipe(Effect.provideContext(producer))
        yield* startConsumer(connect(), { types: [Import], concurrency: 1 })
        yield* run(DurableQueue.enqueue(Import, 5, { id: "import-1" }))
        assert.strictEqual(yield* run(DurableQueue.result(Import, "import-1")), "imported")
        // five reports in one instant: core sends the first and the last (rate-limited), both are stored
        assert.deepStrictEqual((yield* run(DurableQueue.progress("import-1")))?.value, { done: 5, rows: 5 })
      }),
    30_000
  )

  test("a report that is not JSON or too large fails in the handler with a typed error", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const errors: Array<string> = []
      const done = yield* Deferred.make<void>()
      const Bad = JobType.make({
        name: "bad",
        payload: Schema.String,
        handler: () =>
          Effect.gen(function*() {
            errors.push((yield* Effect.flip(JobType.reportProgress(10n)))._tag)
            errors.push((yield* Effect.flip(JobType.reportProgress("x".repeat(70_000))))._tag)
            yield* Deferred.succeed(done, undefined)
          })
      })
      yield* startConsumer(connect(), { types: [Bad], concurrency: 1 })
      yield* DurableQueue.enqueue(Bad, "go").pipe(Effect.provideContext(yield* connectProducer(connect())))
      yield* Deferred.await(done).pipe(Effect.timeout("10 seconds"))
      assert.deepStrictEqual(errors, ["EncodeFailed", "PayloadTooLarge"])
      // outside a handler, a report does nothing
      yield* JobType.reportProgress(1)
    }), 30_000)
})
