/**
 * Direct statements on PersistedQueue's SQL table (`effect_queue`), for what its store does not expose:
 *
 * - quarantine: a pending row at the head of the claim order whose element is over the size limit is marked
 *   `failed` (the store's poll claims rows in batches and reads them whole: one row over the driver's message
 *   limit fails every poll, and the store retries that poll forever);
 * - orphans: rows the store marked `failed` by itself (an element whose JSON does not parse, a lease lost at the
 *   store's own attempt cap), which have no dead letter yet;
 * - dead-letter payloads, read from the row instead of copied into the outcome table;
 * - requeue of a dead letter, by resetting its row;
 * - retention of completed and failed rows.
 *
 * The columns used (`sequence`, `id`, `queue_name`, `element`, `state`, `attempts`, `last_failure`,
 * `visible_at`, `acquired_at`, `acquired_by`, `updated_at`) are those of the store's `0002_upgrade_schema`
 * migration in effect 4.1. Timestamps use the same database clock expressions as the store. With this package's
 * SQL store (`ranked`, see `sqlStore.ts`) the claim order is `rank`, which moves with `visible_at`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { Fragment } from "effect/sql/Statement"
import { StoreError } from "../DurableError.ts"
import { rankExpression } from "./sqlStore.ts"
import { wakeId } from "./wakeups.ts"

export interface OversizeRow {
  readonly id: string
  /** the start of the element, to read its type from */
  readonly head: string | null
  readonly attempts: number
  readonly bytes: number
}

export interface OrphanRow {
  readonly id: string
  readonly head: string | null
  readonly attempts: number
  readonly lastFailure: string | null
}

export interface QueueTable {
  readonly quarantineOversize: (
    queue: string,
    maxBytes: number
  ) => Effect.Effect<ReadonlyArray<OversizeRow>, StoreError>
  readonly orphans: (queue: string) => Effect.Effect<ReadonlyArray<OrphanRow>, StoreError>
  /** elements (JSON text) of the given ids, those at most `maxBytes` long */
  readonly elements: (
    queue: string,
    ids: ReadonlyArray<string>,
    maxBytes: number
  ) => Effect.Effect<ReadonlyMap<string, string>, StoreError>
  /** puts a failed row back to pending with a fresh attempt count; false when there is no failed row */
  readonly resetFailed: (
    queue: string,
    id: string,
    delay: Duration.Duration | undefined
  ) => Effect.Effect<boolean, StoreError>
  /** deletes completed (or failed) rows last updated more than `age` ago, in batches; returns the count */
  readonly deleteOlderThan: (
    queue: string,
    state: "completed" | "failed",
    age: Duration.Duration
  ) => Effect.Effect<number, StoreError>
  /** keeps the `keep` most recently updated completed rows, deletes the others; returns the count */
  readonly deleteBeyondCount: (
    queue: string,
    state: "completed" | "failed",
    keep: number
  ) => Effect.Effect<number, StoreError>
  /**
   * Releases a claimed row untouched (its attempt not counted), visible again after `retryAfter`, unless it was
   * enqueued more than `maxAge` ago. Returns how many milliseconds from now the row is visible again (by the
   * database clock; whole seconds on SQLite), or undefined when it was not released. The store's own settlement
   * of the claim then matches no row: it is guarded by the claim's lock, which this clears.
   */
  readonly release: (
    queue: string,
    id: string,
    retryAfter: Duration.Duration,
    maxAge: Duration.Duration
  ) => Effect.Effect<number | undefined, StoreError>
  /**
   * Cancels a pending or delayed job not claimed by anyone: its row becomes `failed` with the reason
   * "cancelled". Otherwise says where the job is.
   */
  readonly cancel: (
    queue: string,
    id: string
  ) => Effect.Effect<
    {
      readonly outcome: "cancelled" | "running" | "completed" | "failed" | "not-found"
      readonly head: string | null
    },
    StoreError
  >
  /** counts of the queue's unfinished rows by job type, and its completed rows */
  readonly stats: (queue: string) => Effect.Effect<
    {
      readonly types: ReadonlyArray<{
        readonly type: string
        readonly pending: number
        readonly delayed: number
        readonly claimed: number
        readonly oldestPendingMillis: number | null
      }>
      readonly completed: number
    },
    StoreError
  >
  /** deletes failed rows of these ids */
  readonly deleteFailed: (queue: string, ids: ReadonlyArray<string>) => Effect.Effect<void, StoreError>
}

const batchSize = 1000
/** How far into the claim order the quarantine looks: a stuck row is always at the head, as it is never claimed. */
const headSize = 100

export const make = (
  client: SqlClient.SqlClient,
  tableName: string,
  outcomeTableName: string,
  /** the aging of this package's SQL store (its `rank` column), undefined with effect's store */
  ranked?: { readonly agingSeconds: number } | undefined
): Effect.Effect<QueueTable, StoreError> =>
  Effect.gen(function*() {
    const sql = client.withoutTransforms()
    const table = sql(tableName)
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const wrap = (operation: string) => <A, R>(effect: Effect.Effect<A, SqlError, R>) =>
      Effect.mapError(effect, (cause) => new StoreError({ operation, cause }))

    // retention and the orphan scan read failed/completed rows of one queue, which the store's own indexes
    // (the pending-only take index, the id index) do not cover
    yield* sql`CREATE INDEX IF NOT EXISTS ${
      sql(`idx_${tableName}_fiberpool_state`)
    } ON ${table} (queue_name, state, updated_at)`.pipe(
      Effect.retry({ times: 20, schedule: Schedule.spaced("100 millis") }),
      wrap("migrate")
    )

    const now = isPg ? sql.literal("NOW()") : sql.literal("CURRENT_TIMESTAMP")
    const secondsFromNow = (seconds: number) => {
      const s = sql.literal(Math.round(seconds).toString())
      return isPg ? sql`clock_timestamp() + INTERVAL '${s} seconds'` : sql`datetime(CURRENT_TIMESTAMP, '${s} seconds')`
    }
    const outcomes = sql(outcomeTableName)
    const rankOf = ranked === undefined ? undefined : rankExpression(client, ranked.agingSeconds)
    // sets `visible_at`, and the claim order key that moves with it
    const setVisibleAt = (time: Fragment) =>
      rankOf === undefined
        ? sql`visible_at = ${time}`
        : sql`visible_at = ${time}, rank = ${rankOf(time, sql.literal("priority"))}`
    // a re-queued dead letter runs without its dedupe key (another job may hold it by now)
    const dropDedupeKey = rankOf === undefined ? sql.literal("") : sql.literal(", dedupe_key = NULL")
    const claimOrder = sql.literal(
      ranked === undefined ? "visible_at ASC, sequence ASC" : "rank ASC, visible_at ASC, sequence ASC"
    )
    // column names are constants of this module, never input
    const byteLength = (column: string) =>
      sql.literal(isPg ? `octet_length(${column})` : `length(CAST(${column} AS BLOB))`)

    const count = (rows: ReadonlyArray<unknown>) => rows.length

    return {
      quarantineOversize: (queue, maxBytes) =>
        sql<{
          readonly id: string
          readonly head: string | null
          readonly attempts: number | string
          readonly bytes: number | string
        }>`
          UPDATE ${table}
          SET state = 'failed', acquired_at = NULL, acquired_by = NULL, updated_at = ${now},
            last_failure = ${`the stored job is over this worker's payload limit of ${maxBytes} bytes`}
          WHERE sequence IN (
            SELECT sequence FROM ${table}
            WHERE queue_name = ${queue} AND state = 'pending' AND visible_at <= ${now}
            ORDER BY ${claimOrder}
            LIMIT ${sql.literal(String(headSize))}
          )
          AND state = 'pending' AND acquired_at IS NULL AND ${byteLength("element")} > ${maxBytes}
          RETURNING id, attempts, ${byteLength("element")} AS bytes, substr(element, 1, 300) AS head
        `.pipe(
          Effect.map((rows) =>
            rows.map((row) => ({
              id: row.id,
              head: row.head,
              attempts: Number(row.attempts),
              bytes: Number(row.bytes)
            }))
          ),
          wrap("quarantine oversize jobs")
        ),
      orphans: (queue) =>
        sql<{
          readonly id: string
          readonly attempts: number | string
          readonly last_failure: string | null
          readonly head: string | null
        }>`
          SELECT q.id, q.attempts, q.last_failure, substr(q.element, 1, 300) AS head
          FROM ${table} q
          WHERE q.queue_name = ${queue} AND q.state = 'failed'
          AND NOT EXISTS (SELECT 1 FROM ${outcomes} o WHERE o.queue_name = q.queue_name AND o.job_id = q.id)
          LIMIT ${sql.literal(String(headSize))}
        `.pipe(
          Effect.map((rows) =>
            rows.map((row) => ({
              id: row.id,
              attempts: Number(row.attempts),
              lastFailure: row.last_failure,
              head: row.head
            }))
          ),
          wrap("find unrecorded failures")
        ),
      elements: (queue, ids, maxBytes) =>
        ids.length === 0
          ? Effect.succeed(new Map())
          : sql<{ readonly id: string; readonly element: string }>`
              SELECT id, element FROM ${table}
              WHERE queue_name = ${queue} AND ${sql.in("id", ids)} AND ${byteLength("element")} <= ${maxBytes}
            `.pipe(
            Effect.map((rows) => new Map(rows.map((row) => [row.id, row.element]))),
            wrap("read dead letters")
          ),
      resetFailed: (queue, id, delay) =>
        sql<{ readonly id: string }>`
          UPDATE ${table}
          SET state = 'pending', attempts = 0, last_failure = NULL, acquired_at = NULL, acquired_by = NULL,
            ${setVisibleAt(delay === undefined ? now : secondsFromNow(Math.ceil(Duration.toSeconds(delay))))},
            updated_at = ${now}${dropDedupeKey}
          WHERE queue_name = ${queue} AND id = ${id} AND state = 'failed'
          RETURNING id
        `.pipe(Effect.map((rows) => rows.length > 0), wrap("requeue")),
      deleteOlderThan: (queue, state, age) => {
        const batch = sql<{ readonly id: string }>`
          DELETE FROM ${table}
          WHERE sequence IN (
            SELECT sequence FROM ${table}
            WHERE queue_name = ${queue} AND state = ${state} AND id <> ${wakeId}
            AND updated_at < ${secondsFromNow(-Math.ceil(Duration.toSeconds(age)))}
            LIMIT ${sql.literal(String(batchSize))}
          )
          RETURNING id
        `.pipe(Effect.map(count))
        return repeatBatches(batch).pipe(wrap("retention"))
      },
      deleteBeyondCount: (queue, state, keep) => {
        const batch = sql<{ readonly id: string }>`
          DELETE FROM ${table}
          WHERE sequence IN (
            SELECT sequence FROM ${table}
            WHERE queue_name = ${queue} AND state = ${state} AND id <> ${wakeId}
            ORDER BY updated_at DESC, sequence DESC
            LIMIT ${sql.literal(String(batchSize))} OFFSET ${sql.literal(String(keep))}
          )
          RETURNING id
        `.pipe(Effect.map(count))
        return repeatBatches(batch).pipe(wrap("retention"))
      },
      release: (queue, id, retryAfter, maxAge) =>
        sql<{ readonly visible_in: number | string }>`
          UPDATE ${table}
          SET attempts = attempts - 1, acquired_at = NULL, acquired_by = NULL, updated_at = ${now},
            ${setVisibleAt(secondsFromNow(Math.max(1, Math.ceil(Duration.toSeconds(retryAfter)))))}
          WHERE queue_name = ${queue} AND id = ${id} AND state = 'pending'
          AND created_at > ${secondsFromNow(-Math.ceil(Duration.toSeconds(maxAge)))}
          RETURNING ${
          isPg
            ? sql`EXTRACT(EPOCH FROM (visible_at - clock_timestamp())) * 1000`
            : sql.literal(String(Math.max(1, Math.ceil(Duration.toSeconds(retryAfter))) * 1000))
        } AS visible_in
        `.pipe(
          Effect.map((rows) => rows.length === 0 ? undefined : Math.max(0, Number(rows[0].visible_in))),
          wrap("release unknown job")
        ),
      cancel: (queue, id) =>
        Effect.gen(function*() {
          const cancelled = yield* sql<{ readonly head: string | null }>`
            UPDATE ${table}
            SET state = 'failed', last_failure = 'cancelled', updated_at = ${now}
            WHERE queue_name = ${queue} AND id = ${id} AND state = 'pending' AND acquired_by IS NULL
            RETURNING substr(element, 1, 300) AS head
          `
          if (cancelled.length > 0) return { outcome: "cancelled" as const, head: cancelled[0].head }
          const rows = yield* sql<{ readonly state: string }>`
            SELECT state FROM ${table} WHERE queue_name = ${queue} AND id = ${id}`
          const state = rows.length === 0 ? undefined : rows[0].state
          const outcome = state === undefined
            ? "not-found" as const
            : state === "completed"
            ? "completed" as const
            : state === "failed"
            ? "failed" as const
            : "running" as const
          return { outcome, head: null }
        }).pipe(wrap("cancel")),
      stats: (queue) =>
        Effect.gen(function*() {
          // `enqueue` writes `{"type":"<name>",...`: the name starts at character 10 (a name holding a quote or a
          // backslash, JSON-escaped, is cut at its first quote)
          const typeExpr = sql.literal(
            isPg
              ? `split_part(substr(element, 10, 120), '"', 1)`
              : `substr(element, 10, instr(substr(element, 10, 120), '"') - 1)`
          )
          const ageExpr = isPg
            ? sql`EXTRACT(EPOCH FROM (NOW() - MIN(CASE WHEN acquired_by IS NULL AND visible_at <= NOW() THEN visible_at END))) * 1000`
            : sql`(julianday(CURRENT_TIMESTAMP) - julianday(MIN(CASE WHEN acquired_by IS NULL AND visible_at <= CURRENT_TIMESTAMP THEN visible_at END))) * 86400000`
          const rows = yield* sql<{
            readonly job_type: string
            readonly pending: number | string
            readonly delayed: number | string
            readonly claimed: number | string
            readonly oldest: number | string | null
          }>`
            SELECT ${typeExpr} AS job_type,
              SUM(CASE WHEN acquired_by IS NULL AND visible_at <= ${now} THEN 1 ELSE 0 END) AS pending,
              SUM(CASE WHEN acquired_by IS NULL AND visible_at > ${now} THEN 1 ELSE 0 END) AS delayed,
              SUM(CASE WHEN acquired_by IS NOT NULL THEN 1 ELSE 0 END) AS claimed,
              ${ageExpr} AS oldest
            FROM ${table}
            WHERE queue_name = ${queue} AND state = 'pending'
            GROUP BY ${typeExpr}
          `
          const completed = yield* sql<{ readonly count: number | string }>`
            SELECT COUNT(*) AS count FROM ${table}
            WHERE queue_name = ${queue} AND state = 'completed' AND id <> ${wakeId}`
          return {
            types: rows.map((row) => ({
              type: row.job_type,
              pending: Number(row.pending),
              delayed: Number(row.delayed),
              claimed: Number(row.claimed),
              oldestPendingMillis: row.oldest === null ? null : Math.max(0, Math.round(Number(row.oldest)))
            })),
            completed: Number(completed[0]?.count ?? 0)
          }
        }).pipe(wrap("stats")),
      deleteFailed: (queue, ids) =>
        ids.length === 0 ? Effect.void : sql`
          DELETE FROM ${table} WHERE queue_name = ${queue} AND state = 'failed' AND ${sql.in("id", ids)}
        `.pipe(Effect.asVoid, wrap("retention"))
    }
  })

const repeatBatches = <E>(batch: Effect.Effect<number, E>): Effect.Effect<number, E> => {
  const loop = (total: number): Effect.Effect<number, E> =>
    Effect.flatMap(batch, (n) => n === batchSize ? loop(total + n) : Effect.succeed(total + n))
  return loop(0)
}
