/**
 * What the producer and the workers of 07-durable share: the job type, and the connection to the store
 * (a SQLite file, or PostgreSQL when DATABASE_URL is set).
 */
import { PgClient } from "@effect/sql-pg"
import { DurableQueue, JobType, SqliteClient } from "@fiberpool/durable"
import { Effect, Layer, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"

export const JOBS = 90
export const WORKERS = 3
/** The lease. The default is 30 s; the example shortens it so the killed worker's jobs come back quickly. */
export const LEASE = "2 seconds"

/** An invoice is "sent" by writing it to the `sent` table, keyed by the job id: resending is a no-op. */
export const SendInvoice = JobType.make({
  name: "send-invoice",
  payload: Schema.Struct({ customer: Schema.String, cents: Schema.Int }),
  handler: (_invoice, { attempt, id }) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const worker = process.env.WORKER_NAME ?? "producer"
      yield* sql`INSERT INTO example_runs (job_id, worker, attempt) VALUES (${id}, ${worker}, ${attempt})`
      yield* Effect.sleep("150 millis") // talking to the mail server
      yield* sql`INSERT INTO example_sent (job_id, worker) VALUES (${id}, ${worker}) ON CONFLICT (job_id) DO NOTHING`
    }).pipe(Effect.orDie)
})

export const databaseUrl = process.env.DATABASE_URL

export const storeLabel = (file: string) => databaseUrl ? "PostgreSQL (DATABASE_URL)" : `SQLite (${file})`

/** The queue and, for the handler, the SqlClient it uses. */
export const connect = (file: string, queue: string) =>
  DurableQueue.layerSql({ name: queue, lockExpiration: LEASE, pollInterval: "100 millis" }).pipe(
    Layer.provideMerge(
      databaseUrl
        ? PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 4 })
        : SqliteClient.layer({ filename: file, busyTimeout: "10 seconds" })
    )
  )
