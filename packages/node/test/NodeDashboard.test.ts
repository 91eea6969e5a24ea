import { assert, describe, it } from "@effect/vitest"
import { WorkerPool } from "@fiberpool/core"
import { NodeDashboard } from "@fiberpool/node"
import { Context, Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { TestClock } from "effect/testing"

// Mounted on a router that no server serves: no socket, and nothing that waits on the (test) clock to close.
const dashboardOf = (options: NodeDashboard.Options) =>
  Effect.map(
    Layer.build(NodeDashboard.layerRouter(options).pipe(Layer.provide(HttpRouter.layer))),
    (context) => Context.get(context, NodeDashboard.Service)
  )

// The dashboard reads the pool's events on its own fiber: let it catch up.
const snapshotOf = (dashboard: NodeDashboard.Dashboard) =>
  Effect.andThen(Effect.repeat(Effect.yieldNow, { times: 20 }), dashboard.snapshot)

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

describe("NodeDashboard snapshot (TestClock)", () => {
  it.effect("per-second series cover exactly the window and forget what is older", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "series", concurrency: 4 })
      const dashboard = yield* dashboardOf({ pools: [pool], window: "10 seconds" })
      const a = yield* WorkerPool.submit(pool, Effect.sleep("300 millis"), { id: "a" })
      yield* TestClock.adjust("300 millis")
      yield* a.await
      yield* TestClock.adjust("3700 millis")
      yield* Effect.exit(WorkerPool.run(pool, Effect.fail("no"), { id: "b" }))
      yield* WorkerPool.run(pool, Effect.void, { id: "c" })

      const now = (yield* snapshotOf(dashboard)).pools[0].series
      assert.strictEqual(now.succeeded.length, 10)
      assert.strictEqual(sum(now.succeeded), 2)
      assert.strictEqual(sum(now.failed), 1)
      // The last bucket is the current second: b and c ended in it; a ended 4 seconds earlier, after 300 ms.
      assert.strictEqual(now.succeeded[9], 1)
      assert.strictEqual(now.failed[9], 1)
      assert.strictEqual(now.succeeded[5], 1)
      assert.strictEqual(now.latencyMaxMillis[5], 300)
      assert.isNull(now.latencyAvgMillis[0])

      yield* TestClock.adjust("20 seconds")
      const later = (yield* snapshotOf(dashboard)).pools[0].series
      assert.strictEqual(sum(later.succeeded) + sum(later.failed), 0)
    }))

  it.effect("a last attempt's failure is listed once; retries show every failed attempt; the list is bounded", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "failures", concurrency: 1 })
      const dashboard = yield* dashboardOf({ pools: [pool] })
      yield* Effect.exit(WorkerPool.run(pool, Effect.fail("once"), { id: "single" }))
      yield* Effect.exit(WorkerPool.run(pool, Effect.fail("twice"), { id: "retried", retry: { times: 1 } }))
      const failures = (yield* snapshotOf(dashboard)).pools[0].failures
      assert.deepStrictEqual(
        failures.map((f) => `${f.id} ${f.kind} ${f.attempt}`),
        ["retried Failed 2", "retried AttemptFailed 1", "single Failed 1"]
      )
      assert.include(failures[0].cause, "twice")

      for (let i = 0; i < 60; i++) yield* Effect.exit(WorkerPool.run(pool, Effect.fail(i), { id: `f${i}` }))
      const bounded = (yield* snapshotOf(dashboard)).pools[0].failures
      assert.strictEqual(bounded.length, 50)
      assert.strictEqual(bounded[0].id, "f59")
    }))

  it.effect("running jobs carry their attempt and age since their first start", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "ages", concurrency: 2 })
      const dashboard = yield* dashboardOf({ pools: [pool] })
      let tries = 0
      const flaky = Effect.suspend(() => ++tries === 1 ? Effect.fail("first") : Effect.never)
      yield* WorkerPool.submit(pool, flaky, { id: "flaky", retry: { times: 1 } })
      yield* WorkerPool.submit(pool, Effect.never, { id: "slow" })
      yield* TestClock.adjust("1500 millis")
      const running = (yield* snapshotOf(dashboard)).pools[0].runningJobs
      assert.deepStrictEqual(
        running.map((j) => [j.id, j.attempt, j.ageMillis]).sort(),
        [["flaky", 2, 1500], ["slow", 1, 1500]]
      )
      yield* WorkerPool.shutdown(pool, { gracePeriod: 0 })
      assert.deepStrictEqual((yield* snapshotOf(dashboard)).pools[0].runningJobs, [])
    }))
})
