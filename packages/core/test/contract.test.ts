import { assert, describe, it } from "@effect/vitest"
import { Job, JobEvent, PoolMetrics, WorkerPool } from "@fiberpool/core"
import { Clock, ConfigProvider, Effect, Exit, Fiber, Metric, Queue, Stream } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"

/** Ends the pool now (never-ending jobs are interrupted or abandoned), so that the test's scope closes at once. */
const close = (pool: WorkerPool.WorkerPool) =>
  Effect.asVoid(WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0, interruptTimeout: 0 }))

const value = <S>(metric: Metric.Metric<any, S>, pool: string, extra: Record<string, string> = {}) =>
  Metric.value(Metric.withAttributes(metric, { pool, ...extra }))

// Bugs found by using the pool as a user would (issue #10); each test failed before its fix.
describe("contract", () => {
  describe("ids", () => {
    it.effect("suspend: a submitter waiting for room does not reserve its id", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 1 })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const first = yield* Effect.forkChild(
          WorkerPool.submit(pool, Effect.as(Effect.sleep("5 seconds"), "first"), { id: "x" }),
          { startImmediately: true }
        )
        const second = yield* Effect.forkChild(WorkerPool.submit(pool, Effect.succeed("second"), { id: "x" }), {
          startImmediately: true
        })
        // no queued or running job has the id: both submitters wait for room
        assert.strictEqual(second.pollUnsafe(), undefined, "the second submit of a waiting id was answered at once")
        assert.strictEqual((yield* WorkerPool.stats(pool)).waiting, 2)
        yield* TestClock.adjust("1 second")
        const handle = yield* Fiber.join(first)
        assert.strictEqual(handle.id, "x")
        yield* TestClock.adjust("1 second")
        // room again, but "x" is now a live job: the second submitter is told so
        const error = yield* Effect.flip(Fiber.join(second))
        assert.strictEqual(error.reason._tag, "DuplicateJobId")
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual(yield* handle.await, "first")
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.succeeded, 3)
        assert.strictEqual(stats.rejected, 1)
      }))
  })

  describe("metrics", () => {
    it.effect("a closed pool's series are removed from the registry", () =>
      Effect.gen(function*() {
        const registry = new Map<string, any>()
        yield* Effect.gen(function*() {
          for (let i = 0; i < 5; i++) {
            yield* Effect.scoped(Effect.gen(function*() {
              const pool = yield* WorkerPool.make({ name: `short-${i}`, concurrency: 1 })
              yield* WorkerPool.run(pool, Effect.void)
            }))
          }
          const keep = yield* WorkerPool.make({ name: "kept", concurrency: 1 })
          yield* WorkerPool.run(keep, Effect.void)
        }).pipe(Effect.scoped, Effect.provideService(Metric.MetricRegistry, registry))
        assert.strictEqual(registry.size, 0, `${registry.size} series left after every pool closed`)
      }))

    it.effect("two live pools with the same name add up in one series", () =>
      Effect.gen(function*() {
        const a = yield* WorkerPool.make({ concurrency: 1 })
        const b = yield* WorkerPool.make({ concurrency: 2 })
        yield* WorkerPool.run(a, Effect.void)
        yield* WorkerPool.run(a, Effect.void)
        yield* WorkerPool.run(b, Effect.void)
        assert.strictEqual((yield* value(PoolMetrics.succeeded, "fiberpool")).count, 3)
        assert.strictEqual((yield* value(PoolMetrics.runSeconds, "fiberpool")).count, 3)
        assert.strictEqual((yield* value(PoolMetrics.concurrency, "fiberpool")).value, 3)
        const text = yield* PrometheusMetrics.format()
        assert.include(text, "fiberpool_jobs_succeeded_total{pool=\"fiberpool\"} 3")
        // a pool that closes keeps its counts in the series while another pool of the name lives
        yield* WorkerPool.shutdown(a)
        assert.strictEqual((yield* value(PoolMetrics.succeeded, "fiberpool")).count, 3)
        assert.strictEqual((yield* value(PoolMetrics.concurrency, "fiberpool")).value, 2)
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

    it.effect("gauges of concurrency, capacity and waiting submitters follow the pool", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ name: "g", concurrency: 1, capacity: 1 })
        assert.strictEqual((yield* value(PoolMetrics.concurrency, "g")).value, 1)
        assert.strictEqual((yield* value(PoolMetrics.capacity, "g")).value, 1)
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        yield* Effect.forkChild(WorkerPool.submit(pool, Effect.void), { startImmediately: true })
        assert.strictEqual((yield* value(PoolMetrics.waiting, "g")).value, 1)
        yield* WorkerPool.resize(pool, 4)
        assert.strictEqual((yield* value(PoolMetrics.concurrency, "g")).value, 4)
        assert.strictEqual((yield* value(PoolMetrics.waiting, "g")).value, 0)
        yield* close(pool)
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

    it.effect("the duration histograms take the pool's boundaries", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ name: "h", concurrency: 1, durationBoundaries: [0.5, 2] })
        const handle = yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        yield* TestClock.adjust("1 second")
        yield* handle.await
        const run = yield* value(PoolMetrics.runSeconds, "h")
        assert.deepStrictEqual(run.buckets, [[0.5, 0], [2, 1]])
        const invalid = yield* Effect.flip(WorkerPool.make({ concurrency: 1, durationBoundaries: [2, 1] }))
        assert.strictEqual(invalid.option, "durationBoundaries")
        // a second live pool of the name shares the series, so it must share the boundaries
        const clash = yield* Effect.flip(WorkerPool.make({ name: "h", concurrency: 1 }))
        assert.strictEqual(clash.option, "durationBoundaries")
        yield* WorkerPool.make({ name: "h", concurrency: 1, durationBoundaries: [0.5, 2] })
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
  })

  it.effect("config keeps every option of the defaults it does not read", () =>
    Effect.gen(function*() {
      const deadLetters = (_: Job.DeadLetter) => Effect.void
      const defaults: WorkerPool.Options = {
        concurrency: 2,
        keyConcurrency: 3,
        rateLimit: { limit: 5, interval: "1 second" },
        keyRateLimit: { limit: 2, interval: "1 second" },
        aging: false,
        deadLetters,
        spans: "never",
        durationBoundaries: [1, 10]
      }
      const options = yield* WorkerPool.config(defaults).parse(ConfigProvider.fromEnv({ env: { CONCURRENCY: "4" } }))
      assert.strictEqual(options.concurrency, 4)
      assert.strictEqual(options.keyConcurrency, 3)
      assert.deepStrictEqual(options.rateLimit, defaults.rateLimit)
      assert.deepStrictEqual(options.keyRateLimit, defaults.keyRateLimit)
      assert.strictEqual(options.aging, false)
      assert.strictEqual(options.deadLetters, deadLetters)
      assert.strictEqual(options.spans, "never")
      assert.deepStrictEqual(options.durationBoundaries, [1, 10])
    }))

  describe("validation", () => {
    it.effect("NaN durations of the shutdown are rejected, naming the option", () =>
      Effect.gen(function*() {
        const grace = yield* Effect.flip(WorkerPool.make({ concurrency: 1, shutdown: { gracePeriod: Number.NaN } }))
        assert.strictEqual(grace.option, "shutdown.gracePeriod")
        assert.strictEqual(grace.value, "NaN")
        const interrupt = yield* Effect.flip(
          WorkerPool.make({ concurrency: 1, shutdown: { interruptTimeout: Number.NaN } })
        )
        assert.strictEqual(interrupt.option, "shutdown.interruptTimeout")
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const late = yield* Effect.flip(WorkerPool.shutdown(pool, { gracePeriod: Number.NaN }))
        assert.strictEqual(late.option, "shutdown.gracePeriod")
      }))

    it.effect("a rate limit without an interval says the interval is missing", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(WorkerPool.make({ concurrency: 1, rateLimit: { limit: 5 } as any }))
        assert.strictEqual(error.option, "rateLimit.interval")
        assert.strictEqual(error.value, "undefined")
        assert.notInclude(error.message, "NaN")
      }))

    it.effect("submit and run without a pool fail with a typed error naming the pool", () =>
      Effect.gen(function*() {
        const noPool = undefined as unknown as WorkerPool.WorkerPool
        const submitted = yield* Effect.exit(WorkerPool.submit(noPool, Effect.void))
        assert.isTrue(Exit.hasFails(submitted), `not a typed failure: ${String(submitted)}`)
        const error = yield* Effect.flip(WorkerPool.submit(noPool, Effect.void))
        assert.strictEqual(error.reason._tag, "InvalidOptions")
        assert.include(error.message, "pool")
        const ran = yield* Effect.flip(WorkerPool.run(noPool, Effect.void, { id: "a" }))
        assert.strictEqual(ran._tag, "PoolError")
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const notEffect = yield* Effect.flip(WorkerPool.submit(pool, undefined as unknown as Effect.Effect<void>))
        assert.strictEqual(notEffect._tag === "PoolError" && notEffect.reason._tag, "InvalidOptions")
        assert.include(notEffect.message, "effect")
      }))
  })

  it.effect("a dropped job's status and its last event are both terminal", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 0, backpressure: "dropping" })
      const events = yield* WorkerPool.subscribe(pool)
      yield* WorkerPool.submit(pool, Effect.never)
      const dropped = yield* WorkerPool.submit(pool, Effect.void, { id: "late" })
      yield* close(pool)
      const last = (yield* Stream.runCollect(events)).filter((event) => event.jobId === "late").at(-1)!
      assert.strictEqual(last._tag, "Dropped")
      assert.isTrue(Job.isTerminal(yield* dropped.status))
      assert.isTrue(JobEvent.isTerminal(last), "JobEvent.isTerminal(Dropped) disagrees with Job.isTerminal")
    }))

  describe("dead letters and admission", () => {
    it.effect("dead letters a full bounded Queue refuses are counted", () =>
      Effect.gen(function*() {
        const letters = yield* Queue.bounded<Job.DeadLetter>(1)
        const pool = yield* WorkerPool.make({ name: "dl", concurrency: 1, deadLetters: letters })
        for (let i = 0; i < 3; i++) yield* Effect.exit(WorkerPool.run(pool, Effect.fail("boom")))
        assert.strictEqual(yield* Queue.size(letters), 1)
        assert.strictEqual((yield* WorkerPool.stats(pool)).deadLettersDropped, 2)
        assert.strictEqual((yield* value(PoolMetrics.deadLettersDropped, "dl")).count, 2)
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

    it.effect("capacity 0: a submitter waiting on a busy key does not hold back one whose key is free", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2, capacity: 0, keyConcurrency: 1 })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { key: "a" })
        const blocked = yield* Effect.forkChild(WorkerPool.submit(pool, Effect.void, { key: "a" }), {
          startImmediately: true
        })
        const free = yield* Effect.forkChild(WorkerPool.run(pool, Effect.succeed("b"), { key: "b" }), {
          startImmediately: true
        })
        yield* Effect.yieldNow
        assert.isDefined(free.pollUnsafe(), "the job of the free key waits behind the busy one")
        assert.strictEqual(yield* Fiber.join(free), "b")
        assert.strictEqual(blocked.pollUnsafe(), undefined)
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(blocked)
        yield* WorkerPool.awaitIdle(pool)
        assert.strictEqual((yield* WorkerPool.stats(pool)).succeeded, 3)
      }))
  })
})

describe("contract: synchronous work", () => {
  /** A clock the test moves by hand, whose timers never fire: the event loop is blocked, as by synchronous CPU. */
  const blockedClock = () => {
    let now = 0
    const clock: Clock.Clock = {
      currentTimeMillisUnsafe: () => now,
      currentTimeMillis: Effect.sync(() => now),
      currentTimeNanosUnsafe: () => BigInt(now) * 1_000_000n,
      currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
      monotonicTimeNanosUnsafe: () => BigInt(now) * 1_000_000n,
      monotonicTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
      sleep: () => Effect.never
    }
    return { clock, burn: (millis: number) => Effect.sync(() => (now += millis)) }
  }

  it.effect("a job that overruns its timeout with synchronous work is reported timedOut, not succeeded", () => {
    const { burn, clock } = blockedClock()
    return Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1 })
      // 3 s of synchronous work against a 1 s timeout: the timer cannot fire while the job holds the thread
      const late = yield* WorkerPool.submit(pool, Effect.as(burn(3_000), "late"), { timeout: "1 second" })
      const inTime = yield* WorkerPool.submit(pool, Effect.as(burn(500), "in time"), { timeout: "1 second" })
      const unbounded = yield* WorkerPool.submit(pool, Effect.as(burn(3_000), "no limit"))
      assert.strictEqual(yield* late.status, "timedOut")
      const error = yield* Effect.flip(late.await)
      assert.strictEqual(error._tag === "JobError" && error.reason._tag, "JobTimedOut")
      assert.strictEqual(yield* inTime.await, "in time")
      assert.strictEqual(yield* unbounded.await, "no limit")
      yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0, interruptTimeout: 0 })
    }).pipe(Effect.provideService(Clock.Clock, clock))
  })
})
