/**
 * The pool for code outside Effect: jobs are plain `async (signal, ctx) => …` functions, results are promises,
 * failures are plain `Error` subclasses. Backed by the same engine as `WorkerPool` (one `WorkerPool.make` in a
 * scope this module owns), so every guarantee holds: bounded queue, deadlines that stop work (the `signal`
 * aborts), bounded close that names the jobs it abandoned.
 *
 * Import it as `@fiberpool/core/promise`; a program using it never imports `effect`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { JobEntry } from "./internal/entry.ts"
import { noJobOptions, resolveJobOptions } from "./internal/options.ts"
import { PoolImpl } from "./internal/pool.ts"
import * as Job from "./Job.ts"
import * as CorePoolError from "./PoolError.ts"
import type * as CorePoolOptions from "./PoolOptions.ts"
import type * as Shutdown from "./Shutdown.ts"
import * as WorkerPool from "./WorkerPool.ts"

declare global {
  // The standard `AbortSignal`, declared by the DOM lib and by @types/node; core builds with neither (it runs
  // wherever Effect runs), so the name is declared here and merges with the full declaration a consumer has.
  interface AbortSignal {}
}

/** What this module uses of `AbortSignal` and `AbortController`, present in every runtime Effect supports. */
interface Signal {
  readonly aborted: boolean
  addEventListener(type: "abort", listener: () => void, options?: { readonly once?: boolean }): void
  removeEventListener(type: "abort", listener: () => void): void
}
interface Controller {
  readonly signal: AbortSignal
  abort(): void
}
const AbortControllerImpl = (globalThis as unknown as { readonly AbortController: new() => Controller })
  .AbortController

/**
 * A duration: milliseconds as a number, or a string such as `"30 seconds"` or `"250 millis"`.
 *
 * @example
 * ```ts
 * import type { DurationInput } from "@fiberpool/core/promise"
 *
 * const timeouts: Array<DurationInput> = [500, "2 seconds"]
 * console.log(timeouts.length) // => 2
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type DurationInput = number | `${number} ${Duration.Unit}`

/**
 * Options of a promise pool: the same as `WorkerPool.Options`, minus the Effect-only ones (`deadLetters`).
 *
 * - `concurrency`: how many jobs run at once (a positive integer).
 * - `capacity`: how many accepted jobs may wait to start (default 1024; `Infinity` for no bound).
 * - `backpressure`: `"suspend"` (default: `add` waits for room), `"fail"` (`add` rejects with a `PoolError`
 *   `QueueFull`), `"dropping"` (the new job rejects with a `JobError` `JobDropped`), `"sliding"` (the oldest
 *   queued job rejects with a `JobError` `JobCancelled`, `by: "sliding"`).
 * - `timeout`: default timeout of every job, counted from its start.
 * - `name`: the pool's name, the prefix of generated job ids. Default `"fiberpool"`.
 * - `shutdown`: defaults of {@link Pool.close}.
 * - `aging`, `keyConcurrency`, `rateLimit`, `keyRateLimit`, `progressInterval`: as in `WorkerPool.Options`.
 *
 * @example
 * ```ts
 * import type { PoolOptions } from "@fiberpool/core/promise"
 *
 * const options: PoolOptions = { name: "thumbnails", concurrency: 4, capacity: 100, timeout: "30 seconds" }
 * console.log(options.concurrency) // => 4
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface PoolOptions {
  readonly concurrency: number
  readonly capacity?: number | undefined
  readonly backpressure?: CorePoolOptions.Backpressure | undefined
  readonly timeout?: DurationInput | undefined
  readonly name?: string | undefined
  readonly shutdown?: CloseOptions | undefined
  readonly aging?: DurationInput | false | undefined
  readonly keyConcurrency?: number | undefined
  readonly rateLimit?: { readonly limit: number; readonly interval: DurationInput } | undefined
  readonly keyRateLimit?: { readonly limit: number; readonly interval: DurationInput } | undefined
  readonly progressInterval?: DurationInput | undefined
}

/**
 * What a running job knows of itself, passed as the second argument of the job function.
 *
 * - `id`, `pool`, `metadata`: as added.
 * - `attempt`: 1 for the first run.
 * - `deadline`: when the job is stopped (epoch milliseconds), or `undefined` without a timeout.
 * - `progress(value)`: reports progress, delivered to the `onProgress` of {@link AddOptions} (rate-limited by
 *   the pool's `progressInterval`, default 100 ms; the last value is always delivered, before the job's
 *   promise settles).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { createPool, type JobContext } from "@fiberpool/core/promise"
 *
 * const pool = createPool({ name: "reports", concurrency: 1 })
 * const label = await pool.add(async (_signal, ctx: JobContext) => `${ctx.pool}/${ctx.id} #${ctx.attempt}`, {
 *   id: "r1"
 * })
 * assert.strictEqual(label, "reports/r1 #1")
 * await pool.close()
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface JobContext {
  readonly id: string
  readonly pool: string
  readonly attempt: number
  readonly metadata: Readonly<Record<string, unknown>> | undefined
  readonly deadline: number | undefined
  readonly progress: (value: unknown) => void
}

/**
 * A job: an async function given an `AbortSignal` (aborted when the job times out, is cancelled, or is
 * interrupted at close) and its {@link JobContext}.
 *
 * @example
 * ```ts
 * import type { JobFunction } from "@fiberpool/core/promise"
 *
 * const fetchPage: JobFunction<number> = async (signal) => {
 *   signal.throwIfAborted()
 *   return 200
 * }
 * console.log(typeof fetchPage) // => function
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type JobFunction<A> = (signal: AbortSignal, ctx: JobContext) => PromiseLike<A> | A

/**
 * Options of one job.
 *
 * - `id`: unique among the pool's queued and running jobs (generated when absent).
 * - `timeout`: the job's budget from its start; when it runs out the job's `signal` aborts and the promise
 *   rejects with a `JobError` `JobTimedOut`.
 * - `priority`: higher starts first (default 0). `key`: a tenant, for `keyConcurrency` / `keyRateLimit`.
 * - `signal`: aborting it cancels the job while queued (`JobCancelled`) or interrupts it while running
 *   (`JobInterrupted`; the job's own signal aborts).
 * - `metadata`: free-form data, on `ctx.metadata`.
 * - `retry`: `{ times, while }`: run a job that threw again, at most `times` more times, while `while(error)`
 *   holds (default: every error). Timeouts, cancellations and interruptions are never retried; `ctx.attempt`
 *   counts the runs. The job's `timeout` covers every attempt.
 * - `onProgress`: called with every progress value the job reports (see {@link JobContext}).
 *
 * @example
 * ```ts
 * import type { AddOptions } from "@fiberpool/core/promise"
 *
 * const options: AddOptions = { id: "email-42", timeout: 5_000, priority: 1, metadata: { to: "ada" } }
 * console.log(options.id) // => email-42
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface AddOptions {
  readonly id?: string | undefined
  readonly timeout?: DurationInput | undefined
  readonly priority?: number | undefined
  readonly key?: string | undefined
  readonly signal?: AbortSignal | undefined
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
  readonly retry?:
    | { readonly times?: number | undefined; readonly while?: ((error: unknown) => boolean) | undefined }
    | undefined
  readonly onProgress?: ((value: unknown) => void) | undefined
}

/**
 * Options of {@link Pool.close}.
 *
 * - `drain` (default `true`): queued jobs still run; `false` cancels them (they reject with `JobCancelled`,
 *   `by: "shutdown"`).
 * - `gracePeriod`: how long running jobs may take before they are interrupted (their signal aborts).
 * - `interruptTimeout`: how long an interrupted job may take to stop before it is abandoned (named in the
 *   report's `jobs.abandoned`, its promise rejected with `JobAbandoned`).
 *
 * @example
 * ```ts
 * import type { CloseOptions } from "@fiberpool/core/promise"
 *
 * const options: CloseOptions = { drain: false, gracePeriod: "5 seconds", interruptTimeout: 500 }
 * console.log(options.drain) // => false
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface CloseOptions {
  readonly drain?: boolean | undefined
  readonly gracePeriod?: DurationInput | undefined
  readonly interruptTimeout?: DurationInput | undefined
}

/**
 * The reason of a {@link JobError}: core's typed job errors (`_tag` tells them apart).
 *
 * @example
 * ```ts
 * import type { JobErrorReason } from "@fiberpool/core/promise"
 *
 * const describe = (reason: JobErrorReason) => reason._tag === "JobTimedOut" ? "too slow" : reason._tag
 * console.log(typeof describe) // => function
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type JobErrorReason = CorePoolError.JobError["reason"]

/**
 * The reason of a {@link PoolError}: core's typed pool errors (`_tag` tells them apart).
 *
 * @example
 * ```ts
 * import type { PoolErrorReason } from "@fiberpool/core/promise"
 *
 * const full = (reason: PoolErrorReason) => reason._tag === "QueueFull"
 * console.log(typeof full) // => function
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type PoolErrorReason = CorePoolError.PoolError["reason"]

/**
 * A job accepted by the pool did not produce its result: `reason._tag` is `JobTimedOut`, `JobCancelled`,
 * `JobInterrupted`, `JobAbandoned` or `JobDropped`. (A job's own thrown error is rethrown as is, never
 * wrapped.)
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { createPool, JobError } from "@fiberpool/core/promise"
 *
 * const pool = createPool({ concurrency: 1 })
 * const error = await pool.add((signal) => new Promise((_, reject) => signal.onabort = reject), {
 *   id: "slow",
 *   timeout: 10
 * }).catch((e) => e)
 * assert.ok(error instanceof JobError)
 * assert.strictEqual(error.jobId, "slow")
 * assert.strictEqual(error.reason._tag, "JobTimedOut")
 * await pool.close()
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobError extends Error {
  override readonly name = "JobError"
  readonly jobId: string
  readonly reason: JobErrorReason
  constructor(jobId: string, reason: JobErrorReason) {
    super(`Job "${jobId}": ${reason.message}`)
    this.jobId = jobId
    this.reason = reason
  }
}

/**
 * The pool refused a call: `reason._tag` is `PoolClosed`, `QueueFull`, `DuplicateJobId` or
 * `InvalidOptions` (the message names the option).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { createPool, PoolError } from "@fiberpool/core/promise"
 *
 * try {
 *   createPool({ concurrency: 0 })
 *   assert.fail("expected a throw")
 * } catch (error) {
 *   assert.ok(error instanceof PoolError)
 *   assert.strictEqual(error.reason._tag, "InvalidOptions")
 *   console.log(error.message) // => Invalid option "concurrency": expected a positive integer, got 0
 * }
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolError extends Error {
  override readonly name = "PoolError"
  readonly reason: PoolErrorReason
  constructor(reason: PoolErrorReason) {
    super(reason.message)
    this.reason = reason
  }
}

/**
 * The shutdown report {@link Pool.close} returns (core's `Shutdown.Report`): the mode, whether the grace
 * period ran out, the ids of the jobs per fate (`jobs.succeeded`, `jobs.abandoned`, …) and the totals.
 *
 * @example
 * ```ts
 * import { createPool, type ShutdownReport } from "@fiberpool/core/promise"
 *
 * const pool = createPool({ concurrency: 1 })
 * const report: ShutdownReport = await pool.close()
 * console.log(report.mode) // => drain
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type ShutdownReport = Shutdown.Report

/**
 * A promise pool, made by {@link createPool}.
 *
 * - `add(fn, options)`: queues a job, resolving with its result or rejecting with its own error, a
 *   {@link JobError} or a {@link PoolError}.
 * - `size`: jobs queued, not started; `pending`: jobs running.
 * - `onIdle()`: resolves when nothing is queued or running.
 * - `pause()` / `resume()`: stop and restart starting jobs (running ones go on; `add` still queues).
 * - `close(options)`: the graceful shutdown, resolving with the {@link ShutdownReport}. Idempotent: a later
 *   call resolves with the same report, and can only make the running shutdown more forceful (`drain: false`,
 *   `gracePeriod: 0`).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { createPool } from "@fiberpool/core/promise"
 *
 * const pool = createPool({ concurrency: 2 })
 * const results = await Promise.all([1, 2, 3].map((n) => pool.add(async () => n * 10)))
 * assert.deepStrictEqual(results, [10, 20, 30])
 * await pool.onIdle()
 * assert.strictEqual(pool.size + pool.pending, 0)
 * const report = await pool.close()
 * assert.strictEqual(report.totals.succeeded, 3)
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Pool {
  readonly name: string
  readonly concurrency: number
  readonly size: number
  readonly pending: number
  readonly isPaused: boolean
  readonly add: <A>(fn: JobFunction<A>, options?: AddOptions) => Promise<A>
  readonly onIdle: () => Promise<void>
  readonly pause: () => void
  readonly resume: () => void
  readonly close: (options?: CloseOptions) => Promise<ShutdownReport>
}

const toCoreOptions = (options: PoolOptions): CorePoolOptions.Options => {
  const shutdown = options.shutdown
  return {
    ...(options as Omit<PoolOptions, "shutdown">),
    shutdown: shutdown === undefined ? undefined : toShutdownOptions(shutdown)
  } as CorePoolOptions.Options
}

const toShutdownOptions = (options: CloseOptions): Shutdown.Options => ({
  mode: options.drain === false ? "cancel" : options.drain === undefined ? undefined : "drain",
  gracePeriod: options.gracePeriod,
  interruptTimeout: options.interruptTimeout
})

/** Turns the failure of the engine into what a promise user expects: a plain error, or the job's own. */
const toRejection = (cause: Cause.Cause<unknown>, jobId: string | undefined): unknown => {
  const error = Cause.findErrorOption(cause)
  if (Option.isSome(error)) {
    const e = error.value
    if (e instanceof CorePoolError.JobError) return new JobError(e.jobId, e.reason)
    if (e instanceof CorePoolError.PoolError) return new PoolError(e.reason)
    if (e instanceof CorePoolError.InvalidOptions) return new PoolError(e)
    return e
  }
  if (Cause.hasInterruptsOnly(cause)) {
    // the caller's signal withdrew a submission still waiting for room (backpressure "suspend")
    return new JobError(jobId ?? "", new CorePoolError.JobCancelled({ by: "handle" }))
  }
  return Cause.squash(cause)
}

/** Settles an `add`'s promise with a job's exit: its value, or the rejection `toRejection` makes of its cause. */
const settleWith = <A>(
  resolve: (value: A) => void,
  reject: (error: unknown) => void,
  jobId: string | undefined
) =>
(exit: Exit.Exit<A, unknown>): void => {
  if (Exit.isSuccess(exit)) resolve(exit.value)
  else reject(toRejection(exit.cause, jobId))
}

const jobEffect = <A>(fn: JobFunction<A>): Effect.Effect<A, unknown, Job.Current> =>
  Effect.flatMap(Effect.service(Job.Current), (info) => {
    const ctx: JobContext = {
      id: info.id,
      pool: info.pool,
      attempt: info.attempt,
      metadata: info.metadata,
      deadline: info.deadline,
      progress: (value) => Effect.runSync(info.progress(value))
    }
    // Unlike `Effect.tryPromise`, an interrupted job is waited for: its signal aborts and the fiber ends
    // when the promise settles. So a job that ignores its signal is still running, and the pool's bounded
    // close abandons it (named in the report) rather than forgetting it.
    return Effect.callback<A, unknown>((resume) => {
      const controller = new AbortControllerImpl()
      let settled: Promise<unknown>
      try {
        const promise = Promise.resolve(fn(controller.signal, ctx))
        settled = promise.then(
          (value) => resume(Effect.succeed(value)),
          (error) => resume(Effect.fail(error))
        )
      } catch (error) {
        resume(Effect.fail(error))
        return
      }
      return Effect.suspend(() => {
        controller.abort()
        return Effect.promise(() => settled)
      }).pipe(Effect.asVoid)
    })
  })

/**
 * Creates a promise pool. Invalid options throw a {@link PoolError} whose message names the option.
 *
 * **Details**
 *
 * The pool runs until {@link Pool.close}; an open pool holds no timer, so it does not keep the process alive by
 * itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { createPool, JobError } from "@fiberpool/core/promise"
 *
 * const pool = createPool({ concurrency: 2, capacity: 100, timeout: "5 seconds" })
 * const controller = new AbortController()
 * const queued = pool.add(async () => "never", { signal: controller.signal, priority: -1 })
 * controller.abort()
 * const error = await queued.catch((e) => e)
 * assert.ok(error instanceof JobError)
 * assert.strictEqual(await pool.add(async (signal) => signal.aborted), false)
 * await pool.close()
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const createPool = (options: PoolOptions): Pool => {
  const scope = Effect.runSync(Scope.make())
  const made = Effect.runSyncExit(Scope.provide(WorkerPool.make(toCoreOptions(options)), scope))
  if (Exit.isFailure(made)) {
    Effect.runFork(Scope.close(scope, Exit.void))
    throw toRejection(made.cause, undefined)
  }
  const pool = made.value
  const core = pool instanceof PoolImpl ? pool : undefined
  /**
   * The pool's own submission, outside any fiber: the job's handle (`Exit`), its rejection, or the wait for
   * room (an effect to run). Undefined when the options are invalid: `WorkerPool.submit` rejects them, and
   * counts the rejection, in the general path.
   */
  const submitNow = (
    effect: Effect.Effect<any, unknown, Job.Current>,
    options: Job.Options<unknown> | undefined
  ): Exit.Exit<JobEntry, CorePoolError.PoolError> | Effect.Effect<JobEntry, CorePoolError.PoolError> | undefined => {
    if (core === undefined) return undefined
    let resolved = noJobOptions
    if (options !== undefined) {
      const result = resolveJobOptions(options, core.clock.currentTimeMillisUnsafe())
      if (Result.isFailure(result)) return undefined
      resolved = result.success
    }
    return core.submit(effect, resolved, Context.empty())
  }
  let paused = false
  let closing: Promise<ShutdownReport> | undefined

  const add = <A>(fn: JobFunction<A>, jobOptions: AddOptions = {}): Promise<A> => {
    const { onProgress, signal: userSignal, ...rest } = jobOptions
    const signal = userSignal as Signal | undefined
    // no options: nothing to resolve per job
    let submitOptions: Job.Options<unknown> | undefined = rest as Job.Options<unknown>
    if (Object.keys(rest).length === 0) submitOptions = undefined
    let accepted = false
    // the common case (no signal, no progress listener): submitted here and now, and settled by a waiter on
    // the job, with no fiber of its own; only a submission that must wait for room runs in a fiber
    let direct: Effect.Effect<A, unknown> | undefined
    if (signal === undefined && onProgress === undefined) {
      const job = jobEffect(fn)
      const submitted = submitNow(job, submitOptions)
      if (submitted !== undefined && Exit.isExit(submitted)) {
        if (Exit.isFailure(submitted)) return Promise.reject(toRejection(submitted.cause, jobOptions.id))
        const entry = submitted.value
        return new Promise<A>((resolve, reject) => {
          const settle = settleWith(resolve, reject, jobOptions.id)
          const result = entry.settled()
          if (result !== undefined) settle(result)
          else entry.addWaiter(settle)
        })
      }
      direct = submitted === undefined
        ? Effect.flatMap(WorkerPool.submit(pool, job, submitOptions), (handle) => handle.await)
        : Effect.flatMap(submitted, (handle) => handle.await)
    }
    const program: Effect.Effect<A, unknown> = direct !== undefined
      ? direct
      : Effect.gen(function*() {
        if (signal?.aborted === true) {
          // never submitted, never run
          return yield* Effect.fail(
            new CorePoolError.JobError({
              jobId: jobOptions.id ?? "",
              reason: new CorePoolError.JobCancelled({ by: "handle" })
            })
          )
        }
        const handle = yield* WorkerPool.submit(pool, jobEffect(fn), submitOptions)
        accepted = true
        let unlisten = (): void => {}
        if (signal !== undefined) {
          const onAbort = () => {
            Effect.runFork(handle.cancel)
          }
          if (signal.aborted) onAbort()
          else {
            signal.addEventListener("abort", onAbort, { once: true })
            unlisten = () => signal.removeEventListener("abort", onAbort)
          }
        }
        const progress = onProgress === undefined ? undefined : yield* Effect.forkChild(
          Stream.runForEach(handle.progressUpdates, (value) => Effect.sync(() => onProgress(value)))
        )
        const exit = yield* handle.exit
        unlisten()
        if (progress !== undefined) yield* Fiber.await(progress)
        return yield* exit
      })
    return new Promise<A>((resolve, reject) => {
      const fiber = Effect.runFork(program)
      // Before acceptance (a submitter waiting for room under "suspend"), the signal withdraws the
      // submission; once accepted, the listener inside `program` cancels the handle.
      const withdraw = () => {
        if (!accepted) Effect.runFork(Fiber.interrupt(fiber))
      }
      if (signal !== undefined && !accepted) signal.addEventListener("abort", withdraw, { once: true })
      const settle = settleWith(resolve, reject, jobOptions.id)
      fiber.addObserver((exit) => {
        signal?.removeEventListener("abort", withdraw)
        settle(exit)
      })
    })
  }

  const stats = () => Effect.runSync(WorkerPool.stats(pool))

  return {
    name: pool.name,
    get concurrency() {
      return pool.concurrency
    },
    get size() {
      return stats().queued
    },
    get pending() {
      return stats().running
    },
    get isPaused() {
      return paused
    },
    add,
    onIdle: () => Effect.runPromise(WorkerPool.awaitIdle(pool)),
    pause: () => {
      paused = true
      Effect.runSync(WorkerPool.pause(pool))
    },
    resume: () => {
      paused = false
      Effect.runSync(WorkerPool.resume(pool))
    },
    close: (closeOptions) => {
      if (closing !== undefined) {
        // a later call can make the running shutdown more forceful (`drain: false`, `gracePeriod: 0`), never
        // longer; it returns the same report
        if (closeOptions !== undefined) Effect.runFork(WorkerPool.shutdown(pool, toShutdownOptions(closeOptions)))
        return closing
      }
      closing = new Promise<ShutdownReport>((resolve, reject) => {
        const program = Effect.flatMap(
          WorkerPool.shutdown(pool, closeOptions === undefined ? undefined : toShutdownOptions(closeOptions)),
          (report) => Effect.as(Scope.close(scope, Exit.void), report)
        )
        Effect.runFork(program).addObserver((exit) => {
          if (Exit.isSuccess(exit)) resolve(exit.value)
          else reject(toRejection(exit.cause, undefined))
        })
      })
      return closing
    }
  }
}
