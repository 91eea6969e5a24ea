import { assert, describe, it } from "@effect/vitest"
import { DurableMetrics, DurableQueue, JobType } from "@fiberpool/durable"
import { Deferred, Effect, Metric, Schema } from "effect"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

describe.each(stores.filter((store) => store.sql))("metrics on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test("the worker reports the backlog and the dead letters per queue and type", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const release = yield* Deferred.make<void>()
      const Work = JobType.make({
        name: "work",
        payload: Schema.String,
        maxAttempts: 1,
        handler: (text) => text === "fail" ? Effect.fail("no") : Deferred.await(release)
      })
      const producer = yield* connectProducer(connect())
      const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
        effect.pipe(Effect.provideContext(producer))
      yield* run(DurableQueue.enqueue(Work, "fail", { id: "f1" }))
      yield* run(DurableQueue.enqueueEncoded("work", 42, { id: "bad" }))
      yield* startConsumer(connect(), { types: [Work], concurrency: 1, metricsInterval: "50 millis" })
      yield* waitUntil("two dead letters", Effect.map(run(DurableQueue.deadLetters()), (l) => l.length === 2))
      for (let i = 0; i < 4; i++) yield* run(DurableQueue.enqueue(Work, "block", { id: `b${i}` }))
      yield* run(DurableQueue.enqueue(Work, "later", { id: "later", delay: "1 hour" }))

      const attributes = { queue: connect.queueName, type: "work" }
      const read = (metric: Metric.Gauge<number>) =>
        Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.value)
      const gauges = Effect.all({
        backlog: read(DurableMetrics.backlog),
        delayed: read(DurableMetrics.delayed),
        claimed: read(DurableMetrics.claimed),
        deadLetters: read(DurableMetrics.deadLetters)
      })
      // one job runs (and waits), three wait behind it
      yield* waitUntil(
        "the gauges show the backlog",
        Effect.map(gauges, (g) => g.backlog === 3 && g.claimed === 1 && g.delayed === 1 && g.deadLetters === 2)
      )
      assert.isAtLeast(yield* read(DurableMetrics.backlogAge), 0)

      yield* Deferred.succeed(release, undefined)
      yield* waitUntil(
        "the backlog is gone",
        Effect.map(
          Effect.all([gauges, read(DurableMetrics.backlogAge)]),
          ([g, age]) => g.backlog === 0 && g.claimed === 0 && age === 0
        )
      )
    }), 30_000)

  test("a closed worker removes its series", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const Work = JobType.define({ name: "work", payload: Schema.String })
      yield* DurableQueue.enqueue(Work, "x", { delay: "1 hour" }).pipe(
        Effect.provideContext(yield* connectProducer(connect()))
      )
      const consumer = yield* startConsumer(connect(), {
        types: [JobType.implement(Work, () => Effect.void)],
        concurrency: 1,
        metricsInterval: "50 millis"
      })
      const series = Effect.map(
        Metric.snapshot,
        (all) => all.filter((m) => m.id === DurableMetrics.delayed.id && m.attributes?.queue === connect.queueName)
      )
      yield* waitUntil("the series appears", Effect.map(series, (s) => s.length === 1))
      yield* consumer.close
      assert.deepStrictEqual(yield* series, [])
    }), 30_000)
})
