import { assert, describe, it } from "@effect/vitest"
import { Shutdown, WorkerPool } from "@fiberpool/core"
import { Effect, Exit, Fiber, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"

const sleepJob = (millis: number, log?: Array<string>, name?: string) =>
  Effect.sleep(millis).pipe(Effect.ensuring(Effect.sync(() => log?.push(`finalized ${name}`))), Effect.as(name))

describe("Shutdown", () => {
  it.effect("closing with nothing pending finishes at once with an empty report", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 2 })
      const report = yield* WorkerPool.shutdown(pool)
      assert.strictEqual(report.durationMillis, 0)
      assert.isFalse(report.graceExpired)
      assert.deepStrictEqual(report.jobs, {
        succeeded: [],
        failed: [],
        timedOut: [],
        interrupted: [],
        cancelled: [],
        abandoned: []
      })
      assert.isTrue((yield* WorkerPool.stats(pool)).closed)
    }))

  it.effect("drain: queued jobs still run within the grace period", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      for (const id of ["a", "b", "c"]) yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { id })
      const shutdown = yield* Effect.forkChild(WorkerPool.shutdown(pool, { mode: "drain", gracePeriod: "10 seconds" }))
      yield* TestClock.adjust("2999 millis")
      assert.isUndefined(shutdown.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const report = yield* Fiber.join(shutdown)
      assert.deepStrictEqual(report.jobs.succeeded, ["a", "b", "c"])
      assert.strictEqual(report.durationMillis, 3000)
      assert.strictEqual(report.mode, "drain")
    }))

  it.effect("a drain escalated by a later cancel call reports the mode it ended in", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      for (const id of ["a", "b", "c"]) yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { id })
      const drain = yield* Effect.forkChild(WorkerPool.shutdown(pool, { mode: "drain", gracePeriod: "10 seconds" }))
      yield* TestClock.adjust("500 millis")
      const forced = yield* Effect.forkChild(WorkerPool.shutdown(pool, { mode: "cancel" }))
      yield* TestClock.adjust("500 millis")
      const report = yield* Fiber.join(drain)
      assert.strictEqual(report.mode, "cancel")
      assert.deepStrictEqual(report.jobs.succeeded, ["a"])
      assert.deepStrictEqual(report.jobs.cancelled, ["b", "c"])
      assert.strictEqual((yield* Fiber.join(forced)).mode, "cancel")
    }))

  it.effect("cancel: queued jobs are cancelled at once, running ones finish", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      const started: Array<string> = []
      for (const id of ["a", "b", "c"]) {
        yield* WorkerPool.submit(pool, Effect.andThen(Effect.sync(() => started.push(id)), Effect.sleep("1 second")), {
          id
        })
      }
      const shutdown = yield* Effect.forkChild(WorkerPool.shutdown(pool, { mode: "cancel" }))
      yield* TestClock.adjust("1 second")
      const report = yield* Fiber.join(shutdown)
      assert.deepStrictEqual(started, ["a"])
      assert.deepStrictEqual(report.jobs.succeeded, ["a"])
      assert.deepStrictEqual(report.jobs.cancelled, ["b", "c"])
      assert.strictEqual(report.totals.cancelled, 2)
    }))

  it.effect("a submit during shutdown fails with PoolClosed; waiting submitters are answered at once", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 0 })
      yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
      const waiting = yield* Effect.forkChild(WorkerPool.submit(pool, Effect.void))
      yield* Effect.yieldNow
      const shutdown = yield* Effect.forkChild(WorkerPool.shutdown(pool))
      yield* Effect.yieldNow
      const waited = yield* Fiber.await(waiting)
      assert.isTrue(Exit.isFailure(waited))
      const late = yield* Effect.flip(WorkerPool.submit(pool, Effect.void))
      assert.strictEqual(late.reason._tag, "PoolClosed")
      yield* TestClock.adjust("1 second")
      const report = yield* Fiber.join(shutdown)
      assert.strictEqual(report.totals.submitted, 1)
      assert.strictEqual(report.totals.rejected, 2)
    }))

  it.effect("when the grace period ends, running jobs are interrupted and their finalizers run once", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 2 })
      const log: Array<string> = []
      yield* WorkerPool.submit(pool, sleepJob(500, log, "quick"), { id: "quick" })
      yield* WorkerPool.submit(pool, sleepJob(60_000, log, "slow"), { id: "slow" })
      yield* WorkerPool.submit(pool, sleepJob(10, log, "queued"), { id: "queued" })
      const shutdown = yield* Effect.forkChild(WorkerPool.shutdown(pool, { gracePeriod: "2 seconds" }))
      yield* TestClock.adjust("2 seconds")
      const report = yield* Fiber.join(shutdown)
      assert.deepStrictEqual(report.jobs.succeeded, ["quick", "queued"])
      assert.deepStrictEqual(report.jobs.interrupted, ["slow"])
      assert.isTrue(report.graceExpired)
      assert.strictEqual(report.durationMillis, 2000)
      assert.deepStrictEqual(log.sort(), ["finalized queued", "finalized quick", "finalized slow"])
    }))

  it.effect("with no grace period, interrupting running jobs reports the grace period expired", () =>
    Effect.gen(function*() {
      for (const mode of ["drain", "cancel"] as const) {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        yield* WorkerPool.submit(pool, Effect.never, { id: `never-${mode}` })
        yield* WorkerPool.submit(pool, Effect.never, { id: `queued-${mode}` })
        const report = yield* WorkerPool.shutdown(pool, { mode, gracePeriod: 0 })
        assert.deepStrictEqual(report.jobs.interrupted, [`never-${mode}`])
        assert.deepStrictEqual(report.jobs.cancelled, [`queued-${mode}`])
        assert.isTrue(report.graceExpired, `mode ${mode}`)
        assert.strictEqual(report.durationMillis, 0)
      }
    }))

  it.effect("drain: what is still queued when the grace period ends is cancelled", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      for (const id of ["a", "b", "c"]) yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { id })
      const shutdown = yield* Effect.forkChild(WorkerPool.shutdown(pool, { gracePeriod: "1500 millis" }))
      yield* TestClock.adjust("1500 millis")
      const report = yield* Fiber.join(shutdown)
      assert.deepStrictEqual(report.jobs.succeeded, ["a"])
      assert.deepStrictEqual(report.jobs.interrupted, ["b"])
      assert.deepStrictEqual(report.jobs.cancelled, ["c"])
    }))

  it.effect("a job that ignores interruption is abandoned after the interrupt bound", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 2 })
      const stuck = yield* WorkerPool.submit(pool, Effect.uninterruptible(Effect.sleep("1 hour")), { id: "stuck" })
      const hungFinalizer = yield* WorkerPool.submit(
        pool,
        Effect.never.pipe(Effect.ensuring(Effect.sleep("1 hour"))),
        { id: "hung-finalizer" }
      )
      const shutdown = yield* Effect.forkChild(
        WorkerPool.shutdown(pool, { gracePeriod: "1 second", interruptTimeout: "500 millis" })
      )
      yield* TestClock.adjust("1499 millis")
      assert.isUndefined(shutdown.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const report = yield* Fiber.join(shutdown)
      assert.deepStrictEqual(report.jobs.abandoned, ["stuck", "hung-finalizer"])
      assert.strictEqual(report.durationMillis, 1500)
      assert.strictEqual(yield* stuck.status, "abandoned")
      assert.strictEqual(yield* hungFinalizer.status, "abandoned")
      assert.strictEqual(report.totals.abandoned, 2)
      // the abandoned work finishing later changes nothing
      yield* TestClock.adjust("2 hours")
      assert.strictEqual(yield* stuck.status, "abandoned")
      assert.strictEqual((yield* WorkerPool.stats(pool)).abandoned, 2)
    }))

  it.effect("shutdown is idempotent, and closing the scope afterwards returns the same report", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const pool = yield* Scope.provide(WorkerPool.make({ concurrency: 1 }), scope)
      yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
      const first = yield* Effect.forkChild(WorkerPool.shutdown(pool))
      const second = yield* Effect.forkChild(WorkerPool.shutdown(pool, { gracePeriod: "1 hour" }))
      yield* TestClock.adjust("1 second")
      const a = yield* Fiber.join(first)
      const b = yield* Fiber.join(second)
      assert.strictEqual(a, b)
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* WorkerPool.shutdown(pool), a)
    }))

  it.effect("a later call can force a running shutdown", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      yield* WorkerPool.submit(pool, Effect.sleep("1 minute"), { id: "long" })
      yield* WorkerPool.submit(pool, Effect.void, { id: "queued" })
      const graceful = yield* Effect.forkChild(WorkerPool.shutdown(pool, { gracePeriod: "1 hour" }))
      yield* TestClock.adjust("1 second")
      assert.isUndefined(graceful.pollUnsafe())
      const forced = yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
      assert.deepStrictEqual(forced.jobs.interrupted, ["long"])
      assert.deepStrictEqual(forced.jobs.cancelled, ["queued"])
      assert.strictEqual(yield* Fiber.join(graceful), forced)
    }))

  it.effect("closing the pool's scope runs the graceful shutdown with the pool's options", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const scope = yield* Scope.make()
      const pool = yield* Scope.provide(
        WorkerPool.make({ concurrency: 1, shutdown: { mode: "cancel", gracePeriod: "5 seconds" } }),
        scope
      )
      const running = yield* WorkerPool.submit(pool, sleepJob(1000, log, "running"))
      const queued = yield* WorkerPool.submit(pool, sleepJob(1000, log, "queued"))
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      assert.strictEqual(yield* running.status, "succeeded")
      assert.strictEqual(yield* queued.status, "cancelled")
      assert.deepStrictEqual(log, ["finalized running"])
    }))

  it.effect("invalid shutdown options are rejected and the pool stays open", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      const error = yield* Effect.flip(WorkerPool.shutdown(pool, { gracePeriod: -1 }))
      assert.strictEqual(error.option, "shutdown.gracePeriod")
      assert.isFalse((yield* WorkerPool.stats(pool)).closed)
    }))

  it.effect("awaitIdle waits for queued and running jobs and leaves the pool open", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
      yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
      const idle = yield* Effect.forkChild(WorkerPool.awaitIdle(pool))
      yield* TestClock.adjust("1999 millis")
      assert.isUndefined(idle.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(idle)
      assert.strictEqual(yield* WorkerPool.run(pool, Effect.succeed("open")), "open")
    }))

  describe("Controller", () => {
    it.effect("graceful closes every following pool; forced cancels and interrupts now", () =>
      Effect.gen(function*() {
        const controller = Shutdown.makeController()
        const finalized = yield* Ref.make(0)
        const [a, b] = yield* Effect.all([
          WorkerPool.make({ name: "a", concurrency: 1 }),
          WorkerPool.make({ name: "b", concurrency: 1 })
        ]).pipe(Effect.provideService(Shutdown.CurrentController, controller))
        const long = yield* WorkerPool.submit(
          a,
          Effect.never.pipe(Effect.ensuring(Ref.update(finalized, (n) => n + 1)))
        )
        const queued = yield* WorkerPool.submit(a, Effect.void)
        yield* Shutdown.requestGraceful(controller)
        assert.isTrue((yield* WorkerPool.stats(a)).closed)
        assert.isTrue((yield* WorkerPool.stats(b)).closed)
        assert.strictEqual(yield* long.status, "running")
        yield* Shutdown.requestForced(controller)
        assert.strictEqual(yield* long.status, "interrupted")
        assert.strictEqual(yield* queued.status, "cancelled")
        assert.strictEqual(yield* Ref.get(finalized), 1)
        assert.strictEqual(controller.phase, "forced")
      }))

    it.effect("a pool made after shutdown began is closed at once", () =>
      Effect.gen(function*() {
        const controller = Shutdown.makeController()
        controller.requestUnsafe("graceful")
        const pool = yield* WorkerPool.make({ concurrency: 1 }).pipe(
          Effect.provideService(Shutdown.CurrentController, controller)
        )
        const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void))
        assert.strictEqual(error.reason._tag, "PoolClosed")
      }))
  })
})
