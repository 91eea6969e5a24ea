/**
 * fiberpool: `WorkerPool.make` with a bounded queue of 100 (backpressure "suspend"), jobs submitted with
 * `WorkerPool.submit` (fire-and-forget: handles dropped, then `WorkerPool.awaitIdle`; submit-and-await:
 * handles kept and awaited). `makeThroughput` is shared with `fiberpool-unbounded` (`capacity: Infinity`);
 * `scheduling` is scenario 5: the same loop with the scheduling options of a variant.
 */
import { type Job, WorkerPool } from "@fiberpool/core"
import { Deferred, Effect, Queue, Stream } from "effect"
import type { Peer, SchedulingVariant, ThroughputParams, Tracker } from "../lib.ts"
import { awaited, gate, now, prng, sleepingJob } from "../lib.ts"

/** The same submit loop for every job shape and pool configuration; `jobOptions` gives job `i` its options. */
const submitAll = (
  pool: WorkerPool.WorkerPool,
  { mode, n }: ThroughputParams,
  job: (i: number) => Effect.Effect<number>,
  jobOptions?: (i: number) => Job.Options
) =>
  Effect.gen(function*() {
    if (mode === "fire") {
      for (let i = 0; i < n; i++) yield* WorkerPool.submit(pool, job(i), jobOptions?.(i))
      yield* WorkerPool.awaitIdle(pool)
      return undefined
    }
    const handles = new Array<Job.JobHandle<number>>(n)
    for (let i = 0; i < n; i++) handles[i] = yield* WorkerPool.submit(pool, job(i), jobOptions?.(i))
    let sum = 0
    for (let i = 0; i < n; i++) sum += yield* handles[i]!.await
    return sum
  })

const syncJob = (tracker: Tracker) => (i: number) => Effect.sync(() => tracker.hit(i))
const promiseJob = (tracker: Tracker) => (i: number) => Effect.promise(() => awaited(tracker, i))

/** `throughput` and `promise` on a pool of the given capacity. */
export const makeThroughput = (capacity: number): Pick<Peer, "throughput" | "promise"> => ({
  throughput: (params, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: params.concurrency, capacity })
      return yield* submitAll(pool, params, syncJob(tracker))
    }))),
  promise: (params, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: params.concurrency, capacity })
      return yield* submitAll(pool, params, promiseJob(tracker))
    })))
})

const keys = Array.from({ length: 16 }, (_, k) => `tenant-${k}`)

/** Pool options and per-job options of each scenario-5 variant. */
interface Setup {
  readonly options: Omit<WorkerPool.Options, "concurrency">
  readonly jobOptions: ((i: number) => Job.Options) | undefined
}

const schedulingSetup = (variant: SchedulingVariant, n: number): Effect.Effect<Setup> => {
  switch (variant) {
    case "unused":
      return Effect.map(Queue.unbounded<Job.DeadLetter>(), (deadLetters) => ({
        options: { aging: "1 second", keyConcurrency: 4, rateLimit: { limit: 1e9, interval: "1 second" }, deadLetters },
        jobOptions: undefined
      }))
    case "priority": {
      const random = prng(42)
      const priorities = Uint8Array.from({ length: n }, () => Math.floor(random() * 10))
      return Effect.succeed({ options: {}, jobOptions: (i) => ({ priority: priorities[i]! }) })
    }
    case "keys":
      return Effect.succeed({ options: { keyConcurrency: 2 }, jobOptions: (i) => ({ key: keys[i & 15]! }) })
    case "rate":
      return Effect.succeed({ options: { rateLimit: { limit: 1e9, interval: "1 second" } }, jobOptions: undefined })
    default:
      return Effect.succeed({ options: {}, jobOptions: undefined })
  }
}

export const peer: Peer = {
  ...makeThroughput(100),

  scheduling: (params, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const { jobOptions, options } = yield* schedulingSetup(params.variant, params.n)
      const pool = yield* WorkerPool.make({ concurrency: params.concurrency, capacity: 100, ...options })
      if (params.variant !== "events") return yield* submitAll(pool, params, syncJob(tracker), jobOptions)
      // a subscriber that reads every event; the measurement ends once it has read all of them
      // (Submitted, Started, Succeeded per job), so its work is not left outside the timed region
      const events = yield* WorkerPool.subscribe(pool)
      const expected = params.n * 3
      const allRead = yield* Deferred.make<void>()
      let seen = 0
      yield* Effect.forkScoped(
        Stream.runForEachArray(events, (batch) => {
          seen += batch.length
          return seen >= expected ? Deferred.succeed(allRead, undefined) : Effect.void
        }),
        { startImmediately: true }
      )
      const sum = yield* submitAll(pool, params, syncJob(tracker))
      yield* Deferred.await(allRead)
      if (seen !== expected) throw new Error(`the subscriber read ${seen} events, expected ${expected}`)
      return sum
    }))),

  io: ({ concurrency, n, sleepMs }, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency, capacity: 100 })
      const handles = new Array<Job.JobHandle<number>>(n)
      for (let i = 0; i < n; i++) {
        handles[i] = yield* WorkerPool.submit(pool, Effect.map(Effect.sleep(sleepMs), () => tracker.hit(i)))
      }
      let sum = 0
      for (let i = 0; i < n; i++) sum += yield* handles[i]!.await
      return sum
    }))),

  memory: ({ handles, n }, tracker, measure) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: 1, capacity: Number.POSITIVE_INFINITY })
      const blocker = gate()
      yield* WorkerPool.submit(pool, Effect.promise(() => blocker.promise))
      const kept: Array<Job.JobHandle<number>> = []
      for (let i = 0; i < n; i++) {
        const handle = yield* WorkerPool.submit(pool, Effect.sync(() => tracker.hit(i)))
        if (handles) kept.push(handle)
      }
      measure()
      blocker.open()
      yield* WorkerPool.awaitIdle(pool)
      if (handles) {
        let sum = 0
        for (const handle of kept) sum += yield* handle.await
        if (sum !== tracker.expectedSum) throw new Error(`sum of results ${sum} !== ${tracker.expectedSum}`)
      }
    }))),

  shutdown: ({ jobMs, jobs, mode }, tracker) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ concurrency: jobs, capacity: 100 })
      const startedAt = now()
      for (let i = 0; i < jobs; i++) {
        yield* WorkerPool.submit(pool, sleepingJob(tracker, i, jobMs))
      }
      if (mode === "forced") yield* Effect.sleep(20)
      if (tracker.started !== jobs) throw new Error(`only ${tracker.started} of ${jobs} jobs started`)
      const shutdownAt = now()
      const report = yield* WorkerPool.shutdown(
        pool,
        mode === "graceful" ? { mode: "drain" } : { mode: "cancel", gracePeriod: 0 }
      )
      const doneAt = now()
      const expected = mode === "graceful" ? report.jobs.succeeded.length : report.jobs.interrupted.length
      if (expected !== jobs) throw new Error(`shutdown report: ${JSON.stringify(report.jobs)}`)
      return {
        shutdownMs: doneAt - shutdownAt,
        totalMs: doneAt - startedAt,
        completed: report.jobs.succeeded.length,
        finalized: tracker.finalized
      }
    })))
}
