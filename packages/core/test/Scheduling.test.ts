import { assert, describe, it } from "@effect/vitest"
import { type Job, WorkerPool } from "@fiberpool/core"
import { Clock, Effect, Fiber, Queue, Schema } from "effect"
import { TestClock } from "effect/testing"
import { between, propertyOptions, Step } from "./utils/properties.ts"

/** Runs `body` and advances the TestClock by `Step` until it completes. */
const drive = <A, E>(body: Effect.Effect<A, E>, maxSteps = 100_000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(body, { startImmediately: true })
    let steps = 0
    while (fiber.pollUnsafe() === undefined) {
      if (++steps > maxSteps) return yield* Effect.die("did not finish")
      yield* TestClock.adjust(Step)
    }
    return yield* Fiber.join(fiber)
  })

describe("scheduling", () => {
  describe("priorities", () => {
    it.effect("higher priority starts first, FIFO among equals", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, aging: false })
        const order: Array<string> = []
        const job = (name: string) => Effect.sync(() => order.push(name))
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        for (const [name, priority] of [["low", -1], ["a", 0], ["high", 5], ["b", 0], ["high2", 5]] as const) {
          yield* WorkerPool.submit(pool, job(name), { priority })
        }
        yield* TestClock.adjust("1 second")
        yield* WorkerPool.awaitIdle(pool)
        assert.deepStrictEqual(order, ["high", "high2", "a", "b", "low"])
      }))

    it.effect("aging lets a waiting job overtake newer higher-priority jobs", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, aging: "1 second" })
        const order: Array<string> = []
        yield* WorkerPool.submit(pool, Effect.sleep("10 seconds"))
        yield* WorkerPool.submit(pool, Effect.sync(() => order.push("old, priority 0")))
        yield* TestClock.adjust("3 seconds")
        // priority 2 submitted 3 s later: 2 - 3 < 0, so the old job is ahead
        yield* WorkerPool.submit(pool, Effect.sync(() => order.push("new, priority 2")), { priority: 2 })
        // priority 4 submitted 3 s later: 4 - 3 > 0, so it overtakes
        yield* WorkerPool.submit(pool, Effect.sync(() => order.push("new, priority 4")), { priority: 4 })
        yield* TestClock.adjust("7 seconds")
        yield* WorkerPool.awaitIdle(pool)
        assert.deepStrictEqual(order, ["new, priority 4", "old, priority 0", "new, priority 2"])
      }))

    it.effect("jobs queued before the first prioritised job keep their place by age", () =>
      Effect.gen(function*() {
        yield* TestClock.adjust("100 seconds") // scores depend on the absolute time: not at the epoch
        const pool = yield* WorkerPool.make({ concurrency: 1, aging: "1 second" })
        const order: Array<string> = []
        yield* WorkerPool.submit(pool, Effect.sleep("10 seconds"))
        yield* WorkerPool.submit(pool, Effect.sync(() => order.push("plain, 5 s old")))
        yield* TestClock.adjust("5 seconds")
        yield* WorkerPool.submit(pool, Effect.sync(() => order.push("priority 3")), { priority: 3 })
        yield* WorkerPool.submit(pool, Effect.sync(() => order.push("priority 9")), { priority: 9 })
        yield* TestClock.adjust("5 seconds")
        yield* WorkerPool.awaitIdle(pool)
        // aged by 5 s, the plain job (0 + 5) is ahead of priority 3, behind priority 9
        assert.deepStrictEqual(order, ["priority 9", "plain, 5 s old", "priority 3"])
      }))

    it.effect("sliding pushes out the oldest job of the lowest priority", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 2, backpressure: "sliding" })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        const high = yield* WorkerPool.submit(pool, Effect.void, { priority: 9 })
        const low = yield* WorkerPool.submit(pool, Effect.void, { priority: 1 })
        const newest = yield* WorkerPool.submit(pool, Effect.void, { priority: 5 })
        assert.strictEqual(yield* low.status, "cancelled")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* high.status, "succeeded")
        assert.strictEqual(yield* newest.status, "succeeded")
      }))

    it.effect.prop(
      "without aging, jobs start in strict priority order (FIFO among equals)",
      [Schema.Array(between(-3, 3)).check(Schema.isMinLength(1), Schema.isMaxLength(30)), between(1, 3)],
      ([priorities, concurrency]) =>
        Effect.gen(function*() {
          const pool = yield* WorkerPool.make({ concurrency, aging: false, capacity: Infinity })
          const started: Array<number> = []
          // fill the workers so that every job below waits in the queue
          for (let i = 0; i < concurrency; i++) yield* WorkerPool.submit(pool, Effect.sleep(Step))
          for (const [index, priority] of priorities.entries()) {
            yield* WorkerPool.submit(pool, Effect.andThen(Effect.sync(() => started.push(index)), Effect.sleep(Step)), {
              priority
            })
          }
          yield* drive(WorkerPool.awaitIdle(pool))
          const expected = priorities.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map((
            [, i]
          ) => i)
          assert.deepStrictEqual(started, expected)
        }).pipe(Effect.scoped),
      propertyOptions
    )

    it.effect.prop(
      "with aging, every job starts within the stated bound despite a stream of higher-priority jobs",
      [between(1, 3), between(1, 5), between(1, 4), between(0, 3)],
      ([concurrency, duration, aging, lowPriority]) =>
        Effect.gen(function*() {
          // a continuous stream: every `duration` steps, 2 × `concurrency` jobs of a higher priority arrive,
          // twice what the workers can run, so a backlog of higher-priority work grows without end; one job of
          // a lower priority arrives right after the first batch
          const high = lowPriority + 3
          const agingMillis = aging * 100
          const jobMillis = duration * Step
          const pool = yield* WorkerPool.make({ concurrency, aging: agingMillis, capacity: Infinity })
          const origin = yield* Clock.currentTimeMillis
          const producer = yield* Effect.forkChild(
            Effect.forever(
              Effect.andThen(
                Effect.forEach(
                  Array.from({ length: 2 * concurrency }),
                  () => WorkerPool.submit(pool, Effect.sleep(jobMillis), { priority: high })
                ),
                Effect.sleep(jobMillis)
              )
            ),
            { startImmediately: true }
          )
          const low = yield* WorkerPool.submit(pool, Effect.sleep(jobMillis), { priority: lowPriority })
          let startedAt: number | undefined
          // the bound: the low job is overtaken only by jobs submitted less than W = (high - low) × aging after
          // it. So at most J = (queued before it) + (batches within W) × 2 × concurrency jobs ever start
          // before it, and the workers get through J jobs in ceil(J / concurrency) job durations.
          const window = (high - lowPriority) * agingMillis
          const ahead = concurrency + Math.ceil(window / jobMillis) * 2 * concurrency
          const bound = (Math.ceil(ahead / concurrency) + 1) * jobMillis
          for (let t = 0; t <= bound + 10 * jobMillis && startedAt === undefined; t += Step) {
            if ((yield* low.status) !== "queued") startedAt = (yield* Clock.currentTimeMillis) - origin
            else yield* TestClock.adjust(Step)
          }
          yield* Fiber.interrupt(producer)
          yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
          assert.isDefined(startedAt, "the low-priority job never started")
          assert.isAtMost(startedAt!, bound)
        }).pipe(Effect.scoped),
      propertyOptions
    )
  })

  describe("per-key concurrency", () => {
    it.effect("a key at its limit waits without delaying other keys", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 3, keyConcurrency: 1 })
        const a1 = yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { key: "a" })
        const a2 = yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { key: "a" })
        const b1 = yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { key: "b" })
        const none = yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        assert.deepStrictEqual(
          yield* Effect.forEach([a1, a2, b1, none], (h) => h.status),
          ["running", "queued", "running", "running"]
        )
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* a2.status, "running")
        yield* a2.cancel
      }))

    it.effect("a cancelled job parked on its key gives its slot back", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2, keyConcurrency: 1, capacity: 1, backpressure: "fail" })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { key: "a" })
        const parked = yield* WorkerPool.submit(pool, Effect.void, { key: "a" })
        assert.strictEqual((yield* Effect.flip(WorkerPool.submit(pool, Effect.void))).reason._tag, "QueueFull")
        yield* parked.cancel
        assert.strictEqual(yield* parked.status, "cancelled")
        const other = yield* WorkerPool.submit(pool, Effect.succeed("b"), { key: "b" })
        assert.strictEqual(yield* other.await, "b")
        yield* TestClock.adjust("1 second")
      }))

    it.effect.prop(
      "per key, running never exceeds the limit, and a free worker never waits while an eligible job is queued",
      [
        Schema.Array(Schema.Struct({ key: between(0, 3), duration: between(1, 5), at: between(0, 10) })).check(
          Schema.isMinLength(1),
          Schema.isMaxLength(25)
        ),
        between(1, 4),
        between(1, 3)
      ],
      ([jobs, concurrency, keyConcurrency]) =>
        Effect.gen(function*() {
          const pool = yield* WorkerPool.make({ concurrency, keyConcurrency, capacity: Infinity })
          const running = new Map<string, number>()
          let violations = 0
          const handles: Array<{ key: string; handle: Job.JobHandle<void> }> = []
          for (const job of jobs) {
            const key = `k${job.key}`
            yield* Effect.forkChild(
              Effect.andThen(
                Effect.sleep(job.at * Step),
                Effect.flatMap(
                  WorkerPool.submit(
                    pool,
                    Effect.acquireUseRelease(
                      Effect.sync(() => {
                        running.set(key, (running.get(key) ?? 0) + 1)
                        if (running.get(key)! > keyConcurrency) violations++
                      }),
                      () => Effect.sleep(job.duration * Step),
                      () => Effect.sync(() => running.set(key, running.get(key)! - 1))
                    ),
                    { key }
                  ),
                  (handle) => Effect.sync(() => handles.push({ key, handle }))
                )
              ),
              { startImmediately: true }
            )
          }
          for (let t = 0; t < 400; t++) {
            // work conservation: with a worker free, no queued job whose key is below its limit may wait
            const stats = yield* WorkerPool.stats(pool)
            if (stats.running < concurrency) {
              for (const { key, handle } of handles) {
                if ((yield* handle.status) === "queued") {
                  assert.isAtLeast(running.get(key) ?? 0, keyConcurrency, `a ${key} job waits while a worker is free`)
                }
              }
            }
            yield* TestClock.adjust(Step)
          }
          assert.strictEqual(violations, 0)
          assert.strictEqual((yield* WorkerPool.stats(pool)).succeeded, jobs.length)
        }).pipe(Effect.scoped),
      propertyOptions
    )
  })

  describe("rate limits", () => {
    it.effect("at most `limit` starts per interval; the rest start as the window moves", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 10, rateLimit: { limit: 2, interval: "1 second" } })
        const handles = yield* Effect.forEach([1, 2, 3, 4, 5], () => WorkerPool.submit(pool, Effect.void))
        const statuses = () => Effect.forEach(handles, (h) => h.status)
        assert.deepStrictEqual(yield* statuses(), ["succeeded", "succeeded", "queued", "queued", "queued"])
        yield* TestClock.adjust("999 millis")
        assert.strictEqual((yield* WorkerPool.stats(pool)).succeeded, 2)
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* WorkerPool.stats(pool)).succeeded, 4)
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* WorkerPool.stats(pool)).succeeded, 5)
      }))

    it.effect("a per-key rate limit holds one key back and lets others through", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 10, keyRateLimit: { limit: 1, interval: "1 second" } })
        const a = yield* Effect.forEach([1, 2], () => WorkerPool.submit(pool, Effect.void, { key: "a" }))
        const b = yield* WorkerPool.submit(pool, Effect.void, { key: "b" })
        assert.strictEqual(yield* a[1].status, "queued")
        assert.strictEqual(yield* b.status, "succeeded")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* a[1].status, "succeeded")
      }))

    it.effect.prop(
      "job starts in any window never exceed the limit, globally and per key",
      [
        Schema.Array(Schema.Struct({ key: between(0, 2), at: between(0, 30), duration: between(0, 3) })).check(
          Schema.isMinLength(1),
          Schema.isMaxLength(30)
        ),
        between(1, 4),
        between(1, 5),
        between(1, 3)
      ],
      ([jobs, limit, interval, keyLimit]) =>
        Effect.gen(function*() {
          const intervalMillis = interval * Step
          const pool = yield* WorkerPool.make({
            concurrency: 8,
            capacity: Infinity,
            rateLimit: { limit, interval: intervalMillis },
            keyRateLimit: { limit: keyLimit, interval: intervalMillis * 2 }
          })
          const starts: Array<{ at: number; key: string }> = []
          for (const job of jobs) {
            const key = `k${job.key}`
            yield* Effect.forkChild(
              Effect.andThen(
                Effect.sleep(job.at * Step),
                WorkerPool.submit(
                  pool,
                  Effect.andThen(
                    Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.sync(() => starts.push({ at, key }))),
                    Effect.sleep(job.duration * Step)
                  ),
                  { key }
                )
              ),
              { startImmediately: true }
            )
          }
          yield* TestClock.adjust(Step) // let the submitters at time 0 run
          yield* drive(WorkerPool.awaitIdle(pool))
          yield* drive(Effect.sleep(40 * Step)) // late submitters
          yield* drive(WorkerPool.awaitIdle(pool))
          assert.strictEqual(starts.length, jobs.length)
          const inWindow = (list: Array<{ at: number }>, from: number, width: number) =>
            list.filter((s) => s.at >= from && s.at < from + width).length
          for (const s of starts) {
            assert.isAtMost(inWindow(starts, s.at, intervalMillis), limit)
            const sameKey = starts.filter((o) => o.key === s.key)
            assert.isAtMost(inWindow(sameKey, s.at, intervalMillis * 2), keyLimit)
          }
        }).pipe(Effect.scoped),
      propertyOptions
    )
  })

  describe("pause, resume and resize", () => {
    it.effect("pause stops starts, resume resumes them, nothing is lost", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2 })
        const running = yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        yield* WorkerPool.pause(pool)
        const queued = yield* Effect.forEach([1, 2, 3], (n) => WorkerPool.submit(pool, Effect.succeed(n)))
        assert.strictEqual(yield* running.status, "running")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* running.status, "succeeded")
        assert.deepStrictEqual(yield* Effect.forEach(queued, (h) => h.status), ["queued", "queued", "queued"])
        assert.isTrue((yield* WorkerPool.stats(pool)).paused)
        yield* WorkerPool.resume(pool)
        assert.deepStrictEqual(yield* Effect.forEach(queued, (h) => h.await), [1, 2, 3])
      }))

    it.effect("a drain shutdown resumes a paused dispatch", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        yield* WorkerPool.pause(pool)
        const handle = yield* WorkerPool.submit(pool, Effect.succeed("drained"))
        const report = yield* WorkerPool.shutdown(pool)
        assert.deepStrictEqual(report.jobs.succeeded, [handle.id])
      }))

    it.effect("pausing intake makes submitters wait; queued jobs still run", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const first = yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        yield* WorkerPool.pause(pool, { intake: true })
        const waiting = yield* Effect.forkChild(WorkerPool.submit(pool, Effect.succeed("in")), {
          startImmediately: true
        })
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* first.status, "succeeded")
        assert.isUndefined(waiting.pollUnsafe())
        yield* WorkerPool.resume(pool, { intake: true })
        const handle = yield* Fiber.join(waiting)
        assert.strictEqual(yield* handle.await, "in")
      }))

    it.effect.prop(
      "after resize to n, running never exceeds n once the excess jobs finish; nothing is lost",
      [between(1, 6), between(1, 6), Schema.Array(between(1, 5)).check(Schema.isMinLength(1), Schema.isMaxLength(30))],
      ([before, after, durations]) =>
        Effect.gen(function*() {
          const pool = yield* WorkerPool.make({ concurrency: before, capacity: Infinity })
          let running = 0
          let maxAfterSettle = 0
          let settled = false
          const handles = yield* Effect.forEach(durations, (d) =>
            WorkerPool.submit(
              pool,
              Effect.acquireUseRelease(
                Effect.sync(() => {
                  running++
                  if (settled) maxAfterSettle = Math.max(maxAfterSettle, running)
                }),
                () => Effect.sleep(d * Step),
                () => Effect.sync(() => running--)
              )
            ))
          yield* TestClock.adjust(Step)
          const runningAtResize = running
          const queuedAtResize = (yield* WorkerPool.stats(pool)).queued
          yield* WorkerPool.resize(pool, after)
          // shrinking interrupts nothing; growing starts queued jobs at once
          if (after <= before) assert.strictEqual(running, runningAtResize)
          else assert.strictEqual(running, Math.min(after, runningAtResize + queuedAtResize))
          // once the jobs running at the resize have ended (at most 5 steps), at most `after` run
          yield* TestClock.adjust(5 * Step)
          settled = true
          maxAfterSettle = running
          yield* drive(WorkerPool.awaitIdle(pool))
          assert.isAtMost(maxAfterSettle, after)
          for (const handle of handles) assert.strictEqual(yield* handle.status, "succeeded")
        }).pipe(Effect.scoped),
      propertyOptions
    )
  })

  describe("dead letters", () => {
    it.effect("failed, timed-out and abandoned jobs reach the sink once, with cause and attempts", () =>
      Effect.gen(function*() {
        const letters = yield* Queue.unbounded<Job.DeadLetter>()
        const pool = yield* WorkerPool.make({ concurrency: 3, deadLetters: letters })
        yield* WorkerPool.submit(pool, Effect.fail("bad"), { id: "failed", retry: { times: 2 } })
        yield* WorkerPool.submit(pool, Effect.never, { id: "slow", timeout: "1 second" })
        yield* WorkerPool.submit(pool, Effect.uninterruptible(Effect.sleep("1 hour")), { id: "stuck" })
        yield* WorkerPool.run(pool, Effect.void, { id: "fine" })
        yield* TestClock.adjust("1 second")
        yield* WorkerPool.shutdown(pool, { gracePeriod: 0, interruptTimeout: 0 })
        const all = yield* Queue.takeAll(letters)
        assert.deepStrictEqual(all.map((l) => [l.jobId, l.status, l.attempts]), [
          ["failed", "failed", 3],
          ["slow", "timedOut", 1],
          ["stuck", "abandoned", 1]
        ])
      }))

    it.effect("a callback sink runs for each letter, and shutdown waits for it", () =>
      Effect.gen(function*() {
        const seen: Array<string> = []
        const pool = yield* WorkerPool.make({
          concurrency: 1,
          deadLetters: (letter) => Effect.andThen(Effect.sleep("10 millis"), Effect.sync(() => seen.push(letter.jobId)))
        })
        yield* Effect.exit(WorkerPool.run(pool, Effect.die("boom"), { id: "d" }))
        const shutdown = yield* Effect.forkChild(WorkerPool.shutdown(pool), { startImmediately: true })
        yield* TestClock.adjust("10 millis")
        yield* Fiber.join(shutdown)
        assert.deepStrictEqual(seen, ["d"])
      }))

    it.effect("invalid scheduling options name the option", () =>
      Effect.gen(function*() {
        const cases: Array<[WorkerPool.Options, string]> = [
          [{ concurrency: 1, keyConcurrency: 0 }, "keyConcurrency"],
          [{ concurrency: 1, aging: -1 }, "aging"],
          [{ concurrency: 1, rateLimit: { limit: 0, interval: "1 second" } }, "rateLimit.limit"],
          [{ concurrency: 1, rateLimit: { limit: 1, interval: "never" as never } }, "rateLimit.interval"],
          [{ concurrency: 1, keyRateLimit: { limit: 1.5, interval: 10 } }, "keyRateLimit.limit"],
          [{ concurrency: 1, deadLetters: "stdout" as never }, "deadLetters"],
          [{ concurrency: 1, spans: "maybe" as never }, "spans"]
        ]
        for (const [options, option] of cases) {
          const error = yield* Effect.flip(Effect.scoped(WorkerPool.make(options)))
          assert.strictEqual(error.option, option)
        }
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        for (const [options, option] of [[{ priority: Number.NaN }, "priority"], [{ key: "" }, "key"]] as const) {
          const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void, options))
          assert.isTrue(error.reason._tag === "InvalidOptions" && error.reason.option === option)
        }
      }))
  })
})
