/**
 * Named job types: the contract between producers and workers. A type has a name, a `Schema` for its payload
 * (and its result, when results are kept), a handler, and default options (timeout, retry schedule between
 * deliveries, max attempts).
 *
 * @since 0.1.0
 */
import type { Job } from "@fiberpool/core"
import { PoolError } from "@fiberpool/core"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { hasProperty } from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { EncodeFailed, PayloadTooLarge, StoreError } from "./DurableError.ts"
import type { Service as QueueService } from "./DurableQueue.ts"

/**
 * @category type ids
 * @since 0.1.0
 */
export const TypeId: TypeId = "~@fiberpool/durable/JobType"

/**
 * @category type ids
 * @since 0.1.0
 */
export type TypeId = "~@fiberpool/durable/JobType"

/**
 * What a handler knows about the delivery it runs: the job id (use it as an idempotency key), the type, and
 * which attempt this is (1-based, counted in the store, so it survives crashes and moves between processes).
 *
 * @example
 * ```ts
 * import type { JobType } from "@fiberpool/durable"
 *
 * const context: JobType.JobContext = { id: "invoice-42", type: "invoice", attempt: 1, maxAttempts: 5 }
 * console.log(context.attempt === context.maxAttempts ? "last try" : "will retry") // => will retry
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface JobContext {
  readonly id: string
  readonly type: string
  readonly attempt: number
  readonly maxAttempts: number
}

/**
 * A job type. Build one with {@link make}.
 *
 * - `retry`: the delay before a failed job is delivered again, as a `Schedule` whose input is the attempt
 *   number. It is replayed from the attempt count kept in the store, so the backoff keeps growing when
 *   consecutive attempts run in different processes.
 * - `maxAttempts`: deliveries before the job is dead-lettered, the crash of a process running it included.
 * - `timeout`: per delivery, counted from the start of the handler (the pool's deadline).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Resize: JobType.JobType<"resize", { readonly url: string }, void, never, never> = JobType.make({
 *   name: "resize",
 *   payload: Schema.Struct({ url: Schema.String }),
 *   handler: ({ url }) => Effect.log(`resizing ${url}`)
 * })
 * console.log(Resize.name, Resize.maxAttempts) // => resize 5
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface JobType<Name extends string, P, A, E, R> extends Contract<Name, P, A> {
  readonly handler: (payload: P, context: JobContext) => Effect.Effect<A, E, R>
  /** A batch type's handler and batch size (see {@link makeBatch}); undefined for a type of one job a call. */
  readonly batch?: Batch<P, E, R> | undefined
}

/**
 * One job of a batch, as a batch handler gets it (see {@link makeBatch}): its decoded payload and its
 * delivery's {@link JobContext}.
 *
 * @example
 * ```ts
 * import type { JobType } from "@fiberpool/durable"
 *
 * const job: JobType.BatchJob<string> = { id: "j1", type: "sms", attempt: 1, maxAttempts: 5, payload: "hi" }
 * console.log(job.payload, job.attempt) // => hi 1
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface BatchJob<P> extends JobContext {
  readonly payload: P
}

/**
 * What makes a job type a batch type: up to `maxSize` claimed jobs a handler call. See {@link makeBatch}.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Index = JobType.makeBatch({
 *   name: "index",
 *   payload: Schema.String,
 *   maxSize: 50,
 *   handler: (jobs) => Effect.log(`indexing ${jobs.length} documents`)
 * })
 * console.log(Index.batch?.maxSize) // => 50
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Batch<P, E, R> {
  readonly maxSize: number
  readonly handler: (jobs: ReadonlyArray<BatchJob<P>>) => Effect.Effect<unknown, E, R>
}

/**
 * A job type's contract: its name, payload and result schemas, and delivery options, without the handler. What
 * producers need (`DurableQueue.enqueue`, `DurableQueue.result` take a contract), so they do not import the
 * handler and what it depends on. Build one with {@link define}; a worker attaches the handler with
 * {@link implement}. Every {@link JobType} is also a contract.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Resize: JobType.Contract<"resize", { readonly url: string }, void> = JobType.define({
 *   name: "resize",
 *   payload: Schema.Struct({ url: Schema.String })
 * })
 * console.log(Resize.name) // => resize
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Contract<Name extends string, P, A> {
  readonly [TypeId]: TypeId
  readonly name: Name
  readonly payload: Schema.Codec<P, any>
  readonly result: Schema.Codec<A, any> | undefined
  readonly timeout: Duration.Input | undefined
  readonly retry: Schedule.Schedule<unknown, number>
  readonly maxAttempts: number
  /** The default priority of its jobs (see `DurableQueue.EnqueueOptions.priority`); undefined: 0. */
  readonly priority?: number | undefined
  /** At most `global` jobs of this type run at once across every process of a queue, see {@link Limits}. */
  readonly concurrency?: { readonly global: number } | undefined
  /** At most `limit` jobs of this type start in any window of `interval`, across every process. */
  readonly rateLimit?: { readonly limit: number; readonly interval: Duration.Input } | undefined
  /** @internal */
  readonly payloadJson: Schema.Codec<P, unknown>
  /** @internal */
  readonly resultJson: Schema.Codec<A, unknown> | undefined
}

/**
 * Delivery order and limits of a job type, options of {@link define} and {@link make}.
 *
 * - `priority`: the default priority of its jobs (higher is claimed first, FIFO among equals; an integer between
 *   -1,000,000 and 1,000,000, default 0). An enqueue's own `priority` overrides it. See the queue's `aging`.
 * - `concurrency.global`: at most this many jobs of this type run at once across every process of the queue
 *   (counted as unexpired leases, in the claim).
 * - `rateLimit`: at most `limit` jobs of this type start (are claimed, retries included) in any window of
 *   `interval`, across every process of the queue.
 *
 * Every worker of the queue that runs the type must declare the same limits (share the type's definition). The
 * memory, SQLite and PostgreSQL stores keep them (the memory store has one process: its limits are that
 * process's); on another database `DurableWorker.make` fails with `InvalidOptions`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Charge = JobType.define({
 *   name: "charge",
 *   payload: Schema.Struct({ invoice: Schema.String }),
 *   priority: 10,
 *   concurrency: { global: 4 },
 *   rateLimit: { limit: 100, interval: "1 second" }
 * })
 * console.log(Charge.priority, Charge.concurrency?.global) // => 10 4
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Limits {
  readonly priority?: number | undefined
  readonly concurrency?: { readonly global: number } | undefined
  readonly rateLimit?: { readonly limit: number; readonly interval: Duration.Input } | undefined
}

/**
 * Any job type.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const types: ReadonlyArray<JobType.Any> = [
 *   JobType.make({ name: "a", payload: Schema.String, handler: () => Effect.void })
 * ]
 * console.log(types.map((type) => type.name)) // => [ 'a' ]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Any = JobType<string, any, any, any, any>

/**
 * Any contract (a job type with or without its handler).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const contracts: ReadonlyArray<JobType.AnyContract> = [JobType.define({ name: "a", payload: Schema.String })]
 * console.log(contracts.map((contract) => contract.name)) // => [ 'a' ]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type AnyContract = Contract<string, any, any>

/**
 * The payload type of a job type.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.Struct({ host: Schema.String }), handler: () => Effect.void })
 * const payload: JobType.Payload<typeof Ping> = { host: "127.0.0.1" }
 * console.log(payload.host) // => 127.0.0.1
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Payload<T> = T extends Contract<any, infer P, any> ? P : never

/**
 * The result type of a job type (`void` when the type keeps no result).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Add = JobType.make({
 *   name: "add",
 *   payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
 *   result: Schema.Number,
 *   handler: ({ a, b }) => Effect.succeed(a + b)
 * })
 * const sum: JobType.Result<typeof Add> = 3
 * console.log(sum) // => 3
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Result<T> = T extends Contract<any, any, infer A> ? A : never

/**
 * The services a job type's handler needs from the worker's context. `Job.Current` (core's running job) and
 * `DurableQueue.Service` (the worker's own queue, which `DurableFlow.results` reads) are not among them: the
 * worker provides them.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Noop = JobType.make({ name: "noop", payload: Schema.Null, handler: () => Effect.void })
 * const services: Array<JobType.Services<typeof Noop>> = []
 * console.log(services.length) // => 0
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Services<T> = T extends JobType<any, any, any, any, infer R> ? Exclude<R, Job.Current | QueueService>
  : never

/**
 * Tells whether a value is a {@link JobType}.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Noop = JobType.make({ name: "noop", payload: Schema.Null, handler: () => Effect.void })
 * console.log(JobType.isJobType(Noop), JobType.isJobType({ name: "noop" })) // => true false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isJobType = (u: unknown): u is Any => hasProperty(u, TypeId) && hasProperty(u, "handler")

/**
 * Tells whether a value is a {@link Contract} (a job type, with or without its handler).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.define({ name: "ping", payload: Schema.String })
 * console.log(JobType.isContract(Ping), JobType.isJobType(Ping)) // => true false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isContract = (u: unknown): u is AnyContract => hasProperty(u, TypeId)

/**
 * The default delay between deliveries of a failed job: exponential from 1 second (1, 2, 4, 8 s...), capped at
 * 5 minutes.
 *
 * @example
 * ```ts
 * import { JobType } from "@fiberpool/durable"
 *
 * console.log(typeof JobType.defaultRetry) // => object
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const defaultRetry: Schedule.Schedule<unknown, number> = Schedule.min([
  Schedule.exponential("1 second"),
  Schedule.spaced("5 minutes")
])

/**
 * Declares a job type's contract without its handler: what producers import.
 *
 * **Details**
 *
 * The options are those of {@link make} but the handler. A worker attaches the handler with {@link implement}.
 * Like `make`, `define` never throws: bad options are a typed `InvalidOptions` of `enqueue` and of the worker.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * // contract.ts: shared by producers and workers
 * const Add = JobType.define({
 *   name: "add",
 *   payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
 *   result: Schema.Number
 * })
 * // worker.ts: attaches the handler
 * const AddHandler = JobType.implement(Add, ({ a, b }) => Effect.succeed(a + b))
 *
 * const program = Effect.gen(function*() {
 *   yield* DurableWorker.make({ types: [AddHandler], concurrency: 1 })
 *   // producer.ts: needs only the contract
 *   const id = yield* DurableQueue.enqueue(Add, { a: 1, b: 2 })
 *   assert.strictEqual(yield* DurableQueue.result(Add, id), 3)
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const define = <
  const Name extends string,
  PS extends Schema.Codec<any, any>,
  RS extends Schema.Codec<any, any> | undefined = undefined
>(
  options: {
    readonly name: Name
    readonly payload: PS
    readonly result?: RS
    readonly timeout?: Duration.Input | undefined
    readonly retry?: Schedule.Schedule<any, number> | undefined
    readonly maxAttempts?: number | undefined
  } & Limits
): Contract<Name, PS["Type"], RS extends Schema.Codec<any, any> ? RS["Type"] : void> => ({
  [TypeId]: TypeId,
  name: options.name,
  payload: options.payload,
  result: options.result,
  timeout: options.timeout,
  retry: options.retry ?? defaultRetry,
  maxAttempts: options.maxAttempts ?? 5,
  priority: options.priority,
  concurrency: options.concurrency,
  rateLimit: options.rateLimit,
  payloadJson: Schema.toCodecJson(options.payload) as any,
  resultJson: options.result === undefined ? undefined : Schema.toCodecJson(options.result) as any
})

/**
 * Attaches a handler to a contract: the job type a worker runs.
 *
 * **Details**
 *
 * The handler gets the decoded payload and the delivery's {@link JobContext}, and returns the result the
 * contract declares (anything, when it declares none). The worker's job types are the implemented contracts:
 * `DurableWorker.make({ types: [JobType.implement(SendEmail, send)] })`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const Greet = JobType.define({ name: "greet", payload: Schema.String, result: Schema.String })
 * const GreetHandler = JobType.implement(Greet, (name) => Effect.succeed(`hello ${name}`))
 * console.log(JobType.isJobType(GreetHandler), GreetHandler.name) // => true greet
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const implement = <const Name extends string, P, A, E = never, R = never>(
  contract: Contract<Name, P, A>,
  handler: (payload: P, context: JobContext) => Effect.Effect<[A] extends [void] ? unknown : A, E, R>
): JobType<Name, P, A, E, R> => ({ ...contract, handler: handler as JobType<Name, P, A, E, R>["handler"] })

/**
 * Defines a job type: its contract and its handler in one (see {@link define} and {@link implement} to keep the
 * handler out of producers).
 *
 * **Details**
 *
 * `payload` (and `result`, when given) are encoded as JSON in the store through `Schema.toCodecJson`, so any
 * schema with a JSON form works (dates, bigints, classes...). Without `result`, the handler's value is
 * dropped and nothing is written on success. Defaults: `maxAttempts` 5, `retry` {@link defaultRetry}, no
 * timeout.
 *
 * `make` never throws: a name of 0 or more than 100 characters, or a `maxAttempts` that is not a positive
 * integer, is reported as a typed `InvalidOptions` error by `DurableWorker.make` and by `DurableQueue.enqueue`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schedule, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * const SendEmail = JobType.make({
 *   name: "send-email",
 *   payload: Schema.Struct({ to: Schema.String, subject: Schema.String }),
 *   result: Schema.Struct({ messageId: Schema.String }),
 *   handler: ({ to }, { id }) => Effect.succeed({ messageId: `${id}:${to}` }),
 *   timeout: "30 seconds",
 *   retry: Schedule.spaced("10 seconds"),
 *   maxAttempts: 3
 * })
 * assert.strictEqual(SendEmail.maxAttempts, 3)
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <
  const Name extends string,
  PS extends Schema.Codec<any, any>,
  E = never,
  R = never,
  RS extends Schema.Codec<any, any> | undefined = undefined
>(
  options: {
    readonly name: Name
    readonly payload: PS
    readonly result?: RS
    readonly handler: (
      payload: PS["Type"],
      context: JobContext
    ) => Effect.Effect<RS extends Schema.Codec<any, any> ? RS["Type"] : unknown, E, R>
    readonly timeout?: Duration.Input | undefined
    readonly retry?: Schedule.Schedule<any, number> | undefined
    readonly maxAttempts?: number | undefined
  } & Limits
): JobType<Name, PS["Type"], RS extends Schema.Codec<any, any> ? RS["Type"] : void, E, R> => ({
  ...define(options),
  handler: options.handler as any
})

/**
 * Defines a batch job type: the worker hands its handler up to `maxSize` of the type's claimed jobs at once, for
 * work that is cheaper in bulk (one multi-row insert, one API call for many items), as pg-boss's `batchSize`.
 *
 * **Details**
 *
 * Each job is still enqueued, retried, dead-lettered and deduplicated on its own; only the handler call is
 * shared. A batch's outcome is each of its jobs' outcome: when the handler succeeds every job is completed;
 * when it fails, dies (or throws) or times out (`timeout` is the whole call's) every job is delivered again after the type's
 * `retry` delay for its own attempt count, and dead-lettered at its last attempt; when the worker shuts down
 * while the batch runs, every job is handed back. A job whose payload does not decode is dead-lettered alone and
 * left out of its batch. A batch type has no result schema; `reportProgress` in a batch call does nothing (where a
 * call holds one job, on the memory and Redis stores, it is stored as that job's). The worker's pool runs a call as
 * one of its jobs: its shutdown report, stats and events count calls.
 *
 * Batches are made from the jobs one claim returns: the SQL stores (SQLite, PostgreSQL) claim as many jobs as
 * the worker has free slots in one statement, and a batch takes `maxSize` of those slots; the memory and Redis
 * stores claim one job at a time, so there every batch holds one job. A batch never waits for more jobs to come.
 * `maxSize` is an integer from 1 to 1,000 (`InvalidOptions` from `DurableWorker.make` otherwise).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const sent: Array<number> = []
 * const Sms = JobType.makeBatch({
 *   name: "sms",
 *   payload: Schema.Struct({ to: Schema.String }),
 *   maxSize: 100,
 *   // one call of the provider's bulk API for up to 100 messages
 *   handler: (jobs) => Effect.sync(() => sent.push(jobs.length))
 * })
 * const program = Effect.gen(function*() {
 *   yield* DurableQueue.enqueue(Sms, { to: "+33600000001" })
 *   yield* DurableQueue.enqueue(Sms, { to: "+33600000002" })
 *   yield* DurableWorker.make({ types: [Sms], concurrency: 100 })
 *   while (sent.reduce((a, b) => a + b, 0) < 2) yield* Effect.sleep("10 millis")
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory())))
 * assert.deepStrictEqual(sent, [1, 1]) // the memory store claims one job at a time
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeBatch = <const Name extends string, PS extends Schema.Codec<any, any>, E = never, R = never>(
  options: {
    readonly name: Name
    readonly payload: PS
    readonly maxSize: number
    readonly handler: (jobs: ReadonlyArray<BatchJob<PS["Type"]>>) => Effect.Effect<unknown, E, R>
    readonly timeout?: Duration.Input | undefined
    readonly retry?: Schedule.Schedule<any, number> | undefined
    readonly maxAttempts?: number | undefined
  } & Limits
): JobType<Name, PS["Type"], void, E, R> => {
  const { handler, maxSize, ...contract } = options
  return implementBatch(define(contract), { maxSize }, handler)
}

/**
 * Attaches a batch handler to a contract without a result (see {@link makeBatch}): the batch type a worker runs,
 * while producers import only the contract.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobType } from "@fiberpool/durable"
 *
 * // contracts.ts: what producers import
 * const Index = JobType.define({ name: "index", payload: Schema.String })
 * // worker.ts
 * const IndexHandler = JobType.implementBatch(Index, { maxSize: 50 }, (jobs) =>
 *   Effect.log(`indexing ${jobs.length} documents`))
 * console.log(IndexHandler.name, IndexHandler.batch?.maxSize) // => index 50
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const implementBatch = <const Name extends string, P, E = never, R = never>(
  contract: Contract<Name, P, void>,
  options: { readonly maxSize: number },
  handler: (jobs: ReadonlyArray<BatchJob<P>>) => Effect.Effect<unknown, E, R>
): JobType<Name, P, void, E, R> => ({
  ...contract,
  // a job on its own (a store that claims one at a time, a payload that decodes asynchronously) is a batch of one
  handler: (payload, context) => handler([{ ...context, payload }]),
  batch: { maxSize: options.maxSize, handler }
})

/**
 * Reports the progress of the job the current handler runs, for producers to read with `DurableQueue.progress`
 * (from any process). Any JSON value: a percentage, `{ done, total }`, a stage name.
 *
 * **Details**
 *
 * Each call is one write to the store, replacing the previous report: report every few seconds or every few
 * percent, not per item. At most 64 KiB of JSON (`PayloadTooLarge` beyond). Progress is kept after the job ends,
 * until the queue's retention for completed jobs removes it, and a retry sees the last attempt's report until it
 * reports its own. Outside a durable worker's handler it does nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Deferred, Effect, Schema } from "effect"
 * import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const reported = yield* Deferred.make<void>()
 *   const Export = JobType.make({
 *     name: "export",
 *     payload: Schema.Int,
 *     handler: (rows) =>
 *       Effect.gen(function*() {
 *         yield* JobType.reportProgress({ done: rows / 2, total: rows })
 *         yield* Deferred.succeed(reported, undefined)
 *       })
 *   })
 *   yield* DurableWorker.make({ types: [Export], concurrency: 1 })
 *   yield* DurableQueue.enqueue(Export, 100, { id: "export-1" })
 *   yield* Deferred.await(reported)
 *   const progress = yield* DurableQueue.progress("export-1")
 *   assert.deepStrictEqual(progress?.value, { done: 50, total: 100 })
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const reportProgress = (value: unknown): Effect.Effect<void, EncodeFailed | PayloadTooLarge | StoreError> =>
  Effect.flatMap(Effect.context<never>(), (context) => {
    const report = Context.get(context, CurrentProgress)
    return report === undefined ? Effect.void : report(value)
  })

/**
 * The progress reporter of the job the current fiber runs, set by the durable worker.
 *
 * @internal
 */
export const CurrentProgress = Context.Reference<
  ((value: unknown) => Effect.Effect<void, EncodeFailed | PayloadTooLarge | StoreError>) | undefined
>("@fiberpool/durable/JobType/CurrentProgress", { defaultValue: () => undefined })

/**
 * The delay before the next delivery after `attempts` failed attempts, replayed from the persisted attempt count
 * (delays depend only on the count, so consecutive attempts may run in different processes).
 *
 * @internal
 */
export const retryDelay = (type: Any, attempts: number): Effect.Effect<Duration.Duration> =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(type.retry)
    let now = 0
    let delay = Duration.zero
    for (let i = 0; i < attempts; i++) {
      const exit = yield* Effect.exit(step(now, i + 1))
      if (exit._tag === "Failure") break // the schedule is done: keep its last delay
      delay = exit.value[1]
      now += Duration.toMillis(delay)
    }
    return delay
  })

/**
 * Checks a job type's options (what {@link make} accepts without checking, so that it never throws).
 *
 * @internal
 */
export const validate = (type: AnyContract): Effect.Effect<void, PoolError.InvalidOptions> => {
  if (typeof type.name !== "string" || type.name === "" || type.name.length > maxNameLength) {
    return Effect.fail(
      new PoolError.InvalidOptions({
        option: "JobType.name",
        value: JSON.stringify(type.name),
        expected: `a string of 1 to ${maxNameLength} characters`
      })
    )
  }
  if (!Number.isInteger(type.maxAttempts) || type.maxAttempts < 1) {
    return Effect.fail(
      new PoolError.InvalidOptions({
        option: `JobType(${type.name}).maxAttempts`,
        value: String(type.maxAttempts),
        expected: "a positive integer"
      })
    )
  }
  if (type.priority !== undefined && !isPriority(type.priority)) {
    return Effect.fail(
      new PoolError.InvalidOptions({
        option: `JobType(${type.name}).priority`,
        value: String(type.priority),
        expected: priorityExpected
      })
    )
  }
  const global = type.concurrency?.global
  if (type.concurrency !== undefined && (!Number.isSafeInteger(global) || global! < 1)) {
    return Effect.fail(
      new PoolError.InvalidOptions({
        option: `JobType(${type.name}).concurrency.global`,
        value: String(global),
        expected: "a positive integer"
      })
    )
  }
  const batch = (type as Partial<Any>).batch
  if (batch !== undefined && (!Number.isSafeInteger(batch.maxSize) || batch.maxSize < 1 || batch.maxSize > 1000)) {
    return Effect.fail(
      new PoolError.InvalidOptions({
        option: `JobType(${type.name}).maxSize`,
        value: String(batch.maxSize),
        expected: "an integer from 1 to 1000"
      })
    )
  }
  if (batch !== undefined && type.resultJson !== undefined) {
    return Effect.fail(
      new PoolError.InvalidOptions({
        option: `JobType(${type.name}).result`,
        value: "a schema",
        expected: "none: a batch job type has no result"
      })
    )
  }
  const rate = type.rateLimit
  if (rate !== undefined) {
    if (!Number.isSafeInteger(rate.limit) || rate.limit < 1) {
      return Effect.fail(
        new PoolError.InvalidOptions({
          option: `JobType(${type.name}).rateLimit.limit`,
          value: String(rate.limit),
          expected: "a positive integer"
        })
      )
    }
    const interval = Duration.fromInput(rate.interval)
    if (interval._tag === "None" || !Duration.isFinite(interval.value) || !Duration.isPositive(interval.value)) {
      return Effect.fail(
        new PoolError.InvalidOptions({
          option: `JobType(${type.name}).rateLimit.interval`,
          value: String(rate.interval),
          expected: "a positive finite duration"
        })
      )
    }
  }
  return Effect.void
}

/** @internal a priority: an integer between -1,000,000 and 1,000,000 */
export const isPriority = (priority: unknown): priority is number =>
  Number.isSafeInteger(priority) && Math.abs(priority as number) <= 1_000_000

/** @internal */
export const priorityExpected = "an integer between -1000000 and 1000000"

const maxNameLength = 100
