/**
 * A consumer process of the throughput benchmark. argv: system (fiberpool | pg-boss), store (sqlite | postgres),
 * db (file or URL), queue, concurrency. Connects (PostgreSQL: opens all `BENCH_PG_CONNECTIONS` of its pool, for both
 * systems, so that no connection is opened and authenticated in the timed window), prints "ready", starts
 * consuming on "go" (stdin), counts the
 * no-op jobs it ran and prints the count every 50 ms ("count N"), stops on SIGTERM, printing the CPU time it used
 * from "go" until then ("cpu MICROSECONDS": the consumer's start included, for both systems).
 */
import { PgClient } from "@effect/sql-pg"
import { DurableQueue, DurableWorker, JobType, SqliteClient } from "@fiberpool/durable"
import { Effect, Exit, Layer, Redacted, Schema, Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Inspector from "node:inspector/promises"
import * as Path from "node:path"
import { PgBoss } from "pg-boss"

const [system, store, db, queue, concurrencyText] = process.argv.slice(2)
const concurrency = Number(concurrencyText)
const connections = Number(process.env.BENCH_PG_CONNECTIONS ?? 4)
// statements that overlap, so that the pool opens every connection it may use
const warmUp = "SELECT pg_sleep(0.05)"
let count = 0
let cpuAtGo: NodeJS.CpuUsage | undefined
// BENCH_DEBUG=1: when the first and the last job ran, after go (ms), printed to stderr at the end
let goAt = 0
let firstAt: number | undefined
let lastAt = 0
const ran = (n: number) => {
  count += n
  lastAt = performance.now() - goAt
  firstAt ??= lastAt
}
// BENCH_CPU_PROF=<dir>: a V8 CPU profile of this consumer from "go" until it stops, written to <dir>
const profileDir = process.env.BENCH_CPU_PROF
const profiler = profileDir === undefined ? undefined : new Inspector.Session()
const go = new Promise<void>((resolve) =>
  process.stdin.once("data", async () => {
    if (profiler !== undefined) {
      profiler.connect()
      await profiler.post("Profiler.enable")
      await profiler.post("Profiler.start")
    }
    cpuAtGo = process.cpuUsage()
    goAt = performance.now()
    resolve()
  })
)
const report = setInterval(() => console.log(`count ${count}`), 50)
let stop: () => Promise<void> = async () => {}
process.once("SIGTERM", async () => {
  const cpu = process.cpuUsage(cpuAtGo)
  if (profiler !== undefined) {
    const { profile } = await profiler.post("Profiler.stop")
    Fs.mkdirSync(profileDir!, { recursive: true })
    Fs.writeFileSync(Path.join(profileDir!, `${system}-${process.pid}.cpuprofile`), JSON.stringify(profile))
  }
  await stop()
  clearInterval(report)
  console.log(`count ${count}`)
  console.log(`cpu ${cpu.user + cpu.system}`)
  if (process.env.BENCH_DEBUG) {
    console.error(
      `consumer ${process.pid}: ${count} jobs, first at ${firstAt?.toFixed(0)} ms, last at ${lastAt.toFixed(0)} ms`
    )
  }
  process.exit(0)
})

if (system === "fiberpool") {
  const Noop = JobType.make({ name: "noop", payload: Schema.Int, handler: () => Effect.sync(() => ran(1)) })
  const Sql = store === "sqlite"
    ? SqliteClient.layer({ filename: db, busyTimeout: "20 seconds" })
    : PgClient.layer({ url: Redacted.make(db), maxConnections: connections })
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(
    Layer.buildWithScope(DurableQueue.layerSql({ name: queue }).pipe(Layer.provideMerge(Sql)), scope)
  )
  if (store === "postgres") {
    await Effect.runPromise(
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* Effect.all(Array.from({ length: connections }, () => sql.unsafe(warmUp)), { concurrency: "unbounded" })
      }).pipe(Effect.provideContext(context))
    )
  }
  console.log("ready")
  await go
  await Effect.runPromise(
    DurableWorker.make({ types: [Noop], concurrency }).pipe(Effect.provideContext(context), Scope.provide(scope))
  )
  stop = () => Effect.runPromise(Scope.close(scope, Exit.void))
} else {
  const boss = new PgBoss({
    connectionString: db,
    max: connections,
    supervise: false,
    schedule: false
  })
  boss.on("error", (error) => console.error(error))
  await boss.start()
  await Promise.all(Array.from({ length: connections }, () => boss.getDb().executeSql(warmUp)))
  console.log("ready")
  await go
  await boss.work(
    queue,
    { batchSize: concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
    async (jobs) => {
      ran(jobs.length)
    }
  )
  stop = () => boss.stop({ graceful: true })
}
