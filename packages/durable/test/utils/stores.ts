/**
 * The stores every durable test runs against: memory, a SQLite file in a temp dir, PostgreSQL when
 * FIBERPOOL_TEST_PG_URL is set (start one with `eval "$(.ci/postgres.sh start)"`), and Redis when
 * FIBERPOOL_TEST_REDIS_URL is set (start one with `eval "$(.ci/redis.sh start)"`).
 */
import { PgClient } from "@effect/sql-pg"
import { DurableQueue, DurableWorker, type JobType, SqliteClient } from "@fiberpool/durable"
import * as DurableRedis from "@fiberpool/durable/DurableRedis"
import { Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import type { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export const pgUrl = process.env.FIBERPOOL_TEST_PG_URL
export const redisUrl = process.env.FIBERPOOL_TEST_REDIS_URL

if (pgUrl === undefined || pgUrl === "") {
  const line = "!".repeat(100)
  console.warn(
    `\n${line}\n!! FIBERPOOL_TEST_PG_URL is not set: the PostgreSQL durable tests are SKIPPED.\n` +
      `!! Start a throwaway cluster with: eval "$(.ci/postgres.sh start)"\n${line}\n`
  )
}

if (redisUrl === undefined || redisUrl === "") {
  const line = "!".repeat(100)
  console.warn(
    `\n${line}\n!! FIBERPOOL_TEST_REDIS_URL is not set: the Redis durable tests are SKIPPED.\n` +
      `!! Start a throwaway server with: eval "$(.ci/redis.sh start)"\n${line}\n`
  )
}

/**
 * Opens "connections" to one shared store: each call is what a separate process would have. `sql` is a plain
 * client of the same database (SQL stores), to look at the rows or break them; `queueName` the queue's name.
 */
export interface Connect {
  /** `applicationName`: PostgreSQL's `application_name` of the connection's sessions (to find them) */
  (
    options?: DurableQueue.SqlOptions,
    client?: { readonly applicationName?: string | undefined }
  ): Layer.Layer<DurableQueue.Service, unknown>
  readonly queueName: string
  readonly sql: Layer.Layer<SqlClient.SqlClient, unknown> | undefined
  /** the SQLite file */
  readonly filename?: string | undefined
  /** Redis: the test's key prefix */
  readonly prefix?: string | undefined
}

export interface StoreCase {
  readonly name: "memory" | "sqlite" | "postgres" | "redis"
  /** a SQL store: its queue table is read and written directly (stats, cancel, unknown-type release...) */
  readonly sql: boolean
  /** separate connections (processes) share the store, with leases: false for memory only */
  readonly shared: boolean
  /** the store keeps recurring schedules (`DurableSchedule`) */
  readonly schedules: boolean
  /** the store keeps flows (`DurableFlow`) */
  readonly flows: boolean
  /** the store claims by priority, keeps dedupe keys and limits shared by processes (this package's stores) */
  readonly ordering: boolean
  /** the writes of one operation commit together or not at all (Redis: in steps, see its README section) */
  readonly atomic: boolean
  readonly skip: boolean
  /** One store per test, under a fresh queue name. */
  readonly open: Effect.Effect<Connect, unknown, Scope.Scope>
}

let counter = 0
const queueName = () => `q${process.pid}-${Date.now().toString(36)}-${counter++}`

export const testDefaults = { pollInterval: "100 millis", lockExpiration: "3 seconds" } as const

export const stores: ReadonlyArray<StoreCase> = [
  {
    name: "memory",
    sql: false,
    shared: false,
    schedules: true,
    flows: true,
    ordering: true,
    atomic: true,
    skip: false,
    open: Effect.gen(function*() {
      const context = yield* Layer.build(DurableQueue.layerMemory({ name: queueName() }))
      const queue = Context.get(context, DurableQueue.Service)
      return Object.assign(() => Layer.succeed(DurableQueue.Service, queue), {
        queueName: queue.name,
        sql: undefined
      })
    })
  },
  {
    name: "sqlite",
    sql: true,
    shared: true,
    schedules: true,
    flows: true,
    ordering: true,
    atomic: true,
    skip: false,
    open: Effect.sync(() => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-durable-"))
      const filename = Path.join(dir, "queue.db")
      const name = queueName()
      return Object.assign(
        (options?: DurableQueue.SqlOptions) =>
          DurableQueue.layerSqlite({ filename, name, ...testDefaults, ...options }),
        { queueName: name, sql: SqliteClient.layer({ filename }), filename }
      )
    })
  },
  {
    name: "postgres",
    sql: true,
    shared: true,
    schedules: true,
    flows: true,
    ordering: true,
    atomic: true,
    skip: pgUrl === undefined || pgUrl === "",
    open: Effect.sync(() => {
      const name = queueName()
      return Object.assign(
        (options?: DurableQueue.SqlOptions, client?: { readonly applicationName?: string | undefined }) =>
          DurableQueue.layerSql({ name, ...testDefaults, ...options }).pipe(
            Layer.provide(
              PgClient.layer({
                url: Redacted.make(pgUrl ?? ""),
                maxConnections: 4,
                applicationName: client?.applicationName
              })
            )
          ),
        { queueName: name, sql: PgClient.layer({ url: Redacted.make(pgUrl ?? ""), maxConnections: 2 }) }
      )
    })
  },
  {
    name: "redis",
    sql: false,
    shared: true,
    schedules: true,
    flows: true,
    ordering: false,
    atomic: false,
    skip: redisUrl === undefined || redisUrl === "",
    // each test under its own key prefix as well as its own queue name: retention scans the whole prefix
    open: Effect.sync(() => {
      const name = queueName()
      const prefix = `fptest:${name}:`
      return Object.assign(
        (options?: DurableQueue.SqlOptions) =>
          DurableRedis.layer({ url: redisUrl ?? "", name, prefix, ...testDefaults, ...redisOptions(options) }),
        { queueName: name, sql: undefined, prefix }
      )
    })
  }
]

/** The options of a SQL layer that the Redis store has too (the others are about the queue table). */
const redisOptions = (options: DurableQueue.SqlOptions | undefined): DurableRedis.StoreOptions => {
  const shared: Array<keyof DurableRedis.StoreOptions & keyof DurableQueue.SqlOptions> = [
    "name",
    "pollInterval",
    "maxPayloadBytes",
    "retention",
    "lockExpiration",
    "lockRefreshInterval",
    "notify"
  ]
  return Object.fromEntries(shared.flatMap((key) => options?.[key] === undefined ? [] : [[key, options[key]]]))
}

/** A consumer: its own connection (layer) and worker, closed together like a process that exits. */
export interface Consumer {
  readonly worker: DurableWorker.DurableWorker
  readonly queue: Context.Context<DurableQueue.Service>
  readonly close: Effect.Effect<void>
}

export const startConsumer = <T extends JobType.Any>(
  connection: Layer.Layer<DurableQueue.Service, unknown>,
  options: DurableWorker.Options<T>
): Effect.Effect<Consumer, unknown, Scope.Scope | JobType.Services<T>> =>
  Effect.gen(function*() {
    const scope = yield* Effect.acquireRelease(Scope.make(), (scope) => Scope.close(scope, Exit.void))
    const queue = yield* Layer.buildWithScope(connection, scope)
    const worker = yield* DurableWorker.make(options).pipe(Effect.provideContext(queue), Scope.provide(scope))
    return { worker, queue, close: Scope.close(scope, Exit.void) }
  })

/** A producer: its own connection. */
export const connectProducer = (
  connection: Layer.Layer<DurableQueue.Service, unknown>
): Effect.Effect<Context.Context<DurableQueue.Service>, unknown, Scope.Scope> => Layer.build(connection)

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMillis`. */
export const waitUntil = <E, R>(
  label: string,
  condition: Effect.Effect<boolean, E, R>,
  timeoutMillis = 10_000
): Effect.Effect<void, E | Error, R> =>
  Effect.gen(function*() {
    const start = Date.now()
    while (!(yield* condition)) {
      if (Date.now() - start > timeoutMillis) return yield* Effect.fail(new Error(`timed out waiting for: ${label}`))
      yield* Effect.sleep("20 millis")
    }
  })
