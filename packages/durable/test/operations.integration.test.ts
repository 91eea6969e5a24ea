import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Deferred, Effect, Schema } from "effect"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

describe.each(stores)("operations on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live
  // Row-level behaviour exists only on the SQL stores: on the memory store these cases are not declared at
  // all (CI fails on a skipped test, and a case that cannot apply is no skip).
  const sqlTest: typeof test = store.sql ? test : ((() => undefined) as unknown as typeof test)

  test(
    "dead letters page without skipping or repeating, and requeueAll puts them all back",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const runs: Array<string> = []
        let failing = true
        const Flaky = JobType.make({
          name: "flaky",
          payload: Schema.Int,
          maxAttempts: 1,
          handler: (_, { id }) => Effect.suspend(() => (runs.push(id), failing ? Effect.fail("down") : Effect.void))
        })
        const producer = yield* connectProducer(connect())
        yield* startConsumer(connect(), { types: [Flaky], concurrency: 3 })
        const ids = Array.from({ length: 7 }, (_, i) => `f${i}`)
        yield* Effect.forEach(ids, (id, i) => DurableQueue.enqueue(Flaky, i, { id })).pipe(
          Effect.provideContext(producer)
        )
        const list = (options?: Parameters<typeof DurableQueue.deadLetters>[0]) =>
          DurableQueue.deadLetters(options).pipe(Effect.provideContext(producer))
        yield* waitUntil("seven dead letters", Effect.map(list(), (l) => l.length === 7))

        const seen: Array<string> = []
        let page = yield* list({ limit: 3 })
        while (page.length > 0) {
          seen.push(...page.map((l) => l.id))
          page = yield* list({ limit: 3, after: page[page.length - 1] })
        }
        assert.deepStrictEqual([...seen].sort(), ids)
        assert.strictEqual(new Set(seen).size, 7)

        failing = false
        assert.strictEqual(yield* DurableQueue.requeueAll({ type: "flaky" }).pipe(Effect.provideContext(producer)), 7)
        yield* waitUntil("all ran again", Effect.sync(() => runs.length === 14))
        assert.deepStrictEqual(yield* list(), [])
        assert.strictEqual(yield* DurableQueue.requeueAll().pipe(Effect.provideContext(producer)), 0)
      }),
    30_000
  )

  sqlTest("cancel: a pending or delayed job never runs; a started one says running", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const runs: Array<string> = []
      const Work = JobType.make({
        name: "work",
        payload: Schema.String,
        result: Schema.String,
        handler: (text, { id }) =>
          Effect.gen(function*() {
            runs.push(id)
            if (text === "block") {
              yield* Deferred.succeed(started, undefined)
              yield* Deferred.await(release)
            }
            return text
          })
      })
      const producer = yield* connectProducer(connect())
      const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
        effect.pipe(Effect.provideContext(producer))
      yield* run(DurableQueue.enqueue(Work, "later", { id: "delayed", delay: "1 hour" }))
      assert.strictEqual(yield* run(DurableQueue.cancel("delayed")), "cancelled")
      assert.strictEqual(yield* run(DurableQueue.cancel("delayed")), "failed")
      assert.strictEqual(yield* run(DurableQueue.cancel("nope")), "not-found")
      const cancelled = yield* Effect.flip(run(DurableQueue.result(Work, "delayed")))
      assert(cancelled._tag === "JobCancelled", cancelled.message)
      assert.strictEqual(cancelled.jobType, "work")

      yield* run(DurableQueue.enqueue(Work, "pending", { id: "pending" }))
      assert.strictEqual(yield* run(DurableQueue.cancel("pending")), "cancelled")

      yield* startConsumer(connect(), { types: [Work], concurrency: 1 })
      yield* run(DurableQueue.enqueue(Work, "block", { id: "blocker" }))
      yield* Deferred.await(started)
      assert.strictEqual(yield* run(DurableQueue.cancel("blocker")), "running")
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual(yield* run(DurableQueue.result(Work, "blocker")), "block")
      assert.strictEqual(yield* run(DurableQueue.cancel("blocker")), "completed")
      assert.deepStrictEqual(runs, ["blocker"], "the cancelled jobs never ran")
      assert.deepStrictEqual(yield* run(DurableQueue.deadLetters()), [], "a cancelled job is not a dead letter")
    }), 30_000)

  sqlTest(
    "stats count by state and type, with the backlog's age",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const Email = JobType.define({ name: "email", payload: Schema.String })
        const Sms = JobType.define({ name: "sms", payload: Schema.String })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
          effect.pipe(Effect.provideContext(producer))
        yield* run(DurableQueue.enqueue(Email, "a"))
        yield* run(DurableQueue.enqueue(Email, "b"))
        yield* run(DurableQueue.enqueue(Email, "later", { delay: "1 hour" }))
        yield* run(DurableQueue.enqueue(Sms, "c"))
        yield* run(DurableQueue.enqueue(Sms, "gone", { id: "gone", delay: "1 hour" }))
        yield* run(DurableQueue.cancel("gone"))
        yield* Effect.sleep("1100 millis") // SQLite's clock has whole seconds
        const stats = yield* run(DurableQueue.stats)
        assert.strictEqual(stats.queue, connect.queueName)
        assert.deepStrictEqual(
          stats.types.map((t) => [t.type, t.pending, t.delayed, t.claimed, t.cancelled]),
          [["email", 2, 1, 0, 0], ["sms", 1, 0, 0, 1]]
        )
        for (const t of stats.types) {
          assert.isDefined(t.oldestPendingMillis)
          assert.isAtLeast(t.oldestPendingMillis!, 0)
        }
      }),
    30_000
  )
})
