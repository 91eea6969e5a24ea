/**
 * CPU-bound jobs on worker threads, with the same contract as in-process jobs.
 *
 * A task is defined once with Schemas for its input, output and typed error ({@link defineTask}), shared by
 * the main thread and a worker file that serves it (`NodeThreadRunner.serve`). {@link make} starts the
 * threads and a core `WorkerPool` whose concurrency is the number of threads: every submitted task is an
 * ordinary job of that pool (bounded queue, backpressure, timeouts, deadlines, retries, handles, shutdown
 * report), whose program takes an idle thread, posts the encoded input and decodes the reply.
 *
 * - **Preemption**: when a running job is interrupted (timeout, deadline, cancel, forced shutdown), the thread
 *   that runs it is terminated and a fresh one started at once, so no later job waits behind abandoned work.
 * - **Isolation**: a thread that crashes (an uncaught exception, `process.exit`, out of memory under
 *   `resourceLimits`) fails only its job, with {@link ThreadCrashed}, and is replaced.
 *
 * @since 0.1.0
 */
import { type Job, PoolError, type Shutdown, WorkerPool } from "@fiberpool/core"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { hasProperty } from "effect/Predicate"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { availableParallelism } from "node:os"
import type { ResourceLimits, WorkerOptions } from "node:worker_threads"
import {
  collectTransferables,
  type CrashInfo,
  type DefectInfo,
  Reply,
  type ReplyKind,
  type Thread,
  ThreadSet
} from "./internal/threads.ts"

/**
 * @category type ids
 * @since 0.1.0
 */
export const TypeId: TypeId = "~@fiberpool/node/NodeWorkerPool"

/**
 * @category type ids
 * @since 0.1.0
 */
export type TypeId = "~@fiberpool/node/NodeWorkerPool"

/**
 * @category type ids
 * @since 0.1.0
 */
export const TaskTypeId: TaskTypeId = "~@fiberpool/node/NodeWorkerPool/Task"

/**
 * @category type ids
 * @since 0.1.0
 */
export type TaskTypeId = "~@fiberpool/node/NodeWorkerPool/Task"

// ---- Models ----

/**
 * A Schema that crosses the thread boundary: it encodes and decodes synchronously, without services.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { NodeWorkerPool } from "@fiberpool/node"
 *
 * const input: NodeWorkerPool.Codec = Schema.Struct({ n: Schema.Int })
 * console.log(input.ast._tag) // => Objects
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Codec = Schema.Codec<any, any, never, never>

/**
 * A CPU task: a name, and the Schemas of its input, output and typed error. The same value is imported by the
 * main thread (to submit it) and by the worker file (to serve it).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const Fib: NodeWorkerPool.Task<"fib", typeof Schema.Int, typeof Schema.Number, typeof Schema.Never> =
 *   NodeWorkerPool.defineTask({ name: "fib", input: Schema.Int, output: Schema.Number })
 * console.log(Fib.name) // => fib
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Task<
  out Name extends string,
  out Input extends Codec,
  out Output extends Codec,
  out Error extends Codec
> {
  readonly [TaskTypeId]: TaskTypeId
  readonly name: Name
  readonly input: Input
  readonly output: Output
  readonly error: Error
  /** Transfer the `ArrayBuffer`s of the encoded input and output instead of copying them. */
  readonly transfer: boolean
}

/**
 * Any {@link Task}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const tasks: ReadonlyArray<NodeWorkerPool.AnyTask> = [
 *   NodeWorkerPool.defineTask({ name: "a", input: Schema.String, output: Schema.String })
 * ]
 * console.log(tasks.length) // => 1
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type AnyTask = Task<string, Codec, Codec, Codec>

/**
 * The decoded input type of a task.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const Echo = NodeWorkerPool.defineTask({ name: "echo", input: Schema.String, output: Schema.String })
 * const input: NodeWorkerPool.Task.Input<typeof Echo> = "hello"
 * console.log(input) // => hello
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export declare namespace Task {
  /**
   * @category models
   * @since 0.1.0
   */
  export type Input<T extends AnyTask> = T["input"]["Type"]
  /**
   * @category models
   * @since 0.1.0
   */
  export type Output<T extends AnyTask> = T["output"]["Type"]
  /**
   * @category models
   * @since 0.1.0
   */
  export type Error<T extends AnyTask> = T["error"]["Type"]
}

/**
 * A thread pool. Build one with {@link make} (scoped) or {@link layer}. `pool` is the core `WorkerPool` that
 * dispatches its jobs: `WorkerPool.stats`, `WorkerPool.awaitIdle` and `WorkerPool.shutdown` work on it.
 *
 * @example
 * ```ts
 * // a sketch: it needs a worker file that serves the task (see NodeThreadRunner.serve)
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./worker.ts", import.meta.url), threads: 2 })
 *   console.log(threads.threads, (yield* WorkerPool.stats(threads.pool)).concurrency) // => 2 2
 * })
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface NodeWorkerPool {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly threads: number
  readonly pool: WorkerPool.WorkerPool
}

/**
 * The options of {@link make}: where the worker file is, how many threads, and every core pool option except
 * `concurrency` (which is the number of threads).
 *
 * - `worker`: the worker file (a `URL`, usually `new URL("./worker.ts", import.meta.url)`, or a path). It calls
 *   `NodeThreadRunner.serve`.
 * - `threads`: default `os.availableParallelism()`.
 * - `resourceLimits`: per-thread V8 limits (`maxOldGenerationSizeMb`, ...); a thread that exceeds them fails
 *   its job with {@link ThreadCrashed} (`reason: "outOfMemory"`) and is replaced.
 * - `workerOptions`: other `new Worker` options (`workerData`, `env`, `execArgv`, `stdout`, ...).
 * - `timeout`: as in the core pool, counted from the job's start. A job that overruns it is preempted.
 *
 * @example
 * ```ts
 * import type { NodeWorkerPool } from "@fiberpool/node"
 *
 * const options: NodeWorkerPool.Options = {
 *   worker: new URL("./worker.ts", import.meta.url),
 *   threads: 2,
 *   capacity: 100,
 *   timeout: "5 seconds",
 *   resourceLimits: { maxOldGenerationSizeMb: 256 },
 *   shutdown: { mode: "drain", gracePeriod: "10 seconds" }
 * }
 * console.log(options.threads) // => 2
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options extends Omit<WorkerPool.Options, "concurrency"> {
  readonly worker: URL | string
  readonly threads?: number | undefined
  readonly resourceLimits?: ResourceLimits | undefined
  readonly workerOptions?: Omit<WorkerOptions, "eval" | "resourceLimits"> | undefined
}

/**
 * A snapshot of the threads: `busy` (running a job), `idle` (started or starting, no job) and `respawned`
 * (threads started to replace one that was preempted or crashed).
 *
 * @example
 * ```ts
 * import type { NodeWorkerPool } from "@fiberpool/node"
 *
 * const stats: NodeWorkerPool.ThreadStats = { busy: 1, idle: 3, respawned: 0 }
 * console.log(stats.busy + stats.idle) // => 4
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface ThreadStats {
  readonly busy: number
  readonly idle: number
  readonly respawned: number
}

// ---- Errors ----

/**
 * The thread running a job died: an uncaught exception, `process.exit`, out of memory under
 * `resourceLimits`, or it could not start (the worker file failed to load). Only that job fails; the thread is
 * replaced. `reason` tells which; `exitCode` is the thread's exit code.
 *
 * @example
 * ```ts
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const error = new NodeWorkerPool.ThreadCrashed({
 *   task: "resize",
 *   threadId: 3,
 *   exitCode: 1,
 *   reason: "outOfMemory",
 *   message: "Worker terminated due to reaching memory limit: JS heap out of memory"
 * })
 * console.log(error._tag, error.reason) // => ThreadCrashed outOfMemory
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ThreadCrashed extends Schema.TaggedError<ThreadCrashed>()("ThreadCrashed", {
  task: Schema.String,
  threadId: Schema.Number,
  exitCode: Schema.Number,
  reason: Schema.Literals(["exited", "uncaughtException", "outOfMemory", "startFailed"]),
  message: Schema.String
}) {}

// ---- Guards ----

/**
 * Tells whether a value is a {@link NodeWorkerPool}.
 *
 * @example
 * ```ts
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * console.log(NodeWorkerPool.isNodeWorkerPool({ threads: 2 })) // => false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isNodeWorkerPool = (u: unknown): u is NodeWorkerPool => hasProperty(u, TypeId)

/**
 * Tells whether a value is a {@link Task}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const Echo = NodeWorkerPool.defineTask({ name: "echo", input: Schema.String, output: Schema.String })
 * console.log(NodeWorkerPool.isTask(Echo), NodeWorkerPool.isTask("echo")) // => true false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isTask = (u: unknown): u is AnyTask => hasProperty(u, TaskTypeId)

// ---- Constructors ----

/**
 * Defines a CPU task: its name (unique within a worker file) and the Schemas of its input, output and typed
 * error (default `Schema.Never`). Put it in a module imported by both the main thread and the worker file.
 *
 * **Details**
 *
 * The input is encoded on the main thread and decoded in the thread; the output and the error go back the
 * same way, so a `Schema.TaggedError` arrives as an instance of its class. The encoded values travel by
 * structured clone; with `transfer: true` the `ArrayBuffer`s they hold (typed arrays included) are moved
 * instead of copied: the sender's buffer is detached, and a retried job cannot resend it.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * class NegativeInput extends Schema.TaggedError<NegativeInput>()("NegativeInput", { n: Schema.Int }) {}
 *
 * const CountPrimes = NodeWorkerPool.defineTask({
 *   name: "countPrimes",
 *   input: Schema.Struct({ below: Schema.Int }),
 *   output: Schema.Int,
 *   error: NegativeInput
 * })
 * console.log(CountPrimes.name, CountPrimes.transfer) // => countPrimes false
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const defineTask = <
  const Name extends string,
  Input extends Codec,
  Output extends Codec,
  Error extends Codec = typeof Schema.Never
>(options: {
  readonly name: Name
  readonly input: Input
  readonly output: Output
  readonly error?: Error | undefined
  readonly transfer?: boolean | undefined
}): Task<Name, Input, Output, Error> => ({
  [TaskTypeId]: TaskTypeId,
  name: options.name,
  input: options.input,
  output: options.output,
  error: (options.error ?? Schema.Never) as Error,
  transfer: options.transfer ?? false
})

/**
 * Starts the threads and the pool that feeds them, for the lifetime of the current scope. It completes once
 * every thread has loaded the worker file, and fails with {@link ThreadCrashed} (`reason: "startFailed"`)
 * if one cannot.
 *
 * **Details**
 *
 * Closing the scope is the graceful shutdown of the core pool (its `shutdown` options: in-flight jobs finish
 * within the grace period, the queue is drained or cancelled), then the threads are terminated. Jobs still
 * running when the grace period ends are interrupted, which terminates their threads.
 *
 * @example
 * ```ts
 * // a sketch: it needs a worker file that serves `CountPrimes` (see NodeThreadRunner.serve)
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
 * const program = Effect.gen(function*() {
 *   const threads = yield* NodeWorkerPool.make({
 *     worker: new URL("./primes.worker.ts", import.meta.url),
 *     threads: 2,
 *     timeout: "10 seconds"
 *   })
 *   const counts = yield* Effect.forEach([1e6, 2e6], (n) => NodeWorkerPool.run(threads, CountPrimes, n), {
 *     concurrency: "unbounded"
 *   })
 *   console.log(counts) // => [ 78498, 148933 ]
 * })
 * Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (
  options: Options
): Effect.Effect<NodeWorkerPool, PoolError.InvalidOptions | ThreadCrashed, Scope.Scope> =>
  Effect.gen(function*() {
    const size = options.threads ?? availableParallelism()
    if (!Number.isInteger(size) || size < 1) {
      return yield* new PoolError.InvalidOptions({
        option: "threads",
        value: String(size),
        expected: "a positive integer"
      })
    }
    const name = options.name ?? "threads"
    const context = yield* Effect.context<never>()
    const threads = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const set = new ThreadSet({
          url: options.worker,
          size,
          worker: {
            ...options.workerOptions,
            ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits })
          },
          onChange: () => {}
        })
        set.fill()
        return set
      }),
      closeThreads
    )
    // the metrics read the thread set when scraped: no registry update per task
    const attributes = { pool: name }
    const noUpdate = { update: () => {}, modify: () => {} }
    Metric.registerUnsafe(Metric.withAttributes(metrics.busy, attributes), context, {
      get: () => ({ value: threads.busy }),
      ...noUpdate
    })
    Metric.registerUnsafe(Metric.withAttributes(metrics.idle, attributes), context, {
      get: () => ({ value: threads.live - threads.busy }),
      ...noUpdate
    })
    Metric.registerUnsafe(Metric.withAttributes(metrics.respawned, attributes), context, {
      get: () => ({ count: threads.respawned, incremental: false }),
      ...noUpdate
    })
    yield* Effect.callback<void>((resume) => threads.whenReady(() => resume(Effect.void)))
    if (threads.startFailure !== undefined) {
      return yield* new ThreadCrashed({ task: "(startup)", ...threads.startFailure })
    }
    const { worker: _worker, threads: _threads, resourceLimits: _limits, workerOptions: _workerOptions, ...core } =
      options
    const pool = yield* WorkerPool.make({ ...core, name, concurrency: size })
    const impl: PoolImpl = { [TypeId]: TypeId, name, threads: size, pool, set: threads, seq: 0 }
    return impl
  })

// ---- Combinators ----

/**
 * Submits a task with its input and returns the job's handle (the same `Job.JobHandle` as any core job).
 *
 * **Details**
 *
 * The handle's error is the task's typed error, {@link ThreadCrashed}, or a `JobError` (timed out, cancelled,
 * interrupted...). Job options (`id`, `timeout`, `deadline`, `retry`, `metadata`) are the core ones; a
 * timeout, deadline or cancel that hits the job while it runs terminates its thread. An input or output
 * that does not match its Schema, and a defect in the handler, are defects of the job (kept in its cause).
 * Fails with `PoolError` when the job is not accepted.
 *
 * @example
 * ```ts
 * // a sketch: it needs a worker file that serves `CountPrimes` (see NodeThreadRunner.serve)
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
 * const program = Effect.gen(function*() {
 *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./primes.worker.ts", import.meta.url) })
 *   const handle = yield* NodeWorkerPool.submit(threads, CountPrimes, 1_000_000, { timeout: "2 seconds" })
 *   console.log(yield* handle.await) // => 78498
 * })
 * Effect.runPromise(Effect.scoped(program))
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
   * // a sketch: it needs a worker file that serves `Echo` (see NodeThreadRunner.serve)
   * import { Effect, pipe, Schema } from "effect"
   * import { NodeWorkerPool } from "@fiberpool/node"
   *
   * const Echo = NodeWorkerPool.defineTask({ name: "echo", input: Schema.String, output: Schema.String })
   * const program = Effect.gen(function*() {
   *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./echo.worker.ts", import.meta.url) })
   *   const handle = yield* pipe(threads, NodeWorkerPool.submit(Echo, "hi"))
   *   console.log(yield* handle.await) // => hi
   * })
   * Effect.runPromise(Effect.scoped(program))
   * ```
   *
   * @category combinators
   * @since 0.1.0
   */
  <T extends AnyTask>(
    task: T,
    input: Task.Input<T>,
    options?: Job.Options<Task.Error<T> | ThreadCrashed>
  ): (
    self: NodeWorkerPool
  ) => Effect.Effect<Job.JobHandle<Task.Output<T>, Task.Error<T> | ThreadCrashed>, PoolError.PoolError>
  /**
   * Data-first form of {@link submit}.
   *
   * @example
   * ```ts
   * // a sketch: it needs a worker file that serves `Echo` (see NodeThreadRunner.serve)
   * import { Effect, Schema } from "effect"
   * import { NodeWorkerPool } from "@fiberpool/node"
   *
   * const Echo = NodeWorkerPool.defineTask({ name: "echo", input: Schema.String, output: Schema.String })
   * const program = Effect.gen(function*() {
   *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./echo.worker.ts", import.meta.url) })
   *   const handle = yield* NodeWorkerPool.submit(threads, Echo, "hi", { id: "echo-1" })
   *   console.log(handle.id, yield* handle.await) // => echo-1 hi
   * })
   * Effect.runPromise(Effect.scoped(program))
   * ```
   *
   * @category combinators
   * @since 0.1.0
   */
  <T extends AnyTask>(
    self: NodeWorkerPool,
    task: T,
    input: Task.Input<T>,
    options?: Job.Options<Task.Error<T> | ThreadCrashed>
  ): Effect.Effect<Job.JobHandle<Task.Output<T>, Task.Error<T> | ThreadCrashed>, PoolError.PoolError>
} = dual(
  (args) => isNodeWorkerPool(args[0]),
  <T extends AnyTask>(
    self: NodeWorkerPool,
    task: T,
    input: Task.Input<T>,
    options?: Job.Options<Task.Error<T> | ThreadCrashed>
  ): Effect.Effect<Job.JobHandle<Task.Output<T>, Task.Error<T> | ThreadCrashed>, PoolError.PoolError> =>
    WorkerPool.submit(self.pool, runOnThread(self as PoolImpl, task, input), options)
)

/**
 * Runs a task and waits for its result: {@link submit} then `handle.await`. Interrupting the caller cancels
 * the job (and, if it runs, terminates its thread).
 *
 * @example
 * ```ts
 * // a sketch: it needs a worker file that serves `CountPrimes` (see NodeThreadRunner.serve)
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
 * const program = Effect.gen(function*() {
 *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./primes.worker.ts", import.meta.url) })
 *   console.log(yield* NodeWorkerPool.run(threads, CountPrimes, 100)) // => 25
 * })
 * Effect.runPromise(Effect.scoped(program))
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
   * // a sketch: it needs a worker file that serves `CountPrimes` (see NodeThreadRunner.serve)
   * import { Effect, pipe, Schema } from "effect"
   * import { NodeWorkerPool } from "@fiberpool/node"
   *
   * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
   * const program = Effect.gen(function*() {
   *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./primes.worker.ts", import.meta.url) })
   *   console.log(yield* pipe(threads, NodeWorkerPool.run(CountPrimes, 100))) // => 25
   * })
   * Effect.runPromise(Effect.scoped(program))
   * ```
   *
   * @category combinators
   * @since 0.1.0
   */
  <T extends AnyTask>(
    task: T,
    input: Task.Input<T>,
    options?: Job.Options<Task.Error<T> | ThreadCrashed>
  ): (
    self: NodeWorkerPool
  ) => Effect.Effect<Task.Output<T>, Task.Error<T> | ThreadCrashed | PoolError.JobError | PoolError.PoolError>
  /**
   * Data-first form of {@link run}.
   *
   * @example
   * ```ts
   * // a sketch: it needs a worker file that serves `CountPrimes` (see NodeThreadRunner.serve)
   * import { Effect, Schema } from "effect"
   * import { NodeWorkerPool } from "@fiberpool/node"
   *
   * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
   * const program = Effect.gen(function*() {
   *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./primes.worker.ts", import.meta.url) })
   *   console.log(yield* NodeWorkerPool.run(threads, CountPrimes, 100, { timeout: "1 second" })) // => 25
   * })
   * Effect.runPromise(Effect.scoped(program))
   * ```
   *
   * @category combinators
   * @since 0.1.0
   */
  <T extends AnyTask>(
    self: NodeWorkerPool,
    task: T,
    input: Task.Input<T>,
    options?: Job.Options<Task.Error<T> | ThreadCrashed>
  ): Effect.Effect<Task.Output<T>, Task.Error<T> | ThreadCrashed | PoolError.JobError | PoolError.PoolError>
} = dual(
  (args) => isNodeWorkerPool(args[0]),
  <T extends AnyTask>(
    self: NodeWorkerPool,
    task: T,
    input: Task.Input<T>,
    options?: Job.Options<Task.Error<T> | ThreadCrashed>
  ): Effect.Effect<Task.Output<T>, Task.Error<T> | ThreadCrashed | PoolError.JobError | PoolError.PoolError> =>
    WorkerPool.run(self.pool, runOnThread(self as PoolImpl, task, input), options)
)

// ---- Getters ----

/**
 * Reads the {@link ThreadStats}: busy and idle threads, and how many were started to replace a preempted or
 * crashed one.
 *
 * @example
 * ```ts
 * // a sketch: it needs a worker file (see NodeThreadRunner.serve)
 * import { Effect } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./worker.ts", import.meta.url), threads: 2 })
 *   console.log(yield* NodeWorkerPool.threadStats(threads)) // => { busy: 0, idle: 2, respawned: 0 }
 * })
 * Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const threadStats = (self: NodeWorkerPool): Effect.Effect<ThreadStats> =>
  Effect.sync(() => {
    const set = (self as PoolImpl).set
    return { busy: set.busy, idle: set.live - set.busy, respawned: set.respawned }
  })

// ---- Resource management ----

/**
 * Shuts the pool down (the core `WorkerPool.shutdown`, with its options: graceful by default, forced with
 * `{ mode: "cancel", gracePeriod: 0 }`), then terminates the threads. Returns the core `Shutdown.Report`,
 * which counts every job. Idempotent, like the core shutdown.
 *
 * @example
 * ```ts
 * // a sketch: it needs a worker file that serves `CountPrimes` (see NodeThreadRunner.serve)
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
 * const program = Effect.gen(function*() {
 *   const threads = yield* NodeWorkerPool.make({ worker: new URL("./primes.worker.ts", import.meta.url) })
 *   for (let i = 0; i < 10; i++) yield* NodeWorkerPool.submit(threads, CountPrimes, 1e6)
 *   const report = yield* NodeWorkerPool.shutdown(threads, { gracePeriod: "30 seconds" })
 *   console.log(report.jobs.succeeded.length) // => 10
 * })
 * Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category resource management
 * @since 0.1.0
 */
export const shutdown = (
  self: NodeWorkerPool,
  options?: Shutdown.Options
): Effect.Effect<Shutdown.Report, PoolError.InvalidOptions> =>
  Effect.tap(WorkerPool.shutdown(self.pool, options), () => closeThreads((self as PoolImpl).set))

// ---- Services and layers ----

/**
 * The service key of an application's thread pool, provided by {@link layer}.
 *
 * @example
 * ```ts
 * // a sketch: it needs a worker file that serves `CountPrimes` (see NodeThreadRunner.serve)
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
 * const program = Effect.gen(function*() {
 *   const threads = yield* NodeWorkerPool.Service
 *   return yield* NodeWorkerPool.run(threads, CountPrimes, 100)
 * })
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Service extends Context.Service<Service, NodeWorkerPool>()("@fiberpool/node/NodeWorkerPool") {}

/**
 * A layer that provides {@link Service}: the threads live as long as the layer, and closing it is the
 * graceful shutdown described in {@link make}.
 *
 * @example
 * ```ts
 * // a sketch: it needs a worker file that serves `CountPrimes` (see NodeThreadRunner.serve)
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
 * const ThreadsLive = NodeWorkerPool.layer({ worker: new URL("./primes.worker.ts", import.meta.url), threads: 2 })
 * const program = Effect.flatMap(NodeWorkerPool.Service, (threads) => NodeWorkerPool.run(threads, CountPrimes, 100))
 * Effect.runPromise(Effect.provide(program, ThreadsLive)).then(console.log) // => 25
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<Service, PoolError.InvalidOptions | ThreadCrashed> =>
  Layer.effect(Service, make(options))

// ---- Metrics ----

/**
 * The thread metrics, each with a `pool` attribute (the pool's name):
 *
 * - `fiberpool_threads_busy` (gauge): threads running a job;
 * - `fiberpool_threads_idle` (gauge): threads started or starting, with no job;
 * - `fiberpool_threads_respawned_total` (counter): threads started to replace a preempted or crashed one.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { NodeWorkerPool } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const busy = yield* Metric.value(Metric.withAttributes(NodeWorkerPool.metrics.busy, { pool: "threads" }))
 *   console.log(busy.value) // => 0
 * })
 * Effect.runPromise(program)
 * ```
 *
 * @category metrics
 * @since 0.1.0
 */
export const metrics: {
  readonly busy: Metric.Gauge<number>
  readonly idle: Metric.Gauge<number>
  readonly respawned: Metric.Counter<number>
} = {
  busy: Metric.gauge("fiberpool_threads_busy", { description: "Worker threads running a job" }),
  idle: Metric.gauge("fiberpool_threads_idle", { description: "Worker threads started or starting, with no job" }),
  respawned: Metric.counter("fiberpool_threads_respawned_total", {
    description: "Worker threads started to replace a preempted or crashed thread",
    incremental: true
  })
}

// ---- Internal ----

interface PoolImpl extends NodeWorkerPool {
  readonly set: ThreadSet
  seq: number
}

const closeThreads = (set: ThreadSet): Effect.Effect<void> =>
  Effect.callback<void>((resume) => set.close(() => resume(Effect.void)))

/**
 * The program of one attempt of a job: encode, take a thread, post, await the reply, decode. Interrupting it
 * while it waits terminates the thread (and starts its replacement), and completes once the thread stopped.
 */
const runOnThread = <T extends AnyTask>(
  impl: PoolImpl,
  task: T,
  input: Task.Input<T>
): Effect.Effect<Task.Output<T>, Task.Error<T> | ThreadCrashed> =>
  Effect.suspend(() => {
    const encoded = Schema.encodeUnknownExit(task.input)(input)
    if (Exit.isFailure(encoded)) return Effect.die(Cause.squash(encoded.cause))
    const value = encoded.value
    const transfer = task.transfer ? collectTransferables(value) : undefined
    return Effect.callback<Task.Output<T>, Task.Error<T> | ThreadCrashed>((resume) => {
      const id = ++impl.seq
      const set = impl.set
      let thread: Thread | undefined = undefined
      thread = set.acquire({
        id,
        onReply: (kind, reply) => {
          set.release(thread!)
          resume(decodeReply(task, kind, reply))
        },
        onCrash: (info) => resume(Exit.fail(crashed(task, info)))
      })
      if (thread === undefined) {
        // the pool's concurrency equals the number of threads: no free thread is a broken invariant
        return resume(Effect.die(new Error(`No thread free for task "${task.name}" (pool closed?)`)))
      }
      const sent = Result.try(() => thread!.post([id, task.name, value], transfer))
      if (Result.isFailure(sent)) {
        set.release(thread)
        return resume(Effect.die(sent.failure))
      }
      const running = thread
      return Effect.callback<void>((done) => set.kill(running, () => done(Effect.void)))
    })
  })

const crashed = (task: AnyTask, info: CrashInfo): ThreadCrashed => new ThreadCrashed({ task: task.name, ...info })

const decodeReply = (task: AnyTask, kind: ReplyKind, value: unknown): Exit.Exit<any, any> => {
  switch (kind) {
    case Reply.Success: {
      const decoded = Schema.decodeUnknownExit(task.output)(value)
      return Exit.isSuccess(decoded) ? decoded : Exit.die(Cause.squash(decoded.cause))
    }
    case Reply.Failure: {
      const decoded = Schema.decodeUnknownExit(task.error)(value)
      return Exit.isSuccess(decoded) ? Exit.fail(decoded.value) : Exit.die(Cause.squash(decoded.cause))
    }
    default: {
      const info = value as DefectInfo
      const error = new Error(info.message)
      error.name = info.name
      if (info.stack !== undefined) error.stack = info.stack
      return Exit.die(error)
    }
  }
}
