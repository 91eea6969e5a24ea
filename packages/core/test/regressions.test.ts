import { assert, describe, it } from "@effect/vitest"
import { Shutdown, WorkerPool } from "@fiberpool/core"
import { Clock, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"

/** Ends the pool now (never-ending jobs are interrupted or abandoned), so that the test's scope closes at once. */
const close = (pool: WorkerPool.WorkerPool) =>
  Effect.asVoid(WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0, interruptTimeout: 0 }))

// Bugs found by an adversarial review; each test failed before its fix.
describe("regressions", () => {
  it.effect("suspend: interrupting run's caller after its job was admitted cancels the job", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 1 })
      yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
      yield* WorkerPool.submit(pool, Effect.never)
      let started = false
      const caller = yield* Effect.forkDetach(
        WorkerPool.run(pool, Effect.sync(() => started = true), { id: "late" }),
        { startImmediately: true }
      )
      assert.strictEqual((yield* WorkerPool.stats(pool)).waiting, 1)
      yield* TestClock.adjust("1 second") // room: "late" is admitted and queued behind the never-ending job
      assert.strictEqual((yield* WorkerPool.stats(pool)).queued, 1)
      const interrupting = yield* Effect.forkDetach(Fiber.interrupt(caller), { startImmediately: true })
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      const done = interrupting.pollUnsafe() !== undefined
      const cancelled = (yield* WorkerPool.stats(pool)).cancelled
      yield* close(pool)
      assert.isTrue(done, "interrupting run's caller hangs until the job ends")
      assert.strictEqual(cancelled, 1)
      assert.isFalse(started)
    }))

  it.effect("keyRateLimit: parked jobs of a key keep starting as its window reopens (long jobs)", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 10, keyRateLimit: { limit: 1, interval: "1 second" } })
      const starts: Array<number> = []
      const job = Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => Effect.andThen(Effect.sync(() => starts.push(now)), Effect.never)
      )
      for (let i = 0; i < 3; i++) yield* WorkerPool.submit(pool, job, { key: "k" })
      yield* TestClock.adjust("5 seconds")
      yield* close(pool)
      assert.deepStrictEqual(starts, [0, 1000, 2000])
    }))

  it.effect("capacity 0 + rateLimit: a waiting submitter is admitted when the window reopens", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({
        concurrency: 2,
        capacity: 0,
        rateLimit: { limit: 1, interval: "1 second" }
      })
      yield* WorkerPool.submit(pool, Effect.never)
      const waiting = yield* Effect.forkChild(WorkerPool.submit(pool, Effect.succeed("b")), { startImmediately: true })
      yield* TestClock.adjust("5 seconds")
      const answered = waiting.pollUnsafe() !== undefined
      yield* close(pool)
      assert.isTrue(answered, "the submitter still waits although a worker and the rate allow a start")
    }))

  it.effect("keyRateLimit: the state of keys no longer used is forgotten (no leak)", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 4, keyRateLimit: { limit: 5, interval: "1 second" } })
      for (let i = 0; i < 1000; i++) yield* WorkerPool.run(pool, Effect.void, { key: `user-${i}` })
      yield* TestClock.adjust("1 minute")
      yield* WorkerPool.run(pool, Effect.void) // any later activity
      yield* TestClock.adjust("1 minute")
      const keys = (pool as any).limits.keys as Map<string, unknown>
      assert.isAtMost(keys.size, 1, `${keys.size} key states kept for keys idle for 2 minutes`)
    }))

  it.effect("sliding: a pushed-out job's waiter that submits again does not overfill the queue", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 1, backpressure: "sliding" })
      yield* WorkerPool.submit(pool, Effect.never)
      const b = yield* WorkerPool.submit(pool, Effect.void, { id: "b" })
      // a retrying client: when its job is pushed out, it submits again
      yield* Effect.forkChild(
        Effect.andThen(b.exit, WorkerPool.submit(pool, Effect.void, { id: "b-again" })),
        { startImmediately: true }
      )
      yield* WorkerPool.submit(pool, Effect.void, { id: "c" })
      const stats = yield* WorkerPool.stats(pool)
      yield* close(pool)
      assert.isAtMost(stats.queued, stats.capacity, `queued ${stats.queued} > capacity ${stats.capacity}`)
    }))

  it.effect("cancel shutdown: a job cancelled by another job's waiter is counted once", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { id: "a" })
      const b = yield* WorkerPool.submit(pool, Effect.void, { id: "b" })
      const c = yield* WorkerPool.submit(pool, Effect.void, { id: "c" })
      // e.g. a batch that gives up the rest once one part is cancelled
      yield* Effect.forkChild(Effect.andThen(b.exit, c.cancel), { startImmediately: true })
      const shutdown = yield* Effect.forkChild(WorkerPool.shutdown(pool, { mode: "cancel" }), {
        startImmediately: true
      })
      yield* TestClock.adjust("1 second")
      const report = yield* Fiber.join(shutdown)
      const t = report.totals
      assert.strictEqual(t.cancelled, 2)
      assert.strictEqual(t.submitted, t.succeeded + t.failed + t.timedOut + t.interrupted + t.cancelled + t.abandoned)
    }))

  it.effect("a job whose deadline passed while queued does not use up a rate-limit slot", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, rateLimit: { limit: 1, interval: "10 seconds" } })
      yield* WorkerPool.submit(pool, Effect.sleep("5 seconds"))
      const expired = yield* WorkerPool.submit(pool, Effect.void, { deadline: 1000 })
      const next = yield* WorkerPool.submit(pool, Clock.currentTimeMillis)
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual(yield* expired.status, "timedOut")
      assert.strictEqual(yield* next.await, 10_000)
    }))

  it.effect("a forced controller shutdown during the interrupt phase uses the forced interrupt bound", () =>
    Effect.gen(function*() {
      const controller = Shutdown.makeController()
      const pool = yield* WorkerPool.make({
        concurrency: 1,
        shutdown: { gracePeriod: "1 second", interruptTimeout: "10 seconds" }
      }).pipe(Effect.provideService(Shutdown.CurrentController, controller))
      yield* WorkerPool.submit(pool, Effect.uninterruptible(Effect.sleep("1 hour")))
      yield* Shutdown.requestGraceful(controller)
      yield* TestClock.adjust("1100 millis") // grace over: interrupt phase, bounded by 10 s
      yield* Shutdown.requestForced(controller) // second signal: a forced exit should follow within a second
      yield* TestClock.adjust("1 second")
      const report = yield* Effect.forkChild(WorkerPool.shutdown(pool), { startImmediately: true })
      yield* Effect.yieldNow
      const finished = report.pollUnsafe() !== undefined
      yield* TestClock.adjust("10 seconds")
      assert.isTrue(finished, "shutdown still waits on the graceful interrupt bound")
    }))

  it.effect("sliding: a job accepted by a pushed-out job's waiter after a cancel shutdown does not start", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 1, backpressure: "sliding" })
      yield* WorkerPool.pause(pool)
      const b = yield* WorkerPool.submit(pool, Effect.void, { id: "b" })
      yield* Effect.forkChild(
        Effect.andThen(b.exit, WorkerPool.shutdown(pool, { mode: "cancel" })),
        { startImmediately: true }
      )
      let started = false
      const c = yield* WorkerPool.submit(pool, Effect.sync(() => started = true), { id: "c" })
      assert.isTrue((yield* WorkerPool.stats(pool)).closed)
      assert.isFalse(started, "a job started after a cancel-mode shutdown began")
      assert.strictEqual(yield* c.status, "cancelled")
    }))

  it.effect("sliding on a paused pool: awaitIdle does not resolve while a job is queued", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 1, backpressure: "sliding" })
      yield* WorkerPool.pause(pool)
      yield* WorkerPool.submit(pool, Effect.void)
      const idle = yield* Effect.forkChild(WorkerPool.awaitIdle(pool), { startImmediately: true })
      yield* WorkerPool.submit(pool, Effect.void)
      yield* Effect.yieldNow
      assert.strictEqual((yield* WorkerPool.stats(pool)).queued, 1)
      assert.isUndefined(idle.pollUnsafe(), "awaitIdle resolved with a job queued")
    }))
})
