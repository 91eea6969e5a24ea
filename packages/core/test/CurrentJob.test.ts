import { assert, describe, it } from "@effect/vitest"
import { Job, type JobEvent, WorkerPool } from "@fiberpool/core"
import { Effect, Fiber, Option, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"

describe("Job.Current", () => {
  it.effect("a job reads its id, pool, attempt, metadata and deadline", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "ctx", concurrency: 1, timeout: "1 minute" })
      const seen: Array<string> = []
      const job = Effect.gen(function*() {
        const info = yield* Job.Current
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        seen.push(`${info.pool}/${info.id} #${info.attempt} ${JSON.stringify(info.metadata)} +${info.deadline! - now}`)
        if (info.attempt < 2) return yield* Effect.fail("again")
        return info.attempt
      })
      const attempts = yield* WorkerPool.run(pool, job, {
        id: "j1",
        metadata: { tenant: "t9" },
        timeout: "10 seconds",
        retry: Schedule.recurs(1)
      })
      assert.strictEqual(attempts, 2)
      // the deadline is the job's own timeout (shorter than the pool's), counted from its start
      assert.deepStrictEqual(seen, ["ctx/j1 #1 {\"tenant\":\"t9\"} +10000", "ctx/j1 #2 {\"tenant\":\"t9\"} +10000"])
      const unbounded = yield* WorkerPool.make({ concurrency: 1 })
      assert.strictEqual(
        yield* WorkerPool.run(unbounded, Effect.map(Effect.service(Job.Current), (i) => i.deadline)),
        undefined
      )
    }))

  it.effect("progress arrives in order, at most once per interval, and the last value is never lost", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "p", concurrency: 1, progressInterval: "100 millis" })
      const events = yield* WorkerPool.subscribe(pool)
      yield* WorkerPool.pause(pool)
      const handle = yield* WorkerPool.submit(
        pool,
        Effect.gen(function*() {
          const { progress } = yield* Job.Current
          yield* progress(1) // t=0: sent
          yield* progress(2) // held: sent by the interval's timer at t=100
          yield* Effect.sleep("150 millis")
          yield* progress(3) // t=150: held (sent at 100)
          yield* progress(4) // replaces 3, still held
          yield* Effect.sleep("10 millis")
          return "done" // t=160: the held 4 goes out before the outcome
        }),
        { id: "upload" }
      )
      assert.deepStrictEqual(yield* handle.progress, Option.none())
      const updates = yield* Effect.forkChild(Stream.runCollect(handle.progressUpdates))
      yield* Effect.yieldNow
      yield* WorkerPool.resume(pool)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* handle.await, "done")
      assert.deepStrictEqual(yield* Fiber.join(updates), [1, 2, 4])
      assert.deepStrictEqual(yield* handle.progress, Option.some(4))
      yield* WorkerPool.shutdown(pool)
      const seen = yield* Stream.runCollect(
        Stream.map(events, (e: JobEvent.JobEvent) => e._tag === "Progress" ? `Progress ${e.progress} @${e.at}` : e._tag)
      )
      assert.deepStrictEqual(seen, [
        "Submitted",
        "Started",
        "Progress 1 @0",
        "Progress 2 @100",
        "Progress 4 @160",
        "Succeeded"
      ])
    }))

  it.effect("a late reader of progressUpdates gets the last value sent; after the end, the stream is empty", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      const handle = yield* WorkerPool.submit(
        pool,
        Effect.gen(function*() {
          const job = yield* Job.Current
          yield* job.progress({ step: "fetch" })
          yield* Effect.sleep("1 second")
        })
      )
      const late = yield* Effect.forkChild(Stream.runCollect(handle.progressUpdates))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(late), [{ step: "fetch" }])
      const silent = yield* WorkerPool.submit(pool, Effect.void)
      yield* silent.await
      assert.deepStrictEqual(yield* Stream.runCollect(silent.progressUpdates), [])
    }))

  it.effect("progress reported after the job ended changes nothing", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      const info = yield* WorkerPool.run(pool, Effect.service(Job.Current))
      yield* info.progress("too late")
      const handle = yield* WorkerPool.submit(pool, Effect.void)
      yield* handle.await
      assert.deepStrictEqual(yield* handle.progress, Option.none())
    }))
})

describe("AbortSignal", () => {
  it.effect("cancelling a running job aborts the signal Effect.promise gave its promise", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      let aborted = false
      const handle = yield* WorkerPool.submit(
        pool,
        Effect.promise((signal) =>
          new Promise<void>((resolve) => {
            signal.addEventListener("abort", () => {
              aborted = true
              resolve()
            })
          })
        )
      )
      yield* Effect.yieldNow
      assert.strictEqual(yield* handle.status, "running")
      yield* handle.cancel
      assert.isTrue(aborted)
      assert.strictEqual(yield* handle.status, "interrupted")
    }))

  it.effect("a job's timeout aborts the signal of Effect.tryPromise", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      let reason: unknown
      const handle = yield* WorkerPool.submit(
        pool,
        Effect.tryPromise((signal) =>
          new Promise<void>((_, reject) => {
            signal.addEventListener("abort", () => {
              reason = signal.reason
              reject(new Error("aborted"))
            })
          })
        ),
        { timeout: "1 second" }
      )
      yield* TestClock.adjust("1 second")
      const exit = yield* handle.exit
      assert.strictEqual(yield* handle.status, "timedOut")
      assert.isTrue(exit._tag === "Failure")
      assert.isDefined(reason)
    }))
})
