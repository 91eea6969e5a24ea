/**
 * The typed errors of `@fiberpool/core`.
 *
 * Two families, each grouped under one tagged error with a `reason`:
 *
 * - {@link PoolError}: a submission that the pool did not accept (closed, full, duplicate id, invalid options).
 * - {@link JobError}: an accepted job that ended without a result of its own (timed out, cancelled,
 *   interrupted, abandoned) or a job dropped under the `"dropping"` strategy.
 *
 * A job's own error type `E` is never wrapped: `handle.await` fails with `E | JobError`.
 *
 * All errors are `Schema.TaggedError` classes, so they encode to plain data and can cross a worker-thread
 * boundary or be stored.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * An option passed to a constructor or to `submit` was rejected. Names the option and the value.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const error = await Effect.runPromise(
 *   Effect.flip(Effect.scoped(WorkerPool.make({ concurrency: 0 })))
 * )
 * assert.strictEqual(error._tag, "InvalidOptions")
 * assert.strictEqual(error.option, "concurrency")
 * console.log(error.message) // => Invalid option "concurrency": expected a positive integer, got 0
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>()("InvalidOptions", {
  option: Schema.String,
  value: Schema.String,
  expected: Schema.String
}) {
  override get message(): string {
    return `Invalid option "${this.option}": expected ${this.expected}, got ${this.value}`
  }
}

/**
 * The pool no longer accepts jobs: its shutdown has begun.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.shutdown(pool)
 *   const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void))
 *   assert.strictEqual(error.reason._tag, "PoolClosed")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolClosed extends Schema.TaggedError<PoolClosed>()("PoolClosed", {}) {
  override get message(): string {
    return "The pool is shutting down and accepts no new jobs"
  }
}

/**
 * The queue was full and the pool's backpressure strategy is `"fail"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 0, backpressure: "fail" })
 *   yield* WorkerPool.submit(pool, Effect.never)
 *   const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void))
 *   assert.strictEqual(error.reason._tag, "QueueFull")
 *   yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class QueueFull extends Schema.TaggedError<QueueFull>()("QueueFull", {
  capacity: Schema.Number
}) {
  override get message(): string {
    return `The queue is full (capacity ${this.capacity})`
  }
}

/**
 * A job was submitted with an id that a queued or running job already has.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.submit(pool, Effect.never, { id: "invoice-7" })
 *   const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void, { id: "invoice-7" }))
 *   assert.strictEqual(error.reason._tag, "DuplicateJobId")
 *   yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class DuplicateJobId extends Schema.TaggedError<DuplicateJobId>()("DuplicateJobId", {
  jobId: Schema.String
}) {
  override get message(): string {
    return `A live job already has the id "${this.jobId}"`
  }
}

/**
 * A submission the pool did not accept. Match one reason with
 * `Effect.catchReason("PoolError", "QueueFull", ...)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.shutdown(pool)
 *   return yield* WorkerPool.submit(pool, Effect.succeed(1)).pipe(
 *     Effect.as("accepted"),
 *     Effect.catchReason("PoolError", "PoolClosed", () => Effect.succeed("closed"))
 *   )
 * })
 * assert.strictEqual(await Effect.runPromise(Effect.scoped(program)), "closed")
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolError extends Schema.TaggedError<PoolError>()("PoolError", {
  reason: Schema.Union([PoolClosed, QueueFull, DuplicateJobId, InvalidOptions])
}) {
  override get message(): string {
    return this.reason.message
  }
}

/**
 * The job ran past its timeout or deadline and was interrupted. `timeoutMillis` is the budget it had when it
 * started.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   const error = yield* Effect.flip(WorkerPool.run(pool, Effect.never, { timeout: "10 millis" }))
 *   assert.ok(error._tag === "JobError" && error.reason._tag === "JobTimedOut")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobTimedOut extends Schema.TaggedError<JobTimedOut>()("JobTimedOut", {
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `The job timed out after ${this.timeoutMillis} ms`
  }
}

/**
 * The job was accepted but never started. `by` says why: its handle was cancelled, it was pushed out of a
 * full queue by a newer job (`"sliding"`), or the pool shut down before it could start.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
 *   const queued = yield* WorkerPool.submit(pool, Effect.void)
 *   yield* queued.cancel
 *   const error = yield* Effect.flip(queued.await)
 *   assert.ok(error._tag === "JobError" && error.reason._tag === "JobCancelled")
 *   assert.strictEqual(error.reason.by, "handle")
 *   yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobCancelled extends Schema.TaggedError<JobCancelled>()("JobCancelled", {
  by: Schema.Literals(["handle", "sliding", "shutdown"])
}) {
  override get message(): string {
    return this.by === "handle"
      ? "The job was cancelled before it started"
      : this.by === "sliding"
      ? "The job was pushed out of the full queue by a newer job before it started"
      : "The pool shut down before the job started"
  }
}

/**
 * The job was running and was interrupted: cancelled through its handle, or stopped by the end of the
 * shutdown grace period.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   const handle = yield* WorkerPool.submit(pool, Effect.never)
 *   yield* Effect.yieldNow
 *   yield* handle.cancel
 *   const error = yield* Effect.flip(handle.await)
 *   assert.ok(error._tag === "JobError" && error.reason._tag === "JobInterrupted")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobInterrupted extends Schema.TaggedError<JobInterrupted>()("JobInterrupted", {}) {
  override get message(): string {
    return "The job was interrupted while running"
  }
}

/**
 * The job did not stop within the shutdown's interrupt bound after it was interrupted (an uninterruptible
 * region or a hung finalizer). Shutdown stopped waiting for it; it may still be running.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   const handle = yield* WorkerPool.submit(pool, Effect.uninterruptible(Effect.sleep("1 second")))
 *   yield* Effect.yieldNow
 *   const report = yield* WorkerPool.shutdown(pool, { gracePeriod: 0, interruptTimeout: "10 millis" })
 *   assert.deepStrictEqual(report.jobs.abandoned, [handle.id])
 *   const error = yield* Effect.flip(handle.await)
 *   assert.ok(error._tag === "JobError" && error.reason._tag === "JobAbandoned")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobAbandoned extends Schema.TaggedError<JobAbandoned>()("JobAbandoned", {
  interruptTimeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `The job ignored interruption for ${this.interruptTimeoutMillis} ms and was abandoned`
  }
}

/**
 * The job was never accepted: the queue was full and the pool's backpressure strategy is `"dropping"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1, capacity: 0, backpressure: "dropping" })
 *   yield* WorkerPool.submit(pool, Effect.never)
 *   const dropped = yield* WorkerPool.submit(pool, Effect.void)
 *   const error = yield* Effect.flip(dropped.await)
 *   assert.ok(error._tag === "JobError" && error.reason._tag === "JobDropped")
 *   yield* WorkerPool.shutdown(pool, { gracePeriod: 0 })
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobDropped extends Schema.TaggedError<JobDropped>()("JobDropped", {
  capacity: Schema.Number
}) {
  override get message(): string {
    return `The job was dropped: the queue was full (capacity ${this.capacity})`
  }
}

/**
 * An accepted job that ended without its own result or error. Match one reason with
 * `Effect.catchReason("JobError", "JobTimedOut", ...)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   return yield* WorkerPool.run(pool, Effect.never, { timeout: "5 millis" }).pipe(
 *     Effect.catchReason("JobError", "JobTimedOut", (reason) => Effect.succeed(`gave up after ${reason.timeoutMillis} ms`))
 *   )
 * })
 * assert.strictEqual(await Effect.runPromise(Effect.scoped(program)), "gave up after 5 ms")
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobError extends Schema.TaggedError<JobError>()("JobError", {
  jobId: Schema.String,
  reason: Schema.Union([JobTimedOut, JobCancelled, JobInterrupted, JobAbandoned, JobDropped])
}) {
  override get message(): string {
    return `Job "${this.jobId}": ${this.reason.message}`
  }
}
