import { assert, describe, it } from "@effect/vitest"
import { WorkerPool } from "@fiberpool/core"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Context, Data, Effect, Schedule, Schema } from "effect"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

class Boom extends Data.TaggedError("Boom")<{ readonly attempt: number }> {
  override get message() {
    return `boom on attempt ${this.attempt}`
  }
}

describe.each(stores)("DurableQueue on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test("enqueue → process → done, with typed results", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const Square = JobType.make({
        name: "square",
        payload: Schema.Struct({ n: Schema.Int }),
        result: Schema.Struct({ n: Schema.Int, square: Schema.Int }),
        handler: ({ n }) => Effect.succeed({ n, square: n * n })
      })
      const consumer = yield* startConsumer(connect(), { types: [Square], concurrency: 4 })
      const producer = yield* connectProducer(connect())
      const ids = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, n) => n),
        (n) => DurableQueue.enqueue(Square, { n }, { id: `sq-${n}` })
      ).pipe(Effect.provideContext(producer))
      const results = yield* Effect.forEach(
        ids,
        (id) => DurableQueue.result(Square, id, { pollInterval: "50 millis" }),
        {
          concurrency: "unbounded"
        }
      ).pipe(Effect.provideContext(producer))
      assert.deepStrictEqual(results.map((r) => r.square), Array.from({ length: 20 }, (_, n) => n * n))
      const stats = yield* WorkerPool.stats(consumer.worker.pool)
      assert.strictEqual(stats.succeeded, 20)
      assert.strictEqual(stats.failed, 0)
      assert.deepStrictEqual(yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), [])
    }), 30_000)

  test(
    "retries with backoff from the persisted attempt count, then dead-letters and re-queues",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const runs: Array<{ id: string; attempt: number; at: number }> = []
        const Flaky = JobType.make({
          name: "flaky",
          payload: Schema.Struct({ succeedOn: Schema.Int }),
          result: Schema.Int,
          // SQL stores count retry delays in whole seconds of the database clock (SQLite's has no fraction of a
          // second, so a delay of n seconds may be up to 1 s shorter there): 2 s, then 4 s
          retry: Schedule.exponential(store.sql ? "2 seconds" : "100 millis"),
          maxAttempts: 3,
          handler: ({ succeedOn }, { attempt, id }) =>
            Effect.suspend(() => {
              runs.push({ id, attempt, at: Date.now() })
              return attempt < succeedOn ? Effect.fail(new Boom({ attempt })) : Effect.succeed(attempt)
            })
        })
        const consumer = yield* startConsumer(connect(), { types: [Flaky], concurrency: 2 })
        const producer = yield* connectProducer(connect())
        yield* DurableQueue.enqueue(Flaky, { succeedOn: 3 }, { id: "third-time-lucky" }).pipe(
          Effect.provideContext(producer)
        )
        yield* DurableQueue.enqueue(Flaky, { succeedOn: 99 }, { id: "hopeless" }).pipe(Effect.provideContext(producer))

        const lucky = yield* DurableQueue.result(Flaky, "third-time-lucky").pipe(Effect.provideContext(producer))
        assert.strictEqual(lucky, 3)
        const luckyRuns = runs.filter((r) => r.id === "third-time-lucky")
        assert.deepStrictEqual(luckyRuns.map((r) => r.attempt), [1, 2, 3])
        const gap1 = luckyRuns[1].at - luckyRuns[0].at
        const gap2 = luckyRuns[2].at - luckyRuns[1].at
        const [unit, slack] = store.sql ? [2000, 1000] : [100, 10]
        assert.isAtLeast(gap1, unit - slack, `first retry after ${gap1} ms`)
        assert.isAtLeast(gap2, 2 * unit - slack, `second retry after ${gap2} ms (exponential)`)

        const dead = yield* Effect.flip(DurableQueue.result(Flaky, "hopeless").pipe(Effect.provideContext(producer)))
        assert(dead._tag === "JobDeadLettered", dead.message)
        assert.strictEqual(dead.attempts, 3)
        assert.match(dead.error, /boom on attempt 3/)
        assert.deepStrictEqual(runs.filter((r) => r.id === "hopeless").map((r) => r.attempt), [1, 2, 3])
        const letters = yield* DurableQueue.deadLetters({ type: "flaky" }).pipe(Effect.provideContext(producer))
        assert.deepStrictEqual(letters.map((l) => [l.id, l.attempts, l.payload]), [["hopeless", 3, { succeedOn: 99 }]])
        assert.strictEqual((yield* WorkerPool.stats(consumer.worker.pool)).failed, 2 + 3)

        // re-queue the dead letter: it runs again from attempt 1, under the same id
        assert.isTrue(yield* DurableQueue.requeue("hopeless").pipe(Effect.provideContext(producer)))
        assert.isFalse(yield* DurableQueue.requeue("hopeless").pipe(Effect.provideContext(producer)))
        yield* waitUntil("re-queued job runs", Effect.sync(() => runs.filter((r) => r.id === "hopeless").length >= 4))
        assert.strictEqual(runs.filter((r) => r.id === "hopeless")[3].attempt, 1)
        assert.deepStrictEqual(yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), [])
      }),
    30_000
  )

  test("de-duplicates by id, also after the job is done", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const seen: Array<string> = []
      const Note = JobType.make({
        name: "note",
        payload: Schema.String,
        result: Schema.String,
        handler: (text) => Effect.sync(() => (seen.push(text), text))
      })
      const producer = yield* connectProducer(connect())
      const enqueue = (text: string) =>
        DurableQueue.enqueue(Note, text, { id: "note-1" }).pipe(Effect.provideContext(producer))
      assert.strictEqual(yield* enqueue("first"), "note-1")
      assert.strictEqual(yield* enqueue("second"), "note-1")
      yield* startConsumer(connect(), { types: [Note], concurrency: 2 })
      assert.strictEqual(yield* DurableQueue.result(Note, "note-1").pipe(Effect.provideContext(producer)), "first")
      yield* enqueue("third")
      yield* DurableQueue.enqueue(Note, "other").pipe(Effect.provideContext(producer))
      yield* waitUntil("the other note ran", Effect.sync(() => seen.includes("other")))
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(seen, ["first", "other"])
    }), 30_000)

  test("delayed jobs are not delivered before their delay", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const ranAt = new Map<string, number>()
      const Stamp = JobType.make({
        name: "stamp",
        payload: Schema.String,
        handler: (id) => Effect.sync(() => void ranAt.set(id, Date.now()))
      })
      yield* startConsumer(connect(), { types: [Stamp], concurrency: 2 })
      const producer = yield* connectProducer(connect())
      const start = Date.now()
      yield* DurableQueue.enqueue(Stamp, "later", { delay: "1500 millis" }).pipe(Effect.provideContext(producer))
      yield* DurableQueue.enqueue(Stamp, "now").pipe(Effect.provideContext(producer))
      yield* waitUntil("both ran", Effect.sync(() => ranAt.size === 2), 6_000)
      assert.isBelow(ranAt.get("now")! - start, 1000)
      assert.isAtLeast(ranAt.get("later")! - start, 1500)
      assert.isBelow(ranAt.get("later")! - start, 4000)
    }), 30_000)

  test("graceful shutdown finishes what it can and hands the rest back at once", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const starts: Array<{ consumer: string; id: string; attempt: number; at: number }> = []
      const Work = JobType.make({
        name: "work",
        payload: Schema.Struct({ millis: Schema.Int, consumer: Schema.optional(Schema.String) }),
        handler: ({ millis }, { attempt, id }) =>
          ConsumerName.use((consumer) =>
            Effect.andThen(
              Effect.sync(() => starts.push({ consumer, id, attempt, at: Date.now() })),
              Effect.sleep(millis)
            )
          )
      })
      // enqueued before A starts, so that A claims the three at once: enqueued one by one from another
      // connection, "quick" could be claimed a poll before the others and be done before the shutdown
      const producer = yield* connectProducer(connect())
      yield* DurableQueue.enqueue(Work, { millis: 100 }, { id: "quick" }).pipe(Effect.provideContext(producer))
      yield* DurableQueue.enqueue(Work, { millis: 60_000 }, { id: "slow-1" }).pipe(Effect.provideContext(producer))
      yield* DurableQueue.enqueue(Work, { millis: 60_000 }, { id: "slow-2" }).pipe(Effect.provideContext(producer))
      const a = yield* startConsumer(connect(), {
        types: [Work],
        concurrency: 3,
        shutdown: { gracePeriod: "500 millis" }
      }).pipe(Effect.provideService(ConsumerName, "A"))
      yield* waitUntil("A runs all three", Effect.sync(() => starts.length === 3))

      const report = yield* a.worker.shutdown
      assert.deepStrictEqual(report.jobs.succeeded, ["quick"])
      assert.deepStrictEqual([...report.jobs.interrupted].sort(), ["slow-1", "slow-2"])
      yield* a.close // the process exits
      const handedBackAt = Date.now()

      yield* startConsumer(connect(), { types: [Work], concurrency: 3, shutdown: { gracePeriod: 0 } }).pipe(
        Effect.provideService(ConsumerName, "B")
      )
      yield* waitUntil(
        "B takes the two slow jobs",
        Effect.sync(() => starts.filter((s) => s.consumer === "B").length === 2)
      )
      const taken = starts.filter((s) => s.consumer === "B")
      assert.deepStrictEqual(taken.map((s) => s.id).sort(), ["slow-1", "slow-2"])
      for (const s of taken) {
        assert.isBelow(s.at - handedBackAt, 1000, `${s.id} taken ${s.at - handedBackAt} ms after the hand-back`)
        assert.strictEqual(s.attempt, 1, "an interrupted attempt is not counted")
      }
    }), 30_000)

  test(
    "malformed payloads and unknown types are dead-lettered at once, and the worker goes on",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const greeted: Array<string> = []
        const Greet = JobType.make({
          name: "greet",
          payload: Schema.Struct({ name: Schema.String }),
          result: Schema.String,
          handler: ({ name }) => Effect.sync(() => (greeted.push(name), `hello ${name}`))
        })
        const consumer = yield* startConsumer(connect(), {
          types: [Greet],
          concurrency: 2,
          unknownTypes: "dead-letter"
        })
        const producer = yield* connectProducer(connect())
        yield* DurableQueue.enqueueEncoded("greet", { name: 42 }, { id: "bad-payload" }).pipe(
          Effect.provideContext(producer)
        )
        yield* DurableQueue.enqueueEncoded("greet", "not even an object", { id: "bad-shape" }).pipe(
          Effect.provideContext(producer)
        )
        yield* DurableQueue.enqueueEncoded("sms", { to: "1" }, { id: "unknown-type" }).pipe(
          Effect.provideContext(producer)
        )
        yield* DurableQueue.enqueue(Greet, { name: "Ada" }, { id: "good" }).pipe(Effect.provideContext(producer))

        assert.strictEqual(yield* DurableQueue.result(Greet, "good").pipe(Effect.provideContext(producer)), "hello Ada")
        const error = yield* Effect.flip(
          DurableQueue.result(Greet, "bad-payload").pipe(Effect.provideContext(producer))
        )
        assert(error._tag === "JobDeadLettered", error.message)
        assert.match(error.error, /Job bad-payload \(greet\): the payload does not match the schema/)
        assert.match(error.error, /Expected string/)
        yield* waitUntil(
          "three dead letters",
          Effect.map(DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), (l) => l.length === 3)
        )
        yield* Effect.sleep("500 millis") // nothing is retried
        const letters = yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer))
        assert.deepStrictEqual(letters.map((l) => [l.id, l.attempts]).sort(), [
          ["bad-payload", 1],
          ["bad-shape", 1],
          ["unknown-type", 1]
        ])
        assert.match(
          letters.find((l) => l.id === "unknown-type")!.error,
          /type "sms", which this worker does not handle/
        )
        assert.deepStrictEqual(greeted, ["Ada"])
        const stats = yield* WorkerPool.stats(consumer.worker.pool)
        assert.strictEqual(stats.submitted, 1, "malformed jobs never reach the pool")
        assert.isFalse(stats.closed)
      }),
    30_000
  )

  test("enqueue rejects a payload its schema cannot encode, storing nothing", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const Typed = JobType.make({
        name: "typed",
        payload: Schema.Struct({ n: Schema.Int }),
        handler: () => Effect.void
      })
      const producer = yield* connectProducer(connect())
      const error = yield* Effect.flip(
        DurableQueue.enqueue(Typed, { n: 1.5 }).pipe(Effect.provideContext(producer))
      )
      assert.strictEqual(error._tag, "EncodeFailed")
    }), 30_000)
})

class ConsumerName extends Context.Service<ConsumerName, string>()("test/ConsumerName") {}
