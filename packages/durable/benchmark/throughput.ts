/**
 * Throughput of durable queues: no-op jobs per second through PostgreSQL with 1 and 4 consumer processes, and
 * through SQLite with 1, for fiberpool (effect's PersistedQueue + a fiberpool WorkerPool) and pg-boss on the
 * same PostgreSQL, in one run, cells interleaved. fiberpool runs twice on PostgreSQL: with a job type of one job a
 * handler call (`JobType.make`), and with a batch type (`JobType.makeBatch`, up to the concurrency a call), the
 * like of pg-boss's batch mode (`batchSize`: its handler gets the fetched jobs as an array).
 *
 * Each cell: enqueue N jobs (not timed), start the consumer processes and wait until they are connected, then
 * say "go" and time until the store reports every job completed (acks included). Checks that every job ran. Also
 * prints the CPU time the consumer processes used per job (from "go" until stopped), what bounds the figures when
 * the machine's cores are shared with PostgreSQL.
 *
 * Fair by construction: both systems get the same job count, the same concurrency per process (so the same total),
 * the same number of database connections per process (`BENCH_PG_CONNECTIONS`, default 4: pg-boss's `max`, the
 * fiberpool consumer's `maxConnections`), and each PostgreSQL cell runs in a database created for it and dropped
 * after (pg-boss is fastest on a fresh database: its tables and indexes hold no dead rows yet).
 *
 * Run: `FIBERPOOL_TEST_PG_URL=postgres://... node packages/durable/benchmark/throughput.ts [--quick] [--rounds 3]
 * [--jobs 5000]`
 */
import { PgClient } from "@effect/sql-pg"
import { DurableQueue, JobType, SqliteClient } from "@fiberpool/durable"
import { Effect, Layer, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { PgBoss } from "pg-boss"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const roundsAt = args.indexOf("--rounds")
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : quick ? 1 : 3
const jobsAt = args.indexOf("--jobs")
const JOBS = jobsAt >= 0 ? Number(args[jobsAt + 1]) : quick ? 500 : 5000
const warmAt = args.indexOf("--warm")
// --warm N: each consumer process first runs N jobs of its own on another database (see consumer.ts)
const WARM = warmAt >= 0 ? Number(args[warmAt + 1]) : 0
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32)
const CONNECTIONS = Number(process.env.BENCH_PG_CONNECTIONS ?? 4)
const pgUrl = process.env.FIBERPOOL_TEST_PG_URL ?? process.env.DATABASE_URL
const consumerFile = new URL("./consumer.ts", import.meta.url).pathname

interface Cell {
  readonly name: string
  readonly system: "fiberpool" | "fiberpool-batch" | "pg-boss"
  readonly store: "sqlite" | "postgres"
  readonly processes: number
}
const only = process.env.BENCH_ONLY
const allCells: ReadonlyArray<Cell> = [
  { name: "fiberpool, SQLite, 1 process", system: "fiberpool", store: "sqlite", processes: 1 },
  ...(pgUrl
    ? [
      { name: "fiberpool, PostgreSQL, 1 process", system: "fiberpool", store: "postgres", processes: 1 },
      {
        name: "fiberpool batch, PostgreSQL, 1 process",
        system: "fiberpool-batch",
        store: "postgres",
        processes: 1
      },
      { name: "pg-boss, PostgreSQL, 1 process", system: "pg-boss", store: "postgres", processes: 1 },
      { name: "fiberpool, PostgreSQL, 4 processes", system: "fiberpool", store: "postgres", processes: 4 },
      {
        name: "fiberpool batch, PostgreSQL, 4 processes",
        system: "fiberpool-batch",
        store: "postgres",
        processes: 4
      },
      { name: "pg-boss, PostgreSQL, 4 processes", system: "pg-boss", store: "postgres", processes: 4 }
    ] as const
    : [])
]
const cells = only ? allCells.filter((c) => c.name.includes(only)) : allCells
if (!pgUrl) console.warn("FIBERPOOL_TEST_PG_URL is not set: PostgreSQL cells skipped")

const Noop = JobType.make({ name: "noop", payload: Schema.Int, handler: () => Effect.void })
let serial = 0

const sqlLayer = (cell: Cell, file: string, url: string | undefined): Layer.Layer<SqlClient.SqlClient, unknown> =>
  cell.store === "sqlite"
    ? SqliteClient.layer({ filename: file })
    : PgClient.layer({ url: Redacted.make(url!), maxConnections: CONNECTIONS })

/** The same server and credentials, another database. */
const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Runs `statement` on the server's maintenance connection (the URL's own database). */
const admin = (statement: string) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(statement)
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl!), maxConnections: 1 })), Effect.orDie)
  )

/** The server processes (backends) connected to the cell's database, PostgreSQL on this machine. */
const backendsOf = (sql: SqlClient.SqlClient) =>
  Effect.map(
    sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`,
    (rows) => rows.map((row) => Number(row.pid))
  )
// the kernel's clock ticks per second (USER_HZ), in which /proc/<pid>/stat counts CPU time
const clockTicks = 100
/** CPU ticks (user + system) of each process, from /proc; undefined when the server is not on this machine. */
const serverTicks = (pids: ReadonlyArray<number>): Map<number, number> | undefined => {
  if (pids.length === 0) return undefined
  const ticks = new Map<number, number>()
  for (const pid of pids) {
    let stat: string
    try {
      stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    } catch {
      // a backend that ended, or another machine's: counted only when every one is readable
      if (!Fs.existsSync("/proc/self/stat")) return undefined
      continue
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    ticks.set(pid, Number(fields[11]) + Number(fields[12]))
  }
  return ticks.size === 0 ? undefined : ticks
}

const runCell = async (cell: Cell): Promise<number> => {
  const queue = `bench_${process.pid}_${serial++}`
  const file = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-bench-")), "queue.db")
  let database: string | undefined
  if (cell.store === "postgres") {
    database = queue
    await admin(`CREATE DATABASE ${database}`)
  }
  const url = database === undefined ? undefined : withDatabase(pgUrl!, database)
  // the consumers' warm-up database (--warm), dropped with the cell's
  let warmDb: string | undefined
  if (WARM > 0) {
    if (database === undefined) {
      warmDb = Path.join(Path.dirname(file), "warm.db")
    } else {
      await admin(`CREATE DATABASE ${database}_warm`)
      warmDb = withDatabase(pgUrl!, `${database}_warm`)
    }
  }
  const db = cell.store === "sqlite" ? file : url!
  const Sql = sqlLayer(cell, file, url)

  // enqueue (not timed)
  let boss: PgBoss | undefined
  if (cell.system !== "pg-boss") {
    await Effect.runPromise(
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.withTransaction(Effect.forEach(
          Array.from({ length: JOBS }, (_, i) => i),
          (i) => DurableQueue.enqueue(Noop, i),
          { discard: true }
        ))
      }).pipe(Effect.provide(DurableQueue.layerSql({ name: queue }).pipe(Layer.provideMerge(Sql))), Effect.orDie)
    )
  } else {
    boss = new PgBoss({ connectionString: db, max: CONNECTIONS, supervise: false, schedule: false })
    boss.on("error", (error) => console.error(error))
    await boss.start()
    await boss.createQueue(queue)
    for (let i = 0; i < JOBS; i += 1000) {
      await boss.insert(queue, Array.from({ length: Math.min(1000, JOBS - i) }, (_, j) => ({ data: { n: i + j } })))
    }
  }

  const children = Array.from({ length: cell.processes }, () => {
    const child = ChildProcess.spawn(
      process.execPath,
      // BENCH_NODE_ARGS: node flags for the consumers (e.g. --trace-gc), for looking into a cell, not for figures
      [
        ...(process.env.BENCH_NODE_ARGS?.split(" ").filter((a) => a !== "") ?? []),
        consumerFile,
        cell.system,
        cell.store,
        db,
        queue,
        String(CONCURRENCY)
      ],
      {
        stdio: ["pipe", "pipe", "inherit"],
        env: {
          ...process.env,
          BENCH_PG_CONNECTIONS: String(CONNECTIONS),
          ...(warmDb === undefined ? {} : { BENCH_WARM: String(WARM), BENCH_WARM_DB: warmDb })
        }
      }
    )
    const state = { child, count: 0, ready: false, cpu: 0 }
    let buffer = ""
    child.stdout.on("data", (data) => {
      buffer += String(data)
      const lines = buffer.split("\n")
      buffer = lines.pop()!
      for (const line of lines) {
        if (line === "ready") state.ready = true
        else if (line.startsWith("count ")) state.count = Number(line.slice(6))
        else if (line.startsWith("cpu ")) state.cpu = Number(line.slice(4))
        else if (process.env.BENCH_DEBUG) console.log(`consumer ${child.pid}: ${line}`)
      }
    })
    return state
  })
  while (!children.every((c) => c.ready)) {
    // a consumer that failed before it was ready (its connection, the warm-up) fails the cell, not a hang
    const failed = children.find((c) => c.child.exitCode !== null || c.child.signalCode !== null)
    if (failed !== undefined) {
      for (const c of children) c.child.kill("SIGKILL")
      if (warmDb !== undefined && database !== undefined) {
        await admin(`DROP DATABASE IF EXISTS ${database}_warm WITH (FORCE)`)
      }
      if (database !== undefined) await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
      throw new Error(`${cell.name}: a consumer exited before it was ready (code ${failed.child.exitCode})`)
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  // the consumers have warmed up and left the warm-up database: it goes before "go", so that no autovacuum of
  // its rows runs in the timed window
  if (database !== undefined && warmDb !== undefined) await admin(`DROP DATABASE ${database}_warm WITH (FORCE)`)

  const completed = cell.system !== "pg-boss"
    ? (sql: SqlClient.SqlClient) =>
      sql<{ c: unknown }>`SELECT COUNT(*) AS c FROM effect_queue WHERE queue_name = ${queue} AND state = 'completed'`
    : (sql: SqlClient.SqlClient) =>
      sql<{ c: unknown }>`SELECT COUNT(*) AS c FROM pgboss.job WHERE name = ${queue} AND state = 'completed'`
  const { millis, serverCpu } = await Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const backends = cell.store === "postgres" ? backendsOf(sql) : Effect.succeed([])
      const before = serverTicks(yield* backends)
      if (process.env.BENCH_DEBUG) console.log(`backends at go: ${before?.size}`)
      const start = performance.now()
      for (const c of children) c.child.stdin.write("go\n")
      while (Number((yield* completed(sql))[0].c) < JOBS) {
        if (performance.now() - start > 120_000) return yield* Effect.die(new Error(`${cell.name}: timed out`))
        yield* Effect.sleep("10 millis")
      }
      const millis = performance.now() - start
      const after = serverTicks(yield* backends)
      if (process.env.BENCH_DEBUG) console.log(`backends at end: ${after?.size}`)
      let ticks: number | undefined = before === undefined || after === undefined ? undefined : 0
      for (const [pid, t] of after ?? []) if (ticks !== undefined) ticks += t - (before!.get(pid) ?? 0)
      return { millis, serverCpu: ticks === undefined ? undefined : ticks * (1_000_000 / clockTicks) / JOBS }
    }).pipe(Effect.provide(Sql), Effect.orDie)
  )
  serverCpuPerJob.get(cell.name)!.push(serverCpu ?? Number.NaN)

  await Promise.all(children.map((c) =>
    new Promise<void>((resolve) => {
      c.child.once("exit", () => resolve())
      c.child.kill("SIGTERM")
    })
  ))
  await boss?.stop({ graceful: false })
  if (process.env.BENCH_DEBUG && database !== undefined) {
    // what the cell asked of the server: transactions (a statement outside one counts as one) and rows
    await new Promise((r) => setTimeout(r, 1100))
    await Effect.runPromise(
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ xact_commit: unknown; tup_returned: unknown; tup_updated: unknown }>`
          SELECT xact_commit, tup_returned, tup_fetched, tup_updated, tup_inserted FROM pg_stat_database
          WHERE datname = current_database()`
        console.log(`server stats: ${Object.entries(row).map(([k, v]) => `${k} ${v}`).join(", ")}`)
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url!), maxConnections: 1 })), Effect.orDie)
    )
  }
  const ran = children.reduce((sum, c) => sum + c.count, 0)
  cpuPerJob.get(cell.name)!.push(children.reduce((sum, c) => sum + c.cpu, 0) / JOBS)
  if (ran < JOBS) throw new Error(`${cell.name}: ${ran} of ${JOBS} jobs ran`)
  Fs.rmSync(Path.dirname(file), { recursive: true, force: true })
  if (database !== undefined) await admin(`DROP DATABASE ${database} WITH (FORCE)`)
  return JOBS / (millis / 1000)
}

const results = new Map<string, Array<number>>(cells.map((c) => [c.name, []]))
/** the consumer processes' CPU time (user + system, from "go" until stopped) per job, in microseconds */
const cpuPerJob = new Map<string, Array<number>>(cells.map((c) => [c.name, []]))
/** the PostgreSQL backends' CPU time per job (those connected to the cell's database), in microseconds */
const serverCpuPerJob = new Map<string, Array<number>>(cells.map((c) => [c.name, []]))
console.log(
  `durable throughput: ${JOBS} no-op jobs per cell, concurrency ${CONCURRENCY} and ${CONNECTIONS} connections per ` +
    `consumer process, a fresh PostgreSQL database per cell, ${rounds} round(s)` +
    (WARM > 0 ? `; each consumer warmed up first by ${WARM} jobs of its own on another database` : "")
)
console.log(`node ${process.version}, ${Os.cpus().length} CPUs (${Os.cpus()[0]?.model ?? "?"})`)
for (let round = 0; round < rounds; round++) {
  for (const cell of cells) {
    const rate = await runCell(cell)
    results.get(cell.name)!.push(rate)
    const cpu = cpuPerJob.get(cell.name)!.at(-1)!
    const server = serverCpuPerJob.get(cell.name)!.at(-1)!
    console.log(
      `  round ${round + 1}: ${cell.name.padEnd(42)} ${rate.toFixed(0).padStart(6)} jobs/s, ` +
        `consumer CPU ${cpu.toFixed(0)} µs/job` +
        (Number.isNaN(server) ? "" : `, PostgreSQL CPU ${server.toFixed(0)} µs/job`)
    )
  }
}
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const cellText = (name: string) => {
  const rates = results.get(name)
  if (rates === undefined || rates.length === 0) return "–"
  return `${median(rates).toFixed(0)} (${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)})`
}
console.log(
  "\n| cell | fiberpool jobs/s (a job a handler call) | fiberpool batch jobs/s (JobType.makeBatch) | pg-boss jobs/s " +
    "(batchSize) | fiberpool ÷ pg-boss | fiberpool batch ÷ pg-boss |\n| --- | ---: | ---: | ---: | ---: | ---: |"
)
for (
  const [label, processes, store] of [
    ["SQLite, 1 consumer process", 1, "SQLite"],
    ["PostgreSQL, 1 consumer process", 1, "PostgreSQL"],
    ["PostgreSQL, 4 consumer processes", 4, "PostgreSQL"]
  ] as const
) {
  const suffix = `${store}, ${processes} process${processes === 1 ? "" : "es"}`
  const names = [`fiberpool, ${suffix}`, `fiberpool batch, ${suffix}`, `pg-boss, ${suffix}`]
  const [mine, batch, theirs] = names.map((name) => results.get(name))
  if (!mine?.length && !batch?.length && !theirs?.length) continue
  const ratio = (rates: Array<number> | undefined) =>
    rates?.length && theirs?.length ? (median(rates) / median(theirs)).toFixed(2) : "–"
  console.log(`| ${label} | ${names.map(cellText).join(" | ")} | ${ratio(mine)} | ${ratio(batch)} |`)
}
console.log(
  "\nCPU per job (µs, medians): the consumers' (user + system of every consumer process), and PostgreSQL's (its" +
    " backends serving the cell's database, from /proc, 10 ms ticks; – when not readable)"
)
for (const cell of cells) {
  const server = median(serverCpuPerJob.get(cell.name)!)
  console.log(
    `  ${cell.name.padEnd(42)} consumers ${median(cpuPerJob.get(cell.name)!).toFixed(0).padStart(4)}, ` +
      `PostgreSQL ${Number.isNaN(server) ? "–" : server.toFixed(0).padStart(4)}`
  )
}
process.exit(0)
