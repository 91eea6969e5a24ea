/**
 * Graceful shutdown: its options and the report it returns.
 *
 * Shutdown runs in phases, all bounded:
 *
 * 1. Intake closes: `submit` fails with `PoolClosed`; submitters waiting for room get `PoolClosed` at once.
 * 2. Queued jobs are cancelled (`mode: "cancel"`) or keep starting as workers free up (`mode: "drain"`).
 * 3. The grace period, counted from the start of shutdown, covers draining and in-flight jobs alike.
 * 4. When it ends, queued jobs are cancelled and running jobs interrupted; a job that has not stopped
 *    `interruptTimeout` later is abandoned: reported, never waited on.
 * 5. A {@link ShutdownReport} says what happened to every job that was live when shutdown began.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"

/**
 * What happens to queued jobs when shutdown begins.
 *
 * - `"drain"` (default): they keep starting until the grace period ends.
 * - `"cancel"`: they end `cancelled` at once; only the running jobs get the grace period.
 *
 * @example
 * ```ts
 * import type { Shutdown } from "@fiberpool/core"
 *
 * const mode: Shutdown.Mode = "cancel"
 * console.log(mode) // => cancel
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Mode = "drain" | "cancel"

/**
 * Shutdown options. A pool's defaults are set with its `shutdown` option; `WorkerPool.shutdown(pool, options)`
 * overrides them for one call.
 *
 * - `mode`: see {@link Mode}. Default `"drain"`.
 * - `gracePeriod`: how long, from the start of shutdown, jobs may run before being interrupted. Default
 *   30 seconds.
 * - `interruptTimeout`: how long an interrupted job may take to stop before it is abandoned. Default
 *   5 seconds.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({
 *     concurrency: 4,
 *     shutdown: { mode: "drain", gracePeriod: "10 seconds", interruptTimeout: "1 second" }
 *   })
 *   yield* WorkerPool.submit(pool, Effect.log("work"))
 *   const report = yield* WorkerPool.shutdown(pool)
 *   console.log(report.totals.succeeded) // => 1
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly mode?: Mode | undefined
  readonly gracePeriod?: Duration.Input | undefined
  readonly interruptTimeout?: Duration.Input | undefined
}

/**
 * Counters of every job over a pool's lifetime.
 *
 * `submitted` counts accepted jobs. Once shutdown has finished,
 * `submitted = succeeded + failed + timedOut + interrupted + cancelled + abandoned`.
 * `rejected` counts submissions that were never accepted (closed pool, full queue, duplicate id, invalid
 * options, dropped).
 *
 * @example
 * ```ts
 * import type { Shutdown } from "@fiberpool/core"
 *
 * const finished = (t: Shutdown.Totals) =>
 *   t.succeeded + t.failed + t.timedOut + t.interrupted + t.cancelled + t.abandoned
 * console.log(finished({
 *   submitted: 3, rejected: 0, succeeded: 2, failed: 1, timedOut: 0,
 *   interrupted: 0, cancelled: 0, abandoned: 0, retries: 0
 * })) // => 3
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Totals {
  readonly submitted: number
  readonly rejected: number
  readonly succeeded: number
  readonly failed: number
  readonly timedOut: number
  readonly interrupted: number
  readonly cancelled: number
  readonly abandoned: number
  readonly retries: number
}

/**
 * The ids of the jobs that were live (queued or running) when shutdown began, by how they ended.
 *
 * @example
 * ```ts
 * import type { Shutdown } from "@fiberpool/core"
 *
 * const fates: Shutdown.JobFates = {
 *   succeeded: ["a"], failed: [], timedOut: [], interrupted: ["b"], cancelled: ["c"], abandoned: []
 * }
 * console.log(fates.interrupted) // => [ 'b' ]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface JobFates {
  readonly succeeded: ReadonlyArray<string>
  readonly failed: ReadonlyArray<string>
  readonly timedOut: ReadonlyArray<string>
  readonly interrupted: ReadonlyArray<string>
  readonly cancelled: ReadonlyArray<string>
  readonly abandoned: ReadonlyArray<string>
}

/**
 * What a shutdown did.
 *
 * - `pool`: the pool's name; `mode`: the mode it ran in.
 * - `startedAt`, `finishedAt`: epoch milliseconds on the Effect `Clock`; `durationMillis`.
 * - `graceExpired`: the grace period ended with work left, so jobs were cancelled or interrupted.
 * - `jobs`: the fate of every job live when shutdown began (see {@link JobFates}).
 * - `totals`: the pool's lifetime counters at the end (see {@link Totals}).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.submit(pool, Effect.sleep("20 millis"), { id: "slow" })
 *   yield* WorkerPool.submit(pool, Effect.void, { id: "queued" })
 *   const report = yield* WorkerPool.shutdown(pool, { mode: "cancel" })
 *   assert.deepStrictEqual(report.jobs.succeeded, ["slow"])
 *   assert.deepStrictEqual(report.jobs.cancelled, ["queued"])
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Report {
  readonly pool: string
  readonly mode: Mode
  readonly startedAt: number
  readonly finishedAt: number
  readonly durationMillis: number
  readonly graceExpired: boolean
  readonly jobs: JobFates
  readonly totals: Totals
}
