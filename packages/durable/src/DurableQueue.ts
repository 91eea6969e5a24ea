/**
 * A durable job queue: producers enqueue typed jobs from any process; workers (see `DurableWorker`) claim them.
 * Jobs live in a store (SQLite file, PostgreSQL, or memory for tests) through effect's `PersistedQueue`, with
 * leases, attempt counting, retry delays, de-duplication by id and delays; this module adds job types, kept
 * results, dead letters, priorities with aging and dedupe keys (and, with `JobType`'s limits, caps and rates
 * shared by every process).
 *
 * @since 0.1.0
 */
import { PoolError } from "@fiberpool/core"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PersistedQueue from "effect/persistence/PersistedQueue"
import * as References from "effect/References"
import * as Schema from "effect/Schema"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import * as Tracer from "effect/Tracer"
import {
  EncodeFailed,
  InvalidJobId,
  JobCancelled,
  JobDeadLettered,
  MalformedResult,
  maxJobIdLength,
  PayloadTooLarge,
  StoreError
} from "./DurableError.ts"
import * as Flows from "./internal/flows.ts"
import * as MemoryStore from "./internal/memoryStore.ts"
import * as Outcomes from "./internal/outcomes.ts"
import * as QueueTable from "./internal/queueTable.ts"
import * as ScheduleStore from "./internal/scheduleStore.ts"
import * as SqlStore from "./internal/sqlStore.ts"
import * as Wakeups from "./internal/wakeups.ts"
import * as JobType from "./JobType.ts"
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
 * - `priority`: higher is claimed first, FIFO among equals (an integer between -1,000,000 and 1,000,000).
 *   Default: the type's `priority`, else 0. With the queue's `aging` (default 1 second, as core's pools), a
 *   waiting job gains one level per `aging` interval, so a stream of higher priorities never starves it.
 *   Memory, SQLite and PostgreSQL stores: on the others (Redis, effect's store on other databases) a priority
 *   other than 0 fails with `InvalidOptions`, naming `priority`, or `JobType(<name>).priority` when it is the
 *   type's default (pass `priority: 0` to enqueue such a type there).
 * - `dedupe`: suppresses duplicates by a key (at most 255 characters); a suppressed enqueue stores nothing and
 *   returns the id of the job that holds the key. `{ key, window }`: for `window` after the enqueue that took
 *   the key, whatever became of its job; `{ key, mode: "active" }`: while a job with this key is pending,
 *   delayed or running. Same stores as `priority`. See {@link Dedupe}.
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const options: DurableQueue.EnqueueOptions = { id: "invoice-42", delay: "10 seconds", priority: 5 }
 * console.log(options.id) // => invoice-42
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface EnqueueOptions {
  readonly id?: string | undefined
  readonly delay?: Duration.Input | undefined
  readonly priority?: number | undefined
  readonly dedupe?: Dedupe | undefined
}

/**
 * A dedupe key of {@link enqueue}: `{ key, window }` suppresses duplicates for `window` after the enqueue that
 * took the key; `{ key, mode: "active" }` while the key's job is pending, delayed or running (a job that ended,
 * done or dead-lettered, frees its key).
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const hourly: DurableQueue.Dedupe = { key: "report:acme", window: "1 hour" }
 * const single: DurableQueue.Dedupe = { key: "reindex:acme", mode: "active" }
 * console.log(hourly.key, single.key) // => report:acme reindex:acme
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Dedupe =
  | { readonly key: string; readonly window: Duration.Input }
  | { readonly key: string; readonly mode: "active" }

/**
 * A job that will not run again by itself: it used all its attempts, or its payload cannot be decoded, or its
 * type is unknown to the worker that claimed it, or its stored row cannot be read (JSON that does not parse, a
 * row over the worker's payload limit). `error` is its last error, rendered; `payload` is the stored (encoded,
 * JSON) payload, `undefined` when the row cannot be read. Its row in the queue table is in state `failed`.
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
  /** The largest payload `enqueue` accepts, in bytes of stored JSON. */
  readonly maxPayloadBytes: number
  /** How often a worker looks for rows that cannot be claimed or read (SQL stores). */
  readonly maintenanceInterval: Duration.Duration
  /** The retention of completed jobs and dead letters, applied by the workers. */
  readonly retention: {
    readonly completed: Duration.Duration
    readonly deadLetters: Duration.Duration
    readonly maxCompleted: number | undefined
    readonly maxDeadLetters: number | undefined
    readonly interval: Duration.Duration
  }
  /** @internal */
  readonly store: PersistedQueue.PersistedQueueStore["Service"]
  /** @internal priorities, dedupe and shared limits (memory, SQLite, PostgreSQL); undefined for effect's store */
  readonly jobs: SqlStore.JobStore | undefined
  /** @internal */
  readonly outcomes: Outcomes.OutcomeStore
  /** @internal direct access to the SQL queue table; undefined for the memory store */
  readonly table: QueueTable.QueueTable | undefined
  /** @internal LISTEN/NOTIFY wake-ups (PostgreSQL); undefined when the store only polls */
  readonly wakeups: Wakeups.Wakeups | undefined
  /** @internal flows (`DurableFlow`); undefined when the store keeps none */
  readonly flows: Flows.FlowStore | undefined
  /** @internal recurring schedules (see `DurableSchedule`); undefined when the store keeps none */
  readonly schedules: ScheduleStore.ScheduleStore | undefined
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
 * - `name`: the queue name (1 to 200 characters, default `"default"`). Several queues can share one database.
 * - `pollInterval`: how often an idle worker polls the store (default 500 ms). Jobs enqueued in the same process
 *   wake its workers at once; jobs from other processes are seen within one poll interval, or at once on
 *   PostgreSQL, whose workers are woken by `NOTIFY` (see `SqlOptions.notify`). Delayed jobs and retries are
 *   always found by polling.
 * - `maxPayloadBytes`: the largest payload `enqueue` accepts, counted as UTF-8 bytes of the stored JSON (the
 *   payload with its type and id). Default {@link defaultMaxPayloadBytes} (1 MiB). A worker also dead-letters a
 *   stored job over its own limit instead of claiming it (see the README's production section).
 * - `retention`: how long completed jobs (their results, and the record that de-duplicates their id) and dead
 *   letters are kept, by age and by count, see {@link RetentionOptions}.
 * - `aging`: how long a claimable job waits to gain 1 priority level (default 1 second, as core's pools), or
 *   `false` for strict priority order. Starvation bound: a job of priority `p` is overtaken only by jobs of
 *   priority `p' > p` that became claimable less than `(p' - p) × aging` after it. Every process of a queue
 *   must use the same `aging` (the order key is stored with each job).
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const options: DurableQueue.Options = { name: "mail", pollInterval: "200 millis", maxPayloadBytes: 64 * 1024 }
 * console.log(options.name) // => mail
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly name?: string | undefined
  readonly pollInterval?: Duration.Input | undefined
  readonly maxPayloadBytes?: number | undefined
  readonly retention?: RetentionOptions | undefined
  readonly aging?: Duration.Input | false | undefined
}

/**
 * Retention of finished jobs, applied by every worker of the queue every `interval` (default 1 minute).
 *
 * - `completed`: how long a completed job is kept: its result (for `result`) and the record that makes a second
 *   enqueue of its id a no-op. Default 7 days. Once it is removed, the same id can be enqueued again.
 * - `deadLetters`: how long a dead letter is kept (for `deadLetters` and `requeue`). Default 30 days.
 * - `maxCompleted`, `maxDeadLetters`: keep at most this many (the most recent), whatever their age. Default: no
 *   limit. The memory store applies `maxCompleted` to kept results only.
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const retention: DurableQueue.RetentionOptions = { completed: "1 day", maxDeadLetters: 10_000 }
 * console.log(retention.completed) // => 1 day
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface RetentionOptions {
  readonly completed?: Duration.Input | undefined
  readonly deadLetters?: Duration.Input | undefined
  readonly maxCompleted?: number | undefined
  readonly maxDeadLetters?: number | undefined
  readonly interval?: Duration.Input | undefined
}

/**
 * The default payload limit: 1 MiB of stored JSON, well below `@effect/sql-pg`'s 16 MiB message limit. Large
 * data belongs in a blob store; enqueue its key.
 *
 * @example
 * ```ts
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * console.log(DurableQueue.defaultMaxPayloadBytes) // => 1048576
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const defaultMaxPayloadBytes: number = 1024 * 1024

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
 * - `tableName`: PersistedQueue's table (default `"effect_queue"`); on SQLite and PostgreSQL the queue adds its
 *   columns to it and creates `<tableName>_starts`, `<tableName>_dedupe` and `<tableName>_fiberpool_migrations`;
 *   `outcomeTable`: results and dead letters (default `"fiberpool_outcomes"`), and the prefix of the tables kept
 *   with them (`<outcomeTable>_progress`, `_flows`, `_flow_children`); `scheduleTable`: recurring schedules, see
 *   `DurableSchedule` (default `"<outcomeTable>_schedules"`, so queues isolated by their table names keep
 *   separate schedules; PostgreSQL and SQLite only).
 * - `maintenanceInterval`: how often each worker looks for stored jobs that cannot be claimed (over its payload
 *   limit, at the head of the queue) or that the store failed without a dead letter (a row whose JSON does not
 *   parse), and dead-letters them. Default 5 seconds. A worker's first look comes at a random point of its first
 *   interval (as its first retention pass and metrics sample), so workers started together spread their scans.
 * - `notify`: PostgreSQL through `@effect/sql-pg` only: producers `NOTIFY` once an enqueue is committed (one
 *   notification for a burst of enqueues, none for a rolled-back transaction, sent in the background: the
 *   enqueue does not wait for it) and each worker holds one connection in `LISTEN`, so an idle worker in
 *   any process starts a new job within milliseconds; polling (`pollInterval`) stays the fallback, and covers
 *   the time a lost listening connection takes to come back (retried every second). Default `true`; `false`
 *   polls only. Other databases always poll.
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
  readonly scheduleTable?: string | undefined
  readonly maintenanceInterval?: Duration.Input | undefined
  readonly notify?: boolean | undefined
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
export const layerMemory = (options?: Options): Layer.Layer<Service, PoolError.InvalidOptions> =>
  Layer.effect(
    Service,
    Effect.gen(function*() {
      const jobs = yield* MemoryStore.make({ agingMillis: (yield* agingOption(options)) * 1000 })
      return yield* makeQueue(options, {
        store: jobs.store,
        jobs,
        outcomes: Outcomes.makeMemory(),
        flows: Flows.makeMemory(),
        schedules: ScheduleStore.makeMemory()
      })
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
export const layerSql = (
  options?: SqlOptions
): Layer.Layer<Service, SqlError | StoreError | PoolError.InvalidOptions, SqlClient.SqlClient> =>
  Layer.effect(
    Service,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const lockExpiration = yield* durationOption("lockExpiration", options?.lockExpiration, defaultLockExpiration)
      const lockRefreshInterval = yield* durationOption(
        "lockRefreshInterval",
        options?.lockRefreshInterval,
        Duration.max(Duration.divideUnsafe(lockExpiration, 6), Duration.millis(500))
      )
      const pollInterval = yield* durationOption("pollInterval", options?.pollInterval, defaultPollInterval)
      const tableName = options?.tableName ?? "effect_queue"
      const outcomeTable = options?.outcomeTable ?? "fiberpool_outcomes"
      const agingSeconds = yield* agingOption(options)
      // SQLite and PostgreSQL: this package's store (priorities, dedupe, shared limits); others: effect's
      const jobs = SqlStore.isSupported(sql)
        ? yield* SqlStore.make({ tableName, pollInterval, lockExpiration, lockRefreshInterval, agingSeconds })
        : undefined
      const store = jobs?.store ??
        (yield* PersistedQueue.makeStoreSql({ tableName, pollInterval, lockExpiration, lockRefreshInterval }))
      const outcomes = yield* Outcomes.makeSql(sql, outcomeTable)
      const table = yield* QueueTable.make(sql, tableName, outcomeTable, jobs && { agingSeconds })
      const wakeups = options?.notify === false
        ? undefined
        : yield* Wakeups.make(sql, tableName, store, { reconnectAfter: Duration.seconds(1) })
      // the flow tables' statements (ON CONFLICT ... RETURNING) are SQLite's and PostgreSQL's: other databases
      // keep no flows (`DurableFlow` fails with FlowsUnsupported)
      const flows = jobs === undefined ? undefined : yield* Flows.makeSql(sql, outcomeTable)
      const schedules = yield* ScheduleStore.makeSql(sql, options?.scheduleTable ?? `${outcomeTable}_schedules`)
      return yield* makeQueue(options, { store, jobs, outcomes, table, wakeups, flows, schedules })
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
): Layer.Layer<Service, SqlError | StoreError | PoolError.InvalidOptions> =>
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
 * When a tracer other than Effect's built-in one is installed, the enqueue runs in a `send <queue>` span (kind
 * `producer`, OpenTelemetry messaging attributes) whose context is stored with the job: the worker's
 * `fiberpool.job` span, in whatever process, is its child.
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
export const enqueue = <T extends JobType.AnyContract>(
  type: T,
  payload: JobType.Payload<T>,
  options?: EnqueueOptions
): Effect.Effect<string, EnqueueError, Service> =>
  JobType.validate(type).pipe(
    Effect.andThen(Schema.encodeUnknownEffect(type.payloadJson)(payload)),
    Effect.mapError((error) =>
      error._tag === "InvalidOptions" ? error : new EncodeFailed({ jobType: type.name, issue: error.message })
    ),
    Effect.flatMap((encoded) => enqueueEncodedWith(type.name, encoded, options, type.priority))
  )

/**
 * What `enqueue` can fail with: a bad job type, id or payload (nothing is stored), or the store.
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const describe = (error: DurableQueue.EnqueueError): string => error._tag
 * console.log(typeof describe) // => function
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export type EnqueueError = EncodeFailed | PayloadTooLarge | InvalidJobId | PoolError.InvalidOptions | StoreError

/**
 * Enqueues a job whose payload is already encoded (the JSON form of the type's schema), for producers that do
 * not share the schema (another service, an older release). A payload that does not decode is dead-lettered
 * by the worker with `MalformedPayload`; one that is not JSON (a bigint, a cycle) fails with `EncodeFailed`.
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
): Effect.Effect<string, EnqueueError, Service> => enqueueEncodedWith(type, payload, options, undefined)

/** `enqueueEncoded` with the type's default priority (`JobType.priority`), used when the options set none. */
const enqueueEncodedWith = (
  type: string,
  payload: unknown,
  options: EnqueueOptions | undefined,
  typePriority: number | undefined
): Effect.Effect<string, EnqueueError, Service> =>
  Service.use((queue) =>
    Effect.gen(function*() {
      if (typeof type !== "string" || type === "" || type.length > 100) {
        return yield* new PoolError.InvalidOptions({
          option: "type",
          value: JSON.stringify(type),
          expected: "a job type name of 1 to 100 characters"
        })
      }
      const id = options?.id ?? crypto.randomUUID()
      if (typeof id !== "string" || id.length === 0 || id.length > maxJobIdLength) {
        return yield* new InvalidJobId({ id: String(id), length: typeof id === "string" ? id.length : 0 })
      }
      const delay = yield* delayOption(options?.delay)
      const order = yield* orderOptions(queue, options, type, typePriority)
      const store = (trace: TraceContext | undefined) =>
        Effect.gen(function*() {
          const envelope: Envelope = trace === undefined ? { type, id, payload } : { type, id, payload, trace }
          yield* envelopeJson(queue, envelope)
          return yield* offer(queue, id, envelope, delay, order)
        })
      if (!(yield* isTraced)) return yield* store(undefined)
      // the producer span (OpenTelemetry messaging: kind producer, operation "send"); its context travels with
      // the job, so the worker's `fiberpool.job` span is its child
      return yield* Effect.flatMap(
        Effect.currentSpan,
        (span) => store({ traceId: span.traceId, spanId: span.spanId, sampled: span.sampled })
      ).pipe(
        Effect.catchTag("NoSuchElementError", () => store(undefined)),
        Effect.withSpan(`send ${queue.name}`, {
          kind: "producer",
          attributes: {
            "messaging.system": messagingSystem,
            "messaging.destination.name": queue.name,
            "messaging.operation.type": "send",
            "messaging.operation.name": "enqueue",
            "messaging.message.id": id,
            "fiberpool.job.type": type
          }
        }, { captureStackTrace: false })
      )
    })
  )

/**
 * Waits for the result of a job, run by any process, decoded with the type's `result` schema.
 *
 * **Details**
 *
 * Polls the store (every 200 ms by default) until the job has finished: it then succeeds with the result, or
 * fails with `JobDeadLettered` if the job was dead-lettered (used all its attempts, or its row cannot be read),
 * or with `MalformedResult` if the kept result does not decode. Bound the wait with `Effect.timeout`. Only types
 * with a `result` schema keep results; for the others it fails with `InvalidOptions` at once.
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
export const result = <T extends JobType.AnyContract>(
  type: T,
  id: string,
  options?: { readonly pollInterval?: Duration.Input | undefined }
): Effect.Effect<
  JobType.Result<T>,
  JobDeadLettered | JobCancelled | MalformedResult | PoolError.InvalidOptions | StoreError,
  Service
> =>
  Service.use(Effect.fnUntraced(function*(queue) {
    const resultJson = type.resultJson
    if (resultJson === undefined) {
      return yield* new PoolError.InvalidOptions({
        option: "result",
        value: type.name,
        expected: "a job type with a `result` schema (only those keep results)"
      })
    }
    const interval = yield* durationOption("pollInterval", options?.pollInterval, Duration.millis(200))
    const poll: Effect.Effect<
      JobType.Result<T>,
      JobDeadLettered | JobCancelled | MalformedResult | StoreError
    > = Effect.flatMap(
      queue.outcomes.get(queue.name, id),
      (row) => {
        if (row === undefined) return Effect.andThen(Effect.sleep(interval), poll)
        if (row.status === "cancelled") return Effect.fail(new JobCancelled({ jobId: id, jobType: row.jobType }))
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
        const malformed = (issue: string) => new MalformedResult({ jobId: id, jobType: row.jobType, issue })
        return parseJson(row.result ?? "null").pipe(
          Effect.mapError(malformed),
          Effect.flatMap((json) =>
            Effect.mapError(Schema.decodeUnknownEffect(resultJson)(json), (error) => malformed(error.message))
          )
        )
      }
    )
    return yield* poll
  }))

/**
 * Lists dead letters, oldest first (at most `limit`, default 100), optionally of one type.
 *
 * **Details**
 *
 * Page with `after`: pass the last dead letter of a page to get the next one (ordered by `failedAt`, then `id`,
 * so a page boundary never skips or repeats one).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const page = yield* DurableQueue.deadLetters({ type: "email", limit: 10 })
 *   assert.deepStrictEqual(page, [])
 *   const next = yield* DurableQueue.deadLetters({ limit: 10, after: page.at(-1) })
 *   assert.deepStrictEqual(next, [])
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const deadLetters = (
  options?: {
    readonly type?: string | undefined
    readonly limit?: number | undefined
    readonly after?: Pick<DeadLetter, "id" | "failedAt"> | undefined
  }
): Effect.Effect<ReadonlyArray<DeadLetter>, StoreError, Service> =>
  Service.use((queue) =>
    Effect.gen(function*() {
      const after = options?.after
      const rows = yield* queue.outcomes.listDead(queue.name, {
        jobType: options?.type,
        limit: Math.max(1, Math.min(Math.floor(options?.limit ?? 100), 10_000)),
        after: after === undefined ? undefined : { finishedAt: after.failedAt, jobId: after.id }
      })
      const elements = queue.table === undefined
        ? new Map<string, string>()
        : yield* queue.table.elements(
          queue.name,
          rows.filter((row) => row.payload === null).map((row) => row.jobId),
          queue.maxPayloadBytes
        )
      return rows.map((row): DeadLetter => ({
        id: row.jobId,
        type: row.jobType,
        payload: row.payload !== null
          ? parseJsonOrUndefined(row.payload)
          : envelopePayload(parseJsonOrUndefined(elements.get(row.jobId))),
        error: row.error ?? "",
        attempts: row.attempts,
        failedAt: row.finishedAt
      }))
    })
  )

/**
 * A job's last progress report (see `JobType.reportProgress`): the reported value, the attempt that reported it,
 * and when (epoch milliseconds).
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const progress: DurableQueue.Progress = { value: { done: 3, total: 10 }, attempt: 1, updatedAt: 0 }
 * console.log(progress.attempt) // => 1
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Progress {
  readonly value: unknown
  readonly attempt: number
  readonly updatedAt: number
}

/**
 * Reads the last progress a job's handler reported (in any process), or `undefined` if it reported none (or
 * retention removed it).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   assert.strictEqual(yield* DurableQueue.progress("no-such-job"), undefined)
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const progress = (id: string): Effect.Effect<Progress | undefined, StoreError, Service> =>
  Service.use((queue) =>
    Effect.map(queue.outcomes.getProgress(queue.name, id), (row) =>
      row === undefined
        ? undefined
        : { value: parseJsonOrUndefined(row.progress), attempt: row.attempt, updatedAt: row.updatedAt })
  )

/**
 * Puts a dead letter back in the queue, with a fresh attempt count, and removes it from the dead letters. Returns
 * `false` if there is no dead letter with this id.
 *
 * **Details**
 *
 * The job keeps its id (the handler sees the same `id`) and its priority. With a SQL store its row goes back to
 * `pending` with no attempts, in one transaction with the removal of the dead letter.
 *
 * A flow's parent dead-lettered because of a child (`DurableFlow`) runs now, with its children as they are
 * ({@link requeueAll} re-queues its dead children instead). A flow's dead child runs again; once it succeeds, a
 * parent it failed is offered again (if no other child is dead or pending).
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
): Effect.Effect<boolean, StoreError | PoolError.InvalidOptions, Service> =>
  Service.use((queue) =>
    Effect.flatMap(delayOption(options?.delay), (delay) =>
      queue.outcomes.transaction(Effect.gen(function*() {
        const row = yield* queue.outcomes.get(queue.name, id)
        if (row === undefined || row.status !== "dead") return false
        if (queue.flows !== undefined) {
          // a flow's parent dead-lettered by a child (it never was in the queue): it runs now, under its own id
          const now = yield* Clock.currentTimeMillis
          const flow = yield* queue.flows.move(queue.name, id, "failed", "offered", now)
          if (flow !== undefined) {
            yield* queue.outcomes.remove(queue.name, id)
            yield* offerFlowParent(queue, id, flow.envelope, delay)
            return true
          }
        }
        // a flow's parent that ran and was dead-lettered: its flow is kept until its next outcome
        const reopen = queue.flows === undefined
          ? Effect.succeed(false)
          : Effect.map(
            Effect.flatMap(Clock.currentTimeMillis, (now) => queue.flows!.move(queue.name, id, "done", "offered", now)),
            (flow) => flow !== undefined
          )
        // SQL stores: the row still holds the job; put it back as it was enqueued
        if (queue.table !== undefined && (yield* queue.table.resetFailed(queue.name, id, delay))) {
          yield* reopen
          yield* queue.outcomes.remove(queue.name, id)
          if (queue.wakeups !== undefined && delay === undefined) {
            yield* queue.wakeups.notify(queue.name)
          }
          return true
        }
        // the memory store (its rows cannot be reset): a new element, from the dead letter's copy
        if (row.payload === null) return false
        const now = yield* Clock.currentTimeMillis
        const storeId = `${id.slice(0, 230)}~requeued-${now}`
        const envelope: Envelope = { type: row.jobType, id, payload: parseJsonOrUndefined(row.payload) }
        // the copy keeps the priority the job was stored with (not its dedupe key: another job may hold it by now)
        const priority = yield* MemoryStore.keptPriority(queue.jobs, queue.name, id)
        yield* offer(
          queue,
          storeId,
          (yield* reopen) ? { ...envelope, flow: true } : envelope,
          delay,
          priority === 0 ? undefined : { priority, dedupe: undefined }
        )
        yield* queue.outcomes.remove(queue.name, id)
        return true
      })))
  )

/**
 * What {@link cancel} did: `"cancelled"` (the job was pending or delayed, and will never run), or why it could
 * not: `"running"` (a worker has claimed it: it runs to its end), `"completed"`, `"failed"` (already a dead
 * letter, or cancelled before), `"not-found"` (no such job, or retention removed it).
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const explain = (outcome: DurableQueue.CancelResult) =>
 *   outcome === "cancelled" ? "will not run" : `cannot cancel: ${outcome}`
 * console.log(explain("running")) // => cannot cancel: running
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type CancelResult = "cancelled" | "running" | "completed" | "failed" | "not-found"

/**
 * Cancels a pending or delayed job: it will never run, and `result` fails with `JobCancelled`.
 *
 * **Details**
 *
 * A job a worker has already claimed is not touched (`"running"`): durable jobs run to their end, their handler
 * decides. Once its outcome is recorded (what `result` reads) it is `"completed"` or `"failed"`. The check and the cancellation are one statement, so a job is either cancelled or claimed, never
 * both. SQL stores only: the memory and Redis stores fail with `StoreError`.
 *
 * A flow's parent still waiting for its children (`DurableFlow`) is cancelled too (its children still run); a
 * cancelled child is a dead child of its flow.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Layer, Schema } from "effect"
 * import { DurableQueue, JobType, SqliteClient } from "@fiberpool/durable"
 *
 * const Ping = JobType.define({ name: "ping", payload: Schema.String })
 * const Queue = DurableQueue.layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
 * const program = Effect.gen(function*() {
 *   yield* DurableQueue.enqueue(Ping, "later", { id: "p1", delay: "1 hour" })
 *   assert.strictEqual(yield* DurableQueue.cancel("p1"), "cancelled")
 *   assert.strictEqual(yield* DurableQueue.cancel("p1"), "failed")
 *   assert.strictEqual(yield* DurableQueue.cancel("p2"), "not-found")
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(Queue)))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const cancel = (id: string): Effect.Effect<CancelResult, StoreError, Service> =>
  Service.use((queue) => {
    const table = queue.table
    if (table === undefined) {
      return Effect.fail(
        new StoreError({
          operation: "cancel",
          cause: new Error("only the SQL stores can cancel (not the memory or Redis store)")
        })
      )
    }
    return queue.outcomes.transaction(Effect.gen(function*() {
      const { head, outcome } = yield* table.cancel(queue.name, id)
      const now = yield* Clock.currentTimeMillis
      if (outcome === "not-found" && queue.flows !== undefined) {
        // a flow's parent waits in the flow table, not in the queue
        const flow = yield* queue.flows.move(queue.name, id, "waiting", "cancelled", now)
        if (flow === undefined) {
          // a flow's parent dead-lettered by a child, or cancelled before
          return (yield* queue.flows.get(queue.name, id)) === undefined ? outcome : "failed"
        }
        yield* queue.outcomes.put(queue.name, {
          jobId: id,
          jobType: flow.parentType,
          status: "cancelled",
          payload: null,
          result: null,
          error: "cancelled",
          attempts: 0,
          finishedAt: now
        })
        // a nested flow's parent is a child of its own parent
        yield* settleFlowChild(queue, id, { status: "dead", error: "cancelled" })
        return "cancelled"
      }
      if (outcome === "running") {
        // a worker records a job's outcome before its claim is released (the release is batched, in the
        // background): a job whose result is recorded has ended, whatever its row still says
        const recorded = yield* queue.outcomes.get(queue.name, id)
        if (recorded?.status === "succeeded") return "completed"
        if (recorded?.status === "dead") return "failed"
      }
      if (outcome !== "cancelled") return outcome
      yield* queue.outcomes.put(queue.name, {
        jobId: id,
        jobType: typeFromHead(head),
        status: "cancelled",
        payload: null,
        result: null,
        error: "cancelled",
        attempts: 0,
        finishedAt: now
      })
      // an offered flow's parent: its flow is done
      yield* finishFlowParent(queue, id)
      yield* settleFlowChild(queue, id, { status: "dead", error: "cancelled" })
      return outcome
    }))
  })

/**
 * Counts of one job type in a queue, see {@link stats}.
 *
 * - `pending`: claimable now; `delayed`: waiting for their delay or retry delay; `claimed`: held by a worker
 *   (running, or held by a process that died until its lease expires);
 * - `deadLetters`, `cancelled`: kept until retention removes them;
 * - `oldestPendingMillis`: how long the oldest claimable job has been claimable (`undefined` when none is): the
 *   backlog's age, the figure to alert on.
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const stats: DurableQueue.TypeStats = {
 *   type: "email",
 *   pending: 3,
 *   delayed: 1,
 *   claimed: 2,
 *   deadLetters: 0,
 *   cancelled: 0,
 *   oldestPendingMillis: 1200
 * }
 * console.log(stats.pending + stats.delayed) // => 4
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface TypeStats {
  readonly type: string
  readonly pending: number
  readonly delayed: number
  readonly claimed: number
  readonly deadLetters: number
  readonly cancelled: number
  readonly oldestPendingMillis: number | undefined
}

/**
 * Counts of a queue, see {@link stats}: by job type, and the completed jobs the store keeps (all types).
 *
 * @example
 * ```ts
 * import type { DurableQueue } from "@fiberpool/durable"
 *
 * const stats: DurableQueue.QueueStats = { queue: "mail", types: [], completed: 0 }
 * console.log(stats.queue) // => mail
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface QueueStats {
  readonly queue: string
  readonly types: ReadonlyArray<TypeStats>
  readonly completed: number
}

/**
 * Counts jobs of the queue by state and job type, with the age of the oldest claimable job.
 *
 * **Details**
 *
 * Reads the unfinished rows of the queue (through the store's pending-only index) and counts the completed ones:
 * cheap for a backlog of thousands, a scan for millions; poll it every few seconds, not per job.
 * SQL stores only: the memory and Redis stores fail with `StoreError`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Layer, Schema } from "effect"
 * import { DurableQueue, JobType, SqliteClient } from "@fiberpool/durable"
 *
 * const Ping = JobType.define({ name: "ping", payload: Schema.String })
 * const Queue = DurableQueue.layerSql().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })))
 * const program = Effect.gen(function*() {
 *   yield* DurableQueue.enqueue(Ping, "a")
 *   yield* DurableQueue.enqueue(Ping, "b", { delay: "1 hour" })
 *   const stats = yield* DurableQueue.stats
 *   assert.deepStrictEqual(stats.types.map((t) => [t.type, t.pending, t.delayed]), [["ping", 1, 1]])
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(Queue)))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const stats: Effect.Effect<QueueStats, StoreError, Service> = Service.use((queue) => queueStats(queue))

/**
 * Puts every dead letter (optionally of one type) back in the queue, as {@link requeue} does for one, and returns
 * how many were re-queued. Works in pages of 100, each dead letter in its own transaction; one that appears
 * meanwhile may or may not be included.
 *
 * **Details**
 *
 * A flow's parent dead-lettered by its children (`DurableFlow`, `onChildFailure: "fail-parent"`) is not run with
 * dead children: its dead children are re-queued instead (whatever their type), and their successes revive it,
 * as re-queueing them one by one does. It is not counted. A dead child without a dead letter counts as on its way
 * back (re-queued before). A parent none of whose dead children can run again (cancelled ones) is re-queued
 * itself, and runs with its children as they are.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { DurableQueue } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   assert.strictEqual(yield* DurableQueue.requeueAll({ type: "email" }), 0)
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const requeueAll = (
  options?: { readonly type?: string | undefined; readonly delay?: Duration.Input | undefined }
): Effect.Effect<number, StoreError | PoolError.InvalidOptions, Service> =>
  Effect.gen(function*() {
    let total = 0
    let after: Pick<DeadLetter, "id" | "failedAt"> | undefined
    while (true) {
      const page = yield* deadLetters({ type: options?.type, limit: 100, after })
      if (page.length === 0) return total
      for (const letter of page) {
        total += (yield* requeueFlow(letter.id, options?.delay)).requeued
      }
      after = page[page.length - 1]
    }
  })

/**
 * Re-queues a dead letter, or, for a flow's parent its children failed, the dead children whose successes revive
 * it (a nested parent the same way). `back`: something will run it again; `requeued`: the jobs put back.
 */
const requeueFlow = (
  id: string,
  delay: Duration.Input | undefined
): Effect.Effect<
  { readonly back: boolean; readonly requeued: number },
  StoreError | PoolError.InvalidOptions,
  Service
> =>
  Effect.gen(function*() {
    const queue = yield* Service
    const flows = queue.flows
    const flow = flows === undefined ? undefined : yield* flows.get(queue.name, id)
    if (flows !== undefined && flow?.state === "failed") {
      let back = false
      let requeued = 0
      for (const child of yield* flows.children(queue.name, id)) {
        if (child.state !== "dead") continue
        const letter = yield* queue.outcomes.get(queue.name, child.childId)
        if (letter === undefined) {
          // no dead letter any more: re-queued already (by this call, or before), it is on its way
          back = true
        } else if (letter.status === "dead") {
          const again = yield* requeueFlow(child.childId, delay)
          back ||= again.back
          requeued += again.requeued
        }
      }
      if (back) return { back, requeued }
    }
    const requeued = yield* requeue(id, { delay })
    return { back: requeued, requeued: requeued ? 1 : 0 }
  })

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
  /** the producer span's context (absent when the producer traced nothing, and in rows of earlier releases) */
  readonly trace?: TraceContext | undefined
  /** a flow's child: its parent's id (`DurableFlow`) */
  readonly parent?: string | undefined
  /** a flow's parent (`DurableFlow`): its flow is marked done when its outcome is recorded */
  readonly flow?: true | undefined
}

/** @internal */
export interface TraceContext {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

/** @internal `messaging.system` of the spans, per the OpenTelemetry messaging conventions. */
export const messagingSystem = "fiberpool"

/**
 * Whether to trace: a tracer other than Effect's built-in one is installed (an exporter listens), as the pool's
 * `spans: "auto"` decides.
 *
 * @internal
 */
export const isTraced: Effect.Effect<boolean> = Effect.map(
  Effect.context<never>(),
  (context) =>
    Context.get(context, References.TracerEnabled) && Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer
)

/** @internal */
export const defaultPollInterval: Duration.Duration = Duration.millis(500)

/**
 * Declares the shared limits (`concurrency.global`, `rateLimit`) of a worker's types to the queue's store, for
 * this process's claims. Effect's store (databases other than SQLite and PostgreSQL) has none: a type with limits
 * fails with `InvalidOptions` there.
 *
 * @internal
 */
export const declareLimits = (
  queue: DurableQueue,
  types: ReadonlyArray<JobType.AnyContract>
): Effect.Effect<void, PoolError.InvalidOptions> =>
  Effect.gen(function*() {
    const limits = new Map<string, SqlStore.TypeLimits>()
    for (const type of types) {
      if (type.concurrency === undefined && type.rateLimit === undefined) continue
      if (queue.jobs === undefined) {
        return yield* new PoolError.InvalidOptions({
          option: `JobType(${type.name}).${type.concurrency === undefined ? "rateLimit" : "concurrency"}`,
          value: JSON.stringify(type.concurrency ?? type.rateLimit),
          expected: "a queue in memory, SQLite or PostgreSQL (this store keeps no limits shared by processes)"
        })
      }
      limits.set(type.name, {
        global: type.concurrency?.global,
        rate: type.rateLimit === undefined ? undefined : {
          limit: type.rateLimit.limit,
          intervalMillis: Duration.toMillis(Duration.fromInputUnsafe(type.rateLimit.interval))
        }
      })
    }
    if (limits.size > 0 && queue.jobs !== undefined) yield* queue.jobs.setLimits(queue.name, limits)
  })

/**
 * @internal What a queue is made of: the job store and outcome store, and the optional parts a store may lack
 * (each `undefined` when it does: the operations that need it fail with a typed error naming what is missing).
 */
export interface QueueParts {
  readonly store: PersistedQueue.PersistedQueueStore["Service"]
  readonly outcomes: Outcomes.OutcomeStore
  /** this package's store (memory, SQLite, PostgreSQL): priorities, dedupe keys, shared limits */
  readonly jobs?: SqlStore.JobStore | undefined
  readonly table?: QueueTable.QueueTable | undefined
  readonly wakeups?: Wakeups.Wakeups | undefined
  readonly flows?: Flows.FlowStore | undefined
  readonly schedules?: ScheduleStore.ScheduleStore | undefined
}

/** @internal the queue handle over a store; the layers of this module and `DurableRedis` build it */
export const makeQueue = (
  options: Options & { readonly maintenanceInterval?: Duration.Input | undefined } | undefined,
  parts: QueueParts
): Effect.Effect<DurableQueue, PoolError.InvalidOptions> =>
  Effect.gen(function*() {
    const name = options?.name ?? "default"
    if (typeof name !== "string" || name.length === 0 || name.length > 200) {
      return yield* new PoolError.InvalidOptions({
        option: "name",
        value: JSON.stringify(name),
        expected: "a queue name of 1 to 200 characters"
      })
    }
    const maxPayloadBytes = yield* countOption("maxPayloadBytes", options?.maxPayloadBytes, defaultMaxPayloadBytes)
    if (maxPayloadBytes === undefined || maxPayloadBytes < 1) {
      return yield* new PoolError.InvalidOptions({
        option: "maxPayloadBytes",
        value: String(maxPayloadBytes),
        expected: "a positive integer"
      })
    }
    const retention = options?.retention
    return {
      [TypeId]: TypeId,
      name,
      pollInterval: yield* durationOption("pollInterval", options?.pollInterval, defaultPollInterval),
      maxPayloadBytes,
      maintenanceInterval: yield* durationOption(
        "maintenanceInterval",
        options?.maintenanceInterval,
        Duration.seconds(5)
      ),
      retention: {
        completed: yield* durationOption("retention.completed", retention?.completed, Duration.days(7)),
        deadLetters: yield* durationOption("retention.deadLetters", retention?.deadLetters, Duration.days(30)),
        maxCompleted: yield* countOption("retention.maxCompleted", retention?.maxCompleted, undefined),
        maxDeadLetters: yield* countOption("retention.maxDeadLetters", retention?.maxDeadLetters, undefined),
        interval: yield* durationOption("retention.interval", retention?.interval, Duration.minutes(1))
      },
      store: parts.store,
      jobs: parts.jobs,
      outcomes: parts.outcomes,
      table: parts.table,
      wakeups: parts.wakeups,
      flows: parts.flows,
      schedules: parts.schedules
    }
  })

/** @internal */
export const offer = (
  queue: DurableQueue,
  id: string,
  envelope: Envelope,
  delay: Duration.Duration | undefined,
  order?: { readonly priority: number; readonly dedupe: SqlStore.OfferJob["dedupe"] }
): Effect.Effect<string, StoreError> => Effect.map(offerReporting(queue, id, envelope, delay, order), (o) => o.id)

/**
 * @internal `offer`, saying whether the job was stored (`false`: its id, or its dedupe key, is another job's; the
 * stores of effect do not say, and answer `true`)
 */
export const offerReporting = (
  queue: DurableQueue,
  id: string,
  envelope: Envelope,
  delay: Duration.Duration | undefined,
  order?: { readonly priority: number; readonly dedupe: SqlStore.OfferJob["dedupe"] }
): Effect.Effect<{ readonly id: string; readonly inserted: boolean }, StoreError> =>
  (queue.jobs === undefined
    ? Effect.as(queue.store.offer({ name: queue.name, id, element: envelope, isCustomId: true, delay }), {
      id: envelope.id,
      inserted: true
    })
    : Effect.map(
      queue.jobs.offerJob({
        name: queue.name,
        id,
        element: envelope,
        delay,
        jobType: envelope.type,
        priority: order?.priority ?? 0,
        dedupe: order?.dedupe
      }),
      // a job suppressed by its dedupe key answers with the id of the job that holds the key (the store's id is
      // the job's id, but for the memory store's requeued copies)
      (stored) => ({ id: stored.id === id ? envelope.id : stored.id, inserted: stored.inserted })
    )).pipe(
      Effect.mapError((cause) => new StoreError({ operation: "enqueue", cause })),
      // a delayed job is found by polling when its time comes; a lost notification only costs a poll interval
      Effect.tap(
        queue.wakeups === undefined || delay !== undefined ? Effect.void : queue.wakeups.notify(queue.name)
      )
    )

/** @internal */
export const durationOption = (
  option: string,
  input: Duration.Input | undefined,
  fallback: Duration.Duration
): Effect.Effect<Duration.Duration, PoolError.InvalidOptions> => {
  if (input === undefined) return Effect.succeed(fallback)
  const duration = Duration.fromInput(input)
  return Option.isSome(duration) && !Duration.isNegative(duration.value)
    ? Effect.succeed(duration.value)
    : Effect.fail(new PoolError.InvalidOptions({ option, value: String(input), expected: "a duration ≥ 0" }))
}

const countOption = <D extends number | undefined>(
  option: string,
  input: number | undefined,
  fallback: D
): Effect.Effect<number | D, PoolError.InvalidOptions> =>
  input === undefined
    ? Effect.succeed(fallback)
    : Number.isSafeInteger(input) && input >= 0
    ? Effect.succeed(input)
    : Effect.fail(new PoolError.InvalidOptions({ option, value: String(input), expected: "an integer ≥ 0" }))

/** The queue's `aging` in seconds, 0 for strict priorities. */
const agingOption = (options: Options | undefined): Effect.Effect<number, PoolError.InvalidOptions> =>
  Effect.gen(function*() {
    if (options?.aging === false) return 0
    const seconds = Duration.toSeconds(yield* durationOption("aging", options?.aging, Duration.seconds(1)))
    if (seconds > 0 && Number.isFinite(seconds)) return seconds
    return yield* new PoolError.InvalidOptions({
      option: "aging",
      value: String(options?.aging),
      expected: "a positive finite duration, or false"
    })
  })

/**
 * Reads `priority` (else the type's) and `dedupe` of an enqueue; the stores without them (Redis, effect's on other
 * databases) refuse them, naming `JobType(<type>).priority` when the priority is the type's.
 */
const orderOptions = (
  queue: DurableQueue,
  options: EnqueueOptions | undefined,
  type: string,
  typePriority: number | undefined
): Effect.Effect<
  { readonly priority: number; readonly dedupe: SqlStore.OfferJob["dedupe"] } | undefined,
  PoolError.InvalidOptions
> =>
  Effect.gen(function*() {
    const fromType = options?.priority === undefined && typePriority !== undefined
    const priorityOption = fromType ? `JobType(${type}).priority` : "priority"
    const priority = options?.priority ?? typePriority ?? 0
    if (!JobType.isPriority(priority)) {
      return yield* new PoolError.InvalidOptions({
        option: priorityOption,
        value: String(priority),
        expected: JobType.priorityExpected
      })
    }
    const dedupe = options?.dedupe
    let resolved: SqlStore.OfferJob["dedupe"] = undefined
    if (dedupe !== undefined) {
      if (typeof dedupe.key !== "string" || dedupe.key.length === 0 || dedupe.key.length > 255) {
        return yield* new PoolError.InvalidOptions({
          option: "dedupe.key",
          value: JSON.stringify(dedupe.key),
          expected: "a string of 1 to 255 characters"
        })
      }
      if ("mode" in dedupe) {
        if (dedupe.mode !== "active") {
          return yield* new PoolError.InvalidOptions({
            option: "dedupe.mode",
            value: JSON.stringify(dedupe.mode),
            expected: `"active"`
          })
        }
        resolved = { key: dedupe.key, mode: "active" }
      } else {
        const window = Duration.fromInput(dedupe.window)
        if (Option.isNone(window) || !Duration.isFinite(window.value) || !Duration.isPositive(window.value)) {
          return yield* new PoolError.InvalidOptions({
            option: "dedupe.window",
            value: String(dedupe.window),
            expected: "a positive finite duration"
          })
        }
        resolved = { key: dedupe.key, windowMillis: Math.ceil(Duration.toMillis(window.value)) }
      }
    }
    if (queue.jobs === undefined && (priority !== 0 || resolved !== undefined)) {
      return yield* new PoolError.InvalidOptions({
        option: priority !== 0 ? priorityOption : "dedupe",
        value: priority !== 0 ? String(priority) : JSON.stringify(dedupe),
        expected: fromType && priority !== 0
          ? "no priority on this queue's store, which does not order by priority: a job type without one, or " +
            "priority: 0 in the enqueue's options (a queue in memory, SQLite or PostgreSQL orders by it)"
          : "a queue in memory, SQLite or PostgreSQL (this store does not order by priority or keep dedupe keys)"
      })
    }
    return priority === 0 && resolved === undefined ? undefined : { priority, dedupe: resolved }
  })

/** A delay of zero or less means "now": the stores only take positive delays. */
const delayOption = (
  input: Duration.Input | undefined
): Effect.Effect<Duration.Duration | undefined, PoolError.InvalidOptions> => {
  if (input === undefined) return Effect.succeed(undefined)
  const delay = Duration.fromInput(input)
  if (Option.isNone(delay) || !Duration.isFinite(delay.value)) {
    return Effect.fail(
      new PoolError.InvalidOptions({ option: "delay", value: String(input), expected: "a finite duration" })
    )
  }
  return Effect.succeed(Duration.isPositive(delay.value) ? delay.value : undefined)
}

/**
 * A job's envelope as its store writes it: its JSON (`JSON.stringify` throws on bigints and cycles, the boundary
 * with a payload of unknown shape), within the queue's `maxPayloadBytes`. The one check of `enqueue`, flows and
 * schedules.
 *
 * @internal
 */
export const envelopeJson = (
  queue: DurableQueue,
  envelope: Envelope
): Effect.Effect<string, EncodeFailed | PayloadTooLarge> =>
  Effect.flatMap(
    Effect.try({
      try: () => JSON.stringify(envelope),
      catch: (error) => new EncodeFailed({ jobType: envelope.type, issue: String(error) })
    }),
    (json) => {
      const bytes = utf8Length(json)
      return bytes > queue.maxPayloadBytes
        ? Effect.fail(new PayloadTooLarge({ jobType: envelope.type, bytes, maxBytes: queue.maxPayloadBytes }))
        : Effect.succeed(json)
    }
  )

/**
 * UTF-8 length of a string, without encoding it: lone surrogates count 3 bytes, as `TextEncoder` writes them.
 *
 * @internal
 */
export const utf8Length = (text: string): number => {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4
        i++
      } else bytes += 3
    } else bytes += 3
  }
  return bytes
}

/** @internal */
export const parseJson = (text: string): Effect.Effect<unknown, string> =>
  // JSON.parse throws on bad input: the boundary with stored text
  Effect.try({ try: () => JSON.parse(text) as unknown, catch: (error) => String(error) })

const parseOption = Option.liftThrowable((text: string): unknown => JSON.parse(text))

/** @internal */
export const parseJsonOrUndefined = (text: string | undefined): unknown =>
  text === undefined ? undefined : Option.getOrUndefined(parseOption(text))

const envelopePayload = (element: unknown): unknown =>
  typeof element === "object" && element !== null && "payload" in element ? element.payload : undefined

/**
 * Reads the type out of the start of a stored element: `enqueue` writes `{"type":...,"id":...,"payload":...}`
 * in that order, so the type is readable from a row too large (or too broken) to parse.
 *
 * @internal
 */
export const typeFromHead = (head: string | null): string => {
  const match = head === null ? null : /^\{"type":("(?:[^"\\]|\\.)*")/.exec(head)
  if (match === null) return "<unreadable>"
  const parsed = parseJsonOrUndefined(match[1])
  return typeof parsed === "string" ? parsed : "<unreadable>"
}

/**
 * Dead-letters the stored jobs no worker can take: rows at the head of the queue over this worker's payload
 * limit (they would fail every claim), and rows the store failed by itself without a dead letter (an element
 * whose JSON does not parse). Run by every worker each `maintenanceInterval`. On Redis it also offers the flow
 * parents whose offer a dead process left undone (`Flows.recover`).
 *
 * @internal
 */
export const maintain = (queue: DurableQueue): Effect.Effect<number, StoreError> =>
  Effect.gen(function*() {
    yield* Flows.recover(queue, (parentId, stored) => offerFlowParent(queue, parentId, stored, undefined))
    const table = queue.table
    if (table === undefined) return 0
    const oversize = yield* table.quarantineOversize(queue.name, queue.maxPayloadBytes)
    const orphans = yield* table.orphans(queue.name)
    const now = yield* Clock.currentTimeMillis
    const letters = [
      ...oversize.map((row) => ({
        id: row.id,
        type: typeFromHead(row.head),
        attempts: row.attempts,
        error:
          `the stored job is ${row.bytes} bytes, over this worker's limit of ${queue.maxPayloadBytes} (option "maxPayloadBytes"): it cannot be claimed`
      })),
      // the quarantine's own rows are orphans until their dead letter is written: they are listed above
      ...orphans.filter((orphan) => !oversize.some((row) => row.id === orphan.id)).map((row) => ({
        id: row.id,
        type: typeFromHead(row.head),
        attempts: row.attempts,
        error: `the stored job cannot be read: ${firstLines(row.lastFailure ?? "no reason recorded")}`
      }))
    ]
    for (const letter of letters) {
      // the dead letter and what it does to a flow (the job as a child, or as a parent): one transaction
      yield* settleFlowChild(
        queue,
        letter.id,
        { status: "dead", error: letter.error },
        queue.outcomes.put(queue.name, {
          jobId: letter.id,
          jobType: letter.type,
          status: "dead",
          payload: null,
          result: null,
          error: letter.error,
          attempts: letter.attempts,
          finishedAt: now
        }).pipe(Effect.andThen(finishFlowParent(queue, letter.id)))
      )
      yield* Effect.logWarning(`job ${letter.id} (${letter.type}) dead-lettered: ${letter.error}`)
    }
    return letters.length
  })

/**
 * Applies the queue's retention: completed jobs (results and de-duplication records) and dead letters older
 * than their age, or beyond their count. Run by every worker each `retention.interval`.
 *
 * @internal
 */
export const applyRetention = (queue: DurableQueue): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const { completed, deadLetters, maxCompleted, maxDeadLetters } = queue.retention
    const table = queue.table
    const now = yield* Clock.currentTimeMillis
    const batch = 1000
    const drain = (step: Effect.Effect<ReadonlyArray<string>, StoreError>) => {
      const loop: Effect.Effect<void, StoreError> = Effect.flatMap(
        step,
        (ids) => ids.length === batch ? loop : Effect.void
      )
      return loop
    }
    const deadWithRows = (step: Effect.Effect<ReadonlyArray<string>, StoreError>) =>
      drain(Effect.tap(step, (ids) => table === undefined ? Effect.void : table.deleteFailed(queue.name, ids)))

    yield* drain(queue.outcomes.deleteOlder(queue.name, "succeeded", now - Duration.toMillis(completed), batch))
    yield* deadWithRows(queue.outcomes.deleteOlder(queue.name, "dead", now - Duration.toMillis(deadLetters), batch))
    yield* deadWithRows(
      queue.outcomes.deleteOlder(queue.name, "cancelled", now - Duration.toMillis(deadLetters), batch)
    )
    if (maxCompleted !== undefined) {
      yield* drain(queue.outcomes.deleteBeyond(queue.name, "succeeded", maxCompleted, batch))
    }
    yield* queue.outcomes.deleteProgressOlder(queue.name, now - Duration.toMillis(completed))
    const flows = queue.flows
    if (flows !== undefined) {
      // a finished flow is kept as long as its parent's outcome can be
      const age = Duration.toMillis(Duration.max(completed, deadLetters))
      yield* drain(flows.deleteFinished(queue.name, now - age, batch))
    }
    if (maxDeadLetters !== undefined) {
      yield* deadWithRows(queue.outcomes.deleteBeyond(queue.name, "dead", maxDeadLetters, batch))
    }
    if (queue.jobs !== undefined) {
      yield* Effect.mapError(queue.jobs.prune(queue.name), (cause) => new StoreError({ operation: "retention", cause }))
    }
    if (table === undefined) {
      yield* Effect.mapError(
        queue.store.cleanup({ timeToLive: completed, failedTimeToLive: deadLetters }),
        (cause) => new StoreError({ operation: "retention", cause })
      )
      return
    }
    yield* table.deleteOlderThan(queue.name, "completed", completed)
    if (maxCompleted !== undefined) yield* table.deleteBeyondCount(queue.name, "completed", maxCompleted)
  })

const firstLines = (text: string): string => {
  const lines = text.split("\n").slice(0, 2).join(" | ")
  return lines.length > 500 ? `${lines.slice(0, 500)}…` : lines
}

const queueStats = (queue: DurableQueue): Effect.Effect<QueueStats, StoreError> =>
  Effect.gen(function*() {
    const table = queue.table
    if (table === undefined) {
      return yield* new StoreError({
        operation: "stats",
        cause: new Error("only the SQL stores keep counts (not the memory or Redis store)")
      })
    }
    const rows = yield* table.stats(queue.name)
    const outcomes = yield* queue.outcomes.counts(queue.name)
    const types = new Map<string, { -readonly [K in keyof TypeStats]: TypeStats[K] }>()
    const entry = (type: string) => {
      let stats = types.get(type)
      if (stats === undefined) {
        stats = {
          type,
          pending: 0,
          delayed: 0,
          claimed: 0,
          deadLetters: 0,
          cancelled: 0,
          oldestPendingMillis: undefined
        }
        types.set(type, stats)
      }
      return stats
    }
    for (const row of rows.types) {
      const stats = entry(row.type)
      stats.pending = row.pending
      stats.delayed = row.delayed
      stats.claimed = row.claimed
      stats.oldestPendingMillis = row.oldestPendingMillis ?? undefined
    }
    for (const row of outcomes) {
      if (row.status === "dead") entry(row.jobType).deadLetters = row.count
      else if (row.status === "cancelled") entry(row.jobType).cancelled = row.count
    }
    return {
      queue: queue.name,
      types: [...types.values()].sort((a, b) => a.type < b.type ? -1 : a.type > b.type ? 1 : 0),
      completed: rows.completed
    }
  })

/**
 * Records a flow child's outcome (a no-op for a job that is no flow's child), offering or dead-lettering its
 * parent when that was the last child it waited for; `before` (the job's outcome) in the same transaction.
 *
 * @internal
 */
export const settleFlowChild = (
  queue: DurableQueue,
  childId: string,
  settlement: Flows.Settlement,
  before?: Effect.Effect<void, StoreError>
): Effect.Effect<void, StoreError> =>
  Flows.settleChild(
    queue,
    childId,
    settlement,
    (parentId, stored) => offerFlowParent(queue, parentId, stored, undefined),
    before
  )

/**
 * Marks the flow of a parent whose outcome is being recorded done (a no-op for a job that is no offered flow's
 * parent): retention may delete it from now on.
 *
 * @internal
 */
export const finishFlowParent = (queue: DurableQueue, parentId: string): Effect.Effect<void, StoreError> =>
  queue.flows === undefined
    ? Effect.void
    : Effect.flatMap(
      Clock.currentTimeMillis,
      (now) => Effect.asVoid(queue.flows!.move(queue.name, parentId, "offered", "done", now))
    )

/** Offers a flow's parent from its stored envelope, with the priority kept with the flow (its type's). */
const offerFlowParent = (
  queue: DurableQueue,
  parentId: string,
  stored: string,
  delay: Duration.Duration | undefined
): Effect.Effect<string, StoreError> => {
  const { envelope, priority } = Flows.parseEnvelope(stored)
  return offer(queue, parentId, envelope as Envelope, delay, { priority, dedupe: undefined })
}
