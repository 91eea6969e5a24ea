/**
 * The PostgreSQL store of `@fiberpool/durable`, through `@effect/sql-pg` (an optional peer dependency: import
 * this module only where PostgreSQL is used: `@fiberpool/durable/DurablePg`, not re-exported by the package's
 * index). For many processes on many machines.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { SqlError } from "effect/sql/SqlError"
import type { StoreError } from "./DurableError.ts"
import * as DurableQueue from "./DurableQueue.ts"

/**
 * Options of {@link layer}: the queue's options plus the connection (`url`, e.g. `process.env.DATABASE_URL`)
 * and the size of the connection pool (default 10).
 *
 * @example
 * ```ts
 * import type * as DurablePg from "@fiberpool/durable/DurablePg"
 *
 * const options: DurablePg.Options = { url: "postgres://app:secret@127.0.0.1:5432/app", name: "mail" }
 * console.log(options.name) // => mail
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options extends DurableQueue.SqlOptions {
  readonly url: string | Redacted.Redacted
  readonly maxConnections?: number | undefined
}

/**
 * A queue in PostgreSQL: the tables are created if missing; claims use `FOR UPDATE SKIP LOCKED`, so any number
 * of processes on any number of machines share the queue.
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
 *   name: "pings"
 * })
 * const program = DurableQueue.enqueue(Ping, "hello").pipe(Effect.provide(Queue))
 * console.log(Effect.isEffect(program)) // => true
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options: Options): Layer.Layer<DurableQueue.Service, SqlError | StoreError> =>
  DurableQueue.layerSql(options).pipe(
    Layer.provide(PgClient.layer({
      url: Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url),
      maxConnections: options.maxConnections ?? 10
    }))
  )
