/**
 * The six guarantees of DESIGN.md, checked over random workloads under the TestClock.
 *
 * One scenario: a pool with random concurrency, capacity, backpressure and shutdown options; up to 12 jobs,
 * each submitted at a random moment, running a random time, ending in a random way (success, typed failure,
 * defect, ignoring interruption, a finalizer that hangs, a transient failure), with a random timeout, retries
 * and cancellation; and a shutdown at a random moment. Time moves in 10 ms steps until shutdown has finished,
 * then on until abandoned work has ended, and every guarantee is checked.
 *
 * FIBERPOOL_PROPERTY_RUNS sets the number of scenarios per property (default 200; a long run can do 10000).
 */
import { assert, describe, it } from "@effect/vitest"
import { type Job, PoolError, type Shutdown, WorkerPool } from "@fiberpool/core"
import { Cause, Clock, Effect, Exit, Fiber, Queue, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"
import { between, propertyOptions, Step } from "./utils/properties.ts"

const Outcome = Schema.Literals(["succeed", "fail", "die", "uninterruptible", "hangingFinalizer", "transient"])

const JobSpec = Schema.Struct({
  submitAt: between(0, 10), // × Step ms
  duration: between(0, 20),
  outcome: Outcome,
  timeout: between(0, 30), // 0 = none
  retries: between(0, 2),
  cancelAt: between(0, 40) // 0 = never; after submission
})
type JobSpec = typeof JobSpec.Type

const Scenario = Schema.Struct({
  jobs: Schema.Array(JobSpec).check(Schema.isMinLength(1), Schema.isMaxLength(12)),
  concurrency: between(1, 4),
  capacity: between(0, 5),
  backpressure: Schema.Literals(["suspend", "fail", "dropping", "sliding"]),
  shutdownAt: between(0, 40),
  mode: Schema.Literals(["drain", "cancel"]),
  grace: between(0, 30),
  interruptTimeout: between(0, 10)
})
type Scenario = typeof Scenario.Type

class JobFailure extends Schema.TaggedError<JobFailure>()("JobFailure", { index: Schema.Number }) {}

interface Observed {
  readonly scenario: Scenario
  readonly origin: number
  readonly startsAt: Array<Array<number>>
  /** The order of events: a job's first start, and the beginning of shutdown. */
  readonly startSeq: Array<number | undefined>
  seq: number
  shutdownSeq: number | undefined
  readonly finalizers: Array<number>
  maxRunning: number
  running: number
  readonly submits: Array<Exit.Exit<Job.JobHandle<number, JobFailure>, PoolError.PoolError> | undefined>
  readonly endedAt: Array<number | undefined>
  shutdownStartedAt: number | undefined
  report: Shutdown.Report | undefined
  stats: WorkerPool.Stats | undefined
  deadLetters: Array<Job.DeadLetter>
}

const hangMillis = 2_000

const makeJob = (observed: Observed, index: number, spec: JobSpec) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    observed.startsAt[index].push(now)
    if (observed.startSeq[index] === undefined) observed.startSeq[index] = ++observed.seq
    observed.running++
    observed.maxRunning = Math.max(observed.maxRunning, observed.running)
    const attempt = observed.startsAt[index].length
    const work = Effect.sleep(spec.duration * Step)
    switch (spec.outcome) {
      case "succeed":
        return yield* Effect.as(work, index)
      case "fail":
        return yield* Effect.andThen(work, Effect.fail(new JobFailure({ index })))
      case "die":
        return yield* Effect.andThen(work, Effect.die(`defect in job ${index}`))
      case "uninterruptible":
        return yield* Effect.as(Effect.uninterruptible(work), index)
      case "hangingFinalizer":
        return yield* Effect.as(work, index).pipe(Effect.ensuring(Effect.sleep(hangMillis)))
      case "transient":
        return yield* attempt === 1
          ? Effect.andThen(work, Effect.fail(new JobFailure({ index })))
          : Effect.succeed(index)
    }
  }).pipe(
    Effect.ensuring(Effect.sync(() => {
      observed.running--
      observed.finalizers[index]++
    }))
  )

const runScenario = (scenario: Scenario) =>
  Effect.gen(function*() {
    const origin = yield* Clock.currentTimeMillis
    const n = scenario.jobs.length
    const observed: Observed = {
      scenario,
      origin,
      startsAt: Array.from({ length: n }, () => []),
      startSeq: Array.from({ length: n }, () => undefined),
      seq: 0,
      shutdownSeq: undefined,
      finalizers: Array.from({ length: n }, () => 0),
      maxRunning: 0,
      running: 0,
      submits: Array.from({ length: n }, () => undefined),
      endedAt: Array.from({ length: n }, () => undefined),
      shutdownStartedAt: undefined,
      report: undefined,
      stats: undefined,
      deadLetters: []
    }
    const letters = yield* Queue.unbounded<Job.DeadLetter>()
    const capacity = scenario.backpressure === "sliding" ? Math.max(1, scenario.capacity) : scenario.capacity
    const pool = yield* WorkerPool.make({
      concurrency: scenario.concurrency,
      capacity,
      backpressure: scenario.backpressure,
      deadLetters: letters,
      shutdown: {
        mode: scenario.mode,
        gracePeriod: scenario.grace * Step,
        interruptTimeout: scenario.interruptTimeout * Step
      }
    })
    const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
    for (let index = 0; index < n; index++) {
      const spec = scenario.jobs[index]
      const options: Job.Options<JobFailure> = {
        id: `job-${index}`,
        ...(spec.timeout > 0 ? { timeout: spec.timeout * Step } : {}),
        ...(spec.retries > 0 ? { retry: { schedule: Schedule.spaced(Step), times: spec.retries } } : {})
      }
      const submitter = Effect.gen(function*() {
        yield* Effect.sleep(spec.submitAt * Step)
        const exit = yield* Effect.exit(WorkerPool.submit(pool, makeJob(observed, index, spec), options))
        observed.submits[index] = exit
        if (Exit.isFailure(exit)) return
        const handle = exit.value
        yield* Effect.forkDetach(
          Effect.flatMap(handle.exit, () =>
            Effect.map(Clock.currentTimeMillis, (now) => {
              observed.endedAt[index] = now
            })),
          { startImmediately: true }
        )
        if (spec.cancelAt > 0) {
          yield* Effect.sleep(spec.cancelAt * Step)
          yield* handle.cancel
        }
      })
      fibers.push(yield* Effect.forkChild(submitter, { startImmediately: true }))
    }
    const shutdown = yield* Effect.forkChild(
      Effect.gen(function*() {
        yield* Effect.sleep(scenario.shutdownAt * Step)
        observed.shutdownStartedAt = yield* Clock.currentTimeMillis
        observed.shutdownSeq = ++observed.seq
        observed.report = yield* WorkerPool.shutdown(pool)
      }),
      { startImmediately: true }
    )
    let steps = 0
    while (shutdown.pollUnsafe() === undefined) {
      if (++steps > 2_000) return yield* Effect.die("shutdown did not finish")
      yield* TestClock.adjust(Step)
    }
    // let abandoned work and hanging finalizers end, so that every finalizer can be counted
    for (let t = 0; t < hangMillis + 60 * Step; t += 10 * Step) yield* TestClock.adjust(10 * Step)
    yield* Fiber.interruptAll(fibers)
    observed.stats = yield* WorkerPool.stats(pool)
    observed.deadLetters.push(...(yield* Queue.clear(letters)))
    return observed
  }).pipe(Effect.scoped)

const terminalStatuses = new Set<Job.Status>([
  "succeeded",
  "failed",
  "timedOut",
  "interrupted",
  "cancelled",
  "abandoned"
])

describe("guarantees (property tests)", () => {
  it.effect.prop(
    "1. every accepted job reaches exactly one terminal state, its handle observes it, the counters agree",
    [Scenario],
    ([scenario]) =>
      Effect.gen(function*() {
        const observed = yield* runScenario(scenario)
        const stats = observed.stats!
        let accepts = 0
        let rejects = 0
        for (let index = 0; index < scenario.jobs.length; index++) {
          const exit = observed.submits[index]
          if (exit === undefined) continue // the submitter never ran (cannot happen: shutdown waits)
          if (Exit.isFailure(exit)) {
            rejects++
            assert.isTrue(Cause.findError(exit.cause)._tag === "Success", "a rejection is a typed PoolError")
            continue
          }
          const handle = exit.value
          const status = yield* handle.status
          if (status === "dropped") {
            rejects++
            assert.strictEqual(scenario.backpressure, "dropping")
            assert.strictEqual(observed.startsAt[index].length, 0)
            continue
          }
          accepts++
          assert.isTrue(terminalStatuses.has(status), `job ${index} ended ${status}`)
          const result = yield* handle.exit
          const spec = scenario.jobs[index]
          switch (status) {
            case "succeeded":
              assert.deepStrictEqual(result, Exit.succeed(index))
              break
            case "failed":
              assert.isTrue(Exit.isFailure(result))
              assert.include(["fail", "die", "transient"], spec.outcome)
              break
            case "cancelled":
              assert.strictEqual(observed.startsAt[index].length, 0, "a cancelled job never started")
              break
            case "abandoned":
              assert.include(["uninterruptible", "hangingFinalizer"], spec.outcome)
              break
            case "timedOut": {
              assert.isTrue(spec.timeout > 0)
              const started = observed.startsAt[index][0]
              assert.isAtLeast(
                observed.endedAt[index]! - started,
                spec.timeout * Step,
                `timeout counts from start: job ${index} of ${JSON.stringify(scenario)}, ${
                  JSON.stringify(observed.startsAt)
                }`
              )
              break
            }
            case "interrupted":
              assert.isTrue(spec.cancelAt > 0 || observed.report!.graceExpired)
              break
          }
          if (status !== "cancelled") assert.isAtLeast(observed.startsAt[index].length, 1)
          if (Exit.isFailure(result) && status !== "failed") {
            const error = Cause.findError(result.cause)
            assert.isTrue(error._tag === "Success" && error.success instanceof PoolError.JobError)
          }
        }
        assert.strictEqual(stats.submitted, accepts)
        assert.strictEqual(stats.rejected, rejects)
        assert.strictEqual(
          stats.succeeded + stats.failed + stats.timedOut + stats.interrupted + stats.cancelled + stats.abandoned,
          stats.submitted
        )
        assert.strictEqual(stats.queued + stats.running + stats.waiting, 0)
        // every job that ended failed, timed out or abandoned reached the dead-letter sink exactly once
        const lettered = observed.deadLetters.map((l) => l.jobId).sort()
        const expected: Array<string> = []
        for (
          const { jobId, status } of yield* Effect.forEach(
            observed.submits.flatMap((exit) => (exit !== undefined && Exit.isSuccess(exit) ? [exit.value] : [])),
            (handle) => Effect.map(handle.status, (status) => ({ jobId: handle.id, status }))
          )
        ) if (status === "failed" || status === "timedOut" || status === "abandoned") expected.push(jobId)
        assert.deepStrictEqual(lettered, expected.sort())
        // the report tells the fate of every job live at shutdown, as its handle does
        const report = observed.report!
        for (const [bucket, ids] of Object.entries(report.jobs)) {
          for (const id of ids) {
            const index = Number(id.slice("job-".length))
            const exit = observed.submits[index]!
            assert.isTrue(Exit.isSuccess(exit))
            if (Exit.isSuccess(exit)) assert.strictEqual(yield* exit.value.status, bucket)
          }
        }
      }),
    propertyOptions
  )

  it.effect.prop(
    "2. at most `concurrency` jobs run at once and at most `capacity` wait",
    [Scenario],
    ([scenario]) =>
      Effect.gen(function*() {
        const observed = yield* runScenario(scenario)
        assert.isAtMost(observed.maxRunning, scenario.concurrency)
        assert.isAtMost(observed.stats!.running, scenario.concurrency)
      }),
    propertyOptions
  )

  it.effect.prop(
    "3. a job's finalizers run exactly once per attempt, whatever ends it",
    [Scenario],
    ([scenario]) =>
      Effect.gen(function*() {
        const observed = yield* runScenario(scenario)
        for (let index = 0; index < scenario.jobs.length; index++) {
          assert.strictEqual(observed.finalizers[index], observed.startsAt[index].length, `job ${index}`)
        }
        assert.strictEqual(observed.running, 0)
      }),
    propertyOptions
  )

  it.effect.prop(
    "4. shutdown finishes within the grace period plus the interrupt bound, even when jobs ignore interruption",
    [Scenario],
    ([scenario]) =>
      Effect.gen(function*() {
        const observed = yield* runScenario(scenario)
        const report = observed.report!
        assert.strictEqual(report.startedAt, observed.shutdownStartedAt)
        assert.isAtMost(report.durationMillis, (scenario.grace + scenario.interruptTimeout) * Step)
        if (!report.graceExpired) {
          assert.isAtMost(report.durationMillis, scenario.grace * Step)
          assert.deepStrictEqual(report.jobs.abandoned, [])
        }
      }),
    propertyOptions
  )

  it.effect.prop(
    "5. no job starts after shutdown began, unless draining (and then only within the grace period)",
    [Scenario],
    ([scenario]) =>
      Effect.gen(function*() {
        const observed = yield* runScenario(scenario)
        const began = observed.shutdownStartedAt!
        for (let index = 0; index < scenario.jobs.length; index++) {
          const seq = observed.startSeq[index]
          if (seq === undefined || seq < observed.shutdownSeq!) continue
          assert.strictEqual(scenario.mode, "drain", `job ${index} started after shutdown began`)
          assert.isAtMost(observed.startsAt[index][0], began + scenario.grace * Step)
        }
      }),
    propertyOptions
  )

  it.effect.prop(
    "6. failures, defects and timeouts never kill a worker or the pool",
    [Schema.Array(JobSpec).check(Schema.isMinLength(1), Schema.isMaxLength(12)), between(1, 4)],
    ([jobs, concurrency]) =>
      Effect.gen(function*() {
        const observed: Observed = {
          scenario: { jobs, concurrency } as Scenario,
          origin: 0,
          startsAt: jobs.map(() => []),
          startSeq: jobs.map(() => undefined),
          seq: 0,
          shutdownSeq: undefined,
          finalizers: jobs.map(() => 0),
          maxRunning: 0,
          running: 0,
          submits: [],
          endedAt: [],
          shutdownStartedAt: undefined,
          report: undefined,
          stats: undefined,
          deadLetters: []
        }
        const pool = yield* WorkerPool.make({ concurrency, capacity: Infinity })
        const handles = yield* Effect.forEach(jobs, (spec, index) =>
          WorkerPool.submit(pool, makeJob(observed, index, spec), {
            ...(spec.timeout > 0 ? { timeout: spec.timeout * Step } : {}),
            ...(spec.retries > 0 ? { retry: { schedule: Schedule.spaced(Step), times: spec.retries } } : {})
          }))
        const idle = yield* Effect.forkChild(WorkerPool.awaitIdle(pool), { startImmediately: true })
        let steps = 0
        while (idle.pollUnsafe() === undefined) {
          if (++steps > 10_000) {
            return yield* Effect.die("the pool never became idle")
          }
          yield* TestClock.adjust(Step)
        }
        for (const handle of handles) {
          assert.isTrue(terminalStatuses.has(yield* handle.status))
        }
        // every worker is still there: `concurrency` probes run side by side and succeed
        const probes = yield* Effect.forEach(
          Array.from({ length: concurrency }, (_, i) =>
            i),
          (i) =>
            WorkerPool.submit(pool, Effect.as(Effect.sleep(Step), i))
        )
        assert.strictEqual((yield* WorkerPool.stats(pool)).running, concurrency)
        yield* TestClock.adjust(Step)
        assert.deepStrictEqual(yield* Effect.forEach(probes, (p) => p.await), probes.map((_, i) => i))
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual(stats.succeeded + stats.failed + stats.timedOut, jobs.length + concurrency)
      }).pipe(Effect.scoped),
    propertyOptions
  )
})
