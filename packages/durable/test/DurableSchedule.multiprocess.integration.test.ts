import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, DurableSchedule, SqliteClient } from "@fiberpool/durable"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { wakeId } from "../src/internal/wakeups.ts"
import { pgUrl, waitUntil } from "./utils/stores.ts"

const PROCESSES = 4
const fixture = Path.join(import.meta.dirname, "fixtures", "scheduler.ts")

interface Case {
  readonly store: "sqlite" | "postgres"
  readonly skip: boolean
  readonly setup: () => { readonly db: string; readonly sql: Layer.Layer<SqlClient.SqlClient, unknown> }
}

const cases: ReadonlyArray<Case> = [
  {
    store: "sqlite",
    skip: false,
    setup: () => {
      const db = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-cron-")), "queue.db")
      return { db, sql: SqliteClient.layer({ filename: db, busyTimeout: "20 seconds" }) }
    }
  },
  {
    store: "postgres",
    skip: pgUrl === undefined || pgUrl === "",
    setup: () => ({ db: pgUrl ?? "", sql: PgClient.layer({ url: Redacted.make(pgUrl ?? ""), maxConnections: 2 }) })
  }
]

describe.each(cases)("a schedule shared by 4 processes on $store", (c) => {
  const { db, sql: SqlLive } = c.setup()
  ;(c.skip ? it.live.skip : it.live)(
    "a per-second cron runs every tick exactly once: no duplicates, no gaps",
    () =>
      Effect.gen(function*() {
        const suffix = `${process.pid}_${Date.now().toString(36)}`
        const queueName = `cron-${suffix}`
        const schedule = `every-second-${suffix}`
        const sql = yield* SqlClient.SqlClient
        const runs = sql(`runs_${suffix}`)
        yield* sql`CREATE TABLE ${runs} (job_id VARCHAR(255) NOT NULL, consumer VARCHAR(64) NOT NULL, ran_at BIGINT NOT NULL)`
        const claims = sql(`claims_${suffix}`)
        yield* sql`CREATE TABLE ${claims} (job_id VARCHAR(255) NOT NULL, consumer VARCHAR(64) NOT NULL)`
        const queue = yield* Layer.build(DurableQueue.layerSql({ name: queueName }))

        const children = Array.from({ length: PROCESSES }, () =>
          ChildProcess.spawn(process.execPath, [fixture], {
            env: { ...process.env, STORE: c.store, DB: db, QUEUE: queueName, SUFFIX: suffix, SCHEDULE: schedule },
            stdio: ["ignore", "pipe", "inherit"]
          }))
        yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((child) => child.kill("SIGKILL"))))
        const exits = children.map((child) =>
          new Promise<number | string>((resolve) =>
            child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
          )
        )
        let ready = 0
        for (const child of children) {
          child.stdout.on("data", (chunk: Buffer) => {
            if (chunk.toString().includes("ready")) ready++
          })
        }
        yield* waitUntil("every process runs", Effect.sync(() => ready === PROCESSES), 20_000)
        const allReady = Date.now()

        const recorded = Effect.map(
          sql<
            { job_id: string; consumer: string; ran_at: number | string }
          >`SELECT job_id, consumer, ran_at FROM ${runs}`,
          (rows) =>
            rows.map((row) => ({
              id: row.job_id,
              tick: DurableSchedule.tickOf(row.job_id),
              by: row.consumer,
              ranAt: Number(row.ran_at)
            }))
        )
        // five seconds of ticks with all four processes polling
        yield* waitUntil(
          "ticks for 5 seconds after every process runs",
          Effect.map(recorded, (rows) => rows.some((row) => (row.tick ?? 0) >= allReady + 5000)),
          15_000
        )
        // stop the schedule, let the last enqueued ticks run, then stop the processes
        assert.isTrue(yield* DurableSchedule.remove(schedule).pipe(Effect.provideContext(queue)))
        const open = Effect.map(
          sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM effect_queue
          WHERE queue_name = ${queueName} AND (state <> 'completed' OR acquired_by IS NOT NULL)`,
          (rows) => Number(rows[0].c)
        )
        yield* waitUntil("every enqueued tick ran", Effect.map(open, (n) => n === 0), 10_000)
        for (const child of children) child.kill("SIGTERM")
        assert.deepStrictEqual(yield* Effect.promise(() => Promise.all(exits)), [0, 0, 0, 0])

        const rows = yield* recorded
        const counts = new Map<string, number>()
        for (const row of rows) counts.set(row.id, (counts.get(row.id) ?? 0) + 1)
        const duplicates = [...counts].filter(([, n]) => n > 1)
        assert.deepStrictEqual(duplicates, [], "no tick ran twice")
        const ticks = rows.map((row) => row.tick!).sort((a, b) => a - b)
        assert.isAtLeast(ticks.length, 6)
        const gaps = ticks.slice(1).filter((tick, i) => tick - ticks[i] !== 1000)
        assert.deepStrictEqual(gaps, [], "consecutive ticks are one second apart")
        // the schedule was set before the last process printed "ready": its first tick is at most a second later
        assert.isAtMost(ticks[0], allReady + 1000, "the first tick fired")
        // every enqueued job is one of these runs: no tick was enqueued twice under another id (PostgreSQL's
        // queues also hold their wake-up row)
        const [{ c: stored }] = yield* sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM effect_queue
          WHERE queue_name = ${queueName} AND id <> ${wakeId}`
        assert.strictEqual(Number(stored), ticks.length)
        // the ticks won by hand (`fireDue` in each process, racing the workers' own firing): each by one process
        const won = yield* sql<{ job_id: string; consumer: string }>`SELECT job_id, consumer FROM ${claims}`
        assert.isAtLeast(won.length, 1)
        assert.strictEqual(new Set(won.map((w) => w.job_id)).size, won.length, "no tick claimed by two processes")
        for (const w of won) assert.isTrue(counts.has(w.job_id))
        const winners = new Set(won.map((w) => w.consumer)).size
        const by = new Map<string, number>()
        for (const row of rows) by.set(row.by, (by.get(row.by) ?? 0) + 1)
        // how late a tick's job started (its tick to its handler), for the report; a poll interval is 100 ms here
        const lateness = rows.map((row) => row.ranAt - row.tick!).sort((a, b) => a - b)
        console.log(
          `${c.store}: ${ticks.length} ticks (${new Date(ticks[0]).toISOString()} to ${
            new Date(ticks[ticks.length - 1]).toISOString()
          }), each run once; ${won.length} won by hand by ${winners} processes; runs per process: ${
            [...by.values()].sort((a, b) => b - a).join(", ")
          }; jobs started after their tick: median ${lateness[Math.floor(lateness.length / 2)]} ms, max ${
            lateness[lateness.length - 1]
          } ms`
        )
      }).pipe(Effect.scoped, Effect.provide(Layer.orDie(SqlLive))),
    40_000
  )
})
