/**
 * A durable job queue: producers enqueue typed jobs from any process; workers (see `DurableWorker`) claim them.
 * Jobs live in a store (SQLite file, PostgreSQL, or memory for tests) through effect's `PersistedQueue`, with
 * leases, attempt counting, retry delays, de-duplication by id and delays; this module adds job types, kept
 * results, and dead letters.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PersistedQueue from "effect/persistence/PersistedQueue"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { EncodeFailed, JobDeadLettered, StoreError } from "./DurableError.ts"
import * as Outcomes from "./internal/outcomes.ts"
import type * as JobType from "./JobType.ts"
import * as SqliteClient from "./SqliteClient.ts"

/**
 * @category type ids
 * @since 0.1.0
 */
export const TypeId: TypeId = "~@fiberpool/durable/DurableQueue"

/**
 * @category type ids
 * @since 0.1.0
 */
export type TypeId = "~@fiberpool/durable/DurableQueue"

/**
 * Options of {@link enqueue}.
 *
 * - `id`: the job id, also its idempotency key: while a job with this id is stored (pending, running, done or
 *   dead, until the store's cleanup removes it), enqueuing the same id again does nothing and returns the id.
 *   At most 255 characters. Default: a random UUID.
 * - `delay`: the job is not delivered before the delay elapses (the SQL stores round it up to whole seconds).
 *
 * Priorities are not supported: effect's `PersistedQueue` stores deliver in order of visibility time.
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const options: DurableQueue.EnqueueOptions = { id: "invoice-42", delay: "10 seconds" }
 * console.log(options.id) // => invoice-42
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface EnqueueOptions {
  readonly id?: string | undefined
  readonly delay?: Duration.Input | undefined
}

/**
 * A job that will not run again by itself: it used all its attempts, or its payload cannot be decoded, or its
 * type is unknown to the worker that claimed it. `error` is its last error, rendered; `payload` is the stored
 * (encoded, JSON) payload.
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const dead: DurableQueue.DeadLetter = {
 *   id: "j1",
 *   type: "email",
 *   payload: { to: 42 },
 *   error: "MalformedPayload: ...",
 *   attempts: 1,
 *   failedAt: 0
 * }
 * console.log(dead.type) // => email
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface DeadLetter {
  readonly id: string
  readonly type: string
  readonly payload: unknown
  readonly error: string
  readonly attempts: number
  readonly failedAt: number
}

/**
 * A queue handle: the producer side, and what `DurableWorker` consumes. Provided by the layers of this module
 * as {@link Service}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const queue: DurableQueue.DurableQueue = yield* DurableQueue.Service
 *   console.log(queue.name) // => default
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface DurableQueue {
  readonly [TypeId]: TypeId
  /** The queue's name: jobs of one queue are claimed by the workers of that queue only. */
  readonly name: string
  /** How often an idle worker asks the store for jobs. */
  readonly pollInterval: Duration.Duration
  /** @internal */
  readonly store: PersistedQueue.PersistedQueueStore["Service"]
  /** @internal */
  readonly outcomes: Outcomes.OutcomeStore
}

/**
 * The service key of the application's queue.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const queue = yield* DurableQueue.Service
 *   return queue.name
 * })
 * console.log(await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory({ name: "mail" }))))) // => mail
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Service extends Context.Service<Service, DurableQueue>()("@fiberpool/durable/DurableQueue") {}

/**
 * Options shared by the layers.
 *
 * - `name`: the queue name (default `"default"`). Several queues can share one database.
 * - `pollInterval`: how often an idle worker polls the store (default 500 ms). Jobs enqueued in the same process
 *   wake its workers at once; jobs from other processes are seen within one poll interval.
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const options: DurableQueue.Options = { name: "mail", pollInterval: "200 millis" }
 * console.log(options.name) // => mail
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly name?: string | undefined
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * Options of the SQL layers.
 *
 * - `lockExpiration`: the lease. A worker holds a claimed job under a lock refreshed every
 *   `lockRefreshInterval` while the job runs; when a process dies (SIGKILL, OOM, power loss) its jobs are
 *   delivered again once their lock is older than `lockExpiration`. **Default 30 seconds**, refreshed every 5
 *   seconds: a crashed worker's jobs are back within ~30 s, and a live worker keeps its jobs through stalls
 *   (blocked event loop, GC, slow database) of up to ~25 s. A graceful shutdown never waits for the lease: it
 *   hands unfinished jobs back at once.
 * - `lockRefreshInterval`: default `lockExpiration / 6`.
 * - `tableName`: PersistedQueue's table (default `"effect_queue"`); `outcomeTable`: results and dead letters
 *   (default `"fiberpool_outcomes"`).
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const options: DurableQueue.SqlOptions = { name: "mail", lockExpiration: "2 minutes" }
 * console.log(options.lockExpiration) // => 2 minutes
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface SqlOptions extends Options {
  readonly lockExpiration?: Duration.Input | undefined
  readonly lockRefreshInterval?: Duration.Input | undefined
  readonly tableName?: string | undefined
  readonly outcomeTable?: string | undefined
}

/**
 * The default lease (`lockExpiration`) of the SQL stores: 30 seconds. See {@link SqlOptions}.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * console.log(Duration.toSeconds(DurableQueue.defaultLockExpiration)) // => 30
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const defaultLockExpiration: Duration.Duration = Duration.seconds(30)

/**
 * A queue kept in memory, for tests: the same behaviour as the SQL stores within one process (no leases: there is
 * no other process to hand jobs to).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.String, handler: () => Effect.void })
 * const program = DurableQueue.enqueue(Ping, "hello", { id: "p1" })
 * console.log(await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))) // => p1
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerMemory = (options?: Options): Layer.Layer<Service> =>
  Layer.effect(
    Service,
    Effect.gen(function*() {
      const context = yield* Layer.build(PersistedQueue.layerStoreMemory)
      return makeQueue(options, Context.get(context, PersistedQueue.PersistedQueueStore), Outcomes.makeMemory())
    })
  )

/**
 * A queue in the SQL database of the current `SqlClient` (PostgreSQL, SQLite, MySQL...): the tables are created
 * if missing. Closing the layer hands every job this process still holds back to the store at once.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { DurableQueue, JobType, SqliteClient } from "@fiberpool/durable"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.String, handler: () => Effect.void })
 * const Queue = DurableQueue.layerSql({ name: "pings" }).pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
 * console.log(await Effect.runPromise(DurableQueue.enqueue(Ping, "hi", { id: "p1" }).pipe(Effect.provide(Queue)))) // => p1
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerSql = (options?: SqlOptions): Layer.Layer<Service, SqlError | StoreError, SqlClient.SqlClient> =>
  Layer.effect(
    Service,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const lockExpiration = Duration.fromInputUnsafe(options?.lockExpiration ?? defaultLockExpiration)
      const lockRefreshInterval = options?.lockRefreshInterval === undefined
        ? Duration.max(Duration.divideUnsafe(lockExpiration, 6), Duration.millis(500))
        : Duration.fromInputUnsafe(options.lockRefreshInterval)
      const store = yield* PersistedQueue.makeStoreSql({
        tableName: options?.tableName,
        pollInterval: options?.pollInterval ?? defaultPollInterval,
        lockExpiration,
        lockRefreshInterval
      })
      const outcomes = yield* Outcomes.makeSql(sql, options?.outcomeTable ?? "fiberpool_outcomes")
      return makeQueue(options, store, outcomes)
    })
  )

/**
 * A queue in a SQLite file (the embedded default): zero setup, and several processes on one machine can share
 * the file (WAL mode, busy timeout).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.String, handler: () => Effect.void })
 * const Queue = DurableQueue.layerSqlite({ filename: ":memory:" })
 * console.log(await Effect.runPromise(DurableQueue.enqueue(Ping, "hi", { id: "p1" }).pipe(Effect.provide(Queue)))) // => p1
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerSqlite = (
  options: SqlOptions & { readonly filename: string; readonly busyTimeout?: Duration.Input | undefined }
): Layer.Layer<Service, SqlError | StoreError> =>
  layerSql(options).pipe(
    Layer.provide(SqliteClient.layer({ filename: options.filename, busyTimeout: options.busyTimeout }))
  )

/**
 * Enqueues a job of the given type, from any process, and returns its id.
 *
 * **Details**
 *
 * The payload is encoded with the type's schema (an invalid payload fails with `EncodeFailed`, nothing is
 * stored). With an `id`, enqueuing is idempotent: a second enqueue of the same id is ignored.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, JobType } from "@fiberpool/durable"
 *
 * const Email = JobType.make({ name: "email", payload: Schema.Struct({ to: Schema.String }), handler: () => Effect.void })
 * const program = Effect.gen(function*() {
 *   const id = yield* DurableQueue.enqueue(Email, { to: "a@example.com" })
 *   assert.strictEqual(typeof id, "string")
 *   assert.strictEqual(yield* DurableQueue.enqueue(Email, { to: "b@example.com" }, { id: "welcome-b" }), "welcome-b")
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const enqueue = <T extends JobType.Any>(
  type: T,
  payload: JobType.Payload<T>,
  options?: EnqueueOptions
): Effect.Effect<string, EncodeFailed | StoreError, Service> =>
  Effect.flatMap(
    Effect.mapError(
      Schema.encodeUnknownEffect(type.payloadJson)(payload),
      (error) => new EncodeFailed({ jobType: type.name, issue: error.message })
    ),
    (encoded) => enqueueEncoded(type.name, encoded, options)
  )

/**
 * Enqueues a job whose payload is already encoded (the JSON form of the type's schema), for producers that do
 * not share the schema (another service, an older release). A payload that does not decode is dead-lettered
 * by the worker with `MalformedPayload`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * const program = DurableQueue.enqueueEncoded("email", { to: "a@example.com" }, { id: "e1" })
 * console.log(await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))) // => e1
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const enqueueEncoded = (
  type: string,
  payload: unknown,
  options?: EnqueueOptions
): Effect.Effect<string, StoreError, Service> =>
  Service.use((queue) =>
    Effect.suspend(() => {
      const id = options?.id ?? crypto.randomUUID()
      if (id.length === 0 || id.length > 255) {
        return Effect.die(new RangeError(`Job ids have 1 to 255 characters, got ${id.length}`))
      }
      return offer(queue, id, { type, id, payload }, options?.delay)
    })
  )

/**
 * Waits for the result of a job, run by any process, decoded with the type's `result` schema.
 *
 * **Details**
 *
 * Polls the store (every 200 ms by default) until the job has finished: it then succeeds with the result, or
 * fails with `JobDeadLettered` if the job used all its attempts. Bound the wait with `Effect.timeout`. Only
 * types with a `result` schema keep results; for the others this is a defect.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const Add = JobType.make({
 *   name: "add",
 *   payload: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
 *   result: Schema.Number,
 *   handler: ({ a, b }) => Effect.succeed(a + b)
 * })
 * const program = Effect.gen(function*() {
 *   yield* DurableWorker.make({ types: [Add], concurrency: 2 })
 *   const id = yield* DurableQueue.enqueue(Add, { a: 1, b: 2 })
 *   assert.strictEqual(yield* DurableQueue.result(Add, id), 3)
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const result = <T extends JobType.Any>(
  type: T,
  id: string,
  options?: { readonly pollInterval?: Duration.Input | undefined }
): Effect.Effect<JobType.Result<T>, JobDeadLettered | StoreError, Service> =>
  Service.use((queue) => {
    const resultJson = type.resultJson
    if (resultJson === undefined) {
      return Effect.die(new TypeError(`Job type ${type.name} keeps no result: give it a \`result\` schema`))
    }
    const interval = Duration.fromInputUnsafe(options?.pollInterval ?? "200 millis")
    const poll: Effect.Effect<JobType.Result<T>, JobDeadLettered | StoreError> = Effect.flatMap(
      queue.outcomes.get(queue.name, id),
      (row) => {
        if (row === undefined) return Effect.andThen(Effect.sleep(interval), poll)
        if (row.status === "dead") {
          return Effect.fail(
            new JobDeadLettered({
              jobId: id,
              jobType: row.jobType,
              attempts: row.attempts,
              error: row.error ?? ""
            })
          )
        }
        return Effect.orDie(Schema.decodeUnknownEffect(resultJson)(JSON.parse(row.result ?? "null")))
      }
    )
    return poll
  })

/**
 * Lists dead letters, oldest first (at most `limit`, default 100), optionally of one type.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const dead = yield* DurableQueue.deadLetters({ type: "email", limit: 10 })
 *   assert.deepStrictEqual(dead, [])
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const deadLetters = (
  options?: { readonly type?: string | undefined; readonly limit?: number | undefined }
): Effect.Effect<ReadonlyArray<DeadLetter>, StoreError, Service> =>
  Service.use((queue) =>
    Effect.map(
      queue.outcomes.listDead(queue.name, { jobType: options?.type, limit: options?.limit ?? 100 }),
      (rows) =>
        rows.map((row): DeadLetter => ({
          id: row.jobId,
          type: row.jobType,
          payload: row.payload === null ? null : JSON.parse(row.payload),
          error: row.error ?? "",
          attempts: row.attempts,
          failedAt: row.finishedAt
        }))
    )
  )

/**
 * Puts a dead letter back in the queue, with a fresh attempt count, and removes it from the dead letters. Returns
 * `false` if there is no dead letter with this id.
 *
 * **Details**
 *
 * The job keeps its id (the handler sees the same `id`); in the store it is a new element, so the original id
 * still de-duplicates enqueues. With a SQL store both steps happen in one transaction.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   assert.strictEqual(yield* DurableQueue.requeue("no-such-job"), false)
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const requeue = (
  id: string,
  options?: { readonly delay?: Duration.Input | undefined }
): Effect.Effect<boolean, StoreError, Service> =>
  Service.use((queue) =>
    queue.outcomes.transaction(Effect.gen(function*() {
      const row = yield* queue.outcomes.get(queue.name, id)
      if (row === undefined || row.status !== "dead") return false
      const now = yield* Clock.currentTimeMillis
      const storeId = `${id.slice(0, 230)}~requeued-${now}`
      yield* offer(queue, storeId, {
        type: row.jobType,
        id,
        payload: row.payload === null ? null : JSON.parse(row.payload)
      }, options?.delay)
      yield* queue.outcomes.remove(queue.name, id)
      return true
    }))
  )

// ---- Internal ----

/**
 * What the store keeps for a job: its type, its id (which stays the same when a dead letter is re-queued).
 *
 * @internal
 */
export interface Envelope {
  readonly type: string
  readonly id: string
  readonly payload: unknown
}

const defaultPollInterval = Duration.millis(500)

const makeQueue = (
  options: Options | undefined,
  store: PersistedQueue.PersistedQueueStore["Service"],
  outcomes: Outcomes.OutcomeStore
): DurableQueue => {
  const name = options?.name ?? "default"
  if (name.length === 0 || name.length > 200) {
    throw new RangeError(`Queue names have 1 to 200 characters, got ${JSON.stringify(name)}`)
  }
  return {
    [TypeId]: TypeId,
    name,
    pollInterval: Duration.fromInputUnsafe(options?.pollInterval ?? defaultPollInterval),
    store,
    outcomes
  }
}

const offer = (
  queue: DurableQueue,
  id: string,
  envelope: Envelope,
  delay: Duration.Input | undefined
): Effect.Effect<string, StoreError> =>
  queue.store.offer({
    name: queue.name,
    id,
    element: envelope,
    isCustomId: true,
    delay: positiveDelay(delay)
  }).pipe(
    Effect.mapError((cause) => new StoreError({ operation: "enqueue", cause })),
    Effect.as(envelope.id)
  )

const positiveDelay = (input: Duration.Input | undefined): Duration.Duration | undefined => {
  if (input === undefined) return undefined
  const delay = Duration.fromInputUnsafe(input)
  return Duration.isPositive(delay) ? delay : undefined
}
