/**
 * The pool's Effect `Metric`s.
 *
 * Every pool registers these in the `Metric.MetricRegistry` of the context it was made in, with the
 * attribute `pool` set to its name. Counters and gauges read the pool's own counters when the registry is
 * read (so they always agree with `WorkerPool.stats`, and cost nothing per job); the two histograms are
 * updated as jobs start and end, with the pool's `durationBoundaries`.
 *
 * Live pools with the same name in one registry share their series: a scrape shows their sum (two pools of
 * the default name that ran 2 and 1 jobs read `succeeded_total{pool="fiberpool"} 3`). A pool that closes
 * keeps its counts in the series while another pool of its name lives, so no counter goes back; when the
 * last pool of a name closes, its series are removed from the registry. Pools sharing a name must share
 * their histogram boundaries (`make` fails with `InvalidOptions` otherwise).
 *
 * | name | type | meaning |
 * | --- | --- | --- |
 * | `fiberpool_jobs_submitted_total` | counter | accepted jobs |
 * | `fiberpool_jobs_rejected_total{reason}` | counter | submissions not accepted: `closed`, `queue_full`, `duplicate_id`, `invalid_options`, `dropped` |
 * | `fiberpool_jobs_succeeded_total` | counter | |
 * | `fiberpool_jobs_failed_total` | counter | typed failure or defect, after retries |
 * | `fiberpool_jobs_timed_out_total` | counter | |
 * | `fiberpool_jobs_cancelled_total` | counter | accepted, never started |
 * | `fiberpool_jobs_interrupted_total` | counter | interrupted while running |
 * | `fiberpool_jobs_abandoned_total` | counter | ignored interruption at shutdown |
 * | `fiberpool_job_retries_total` | counter | attempts after the first |
 * | `fiberpool_dead_letters_dropped_total` | counter | dead letters a full bounded queue refused |
 * | `fiberpool_jobs_queued` | gauge | waiting to start |
 * | `fiberpool_jobs_running` | gauge | running now |
 * | `fiberpool_submitters_waiting` | gauge | submitters waiting for room (not accepted yet) |
 * | `fiberpool_concurrency` | gauge | jobs that may run at once (follows `resize`) |
 * | `fiberpool_capacity` | gauge | jobs that may wait (`+Inf` unbounded) |
 * | `fiberpool_job_wait_seconds` | histogram | submission to first start |
 * | `fiberpool_job_run_seconds` | histogram | first start to end |
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/**
 * Bucket boundaries of the duration histograms, in seconds: 1 ms to about 100 s.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.durationBoundaries[0]) // => 0.001
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const durationBoundaries: ReadonlyArray<number> = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  25,
  50,
  100
]

/**
 * Accepted jobs.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Metric } from "effect"
 * import { PoolMetrics, WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "docs", concurrency: 1 })
 *   yield* WorkerPool.run(pool, Effect.void)
 *   const state = yield* Metric.value(Metric.withAttributes(PoolMetrics.submitted, { pool: "docs" }))
 *   assert.strictEqual(state.count, 1)
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const submitted = Metric.counter("fiberpool_jobs_submitted_total", { description: "Jobs accepted" })

/**
 * Submissions that were not accepted, by `reason`.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.rejected.id) // => fiberpool_jobs_rejected_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const rejected = Metric.counter("fiberpool_jobs_rejected_total", {
  description: "Submissions not accepted, by reason"
})

/**
 * Jobs that succeeded.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.succeeded.id) // => fiberpool_jobs_succeeded_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const succeeded = Metric.counter("fiberpool_jobs_succeeded_total", { description: "Jobs that succeeded" })

/**
 * Jobs that failed (typed error or defect), after retries.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.failed.id) // => fiberpool_jobs_failed_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const failed = Metric.counter("fiberpool_jobs_failed_total", { description: "Jobs that failed" })

/**
 * Jobs that ran past their timeout or deadline.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.timedOut.id) // => fiberpool_jobs_timed_out_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const timedOut = Metric.counter("fiberpool_jobs_timed_out_total", { description: "Jobs that timed out" })

/**
 * Jobs accepted and cancelled before they started.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.cancelled.id) // => fiberpool_jobs_cancelled_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const cancelled = Metric.counter("fiberpool_jobs_cancelled_total", {
  description: "Jobs cancelled before they started"
})

/**
 * Jobs interrupted while running.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.interrupted.id) // => fiberpool_jobs_interrupted_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const interrupted = Metric.counter("fiberpool_jobs_interrupted_total", {
  description: "Jobs interrupted while running"
})

/**
 * Jobs abandoned at shutdown because they ignored interruption.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.abandoned.id) // => fiberpool_jobs_abandoned_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const abandoned = Metric.counter("fiberpool_jobs_abandoned_total", {
  description: "Jobs abandoned at shutdown"
})

/**
 * Attempts after the first.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.retries.id) // => fiberpool_job_retries_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const retries = Metric.counter("fiberpool_job_retries_total", { description: "Attempts after the first" })

/**
 * Dead letters a full bounded `deadLetters` queue refused (they are lost; see `WorkerPool.Stats`).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.deadLettersDropped.id) // => fiberpool_dead_letters_dropped_total
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const deadLettersDropped = Metric.counter("fiberpool_dead_letters_dropped_total", {
  description: "Dead letters a full bounded dead-letter queue refused"
})

/**
 * Submitters waiting for room in a full queue (under `"suspend"`), not accepted yet.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.waiting.id) // => fiberpool_submitters_waiting
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const waiting = Metric.gauge("fiberpool_submitters_waiting", {
  description: "Submitters waiting for room in the queue"
})

/**
 * How many jobs may run at once (changes with `WorkerPool.resize`).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.concurrency.id) // => fiberpool_concurrency
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const concurrency = Metric.gauge("fiberpool_concurrency", { description: "Jobs that may run at once" })

/**
 * How many accepted jobs may wait to start (`+Inf` for an unbounded queue).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.capacity.id) // => fiberpool_capacity
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const capacity = Metric.gauge("fiberpool_capacity", { description: "Jobs that may wait in the queue" })

/**
 * Jobs waiting in the queue.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.queued.id) // => fiberpool_jobs_queued
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const queued = Metric.gauge("fiberpool_jobs_queued", { description: "Jobs waiting to start" })

/**
 * Jobs running now.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.running.id) // => fiberpool_jobs_running
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const running = Metric.gauge("fiberpool_jobs_running", { description: "Jobs running" })

/**
 * Seconds from a job's submission to its first start.
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.waitSeconds.id) // => fiberpool_job_wait_seconds
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const waitSeconds = Metric.histogram("fiberpool_job_wait_seconds", {
  description: "Seconds from submission to first start",
  boundaries: durationBoundaries,
  // the unit an OTLP exporter reports (`s`): Effect's exporter reads it from this attribute
  attributes: { unit: "seconds" }
})

/**
 * Seconds from a job's first start to its end (every attempt included).
 *
 * @example
 * ```ts
 * import { PoolMetrics } from "@fiberpool/core"
 *
 * console.log(PoolMetrics.runSeconds.id) // => fiberpool_job_run_seconds
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const runSeconds = Metric.histogram("fiberpool_job_run_seconds", {
  description: "Seconds from first start to end",
  boundaries: durationBoundaries,
  attributes: { unit: "seconds" }
})
