import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Context, Deferred, Effect, Layer, Queue, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { connectProducer, pgUrl, startConsumer, stores, waitUntil } from "./utils/stores.ts"

const producer = Path.join(import.meta.dirname, "fixtures", "traced-producer.ts")

// Only PostgreSQL has wake-ups; the other stores poll (their latency is in the README).
const postgres = stores.filter((store) => store.name === "postgres")

describe.each(postgres)("wake-ups on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test(
    "an idle worker starts a job another connection enqueues without waiting for its poll, also after a reconnect",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const started: Array<string> = []
        const Ping = JobType.make({
          name: "ping",
          payload: Schema.String,
          handler: (_, { id }) => Effect.sync(() => void started.push(id))
        })
        // polls every 60 s: any start within the bounds below came from a notification
        // the worker's sessions carry a name of their own: other test files' workers share the database
        const applicationName = `wake-${connect.queueName}`.slice(0, 60)
        yield* startConsumer(connect({ pollInterval: "60 seconds" }, { applicationName }), {
          types: [Ping],
          concurrency: 2
        })
        const producer = yield* connectProducer(connect({ pollInterval: "60 seconds" }))
        const enqueue = (id: string) => DurableQueue.enqueue(Ping, id, { id }).pipe(Effect.provideContext(producer))
        const sql = Context.get(yield* Layer.build(connect.sql!), SqlClient.SqlClient)
        const listening = Effect.map(
          sql<{ readonly pid: number }>`
          SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND application_name = ${applicationName}`,
          (rows) => rows.map((row) => row.pid)
        )
        yield* waitUntil("the worker listens", Effect.map(listening, (pids) => pids.length > 0))

        for (const id of ["a", "b", "c"]) {
          yield* enqueue(id)
          yield* waitUntil(`job ${id} starts`, Effect.sync(() => started.includes(id)), 5_000)
        }

        // the listening connection dies (a PostgreSQL restart, a proxy timeout): the worker listens again
        const before = yield* listening
        yield* sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ${sql.in(before)}`
        yield* waitUntil(
          "the worker listens again",
          Effect.map(listening, (pids) => pids.length > 0 && pids.every((pid) => !before.includes(pid))),
          10_000
        )
        yield* enqueue("after-reconnect")
        yield* waitUntil(
          "the job after the reconnect starts",
          Effect.sync(() => started.includes("after-reconnect")),
          5_000
        )

        // the queue's wake row (what a notification offers to wake the poller) is not a job: deleted, it comes back
        const wakeRow = sql<{ readonly state: string }>`
        SELECT state FROM effect_queue WHERE queue_name = ${connect.queueName} AND id = '~fiberpool/wake'`
        assert.deepStrictEqual((yield* wakeRow).map((row) => row.state), ["completed"])
        yield* sql`DELETE FROM effect_queue WHERE queue_name = ${connect.queueName} AND id = '~fiberpool/wake'`
        yield* enqueue("after-delete")
        yield* waitUntil(
          "the job after the deletion starts",
          Effect.sync(() => started.includes("after-delete")),
          5_000
        )
        yield* waitUntil(
          "the wake row is back",
          Effect.map(wakeRow, (rows) => rows.length === 1 && rows[0].state === "completed")
        )
        assert.deepStrictEqual(started, ["a", "b", "c", "after-reconnect", "after-delete"])
        const stats = yield* DurableQueue.stats.pipe(Effect.provideContext(producer))
        assert.strictEqual(stats.completed, 5, "the wake row is not counted")
        assert.deepStrictEqual(yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), [])
      }),
    30_000
  )

  test(
    "an idle worker starts a job that another process enqueues, without waiting for its poll",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const started = yield* Deferred.make<string>()
        const Email = JobType.make({
          name: "email",
          payload: Schema.Struct({ to: Schema.String }),
          handler: (_, { id }) => Deferred.succeed(started, id)
        })
        const applicationName = `wake-${connect.queueName}`.slice(0, 60)
        yield* startConsumer(connect({ pollInterval: "60 seconds" }, { applicationName }), {
          types: [Email],
          concurrency: 1
        })
        const sql = Context.get(yield* Layer.build(connect.sql!), SqlClient.SqlClient)
        yield* waitUntil(
          "the worker listens",
          Effect.map(
            sql<{ readonly n: number | string }>`
            SELECT COUNT(*) AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND application_name = ${applicationName}`,
            (rows) => Number(rows[0].n) > 0
          )
        )
        // the producer process (the tracing test's): enqueues job "traced-1" and exits
        yield* Effect.promise(() =>
          new Promise<void>((resolve, reject) =>
            ChildProcess.execFile(
              process.execPath,
              [producer],
              { env: { ...process.env, STORE: "postgres", DB: pgUrl!, QUEUE: connect.queueName }, timeout: 20_000 },
              (error) => error ? reject(error) : resolve()
            )
          )
        )
        assert.strictEqual(yield* Deferred.await(started).pipe(Effect.timeout("5 seconds")), "traced-1")
      }),
    30_000
  )

  test("a burst of enqueues sends one notification, a rolled-back one none", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const Ping = JobType.define({ name: "ping", payload: Schema.Int })
      // a producer whose SqlClient (for its transactions) is the one its queue uses
      const producer = yield* Layer.build(
        DurableQueue.layerSql({ name: connect.queueName }).pipe(
          Layer.provideMerge(PgClient.layer({ url: Redacted.make(pgUrl!), maxConnections: 2 }))
        )
      )
      const notifications = yield* Context.get(producer, PgClient.PgClient).listen("fiberpool_effect_queue")
      // the notifications for this queue that arrived in the last 300 ms
      const mine = Effect.sleep("300 millis").pipe(
        Effect.andThen(Queue.clear(notifications)),
        Effect.map((batch) => batch.filter((n) => n.payload === connect.queueName).length)
      )
      const enqueueMany = (n: number) =>
        Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => DurableQueue.enqueue(Ping, i), { discard: true })
      yield* Effect.gen(function*() {
        const tx = yield* SqlClient.SqlClient
        yield* tx.withTransaction(enqueueMany(100))
      }).pipe(Effect.provideContext(producer))
      const burst = yield* mine
      assert.isAtLeast(burst, 1)
      assert.isAtMost(burst, 2, "one notification for the burst (two if the sender ran in the middle of it)")
      const rolledBack = yield* Effect.gen(function*() {
        const tx = yield* SqlClient.SqlClient
        return yield* Effect.flip(tx.withTransaction(Effect.andThen(enqueueMany(5), Effect.fail("abort"))))
      }).pipe(Effect.provideContext(producer))
      assert.strictEqual(rolledBack, "abort")
      assert.strictEqual(yield* mine, 0, "no notification for a rolled-back enqueue")
    }), 30_000)

  test("with notify off, the worker finds the job by polling", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const started: Array<string> = []
      const Ping = JobType.make({
        name: "ping",
        payload: Schema.String,
        handler: (_, { id }) => Effect.sync(() => void started.push(id))
      })
      yield* startConsumer(connect({ pollInterval: "200 millis", notify: false }), { types: [Ping], concurrency: 1 })
      const producer = yield* connectProducer(connect({ notify: false }))
      yield* DurableQueue.enqueue(Ping, "x", { id: "x" }).pipe(Effect.provideContext(producer))
      yield* waitUntil("the job starts", Effect.sync(() => started.includes("x")), 5_000)
    }), 30_000)
})
