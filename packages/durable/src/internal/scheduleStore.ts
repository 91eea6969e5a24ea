/**
 * The schedule store: one row per recurring schedule (queue name + schedule name), holding its definition and
 * the time of its next tick. Whoever fires a tick first moves `nextRunAt` forward with a compare-and-swap, in one
 * transaction with the enqueue of the tick's job: a tick is claimed once, by one process, whatever the number of
 * processes polling. The tick arithmetic (`dueTicks`) is pure, so it runs the same on every store and under a test
 * clock.
 *
 * A store to add implements `ScheduleStore`: five operations and a transaction, or, when its transaction cannot
 * hold the enqueues (Redis, `schedulesRedis.ts`), `claims`. Its clock (`now`, and the one `due` compares with) must
 * be one clock for every process sharing the store.
 */
import * as Cron from "effect/Cron"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { StoreError } from "../DurableError.ts"

// ---- Definitions and ticks ----

/** When a schedule ticks: a cron expression in a time zone, or a fixed interval from its first tick. */
export type Spec =
  | { readonly _tag: "cron"; readonly expression: string; readonly timezone: string }
  | { readonly _tag: "every"; readonly millis: number }

/** What a late firer does with the ticks it missed: fire only the latest, or up to `catchUp` of the latest. */
export type Missed = "latest" | { readonly catchUp: number }

/** The stored form of a spec: canonical JSON, so two equal specs are equal strings (the CAS compares them). */
export const encodeSpec = (spec: Spec): string =>
  spec._tag === "cron"
    ? JSON.stringify({ cron: spec.expression, timezone: spec.timezone })
    : JSON.stringify({ every: spec.millis })

export const decodeSpec = (text: string): Spec | undefined => {
  const json = parseJson(text)
  if (typeof json !== "object" || json === null) return undefined
  const record = json as Record<string, unknown>
  if (typeof record.cron === "string" && typeof record.timezone === "string") {
    return { _tag: "cron", expression: record.cron, timezone: record.timezone }
  }
  if (typeof record.every === "number" && Number.isSafeInteger(record.every) && record.every > 0) {
    return { _tag: "every", millis: record.every }
  }
  return undefined
}

export const encodeMissed = (missed: Missed): string => JSON.stringify(missed)

export const decodeMissed = (text: string): Missed => {
  const json = parseJson(text)
  if (typeof json === "object" && json !== null) {
    const catchUp = (json as Record<string, unknown>).catchUp
    if (typeof catchUp === "number" && Number.isSafeInteger(catchUp) && catchUp >= 1) return { catchUp }
  }
  return "latest"
}

/** Parses a cron spec; undefined when the expression or zone is invalid. */
export const parseCron = (spec: Spec & { readonly _tag: "cron" }): Cron.Cron | undefined => {
  const zone = DateTime.zoneFromString(spec.timezone)
  if (Option.isNone(zone)) return undefined
  return Result.getOrUndefined(Cron.parse(spec.expression, zone.value))
}

/**
 * The first tick strictly after `after`, undefined when there is none (a cron that matches no date, such as
 * February 30th: effect's `Cron.next` throws for it). An interval's first tick is one interval after `after`.
 */
export const nextTick = (spec: Spec, after: number): number | undefined => {
  if (spec._tag === "every") return after + spec.millis
  const cron = parseCron(spec)
  return cron === undefined ? undefined : Option.getOrUndefined(cronStep(cron, after, "next"))
}

/**
 * The ticks to fire now, oldest first, and the next run to store: the due ticks are those from `nextRunAt` (a
 * tick) up to `now`; "latest" fires the most recent one, `{ catchUp }` the `catchUp` most recent ones (older ones
 * are skipped). The next run is the first tick after `now`. Undefined when the spec cannot be evaluated.
 */
export const dueTicks = (
  spec: Spec,
  nextRunAt: number,
  now: number,
  missed: Missed
): { readonly ticks: ReadonlyArray<number>; readonly next: number } | undefined => {
  if (nextRunAt > now) return { ticks: [], next: nextRunAt }
  const limit = missed === "latest" ? 1 : missed.catchUp
  const ticks: Array<number> = []
  if (spec._tag === "every") {
    // an interval's ticks are nextRunAt + k * every: the latest due one is computed, not walked to
    const latest = nextRunAt + Math.floor((now - nextRunAt) / spec.millis) * spec.millis
    for (let tick = latest; tick >= nextRunAt && ticks.length < limit; tick -= spec.millis) ticks.push(tick)
    return { ticks: ticks.reverse(), next: latest + spec.millis }
  }
  const cron = parseCron(spec)
  if (cron === undefined) return undefined
  // walk back from now (not forward from nextRunAt): after a long outage, a per-second schedule has millions of
  // missed ticks, and only `limit` of them are wanted
  let tick = Option.getOrUndefined(cronStep(cron, now + 1, "prev"))
  while (tick !== undefined && tick >= nextRunAt && ticks.length < limit) {
    ticks.push(tick)
    tick = Option.getOrUndefined(cronStep(cron, tick, "prev"))
  }
  const next = Option.getOrUndefined(cronStep(cron, now, "next"))
  return next === undefined ? undefined : { ticks: ticks.reverse(), next }
}

// ---- The store ----

export interface ScheduleRow {
  readonly name: string
  readonly jobType: string
  /** JSON text of the encoded payload */
  readonly payload: string
  /** `encodeSpec`'s text */
  readonly spec: string
  /** `encodeMissed`'s text */
  readonly missed: string
  /** the priority of the ticks' jobs (`SetOptions.priority`, else the type's, else 0), replaced by every upsert */
  readonly priority: number
  /** epoch milliseconds of the next tick to fire */
  readonly nextRunAt: number
  readonly updatedAt: number
}

export interface ScheduleStore {
  /** The store's clock (epoch milliseconds): the database's for the SQL stores, one clock for every process. */
  readonly now: Effect.Effect<number, StoreError>
  /**
   * Inserts the schedule, or replaces its definition. An existing schedule whose spec is unchanged keeps its
   * next run (every process can `set` its schedules at start without skipping or repeating a tick); a changed
   * spec takes `row.nextRunAt`. Returns the stored row.
   */
  readonly upsert: (queue: string, row: ScheduleRow) => Effect.Effect<ScheduleRow, StoreError>
  /** Removes the schedule; false when there was none. */
  readonly remove: (queue: string, name: string) => Effect.Effect<boolean, StoreError>
  /** Every schedule of the queue, by name. */
  readonly list: (queue: string) => Effect.Effect<ReadonlyArray<ScheduleRow>, StoreError>
  /** Up to `limit` schedules whose next run is due by the store's clock, with that clock's reading. */
  readonly due: (
    queue: string,
    limit: number
  ) => Effect.Effect<{ readonly now: number; readonly rows: ReadonlyArray<ScheduleRow> }, StoreError>
  /**
   * The compare-and-swap that claims a schedule's due ticks: sets the next run to `next` if the row still has the
   * next run and spec it was read with. True when this call moved it (and so owns the ticks in between). A store
   * with `claims` also records `ticks` as claimed, in the same atomic step.
   */
  readonly advance: (
    queue: string,
    expected: Pick<ScheduleRow, "name" | "nextRunAt" | "spec">,
    next: number,
    ticks?: ReadonlyArray<number>
  ) => Effect.Effect<boolean, StoreError>
  /** Runs the effect in one transaction with the queue store's enqueues (the same database client). */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
  /**
   * For a store whose `transaction` cannot hold the compare-and-swap and the enqueues together (Redis: effect's
   * queue keys are its own), so that a firer dying between the two loses no tick: `advance` records the ticks it
   * won, `settle` clears them once their jobs are enqueued, and `takeOver` hands the claims older than the store's
   * lease (their firer died, or lost the store, in between) to the caller, re-leased to it, to enqueue again (the
   * jobs' ids make a second enqueue of a tick a no-op) and settle. Undefined when `transaction` makes them one.
   */
  readonly claims?: {
    readonly settle: (queue: string, name: string, next: number) => Effect.Effect<void, StoreError>
    readonly takeOver: (queue: string, limit: number) => Effect.Effect<ReadonlyArray<ClaimedTicks>, StoreError>
  } | undefined
}

/** Ticks claimed by `advance` (to `next`) and not settled: the schedule's current job type, payload and priority. */
export interface ClaimedTicks {
  readonly name: string
  readonly jobType: string
  readonly payload: string
  readonly priority: number
  readonly next: number
  readonly ticks: ReadonlyArray<number>
}

/** The memory store: the clock is effect's `Clock` (so `TestClock` drives it); CAS and enqueue run in one fiber. */
export const makeMemory = (): ScheduleStore => {
  const queues = new Map<string, Map<string, ScheduleRow>>()
  const rows = (queue: string) => {
    let map = queues.get(queue)
    if (map === undefined) {
      map = new Map()
      queues.set(queue, map)
    }
    return map
  }
  const byName = (a: ScheduleRow, b: ScheduleRow) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  return {
    now: Effect.clockWith((clock) => clock.currentTimeMillis),
    upsert: (queue, row) =>
      Effect.sync(() => {
        const map = rows(queue)
        const existing = map.get(row.name)
        const stored = existing !== undefined && existing.spec === row.spec
          ? { ...row, nextRunAt: existing.nextRunAt }
          : row
        map.set(row.name, stored)
        return stored
      }),
    remove: (queue, name) => Effect.sync(() => rows(queue).delete(name)),
    list: (queue) => Effect.sync(() => [...rows(queue).values()].sort(byName)),
    due: (queue, limit) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          const due = [...rows(queue).values()]
            .filter((row) => row.nextRunAt <= now)
            .sort((a, b) => a.nextRunAt - b.nextRunAt || byName(a, b))
            .slice(0, limit)
          return { now, rows: due }
        })
      ),
    advance: (queue, expected, next) =>
      Effect.sync(() => {
        const map = rows(queue)
        const row = map.get(expected.name)
        if (row === undefined || row.nextRunAt !== expected.nextRunAt || row.spec !== expected.spec) return false
        map.set(row.name, { ...row, nextRunAt: next })
        return true
      }),
    transaction: (effect) => effect
  }
}

/**
 * The SQL store (PostgreSQL and SQLite; undefined for other databases, whose queues then have no schedules): a
 * table created if missing, keyed by queue and schedule name, times in epoch milliseconds read from the
 * database's clock.
 */
export const makeSql = (
  client: SqlClient.SqlClient,
  tableName: string
): Effect.Effect<ScheduleStore | undefined, StoreError> =>
  Effect.gen(function*() {
    const sql = client.withoutTransforms()
    const nowMillis = sql.onDialectOrElse({
      // clock_timestamp(), not now(): now() is the transaction's start
      pg: () => sql.literal("FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"),
      // julianday('now') has millisecond precision (CURRENT_TIMESTAMP only seconds)
      sqlite: () => sql.literal("CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"),
      orElse: () => undefined
    })
    if (nowMillis === undefined) return undefined
    const table = sql(tableName)
    const wrap = (operation: string) => <A, R>(effect: Effect.Effect<A, SqlError, R>) =>
      Effect.mapError(effect, (cause) => new StoreError({ operation, cause }))

    // several processes may start at once: a concurrent CREATE on PostgreSQL can fail on the catalog's unique
    // index even with IF NOT EXISTS, so the DDL is retried (as the outcome table's)
    yield* Effect.gen(function*() {
      yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
        queue_name VARCHAR(255) NOT NULL,
        name VARCHAR(255) NOT NULL,
        job_type VARCHAR(100) NOT NULL,
        payload TEXT NOT NULL,
        spec TEXT NOT NULL,
        missed TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        next_run_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (queue_name, name)
      )`
      yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`idx_${tableName}_next_run`)} ON ${table} (queue_name, next_run_at)`
    }).pipe(
      Effect.retry({ times: 20, schedule: Schedule.spaced("100 millis") }),
      wrap("migrate schedules")
    )

    type Raw = {
      readonly name: string
      readonly job_type: string
      readonly payload: string
      readonly spec: string
      readonly missed: string
      readonly priority: number | string
      readonly next_run_at: number | string | bigint
      readonly updated_at: number | string | bigint
    }
    const fromRaw = (raw: Raw): ScheduleRow => ({
      name: raw.name,
      jobType: raw.job_type,
      payload: raw.payload,
      spec: raw.spec,
      missed: raw.missed,
      priority: Number(raw.priority),
      nextRunAt: Number(raw.next_run_at),
      updatedAt: Number(raw.updated_at)
    })
    const columns = sql.literal("name, job_type, payload, spec, missed, priority, next_run_at, updated_at")

    return {
      now: sql<{ readonly now: number | string | bigint }>`SELECT ${nowMillis} AS now`.pipe(
        Effect.map((rows) => Number(rows[0].now)),
        wrap("read the clock")
      ),
      upsert: (queue, row) =>
        sql<Raw>`
          INSERT INTO ${table} (queue_name, name, job_type, payload, spec, missed, priority, next_run_at, updated_at)
          VALUES (${queue}, ${row.name}, ${row.jobType}, ${row.payload}, ${row.spec}, ${row.missed}, ${row.priority},
            ${row.nextRunAt}, ${row.updatedAt})
          ON CONFLICT (queue_name, name) DO UPDATE SET job_type = EXCLUDED.job_type, payload = EXCLUDED.payload,
            missed = EXCLUDED.missed, priority = EXCLUDED.priority, updated_at = EXCLUDED.updated_at,
            next_run_at = CASE WHEN ${table}.spec = EXCLUDED.spec THEN ${table}.next_run_at
              ELSE EXCLUDED.next_run_at END,
            spec = EXCLUDED.spec
          RETURNING ${columns}
        `.pipe(Effect.map((rows) => fromRaw(rows[0])), wrap("set schedule")),
      remove: (queue, name) =>
        sql<{ readonly name: string }>`
          DELETE FROM ${table} WHERE queue_name = ${queue} AND name = ${name} RETURNING name
        `.pipe(Effect.map((rows) => rows.length > 0), wrap("remove schedule")),
      list: (queue) =>
        sql<Raw>`SELECT ${columns} FROM ${table} WHERE queue_name = ${queue} ORDER BY name`.pipe(
          Effect.map((rows) => rows.map(fromRaw)),
          wrap("list schedules")
        ),
      due: (queue, limit) =>
        // the clock is read by the statement that compares with it: one clock for every process
        sql<Raw & { readonly now: number | string | bigint }>`
          SELECT ${columns}, ${nowMillis} AS now FROM ${table}
          WHERE queue_name = ${queue} AND next_run_at <= ${nowMillis}
          ORDER BY next_run_at, name LIMIT ${sql.literal(String(limit))}
        `.pipe(
          Effect.map((rows) => ({
            now: rows.length === 0 ? 0 : Math.max(...rows.map((row) => Number(row.now))),
            rows: rows.map(fromRaw)
          })),
          wrap("poll schedules")
        ),
      advance: (queue, expected, next) =>
        sql<{ readonly name: string }>`
          UPDATE ${table} SET next_run_at = ${next}
          WHERE queue_name = ${queue} AND name = ${expected.name} AND next_run_at = ${expected.nextRunAt}
            AND spec = ${expected.spec}
          RETURNING name
        `.pipe(Effect.map((rows) => rows.length > 0), wrap("claim schedule tick")),
      transaction: (effect) =>
        client.withTransaction(effect).pipe(
          Effect.catchTag(
            "SqlError",
            (cause) => Effect.fail(new StoreError({ operation: "claim schedule tick", cause }))
          )
        ) as any
    }
  })

// ---- Internal ----

const parseOption = Option.liftThrowable((text: string): unknown => JSON.parse(text))

const parseJson = (text: string): unknown => Option.getOrUndefined(parseOption(text))

/** effect's `Cron.next` and `Cron.prev` throw when no date matches within their search bound. */
const cronStep = (cron: Cron.Cron, from: number, direction: "next" | "prev"): Option.Option<number> =>
  Option.liftThrowable(() => (direction === "next" ? Cron.next : Cron.prev)(cron, new Date(from)).getTime())()
