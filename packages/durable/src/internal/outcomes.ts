/**
 * The outcome table: kept results of succeeded jobs, and dead letters (jobs that used all their attempts, or
 * whose payload cannot be decoded). PersistedQueue's stores do not expose failed elements (and the memory store
 * keeps nothing readable), so the durable package keeps this small table itself, next to the queue.
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { StoreError } from "../DurableError.ts"

export interface OutcomeRow {
  readonly jobId: string
  readonly jobType: string
  readonly status: "succeeded" | "dead" | "cancelled"
  /**
   * JSON text of the encoded payload: kept by the memory store only (its queue rows cannot be read back). The SQL
   * stores read a dead letter's payload from its queue row, which keeps it until retention removes both.
   */
  readonly payload: string | null
  /** JSON text of the encoded result */
  readonly result: string | null
  readonly error: string | null
  readonly attempts: number
  readonly finishedAt: number
}

export interface OutcomeStore {
  readonly put: (queue: string, row: OutcomeRow) => Effect.Effect<void, StoreError>
  readonly get: (queue: string, jobId: string) => Effect.Effect<OutcomeRow | undefined, StoreError>
  readonly listDead: (
    queue: string,
    options: {
      readonly jobType?: string | undefined
      readonly limit: number
      /** only rows after this one, in (finishedAt, jobId) order */
      readonly after?: { readonly finishedAt: number; readonly jobId: string } | undefined
    }
  ) => Effect.Effect<ReadonlyArray<OutcomeRow>, StoreError>
  readonly remove: (queue: string, jobId: string) => Effect.Effect<void, StoreError>
  /** deletes up to `limit` rows of a status finished before `beforeMillis`; returns their ids */
  readonly deleteOlder: (
    queue: string,
    status: OutcomeRow["status"],
    beforeMillis: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** deletes up to `limit` rows of a status beyond the `keep` most recent; returns their ids */
  readonly deleteBeyond: (
    queue: string,
    status: OutcomeRow["status"],
    keep: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** counts by job type and status */
  readonly counts: (
    queue: string
  ) => Effect.Effect<
    ReadonlyArray<{ readonly jobType: string; readonly status: OutcomeRow["status"]; readonly count: number }>,
    StoreError
  >
  /** sets a job's progress (JSON text), reported by attempt `attempt` at `at` */
  readonly putProgress: (
    queue: string,
    jobId: string,
    progress: string,
    attempt: number,
    at: number
  ) => Effect.Effect<void, StoreError>
  readonly getProgress: (
    queue: string,
    jobId: string
  ) => Effect.Effect<
    { readonly progress: string; readonly attempt: number; readonly updatedAt: number } | undefined,
    StoreError
  >
  /** deletes progress last reported before `beforeMillis` */
  readonly deleteProgressOlder: (queue: string, beforeMillis: number) => Effect.Effect<void, StoreError>
  /** Runs the effect in one database transaction, when the store has transactions. */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
}

export const makeMemory = (): OutcomeStore => {
  const queues = new Map<string, Map<string, OutcomeRow>>()
  type ProgressRow = { readonly progress: string; readonly attempt: number; readonly updatedAt: number }
  const progress = new Map<string, Map<string, ProgressRow>>()
  const progressOf = (queue: string) => {
    let map = progress.get(queue)
    if (map === undefined) {
      map = new Map()
      progress.set(queue, map)
    }
    return map
  }
  const rows = (queue: string) => {
    let map = queues.get(queue)
    if (map === undefined) {
      map = new Map()
      queues.set(queue, map)
    }
    return map
  }
  return {
    put: (queue, row) => Effect.sync(() => void rows(queue).set(row.jobId, row)),
    get: (queue, jobId) => Effect.sync(() => rows(queue).get(jobId)),
    listDead: (queue, { after, jobType, limit }) =>
      Effect.sync(() =>
        [...rows(queue).values()]
          .filter((row) =>
            row.status === "dead" && (jobType === undefined || row.jobType === jobType) &&
            (after === undefined || row.finishedAt > after.finishedAt ||
              (row.finishedAt === after.finishedAt && row.jobId > after.jobId))
          )
          .sort((a, b) => a.finishedAt - b.finishedAt || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0))
          .slice(0, limit)
      ),
    remove: (queue, jobId) => Effect.sync(() => void rows(queue).delete(jobId)),
    deleteOlder: (queue, status, beforeMillis, limit) =>
      Effect.sync(() => {
        const map = rows(queue)
        const ids = [...map.values()]
          .filter((row) => row.status === status && row.finishedAt < beforeMillis)
          .slice(0, limit)
          .map((row) => row.jobId)
        for (const id of ids) map.delete(id)
        return ids
      }),
    deleteBeyond: (queue, status, keep, limit) =>
      Effect.sync(() => {
        const map = rows(queue)
        const ids = [...map.values()]
          .filter((row) => row.status === status)
          .sort((a, b) => b.finishedAt - a.finishedAt || (b.jobId < a.jobId ? -1 : 1))
          .slice(keep, keep + limit)
          .map((row) => row.jobId)
        for (const id of ids) map.delete(id)
        return ids
      }),
    counts: (queue) =>
      Effect.sync(() => {
        const counts = new Map<string, { jobType: string; status: OutcomeRow["status"]; count: number }>()
        for (const row of rows(queue).values()) {
          const key = `${row.status}\u0000${row.jobType}`
          const entry = counts.get(key)
          if (entry === undefined) counts.set(key, { jobType: row.jobType, status: row.status, count: 1 })
          else entry.count++
        }
        return [...counts.values()]
      }),
    putProgress: (queue, jobId, value, attempt, at) =>
      Effect.sync(() => void progressOf(queue).set(jobId, { progress: value, attempt, updatedAt: at })),
    getProgress: (queue, jobId) => Effect.sync(() => progressOf(queue).get(jobId)),
    deleteProgressOlder: (queue, beforeMillis) =>
      Effect.sync(() => {
        const map = progressOf(queue)
        for (const [id, row] of map) if (row.updatedAt < beforeMillis) map.delete(id)
      }),
    transaction: (effect) => effect
  }
}

export const makeSql = (
  client: SqlClient.SqlClient,
  tableName: string
): Effect.Effect<OutcomeStore, StoreError> =>
  Effect.gen(function*() {
    const sql = client.withoutTransforms()
    const table = sql(tableName)
    const progressTable = sql(`${tableName}_progress`)
    const wrap = (operation: string) => <A, R>(effect: Effect.Effect<A, SqlError, R>) =>
      Effect.mapError(effect, (cause) => new StoreError({ operation, cause }))

    // Several processes may start at once: a concurrent CREATE on PostgreSQL can fail on the catalog's unique
    // index even with IF NOT EXISTS, so the DDL is retried.
    yield* Effect.gen(function*() {
      yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
        queue_name VARCHAR(255) NOT NULL,
        job_id VARCHAR(255) NOT NULL,
        job_type VARCHAR(100) NOT NULL,
        status VARCHAR(10) NOT NULL,
        payload TEXT NULL,
        result TEXT NULL,
        error TEXT NULL,
        attempts INTEGER NOT NULL,
        finished_at BIGINT NOT NULL,
        PRIMARY KEY (queue_name, job_id)
      )`
      yield* sql`CREATE INDEX IF NOT EXISTS ${
        sql(`idx_${tableName}_status`)
      } ON ${table} (queue_name, status, finished_at)`
      // a table of its own (added after the first release): existing databases get it at the next start
      yield* sql`CREATE TABLE IF NOT EXISTS ${progressTable} (
        queue_name VARCHAR(255) NOT NULL,
        job_id VARCHAR(255) NOT NULL,
        progress TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (queue_name, job_id)
      )`
    }).pipe(
      Effect.retry({ times: 20, schedule: Schedule.spaced("100 millis") }),
      wrap("migrate")
    )

    type Raw = {
      readonly job_id: string
      readonly job_type: string
      readonly status: "succeeded" | "dead" | "cancelled"
      readonly payload: string | null
      readonly result: string | null
      readonly error: string | null
      readonly attempts: number | string
      readonly finished_at: number | string | bigint
    }
    const fromRaw = (raw: Raw): OutcomeRow => ({
      jobId: raw.job_id,
      jobType: raw.job_type,
      status: raw.status,
      payload: raw.payload,
      result: raw.result,
      error: raw.error,
      attempts: Number(raw.attempts),
      finishedAt: Number(raw.finished_at)
    })

    return {
      put: (queue, row) =>
        sql`
          INSERT INTO ${table} (queue_name, job_id, job_type, status, payload, result, error, attempts, finished_at)
          VALUES (${queue}, ${row.jobId}, ${row.jobType}, ${row.status}, ${row.payload}, ${row.result}, ${row.error},
            ${row.attempts}, ${row.finishedAt})
          ON CONFLICT (queue_name, job_id) DO UPDATE SET job_type = EXCLUDED.job_type, status = EXCLUDED.status,
            payload = EXCLUDED.payload, result = EXCLUDED.result, error = EXCLUDED.error,
            attempts = EXCLUDED.attempts, finished_at = EXCLUDED.finished_at
        `.pipe(Effect.asVoid, wrap("record outcome")),
      get: (queue, jobId) =>
        sql<Raw>`SELECT * FROM ${table} WHERE queue_name = ${queue} AND job_id = ${jobId}`.pipe(
          Effect.map((rows) => rows.length === 0 ? undefined : fromRaw(rows[0])),
          wrap("read outcome")
        ),
      listDead: (queue, { after, jobType, limit }) =>
        sql<Raw>`SELECT * FROM ${table} WHERE ${
          sql.and([
            sql`queue_name = ${queue}`,
            sql`status = 'dead'`,
            ...(jobType === undefined ? [] : [sql`job_type = ${jobType}`]),
            ...(after === undefined ? [] : [
              sql`(finished_at > ${after.finishedAt} OR (finished_at = ${after.finishedAt} AND job_id > ${after.jobId}))`
            ])
          ])
        } ORDER BY finished_at, job_id LIMIT ${limit}`.pipe(
          Effect.map((rows) => rows.map(fromRaw)),
          wrap("list dead letters")
        ),
      remove: (queue, jobId) =>
        sql`DELETE FROM ${table} WHERE queue_name = ${queue} AND job_id = ${jobId}`.pipe(
          Effect.asVoid,
          wrap("remove outcome")
        ),
      deleteOlder: (queue, status, beforeMillis, limit) =>
        sql<{ readonly job_id: string }>`
          DELETE FROM ${table} WHERE queue_name = ${queue} AND job_id IN (
            SELECT job_id FROM ${table} WHERE queue_name = ${queue} AND status = ${status}
            AND finished_at < ${beforeMillis} LIMIT ${sql.literal(String(limit))}
          ) RETURNING job_id
        `.pipe(Effect.map((rows) => rows.map((row) => row.job_id)), wrap("retention")),
      deleteBeyond: (queue, status, keep, limit) =>
        sql<{ readonly job_id: string }>`
          DELETE FROM ${table} WHERE queue_name = ${queue} AND job_id IN (
            SELECT job_id FROM ${table} WHERE queue_name = ${queue} AND status = ${status}
            ORDER BY finished_at DESC, job_id DESC
            LIMIT ${sql.literal(String(limit))} OFFSET ${sql.literal(String(keep))}
          ) RETURNING job_id
        `.pipe(Effect.map((rows) => rows.map((row) => row.job_id)), wrap("retention")),
      counts: (queue) =>
        sql<{ readonly job_type: string; readonly status: OutcomeRow["status"]; readonly count: number | string }>`
          SELECT job_type, status, COUNT(*) AS count FROM ${table} WHERE queue_name = ${queue}
          GROUP BY job_type, status
        `.pipe(
          Effect.map((rows) =>
            rows.map((row) => ({ jobType: row.job_type, status: row.status, count: Number(row.count) }))
          ),
          wrap("stats")
        ),
      putProgress: (queue, jobId, progress, attempt, at) =>
        sql`
          INSERT INTO ${progressTable} (queue_name, job_id, progress, attempt, updated_at)
          VALUES (${queue}, ${jobId}, ${progress}, ${attempt}, ${at})
          ON CONFLICT (queue_name, job_id) DO UPDATE SET progress = EXCLUDED.progress, attempt = EXCLUDED.attempt,
            updated_at = EXCLUDED.updated_at
        `.pipe(Effect.asVoid, wrap("report progress")),
      getProgress: (queue, jobId) =>
        sql<{ readonly progress: string; readonly attempt: number | string; readonly updated_at: number | string }>`
          SELECT progress, attempt, updated_at FROM ${progressTable} WHERE queue_name = ${queue} AND job_id = ${jobId}
        `.pipe(
          Effect.map((rows) =>
            rows.length === 0
              ? undefined
              : { progress: rows[0].progress, attempt: Number(rows[0].attempt), updatedAt: Number(rows[0].updated_at) }
          ),
          wrap("read progress")
        ),
      deleteProgressOlder: (queue, beforeMillis) =>
        sql`DELETE FROM ${progressTable} WHERE queue_name = ${queue} AND updated_at < ${beforeMillis}`.pipe(
          Effect.asVoid,
          wrap("retention")
        ),
      transaction: (effect) =>
        client.withTransaction(effect).pipe(
          Effect.catchTag("SqlError", (cause) => Effect.fail(new StoreError({ operation: "transaction", cause })))
        ) as any
    }
  })
