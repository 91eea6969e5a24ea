import { assert, describe, it } from "@effect/vitest"
import { Job, PoolError, WorkerPool } from "@fiberpool/core"
import { Cause, Config, ConfigProvider, Context, Effect, Exit, Fiber, Layer, Option, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"

const flipJobError = <A, E>(handle: Job.JobHandle<A, E>) =>
  Effect.flatMap(handle.exit, (exit) => {
    if (Exit.isSuccess(exit)) return Effect.die("expected a failure")
    const error = Cause.findError(exit.cause)
    if (error._tag === "Failure") return Effect.die(`expected a typed error, got ${Cause.pretty(exit.cause)}`)
    const e = error.success as unknown
    if (!(e instanceof PoolError.JobError)) return Effect.die(`expected a JobError, got ${String(e)}`)
    return Effect.succeed(e.reason)
  })

describe("WorkerPool", () => {
  describe("running jobs", () => {
    it.effect("run returns the job's value and its typed error unchanged", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2 })
        assert.strictEqual(yield* WorkerPool.run(pool, Effect.succeed(21 * 2)), 42)
        const error = yield* Effect.flip(WorkerPool.run(pool, Effect.fail({ _tag: "Bad", input: 7 } as const)))
        assert.deepStrictEqual(error, { _tag: "Bad", input: 7 })
      }))

    it.effect("a defect fails the job with its cause and the pool keeps working", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const boom = new Error("boom")
        const handle = yield* WorkerPool.submit(pool, Effect.die(boom))
        const exit = yield* handle.exit
        assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
        assert.strictEqual(Exit.isFailure(exit) && Cause.squash(exit.cause), boom)
        assert.strictEqual(yield* handle.status, "failed")
        assert.strictEqual(yield* WorkerPool.run(pool, Effect.succeed("still alive")), "still alive")
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.failed, 1)
        assert.strictEqual(stats.succeeded, 1)
      }))

    it.effect("at most `concurrency` jobs run, the rest wait in the queue", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2 })
        const handles = yield* Effect.forEach([1, 2, 3, 4, 5], (n) =>
          WorkerPool.submit(pool, Effect.as(Effect.sleep("1 second"), n)))
        let stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.running, 2)
        assert.strictEqual(stats.queued, 3)
        assert.deepStrictEqual(
          yield* Effect.forEach(handles, (h) =>
            h.status),
          ["running", "running", "queued", "queued", "queued"]
        )
        yield* TestClock.adjust("1 second")
        stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.running, 2)
        assert.strictEqual(stats.queued, 1)
        yield* TestClock.adjust("2 seconds")
        assert.deepStrictEqual(
          yield* Effect.forEach(handles, (h) => h.await),
          [1, 2, 3, 4, 5]
        )
      }))

    it.effect("jobs run with the submitter's services", () =>
      Effect.gen(function*() {
        class Tenant extends Context.Service<Tenant, string>()("test/Tenant") {}
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const job = Effect.gen(function*() {
          const tenant = yield* Tenant
          return `hello ${tenant}`
        })
        const a = yield* WorkerPool.submit(pool, job).pipe(Effect.provideService(Tenant, "acme"))
        const b = yield* WorkerPool.submit(pool, job).pipe(Effect.provideService(Tenant, "globex"))
        assert.deepStrictEqual([yield* a.await, yield* b.await], ["hello acme", "hello globex"])
      }))

    it.effect("a long run of synchronous jobs does not grow the stack", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: Infinity })
        const blocker = yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        let sum = 0
        for (let i = 0; i < 20_000; i++) yield* WorkerPool.submit(pool, Effect.sync(() => sum += 1))
        yield* TestClock.adjust("1 second")
        yield* blocker.await
        yield* WorkerPool.awaitIdle(pool)
        assert.strictEqual(sum, 20_000)
      }))

    it.effect("ids are generated unless given, and a live id cannot be reused", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ name: "mail", concurrency: 1 })
        const first = yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        assert.strictEqual(first.id, "mail-1")
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { id: "x" })
        const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void, { id: "x" }))
        assert.strictEqual(error.reason._tag, "DuplicateJobId")
        yield* TestClock.adjust("2 seconds")
        const again = yield* WorkerPool.submit(pool, Effect.succeed("reused"), { id: "x" })
        assert.strictEqual(yield* again.await, "reused")
        assert.strictEqual((yield* WorkerPool.stats(pool)).rejected, 1)
      }))

    it.effect("generated and custom ids never collide", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ name: "mail", concurrency: 1 })
        const first = yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        assert.strictEqual(first.id, "mail-1")
        // a custom id equal to a live generated id is a duplicate
        const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void, { id: "mail-1" }))
        assert.strictEqual(error.reason._tag, "DuplicateJobId")
        // a live custom id of the generated form is skipped by the generator
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { id: "mail-2" })
        const third = yield* WorkerPool.submit(pool, Effect.void)
        assert.strictEqual(third.id, "mail-3")
        yield* TestClock.adjust("2 seconds")
        // once ended, the ids are free again
        const again = yield* WorkerPool.submit(pool, Effect.succeed("ok"), { id: "mail-1" })
        assert.strictEqual(yield* again.await, "ok")
      }))

    it.effect("a finished handle keeps its result and status", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const handle = yield* WorkerPool.submit(pool, Effect.succeed("x"), { metadata: { payload: "p" } })
        assert.strictEqual(yield* handle.await, "x")
        assert.strictEqual(yield* handle.await, "x")
        assert.deepStrictEqual(yield* handle.exit, Exit.succeed("x"))
        assert.strictEqual(yield* handle.attempts, 1)
        assert.deepStrictEqual(handle.metadata, { payload: "p" })
        assert.isTrue(Job.isJobHandle(handle))
        yield* handle.cancel
        assert.strictEqual(yield* handle.status, "succeeded")
      }))
  })

  describe("timeouts and deadlines", () => {
    it.effect("a timeout interrupts the job, runs its finalizers, and ends it timedOut", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const finalized = yield* Ref.make(0)
        const handle = yield* WorkerPool.submit(
          pool,
          Effect.sleep("10 seconds").pipe(Effect.ensuring(Ref.update(finalized, (n) => n + 1))),
          { timeout: "1 second" }
        )
        yield* TestClock.adjust("999 millis")
        assert.strictEqual(yield* handle.status, "running")
        yield* TestClock.adjust("1 millis")
        const reason = yield* flipJobError(handle)
        assert.strictEqual(reason._tag, "JobTimedOut")
        assert.strictEqual(reason._tag === "JobTimedOut" && reason.timeoutMillis, 1000)
        assert.strictEqual(yield* Ref.get(finalized), 1)
        assert.strictEqual(yield* handle.status, "timedOut")
        assert.strictEqual((yield* WorkerPool.stats(pool)).timedOut, 1)
      }))

    it.effect("a timeout counts from the job's start, not its submission", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const second = yield* WorkerPool.submit(pool, Effect.as(Effect.sleep("1 second"), "made it"), {
          timeout: "1500 millis"
        })
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(yield* second.await, "made it")
      }))

    it.effect("the pool's default timeout applies, and a job's own timeout can only be shorter", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2, timeout: "1 second" })
        const a = yield* WorkerPool.submit(pool, Effect.sleep("5 seconds"))
        const b = yield* WorkerPool.submit(pool, Effect.sleep("5 seconds"), { timeout: "10 seconds" })
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* a.status, "timedOut")
        assert.strictEqual(yield* b.status, "timedOut")
      }))

    it.effect("a deadline that passes while the job waits ends it timedOut without starting", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const started = yield* Ref.make(false)
        yield* WorkerPool.submit(pool, Effect.sleep("2 seconds"))
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const late = yield* WorkerPool.submit(pool, Ref.set(started, true), { deadline: now + 1000 })
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* flipJobError(late))._tag, "JobTimedOut")
        assert.isFalse(yield* Ref.get(started))
      }))

    it.effect("a deadline bounds a running job like a timeout", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const handle = yield* WorkerPool.submit(pool, Effect.never, { deadline: now + 300 })
        yield* TestClock.adjust("300 millis")
        assert.strictEqual(yield* handle.status, "timedOut")
      }))
  })

  describe("retries", () => {
    it.effect("retries typed failures on the schedule, then succeeds", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        let calls = 0
        const flaky = Effect.suspend(() => ++calls < 3 ? Effect.fail("transient" as const) : Effect.succeed(calls))
        const handle = yield* WorkerPool.submit(pool, flaky, { retry: Schedule.spaced("100 millis") })
        yield* TestClock.adjust("100 millis")
        assert.strictEqual(calls, 2)
        yield* TestClock.adjust("100 millis")
        assert.strictEqual(yield* handle.await, 3)
        assert.strictEqual(yield* handle.attempts, 3)
        assert.strictEqual((yield* WorkerPool.stats(pool)).retries, 2)
      }))

    it.effect("`while` retries only what is transient; `times` caps the retries", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2 })
        let fatalCalls = 0
        let transientCalls = 0
        const fatal = yield* WorkerPool.submit(
          pool,
          Effect.suspend(() => {
            fatalCalls++
            return Effect.fail({ retryable: false })
          }),
          { retry: { schedule: Schedule.spaced("10 millis"), while: (e) => e.retryable } }
        )
        const transient = yield* WorkerPool.submit(
          pool,
          Effect.suspend(() => {
            transientCalls++
            return Effect.fail({ retryable: true })
          }),
          { retry: { schedule: Schedule.spaced("10 millis"), times: 2, while: (e) => e.retryable } }
        )
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* Effect.flip(fatal.await), { retryable: false })
        assert.deepStrictEqual(yield* Effect.flip(transient.await), { retryable: true })
        assert.strictEqual(fatalCalls, 1)
        assert.strictEqual(transientCalls, 3)
        assert.strictEqual(yield* transient.status, "failed")
      }))

    it.effect("defects are never retried, and the timeout covers every attempt", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2 })
        let dieCalls = 0
        const dies = yield* WorkerPool.submit(pool, Effect.suspend(() => Effect.die(`defect ${++dieCalls}`)), {
          retry: Schedule.spaced("10 millis")
        })
        const slow = yield* WorkerPool.submit(pool, Effect.andThen(Effect.sleep("400 millis"), Effect.fail("e")), {
          retry: Schedule.spaced("100 millis"),
          timeout: "1 second"
        })
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* dies.status, "failed")
        assert.strictEqual(dieCalls, 1)
        assert.strictEqual(yield* slow.status, "timedOut")
        assert.strictEqual(yield* slow.attempts, 2)
      }))
  })

  describe("cancellation", () => {
    it.effect("cancelling a queued job ends it cancelled at once and frees its slot", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 1, backpressure: "fail" })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const queued = yield* WorkerPool.submit(pool, Effect.void)
        assert.strictEqual((yield* Effect.flip(WorkerPool.submit(pool, Effect.void))).reason._tag, "QueueFull")
        yield* queued.cancel
        const reason = yield* flipJobError(queued)
        assert.isTrue(reason._tag === "JobCancelled" && reason.by === "handle")
        assert.strictEqual(yield* queued.status, "cancelled")
        const next = yield* WorkerPool.submit(pool, Effect.succeed("room again"))
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* next.await, "room again")
      }))

    it.effect("cancelling a running job interrupts it and returns once its finalizers ran", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const log: Array<string> = []
        const handle = yield* WorkerPool.submit(
          pool,
          Effect.never.pipe(
            Effect.ensuring(Effect.andThen(Effect.sleep("50 millis"), Effect.sync(() => log.push("finalizer"))))
          )
        )
        const cancelling = yield* Effect.forkChild(handle.cancel)
        yield* TestClock.adjust("49 millis")
        assert.isUndefined(cancelling.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        yield* Fiber.join(cancelling)
        assert.deepStrictEqual(log, ["finalizer"])
        assert.strictEqual((yield* flipJobError(handle))._tag, "JobInterrupted")
        assert.strictEqual((yield* WorkerPool.stats(pool)).interrupted, 1)
      }))

    it.effect("interrupting the caller of run cancels the job", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const finalized = yield* Ref.make(0)
        const caller = yield* Effect.forkChild(
          WorkerPool.run(pool, Effect.never.pipe(Effect.ensuring(Ref.update(finalized, (n) => n + 1))))
        )
        yield* Effect.yieldNow
        assert.strictEqual((yield* WorkerPool.stats(pool)).running, 1)
        yield* Fiber.interrupt(caller)
        assert.strictEqual(yield* Ref.get(finalized), 1)
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.running, 0)
        assert.strictEqual(stats.interrupted, 1)
      }))

    it.effect("interrupting the caller of run while its job is queued cancels it before it starts", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        let started = false
        const caller = yield* Effect.forkChild(WorkerPool.run(pool, Effect.sync(() => started = true)))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(caller)
        yield* TestClock.adjust("1 second")
        assert.isFalse(started)
        assert.strictEqual((yield* WorkerPool.stats(pool)).cancelled, 1)
      }))
  })

  describe("backpressure", () => {
    it.effect("suspend: submit waits for room, then the job is accepted", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 1 })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const waiting = yield* Effect.forkChild(WorkerPool.submit(pool, Effect.succeed("third")))
        yield* Effect.yieldNow
        assert.isUndefined(waiting.pollUnsafe())
        assert.strictEqual((yield* WorkerPool.stats(pool)).waiting, 1)
        yield* TestClock.adjust("1 second")
        const handle = yield* Fiber.join(waiting)
        assert.strictEqual(yield* handle.status, "queued")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* handle.await, "third")
      }))

    it.effect("suspend with capacity 0: a submit waits for a free worker", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 0 })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const waiting = yield* Effect.forkChild(WorkerPool.submit(pool, Effect.succeed(2)))
        yield* Effect.yieldNow
        assert.isUndefined(waiting.pollUnsafe())
        yield* TestClock.adjust("1 second")
        const handle = yield* Fiber.join(waiting)
        assert.strictEqual(yield* handle.await, 2)
      }))

    it.effect("suspend: an interrupted submitter withdraws its job", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 0 })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        let ran = false
        const waiting = yield* Effect.forkChild(WorkerPool.submit(pool, Effect.sync(() => ran = true), { id: "w" }))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(waiting)
        yield* TestClock.adjust("1 second")
        assert.isFalse(ran)
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.waiting, 0)
        assert.strictEqual(stats.submitted, 1)
        // the withdrawn job's id is free again
        const again = yield* WorkerPool.submit(pool, Effect.succeed("ok"), { id: "w" })
        assert.strictEqual(yield* again.await, "ok")
      }))

    it.effect("fail: submit fails with QueueFull at once", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 2, backpressure: "fail" })
        for (let i = 0; i < 3; i++) yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void))
        assert.strictEqual(error.reason._tag, "QueueFull")
        assert.strictEqual(error.reason._tag === "QueueFull" && error.reason.capacity, 2)
        assert.strictEqual((yield* WorkerPool.stats(pool)).rejected, 1)
        yield* TestClock.adjust("3 seconds")
      }))

    it.effect("dropping: the new job is not accepted and its handle says so", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 1, backpressure: "dropping" })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const queued = yield* WorkerPool.submit(pool, Effect.succeed("kept"))
        let ran = false
        const dropped = yield* WorkerPool.submit(pool, Effect.sync(() => ran = true))
        assert.strictEqual(yield* dropped.status, "dropped")
        assert.strictEqual((yield* flipJobError(dropped))._tag, "JobDropped")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* queued.await, "kept")
        assert.isFalse(ran)
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.submitted, 2)
        assert.strictEqual(stats.rejected, 1)
      }))

    it.effect("sliding: the oldest queued job is pushed out and told", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 2, backpressure: "sliding" })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const oldest = yield* WorkerPool.submit(pool, Effect.succeed("a"))
        const middle = yield* WorkerPool.submit(pool, Effect.succeed("b"))
        const newest = yield* WorkerPool.submit(pool, Effect.succeed("c"))
        const reason = yield* flipJobError(oldest)
        assert.isTrue(reason._tag === "JobCancelled" && reason.by === "sliding")
        assert.strictEqual((yield* WorkerPool.stats(pool)).queued, 2)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual([yield* middle.await, yield* newest.await], ["b", "c"])
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.cancelled, 1)
        assert.strictEqual(stats.submitted, 4)
      }))
  })

  describe("options", () => {
    const invalid = (options: WorkerPool.Options) => Effect.flip(Effect.scoped(WorkerPool.make(options)))

    it.effect("invalid pool options are rejected with the option and the value named", () =>
      Effect.gen(function*() {
        const cases: Array<[WorkerPool.Options, string, string]> = [
          [{ concurrency: 0 }, "concurrency", "0"],
          [{ concurrency: 1.5 }, "concurrency", "1.5"],
          [{ concurrency: Number.NaN }, "concurrency", "NaN"],
          [{ concurrency: 1, capacity: -1 }, "capacity", "-1"],
          [{ concurrency: 1, capacity: 2.5 }, "capacity", "2.5"],
          [{ concurrency: 1, backpressure: "block" as never }, "backpressure", "\"block\""],
          [{ concurrency: 1, backpressure: "sliding", capacity: 0 }, "capacity", "0"],
          [{ concurrency: 1, timeout: -5 }, "timeout", "-5"],
          [{ concurrency: 1, timeout: Number.NaN }, "timeout", "NaN"],
          [{ concurrency: 1, name: "" }, "name", "\"\""],
          [{ concurrency: 1, shutdown: { gracePeriod: "-1 seconds" } }, "shutdown.gracePeriod", "\"-1 seconds\""],
          [{ concurrency: 1, shutdown: { interruptTimeout: "Infinity" } }, "shutdown.interruptTimeout", "\"Infinity\""],
          [{ concurrency: 1, shutdown: { mode: "later" as never } }, "shutdown.mode", "\"later\""]
        ]
        for (const [options, option, value] of cases) {
          const error = yield* invalid(options)
          assert.strictEqual(error._tag, "InvalidOptions")
          assert.strictEqual(error.option, option)
          assert.strictEqual(error.value, value)
          assert.include(error.message, `"${option}"`)
        }
      }))

    it.effect("invalid job options reject the submission, typed, and lose nothing", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const cases: Array<[Job.Options<unknown>, string]> = [
          [{ id: "" }, "id"],
          [{ timeout: 0 }, "timeout"],
          [{ timeout: "soon" as never }, "timeout"],
          [{ deadline: now - 1 }, "deadline"],
          [{ deadline: Number.NaN }, "deadline"],
          [{ retry: { times: -1 } }, "retry.times"],
          [{ retry: {} }, "retry"],
          [{ retry: "forever" as never }, "retry"]
        ]
        for (const [options, option] of cases) {
          const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void, options))
          assert.isTrue(error.reason._tag === "InvalidOptions" && error.reason.option === option, option)
        }
        assert.strictEqual(yield* WorkerPool.run(pool, Effect.succeed("fine")), "fine")
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.rejected, cases.length)
        assert.strictEqual(stats.submitted, 1)
      }))

    it.effect("config reads options from the environment over defaults", () =>
      Effect.gen(function*() {
        const provider = ConfigProvider.fromEnv({
          env: {
            POOL_CONCURRENCY: "6",
            POOL_BACKPRESSURE: "fail",
            POOL_SHUTDOWN_GRACE_PERIOD: "5 seconds",
            POOL_TIMEOUT: "2 seconds"
          }
        })
        const layer = WorkerPool.layerConfig(
          WorkerPool.config({ name: "env", concurrency: 1, capacity: 3 }).pipe(Config.nested("POOL"))
        ).pipe(Layer.provide(ConfigProvider.layer(provider)))
        const pool = yield* Effect.provide(
          Effect.gen(function*() {
            return yield* WorkerPool.Service
          }),
          layer
        )
        assert.strictEqual(pool.concurrency, 6)
        assert.strictEqual(pool.capacity, 3)
        assert.strictEqual(pool.name, "env")
      }))

    it.effect("config with an invalid value fails with InvalidOptions", () =>
      Effect.gen(function*() {
        const provider = ConfigProvider.fromEnv({ env: { CONCURRENCY: "0" } })
        const error = yield* Effect.flip(
          Effect.scoped(Effect.flatMap(WorkerPool.config({ concurrency: 1 }).parse(provider), WorkerPool.make))
        )
        assert.strictEqual(error._tag, "InvalidOptions")
      }))
  })

  describe("layer", () => {
    it.effect("the layer's pool lives as long as the layer and shuts down with it", () =>
      Effect.gen(function*() {
        const finalized = yield* Ref.make(false)
        const handle = yield* Effect.gen(function*() {
          const pool = yield* WorkerPool.Service
          return yield* WorkerPool.submit(
            pool,
            Effect.sleep("1 second").pipe(Effect.ensuring(Ref.set(finalized, true)), Effect.as("drained"))
          )
        }).pipe(Effect.provide(Layer.fresh(WorkerPool.layer({ concurrency: 1 }))), Effect.forkChild)
        yield* TestClock.adjust("1 second")
        const h = yield* Fiber.join(handle)
        assert.strictEqual(yield* h.await, "drained")
        assert.isTrue(yield* Ref.get(finalized))
      }))
  })
})

describe("WorkerPool.find and WorkerPool.live", () => {
  it.effect("find a live job by its custom or generated id; ended jobs and waiting submitters are not found", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "f", concurrency: 1, capacity: 1 })
      const running = yield* WorkerPool.submit(pool, Effect.never)
      const queued = yield* WorkerPool.submit(pool, Effect.never, { id: "q" })
      // the queue is full: this submitter waits for room and is not a live job yet
      yield* Effect.forkChild(WorkerPool.submit(pool, Effect.void, { id: "w" }), { startImmediately: true })
      assert.strictEqual(running.id, "f-1")
      const byGenerated = yield* WorkerPool.find(pool, "f-1")
      assert.strictEqual(Option.getOrUndefined(byGenerated), running)
      assert.strictEqual(Option.getOrUndefined(yield* WorkerPool.find(pool, "q")), queued)
      assert.isTrue(Option.isNone(yield* WorkerPool.find(pool, "w")))
      assert.isTrue(Option.isNone(yield* WorkerPool.find(pool, "f-99")))
      assert.deepStrictEqual((yield* WorkerPool.live(pool)).map((h) => h.id), ["f-1", "q"])
      yield* queued.cancel
      assert.isTrue(Option.isNone(yield* WorkerPool.find(pool, "q")))
      // the waiter got the free slot
      assert.deepStrictEqual((yield* WorkerPool.live(pool)).map((h) => h.id), ["f-1", "w"])
      assert.deepStrictEqual((yield* WorkerPool.live(pool, { limit: 1 })).map((h) => h.id), ["f-1"])
      yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0, interruptTimeout: 0 })
    }))

  it.effect("live lists queued jobs in the order they will start when priorities reorder them", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, aging: false })
      yield* WorkerPool.submit(pool, Effect.never, { id: "run" })
      yield* WorkerPool.submit(pool, Effect.void, { id: "low", priority: 1 })
      yield* WorkerPool.submit(pool, Effect.void, { id: "high", priority: 9 })
      assert.deepStrictEqual((yield* WorkerPool.live(pool)).map((h) => h.id), ["run", "high", "low"])
      yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0, interruptTimeout: 0 })
    }))
})
