import { assert, describe, it } from "@effect/vitest"
import { WorkerPool } from "@fiberpool/core"
import { Effect, Fiber, Metric, Schedule } from "effect"
import * as NodeWorkerPool from "../src/NodeWorkerPool.ts"
import { Ping, Spin } from "./fixtures/thread-tasks.ts"

const worker = new URL("./fixtures/thread-worker.ts", import.meta.url)

/** Polls `read` every 5 ms until `done` holds for its value, for at most `millis`; returns the last value. */
const until = <A>(read: Effect.Effect<A>, done: (a: A) => boolean, millis: number) =>
  read.pipe(
    Effect.repeat({ until: done, schedule: Schedule.spaced("5 millis") }),
    Effect.timeoutOrElse({ duration: millis, orElse: () => read })
  )

describe("NodeWorkerPool with elastic threads", () => {
  it.live("grows up to maxThreads under load, never past it, and shrinks back to minThreads when idle", () =>
    Effect.gen(function*() {
      const registry = new Map()
      const gauge = (metric: Metric.Gauge<number>) =>
        Metric.value(Metric.withAttributes(metric, { pool: "elastic" })).pipe(
          Effect.map((state) => state.value),
          Effect.provideService(Metric.MetricRegistry, registry)
        )
      const threads = yield* NodeWorkerPool.make({
        worker,
        name: "elastic",
        minThreads: 1,
        maxThreads: 3,
        idleTimeout: "300 millis"
      }).pipe(Effect.provideService(Metric.MetricRegistry, registry))
      assert.strictEqual(threads.threads, 3)
      assert.strictEqual(threads.minThreads, 1)
      assert.strictEqual((yield* WorkerPool.stats(threads.pool)).concurrency, 3)
      const live = Effect.map(NodeWorkerPool.threadStats(threads), (s) => s.busy + s.idle)
      assert.strictEqual(yield* live, 1)

      // watch the thread count for the whole run
      let peak = 0
      const watcher = yield* Effect.forkChild(
        Effect.forever(Effect.andThen(Effect.map(live, (n) => (peak = Math.max(peak, n))), Effect.sleep("2 millis")))
      )
      const handles = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        () => NodeWorkerPool.submit(threads, Spin, { millis: 100 })
      )
      // a preempted job is replaced without going past maxThreads
      const stuck = yield* NodeWorkerPool.submit(threads, Spin, { millis: 10_000 }, { timeout: "200 millis" })

      const busy = yield* until(NodeWorkerPool.threadStats(threads), (s) => s.busy === 3, 20_000)
      assert.strictEqual(busy.busy, 3, "all three threads ran jobs at once")
      assert.strictEqual(yield* gauge(NodeWorkerPool.metrics.threads), 3)
      assert.strictEqual(yield* gauge(NodeWorkerPool.metrics.utilization), 1)

      for (const handle of handles) assert.isAbove((yield* handle.await).iterations, 0)
      // it starts after the others, so its 200 ms timeout may still be running: wait for its end
      yield* stuck.exit
      assert.strictEqual(yield* stuck.status, "timedOut")

      // idle: the two threads above minThreads end after idleTimeout
      assert.strictEqual(yield* until(live, (n) => n === 1, 10_000), 1)
      yield* Fiber.interrupt(watcher)
      assert.strictEqual(peak, 3, "the pool never ran more than maxThreads threads")
      assert.strictEqual(yield* gauge(NodeWorkerPool.metrics.threads), 1)
      assert.strictEqual(yield* gauge(NodeWorkerPool.metrics.utilization), 0)
      // and it stays at minThreads
      yield* Effect.sleep("400 millis")
      assert.strictEqual(yield* live, 1)
      assert.isNumber(yield* NodeWorkerPool.run(threads, Ping, 0))
    }).pipe(Effect.scoped))
})
