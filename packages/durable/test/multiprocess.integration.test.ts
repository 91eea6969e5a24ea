import { NodeRedis } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, SqliteClient } from "@fiberpool/durable"
import * as DurableRedis from "@fiberpool/durable/DurableRedis"
import { Context, Effect, Layer, Redacted } from "effect"
import { Redis } from "effect/persistence"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { makeRecord } from "./fixtures/record.ts"
import { pgUrl, redisUrl, waitUntil } from "./utils/stores.ts"

const JOBS = 2000
const CONSUMERS = 4
const fixture = Path.join(import.meta.dirname, "fixtures", "consumer.ts")

interface Case {
  readonly store: "sqlite" | "postgres" | "redis"
  readonly skip: boolean
  /** `sql`: where the jobs record their runs (and the queue's tables, SQL stores) */
  readonly setup: () => { readonly db: string; readonly sql: Layer.Layer<SqlClient.SqlClient, unknown> }
}

const sqliteFile = () => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-mp-")), "queue.db")

const cases: ReadonlyArray<Case> = [
  {
    store: "sqlite",
    skip: false,
    setup: () => {
      const db = sqliteFile()
      return { db, sql: SqliteClient.layer({ filename: db, busyTimeout: "20 seconds" }) }
    }
  },
  {
    store: "postgres",
    skip: pgUrl === undefined || pgUrl === "",
    setup: () => ({ db: pgUrl ?? "", sql: PgClient.layer({ url: Redacted.make(pgUrl ?? "") }) })
  },
  {
    // the queue in Redis; the runs are recorded in a SQLite file
    store: "redis",
    skip: redisUrl === undefined || redisUrl === "",
    setup: () => {
      const db = sqliteFile()
      return { db, sql: SqliteClient.layer({ filename: db, busyTimeout: "20 seconds" }) }
    }
  }
]

describe.each(cases)("4 consumer processes on $store, one SIGKILLed mid-run", (c) => {
  const { db, sql: SqlLive } = c.setup()
  ;(c.skip ? it.live.skip : it.live)(
    `all ${JOBS} jobs run at least once, their effects exactly once, none left claimed`,
    () =>
      Effect.gen(function*() {
        const suffix = `${process.pid}_${Date.now().toString(36)}`
        const queueName = `mp-${suffix}`
        const sql = yield* SqlClient.SqlClient
        const runs = sql(`runs_${suffix}`)
        const effects = sql(`effects_${suffix}`)
        const counter = sql(`counter_${suffix}`)
        yield* sql`CREATE TABLE ${runs} (job_id VARCHAR(255) NOT NULL, consumer VARCHAR(64) NOT NULL, attempt INTEGER NOT NULL)`
        yield* sql`CREATE TABLE ${effects} (job_id VARCHAR(255) PRIMARY KEY)`
        yield* sql`CREATE TABLE ${counter} (total INTEGER NOT NULL)`
        yield* sql`INSERT INTO ${counter} (total) VALUES (0)`

        // migrate and enqueue from this process (as a producer would), before any consumer starts
        const ids = Array.from({ length: JOBS }, (_, n) => `job-${String(n).padStart(5, "0")}`)
        const prefix = `fpmp:${suffix}:`
        const enqueueAll = Effect.forEach(
          ids,
          (id, n) => DurableQueue.enqueue(makeRecord(suffix, "producer"), { n }, { id }),
          { discard: true }
        )
        yield* Effect.scoped(Effect.gen(function*() {
          if (c.store === "redis") {
            const queue = yield* Layer.build(DurableRedis.layer({ url: redisUrl ?? "", name: queueName, prefix }))
            return yield* enqueueAll.pipe(Effect.provideContext(queue))
          }
          const queue = yield* Layer.build(DurableQueue.layerSql({ name: queueName }))
          yield* sql.withTransaction(enqueueAll).pipe(Effect.provideContext(queue))
        }))
        const redis = c.store === "redis"
          ? yield* Effect.map(
            Layer.build(NodeRedis.layer({ url: redisUrl ?? "" })),
            (context) => Context.get(context, Redis.Redis)
          )
          : undefined

        const children = Array.from({ length: CONSUMERS }, () =>
          ChildProcess.spawn(process.execPath, [fixture], {
            env: {
              ...process.env,
              STORE: c.store,
              DB: db,
              REDIS: redisUrl ?? "",
              PREFIX: prefix,
              QUEUE: queueName,
              SUFFIX: suffix,
              CONCURRENCY: "4",
              LEASE: "3 seconds"
            },
            stdio: ["ignore", "pipe", "inherit"]
          }))
        const exits = children.map((child) =>
          new Promise<number | string>((resolve) =>
            child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
          )
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((child) => child.kill("SIGKILL"))))

        const runsBy = (pid: number | undefined) =>
          Effect.map(
            sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM ${runs} WHERE consumer = ${`pid-${pid}`}`,
            (rows) => Number(rows[0].c)
          )
        const victim = children[0]
        yield* waitUntil("the victim is mid-run", Effect.map(runsBy(victim.pid), (n) => n >= 20), 40_000)
        victim.kill("SIGKILL")
        const killedAt = Date.now()

        const total = Effect.map(
          sql<{ total: number | string }>`SELECT total FROM ${counter}`,
          (r) => Number(r[0].total)
        )
        // jobs not completed: pending, delayed or claimed (effect's Redis store: its list, delayed set, claim hash)
        const open = redis !== undefined
          ? Effect.map(
            Effect.all([
              redis.send<number>("LLEN", `${prefix}${queueName}`),
              redis.send<number>("ZCARD", `${prefix}${queueName}:delayed`),
              redis.send<number>("HLEN", `${prefix}${queueName}:pending`)
            ]),
            (counts) => counts.reduce((a, b) => a + b, 0)
          )
          : Effect.map(
            sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM effect_queue
          WHERE queue_name = ${queueName} AND (state <> 'completed' OR acquired_by IS NOT NULL)`,
            (r) => Number(r[0].c)
          )
        yield* waitUntil(
          "every job is done",
          Effect.map(Effect.all([total, open]), ([t, o]) => t === JOBS && o === 0),
          45_000
        )
        const doneAfterKill = Date.now() - killedAt

        for (const child of children.slice(1)) child.kill("SIGTERM")
        const codes = yield* Effect.promise(() => Promise.all(exits))
        assert.deepStrictEqual(codes, ["SIGKILL", 0, 0, 0])

        const recorded = yield* sql<{ job_id: string; c: number | string }>`
        SELECT job_id, COUNT(*) AS c FROM ${runs} GROUP BY job_id`
        assert.strictEqual(recorded.length, JOBS, "every job id recorded at least once")
        assert.deepStrictEqual(new Set(recorded.map((r) => r.job_id)), new Set(ids))
        const duplicates = recorded.filter((r) => Number(r.c) > 1).length
        assert.strictEqual(yield* total, JOBS, "the idempotent effect was applied exactly once per job")
        const [{ c: effectRows }] = yield* sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM ${effects}`
        assert.strictEqual(Number(effectRows), JOBS)
        assert.strictEqual(yield* open, 0, "nothing remains pending or claimed")
        // the victim's claimed jobs came back after the lease, the crash counting as an attempt
        // (effect's Redis store forgets a completed job's attempts: there the runs recorded by a later attempt count)
        const [{ c: redelivered }] = redis !== undefined
          ? yield* sql<{ c: number | string }>`SELECT COUNT(DISTINCT job_id) AS c FROM ${runs} WHERE attempt > 1`
          : yield* sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM effect_queue
        WHERE queue_name = ${queueName} AND attempts > 1`
        assert.isAtLeast(Number(redelivered), 1, "the killed consumer's jobs were delivered again")
        assert.isAtLeast(doneAfterKill, 2_500, "they came back only once the 3 s lease had expired")
        const consumersUsed = yield* sql<{ consumer: string }>`SELECT DISTINCT consumer FROM ${runs}`
        assert.isAtLeast(consumersUsed.length, 2)
        console.log(
          `${c.store}: ${JOBS} jobs, ${consumersUsed.length} consumers ran jobs, ${redelivered} redelivered after the ` +
            `SIGKILL (${duplicates} of them had already recorded a run), all done ${doneAfterKill} ms after it`
        )
      }).pipe(Effect.provide(Layer.orDie(SqlLive))),
    60_000
  )
})
