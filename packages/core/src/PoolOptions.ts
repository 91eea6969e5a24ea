/**
 * The options of a pool (`WorkerPool.Options`), and reading them from configuration. The types live here, in a
 * module that imports nothing of the implementation, so that the implementation can read them without an
 * import circle; `WorkerPool` re-exports them.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Job from "./Job.ts"
import type * as Shutdown from "./Shutdown.ts"

/**
 * What `submit` does when the queue is full.
 *
 * - `"suspend"` (default): `submit` waits for room. Interrupting the waiting submitter withdraws the job.
 * - `"fail"`: `submit` fails at once with `PoolError` / `QueueFull`.
 * - `"dropping"`: the new job is not accepted; `submit` returns a handle that is already finished with
 *   `JobError` / `JobDropped`, so a producer never blocks or fails but is still told.
 * - `"sliding"`: the oldest queued job is pushed out (its handle ends `cancelled`, `by: "sliding"`) and the
 *   new job is queued.
 *
 * @example
 * ```ts
 * import type { PoolOptions } from "@fiberpool/core"
 *
 * const strategy: PoolOptions.Backpressure = "sliding"
 * console.log(strategy) // => sliding
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Backpressure = "suspend" | "fail" | "dropping" | "sliding"

/**
 * Options of a pool.
 *
 * - `concurrency`: how many jobs run at once (a positive integer).
 * - `capacity`: how many accepted jobs may wait to start (an integer ≥ 0, or `Infinity`). Default 1024.
 * - `backpressure`: see {@link Backpressure}. Default `"suspend"`.
 * - `timeout`: default timeout of every job, counted from its start. A job's own `timeout` can only be
 *   shorter.
 * - `name`: tells pools apart in ids, logs and metrics. Default `"fiberpool"`.
 * - `shutdown`: defaults of the shutdown (see `Shutdown.Options`).
 * - `spans`: a span per job attempt, child of the submitter's span, with the job id, attempt and pool as
 *   attributes. `"auto"` (default) creates them when a tracer other than Effect's built-in one is installed
 *   (an exporter is listening); `"always"`, `"never"`.
 *
 * - `aging`: how long a queued job waits to gain 1 priority level (default 1 second), or `false` for strict
 *   priority order. Starvation bound: a job of priority `p` is overtaken only by jobs of priority `p' > p`
 *   submitted less than `(p' - p) × aging` after it, so it starts at the latest once those and the jobs
 *   queued before it have started.
 * - `keyConcurrency`: at most this many jobs of one `key` run at once (default no limit). Jobs of a key at
 *   its limit wait aside and never hold back other keys.
 * - `rateLimit`: at most `limit` job starts in any window of `interval`; `keyRateLimit`: the same per key.
 * - `deadLetters`: a `Queue` or a callback that receives a `Job.DeadLetter` for every job that ends failed,
 *   timed out or abandoned, exactly once. A letter a full bounded `Queue` refuses is counted in
 *   `Stats.deadLettersDropped`.
 * - `progressInterval`: the least time between two progress updates a job sends (`Job.Info.progress`); a
 *   value reported sooner is kept and sent later. Default 100 ms.
 * - `durationBoundaries`: the bucket boundaries (seconds, increasing) of the wait and run histograms. Default
 *   `PoolMetrics.durationBoundaries`, 1 ms to 100 s.
 *
 * Everything a job logs is annotated with `fiberpool.pool`, `fiberpool.job` and, on retries,
 * `fiberpool.attempt`.
 *
 * @example
 * ```ts
 * import type { PoolOptions } from "@fiberpool/core"
 *
 * const options: PoolOptions.Options = {
 *   name: "thumbnails",
 *   concurrency: 8,
 *   capacity: 100,
 *   backpressure: "fail",
 *   timeout: "30 seconds",
 *   shutdown: { mode: "drain", gracePeriod: "20 seconds", interruptTimeout: "2 seconds" }
 * }
 * console.log(options.concurrency) // => 8
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly name?: string | undefined
  readonly concurrency: number
  readonly capacity?: number | undefined
  readonly backpressure?: Backpressure | undefined
  readonly timeout?: Duration.Input | undefined
  readonly shutdown?: Shutdown.Options | undefined
  readonly spans?: "auto" | "always" | "never" | undefined
  readonly aging?: Duration.Input | false | undefined
  readonly keyConcurrency?: number | undefined
  readonly rateLimit?: { readonly limit: number; readonly interval: Duration.Input } | undefined
  readonly keyRateLimit?: { readonly limit: number; readonly interval: Duration.Input } | undefined
  readonly deadLetters?:
    | Queue.Enqueue<Job.DeadLetter>
    | ((letter: Job.DeadLetter) => Effect.Effect<void, unknown>)
    | undefined
  readonly durationBoundaries?: ReadonlyArray<number> | undefined
  readonly progressInterval?: Duration.Input | undefined
}

/**
 * Reads pool options from configuration (environment variables by default) over the given defaults.
 *
 * **Details**
 *
 * Keys: `NAME`, `CONCURRENCY`, `CAPACITY`, `BACKPRESSURE`, `TIMEOUT`, `SHUTDOWN_MODE`,
 * `SHUTDOWN_GRACE_PERIOD`, `SHUTDOWN_INTERRUPT_TIMEOUT`; durations are written like `"30 seconds"`. Each is
 * optional and overrides the default; every other option of `defaults` (`keyConcurrency`, `rateLimit`,
 * `deadLetters`, ...) is kept as given. Prefix the keys with `Config.nested(config, "POOL")`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { ConfigProvider, Effect } from "effect"
 * import { PoolOptions } from "@fiberpool/core"
 *
 * const provider = ConfigProvider.fromEnv({ env: { CONCURRENCY: "8", SHUTDOWN_GRACE_PERIOD: "5 seconds" } })
 * const options = await Effect.runPromise(PoolOptions.config({ concurrency: 2 }).parse(provider))
 * assert.strictEqual(options.concurrency, 8)
 * assert.strictEqual(options.capacity, undefined)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const config = (defaults: Options): Config.Config<Options> =>
  Config.all({
    name: Config.option(Config.String("NAME")),
    concurrency: Config.option(Config.Int("CONCURRENCY")),
    capacity: Config.option(Config.Number("CAPACITY")),
    backpressure: Config.option(Config.Literals(["suspend", "fail", "dropping", "sliding"], "BACKPRESSURE")),
    timeout: Config.option(Config.Duration("TIMEOUT")),
    mode: Config.option(Config.Literals(["drain", "cancel"], "SHUTDOWN_MODE")),
    gracePeriod: Config.option(Config.Duration("SHUTDOWN_GRACE_PERIOD")),
    interruptTimeout: Config.option(Config.Duration("SHUTDOWN_INTERRUPT_TIMEOUT"))
  }).pipe(Config.map((read): Options => {
    const shutdown = {
      mode: Option.getOrUndefined(read.mode) ?? defaults.shutdown?.mode,
      gracePeriod: Option.getOrUndefined(read.gracePeriod) ?? defaults.shutdown?.gracePeriod,
      interruptTimeout: Option.getOrUndefined(read.interruptTimeout) ?? defaults.shutdown?.interruptTimeout
    }
    return {
      ...defaults,
      name: Option.getOrUndefined(read.name) ?? defaults.name,
      concurrency: Option.getOrUndefined(read.concurrency) ?? defaults.concurrency,
      capacity: Option.getOrUndefined(read.capacity) ?? defaults.capacity,
      backpressure: Option.getOrUndefined(read.backpressure) ?? defaults.backpressure,
      timeout: Option.getOrUndefined(read.timeout) ?? defaults.timeout,
      shutdown
    }
  }))
