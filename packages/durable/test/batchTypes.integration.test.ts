import { assert, describe, it } from "@effect/vitest"
import { DurableFlow, DurableQueue, JobType } from "@fiberpool/durable"
import { Context, Duration, Effect, Schedule, Schema } from "effect"
import { applyRetention } from "../src/DurableQueue.ts"
import { makeRecordingTracer } from "./utils/spans.ts"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

// Batch job types (JobType.makeBatch) on every store: the SQL stores hand a handler call up to `maxSize` of the
// jobs one claim returns; the memory and Redis stores claim one job at a time, so each call holds one job.
describe.each(stores)("batch job types on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test(
    "every job is handled once, in calls of at most maxSize (more than one a call on the SQL stores)",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const calls: Array<ReadonlyArray<number>> = []
        const Index = JobType.makeBatch({
          name: "index",
          payload: Schema.Int,
          maxSize: 10,
          handler: (jobs) => Effect.sync(() => void calls.push(jobs.map((job) => job.payload)))
        })
        const producer = yield* connectProducer(connect())
        const ids = yield* Effect.forEach(
          Array.from({ length: 25 }, (_, n) => n),
          (n) => DurableQueue.enqueue(Index, n),
          { concurrency: 1 }
        ).pipe(Effect.provideContext(producer))
        yield* startConsumer(connect(), { types: [Index], concurrency: 32 })
        assert.strictEqual(ids.length, 25)
        // a batch type keeps no result: what its handler saw is the record
        yield* waitUntil("25 jobs handled", Effect.sync(() => calls.flat().length >= 25))
        yield* Effect.sleep("300 millis") // nothing runs twice

        const handled = calls.flat().sort((a, b) => a - b)
        assert.deepStrictEqual(handled, Array.from({ length: 25 }, (_, n) => n), "each job once")
        const sizes = calls.map((call) => call.length)
        assert.isTrue(sizes.every((size) => size >= 1 && size <= 10), `call sizes ${sizes}`)
        if (store.sql) {
          // the 25 jobs were waiting when the worker started: its first claim took them all
          assert.strictEqual(Math.max(...sizes), 10, `call sizes ${sizes}`)
        } else {
          assert.isTrue(sizes.every((size) => size === 1), `call sizes ${sizes}`)
        }
      }),
    30_000
  )

  test(
    "a failed call retries each of its jobs with its own attempt count, and dead-letters those at their last",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const seen: Array<{ readonly id: string; readonly attempt: number }> = []
        const Flaky = JobType.makeBatch({
          name: "flaky",
          payload: Schema.String,
          maxSize: 10,
          maxAttempts: 2,
          retry: Schedule.spaced("10 millis"),
          handler: (jobs) =>
            Effect.suspend(() => {
              for (const job of jobs) seen.push({ id: job.id, attempt: job.attempt })
              // fails while any job of the call is at its first attempt
              return jobs.some((job) => job.attempt === 1) ? Effect.fail("the bulk API is down") : Effect.void
            })
        })
        const Hopeless = JobType.makeBatch({
          name: "hopeless",
          payload: Schema.String,
          maxSize: 10,
          maxAttempts: 1,
          handler: () => Effect.fail("never works")
        })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
        for (const id of ["a", "b", "c"]) yield* run(DurableQueue.enqueue(Flaky, id, { id }))
        for (const id of ["x", "y"]) yield* run(DurableQueue.enqueue(Hopeless, id, { id }))
        yield* startConsumer(connect(), { types: [Flaky, Hopeless], concurrency: 16 })

        yield* waitUntil(
          "a, b and c at their second attempt",
          Effect.sync(() => seen.filter((s) => s.attempt === 2).length >= 3)
        )
        yield* Effect.sleep("300 millis") // no third attempt
        for (const id of ["a", "b", "c"]) {
          const attempts = seen.filter((s) => s.id === id).map((s) => s.attempt)
          assert.deepStrictEqual(attempts, [1, 2], `${id}: attempts ${attempts}`)
        }
        yield* waitUntil(
          "both hopeless jobs are dead letters",
          Effect.map(run(DurableQueue.deadLetters({ type: "hopeless" })), (letters) => letters.length === 2)
        )
        const letters = yield* run(DurableQueue.deadLetters({ type: "hopeless" }))
        assert.deepStrictEqual(letters.map((letter) => [letter.id, letter.attempts]).sort(), [["x", 1], ["y", 1]])
        for (const letter of letters) assert.include(letter.error, "never works")
        assert.deepStrictEqual(yield* run(DurableQueue.deadLetters({ type: "flaky" })), [])
      }),
    30_000
  )

  test(
    "a handler that throws is a failed attempt of each of its jobs: they are retried, the worker goes on",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const seen: Array<{ readonly id: string; readonly attempt: number }> = []
        const Throws = JobType.makeBatch({
          name: "throws",
          payload: Schema.Int,
          maxSize: 10,
          retry: Schedule.spaced("10 millis"),
          handler: (jobs) => {
            for (const job of jobs) seen.push({ id: job.id, attempt: job.attempt })
            // thrown while building the effect, not failed inside it
            if (jobs.some((job) => job.attempt === 1)) throw new TypeError("not a function")
            return Effect.void
          }
        })
        const producer = yield* connectProducer(connect())
        for (const id of ["t1", "t2", "t3"]) {
          yield* DurableQueue.enqueue(Throws, 0, { id }).pipe(Effect.provideContext(producer))
        }
        yield* startConsumer(connect(), { types: [Throws], concurrency: 8 })
        yield* waitUntil(
          "t1, t2 and t3 at their second attempt",
          Effect.sync(() => seen.filter((s) => s.attempt === 2).length >= 3)
        )
        for (const id of ["t1", "t2", "t3"]) {
          assert.deepStrictEqual(seen.filter((s) => s.id === id).map((s) => s.attempt), [1, 2], id)
        }
        // the slots came back: a later job runs too
        yield* DurableQueue.enqueue(Throws, 0, { id: "later" }).pipe(Effect.provideContext(producer))
        yield* waitUntil("a later job runs", Effect.sync(() => seen.some((s) => s.id === "later")))
      }),
    30_000
  )

  test("a job whose payload does not decode is dead-lettered alone; the others run", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const calls: Array<ReadonlyArray<string>> = []
      const Bulk = JobType.makeBatch({
        name: "bulk",
        payload: Schema.Struct({ to: Schema.String }),
        maxSize: 10,
        handler: (jobs) => Effect.sync(() => void calls.push(jobs.map((job) => job.payload.to)))
      })
      const producer = yield* connectProducer(connect())
      const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
      yield* run(DurableQueue.enqueue(Bulk, { to: "1" }, { id: "one" }))
      yield* run(DurableQueue.enqueueEncoded("bulk", { to: 2 }, { id: "bad" }))
      yield* run(DurableQueue.enqueue(Bulk, { to: "3" }, { id: "three" }))
      yield* startConsumer(connect(), { types: [Bulk], concurrency: 8 })

      yield* waitUntil("one and three handled", Effect.sync(() => calls.flat().length >= 2))
      yield* waitUntil(
        "bad is a dead letter",
        Effect.map(run(DurableQueue.deadLetters()), (letters) => letters.length === 1)
      )
      const [letter] = yield* run(DurableQueue.deadLetters())
      assert.strictEqual(letter.id, "bad")
      assert.match(letter.error, /Job bad \(bulk\): the payload does not match the schema/)
      yield* Effect.sleep("300 millis") // nothing runs twice
      assert.deepStrictEqual(calls.flat().sort(), ["1", "3"])
      if (store.sql) assert.deepStrictEqual(calls.map((call) => [...call].sort()), [["1", "3"]])
    }), 30_000)

  test(
    "a batch still running when the worker shuts down is handed back whole, its attempts not counted",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const starts: Array<{ readonly worker: string; readonly id: string; readonly attempt: number }> = []
        const make = (worker: string) =>
          JobType.makeBatch({
            name: "slow",
            payload: Schema.Int,
            maxSize: 10,
            handler: (jobs) =>
              Effect.andThen(
                Effect.sync(() => {
                  for (const job of jobs) starts.push({ worker, id: job.id, attempt: job.attempt })
                }),
                Effect.sleep(worker === "A" ? "60 seconds" : "1 millis")
              )
          })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
        const Slow = make("A")
        for (const id of ["s1", "s2", "s3"]) yield* run(DurableQueue.enqueue(Slow, 0, { id }))
        const a = yield* startConsumer(connect(), {
          types: [Slow],
          concurrency: 8,
          shutdown: { gracePeriod: "200 millis" }
        })
        yield* waitUntil("A runs all three", Effect.sync(() => starts.length === 3))
        const report = yield* a.worker.shutdown
        assert.strictEqual(report.totals.succeeded, 0)
        assert.isAtLeast(report.totals.interrupted, 1)
        yield* a.close

        yield* startConsumer(connect(), { types: [make("B")], concurrency: 8 })
        yield* waitUntil("B runs all three", Effect.sync(() => starts.filter((s) => s.worker === "B").length >= 3))
        const byB = starts.filter((s) => s.worker === "B")
        assert.deepStrictEqual(byB.map((s) => s.id).sort(), ["s1", "s2", "s3"])
        assert.isTrue(byB.every((s) => s.attempt === 1), "an interrupted attempt is not counted")
      }),
    30_000
  )

  if (store.sql) {
    test(
      "with a tracer, a call is one consumer span with the batch's size and ids, the handler's spans its children",
      () =>
        Effect.gen(function*() {
          const connect = yield* store.open
          const { recorded, tracer } = makeRecordingTracer()
          let handled = 0
          const Bulk = JobType.makeBatch({
            name: "bulk",
            payload: Schema.Int,
            maxSize: 10,
            handler: (jobs) => Effect.withSpan(Effect.sync(() => void (handled += jobs.length)), "bulk.send")
          })
          const producer = yield* connectProducer(connect())
          for (const id of ["b1", "b2", "b3"]) {
            yield* DurableQueue.enqueue(Bulk, 0, { id }).pipe(Effect.provideContext(producer))
          }
          yield* startConsumer(connect(), { types: [Bulk], concurrency: 8 }).pipe(Effect.withTracer(tracer))
          yield* waitUntil("three jobs handled", Effect.sync(() => handled === 3))
          yield* waitUntil(
            "the handler's span ended",
            Effect.sync(() => recorded().some((span) => span.name === "bulk.send"))
          )

          const process = recorded().filter((span) => span.name === `process ${connect.queueName}`)
          assert.strictEqual(process.length, 1, "one span for the one call")
          assert.strictEqual(process[0].kind, "consumer")
          assert.strictEqual(process[0].attributes["messaging.batch.message_count"], 3)
          assert.deepStrictEqual([...(process[0].attributes["fiberpool.jobs"] as Array<string>)].sort(), [
            "b1",
            "b2",
            "b3"
          ])
          const send = recorded().find((span) => span.name === "bulk.send")!
          assert.strictEqual(send.parentSpanId, process[0].spanId)
        }),
      30_000
    )
  }

  if (store.sql && store.flows) {
    test(
      "a batch type as a flow's parent reads its children's results, and its flow is done once it has run",
      () =>
        Effect.gen(function*() {
          const connect = yield* store.open
          const Count = JobType.make({
            name: "count",
            payload: Schema.String,
            result: Schema.Int,
            handler: (text) => Effect.succeed(text.length)
          })
          const totals: Array<number> = []
          const Total = JobType.makeBatch({
            name: "total",
            payload: Schema.Null,
            maxSize: 10,
            handler: (jobs) =>
              Effect.forEach(jobs, (job) =>
                Effect.map(
                  DurableFlow.results(job, Count),
                  (counted) => void totals.push(counted.reduce((sum, one) => sum + one.result, 0))
                ))
          })
          const producer = yield* connectProducer(connect())
          const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
            Effect.provideContext(effect, producer)
          yield* run(DurableFlow.enqueue(Total, null, {
            id: "total-1",
            children: [DurableFlow.child(Count, "four"), DurableFlow.child(Count, "seven..")]
          }))
          yield* startConsumer(connect(), { types: [Count, Total], concurrency: 4 })
          yield* waitUntil("the parent ran", Effect.sync(() => totals.length === 1))
          assert.deepStrictEqual(totals, [11])
          // a finished flow goes with the retention (one still waiting would stay): the parent's run marked it done
          const queue = Context.get(producer, DurableQueue.Service)
          const retention = applyRetention({
            ...queue,
            retention: { ...queue.retention, completed: Duration.zero, deadLetters: Duration.zero }
          })
          yield* waitUntil(
            "the flow is done",
            Effect.andThen(
              Effect.andThen(Effect.sleep("10 millis"), retention),
              Effect.map(
                Effect.flip(run(DurableFlow.children({ id: "total-1" }))),
                (error) => error._tag === "FlowNotFound"
              )
                .pipe(Effect.orElseSucceed(() => false))
            )
          )
          assert.deepStrictEqual(totals, [11], "the parent ran once")
        }),
      30_000
    )
  }
})
