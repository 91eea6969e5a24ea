/**
 * The SQL store of the durable queue (PostgreSQL and SQLite): a `PersistedQueueStore` over effect's
 * `effect_queue` table, with its own claim.
 *
 * Why its own claim: effect 4.1's `makeStoreSql` claims in `visible_at, sequence` order, a query it does not
 * let callers change, so it cannot deliver by priority, and it cannot count what other processes hold. This
 * store keeps effect's table and migrations (it runs them, then adds columns and tables of its own under a
 * separate migrations table) and re-implements what effect's store guarantees, statement for statement: claims
 * under a fresh lock per poll, batched (one poll claims as many rows as there are waiting takers; completions are
 * group-committed, one statement for those that arrive while one runs), lock refresh,
 * attempts counted at the claim, retry delays, interruption handed back without counting the attempt, the
 * dead-letter signal, de-duplication by id, delays, expired-lock takeover, exhausted rows flipped to `failed`,
 * cleanup. Rows written by effect's store (an older release) stay claimable: they rank as priority 0 enqueued
 * at the epoch, so they come first.
 *
 * What it adds:
 *
 * - priorities with aging: `rank = visible_at (seconds) / aging (seconds) - priority` (or `-priority` when aging
 *   is off), stored with the row and recomputed whenever `visible_at` changes; the claim orders by
 *   `rank, visible_at, sequence` through a partial index. It is core's static key (`jobQueue.ts`): with linear
 *   aging the order of two waiting jobs never changes, so it can be stored.
 * - limits shared by every process, per job type: a global cap on live claims (unexpired leases), and a rate
 *   limit on claims (starts) in any window of `interval`, recorded in a `_starts` table by the database clock in
 *   milliseconds. effect's `RateLimiter` has a memory and a Redis store only, so the window is kept here, in the
 *   same transaction as the claim. A claim that involves a limited type runs in a transaction that first takes
 *   a lock per queue (PostgreSQL: `pg_advisory_xact_lock`; SQLite: `BEGIN IMMEDIATE`, the write lock), counts,
 *   and claims: two processes never both see room.
 * - dedupe by key: `mode: "active"` through a partial unique index on `(queue_name, dedupe_key)` over pending
 *   rows (pending, delayed or running); a time window through a `_dedupe` table of keys and their expiry.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Latch from "effect/Latch"
import * as MutableRef from "effect/MutableRef"
import * as PersistedQueue from "effect/persistence/PersistedQueue"
import * as Queue from "effect/Queue"
import * as RcMap from "effect/RcMap"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { Fragment } from "effect/sql/Statement"
import { StoreError } from "../DurableError.ts"
import * as GroupCommit from "./groupCommit.ts"

/** The limits of one job type, shared by every process of the queue. */
export interface TypeLimits {
  readonly global?: number | undefined
  readonly rate?: { readonly limit: number; readonly intervalMillis: number } | undefined
}

/** What an enqueue carries beyond the store's `offer`. */
export interface OfferJob {
  readonly name: string
  readonly id: string
  readonly element: unknown
  readonly delay?: Duration.Duration | undefined
  readonly jobType: string
  readonly priority: number
  readonly dedupe?:
    | { readonly key: string; readonly windowMillis: number }
    | { readonly key: string; readonly mode: "active" }
    | undefined
}

/** What `offerJob` did: `inserted` false when the id, or the dedupe key, is another job's. */
export interface Offered {
  readonly id: string
  readonly inserted: boolean
}

/**
 * A job claimed by a {@link Claimer}: its row's id, attempt (counted at the claim) and parsed element. `settle`
 * ends the claim by the outcome of its run, as a `take`'s scope does: success → completed; effect's dead-letter
 * signal → failed; interruption only → handed back, the attempt not counted; a failure → retried after
 * `retryDelay(attempts)`, or failed at the store's `maxAttempts`. It never fails (its writes retry up to the lease).
 */
export interface Claimed {
  readonly id: string
  readonly attempts: number
  readonly element: unknown
  readonly settle: (
    exit: Exit.Exit<unknown, unknown>,
    retryDelay: (attempts: number) => Effect.Effect<Duration.Duration>
  ) => Effect.Effect<void>
}

/**
 * Claims a queue's jobs in batches, for a worker that runs many at once: one statement claims up to `size` rows
 * (in claim order, within the shared limits), where `take` hands out one job per call. Made per worker, scoped.
 */
export interface Claimer {
  /** claims up to `size` jobs in one statement (none when none is due); an unreadable row is failed, not returned */
  readonly claim: (size: number) => Effect.Effect<ReadonlyArray<Claimed>, SqlError>
  /** waits until a job may be due: the poll interval, or a nudge (an enqueue in this process, a wake-up) */
  readonly awaitWork: Effect.Effect<void>
  /** settles claims whose runs all succeeded: completed together (one group-commit write) */
  readonly completeSucceeded: (claimed: ReadonlyArray<Claimed>) => Effect.Effect<void>
}

/** The store with what the durable queue needs beyond `PersistedQueueStore`. */
export interface JobStore {
  /** batched claims (the SQL stores); without it a worker claims through `store.take`, one job per call */
  readonly claimer?:
    | ((options: {
      readonly name: string
      readonly maxAttempts: number
      /** rows whose element is over this many bytes are not claimed (the worker's `maxPayloadBytes`) */
      readonly maxBytes?: number | undefined
    }) => Effect.Effect<Claimer, never, Scope.Scope>)
    | undefined
  readonly store: PersistedQueue.PersistedQueueStore["Service"]
  /** stores a job: its id, or the id of the job that suppressed it (dedupe); `inserted`: whether it was stored */
  readonly offerJob: (options: OfferJob) => Effect.Effect<Offered, PersistedQueue.PersistedQueueError>
  /** declares the limits of job types in a queue, for this process's claims (merged with earlier ones) */
  readonly setLimits: (queue: string, limits: ReadonlyMap<string, TypeLimits>) => Effect.Effect<void>
  /** removes the queue's expired dedupe windows (run with the retention) */
  readonly prune: (queue: string) => Effect.Effect<void, PersistedQueue.PersistedQueueError>
}

/** Whether priorities, dedupe and limits are supported by this client's dialect. */
export const isSupported = (client: SqlClient.SqlClient): boolean =>
  client.onDialectOrElse({ pg: () => true, sqlite: () => true, orElse: () => false })

export const make = (options: {
  readonly tableName: string
  readonly pollInterval: Duration.Duration
  readonly lockRefreshInterval: Duration.Duration
  readonly lockExpiration: Duration.Duration
  /** seconds of waiting that raise a job by one priority level; 0: strict priorities */
  readonly agingSeconds: number
}): Effect.Effect<JobStore, SqlError | StoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* SqlClient.SqlClient
    const sql = client.withoutTransforms()
    const tableName = options.tableName
    const table = sql(tableName)
    const startsTable = sql(`${tableName}_starts`)
    const dedupeTable = sql(`${tableName}_dedupe`)
    const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
    const { lockExpiration, lockRefreshInterval, pollInterval } = options

    // effect's own migrations create (or upgrade) the table; its store is closed at once
    yield* Effect.scoped(PersistedQueue.makeStoreSql({ tableName, pollInterval, lockExpiration, lockRefreshInterval }))
    // several processes may start at once: a concurrent CREATE on PostgreSQL can fail on the catalog's unique
    // index even with IF NOT EXISTS, so the migration is retried (as the outcome, flow and schedule tables' DDL)
    yield* Migrator.make({})({ loader: migrations(tableName), table: `${tableName}_fiberpool_migrations` }).pipe(
      Effect.retry({ times: 20, schedule: Schedule.spaced("100 millis") }),
      Effect.mapError((cause) => new StoreError({ operation: "migrate the queue table", cause }))
    )

    const now = isPg ? sql.literal("NOW()") : sql.literal("CURRENT_TIMESTAMP")
    const nowMillis = isPg
      ? sql.literal("(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)")
      : sql.literal("((julianday('now') - 2440587.5) * 86400000.0)")
    const secondsOffset = (seconds: number) => {
      const s = sql.literal(seconds.toString())
      return isPg ? sql`NOW() + INTERVAL '${s} seconds'` : sql`datetime(CURRENT_TIMESTAMP, '${s} seconds')`
    }
    const secondsFromNow = (seconds: number) => secondsOffset(Math.max(Math.ceil(seconds), 0))
    // as effect's store: never before the delay elapses (SQLite's clock drops the fraction of the second)
    const delayedVisibleAt = (delay: Duration.Duration) => {
      const seconds = Math.ceil(Duration.toSeconds(delay))
      return isPg
        ? sql`clock_timestamp() + INTERVAL '${sql.literal(seconds.toString())} seconds'`
        : secondsOffset(seconds + 1)
    }
    const expiresAt = secondsOffset(-Math.max(Math.ceil(Duration.toSeconds(lockExpiration)), 0))
    const rankOf = rankExpression(client, options.agingSeconds)
    const order = sql.literal("rank ASC, visible_at ASC, sequence ASC")
    const lockKey = (queue: string) => `fiberpool:${tableName}:${queue}`

    // ---- offer ----

    const insertJob = (job: OfferJob, withKey: string | null) => {
      const visibleAt = job.delay === undefined ? now : delayedVisibleAt(job.delay)
      const priority = sql.literal(String(job.priority))
      const values = sql`(${job.id}, ${job.name}, ${
        JSON.stringify(job.element)
      }, 'pending', 0, ${visibleAt}, ${now}, ${now},
        ${priority}, ${rankOf(visibleAt, priority)}, ${job.jobType}, ${withKey})`
      const columns = sql.literal(
        "(id, queue_name, element, state, attempts, visible_at, created_at, updated_at, priority, rank, job_type, dedupe_key)"
      )
      // no conflict target: a duplicate id and an active dedupe key are both ignored
      return isPg
        ? sql<
          { readonly id: string }
        >`INSERT INTO ${table} ${columns} VALUES ${values} ON CONFLICT DO NOTHING RETURNING id`
        : sql<{ readonly id: string }>`INSERT OR IGNORE INTO ${table} ${columns} VALUES ${values} RETURNING id`
    }
    const nudgeAfterCommit = (queue: string) =>
      sql.afterCommit(Effect.sync(() => {
        queueStates.peek(queue)?.nudge.openUnsafe()
      }))

    const offerJob = (job: OfferJob): Effect.Effect<Offered, SqlError> => {
      const dedupe = job.dedupe
      if (dedupe === undefined) {
        return insertJob(job, null).pipe(
          Effect.tap(() => nudgeAfterCommit(job.name)),
          Effect.map((rows) => ({ id: job.id, inserted: rows.length > 0 }))
        )
      }
      if ("mode" in dedupe) {
        // ignored: the key is held (answer with the holder), or the id is taken (answer with it); when neither
        // holds any more (the holder ended between the two statements), try again
        const attempt = (left: number): Effect.Effect<Offered, SqlError> =>
          Effect.flatMap(insertJob(job, dedupe.key), (rows) => {
            if (rows.length > 0) return Effect.as(nudgeAfterCommit(job.name), { id: job.id, inserted: true })
            return Effect.flatMap(
              sql<{ readonly id: string }>`
                SELECT id FROM ${table} WHERE queue_name = ${job.name}
                AND ((dedupe_key = ${dedupe.key} AND state = 'pending') OR id = ${job.id})`,
              (held) => {
                const holder = held.find((row) => row.id !== job.id) ?? held[0]
                return holder !== undefined || left === 0
                  ? Effect.succeed({ id: holder?.id ?? job.id, inserted: false })
                  : attempt(left - 1)
              }
            )
          })
        return attempt(5)
      }
      return sql.withTransaction(Effect.gen(function*() {
        const won = yield* sql<{ readonly job_id: string }>`
          INSERT INTO ${dedupeTable} (queue_name, dedupe_key, job_id, expires_at)
          VALUES (${job.name}, ${dedupe.key}, ${job.id}, ${nowMillis} + ${dedupe.windowMillis})
          ON CONFLICT (queue_name, dedupe_key) DO UPDATE SET job_id = excluded.job_id, expires_at = excluded.expires_at
          WHERE ${dedupeTable}.expires_at <= ${nowMillis}
          RETURNING job_id`
        if (won.length === 0) {
          const held = yield* sql<{ readonly job_id: string }>`
            SELECT job_id FROM ${dedupeTable} WHERE queue_name = ${job.name} AND dedupe_key = ${dedupe.key}`
          return { id: held[0]?.job_id ?? job.id, inserted: false }
        }
        const rows = yield* insertJob(job, null)
        yield* nudgeAfterCommit(job.name)
        return { id: job.id, inserted: rows.length > 0 }
      }))
    }

    // ---- claims ----

    type Element = {
      readonly id: string
      readonly sequence: number | string
      readonly element: string
      readonly job_type: string | null
      readonly rank: number | string
      readonly visible_epoch: number | string
      attempts: number
      lock: string
      queue: string
    }

    interface QueueState {
      maxAttempts: number
      readonly nudge: Latch.Latch
      readonly limits: Map<string, TypeLimits>
    }
    const states = new Map<string, QueueState>()
    const queueStates = {
      peek: (name: string) => states.get(name),
      get: (name: string): QueueState => {
        let state = states.get(name)
        if (state === undefined) {
          state = { maxAttempts: 2147483647, nudge: Latch.makeUnsafe(false), limits: new Map() }
          states.set(name, state)
        }
        return state
      }
    }

    const available = (name: string, maxAttempts: number) =>
      sql`queue_name = ${name} AND state = 'pending' AND attempts < ${maxAttempts} AND visible_at <= ${now}
        AND (acquired_at IS NULL OR acquired_at < ${expiresAt})`
    const skipLocked = sql.literal(isPg ? "FOR UPDATE SKIP LOCKED" : "")
    const returning = isPg
      // the epoch as a double (EXTRACT gives a numeric, which the driver decodes through a string): it only orders
      ? sql.literal(
        "sequence, id, element, attempts, job_type, rank, EXTRACT(EPOCH FROM visible_at)::float8 AS visible_epoch"
      )
      : sql.literal("sequence, id, element, attempts, job_type, rank, julianday(visible_at) AS visible_epoch")
    const claimSet = (lock: Fragment) => sql`acquired_at = ${now}, acquired_by = ${lock}, attempts = attempts + 1`

    // A claimer with a payload limit leaves a picked row over it where it is (the maintenance dead-letters it): a
    // row too large to read would fail the whole claim (PostgreSQL's driver drops the connection on it), and the
    // rows picked with it would wait behind it. Checked on the picked rows only, not on the backlog.
    const withinLimit = (maxBytes: number | undefined) =>
      maxBytes === undefined
        ? sql.literal("")
        : sql`AND ${sql.literal(isPg ? "octet_length(element)" : "length(CAST(element AS BLOB))")} <= ${maxBytes}`
    // the claim statement's own text (a fragment): the rows it takes, in claim order, under a fresh lock
    const claimUpdate = (
      name: string,
      maxAttempts: number,
      size: number,
      lock: Fragment,
      maxBytes: number | undefined
    ) =>
      sql`
        UPDATE ${table} SET ${claimSet(lock)}
        WHERE sequence IN (
          SELECT sequence FROM ${table}
          WHERE ${available(name, maxAttempts)}
          ORDER BY ${order}
          LIMIT ${size}
          ${skipLocked}
        ) ${withinLimit(maxBytes)}
        RETURNING ${returning}`
    const claimPlain = (
      name: string,
      maxAttempts: number,
      size: number,
      lock: Fragment,
      maxBytes: number | undefined
    ) => sql<Element>`${claimUpdate(name, maxAttempts, size, lock, maxBytes)}`

    // PostgreSQL: completes held rows, each matched with its own claim's lock; one statement text whatever their
    // number (arrays as parameters: prepared once per connection, where a list of placeholders would be a new
    // statement to parse and plan for every batch size)
    const completeRowsPg = (elements: ReadonlyArray<Element>) =>
      sql`
        UPDATE ${table} SET acquired_at = NULL, acquired_by = NULL, updated_at = ${now}, state = 'completed'
        FROM unnest(${elements.map((element) => String(element.sequence))}::bigint[], ${
        elements.map((element) => element.lock)
      }::uuid[]) AS d(s, l)
        WHERE ${table}.sequence = d.s AND ${table}.acquired_by = d.l`

    // PostgreSQL, a worker's claim: the claim also completes the jobs settled since the previous statement (`done`,
    // taken from the group commit), one statement instead of two. One statement text (empty arrays when none).
    const claimAndComplete = (
      name: string,
      maxAttempts: number,
      size: number,
      lock: Fragment,
      maxBytes: number | undefined,
      done: ReadonlyArray<Element>
    ) => sql<Element>`WITH done AS (${completeRowsPg(done)}) ${claimUpdate(name, maxAttempts, size, lock, maxBytes)}`

    // Counts what every process holds and started, then claims within the room left, all under the queue's lock.
    const claimLimited = (
      name: string,
      maxAttempts: number,
      size: number,
      lock: Fragment,
      limits: ReadonlyMap<string, TypeLimits>,
      maxBytes: number | undefined
    ) =>
      sql.withTransaction(Effect.gen(function*() {
        if (isPg) yield* sql`SELECT pg_advisory_xact_lock(hashtext(${lockKey(name)}))`
        const types = [...limits.keys()]
        const room = new Map<string, number>()
        const capped = types.filter((type) => limits.get(type)!.global !== undefined)
        for (const type of types) room.set(type, size)
        if (capped.length > 0) {
          const live = yield* sql<{ readonly job_type: string; readonly n: number | string }>`
            SELECT job_type, COUNT(*) AS n FROM ${table}
            WHERE queue_name = ${name} AND state = 'pending' AND acquired_by IS NOT NULL
            AND acquired_at >= ${expiresAt} AND ${sql.in("job_type", capped)}
            GROUP BY job_type`
          const held = new Map(live.map((row) => [row.job_type, Number(row.n)]))
          for (const type of capped) {
            room.set(type, Math.min(room.get(type)!, limits.get(type)!.global! - (held.get(type) ?? 0)))
          }
        }
        const rated = types.filter((type) => limits.get(type)!.rate !== undefined)
        if (rated.length > 0) {
          const windows = sql.or(
            rated.map((type) =>
              sql`(job_type = ${type} AND started_at > ${nowMillis} - ${limits.get(type)!.rate!.intervalMillis})`
            )
          )
          const recent = yield* sql<{ readonly job_type: string; readonly n: number | string }>`
            SELECT job_type, COUNT(*) AS n FROM ${startsTable}
            WHERE queue_name = ${name} AND ${windows}
            GROUP BY job_type`
          const started = new Map(recent.map((row) => [row.job_type, Number(row.n)]))
          for (const type of rated) {
            room.set(type, Math.min(room.get(type)!, limits.get(type)!.rate!.limit - (started.get(type) ?? 0)))
          }
        }
        const branches: Array<Fragment> = [sql`
          SELECT sequence, rank, visible_at FROM ${table}
          WHERE ${available(name, maxAttempts)} AND (job_type IS NULL OR NOT ${sql.in("job_type", types)})
          ORDER BY ${order} LIMIT ${size} ${skipLocked}`]
        for (const type of types) {
          const n = room.get(type)!
          if (n <= 0) continue
          branches.push(sql`
            SELECT sequence, rank, visible_at FROM ${table}
            WHERE ${available(name, maxAttempts)} AND job_type = ${type}
            ORDER BY ${order} LIMIT ${n} ${skipLocked}`)
        }
        const ctes = sql.csv(branches.map((branch, i) => sql`${sql(`b${i}`)} AS (${branch})`))
        const union = sql.join(" UNION ALL ", false)(
          branches.map((_, i) => sql`SELECT sequence, rank, visible_at FROM ${sql(`b${i}`)}`)
        )
        const claimed = yield* sql<Element>`
          WITH ${ctes}, picked AS (
            SELECT sequence FROM (${union}) c ORDER BY ${order} LIMIT ${size}
          )
          UPDATE ${table} SET ${claimSet(lock)}
          WHERE sequence IN (SELECT sequence FROM picked) ${withinLimit(maxBytes)}
          RETURNING ${returning}`
        const starts = claimed.filter((row) => row.job_type !== null && limits.get(row.job_type)?.rate !== undefined)
        if (starts.length > 0) {
          yield* sql`INSERT INTO ${startsTable} (queue_name, job_type, started_at) VALUES ${
            sql.csv(starts.map((row) => sql`(${name}, ${row.job_type}, ${nowMillis})`))
          }`
        }
        if (rated.length > 0) {
          const longest = Math.max(...rated.map((type) => limits.get(type)!.rate!.intervalMillis))
          yield* sql`DELETE FROM ${startsTable} WHERE queue_name = ${name} AND started_at <= ${nowMillis} - ${longest}`
        }
        return claimed
      }))

    // ---- settlements (as effect's store: each guarded by the claim's lock) ----

    const held = new Set<Element>()
    const refreshLocks: Effect.Effect<unknown, SqlError> = Effect.suspend((): Effect.Effect<unknown, SqlError> => {
      if (held.size === 0) return Effect.void
      const sequences = new Set<number | string>()
      const locks = new Set<string>()
      for (const element of held) {
        sequences.add(element.sequence)
        locks.add(element.lock)
      }
      return sql`
        UPDATE ${table} SET acquired_at = ${now}
        WHERE ${sql.in("sequence", [...sequences])} AND ${sql.in("acquired_by", [...locks])}`
    })
    const ackRetrySchedule = Schedule.min([Schedule.exponential(200, 1.5), Schedule.spaced(5000)]).pipe(
      Schedule.upTo({ duration: lockExpiration })
    )
    // a settled element leaves `held`, so its lock is not renewed
    const release = (element: Element) => {
      held.delete(element)
      // a settled claim of a limited type frees room: look again at once
      if (element.job_type !== null && queueStates.peek(element.queue)?.limits.has(element.job_type)) {
        queueStates.peek(element.queue)?.nudge.openUnsafe()
      }
    }
    // `write` retries on its own (ackRetrySchedule)
    const settle = (write: Effect.Effect<unknown, SqlError>, element: Element) =>
      write.pipe(
        Effect.orDie,
        Effect.ensuring(Effect.sync(() => release(element))),
        Effect.asVoid
      )
    const ack = (statement: Effect.Effect<unknown, SqlError>, element: Element) =>
      settle(Effect.retry(statement, ackRetrySchedule), element)
    const guard = (element: Element) => sql`sequence = ${element.sequence} AND acquired_by = ${element.lock}`
    // Completions are group-committed: the completions that arrive while one statement runs go together in the
    // next, as pg-boss completes a fetched batch in one statement. Each row is matched with its own claim's lock
    // (grouped by lock, so a row re-claimed under another lock of this process is never completed by mistake).
    const completions = yield* GroupCommit.make<Element, SqlError>({
      maxSize: 500,
      // the batch's elements are released together, however the statement ends
      flush: (elements) =>
        Effect.ensuring(
          completeAll(elements),
          Effect.sync(() => {
            for (const element of elements) release(element)
          })
        )
    })
    const completeAll = (elements: ReadonlyArray<Element>): Effect.Effect<void, SqlError> => {
      if (isPg) return sql`${completeRowsPg(elements)}`.pipe(Effect.retry(ackRetrySchedule), Effect.asVoid)
      const byLock = new Map<string, Array<number | string>>()
      for (const element of elements) {
        const sequences = byLock.get(element.lock)
        if (sequences === undefined) byLock.set(element.lock, [element.sequence])
        else sequences.push(element.sequence)
      }
      const guards = sql.or(
        [...byLock].map(([lock, sequences]) => sql`(acquired_by = ${lock} AND ${sql.in("sequence", sequences)})`)
      )
      return sql`UPDATE ${table} SET acquired_at = NULL, acquired_by = NULL, updated_at = ${now}, state = 'completed'
          WHERE ${guards}`.pipe(Effect.retry(ackRetrySchedule), Effect.asVoid)
    }
    const complete = (element: Element) => Effect.orDie(completions.write(element))
    const fail = (element: Element, cause: Cause.Cause<unknown>) =>
      ack(
        sql`UPDATE ${table} SET acquired_at = NULL, acquired_by = NULL, updated_at = ${now}, state = 'failed',
          last_failure = ${Cause.pretty(cause)}
          WHERE ${guard(element)}`,
        element
      )
    const retry = (element: Element, delay: Duration.Duration, cause: Cause.Cause<unknown>) => {
      const visibleAt = secondsFromNow(Duration.toSeconds(delay))
      return ack(
        sql`UPDATE ${table} SET acquired_at = NULL, acquired_by = NULL, updated_at = ${now},
          visible_at = ${visibleAt}, rank = ${rankOf(visibleAt, sql.literal("priority"))},
          last_failure = ${Cause.pretty(cause)}
          WHERE ${guard(element)}`,
        element
      )
    }
    const interrupt = (element: Element) =>
      ack(
        sql`UPDATE ${table} SET acquired_at = NULL, acquired_by = NULL, attempts = attempts - 1
          WHERE ${guard(element)}`,
        element
      )

    yield* refreshLocks.pipe(
      Effect.tapCause(Effect.logWarning),
      Effect.retry(Schedule.spaced(500)),
      Effect.schedule(Schedule.fixed(lockRefreshInterval)),
      Effect.forkScoped
    )

    // flips exhausted rows whose lock expired (a worker crashed on the final attempt) to failed, while the scope lives
    const upkeep = (name: string, state: QueueState) =>
      Effect.suspend(() =>
        sql`
          UPDATE ${table}
          SET state = 'failed', acquired_at = NULL, acquired_by = NULL, updated_at = ${now},
            last_failure = COALESCE(last_failure, 'Lock expired after final attempt')
          WHERE queue_name = ${name} AND state = 'pending' AND attempts >= ${state.maxAttempts}
          AND (acquired_at IS NULL OR acquired_at < ${expiresAt})`
      ).pipe(
        Effect.tapCause(Effect.logWarning),
        Effect.ignore,
        Effect.schedule(Schedule.spaced(lockRefreshInterval)),
        Effect.forkScoped,
        Effect.interruptible
      )

    // One claim statement under a fresh lock: the rows in claim order, held (their locks refreshed) until settled.
    const poll = (
      name: string,
      state: QueueState,
      size: number,
      maxBytes: number | undefined,
      // a worker's claimer on PostgreSQL: completions to write with the claim
      piggyback = false
    ): Effect.Effect<Array<Element>, SqlError> => {
      const lock = crypto.randomUUID()
      const lockSql = sql`${lock}`
      const limits = state.limits
      let claimed: Effect.Effect<ReadonlyArray<Element>, SqlError>
      if (limits.size === 0 && piggyback && isPg) {
        const taken = completions.takeNext()
        const done = taken?.items ?? []
        claimed = taken === undefined
          ? claimAndComplete(name, state.maxAttempts, size, lockSql, maxBytes, done)
          : claimAndComplete(name, state.maxAttempts, size, lockSql, maxBytes, done).pipe(
            Effect.onExit((exit) => {
              if (exit._tag === "Failure") return taken.giveBack
              for (const element of done) release(element)
              taken.end()
              return Effect.void
            })
          )
      } else {
        claimed = limits.size === 0
          ? claimPlain(name, state.maxAttempts, size, lockSql, maxBytes)
          : claimLimited(name, state.maxAttempts, size, lockSql, limits, maxBytes)
      }
      return Effect.map(claimed, (results) => {
        const sorted = results.length < 2 ?
          [...results] :
          [...results].sort((a, b) =>
            Number(a.rank) - Number(b.rank) || Number(a.visible_epoch) - Number(b.visible_epoch) ||
            Number(a.sequence) - Number(b.sequence)
          )
        for (const row of sorted) {
          row.attempts = Number(row.attempts)
          row.lock = lock
          row.queue = name
          held.add(row)
        }
        return sorted
      })
    }
    const awaitWork = (state: QueueState) => Effect.race(Effect.sleep(pollInterval), state.nudge.await)

    // How a claim ends, by its run's exit (see `Claimed`): the one place that decides it, for `take` and `claimer`.
    const settleExit = (
      element: Element,
      maxAttempts: number,
      retryDelay: (attempts: number) => Effect.Effect<Duration.Duration>,
      exit: Exit.Exit<unknown, unknown>
    ): Effect.Effect<void> => {
      if (exit._tag === "Success") return complete(element)
      const dead = deadLetterFromCause(exit.cause)
      if (dead !== undefined) return fail(element, dead)
      if (Cause.hasInterruptsOnly(exit.cause)) return interrupt(element)
      if (element.attempts >= maxAttempts) return fail(element, exit.cause)
      return Effect.flatMap(retryDelay(element.attempts), (delay) => retry(element, delay, exit.cause))
    }
    const unreadable = (element: Element) => fail(element, Cause.die(new Error("the element is not JSON")))

    const claimer = (
      claimerOptions: { readonly name: string; readonly maxAttempts: number; readonly maxBytes?: number | undefined }
    ) =>
      Effect.gen(function*() {
        const name = claimerOptions.name
        const state = queueStates.get(name)
        // each claim's row, for `completeSucceeded`
        const claimRows = new WeakMap<Claimed, Element>()
        state.maxAttempts = claimerOptions.maxAttempts
        yield* upkeep(name, state)
        const claim = (size: number): Effect.Effect<ReadonlyArray<Claimed>, SqlError> =>
          Effect.suspend(() => {
            // closed before the statement: a nudge that arrives while it runs is not lost (see `awaitWork`)
            state.nudge.closeUnsafe()
            return Effect.flatMap(poll(name, state, size, claimerOptions.maxBytes, true), (rows) => {
              const claimed: Array<Claimed> = []
              const bad: Array<Element> = []
              for (const element of rows) {
                const parsed = parseJson(element.element)
                if (parsed === parseFailed) {
                  bad.push(element)
                  continue
                }
                const claim: Claimed = {
                  id: element.id,
                  attempts: element.attempts,
                  element: parsed,
                  settle: (exit, retryDelay) => settleExit(element, state.maxAttempts, retryDelay, exit)
                }
                claimRows.set(claim, element)
                claimed.push(claim)
              }
              // a row that cannot be parsed never succeeds: fail it
              return bad.length === 0
                ? Effect.succeed(claimed)
                : Effect.as(Effect.forEach(bad, unreadable, { discard: true }), claimed)
            })
          })
        const completeSucceeded = (claimed: ReadonlyArray<Claimed>): Effect.Effect<void> =>
          Effect.orDie(completions.writeAll(claimed.map((claim) => claimRows.get(claim)!)))
        return { claim, awaitWork: awaitWork(state), completeSucceeded } satisfies Claimer
      })

    const mailboxes = yield* RcMap.make({
      lookup: Effect.fnUntraced(function*(name: string) {
        const state = queueStates.get(name)
        const queue = yield* Queue.make<Element>()
        const takers = MutableRef.make(0)
        const pollLatch = Latch.makeUnsafe()
        const takenLatch = Latch.makeUnsafe()

        yield* Effect.addFinalizer(() =>
          Effect.flatMap(
            Queue.clear(queue),
            (elements) =>
              Effect.forEach(elements, interrupt, {
                concurrency: "unbounded",
                discard: true
              })
          )
        )

        yield* upkeep(name, state)

        yield* Effect.gen(function*() {
          while (true) {
            yield* pollLatch.await
            yield* Effect.yieldNow
            state.nudge.closeUnsafe()
            const sorted = takers.current === 0 ? [] : yield* poll(name, state, takers.current, undefined)
            if (sorted.length === 0) {
              yield* awaitWork(state)
              continue
            }
            takenLatch.closeUnsafe()
            yield* Queue.offerAll(queue, sorted)
            yield* takenLatch.await
            yield* Effect.yieldNow
          }
        }).pipe(
          Effect.tapCause(Effect.logWarning),
          Effect.sandbox,
          Effect.retry(Schedule.spaced(500)),
          Effect.forkScoped
        )

        return { queue, takers, pollLatch, takenLatch } as const
      }),
      idleTimeToLive: Duration.seconds(30)
    })

    const wrapError = (message: string) => (cause: unknown) =>
      Effect.fail(new PersistedQueue.PersistedQueueError({ message, cause }))

    const store = PersistedQueue.PersistedQueueStore.of({
      offer: ({ delay, element, id, name }) =>
        offerJob({ name, id, element, delay, jobType: jobTypeOf(element), priority: 0 }).pipe(
          Effect.asVoid,
          Effect.catchCause(wrapError("Failed to offer element to persisted queue"))
        ),
      take: (takeOptions) => {
        const name = takeOptions.name
        queueStates.get(name).maxAttempts = takeOptions.maxAttempts
        const loop: Effect.Effect<
          { readonly id: string; readonly attempts: number; readonly element: unknown },
          PersistedQueue.PersistedQueueError,
          Scope.Scope
        > = Effect.uninterruptibleMask((restore) =>
          RcMap.get(mailboxes, name).pipe(
            Effect.flatMap(({ pollLatch, queue, takenLatch, takers }) => {
              takers.current++
              if (takers.current === 1) pollLatch.openUnsafe()
              // onExit: a waiting take that is interrupted must not leave a phantom taker
              return Effect.onExit(restore(Queue.take(queue)), () =>
                Effect.sync(() => {
                  takers.current--
                  if (takers.current === 0) {
                    pollLatch.closeUnsafe()
                    takenLatch.openUnsafe()
                  } else if (Queue.sizeUnsafe(queue) === 0) {
                    takenLatch.openUnsafe()
                  }
                }))
            }),
            Effect.scoped,
            restore,
            Effect.flatMap((element) => {
              const parsed = parseJson(element.element)
              if (parsed === parseFailed) {
                // a row that cannot be parsed never succeeds: fail it and take the next one
                return Effect.andThen(unreadable(element), loop)
              }
              return Effect.as(
                Effect.addFinalizer((exit) =>
                  settleExit(element, takeOptions.maxAttempts, takeOptions.retryDelay, exit)
                ),
                { id: element.id, attempts: element.attempts, element: parsed }
              )
            })
          )
        )
        return loop
      },
      cleanup: ({ failedTimeToLive, timeToLive }) =>
        Effect.gen(function*() {
          const batch = (state: string, ttl: Duration.Duration) =>
            sql<{ readonly one: number }>`
              DELETE FROM ${table} WHERE sequence IN (
                SELECT sequence FROM ${table}
                WHERE state = ${state} AND updated_at <= ${secondsOffset(-Math.ceil(Duration.toSeconds(ttl)))}
                LIMIT 1000
              )
              RETURNING 1 AS one`.pipe(
              Effect.repeat({ while: (rows) => rows.length === 1000, schedule: Schedule.spaced(Duration.millis(10)) })
            )
          yield* batch("completed", timeToLive)
          if (failedTimeToLive !== undefined) yield* batch("failed", failedTimeToLive)
        }).pipe(Effect.catchCause(wrapError("Failed to clean up persisted queue")))
    })

    return {
      store,
      claimer,
      offerJob: (job) => offerJob(job).pipe(Effect.catchCause(wrapError("Failed to offer element to persisted queue"))),
      prune: (queue) =>
        sql`DELETE FROM ${dedupeTable} WHERE queue_name = ${queue} AND expires_at <= ${nowMillis}`.pipe(
          Effect.asVoid,
          Effect.catchCause(wrapError("Failed to remove expired dedupe keys"))
        ),
      setLimits: (queue, limits) =>
        Effect.sync(() => {
          const state = queueStates.get(queue)
          for (const [type, limit] of limits) state.limits.set(type, limit)
          state.nudge.openUnsafe()
        })
    }
  })

/**
 * The claim order key of a row whose `visible_at` is `time`: `time / aging - priority` in seconds, `-priority`
 * without aging. Every statement that moves `visible_at` sets `rank` with it. On PostgreSQL `time` is a
 * `timestamptz` (`NOW()`, `clock_timestamp() + ...`): its epoch is absolute, whatever the session's TimeZone.
 */
export const rankExpression = (client: SqlClient.SqlClient, agingSeconds: number) => {
  const sql = client.withoutTransforms()
  const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
  const epochSeconds = (time: Fragment) =>
    isPg ? sql`EXTRACT(EPOCH FROM ${time})` : sql`((julianday(${time}) - 2440587.5) * 86400.0)`
  return (time: Fragment, priority: Fragment): Fragment =>
    agingSeconds > 0
      ? sql`(${epochSeconds(time)} / ${sql.literal(String(agingSeconds))} - ${priority})`
      : sql`(0 - ${priority})`
}

// ---- Internal ----

const parseFailed: unique symbol = Symbol("parseFailed")

const parseJson = (text: string): unknown => {
  // JSON.parse throws on bad input: the boundary with stored text
  try {
    return JSON.parse(text)
  } catch {
    return parseFailed
  }
}

/** @internal */
export const jobTypeOf = (element: unknown): string =>
  typeof element === "object" && element !== null && "type" in element && typeof element.type === "string"
    ? element.type
    : "<missing>"

/** effect's dead-letter signal (see `storeDeadLetter` in DurableWorker.ts), matched by its `_tag`. */
export const deadLetterFromCause = (cause: Cause.Cause<unknown>): Cause.Cause<unknown> | undefined => {
  for (const reason of cause.reasons) {
    if (
      Cause.isFailReason(reason) && typeof reason.error === "object" && reason.error !== null &&
      (reason.error as { _tag?: unknown })._tag === "~effect/persistence/PersistedQueue/DeadLetter"
    ) {
      return (reason.error as { readonly cause: Cause.Cause<unknown> }).cause
    }
  }
  return undefined
}

const migrations = (tableName: string) =>
  Migrator.fromRecord({
    "0001_priorities_limits_dedupe": Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      const table = sql(tableName)
      const isPg = sql.onDialectOrElse({ pg: () => true, orElse: () => false })
      const double = sql.literal(isPg ? "DOUBLE PRECISION" : "REAL")
      const text = sql.literal(isPg ? "VARCHAR(255)" : "TEXT")
      yield* sql`ALTER TABLE ${table} ADD COLUMN priority INTEGER NOT NULL DEFAULT 0`
      yield* sql`ALTER TABLE ${table} ADD COLUMN rank ${double} NOT NULL DEFAULT 0`
      yield* sql`ALTER TABLE ${table} ADD COLUMN job_type ${text} NULL`
      yield* sql`ALTER TABLE ${table} ADD COLUMN dedupe_key ${text} NULL`
      // the claim order, over pending rows only
      yield* sql`CREATE INDEX ${sql(`idx_${tableName}_rank`)} ON ${table} (queue_name, rank, visible_at, sequence)
        WHERE state = 'pending'`
      // the live claims of a type, counted by capped claims
      yield* sql`CREATE INDEX ${sql(`idx_${tableName}_claimed_type`)} ON ${table} (queue_name, job_type, acquired_at)
        WHERE state = 'pending' AND acquired_by IS NOT NULL`
      // at most one pending (waiting, delayed or running) job per active dedupe key
      yield* sql`CREATE UNIQUE INDEX ${sql(`idx_${tableName}_dedupe`)} ON ${table} (queue_name, dedupe_key)
        WHERE state = 'pending' AND dedupe_key IS NOT NULL`
      yield* sql`CREATE TABLE ${sql(`${tableName}_starts`)} (
        queue_name ${text} NOT NULL, job_type ${text} NOT NULL, started_at ${double} NOT NULL)`
      yield* sql`CREATE INDEX ${sql(`idx_${tableName}_starts`)} ON ${sql(`${tableName}_starts`)}
        (queue_name, job_type, started_at)`
      yield* sql`CREATE TABLE ${sql(`${tableName}_dedupe`)} (
        queue_name ${text} NOT NULL, dedupe_key ${text} NOT NULL, job_id ${text} NOT NULL,
        expires_at ${double} NOT NULL, PRIMARY KEY (queue_name, dedupe_key))`
    }),
    // effect's claim indexes, unused by this store's statements (its claim orders by rank, its settlements find a
    // row by its primary key): each cost a write per row version, and on a table whose statistics are stale the
    // planner picked `_take` for the claim and sorted every pending row (40 ms a poll at 20,000 rows, 1.5 ms by
    // `_rank`). A process of an older release (effect's store) still claims and settles correctly without them.
    "0002_drop_effect_claim_indexes": Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      yield* sql`DROP INDEX IF EXISTS ${sql(`idx_${tableName}_take`)}`
      yield* sql`DROP INDEX IF EXISTS ${sql(`idx_${tableName}_update`)}`
    })
  })
