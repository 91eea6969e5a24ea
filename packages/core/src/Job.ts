/**
 * Jobs: the options a job is submitted with, and the handle a submitter gets back.
 *
 * A job is any `Effect<A, E, R>`. Submitting it to a pool returns a {@link JobHandle} to await its typed
 * result, cancel it, or look at its status.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import type * as Schedule from "effect/Schedule"
import type * as Stream from "effect/Stream"
import * as Outcome from "./internal/outcome.ts"
import type { JobError } from "./PoolError.ts"

/**
 * @category type ids
 * @since 0.1.0
 */
export const TypeId: TypeId = "~@fiberpool/core/Job/JobHandle"

/**
 * @category type ids
 * @since 0.1.0
 */
export type TypeId = "~@fiberpool/core/Job/JobHandle"

/**
 * Where a job is in its lifecycle.
 *
 * - `queued`, `running`: live.
 * - `succeeded`, `failed` (typed error or defect, after retries), `timedOut`, `cancelled` (accepted, never
 *   started), `interrupted` (cancelled or stopped while running), `abandoned` (ignored interruption at
 *   shutdown): terminal, for accepted jobs.
 * - `dropped`: never accepted (queue full under `"dropping"`).
 *
 * @example
 * ```ts
 * import type { Job } from "@fiberpool/core"
 *
 * const label = (status: Job.Status): string => status === "timedOut" ? "too slow" : status
 * console.log(label("timedOut")) // => too slow
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Status = "queued" | "running" | Outcome.TerminalStatus

/**
 * The statuses a job cannot leave.
 *
 * @example
 * ```ts
 * import type { Job } from "@fiberpool/core"
 *
 * const final: Job.TerminalStatus = "succeeded"
 * console.log(final) // => succeeded
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type TerminalStatus = Outcome.TerminalStatus

/**
 * Tells whether a status is terminal.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Job } from "@fiberpool/core"
 *
 * assert.strictEqual(Job.isTerminal("running"), false)
 * assert.strictEqual(Job.isTerminal("cancelled"), true)
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isTerminal = (status: Status): status is TerminalStatus => Object.hasOwn(Outcome.outcomes, status)

/**
 * A retry policy for a job's typed failures. Defects, timeouts and interruptions are never retried.
 *
 * - a `Schedule`: retry while it continues;
 * - `{ schedule?, times?, while? }`: the same, with a cap on retries and a predicate on the error, so that
 *   only transient errors are retried.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import type { Job } from "@fiberpool/core"
 *
 * type HttpError = { readonly status: number }
 * const policy: Job.Retry<HttpError> = {
 *   schedule: Schedule.exponential("100 millis"),
 *   times: 3,
 *   while: (error) => error.status >= 500
 * }
 * console.log(policy.times) // => 3
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Retry<E> =
  | Schedule.Schedule<unknown, E>
  | {
    readonly schedule?: Schedule.Schedule<unknown, E> | undefined
    readonly times?: number | undefined
    readonly while?: ((error: E) => boolean) | undefined
  }

/**
 * Options for one job.
 *
 * - `id`: unique among the pool's live (queued or running) jobs; generated when absent, as `<pool name>-<n>`
 *   (a custom id of that form is checked against the generated ones too). A submitter waiting for room under
 *   `"suspend"` holds no id: its id is checked when it is accepted, and `DuplicateJobId` then rejects it if a
 *   live job has taken the id meanwhile.
 * - `timeout`: the job's budget, counted from its start (not its submission), covering every attempt and
 *   the delays between them. When it runs out the job is interrupted, its finalizers run, and it ends
 *   `timedOut`.
 * - `deadline`: an absolute instant (a `DateTime` or epoch milliseconds on the Effect `Clock`). A job whose
 *   deadline passes while it waits in the queue ends `timedOut` without starting.
 * - `retry`: see {@link Retry}.
 * - `priority`: higher starts first (default 0; any finite number); FIFO among equals. With the pool's
 *   `aging` on (the default), waiting raises a job's effective priority by 1 per aging interval, so no job
 *   waits forever behind a stream of higher-priority work.
 * - `key`: a tenant, a customer, a host: the pool's `keyConcurrency` and `keyRateLimit` apply per key.
 * - `metadata`: free-form data for logs and events (a payload description, a tenant).
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 2 })
 *   return yield* WorkerPool.run(pool, Effect.succeed("sent"), {
 *     id: "email-42",
 *     timeout: "5 seconds",
 *     retry: Schedule.exponential("100 millis"),
 *     metadata: { to: "ada@example.com" }
 *   })
 * })
 * console.log(await Effect.runPromise(Effect.scoped(program))) // => sent
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<E = unknown> {
  readonly id?: string | undefined
  readonly timeout?: Duration.Input | undefined
  readonly deadline?: DateTime.DateTime | number | undefined
  readonly retry?: Retry<E> | undefined
  readonly priority?: number | undefined
  readonly key?: string | undefined
  readonly metadata?: Readonly<Record<string, unknown>> | undefined
}

/**
 * A job that ended `failed`, `timedOut` or `abandoned`, as delivered to the pool's `deadLetters` sink: its
 * id, final status, cause (the job's own failure, or the `JobError`), number of attempts, metadata and
 * timings (epoch milliseconds on the Effect `Clock`).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Queue } from "effect"
 * import { type Job, WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const letters = yield* Queue.unbounded<Job.DeadLetter>()
 *   const pool = yield* WorkerPool.make({ concurrency: 1, deadLetters: letters })
 *   yield* Effect.exit(WorkerPool.run(pool, Effect.fail("bad payload"), { id: "j1" }))
 *   const letter = yield* Queue.take(letters)
 *   assert.strictEqual(letter.jobId, "j1")
 *   assert.strictEqual(letter.status, "failed")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface DeadLetter {
  readonly pool: string
  readonly jobId: string
  readonly status: Outcome.DeadLetterStatus
  readonly cause: Cause.Cause<unknown>
  readonly attempts: number
  readonly metadata: Readonly<Record<string, unknown>> | undefined
  readonly submittedAt: number
  readonly startedAt: number | undefined
  readonly endedAt: number
}

/**
 * The handle of a submitted job.
 *
 * - `await`: the job's value, or its own error `E`, or a {@link JobError} (timed out, cancelled,
 *   interrupted, abandoned, dropped). A defect in the job is re-raised as the same defect.
 * - `exit`: the same as an `Exit`, never failing.
 * - `cancel`: a queued job ends `cancelled` at once; a running one is interrupted and `cancel` returns when
 *   it has stopped (finalizers included), ending `interrupted`. No effect on a finished job.
 * - `status`: where the job is now.
 * - `attempts`: how many times the job has started (more than 1 after retries).
 * - `progress`: the last value the job reported with `Job.Current`'s `progress` (none yet: `Option.none()`).
 * - `progressUpdates`: the job's progress as a stream (rate-limited like the `Progress` events, the last
 *   value always delivered), starting with the last value reported so far; it ends when the job ends.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   const handle = yield* WorkerPool.submit(pool, Effect.succeed(42), { id: "answer" })
 *   assert.strictEqual(handle.id, "answer")
 *   assert.strictEqual(yield* handle.await, 42)
 *   assert.strictEqual(yield* handle.status, "succeeded")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface JobHandle<A, E = never> {
  readonly [TypeId]: TypeId
  readonly id: string
  readonly metadata: Readonly<Record<string, unknown>> | undefined
  readonly await: Effect.Effect<A, E | JobError>
  readonly exit: Effect.Effect<Exit.Exit<A, E | JobError>>
  readonly cancel: Effect.Effect<void>
  readonly status: Effect.Effect<Status>
  readonly attempts: Effect.Effect<number>
  readonly progress: Effect.Effect<Option.Option<unknown>>
  readonly progressUpdates: Stream.Stream<unknown>
}

/**
 * Tells whether a value is a {@link JobHandle}.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { Job, WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   const handle = yield* WorkerPool.submit(pool, Effect.void)
 *   assert.ok(Job.isJobHandle(handle))
 *   assert.ok(!Job.isJobHandle({ id: "x" }))
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isJobHandle = (u: unknown): u is JobHandle<unknown, unknown> => hasProperty(u, TypeId)

/**
 * What a running job knows of itself, from {@link Current}.
 *
 * - `id`, `pool`, `metadata`: as submitted.
 * - `attempt`: 1 for the first run, 2 for the first retry, …
 * - `deadline`: when this attempt is stopped (epoch milliseconds, from the job's `timeout`, the pool's
 *   `timeout` and the job's `deadline`, whichever comes first), or `undefined` without any.
 * - `progress(value)`: reports progress. The value is kept on the handle (`handle.progress`) and sent as a
 *   `Progress` event and on `handle.progressUpdates`, at most once per `progressInterval` of the pool
 *   (default 100 ms); a value held back by the interval is sent when the job ends, before its outcome.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { Job, WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "reports", concurrency: 1 })
 *   const job = Effect.gen(function*() {
 *     const info: Job.Info = yield* Job.Current
 *     yield* info.progress(0.5)
 *     return `${info.pool}/${info.id} attempt ${info.attempt}`
 *   })
 *   assert.strictEqual(yield* WorkerPool.run(pool, job, { id: "r1" }), "reports/r1 attempt 1")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Info {
  readonly id: string
  readonly pool: string
  readonly attempt: number
  readonly metadata: Readonly<Record<string, unknown>> | undefined
  readonly deadline: number | undefined
  readonly progress: (value: unknown) => Effect.Effect<void>
}

/**
 * The running job, inside every job a pool runs: `yield* Job.Current` gives its {@link Info}. The pool
 * provides it, so a job that reads it needs nothing more from its submitter (`submit` and `run` remove it
 * from the job's requirements).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { Job, WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   const handle = yield* WorkerPool.submit(
 *     pool,
 *     Effect.flatMap(Effect.service(Job.Current), (job) => Effect.as(job.progress("halfway"), job.id)),
 *     { id: "import-7" }
 *   )
 *   assert.strictEqual(yield* handle.await, "import-7")
 *   const last = yield* handle.progress
 *   assert.strictEqual(last._tag === "Some" && last.value, "halfway")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Current extends Context.Service<Current, Info>()("@fiberpool/core/Job/Current") {}
