/**
 * @since 0.1.0
 */

/**
 * A main runner for Node services: graceful shutdown on the first SIGTERM/SIGINT, forced on the second.
 *
 * @since 0.1.0
 */
export * as NodeShutdown from "./NodeShutdown.ts"

/**
 * An HTTP endpoint with Prometheus metrics, liveness and readiness.
 *
 * @since 0.1.0
 */
export * as NodeMetrics from "./NodeMetrics.ts"

/**
 * The typed errors of the package, under one `NodeError` with a `reason`.
 *
 * @since 0.1.0
 */
export * as NodeError from "./NodeError.ts"

/**
 * A pool of worker threads for CPU-bound jobs, with the core pool's contract.
 *
 * @since 0.1.0
 */
export * as NodeWorkerPool from "./NodeWorkerPool.ts"

/**
 * The thread side of `NodeWorkerPool`: serves task handlers inside a worker thread.
 *
 * @since 0.1.0
 */
export * as NodeThreadRunner from "./NodeThreadRunner.ts"

/**
 * A live operations dashboard for pools and durable queues, on its own port or an app's `HttpRouter`.
 *
 * @since 0.1.0
 */
export * as NodeDashboard from "./NodeDashboard.ts"
