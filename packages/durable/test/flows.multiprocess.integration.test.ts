import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { DurableFlow, DurableQueue, SqliteClient } from "@fiberpool/durable"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { makeFlowTypes } from "./fixtures/flowTypes.ts"
import { pgUrl, waitUntil } from "./utils/stores.ts"

const CHILDREN = 300
const CONSUMERS = 3
const fixture = Path.join(import.meta.dirname, "fixtures", "flowConsumer.ts")

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
      const db = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-flow-mp-")), "queue.db")
      return { db, sql: SqliteClient.layer({ filename: db, busyTimeout: "20 seconds" }) }
    }
  },
  {
    store: "postgres",
    skip: pgUrl === undefined || pgUrl === "",
    setup: () => ({ db: pgUrl ?? "", sql: PgClient.layer({ url: Redacted.make(pgUrl ?? "") }) })
  }
]

describe.each(cases)(
  `a flow of ${CHILDREN} children on ${CONSUMERS} consumer processes ($store), one SIGKILLed`,
  (c) => {
    const { db, sql: SqlLive } = c.setup()
    ;(c.skip ? it.live.skip : it.live)(
      "the parent runs once, after every child, with every result",
      () =>
        Effect.gen(function*() {
          const suffix = `${process.pid}_${Date.now().toString(36)}`
          const queueName = `flow-mp-${suffix}`
          const sql = yield* SqlClient.SqlClient
          const runs = sql(`flow_runs_${suffix}`)
          yield* sql`CREATE TABLE ${runs} (job_id VARCHAR(255) NOT NULL, consumer VARCHAR(64) NOT NULL,
          attempt INTEGER NOT NULL, total BIGINT NOT NULL)`

          const { Square, Total } = makeFlowTypes(suffix, "producer")
          yield* Effect.scoped(Effect.gen(function*() {
            const queue = yield* Layer.build(DurableQueue.layerSql({ name: queueName }))
            yield* DurableFlow.enqueue(Total, null, {
              id: "total",
              children: Array.from({ length: CHILDREN }, (_, n) => DurableFlow.child(Square, n, { id: `sq-${n}` }))
            }).pipe(Effect.provideContext(queue))
          }))

          const children = Array.from({ length: CONSUMERS }, () =>
            ChildProcess.spawn(process.execPath, [fixture], {
              env: {
                ...process.env,
                STORE: c.store,
                DB: db,
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

          const count = (where: string) =>
            Effect.map(
              sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM ${runs} WHERE ${sql.literal(where)}`,
              (rows) => Number(rows[0].c)
            )
          const victim = children[0]
          yield* waitUntil(
            "the victim is mid-run",
            count(`consumer = 'pid-${victim.pid}' AND job_id LIKE 'sq-%'`).pipe(Effect.map((n) => n >= 20)),
            40_000
          )
          victim.kill("SIGKILL")
          yield* waitUntil("the parent ran", Effect.map(count(`job_id = 'total'`), (n) => n >= 1), 45_000)
          // a second run of the parent, if any, would follow within the poll interval
          yield* Effect.sleep("1 second")
          for (const child of children.slice(1)) child.kill("SIGTERM")
          const codes = yield* Effect.promise(() => Promise.all(exits))
          assert.deepStrictEqual(codes, ["SIGKILL", 0, 0])

          const parentRuns = yield* sql<{ consumer: string; total: number | string }>`
          SELECT consumer, total FROM ${runs} WHERE job_id = 'total'`
          assert.strictEqual(parentRuns.length, 1, "the parent ran once")
          const expected = Array.from({ length: CHILDREN }, (_, n) => n * n).reduce((a, b) => a + b)
          assert.strictEqual(Number(parentRuns[0].total), expected, "the parent saw every child's result")
          const childIds = yield* sql<{ job_id: string; c: number | string }>`
          SELECT job_id, COUNT(*) AS c FROM ${runs} WHERE job_id LIKE 'sq-%' GROUP BY job_id`
          assert.strictEqual(childIds.length, CHILDREN, "every child ran")
          const [{ c: later }] = yield* sql<{ c: number | string }>`
          SELECT COUNT(*) AS c FROM effect_queue WHERE queue_name = ${queueName} AND id = 'total'`
          assert.strictEqual(Number(later), 1, "the parent was enqueued once")
          const [{ c: redelivered }] = yield* sql<{ c: number | string }>`SELECT COUNT(*) AS c FROM effect_queue
          WHERE queue_name = ${queueName} AND id LIKE 'sq-%' AND attempts > 1`
          assert.isAtLeast(Number(redelivered), 1, "the killed consumer's children were delivered again")
          const twice = childIds.filter((row) => Number(row.c) > 1).length
          const consumers = yield* sql<{ consumer: string }>`SELECT DISTINCT consumer FROM ${runs}`
          assert.isAtLeast(consumers.length, 2)
          console.log(
            `${c.store}: ${CHILDREN} children on ${consumers.length} consumers, ${redelivered} redelivered after the ` +
              `SIGKILL (${twice} of them ran twice), the parent ran once on ${parentRuns[0].consumer}`
          )
        }).pipe(Effect.provide(Layer.orDie(SqlLive))),
      60_000
    )
  }
)
