import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
import { Context, Data, Effect, Exit, Fiber, Layer, Schedule, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"

class Fail extends Data.TaggedError("Fail")<{ readonly attempt: number }> {}

const Op = Schema.Union([
  Schema.Struct({
    _tag: Schema.tag("enqueue"),
    id: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 11 })),
    failures: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))
  }),
  Schema.Struct({
    _tag: Schema.tag("start"),
    concurrency: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3 }))
  }),
  Schema.Struct({ _tag: Schema.tag("shutdown"), grace: Schema.Literals([0, 5, 20]) }),
  Schema.Struct({ _tag: Schema.tag("tick") })
])

const MAX_ATTEMPTS = 3

describe("DurableWorker on the memory store (property)", () => {
  it.effect.prop(
    "random interleavings of enqueue, complete, fail and shutdown never lose a job",
    [Schema.Array(Op).check(Schema.isMaxLength(40))],
    ([ops]) =>
      Effect.gen(function*() {
        const plan = new Map<string, number>() // id -> failures before success (first enqueue wins)
        const successes = new Map<string, number>()
        const Job = JobType.make({
          name: "job",
          payload: Schema.Struct({ failures: Schema.Int }),
          result: Schema.Int,
          retry: Schedule.spaced(0),
          maxAttempts: MAX_ATTEMPTS,
          handler: ({ failures }, { attempt, id }) =>
            Effect.andThen(
              Effect.sleep("5 millis"),
              Effect.suspend(() => {
                if (attempt <= failures) return Effect.fail(new Fail({ attempt }))
                successes.set(id, (successes.get(id) ?? 0) + 1)
                return Effect.succeed(attempt)
              })
            )
        })
        const queue = Context.get(yield* Layer.build(DurableQueue.layerMemory()), DurableQueue.Service)
        const provide = Effect.provideService(DurableQueue.Service, queue)
        const workers: Array<{ scope: Scope.Closeable; worker: DurableWorker.DurableWorker }> = []
        const start = (concurrency: number) =>
          Effect.gen(function*() {
            const scope = yield* Scope.make()
            const worker = yield* DurableWorker.make({
              types: [Job],
              concurrency,
              shutdown: { gracePeriod: 0, interruptTimeout: "1 second" }
            }).pipe(provide, Scope.provide(scope), Effect.orDie)
            workers.push({ scope, worker })
          })

        for (const op of ops) {
          switch (op._tag) {
            case "enqueue": {
              const id = `job-${op.id}`
              if (!plan.has(id)) plan.set(id, op.failures)
              yield* DurableQueue.enqueue(Job, { failures: op.failures }, { id }).pipe(provide)
              break
            }
            case "start":
              if (workers.length < 3) yield* start(op.concurrency)
              break
            case "shutdown": {
              const oldest = workers.shift()
              if (oldest === undefined) break
              const ending = yield* Effect.forkChild(oldest.worker.shutdown, { startImmediately: true })
              yield* TestClock.adjust(`${op.grace} millis`)
              yield* Fiber.await(ending)
              yield* Scope.close(oldest.scope, Exit.void)
              break
            }
            case "tick":
              yield* TestClock.adjust("3 millis")
              break
          }
        }

        // then let a worker finish everything
        yield* start(4)
        const settled = (id: string) => Effect.map(queue.outcomes.get(queue.name, id), (row) => row !== undefined)
        for (let i = 0; i < 200; i++) {
          const all = yield* Effect.forEach([...plan.keys()], settled)
          if (all.every(Boolean)) break
          yield* TestClock.adjust("5 millis")
        }
        for (const [id, failures] of plan) {
          const row = yield* queue.outcomes.get(queue.name, id)
          assert.isDefined(row, `${id} was lost`)
          if (failures < MAX_ATTEMPTS) {
            assert.strictEqual(row!.status, "succeeded", id)
            // interrupted attempts are not counted: the success is exactly attempt failures + 1
            assert.strictEqual(row!.result, String(failures + 1), id)
            assert.isAtLeast(successes.get(id) ?? 0, 1)
          } else {
            assert.strictEqual(row!.status, "dead", id)
            assert.strictEqual(row!.attempts, MAX_ATTEMPTS, id)
            assert.isUndefined(successes.get(id))
          }
        }
        for (const { scope } of workers) yield* Scope.close(scope, Exit.void)
      }),
    { timeout: 60_000, arbitrary: { runs: 100 } }
  )
})
