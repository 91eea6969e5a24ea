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
 *   `resourceLimits`) fails only its job, with a `NodeError` (`ThreadCrashed`), and is replaced.
 * - **Bounded startup**: a thread that does not call `NodeThreadRunner.serve` within `startupTimeout` is ended,
 *   and `make` (or the job waiting on it) fails with `ThreadStartFailed`.
 * - **Elastic**: between `minThreads` and `maxThreads` threads; those above the minimum end after `idleTimeout`.
 * - **Pipelined short tasks**: while a task's recent runs take less than 1 ms on average, several of its jobs are
 *   posted to a busy thread behind the one it runs (up to 16 per thread, as many as fit in about 1 ms), and the
 *   core pool's concurrency rises to that many times `maxThreads`; it falls back to `maxThreads` as soon as a job
 *   of a longer task finds no idle thread.
 *
 * @since 0.1.0
 */
import { type Job, type PoolError, type Shutdown, Validation, WorkerPool } from "@fiberpool/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
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
import * as options_ from "./internal/options.ts"
import { plainGuard } from "./internal/plain.ts"
import {
  collectTransferables,
  type DefectInfo,
  issueOf,
  Listener,
  type Loss,
  type RejectedInfo,
  Reply,
  type ReplyKind,
  ThreadSet,
  type ThreadSetOptions
} from "./internal/threads.ts"
import { InvalidInput, InvalidOutput, NodeError, TaskNotServed, ThreadCrashed, ThreadStartFailed } from "./NodeError.ts"

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
  /** The most threads the pool runs at once (`maxThreads`), which is the core pool's concurrency. */
  readonly threads: number
  /** The threads kept running while idle. Equal to `threads` for a fixed-size pool. */
  readonly minThreads: number
  readonly pool: WorkerPool.WorkerPool
}

/**
 * The options of {@link make}: where the worker file is, how many threads, and every core pool option except
 * `concurrency` (which is the maximum number of threads).
 *
 * - `worker`: the worker file: a `URL`, usually `new URL("./worker.ts", import.meta.url)`, or a path (absolute,
 *   or starting with `./` or `../`, relative to the working directory). It calls `NodeThreadRunner.serve`.
 * - `threads`: a fixed number of threads, started by `make` and kept. Default `os.availableParallelism()`.
 * - `minThreads`, `maxThreads`, `idleTimeout`: an elastic pool instead (give them instead of `threads`).
 *   `make` starts `minThreads` (default 1); a job that finds no idle thread starts one, up to `maxThreads`
 *   (default `max(minThreads, os.availableParallelism())`); a thread above `minThreads` that stays idle for
 *   `idleTimeout` (default 10 seconds) ends.
 * - `startupTimeout`: how long a thread may take to load the worker file and call `NodeThreadRunner.serve`
 *   (default 30 seconds). Past it the thread is ended and `make`, or the job waiting on it, fails with
 *   `NodeError` (`ThreadStartFailed`).
 * - `resourceLimits`: per-thread V8 limits (`maxOldGenerationSizeMb`, ...); a thread that exceeds them fails
 *   its job with `NodeError` (`ThreadCrashed`, `reason: "outOfMemory"`) and is replaced.
 * - `workerOptions`: other `new Worker` options (`workerData`, `env`, `execArgv`, `stdout`, ...).
 * - `timeout`: as in the core pool, counted from the job's start. A job that overruns it is preempted.
 *
 * @example
 * ```ts
 * import type { NodeWorkerPool } from "@fiberpool/node"
 *
 * const options: NodeWorkerPool.Options = {
 *   worker: new URL("./worker.ts", import.meta.url),
 *   minThreads: 1,
 *   maxThreads: 4,
 *   idleTimeout: "30 seconds",
 *   capacity: 100,
 *   timeout: "5 seconds",
 *   resourceLimits: { maxOldGenerationSizeMb: 256 },
 *   shutdown: { mode: "drain", gracePeriod: "10 seconds" }
 * }
 * console.log(options.maxThreads) // => 4
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options extends Omit<WorkerPool.Options, "concurrency"> {
  readonly worker: URL | string
  readonly threads?: number | undefined
  readonly minThreads?: number | undefined
  readonly maxThreads?: number | undefined
  readonly idleTimeout?: Duration.Input | undefined
  readonly startupTimeout?: Duration.Input | undefined
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
 * the first `minThreads` threads (all of them for a fixed-size pool) have loaded the worker file.
 *
 * **Details**
 *
 * Fails with `InvalidOptions` naming a rejected option, or with `NodeError` (`ThreadStartFailed`, naming the
 * worker file and what happened) when a thread cannot start: the file fails to load or exits, or it does not
 * call `NodeThreadRunner.serve` within `startupTimeout`. It never waits longer than that.
 *
 * Short tasks are pipelined: a job of a task whose recent runs took less than 1 ms on average may be posted to a
 * busy thread behind up to 15 others, about 1 ms of work in all, instead of waiting for an idle thread; meanwhile
 * the core pool's `concurrency` (in `WorkerPool.stats`) is that depth times `maxThreads` and such a job counts as
 * running, and its wait on the thread counts toward its timeout. Such a job moves to a thread that goes idle, and
 * cancelling it before its thread starts it takes it back without ending the thread. A thread answers the jobs of
 * one message together: if it crashes or is preempted while it still holds such answers (a job of a short task
 * that ran long), those jobs run again on another thread. Jobs of longer tasks, and of tasks with
 * `transfer: true`, only go to idle threads.
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
): Effect.Effect<NodeWorkerPool, PoolError.InvalidOptions | NodeError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = resolveOptions(options)
    if (Result.isFailure(resolved)) return yield* resolved.failure
    const { core, set: setOptions } = resolved.success
    const name = core.name
    const context = yield* Effect.context<never>()
    const threads = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const set = new ThreadSet(setOptions)
        set.fill()
        return set
      }),
      closeThreads
    )
    registerMetrics(threads, name, context)
    yield* Effect.callback<void>((resume) => threads.whenReady(() => resume(Effect.void)))
    if (threads.startFailure !== undefined) {
      return yield* new NodeError({ reason: new ThreadStartFailed(threads.startFailure) })
    }
    const pool = yield* WorkerPool.make({ ...core, concurrency: setOptions.max })
    // while tasks are short, a thread holds several jobs: the core pool runs `depth × max` (see internal/threads.ts)
    threads.onDepth = (depth) => Effect.runSync(WorkerPool.resize(pool, depth * setOptions.max))
    const impl: PoolImpl = {
      [TypeId]: TypeId,
      name,
      threads: setOptions.max,
      minThreads: setOptions.min,
      pool,
      set: threads,
      seq: 0
    }
    return impl
  })

// ---- Combinators ----

/**
 * Submits a task with its input and returns the job's handle (the same `Job.JobHandle` as any core job).
 *
 * **Details**
 *
 * The handle's error is the task's typed error, a `NodeError` or a `JobError` (timed out, cancelled,
 * interrupted...). `NodeError`'s reasons: `ThreadCrashed` (the thread died), `ThreadStartFailed` (the thread
 * started for the job never became ready), `InvalidInput` / `InvalidOutput` (a value does not match the task's
 * Schemas) and `TaskNotServed` (the worker file does not serve the task); the thread goes on after the last
 * three. Job options (`id`, `timeout`, `deadline`, `retry`, `metadata`) are the core ones; a timeout, deadline or
 * cancel that hits the job while it runs terminates its thread. A defect in the handler is a defect of the job
 * (kept in its cause). Fails with `PoolError` when the job is not accepted.
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
    options?: Job.Options<Task.Error<T> | NodeError>
  ): (
    self: NodeWorkerPool
  ) => Effect.Effect<Job.JobHandle<Task.Output<T>, Task.Error<T> | NodeError>, PoolError.PoolError>
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
    options?: Job.Options<Task.Error<T> | NodeError>
  ): Effect.Effect<Job.JobHandle<Task.Output<T>, Task.Error<T> | NodeError>, PoolError.PoolError>
} = dual(
  (args) => isNodeWorkerPool(args[0]),
  <T extends AnyTask>(
    self: NodeWorkerPool,
    task: T,
    input: Task.Input<T>,
    options?: Job.Options<Task.Error<T> | NodeError>
  ): Effect.Effect<Job.JobHandle<Task.Output<T>, Task.Error<T> | NodeError>, PoolError.PoolError> =>
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
    options?: Job.Options<Task.Error<T> | NodeError>
  ): (
    self: NodeWorkerPool
  ) => Effect.Effect<Task.Output<T>, Task.Error<T> | NodeError | PoolError.JobError | PoolError.PoolError>
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
    options?: Job.Options<Task.Error<T> | NodeError>
  ): Effect.Effect<Task.Output<T>, Task.Error<T> | NodeError | PoolError.JobError | PoolError.PoolError>
} = dual(
  (args) => isNodeWorkerPool(args[0]),
  <T extends AnyTask>(
    self: NodeWorkerPool,
    task: T,
    input: Task.Input<T>,
    options?: Job.Options<Task.Error<T> | NodeError>
  ): Effect.Effect<Task.Output<T>, Task.Error<T> | NodeError | PoolError.JobError | PoolError.PoolError> =>
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
export const layer = (options: Options): Layer.Layer<Service, PoolError.InvalidOptions | NodeError> =>
  Layer.effect(Service, make(options))

// ---- Metrics ----

/**
 * The thread metrics, each with a `pool` attribute (the pool's name):
 *
 * - `fiberpool_threads` (gauge): threads started or starting (between `minThreads` and `maxThreads`);
 * - `fiberpool_threads_busy` (gauge): threads running a job;
 * - `fiberpool_threads_idle` (gauge): threads started or starting, with no job;
 * - `fiberpool_threads_utilization` (gauge): busy threads ÷ `maxThreads`, from 0 to 1, when read (average it
 *   over a window, e.g. `avg_over_time`, for the utilisation of that window);
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
  readonly threads: Metric.Gauge<number>
  readonly busy: Metric.Gauge<number>
  readonly idle: Metric.Gauge<number>
  readonly utilization: Metric.Gauge<number>
  readonly respawned: Metric.Counter<number>
} = {
  threads: Metric.gauge("fiberpool_threads", { description: "Worker threads started or starting" }),
  busy: Metric.gauge("fiberpool_threads_busy", { description: "Worker threads running a job" }),
  idle: Metric.gauge("fiberpool_threads_idle", { description: "Worker threads started or starting, with no job" }),
  utilization: Metric.gauge("fiberpool_threads_utilization", {
    description: "Busy worker threads divided by the most the pool may run (0 to 1)"
  }),
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

interface ResolvedOptions {
  readonly core: Omit<WorkerPool.Options, "concurrency"> & { readonly name: string }
  readonly set: ThreadSetOptions
}

const defaultIdleTimeoutMillis = 10_000
const defaultStartupTimeoutMillis = 30_000

/** Checks the thread options (core checks its own in `WorkerPool.make`). */
const resolveOptions = (options: Options): Result.Result<ResolvedOptions, PoolError.InvalidOptions> =>
  Result.gen(function*() {
    if (typeof options !== "object" || options === null) {
      return yield* Result.fail(Validation.invalid("options", options, "an object"))
    }
    const {
      worker: workerInput,
      threads: threadsInput,
      minThreads: minInput,
      maxThreads: maxInput,
      idleTimeout,
      startupTimeout,
      resourceLimits,
      workerOptions,
      ...core
    } = options
    const url = yield* options_.workerFile(workerInput)
    const name = core.name ?? "threads"
    if (typeof name !== "string" || name.length === 0) {
      return yield* Result.fail(Validation.invalid("name", core.name, "a non-empty string"))
    }
    const elastic = minInput !== undefined || maxInput !== undefined || idleTimeout !== undefined
    if (elastic && threadsInput !== undefined) {
      return yield* Result.fail(
        Validation.invalid("threads", threadsInput, "no fixed size together with minThreads, maxThreads or idleTimeout")
      )
    }
    let min: number
    let max: number
    if (elastic) {
      min = yield* Validation.integer("minThreads", minInput, { fallback: 1 })
      max = yield* Validation.integer("maxThreads", maxInput, { fallback: Math.max(min, availableParallelism()) })
      if (max < min) {
        return yield* Result.fail(Validation.invalid("maxThreads", maxInput, `at least minThreads (${min})`))
      }
    } else {
      min = max = yield* Validation.integer("threads", threadsInput, { fallback: availableParallelism() })
    }
    const idleTimeoutMillis = yield* Validation.durationMillis("idleTimeout", idleTimeout, {
      fallback: defaultIdleTimeoutMillis,
      positive: true
    })
    const startupTimeoutMillis = yield* Validation.durationMillis("startupTimeout", startupTimeout, {
      fallback: defaultStartupTimeoutMillis,
      positive: true
    })
    yield* options_.object("resourceLimits", resourceLimits)
    yield* options_.object("workerOptions", workerOptions)
    return {
      core: { ...core, name },
      set: {
        url,
        min,
        max,
        idleTimeoutMillis,
        startupTimeoutMillis,
        worker: { ...workerOptions, ...(resourceLimits === undefined ? {} : { resourceLimits }) }
      }
    }
  })

/** The thread metrics read the thread set when scraped: no registry update per task. */
const registerMetrics = (threads: ThreadSet, name: string, context: Context.Context<never>): void => {
  const attributes = { pool: name }
  const noUpdate = { update: () => {}, modify: () => {} }
  const gauge = (metric: Metric.Gauge<number>, read: () => number) =>
    Metric.registerUnsafe(Metric.withAttributes(metric, attributes), context, {
      get: () => ({ value: read() }),
      ...noUpdate
    })
  gauge(metrics.threads, () => threads.live)
  gauge(metrics.busy, () => threads.busy)
  gauge(metrics.idle, () => threads.live - threads.busy)
  gauge(metrics.utilization, () => threads.busy / threads.options.max)
  Metric.registerUnsafe(Metric.withAttributes(metrics.respawned, attributes), context, {
    get: () => ({ count: threads.respawned, incremental: false }),
    ...noUpdate
  })
}

/**
 * The program of one attempt of a job: encode, take a thread, post, await the reply, decode. Interrupting it
 * while it waits terminates the thread (and starts its replacement), and completes once the thread stopped.
 */
const runOnThread = <T extends AnyTask>(
  impl: PoolImpl,
  task: T,
  input: Task.Input<T>
): Effect.Effect<Task.Output<T>, Task.Error<T> | NodeError> =>
  // one primitive per attempt: the input is encoded when the attempt starts, inside the callback
  Effect.callback<Task.Output<T>, Task.Error<T> | NodeError>((resume) => {
    let value: unknown = input
    // a plain value (see internal/plain.ts) is its own encoding: only its guard runs
    if (plainGuard(task.input)?.(input) !== true) {
      const encoded = Schema.encodeUnknownExit(task.input)(input)
      if (Exit.isFailure(encoded)) {
        return resume(Exit.fail(
          new NodeError({ reason: new InvalidInput({ task: task.name, side: "main", issue: issueOf(encoded.cause) }) })
        ))
      }
      value = encoded.value
    }
    const set = impl.set
    const listener = new Listener(
      ++impl.seq,
      task.name,
      value,
      task.transfer ? collectTransferables(value) : undefined,
      (kind, reply) => resume(decodeReply(task, kind, reply)),
      (loss) => resume(loss._tag === "PostFailed" ? Exit.die(loss.error) : Exit.fail(lost(task, loss)))
    )
    const refused = set.submit(listener)
    if (refused === "closed") {
      return resume(Effect.die(new Error(`Thread pool closed: task "${task.name}" cannot run`)))
    }
    if (refused !== undefined) return resume(Exit.fail(new NodeError({ reason: new ThreadStartFailed(refused) })))
    return Effect.callback<void>((done) => set.cancel(listener, () => done(Effect.void)))
  })

const lost = (task: AnyTask, loss: Exclude<Loss, { readonly _tag: "PostFailed" }>): NodeError =>
  new NodeError({
    reason: loss._tag === "Crashed"
      ? new ThreadCrashed({ task: task.name, ...loss.info })
      : new ThreadStartFailed(loss.info)
  })

const rejected = (task: AnyTask, info: RejectedInfo): NodeError => {
  switch (info._tag) {
    case "InvalidInput":
      return new NodeError({ reason: new InvalidInput({ task: task.name, side: "thread", issue: info.issue }) })
    case "InvalidOutput":
      return new NodeError({
        reason: new InvalidOutput({ task: task.name, part: info.part, issue: info.issue })
      })
    case "TaskNotServed":
      return new NodeError({ reason: new TaskNotServed({ task: task.name, served: info.served }) })
  }
}

const decodeReply = (task: AnyTask, kind: ReplyKind, value: unknown): Exit.Exit<any, any> => {
  switch (kind) {
    case Reply.Success: {
      if (plainGuard(task.output)?.(value) === true) return Exit.succeed(value)
      const decoded = Schema.decodeUnknownExit(task.output)(value)
      return Exit.isSuccess(decoded)
        ? decoded
        : Exit.fail(
          new NodeError({
            reason: new InvalidOutput({ task: task.name, part: "output", issue: issueOf(decoded.cause) })
          })
        )
    }
    case Reply.Failure: {
      const decoded = Schema.decodeUnknownExit(task.error)(value)
      return Exit.isSuccess(decoded)
        ? Exit.fail(decoded.value)
        : Exit.fail(
          new NodeError({
            reason: new InvalidOutput({ task: task.name, part: "error", issue: issueOf(decoded.cause) })
          })
        )
    }
    case Reply.Rejected:
      return Exit.fail(rejected(task, value as RejectedInfo))
    default: {
      const info = value as DefectInfo
      const error = new Error(info.message)
      error.name = info.name
      if (info.stack !== undefined) error.stack = info.stack
      return Exit.die(error)
    }
  }
}
