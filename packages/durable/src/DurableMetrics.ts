/**
 * The queue's Effect `Metric`s: backlog and dead letters, per queue and job type.
 *
 * Every `DurableWorker` on a SQL store samples `DurableQueue.stats` every `metricsInterval` (worker option,
 * default 15 seconds) and registers these gauges in the `Metric.MetricRegistry` of the context it was made in,
 * with the attributes `queue` and `type`. They describe the queue, not the worker: every worker of a queue
 * reports the same values (aggregate them across processes with `max`, not `sum`). A type whose jobs are all
 * gone reads 0 until the worker closes; a closing worker removes its series. The memory and Redis stores keep no
 * counts: their workers register none. The pool's own metrics (`PoolMetrics`, attribute `pool`) count what each worker
 * ran.
 *
 * | name | type | meaning |
 * | --- | --- | --- |
 * | `fiberpool_durable_backlog` | gauge | jobs claimable now, not claimed (`DurableQueue.TypeStats.pending`) |
 * | `fiberpool_durable_delayed` | gauge | jobs waiting for their delay or retry delay |
 * | `fiberpool_durable_claimed` | gauge | jobs held by a worker (running, or held by a dead process until its lease expires) |
 * | `fiberpool_durable_backlog_age_seconds` | gauge | how long the oldest claimable job has waited (0 when none): the figure to alert on |
 * | `fiberpool_durable_dead_letters` | gauge | dead letters kept (until retention removes them) |
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/**
 * Jobs claimable now that no worker has claimed: the backlog.
 *
 * @example
 * ```ts
 * import { DurableMetrics } from "@fiberpool/durable"
 *
 * console.log(DurableMetrics.backlog.id) // => fiberpool_durable_backlog
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const backlog = Metric.gauge("fiberpool_durable_backlog", {
  description: "Jobs claimable now, not claimed by any worker"
})

/**
 * Jobs waiting for their delay (`enqueue`'s `delay`) or retry delay.
 *
 * @example
 * ```ts
 * import { DurableMetrics } from "@fiberpool/durable"
 *
 * console.log(DurableMetrics.delayed.id) // => fiberpool_durable_delayed
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const delayed = Metric.gauge("fiberpool_durable_delayed", {
  description: "Jobs waiting for their delay or retry delay"
})

/**
 * Jobs held by a worker: running, or held by a process that died, until its lease expires.
 *
 * @example
 * ```ts
 * import { DurableMetrics } from "@fiberpool/durable"
 *
 * console.log(DurableMetrics.claimed.id) // => fiberpool_durable_claimed
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const claimed = Metric.gauge("fiberpool_durable_claimed", { description: "Jobs held by a worker" })

/**
 * Seconds the oldest claimable job has waited (0 when there is none).
 *
 * @example
 * ```ts
 * import { DurableMetrics } from "@fiberpool/durable"
 *
 * console.log(DurableMetrics.backlogAge.id) // => fiberpool_durable_backlog_age_seconds
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const backlogAge = Metric.gauge("fiberpool_durable_backlog_age_seconds", {
  description: "Seconds the oldest claimable job has waited"
})

/**
 * Dead letters kept by the queue (until retention removes them or they are re-queued).
 *
 * @example
 * ```ts
 * import { DurableMetrics } from "@fiberpool/durable"
 *
 * console.log(DurableMetrics.deadLetters.id) // => fiberpool_durable_dead_letters
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const deadLetters = Metric.gauge("fiberpool_durable_dead_letters", { description: "Dead letters kept" })
