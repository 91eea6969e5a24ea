/**
 * The worker process of the latency benchmark. argv: system (fiberpool | pg-boss), store (sqlite | postgres),
 * db (file or URL), queue, mode (notify | poll). Connects, starts its worker, prints "ready", then for each job it
 * starts prints "start <id> <epoch millis>", until SIGTERM.
 */
import { PgClient } from "@effect/sql-pg"
import { DurableQueue, DurableWorker, JobType, SqliteClient } from "@fiberpool/durable"
import { Effect, Exit, Layer, Redacted, Schema, Scope } from "effect"
import { PgBoss } from "pg-boss"

const [system, store, db, queue, mode] = process.argv.slice(2)
const now = () => performance.timeOrigin + performance.now()
let stop: () => Promise<void> = async () => {}
process.once("SIGTERM", async () => {
  await stop()
  process.exit(0)
})

if (system === "fiberpool") {
  const Ping = JobType.make({
    name: "ping",
    payload: Schema.String,
    handler: (_, { id }) => Effect.sync(() => console.log(`start ${id} ${now()}`))
  })
  const Sql = store === "sqlite"
    ? SqliteClient.layer({ filename: db, busyTimeout: "20 seconds" })
    : PgClient.layer({ url: Redacted.make(db), maxConnections: 4 })
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(
    Layer.buildWithScope(
      DurableQueue.layerSql({ name: queue, notify: mode === "notify" }).pipe(Layer.provide(Sql)),
      scope
    )
  )
  await Effect.runPromise(
    DurableWorker.make({ types: [Ping], concurrency: 4 }).pipe(Effect.provideContext(context), Scope.provide(scope))
  )
  // the worker's first poll (and, with notify, its LISTEN) happen at once: give them a moment
  await new Promise((resolve) => setTimeout(resolve, 300))
  stop = () => Effect.runPromise(Scope.close(scope, Exit.void))
} else {
  const boss = new PgBoss({
    connectionString: db,
    max: 4,
    supervise: false,
    schedule: false,
    useListenNotify: mode === "notify"
  })
  boss.on("error", (error) => console.error(error))
  await boss.start()
  await boss.work<{ id: string }>(
    queue,
    { batchSize: 1, pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 30 },
    async ([job]) => {
      console.log(`start ${job.data.id} ${now()}`)
    }
  )
  await new Promise((resolve) => setTimeout(resolve, 300))
  stop = () => boss.stop({ graceful: true })
}
console.log("ready")
