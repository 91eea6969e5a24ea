/**
 * A job's waiters are resumed inside the pool operation that ended the job (Effect's `callback` resumes
 * synchronously), so they can submit, cancel, pause or shut down while the pool is mid-operation. This property
 * drives exactly that: every job has a waiter that reacts to its end at once, with random features on.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Job, WorkerPool } from "@fiberpool/core"
import { Effect, Exit, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import { between, propertyOptions, Step } from "./utils/properties.ts"

const Reaction = Schema.Literals(["none", "submit", "cancelNext", "pause", "resume", "resize", "shutdownCancel"])

const Spec = Schema.Struct({
  duration: between(0, 5),
  fail: Schema.Boolean,
  priority: between(0, 2),
  key: between(0, 3), // 0 = no key
  reaction: Reaction
})

const Scenario = Schema.Struct({
  jobs: Schema.Array(Spec).check(Schema.isMinLength(1), Schema.isMaxLength(15)),
  concurrency: between(1, 3),
  capacity: between(1, 4),
  backpressure: Schema.Literals(["suspend", "fail", "dropping", "sliding"]),
  keyConcurrency: between(1, 2),
  rateLimited: Schema.Boolean
})

describe("reentrancy (property)", () => {
  it.effect.prop(
    "waiters acting on the pool when their job ends never break a guarantee",
    [Scenario],
    ([scenario]) =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({
          concurrency: scenario.concurrency,
          capacity: scenario.capacity,
          backpressure: scenario.backpressure,
          keyConcurrency: scenario.keyConcurrency,
          ...(scenario.rateLimited ? { rateLimit: { limit: 2, interval: 3 * Step } } : {}),
          shutdown: { gracePeriod: 20 * Step, interruptTimeout: 5 * Step }
        })
        const handles: Array<Job.JobHandle<number, string>> = []
        let maxQueued = 0
        // every job, as it starts (inside the pool operation that starts it), checks the concurrency bound
        // against the pool's concurrency of that moment: `resize` may lower it later, interrupting nothing
        const overruns: Array<string> = []
        const atStart = Effect.flatMap(WorkerPool.stats(pool), (stats) =>
          Effect.sync(() => {
            if (stats.running > stats.concurrency) overruns.push(`${stats.running} > ${stats.concurrency}`)
          }))
        const job = (index: number, spec: typeof Spec.Type) =>
          Effect.andThen(
            atStart,
            Effect.andThen(Effect.sleep(spec.duration * Step), spec.fail ? Effect.fail("no") : Effect.succeed(index))
          )
        const options = (spec: typeof Spec.Type) => ({
          priority: spec.priority,
          ...(spec.key > 0 ? { key: `k${spec.key}` } : {})
        })
        const react = (spec: typeof Spec.Type, index: number): Effect.Effect<void> => {
          switch (spec.reaction) {
            case "none":
              return Effect.void
            case "submit":
              return Effect.ignore(
                Effect.flatMap(
                  WorkerPool.submit(pool, job(1000 + index, { ...spec, reaction: "none" }), options(spec)),
                  (handle) => Effect.sync(() => handles.push(handle))
                )
              )
            case "cancelNext":
              return handles[index + 1] === undefined ? Effect.void : handles[index + 1].cancel
            case "pause":
              return WorkerPool.pause(pool)
            case "resume":
              return WorkerPool.resume(pool)
            case "resize":
              return Effect.ignore(WorkerPool.resize(pool, 1 + (index % 3)))
            case "shutdownCancel":
              return Effect.asVoid(Effect.ignore(WorkerPool.shutdown(pool, { mode: "cancel" })))
          }
        }
        // every job gets a waiter that reacts as soon as the job ends (inside the pool operation that ended it)
        const submitter = Effect.forEach(scenario.jobs, (spec, index) =>
          Effect.gen(function*() {
            const submitted = yield* Effect.exit(WorkerPool.submit(pool, job(index, spec), options(spec)))
            if (Exit.isFailure(submitted)) return
            handles.push(submitted.value)
            yield* Effect.forkDetach(Effect.andThen(submitted.value.exit, react(spec, index)), {
              startImmediately: true
            })
          }), { discard: true })
        const producing = yield* Effect.forkChild(submitter, { startImmediately: true })
        for (let step = 0; step < 200; step++) {
          const stats = yield* WorkerPool.stats(pool)
          maxQueued = Math.max(maxQueued, stats.queued)
          yield* TestClock.adjust(Step)
        }
        // whatever the reactions did, resume and end the pool
        yield* WorkerPool.resume(pool)
        const ending = yield* Effect.forkChild(WorkerPool.shutdown(pool), { startImmediately: true })
        for (let step = 0; step < 200 && ending.pollUnsafe() === undefined; step++) yield* TestClock.adjust(Step)
        assert.isDefined(ending.pollUnsafe(), "shutdown finished")
        yield* Fiber.interrupt(producing)
        const stats = yield* WorkerPool.stats(pool)
        assert.isAtMost(maxQueued, scenario.capacity, "queue within capacity")
        assert.deepStrictEqual(overruns, [], "a job started while running >= concurrency")
        assert.strictEqual(stats.queued + stats.running + stats.waiting, 0)
        assert.strictEqual(
          stats.succeeded + stats.failed + stats.timedOut + stats.interrupted + stats.cancelled + stats.abandoned,
          stats.submitted,
          "the counters agree"
        )
        let terminal = 0
        for (const handle of handles) {
          const status = yield* handle.status
          assert.notInclude(["queued", "running"], status, `${handle.id} ended ${status}`)
          if (status !== "dropped") terminal++
        }
        assert.strictEqual(terminal, stats.submitted, "every accepted job has a terminal handle")
      }).pipe(Effect.scoped),
    propertyOptions
  )
})
