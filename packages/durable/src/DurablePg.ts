/**
 * The PostgreSQL store of `@fiberpool/durable`, through `@effect/sql-pg` (an optional peer dependency: import
 * this module only where PostgreSQL is used: `@fiberpool/durable/DurablePg`, not re-exported by the package's
 * index). For many processes on many machines.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { PoolError } from "@fiberpool/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { StoreError } from "./DurableError.ts"
import * as DurableQueue from "./DurableQueue.ts"

/**
 * Options of {@link layer}: the queue's options plus the connection.
 *
 * - `url`: e.g. `process.env.DATABASE_URL` (or give `host`, `port`, `username`, `password`... in `pg`).
 * - `maxConnections`: the size of the connection pool (default 10); `minConnections` (default 0),
 *   `idleTimeout` (default 60 s), `connectionTTL` (default none).
 * - `ssl`: `true`, or Node `tls.connect` options (`{ ca, rejectUnauthorized }`...).
 * - `statementTimeout`: PostgreSQL's `statement_timeout` for this pool's sessions (default: the server's).
 * - `connectTimeout`: how long opening a connection may take.
 * - `maxMessageSize`: the largest message the driver reads from the server (default 16 MiB). A claimed row is one
 *   message, so it bounds the payload: `maxPayloadBytes` (default 1 MiB) must stay at least 64 KiB below it.
 *   Raise both to carry larger payloads.
 * - `applicationName`: shown in `pg_stat_activity`.
 * - `pg`: any other `@effect/sql-pg` `PgClient` setting; it overrides the ones above.
 *
 * @example
 * ```ts
 * import type * as DurablePg from "@fiberpool/durable/DurablePg"
 *
 * const options: DurablePg.Options = {
 *   url: "postgres://app:secret@127.0.0.1:5432/app",
 *   name: "mail",
 *   maxConnections: 20,
 *   ssl: { rejectUnauthorized: true },
 *   statementTimeout: "30 seconds"
 * }
 * console.log(options.name) // => mail
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options extends DurableQueue.SqlOptions {
  readonly url?: string | Redacted.Redacted | undefined
  readonly maxConnections?: number | undefined
  readonly minConnections?: number | undefined
  readonly idleTimeout?: Duration.Input | undefined
  readonly connectionTTL?: Duration.Input | undefined
  readonly ssl?: PgClient.PgClientConfig["ssl"]
  readonly statementTimeout?: Duration.Input | undefined
  readonly connectTimeout?: Duration.Input | undefined
  readonly maxMessageSize?: number | undefined
  readonly applicationName?: string | undefined
  readonly pg?: Partial<PgClient.PgPoolConfig> | undefined
}

/**
 * The driver's default message limit (`@effect/sql-pg`): 16 MiB.
 *
 * @example
 * ```ts
 * import * as DurablePg from "@fiberpool/durable/DurablePg"
 *
 * console.log(DurablePg.defaultMaxMessageSize) // => 16777216
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const defaultMaxMessageSize: number = 16 * 1024 * 1024

/**
 * A queue in PostgreSQL: the tables are created if missing; claims use `FOR UPDATE SKIP LOCKED`, so any number
 * of processes on any number of machines share the queue. The layer also provides its `PgClient` (and
 * `SqlClient`), so handlers can use the same connection pool.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { DurableQueue, JobType } from "@fiberpool/durable"
 * import * as DurablePg from "@fiberpool/durable/DurablePg"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.String, handler: () => Effect.void })
 * const Queue: Layer.Layer<DurableQueue.Service, unknown> = DurablePg.layer({
 *   url: process.env.DATABASE_URL ?? "postgres://127.0.0.1/app",
 *   name: "pings",
 *   maxConnections: 20
 * })
 * const program = DurableQueue.enqueue(Ping, "hello").pipe(Effect.provide(Queue))
 * console.log(Effect.isEffect(program)) // => true
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (
  options: Options
): Layer.Layer<
  DurableQueue.Service | PgClient.PgClient | SqlClient.SqlClient,
  SqlError | StoreError | PoolError.InvalidOptions
> =>
  Layer.unwrap(
    Effect.map(clientConfig(options), (config) =>
      DurableQueue.layerSql(options).pipe(Layer.provideMerge(PgClient.layer(config))))
  )

// ---- Internal ----

/** Room for the rest of a claimed row (id, queue name, timestamps) and the envelope around the payload. */
const rowOverhead = 64 * 1024

const clientConfig = (options: Options): Effect.Effect<PgClient.PgPoolConfig, PoolError.InvalidOptions> =>
  Effect.gen(function*() {
    const maxMessageSize = options.pg?.maxMessageSize ?? options.maxMessageSize ?? defaultMaxMessageSize
    if (!Number.isSafeInteger(maxMessageSize) || maxMessageSize <= rowOverhead) {
      return yield* new PoolError.InvalidOptions({
        option: "maxMessageSize",
        value: String(maxMessageSize),
        expected: `an integer over ${rowOverhead}`
      })
    }
    const maxPayloadBytes = options.maxPayloadBytes ?? DurableQueue.defaultMaxPayloadBytes
    if (maxPayloadBytes > maxMessageSize - rowOverhead) {
      return yield* new PoolError.InvalidOptions({
        option: "maxPayloadBytes",
        value: String(maxPayloadBytes),
        expected: `at most maxMessageSize - 64 KiB = ${maxMessageSize - rowOverhead} (raise maxMessageSize too)`
      })
    }
    let statementTimeout: string | undefined
    if (options.statementTimeout !== undefined) {
      const duration = Duration.fromInput(options.statementTimeout)
      if (Option.isNone(duration) || !Duration.isFinite(duration.value) || Duration.isNegative(duration.value)) {
        return yield* new PoolError.InvalidOptions({
          option: "statementTimeout",
          value: String(options.statementTimeout),
          expected: "a finite duration ≥ 0"
        })
      }
      statementTimeout = String(Math.ceil(Duration.toMillis(duration.value)))
    }
    const config: PgClient.PgPoolConfig = {
      url: options.url === undefined
        ? undefined
        : Redacted.isRedacted(options.url)
        ? options.url
        : Redacted.make(options.url),
      maxConnections: options.maxConnections ?? 10,
      minConnections: options.minConnections,
      idleTimeout: options.idleTimeout,
      connectionTTL: options.connectionTTL,
      ssl: options.ssl,
      connectTimeout: options.connectTimeout,
      maxMessageSize,
      applicationName: options.applicationName,
      startupParameters: statementTimeout === undefined ? undefined : { statement_timeout: statementTimeout },
      ...options.pg
    }
    return config
  })
