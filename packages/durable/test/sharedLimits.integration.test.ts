import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, SqliteClient } from "@fiberpool/durable"
import { Duration, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { CAP, makeTypes, RATE } from "./fixtures/limited.ts"
import { pgUrl, waitUntil } from "./utils/stores.ts"

const CONSUMERS = 4
const CAPPED = 24
const RATED = 14
const fixture = Path.join(import.meta.dirname, "fixtures", "limited-consumer.ts")

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
      const db = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-limits-")), "queue.db")
      return { db, sql: SqliteClient.layer({ filename: db, busyTimeout: "20 seconds" }) }
    }
  },
  {
    store: "postgres",
    skip: pgUrl === undefined || pgUrl === "",
    setup: () => ({ db: pgUrl ?? "", sql: PgClient.layer({ url: Redacted.make(pgUrl ?? "") }) })
  }
]

/** The most runs that overlapped at any instant (a run ending at t does not overlap one starting at t). */
const maxOverlap = (runs: ReadonlyArray<{ readonly start: number; readonly end: number }>): number => {
  const events = runs.flatMap((run) => [[run.start, 1], [run.end, -1]] as const)
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let current = 0
  let max = 0
  for (const [, delta] of events) {
    current += delta
    max = Math.max(max, current)
  }
  return max
}

describe.each(cases)("limits shared by 4 consumer processes on $store", (c) => {
  const { db, sql: SqlLive } = c.setup()
  ;(c.skip ? it.live.skip : it.live)(
    `a global cap of ${CAP} and a rate of ${RATE.limit} per ${RATE.interval} hold across the processes`,
    () =>
      Effect.gen(function*() {
        const suffix = `${process.pid}_${Date.now().toString(36)}`
        const queueName = `limits-${suffix}`
        const sql = yield* SqlClient.SqlClient
        const runs = sql(`limit_runs_${suffix}`)
        yield* sql`CREATE TABLE ${runs} (job_id VARCHAR(255) NOT NULL, job_type VARCHAR(64) NOT NULL,
          consumer VARCHAR(64) NOT NULL, started_at BIGINT NOT NULL, ended_at BIGINT NOT NULL)`
        // the producer migrates the store before any consumer starts
        const queue = yield* Layer.build(DurableQueue.layerSql({ name: queueName }))

        const children = Array.from({ length: CONSUMERS }, () =>
          ChildProcess.spawn(process.execPath, [fixture], {
            env: { ...process.env, STORE: c.store, DB: db, QUEUE: queueName, SUFFIX: suffix, CONCURRENCY: "4" },
            stdio: ["ignore", "pipe", "inherit"]
          }))
        const exits = children.map((child) =>
          new Promise<number | string>((resolve) =>
            child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"))
          )
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((child) => child.kill("SIGKILL"))))
        // every consumer polls before the jobs are committed, so that they all compete for them
        yield* Effect.promise(() =>
          Promise.all(children.map((child) =>
            new Promise<void>((resolve) => {
              let output = ""
              child.stdout!.on("data", (chunk) => {
                output += String(chunk)
                if (output.includes("ready")) resolve()
              })
            })
          ))
        )

        const [Capped, Rated] = makeTypes(suffix, "producer", true)
        yield* sql.withTransaction(Effect.gen(function*() {
          for (let n = 0; n < CAPPED; n++) yield* DurableQueue.enqueue(Capped, n)
          for (let n = 0; n < RATED; n++) yield* DurableQueue.enqueue(Rated, n)
        })).pipe(Effect.provideContext(queue))

        const count = Effect.map(
          sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM ${runs}`,
          (rows) => Number(rows[0].c)
        )
        yield* waitUntil("every job ran", Effect.map(count, (n) => n === CAPPED + RATED), 30_000)
        for (const child of children) child.kill("SIGTERM")
        assert.deepStrictEqual(yield* Effect.promise(() => Promise.all(exits)), [0, 0, 0, 0])

        const rows = yield* sql<{
          job_type: string
          consumer: string
          started_at: number | string
          ended_at: number | string
        }>`SELECT job_type, consumer, started_at, ended_at FROM ${runs}`
        const of = (type: string) =>
          rows.filter((row) => row.job_type === type).map((row) => ({
            consumer: row.consumer,
            start: Number(row.started_at),
            end: Number(row.ended_at)
          }))
        const capped = of("capped")
        const rated = of("rated")
        assert.strictEqual(capped.length, CAPPED)
        assert.strictEqual(rated.length, RATED)
        // 16 slots in all: without the cap, far more than CAP capped jobs run at once
        const overlap = maxOverlap(capped)
        assert.isAtMost(overlap, CAP, "never more than the global cap at once")
        assert.strictEqual(overlap, CAP, "the cap is used, not undershot")
        // (which process runs a freed slot is not fair: the process that settles a capped job looks again at once,
        // the others at their next poll; on SQLite one process often runs them all)

        // any RATE.limit + 1 consecutive starts span at least the interval (less a tolerance: a start is recorded
        // by the handler a few ms after the claim, which the database clock times)
        const interval = Duration.toMillis(Duration.fromInputUnsafe(RATE.interval))
        const starts = rated.map((run) => run.start).sort((a, b) => a - b)
        const tolerance = 300
        let tightest = Infinity
        for (let i = 0; i + RATE.limit < starts.length; i++) {
          tightest = Math.min(tightest, starts[i + RATE.limit] - starts[i])
        }
        assert.isAtLeast(tightest, interval - tolerance, `at most ${RATE.limit} starts in any ${interval} ms`)
        assert.isAtLeast(new Set(rows.map((run) => run.consumer)).size, 2, "several processes ran jobs")
        const span = starts[starts.length - 1] - starts[0]
        console.log(
          `${c.store}: capped jobs peaked at ${overlap} at once (cap ${CAP}), run by ` +
            `${new Set(capped.map((run) => run.consumer)).size} processes; ${RATED} rated jobs started over ` +
            `${span} ms, the ${RATE.limit + 1} closest consecutive starts ${tightest} ms apart (interval ${interval})`
        )
      }).pipe(Effect.provide(Layer.orDie(SqlLive))),
    60_000
  )
})
