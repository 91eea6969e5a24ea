/**
 * @since 0.1.0
 */

/**
 * The typed errors of durable jobs.
 *
 * @since 0.1.0
 */
export * as DurableError from "./DurableError.ts"

/**
 * Flows: a parent job that waits for its children and reads their results.
 *
 * @since 0.1.0
 */
export * as DurableFlow from "./DurableFlow.ts"

/**
 * The queue's metrics: backlog, backlog age and dead letters, per queue and job type.
 *
 * @since 0.1.0
 */
export * as DurableMetrics from "./DurableMetrics.ts"

/**
 * The producer side: enqueue jobs, await results, list and re-queue dead letters.
 *
 * @since 0.1.0
 */
export * as DurableQueue from "./DurableQueue.ts"

/**
 * Recurring schedules: cron expressions (with a time zone) or fixed intervals, one job per tick across every process.
 *
 * @since 0.1.0
 */
export * as DurableSchedule from "./DurableSchedule.ts"

/**
 * The consumer side: a worker pool whose jobs come from the durable queue.
 *
 * @since 0.1.0
 */
export * as DurableWorker from "./DurableWorker.ts"

/**
 * Named job types: a contract (name, payload and result schemas, options) for producers, and its handler for
 * workers.
 *
 * @since 0.1.0
 */
export * as JobType from "./JobType.ts"

/**
 * An effect `SqlClient` over `node:sqlite`, the embedded store.
 *
 * @since 0.1.0
 */
export * as SqliteClient from "./SqliteClient.ts"
