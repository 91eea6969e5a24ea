/**
 * @since 0.1.0
 */

/**
 * Jobs: options and handles.
 *
 * @since 0.1.0
 */
export * as Job from "./Job.ts"

/**
 * Job events.
 *
 * @since 0.1.0
 */
export * as JobEvent from "./JobEvent.ts"

/**
 * The typed errors of the pool and of jobs.
 *
 * @since 0.1.0
 */
export * as PoolError from "./PoolError.ts"

/**
 * The options of a pool, and reading them from configuration.
 *
 * @since 0.1.0
 */
export * as PoolOptions from "./PoolOptions.ts"

/**
 * The pool's metrics.
 *
 * @since 0.1.0
 */
export * as PoolMetrics from "./PoolMetrics.ts"

/**
 * Graceful shutdown: options and report.
 *
 * @since 0.1.0
 */
export * as Shutdown from "./Shutdown.ts"

/**
 * The worker pool.
 *
 * @since 0.1.0
 */
export * as WorkerPool from "./WorkerPool.ts"

/**
 * Option validation shared by the packages built on core: one rendering of bad values in `InvalidOptions`.
 *
 * @since 0.1.0
 */
export * as Validation from "./Validation.ts"
