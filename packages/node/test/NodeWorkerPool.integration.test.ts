import { assert, describe, it } from "@effect/vitest"
import { PoolError, WorkerPool } from "@fiberpool/core"
import { Cause, Effect, Exit, Fiber, Metric, Result } from "effect"
import { fileURLToPath } from "node:url"
import * as NodeError from "../src/NodeError.ts"
import * as NodeWorkerPool from "../src/NodeWorkerPool.ts"
import { Crash, Divide, DivisionByZero, Double, Ping, Sequence, Spin, Ticks } from "./fixtures/thread-tasks.ts"
import { exitWithin, run } from "./utils/spawn.ts"

const worker = new URL("./fixtures/thread-worker.ts", import.meta.url)

/** Runs `self` and returns how long it took in milliseconds, with its value. */
const elapsed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(self, (value) => [performance.now() - start, value] as const)
  })

const reasonOf = (exit: Exit.Exit<unknown, unknown>) => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const error = Cause.findError((exit as Exit.Failure<unknown, unknown>).cause)
  assert.isTrue(Result.isSuccess(error), "expected a typed error")
  return (error as Result.Success<unknown, unknown>).success
}

describe("NodeWorkerPool on real threads", () => {
  it.live("typed success, typed error, defect and transferred buffers cross the boundary", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 2 })
      const ok = yield* NodeWorkerPool.run(threads, Divide, { a: 6, b: 3 })
      assert.strictEqual(ok.quotient, 2)
      assert.notStrictEqual(ok.threadId, 0, "ran on a worker thread, not the main one")

      const error = yield* Effect.flip(NodeWorkerPool.run(threads, Divide, { a: 6, b: 0 }))
      assert.instanceOf(error, DivisionByZero)
      assert.strictEqual((error as DivisionByZero).dividend, 6)

      const handle = yield* NodeWorkerPool.submit(threads, Crash, "defect", { id: "buggy" })
      const exit = yield* handle.exit
      assert.strictEqual(yield* handle.status, "failed")
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      assert.include(Cause.pretty((exit as Exit.Failure<unknown, unknown>).cause), "a bug in the handler")

      const bytes = new Uint8Array([1, 2, 3])
      const doubled = yield* NodeWorkerPool.run(threads, Double, bytes)
      assert.deepStrictEqual([...doubled], [2, 4, 6])
      assert.strictEqual(bytes.byteLength, 0, "the input buffer was transferred, not copied")

      // a defect does not cost a thread
      assert.strictEqual((yield* NodeWorkerPool.threadStats(threads)).respawned, 0)
      const stats = yield* WorkerPool.stats(threads.pool)
      assert.strictEqual(stats.succeeded, 2)
      assert.strictEqual(stats.failed, 2)
    }).pipe(Effect.scoped))

  it.live("a busy loop past its 100 ms timeout ends timed out, and the next job starts at once on a fresh thread", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })
      const first = yield* NodeWorkerPool.run(threads, Ping, 0)

      const stuck = yield* NodeWorkerPool.submit(threads, Spin, { millis: 10_000 }, { timeout: "100 millis" })
      // queued behind the stuck job on the only thread
      const next = yield* NodeWorkerPool.submit(threads, Spin, { millis: 1 })

      const [stuckMillis, stuckExit] = yield* elapsed(stuck.exit)
      assert.strictEqual(yield* stuck.status, "timedOut")
      const reason = reasonOf(stuckExit)
      assert.instanceOf(reason, PoolError.JobError)
      assert.strictEqual((reason as PoolError.JobError).reason._tag, "JobTimedOut")
      assert.isBelow(stuckMillis, 1_000, "timed out within a bound, not after the 10 s loop")

      // the fresh thread only has to load the worker file; the old one is gone
      const [nextMillis, nextResult] = yield* elapsed(next.await)
      assert.isBelow(nextMillis, 3_000)
      assert.notStrictEqual(nextResult.threadId, first, "ran on a new thread")
      assert.deepStrictEqual(yield* NodeWorkerPool.threadStats(threads), { busy: 0, idle: 1, respawned: 1 })
    }).pipe(Effect.scoped))

  it.live("cancelling a running CPU job ends it interrupted and frees its thread", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })
      const handle = yield* NodeWorkerPool.submit(threads, Spin, { millis: 10_000 })
      yield* Effect.sleep("50 millis")
      assert.strictEqual(yield* handle.status, "running")
      const [cancelMillis] = yield* elapsed(handle.cancel)
      assert.isBelow(cancelMillis, 1_000)
      assert.strictEqual(yield* handle.status, "interrupted")
      // interrupting `run` cancels too (once the replacement thread runs it: a job whose thread has not started it
      // yet is taken back without ending the thread)
      yield* NodeWorkerPool.run(threads, Spin, { millis: 1 })
      const waiter = yield* Effect.forkChild(NodeWorkerPool.run(threads, Spin, { millis: 10_000 }))
      yield* Effect.sleep("50 millis")
      yield* Fiber.interrupt(waiter)
      const [, result] = yield* elapsed(NodeWorkerPool.run(threads, Spin, { millis: 1 }))
      assert.isAbove(result.iterations, 0)
      assert.strictEqual((yield* WorkerPool.stats(threads.pool)).interrupted, 2)
      assert.strictEqual((yield* NodeWorkerPool.threadStats(threads)).respawned, 2)
    }).pipe(Effect.scoped))

  it.live("a thread that throws or calls process.exit fails only its own job, and is replaced", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 2 })
      for (const mode of ["throw", "exit"] as const) {
        // a job on the other thread runs through the crash
        const bystander = yield* NodeWorkerPool.submit(threads, Spin, { millis: 300 })
        const crash = yield* Effect.flip(NodeWorkerPool.run(threads, Crash, mode))
        assert.instanceOf(crash, NodeError.NodeError)
        assert.instanceOf((crash as NodeError.NodeError).reason, NodeError.ThreadCrashed)
        const crashed = (crash as NodeError.NodeError).reason as NodeError.ThreadCrashed
        if (mode === "throw") {
          assert.strictEqual(crashed.reason, "uncaughtException")
          assert.strictEqual(crashed.message, "thrown outside the handler")
        } else {
          assert.strictEqual(crashed.reason, "exited")
          assert.strictEqual(crashed.exitCode, 7)
        }
        assert.strictEqual(crashed.task, "crash")
        assert.isAbove((yield* bystander.await).iterations, 0)
      }
      assert.strictEqual((yield* NodeWorkerPool.run(threads, Divide, { a: 1, b: 1 })).quotient, 1)
      assert.strictEqual((yield* NodeWorkerPool.threadStats(threads)).respawned, 2)
    }).pipe(Effect.scoped))

  it.live("an out-of-memory job under resourceLimits fails only itself", () =>
    Effect.gen(function*() {
      const registry = new Map()
      const threads = yield* NodeWorkerPool.make({
        worker,
        threads: 1,
        name: "oom",
        resourceLimits: { maxOldGenerationSizeMb: 48 }
      }).pipe(Effect.provideService(Metric.MetricRegistry, registry))
      const error = yield* Effect.flip(NodeWorkerPool.run(threads, Crash, "oom"))
      assert.instanceOf(error, NodeError.NodeError)
      const reason = (error as NodeError.NodeError).reason
      assert.strictEqual(reason._tag === "ThreadCrashed" && reason.reason, "outOfMemory")
      assert.strictEqual((yield* NodeWorkerPool.run(threads, Divide, { a: 4, b: 2 })).quotient, 2)
      const respawned = yield* Metric.value(Metric.withAttributes(NodeWorkerPool.metrics.respawned, { pool: "oom" }))
        .pipe(Effect.provideService(Metric.MetricRegistry, registry))
      assert.strictEqual(respawned.count, 1)
      const idle = yield* Metric.value(Metric.withAttributes(NodeWorkerPool.metrics.idle, { pool: "oom" }))
        .pipe(Effect.provideService(Metric.MetricRegistry, registry))
      assert.strictEqual(idle.value, 1)
    }).pipe(Effect.scoped))

  it.live("graceful close: every in-flight and queued job finishes, then the threads end", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 2 })
      const handles = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (i) => NodeWorkerPool.submit(threads, Spin, { millis: 50 }, { id: `job-${i}` })
      )
      const report = yield* NodeWorkerPool.shutdown(threads, { mode: "drain", gracePeriod: "20 seconds" })
      assert.strictEqual(report.jobs.succeeded.length, 8)
      assert.isFalse(report.graceExpired)
      for (const handle of handles) assert.strictEqual(yield* handle.status, "succeeded")
      assert.deepStrictEqual(yield* NodeWorkerPool.threadStats(threads), { busy: 0, idle: 0, respawned: 0 })
      const late = yield* Effect.flip(NodeWorkerPool.submit(threads, Ping, 1))
      assert.strictEqual(late.reason._tag, "PoolClosed")
    }).pipe(Effect.scoped))

  it.live("forced close: running CPU loops are preempted and queued jobs cancelled, at once; the report counts all", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 2 })
      for (let i = 0; i < 6; i++) yield* NodeWorkerPool.submit(threads, Spin, { millis: 10_000 }, { id: `job-${i}` })
      yield* Effect.sleep("50 millis")
      const [millis, report] = yield* elapsed(NodeWorkerPool.shutdown(threads, { mode: "cancel", gracePeriod: 0 }))
      assert.isBelow(millis, 2_000)
      assert.deepStrictEqual([...report.jobs.interrupted].sort(), ["job-0", "job-1"])
      assert.deepStrictEqual([...report.jobs.cancelled].sort(), ["job-2", "job-3", "job-4", "job-5"])
      assert.strictEqual(report.totals.submitted, 6)
      assert.strictEqual((yield* NodeWorkerPool.threadStats(threads)).busy, 0)
    }).pipe(Effect.scoped))

  it.live("a grace period that runs out preempts the stragglers instead of waiting for them", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 2 })
      yield* NodeWorkerPool.submit(threads, Spin, { millis: 50 }, { id: "short" })
      yield* NodeWorkerPool.submit(threads, Spin, { millis: 10_000 }, { id: "long" })
      const [millis, report] = yield* elapsed(NodeWorkerPool.shutdown(threads, { gracePeriod: "300 millis" }))
      assert.isBelow(millis, 2_000)
      assert.isTrue(report.graceExpired)
      assert.deepStrictEqual(report.jobs.succeeded, ["short"])
      assert.deepStrictEqual(report.jobs.interrupted, ["long"])
    }).pipe(Effect.scoped))

  it.live("the worker file's own timers keep firing between requests (the idle wait gives the event loop back)", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })
      // back-to-back requests: each is taken from shared memory, without an event-loop turn in the thread
      for (let i = 0; i < 200; i++) {
        assert.strictEqual(yield* NodeWorkerPool.run(threads, Ping, i), yield* NodeWorkerPool.run(threads, Ping, i))
      }
      const before = yield* NodeWorkerPool.run(threads, Ticks, null)
      yield* Effect.sleep("300 millis")
      const after = yield* NodeWorkerPool.run(threads, Ticks, null)
      assert.isAtLeast(after - before, 5, `the interval fired ${after - before} times in 300 ms`)
    }).pipe(Effect.scoped))

  it.live("a burst of tiny tasks is pipelined: each thread holds several, every result comes back once", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 2, capacity: Infinity })
      const burst = Effect.forEach(
        Array.from({ length: 2_000 }, (_, i) => i),
        (i) => NodeWorkerPool.run(threads, Divide, { a: i, b: 1 }),
        { concurrency: "unbounded" }
      )
      let pipelined = false
      for (let round = 0; round < 5 && !pipelined; round++) {
        const results = yield* burst
        assert.deepStrictEqual(results.map((r) => r.quotient), Array.from({ length: 2_000 }, (_, i) => i))
        // the core pool runs more jobs than there are threads: the extra ones wait in their thread's port
        pipelined = (yield* WorkerPool.stats(threads.pool)).concurrency > threads.threads
      }
      assert.isTrue(pipelined, "tiny tasks are posted behind running ones")
      // tasks of several milliseconds: one per thread again
      yield* Effect.forEach(
        Array.from({ length: 8 }, () => 5),
        (millis) => NodeWorkerPool.run(threads, Spin, { millis }),
        {
          concurrency: 2
        }
      )
      assert.strictEqual((yield* WorkerPool.stats(threads.pool)).concurrency, threads.threads)
      assert.deepStrictEqual(yield* NodeWorkerPool.threadStats(threads), { busy: 0, idle: 2, respawned: 0 })
    }).pipe(Effect.scoped))

  it.live("a job waiting behind another one on its thread is taken back when cancelled: the thread goes on", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })
      const first = yield* NodeWorkerPool.run(threads, Ping, 0)
      // tiny tasks first (of both tasks), so that the next job is posted behind the long one
      yield* Effect.forEach(
        Array.from({ length: 500 }, (_, i) => i),
        (i) =>
          i % 2 === 0
            ? Effect.asVoid(NodeWorkerPool.run(threads, Spin, { millis: 0 }))
            : Effect.asVoid(NodeWorkerPool.run(threads, Divide, { a: i, b: 1 })),
        { concurrency: "unbounded" }
      )
      const long = yield* NodeWorkerPool.submit(threads, Spin, { millis: 300 })
      const behind = yield* NodeWorkerPool.submit(threads, Divide, { a: 1, b: 1 })
      yield* behind.cancel
      assert.strictEqual(yield* behind.status, "interrupted")
      assert.strictEqual((yield* long.await).threadId, first, "the long job ran to its end on the same thread")
      assert.strictEqual((yield* NodeWorkerPool.threadStats(threads)).respawned, 0)
    }).pipe(Effect.scoped))

  it.live("the jobs around one preempted in the middle of a pipelined batch all get their results", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })
      // tiny tasks first (of both tasks), so that the next jobs are posted behind each other
      yield* Effect.forEach(
        Array.from({ length: 500 }, (_, i) => i),
        (i) =>
          i % 2 === 0
            ? Effect.asVoid(NodeWorkerPool.run(threads, Spin, { millis: 0 }))
            : Effect.asVoid(NodeWorkerPool.run(threads, Divide, { a: i, b: 1 })),
        { concurrency: "unbounded" }
      )
      // submitted together, the jobs reach the thread in a few messages; the stuck one is preempted by its timeout,
      // and the jobs before it (answered, their replies possibly still held by the thread) and behind it (moved to
      // the replacement thread) all succeed
      const handles = yield* Effect.forEach(
        Array.from({ length: 41 }, (_, i) => i),
        (i) =>
          i === 5
            ? NodeWorkerPool.submit(threads, Spin, { millis: 10_000 }, { timeout: "200 millis" })
            : NodeWorkerPool.submit(threads, Spin, { millis: 0 }),
        { concurrency: "unbounded" }
      )
      const exits = yield* Effect.forEach(handles, (handle) => Effect.exit(handle.await))
      exits.forEach((exit, i) => assert.strictEqual(Exit.isSuccess(exit), i !== 5, `job ${i}`))
      assert.strictEqual(yield* handles[5].status, "timedOut")
      assert.strictEqual((yield* NodeWorkerPool.threadStats(threads)).respawned, 1)
    }).pipe(Effect.scoped))

  it.live("pipelined requests behind an asynchronous one all get their results", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })
      // short tasks first, so that the next requests are pipelined behind the running one
      yield* Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) => NodeWorkerPool.run(threads, Ping, i), {
        concurrency: "unbounded"
      })
      for (let round = 0; round < 10; round++) {
        // the first request of each burst is asynchronous: the synchronous ones behind it wait in the thread, and
        // more arrive while they run (a thread that ran them out of order stopped getting requests)
        const positions = yield* Effect.forEach(
          Array.from({ length: 200 }, (_, n) => n),
          (n) => NodeWorkerPool.run(threads, Sequence, { sleepMillis: n % 50 === 0 ? 5 : 0 }),
          { concurrency: "unbounded" }
        ).pipe(Effect.timeout("10 seconds"))
        assert.deepStrictEqual(
          [...positions].sort((a, b) => a - b),
          Array.from({ length: 200 }, (_, n) => round * 200 + n),
          `round ${round}: every request ran once`
        )
      }
    }).pipe(Effect.scoped))

  it.live("a short job is not stuck behind a long one while another thread is free", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 2 })
      yield* Effect.forEach(Array.from({ length: 500 }, (_, i) => i), (i) => NodeWorkerPool.run(threads, Ping, i), {
        concurrency: "unbounded"
      })
      const long = yield* NodeWorkerPool.submit(threads, Spin, { millis: 1_000 })
      const other = yield* NodeWorkerPool.submit(threads, Ping, 0)
      const short = yield* NodeWorkerPool.submit(threads, Divide, { a: 4, b: 2 })
      assert.strictEqual((yield* short.await).quotient, 2)
      yield* other.await
      assert.strictEqual(yield* long.status, "running", "the short job did not wait for the long one")
      yield* long.await
    }).pipe(Effect.scoped))

  it.live("a crash sends the jobs waiting behind the crashed one to the replacement thread", () =>
    Effect.gen(function*() {
      const threads = yield* NodeWorkerPool.make({ worker, threads: 1 })
      // tiny tasks first (of both tasks), so that the next jobs are posted behind the crashing one
      yield* Effect.forEach(
        Array.from({ length: 500 }, (_, i) => i),
        (i) =>
          i % 2 === 0
            ? Effect.asVoid(Effect.exit(NodeWorkerPool.run(threads, Crash, "defect")))
            : Effect.asVoid(NodeWorkerPool.run(threads, Divide, { a: i, b: 1 })),
        { concurrency: "unbounded" }
      )
      const crash = yield* NodeWorkerPool.submit(threads, Crash, "exit")
      const behind = yield* Effect.forEach([1, 2, 3], (a) => NodeWorkerPool.submit(threads, Divide, { a, b: 1 }))
      const error = yield* Effect.flip(crash.await)
      assert.instanceOf((error as NodeError.NodeError).reason, NodeError.ThreadCrashed)
      const results = yield* Effect.forEach(behind, (handle) => handle.await)
      assert.deepStrictEqual(results.map((r) => r.quotient), [1, 2, 3])
      assert.strictEqual((yield* NodeWorkerPool.threadStats(threads)).respawned, 1)
    }).pipe(Effect.scoped))

  it.live("an invalid thread count is InvalidOptions naming it", () =>
    Effect.gen(function*() {
      const invalid = yield* Effect.flip(NodeWorkerPool.make({ worker, threads: 0 }))
      assert.strictEqual(invalid._tag, "InvalidOptions")
      assert.strictEqual(invalid._tag === "InvalidOptions" && invalid.option, "threads")
    }).pipe(Effect.scoped))

  it(
    "random mixes of CPU jobs, timeouts, cancels, failures, crashes and shutdowns: one terminal state each, no thread leaked",
    async () => {
      // in a child process, so that a leaked thread shows as a process that does not exit by itself
      const fixture = fileURLToPath(new URL("./fixtures/thread-mix-main.ts", import.meta.url))
      for (const seed of [1, 2]) {
        const mix = run(fixture, [String(seed), "3", "14"])
        // a bound for a leaked thread (the process would never exit), wide enough for a loaded 2-core machine
        const { code } = await exitWithin(mix, 45_000)
        assert.strictEqual(code, 0, mix.lines.join("\n"))
        assert.match(mix.lines.join("\n"), /^ok \{/m)
      }
    },
    100_000
  )
})
