/**
 * A consumer process of the throughput benchmark. argv: system (fiberpool | fiberpool-batch | pg-boss), store
 * (sqlite | postgres), db (file or URL), queue, concurrency. Connects (PostgreSQL: opens all `BENCH_PG_CONNECTIONS` of its pool, for both
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
let usageAtGo: NodeJS.ResourceUsage | undefined
let memoryAtGo: NodeJS.MemoryUsage | undefined
// CLOCK_MONOTONIC at go, in ns (matches `perf record -k CLOCK_MONOTONIC` timestamps)
let goMonotonic = 0n
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
      if (process.env.BENCH_HEAP_PROF) {
        await profiler.post("HeapProfiler.enable")
        await profiler.post("HeapProfiler.startSampling", {
          samplingInterval: 4096,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true
        })
      } else {
        await profiler.post("Profiler.enable")
        // 100 µs samples: a consumer of the 4-process cell is busy for only about 100 ms
        await profiler.post("Profiler.setSamplingInterval", { interval: 100 })
        await profiler.post("Profiler.start")
      }
    }
    if (process.env.BENCH_DEBUG) threadsAtGo = threadTicks()
    cpuAtGo = process.cpuUsage()
    usageAtGo = process.resourceUsage()
    memoryAtGo = process.memoryUsage()
    goAt = performance.now()
    goMonotonic = process.hrtime.bigint()
    resolve()
  })
)
/** BENCH_DEBUG: CPU ticks (user + system, 10 ms) of each of this process's threads, by thread name */
const threadTicks = (): Map<string, number> => {
  const ticks = new Map<string, number>()
  for (const task of Fs.readdirSync("/proc/self/task")) {
    try {
      const stat = Fs.readFileSync(`/proc/self/task/${task}/stat`, "utf8")
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")).replace(/[0-9]+$/, "N")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      ticks.set(name, (ticks.get(name) ?? 0) + Number(fields[11]) + Number(fields[12]))
    } catch {
      // a thread that ended
    }
  }
  return ticks
}
let threadsAtGo: Map<string, number> | undefined
let cpuAtStarted: NodeJS.CpuUsage | undefined
let startedAt = 0
const started = () => {
  startedAt = performance.now() - goAt
  cpuAtStarted = process.cpuUsage(cpuAtGo)
}
const report = setInterval(() => console.log(`count ${count}`), 50)
let stop: () => Promise<void> = async () => {}
process.once("SIGTERM", async () => {
  const cpu = process.cpuUsage(cpuAtGo)
  const usage = process.resourceUsage()
  const memory = process.memoryUsage()
  if (profiler !== undefined) {
    Fs.mkdirSync(profileDir!, { recursive: true })
    if (process.env.BENCH_HEAP_PROF) {
      const { profile } = await profiler.post("HeapProfiler.stopSampling")
      Fs.writeFileSync(Path.join(profileDir!, `${system}-${process.pid}.heapprofile`), JSON.stringify(profile))
    } else {
      const { profile } = await profiler.post("Profiler.stop")
      Fs.writeFileSync(Path.join(profileDir!, `${system}-${process.pid}.cpuprofile`), JSON.stringify(profile))
    }
  }
  await stop()
  clearInterval(report)
  console.log(`count ${count}`)
  console.log(`cpu ${cpu.user + cpu.system}`)
  if (process.env.BENCH_DEBUG) {
    const threads = threadTicks()
    console.error(
      `consumer ${process.pid} (${system}): started at ${startedAt.toFixed(0)} ms after go, CPU by then ${
        ((cpuAtStarted?.user ?? 0) / 1000).toFixed(1)
      } user + ${((cpuAtStarted?.system ?? 0) / 1000).toFixed(1)} system ms; thread CPU (ms) ` +
        [...threads].map(([name, t]) => [name, (t - (threadsAtGo?.get(name) ?? 0)) * 10] as const)
          .filter(([, ms]) => ms > 0).map(([name, ms]) => `${name} ${ms}`).join(", ")
    )
    console.error(
      `consumer ${process.pid} (${system}): go at ${goMonotonic} ns, ${count} jobs, first at ${
        firstAt?.toFixed(0)
      } ms, last at ` +
        `${lastAt.toFixed(0)} ms, CPU user ${(cpu.user / 1000).toFixed(1)} ms, system ${
          (cpu.system / 1000).toFixed(1)
        } ms` +
        (usageAtGo === undefined ?
          "" :
          `, minor faults ${usage.minorPageFault - usageAtGo.minorPageFault}, context switches ` +
          `${usage.voluntaryContextSwitches - usageAtGo.voluntaryContextSwitches} voluntary, ` +
          `${usage.involuntaryContextSwitches - usageAtGo.involuntaryContextSwitches} involuntary`) +
        (memoryAtGo === undefined ? "" : `, heap total ${(memoryAtGo.heapTotal / 1e6).toFixed(1)} → ` +
          `${(memory.heapTotal / 1e6).toFixed(1)} MB, RSS ${(memoryAtGo.rss / 1e6).toFixed(1)} → ${
            (memory.rss / 1e6).toFixed(1)
          } MB`)
    )
  }
  process.exit(0)
})

// BENCH_WARM=N with BENCH_WARM_DB=<file or URL>: before "ready", the consumer runs N no-op jobs of its own through
// the same system on that other database (its own queue there), then disconnects from it: the code the timed
// run uses is then warm (the JIT's tier-up done), as in a long-running service, and the timed database stays fresh
const warmJobs = Number(process.env.BENCH_WARM ?? 0)
const warmDb = process.env.BENCH_WARM_DB
const warmQueue = `warm_${process.pid}`
const waitFor = async (done: () => boolean) => {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 5))
}

if (system === "fiberpool" || system === "fiberpool-batch") {
  let warmed = 0
  // fiberpool-batch: a batch type (JobType.makeBatch) of up to `concurrency` jobs a call, as pg-boss's batchSize
  const Noop = system === "fiberpool" ?
    JobType.make({
      name: "noop",
      payload: Schema.Int,
      handler: () => Effect.sync(() => warmed < warmJobs ? warmed++ : ran(1))
    }) :
    JobType.makeBatch({
      name: "noop",
      payload: Schema.Int,
      maxSize: concurrency,
      handler: (jobs) =>
        Effect.sync(() => {
          for (let i = 0; i < jobs.length; i++) warmed < warmJobs ? warmed++ : ran(1)
        })
    })
  const sqlLayer = (url: string) =>
    store === "sqlite"
      ? SqliteClient.layer({ filename: url, busyTimeout: "20 seconds" })
      : PgClient.layer({ url: Redacted.make(url), maxConnections: connections })
  if (warmJobs > 0 && warmDb !== undefined) {
    const warmScope = Effect.runSync(Scope.make())
    const warmContext = await Effect.runPromise(
      Layer.buildWithScope(
        DurableQueue.layerSql({ name: warmQueue }).pipe(Layer.provideMerge(sqlLayer(warmDb))),
        warmScope
      )
    )
    await Effect.runPromise(
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.withTransaction(Effect.forEach(
          Array.from({ length: warmJobs }, (_, i) => i),
          (i) => DurableQueue.enqueue(Noop, i),
          { discard: true }
        ))
        yield* DurableWorker.make({ types: [Noop], concurrency })
        yield* Effect.promise(() => waitFor(() => warmed >= warmJobs))
      }).pipe(Effect.provideContext(warmContext), Scope.provide(warmScope))
    )
    await Effect.runPromise(Scope.close(warmScope, Exit.void))
  }
  const Sql = sqlLayer(db)
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
  started()
  stop = () => Effect.runPromise(Scope.close(scope, Exit.void))
} else {
  const boss = new PgBoss({
    connectionString: db,
    max: connections,
    supervise: false,
    schedule: false
  })
  boss.on("error", (error) => console.error(error))
  if (warmJobs > 0 && warmDb !== undefined) {
    const warmBoss = new PgBoss({ connectionString: warmDb, max: connections, supervise: false, schedule: false })
    warmBoss.on("error", (error) => console.error(error))
    await warmBoss.start()
    await warmBoss.createQueue(warmQueue)
    for (let i = 0; i < warmJobs; i += 1000) {
      await warmBoss.insert(
        warmQueue,
        Array.from({ length: Math.min(1000, warmJobs - i) }, (_, j) => ({ data: { n: i + j } }))
      )
    }
    let warmed = 0
    await warmBoss.work(
      warmQueue,
      { batchSize: concurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 },
      async (jobs) => {
        warmed += jobs.length
      }
    )
    await waitFor(() => warmed >= warmJobs)
    await warmBoss.stop({ graceful: true })
  }
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
  started()
  stop = () => boss.stop({ graceful: true })
}
