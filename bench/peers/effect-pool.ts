/**
 * A hand-rolled Effect pool: a bounded `Queue` of 100 and `concurrency` worker fibers looping with
 * `Effect.forever(..., { disableYield: true })`. Submit-and-await gives every job a `Deferred`;
 * fire-and-forget counts completions and opens a `Deferred` after the last one. In scenario 5 it is the
 * baseline (`plain` only). Shutdown: graceful ends the queue and waits for the workers; forced interrupts them.
 */
import { Deferred, Effect, Fiber, Queue } from "effect"
import type { Cause } from "effect"
import type { Peer, ThroughputParams } from "../lib.ts"
import { awaited, completedJobs, now, sleepingJob } from "../lib.ts"

interface Item {
  readonly job: Effect.Effect<number>
  readonly done: Deferred.Deferred<number> | undefined
}

const makePool = (concurrency: number, n: number) =>
  Effect.gen(function*() {
    const queue = yield* Queue.bounded<Item>(100)
    const idle = yield* Deferred.make<void>()
    let completed = 0
    const complete = Effect.suspend(() => ++completed === n ? Deferred.succeed(idle, undefined) : Effect.void)
    const worker = Effect.forever(
      Effect.flatMap(Queue.take(queue), ({ done, job }) =>
        Effect.flatMap(job, (value) =>
          done === undefined ? complete : Effect.andThen(Deferred.succeed(done, value), complete))),
      { disableYield: true }
    )
    for (let k = 0; k < concurrency; k++) {
      yield* Effect.forkScoped(worker)
    }
    return { queue, idle }
  })

const submitAll = (
  { concurrency, mode, n }: ThroughputParams,
  job: (i: number) => Effect.Effect<number>
): Promise<number | undefined> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const { idle, queue } = yield* makePool(concurrency, n)
    if (mode === "fire") {
      for (let i = 0; i < n; i++) {
        yield* Queue.offer(queue, { job: job(i), done: undefined })
      }
      yield* Deferred.await(idle)
      return undefined
    }
    const results = new Array<Deferred.Deferred<number>>(n)
    for (let i = 0; i < n; i++) {
      const done = Deferred.makeUnsafe<number>()
      results[i] = done
      yield* Queue.offer(queue, { job: job(i), done })
    }
    let sum = 0
    for (let i = 0; i < n; i++) sum += yield* Deferred.await(results[i])
    return sum
  })))

export const peer: Peer = {
  throughput: (params, tracker) => submitAll(params, (i) => Effect.sync(() => tracker.hit(i))),

  promise: (params, tracker) => submitAll(params, (i) => Effect.promise(() => awaited(tracker, i))),

  // scenario 5's baseline: the hand-rolled pool has no scheduling options, so it only runs "plain"
  scheduling: (params, tracker) =>
    params.variant === "plain"
      ? submitAll(params, (i) => Effect.sync(() => tracker.hit(i)))
      : Promise.reject(new Error(`effect-pool has no ${params.variant} variant`)),

  io: ({ concurrency, n, sleepMs }, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const { queue } = yield* makePool(concurrency, n)
      const results = new Array<Deferred.Deferred<number>>(n)
      for (let i = 0; i < n; i++) {
        const done = Deferred.makeUnsafe<number>()
        results[i] = done
        yield* Queue.offer(queue, { job: Effect.map(Effect.sleep(sleepMs), () => tracker.hit(i)), done })
      }
      let sum = 0
      for (let i = 0; i < n; i++) sum += yield* Deferred.await(results[i])
      return sum
    }))),

  shutdown: ({ jobMs, jobs, mode }, tracker) =>
    Effect.runPromise(Effect.gen(function*() {
      const queue = yield* Queue.bounded<Effect.Effect<void>, Cause.Done>(100)
      const worker = Effect.forever(Effect.flatMap(Queue.take(queue), (job) => job), { disableYield: true })
      const workers: Array<Fiber.Fiber<unknown, unknown>> = []
      for (let k = 0; k < jobs; k++) workers.push(yield* Effect.forkChild(worker, { startImmediately: true }))
      const startedAt = now()
      for (let i = 0; i < jobs; i++) yield* Queue.offer(queue, Effect.asVoid(sleepingJob(tracker, i, jobMs)))
      // the queue hands jobs to waiting takers on the scheduler's next turn
      if (mode === "forced") yield* Effect.sleep(20)
      for (let turns = 0; tracker.started < jobs && turns < 100; turns++) yield* Effect.yieldNow
      if (tracker.started !== jobs) throw new Error(`only ${tracker.started} of ${jobs} jobs started`)
      const shutdownAt = now()
      if (mode === "graceful") {
        yield* Queue.end(queue)
        yield* Fiber.awaitAll(workers)
      } else {
        yield* Fiber.interruptAll(workers)
      }
      const doneAt = now()
      return {
        shutdownMs: doneAt - shutdownAt,
        totalMs: doneAt - startedAt,
        completed: completedJobs(tracker),
        finalized: tracker.finalized
      }
    }))
}
