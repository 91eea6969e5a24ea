/**
 * Plain `Effect.forEach(items, job, { concurrency })`: no queue and no handles, the Effect baseline.
 * Shutdown: graceful joins the fiber running the `forEach`; forced interrupts it.
 */
import { Effect, Fiber } from "effect"
import type { Peer, ThroughputParams } from "../lib.ts"
import { awaited, now, sleepingJob } from "../lib.ts"

const items = (n: number) => Array.from({ length: n }, (_, i) => i)

const runAll = (
  { concurrency, mode, n }: ThroughputParams,
  job: (i: number) => Effect.Effect<number>
): Promise<number | undefined> =>
  mode === "fire"
    ? Effect.runPromise(Effect.as(Effect.forEach(items(n), job, { concurrency, discard: true }), undefined))
    : Effect.runPromise(
      Effect.map(Effect.forEach(items(n), job, { concurrency }), (results) => results.reduce((a, b) => a + b, 0))
    )

export const peer: Peer = {
  throughput: (params, tracker) => runAll(params, (i) => Effect.sync(() => tracker.hit(i))),

  promise: (params, tracker) => runAll(params, (i) => Effect.promise(() => awaited(tracker, i))),

  io: ({ concurrency, n, sleepMs }, tracker) =>
    Effect.runPromise(
      Effect.map(
        Effect.forEach(items(n), (i) => Effect.map(Effect.sleep(sleepMs), () => tracker.hit(i)), { concurrency }),
        (results) => results.reduce((a, b) => a + b, 0)
      )
    ),

  shutdown: ({ jobMs, jobs, mode }, tracker) =>
    Effect.runPromise(Effect.gen(function*() {
      const startedAt = now()
      const job = (i: number) => sleepingJob(tracker, i, jobMs)
      const fiber = yield* Effect.forkChild(Effect.forEach(items(jobs), job, { concurrency: jobs }), {
        startImmediately: true
      })
      if (mode === "forced") yield* Effect.sleep(20)
      if (tracker.started !== jobs) throw new Error(`only ${tracker.started} of ${jobs} jobs started`)
      const shutdownAt = now()
      let completed = 0
      if (mode === "graceful") completed = (yield* Fiber.join(fiber)).length
      else yield* Fiber.interrupt(fiber)
      const doneAt = now()
      return { shutdownMs: doneAt - shutdownAt, totalMs: doneAt - startedAt, completed, finalized: tracker.finalized }
    }))
}
