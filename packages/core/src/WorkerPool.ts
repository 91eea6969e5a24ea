/**
 * The worker pool: jobs are Effect programs, run by at most `concurrency` fibers, fed by a bounded queue,
 * shut down gracefully when the pool's scope closes.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { Pipeable } from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { conflictingBoundaries } from "./internal/observe.ts"
import {
  noJobOptions,
  type ResolvedJobOptions,
  resolveJobOptions,
  resolvePoolOptions,
  resolveShutdown
} from "./internal/options.ts"
import { PoolImpl, TypeId as TypeId_ } from "./internal/pool.ts"
import type * as Job from "./Job.ts"
import type * as JobEvent from "./JobEvent.ts"
import { InvalidOptions, PoolError } from "./PoolError.ts"
import type { JobError } from "./PoolError.ts"
import type { Options } from "./PoolOptions.ts"
import type * as Shutdown from "./Shutdown.ts"
import { CurrentController, logReport } from "./Shutdown.ts"
import * as Validation from "./Validation.ts"

/**
 * @category type ids
 * @since 0.1.0
 */
export const TypeId: TypeId = TypeId_

/**
 * @category type ids
 * @since 0.1.0
 */
export type TypeId = typeof TypeId_

export {
  /**
   * What `submit` does when the queue is full: see `PoolOptions.Backpressure`.
   *
   * @since 0.1.0
   */
  type Backpressure,
  /**
   * Reads pool options from configuration: see `PoolOptions.config`.
   *
   * @since 0.1.0
   */
  config,
  /**
   * Options of a pool: see `PoolOptions.Options`.
   *
   * @since 0.1.0
   */
  type Options
} from "./PoolOptions.ts"

/**
 * A running pool. Build one with {@link make} (scoped) or {@link layer}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool: WorkerPool.WorkerPool = yield* WorkerPool.make({ name: "mailer", concurrency: 3 })
 *   console.log(pool.name, pool.concurrency) // => mailer 3
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface WorkerPool extends Pipeable {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly concurrency: number
  readonly capacity: number
}

/**
 * A snapshot of a pool: what waits, what runs, and the lifetime counters.
 *
 * - `queued`: accepted jobs not started; `running`: jobs started and not finished; `waiting`: submitters
 *   suspended on a full queue (not accepted yet).
 * - `closed`: shutdown has begun; `paused`, `intakePaused`: see {@link pause}.
 * - `deadLettersDropped`: dead letters a full bounded `deadLetters` queue refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.run(pool, Effect.succeed(1))
 *   const stats: WorkerPool.Stats = yield* WorkerPool.stats(pool)
 *   assert.strictEqual(stats.succeeded, 1)
 *   assert.strictEqual(stats.running, 0)
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Stats extends Shutdown.Totals {
  readonly paused: boolean
  readonly intakePaused: boolean
  readonly name: string
  readonly concurrency: number
  readonly capacity: number
  readonly queued: number
  readonly running: number
  readonly waiting: number
  readonly closed: boolean
  readonly deadLettersDropped: number
}

/**
 * Tells whether a value is a {@link WorkerPool}.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   assert.ok(WorkerPool.isWorkerPool(pool))
 *   assert.ok(!WorkerPool.isWorkerPool({ concurrency: 1 }))
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isWorkerPool = (u: unknown): u is WorkerPool => hasProperty(u, TypeId)

/**
 * The implementation behind the public interface: every `WorkerPool` is made by {@link make}, so the check
 * only fails for a value from untyped code (a defect, like any call on a value of the wrong type).
 */
const impl = (self: WorkerPool): PoolImpl => {
  if (self instanceof PoolImpl) return self
  throw new TypeError(`expected a WorkerPool, got ${Validation.render(self)}`)
}

/** `instanceof` first: the `TypeId` lookup of `isWorkerPool` showed in profiles of the hot path. */
const isDataFirst = (args: IArguments): boolean =>
  args[0] instanceof PoolImpl || isWorkerPool(args[0]) || Effect.isEffect(args[1])

/**
 * The rejection of a call whose pool or job is not what the types say (a value from untyped code): a typed
 * `PoolError` naming the argument, rather than a defect from deep inside the runtime.
 */
const badArguments = (self: unknown, effect: unknown): Exit.Exit<never, PoolError> => {
  if (!(self instanceof PoolImpl)) {
    return Exit.fail(new PoolError({ reason: Validation.invalid("pool", self, "a WorkerPool") }))
  }
  self.countRejection("InvalidOptions")
  return Exit.fail(new PoolError({ reason: Validation.invalid("effect", effect, "an Effect (the job)") }))
}

/**
 * Creates a pool whose lifetime is the current scope. Closing the scope is the graceful shutdown, with the
 * pool's `shutdown` options. A pool made while `Shutdown.CurrentController` holds a controller also shuts
 * down when that controller asks (see `Shutdown.Controller`).
 *
 * Invalid options fail with `InvalidOptions`, naming the option and the value.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 4, capacity: 100 })
 *   const results = yield* Effect.forEach([1, 2, 3], (n) => WorkerPool.run(pool, Effect.succeed(n * 10)), {
 *     concurrency: "unbounded"
 *   })
 *   console.log(results) // => [ 10, 20, 30 ]
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (options: Options): Effect.Effect<WorkerPool, InvalidOptions, Scope.Scope> =>
  Effect.suspend(() => {
    const resolved = resolvePoolOptions(options)
    if (Result.isFailure(resolved)) return Exit.fail(resolved.failure)
    const options_ = resolved.success
    return Effect.acquireRelease(
      Effect.flatMap(Effect.context<never>(), (context) => {
        const conflict = conflictingBoundaries(context, options_.name, options_.durationBoundaries)
        if (conflict !== undefined) {
          return Exit.fail(
            Validation.invalid(
              "durationBoundaries",
              options_.durationBoundaries,
              `the boundaries of the live pool named ${Validation.render(options_.name)} (${conflict.join(", ")})`
            )
          )
        }
        const pool = new PoolImpl(options_, context)
        const controller = Context.get(context, CurrentController)
        return Exit.succeed({
          pool,
          controller,
          unfollow: controller === undefined ? undefined : pool.follow(controller)
        })
      }),
      ({ controller, pool, unfollow }) =>
        Effect.ensuring(
          pool.shutdown(pool.options.shutdown).pipe(
            // A shutdown that an application-wide controller started (a signal) ends with the report in the
            // application's log: the program that would have printed results was interrupted.
            Effect.tap((report) =>
              controller !== undefined && controller.phase !== "running" ? logReport(report) : Effect.void
            )
          ),
          Effect.sync(() => unfollow?.())
        )
    ).pipe(Effect.map(({ pool }) => pool))
  })

/**
 * Submits a job and returns its handle at once (or, under `"suspend"`, as soon as there is room in the
 * queue).
 *
 * **Details**
 *
 * The job runs with the submitter's services and tracing span. It fails with `PoolError` when it is not
 * accepted: `PoolClosed`, `QueueFull` (under `"fail"`), `DuplicateJobId`, or `InvalidOptions` (a bad job
 * option, such as a deadline in the past).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 2 })
 *   const handle = yield* WorkerPool.submit(pool, Effect.succeed("done"), { id: "report-1" })
 *   assert.strictEqual(yield* handle.await, "done")
 *   // data-last
 *   const other = yield* pool.pipe(WorkerPool.submit(Effect.succeed(1)))
 *   assert.strictEqual(yield* other.await, 1)
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const submit: {
  /**
   * Data-last form of {@link submit}.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { WorkerPool } from "@fiberpool/core"
   *
   * const program = Effect.gen(function*() {
   *   const pool = yield* WorkerPool.make({ concurrency: 1 })
   *   const handle = yield* pool.pipe(WorkerPool.submit(Effect.succeed(7)))
   *   console.log(yield* handle.await) // => 7
   * })
   * await Effect.runPromise(Effect.scoped(program))
   * ```
   *
   * @category combinators
   * @since 0.1.0
   */
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: Job.Options<NoInfer<E>>
  ): (self: WorkerPool) => Effect.Effect<Job.JobHandle<A, E>, PoolError, Exclude<R, Job.Current>>
  /**
   * Data-first form of {@link submit}.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { WorkerPool } from "@fiberpool/core"
   *
   * const program = Effect.gen(function*() {
   *   const pool = yield* WorkerPool.make({ concurrency: 1 })
   *   const handle = yield* WorkerPool.submit(pool, Effect.succeed(7))
   *   console.log(yield* handle.await) // => 7
   * })
   * await Effect.runPromise(Effect.scoped(program))
   * ```
   *
   * @category combinators
   * @since 0.1.0
   */
  <A, E, R>(
    self: WorkerPool,
    effect: Effect.Effect<A, E, R>,
    options?: Job.Options<NoInfer<E>>
  ): Effect.Effect<Job.JobHandle<A, E>, PoolError, Exclude<R, Job.Current>>
} = dual(
  isDataFirst,
  <A, E, R>(
    self: WorkerPool,
    effect: Effect.Effect<A, E, R>,
    options?: Job.Options<NoInfer<E>>
  ): Effect.Effect<Job.JobHandle<A, E>, PoolError, Exclude<R, Job.Current>> =>
    makeSubmission(SubmitProto, self, effect, options)
)

/** A submission as an effect of its own: one object per call (no closure), run in the submitting fiber. */
interface Submission extends Effect.Effect<Job.JobHandle<any, any>, PoolError> {
  readonly self: WorkerPool
  readonly effect: Effect.Effect<any, any, any>
  readonly options: Job.Options<any> | undefined
}

/** Runs a submission in the submitting fiber: `submit` gives the handle, `run` waits for the result. */
const submissionProto = (label: string, await_: boolean) =>
  Effectable.Prototype<Submission>({
    label,
    evaluate(fiber) {
      const { effect, options, self } = this
      if (!(self instanceof PoolImpl) || !Effect.isEffect(effect)) return badArguments(self, effect)
      // no options (the common case): nothing to resolve or reject
      const resolved = options === undefined ? noJobOptions : jobOptions(self, fiber, options)
      if (resolved !== noJobOptions && Exit.isExit(resolved)) return resolved
      return await_
        ? self.submitAndAwait(effect, resolved, fiber.context)
        : self.submit(effect, resolved, fiber.context)
    }
  })

const SubmitProto = submissionProto("WorkerPool.submit", false)
const RunProto = submissionProto("WorkerPool.run", true)

const makeSubmission = (
  proto: object,
  self: WorkerPool,
  effect: Effect.Effect<any, any, any>,
  options: Job.Options<any> | undefined
) => {
  // `Object.create` is untyped: the fields written next make it a `Submission`
  const submission = Object.create(proto)
  submission.self = self
  submission.effect = effect
  submission.options = options
  return submission
}

/** A job's options, resolved against the submitter's clock, or the rejection of invalid ones. */
const jobOptions = (
  pool: PoolImpl,
  fiber: Fiber.Fiber<unknown, unknown>,
  options: Job.Options<any>
): ResolvedJobOptions | Exit.Exit<never, PoolError> => {
  const resolved = resolveJobOptions(options, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
  if (Result.isSuccess(resolved)) return resolved.success
  pool.countRejection("InvalidOptions")
  return Exit.fail(new PoolError({ reason: resolved.failure }))
}

/**
 * Submits a job and waits for its result: `submit` then `handle.await`.
 *
 * **Details**
 *
 * Interrupting the caller cancels the job: a queued job ends `cancelled`, a running one is interrupted and
 * the caller's interruption completes once the job has stopped.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 2 })
 *   const sum = yield* WorkerPool.run(pool, Effect.succeed(1 + 1))
 *   assert.strictEqual(sum, 2)
 *   const error = yield* Effect.flip(WorkerPool.run(pool, Effect.fail("bad input" as const)))
 *   assert.strictEqual(error, "bad input")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const run: {
  /**
   * Data-last form of {@link run}.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { WorkerPool } from "@fiberpool/core"
   *
   * const program = Effect.gen(function*() {
   *   const pool = yield* WorkerPool.make({ concurrency: 1 })
   *   console.log(yield* pool.pipe(WorkerPool.run(Effect.succeed("ok")))) // => ok
   * })
   * await Effect.runPromise(Effect.scoped(program))
   * ```
   *
   * @category combinators
   * @since 0.1.0
   */
  <A, E, R>(
    effect: Effect.Effect<A, E, R>,
    options?: Job.Options<NoInfer<E>>
  ): (self: WorkerPool) => Effect.Effect<A, E | JobError | PoolError, Exclude<R, Job.Current>>
  /**
   * Data-first form of {@link run}.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { WorkerPool } from "@fiberpool/core"
   *
   * const program = Effect.gen(function*() {
   *   const pool = yield* WorkerPool.make({ concurrency: 1 })
   *   console.log(yield* WorkerPool.run(pool, Effect.succeed("ok"))) // => ok
   * })
   * await Effect.runPromise(Effect.scoped(program))
   * ```
   *
   * @category combinators
   * @since 0.1.0
   */
  <A, E, R>(
    self: WorkerPool,
    effect: Effect.Effect<A, E, R>,
    options?: Job.Options<NoInfer<E>>
  ): Effect.Effect<A, E | JobError | PoolError, Exclude<R, Job.Current>>
} = dual(
  isDataFirst,
  <A, E, R>(
    self: WorkerPool,
    effect: Effect.Effect<A, E, R>,
    options?: Job.Options<NoInfer<E>>
  ): Effect.Effect<A, E | JobError | PoolError, Exclude<R, Job.Current>> =>
    makeSubmission(RunProto, self, effect, options)
)

/**
 * Finds a live (queued or running) job by its id, custom or generated: its handle, to look at or `cancel`.
 *
 * **Details**
 *
 * A job that has ended, or a submitter still waiting for room (not accepted yet), is not found. A custom id
 * is a lookup; a generated one a scan of the live jobs (meant for an operator's action, not a hot path).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Option } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.submit(pool, Effect.never, { id: "export-1" })
 *   const found = yield* WorkerPool.find(pool, "export-1")
 *   assert.ok(Option.isSome(found))
 *   yield* found.value.cancel
 *   assert.ok(Option.isNone(yield* WorkerPool.find(pool, "export-1")))
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const find = (self: WorkerPool, id: string): Effect.Effect<Option.Option<Job.JobHandle<unknown, unknown>>> =>
  Effect.sync(() => Option.fromUndefinedOr(impl(self).find(id)))

/**
 * The live jobs' handles, up to `limit` (default 100): the running ones first (oldest start first), then the
 * queued ones in the order they will start.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   for (const id of ["a", "b", "c"]) yield* WorkerPool.submit(pool, Effect.never, { id })
 *   const live = yield* WorkerPool.live(pool, { limit: 2 })
 *   assert.deepStrictEqual(live.map((handle) => handle.id), ["a", "b"])
 *   yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0, interruptTimeout: 0 })
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const live = (
  self: WorkerPool,
  options?: { readonly limit?: number | undefined }
): Effect.Effect<ReadonlyArray<Job.JobHandle<unknown, unknown>>> =>
  Effect.sync(() => impl(self).live(Math.max(0, options?.limit ?? 100)))

/**
 * Reads the pool's current {@link Stats}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.run(pool, Effect.void)
 *   const { submitted, succeeded } = yield* WorkerPool.stats(pool)
 *   console.log(submitted, succeeded) // => 1 1
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const stats = (self: WorkerPool): Effect.Effect<Stats> => Effect.sync(() => impl(self).snapshot())

/**
 * Subscribes to the pool's job events now, and returns them as a stream.
 *
 * **Details**
 *
 * The subscription is registered before this effect returns, so no event that happens afterwards is missed,
 * and it lasts as long as the current scope. Each subscriber has its own unbounded buffer: a slow reader
 * never blocks the pool or other readers. The stream ends once the pool's shutdown has finished and every
 * buffered event has been read.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Stream } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   const events = yield* WorkerPool.subscribe(pool)
 *   yield* Effect.exit(WorkerPool.run(pool, Effect.fail("nope"), { id: "bad" }))
 *   yield* WorkerPool.shutdown(pool)
 *   const tags = yield* Stream.runCollect(Stream.map(events, (event) => event._tag))
 *   assert.deepStrictEqual(tags, ["Submitted", "Started", "AttemptFailed", "Failed"])
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const subscribe = (self: WorkerPool): Effect.Effect<Stream.Stream<JobEvent.JobEvent>, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.map(Queue.unbounded<JobEvent.JobEvent, Cause.Done>(), (queue) => {
      const unsubscribe = impl(self).subscribe(queue)
      return { queue, unsubscribe }
    }),
    ({ queue, unsubscribe }) => Effect.andThen(Effect.sync(unsubscribe), Queue.shutdown(queue))
  ).pipe(Effect.map(({ queue }) => Stream.fromQueue(queue)))

/**
 * The pool's job events as a stream that subscribes when it starts (see {@link subscribe}, which subscribes
 * at once).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Fiber, Stream } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 2 })
 *   const done = yield* WorkerPool.events(pool).pipe(
 *     Stream.filter((event) => event._tag === "Succeeded"),
 *     Stream.take(2),
 *     Stream.runCollect,
 *     Effect.forkChild({ startImmediately: true })
 *   )
 *   yield* Effect.yieldNow
 *   yield* WorkerPool.run(pool, Effect.void)
 *   yield* WorkerPool.run(pool, Effect.void)
 *   assert.strictEqual((yield* Fiber.join(done)).length, 2)
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const events = (self: WorkerPool): Stream.Stream<JobEvent.JobEvent> => Stream.unwrap(subscribe(self))

/**
 * Waits until no job is queued or running. The pool stays open: more jobs can be submitted afterwards.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 2 })
 *   for (let i = 0; i < 5; i++) yield* WorkerPool.submit(pool, Effect.sleep("5 millis"))
 *   yield* WorkerPool.awaitIdle(pool)
 *   assert.strictEqual((yield* WorkerPool.stats(pool)).succeeded, 5)
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const awaitIdle = (self: WorkerPool): Effect.Effect<void> => impl(self).awaitIdle

/**
 * Pauses the pool. By default dispatch pauses: running jobs go on, queued jobs wait, submissions are still
 * accepted (until the queue is full). With `{ intake: true }` intake pauses instead: the queue counts as
 * full, so submissions meet the backpressure strategy (wait, fail, drop, slide) while queued jobs still run.
 * A shutdown in `"drain"` mode resumes a paused dispatch.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 2 })
 *   yield* WorkerPool.pause(pool)
 *   const handle = yield* WorkerPool.submit(pool, Effect.succeed("later"))
 *   assert.strictEqual(yield* handle.status, "queued")
 *   yield* WorkerPool.resume(pool)
 *   assert.strictEqual(yield* handle.await, "later")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const pause = (self: WorkerPool, options?: { readonly intake?: boolean | undefined }): Effect.Effect<void> =>
  Effect.sync(() => impl(self).pause(options?.intake === true))

/**
 * Resumes what {@link pause} paused (dispatch by default, or intake with `{ intake: true }`).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1, backpressure: "fail" })
 *   yield* WorkerPool.pause(pool, { intake: true })
 *   const error = yield* Effect.flip(WorkerPool.submit(pool, Effect.void))
 *   assert.strictEqual(error.reason._tag, "QueueFull")
 *   yield* WorkerPool.resume(pool, { intake: true })
 *   yield* WorkerPool.run(pool, Effect.void)
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const resume = (self: WorkerPool, options?: { readonly intake?: boolean | undefined }): Effect.Effect<void> =>
  Effect.sync(() => impl(self).resume(options?.intake === true))

/**
 * Changes how many jobs run at once. Growing starts queued jobs at once; shrinking lets running jobs finish
 * (it interrupts nothing) and starts no job until fewer than the new limit run. A non-positive or
 * non-integer size fails with `InvalidOptions`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.resize(pool, 8)
 *   assert.strictEqual(pool.concurrency, 8)
 *   const error = yield* Effect.flip(WorkerPool.resize(pool, 0))
 *   assert.strictEqual(error.option, "concurrency")
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const resize = (self: WorkerPool, concurrency: number): Effect.Effect<void, InvalidOptions> =>
  Effect.suspend(() => {
    if (typeof concurrency !== "number" || !Number.isSafeInteger(concurrency) || concurrency < 1) {
      return Exit.fail(
        new InvalidOptions({ option: "concurrency", value: String(concurrency), expected: "a positive integer" })
      )
    }
    impl(self).resize(concurrency)
    return Effect.void
  })

/**
 * Shuts the pool down and returns its `Shutdown.Report`. Options override the pool's shutdown defaults.
 *
 * **Details**
 *
 * Idempotent: a second call, or the scope closing afterwards, returns the same report. A second call can
 * make a running shutdown more forceful: `mode: "cancel"` cancels what is still queued, and a grace period
 * that has already run out (for example `gracePeriod: 0`) interrupts running jobs now. It never extends a
 * shutdown.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.submit(pool, Effect.never, { id: "stuck" })
 *   const report = yield* WorkerPool.shutdown(pool, { gracePeriod: "10 millis" })
 *   assert.deepStrictEqual(report.jobs.interrupted, ["stuck"])
 *   assert.ok(report.graceExpired)
 *   assert.strictEqual(yield* WorkerPool.shutdown(pool), report)
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category resource management
 * @since 0.1.0
 */
export const shutdown: (
  self: WorkerPool,
  options?: Shutdown.Options
) => Effect.Effect<Shutdown.Report, InvalidOptions> = Effect.fn("WorkerPool.shutdown")(function*(
  self: WorkerPool,
  options?: Shutdown.Options
) {
  const pool = impl(self)
  const resolved = resolveShutdown("shutdown", options, pool.options.shutdown)
  if (Result.isFailure(resolved)) return yield* Exit.fail(resolved.failure)
  return yield* pool.shutdown(resolved.success)
})

/**
 * The service key of an application's pool, provided by {@link layer}. An app with several pools defines
 * one key per pool: `Layer.effect(MyPool, WorkerPool.make(options))`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.Service
 *   return yield* WorkerPool.run(pool, Effect.succeed("from the app's pool"))
 * })
 * const result = await Effect.runPromise(
 *   program.pipe(Effect.provide(WorkerPool.layer({ concurrency: 2 })))
 * )
 * console.log(result) // => from the app's pool
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Service extends Context.Service<Service, WorkerPool>()("@fiberpool/core/WorkerPool") {}

/**
 * A layer that provides {@link Service}: the pool lives as long as the layer, and is shut down gracefully
 * when the layer's scope closes (for example when `NodeRuntime.runMain` receives SIGTERM).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const PoolLive = WorkerPool.layer({ name: "images", concurrency: 4, capacity: 100 })
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.Service
 *   console.log(pool.name) // => images
 * })
 * await Effect.runPromise(Effect.provide(program, PoolLive))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<Service, InvalidOptions> => Layer.effect(Service, make(options))

/**
 * A layer that provides {@link Service} from a `Config` of options, such as {@link config}.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect, Layer } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const PoolLive = WorkerPool.layerConfig(WorkerPool.config({ concurrency: 2 })).pipe(
 *   Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { CONCURRENCY: "6" } })))
 * )
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.Service
 *   return pool.concurrency
 * })
 * console.log(await Effect.runPromise(Effect.provide(program, PoolLive))) // => 6
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerConfig = (
  options: Config.Config<Options>
): Layer.Layer<Service, InvalidOptions | Config.ConfigError> => Layer.effect(Service, Effect.flatMap(options, make))
