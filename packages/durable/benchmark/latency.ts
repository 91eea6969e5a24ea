/**
 * Start latency of durable queues across processes, at low load: the time from the call that enqueues a job in
 * one process to the start of its handler in another, one job at a time, the worker idle in between. Cells:
 * fiberpool on PostgreSQL with LISTEN/NOTIFY (the default) and polling only, pg-boss on the same PostgreSQL
 * with LISTEN/NOTIFY (`useListenNotify`, queue `notify: true`) and polling only (its minimum interval, 0.5 s),
 * and fiberpool on SQLite (polling, the default 500 ms), interleaved, several rounds.
 *
 * Each cell: spawn the worker process and wait until it is ready, then enqueue N jobs from this process, each
 * after the previous one started plus a random 20–620 ms pause (so the worker is idle and, when it polls, its
 * poll phase random), and read the handler's start time from the worker's output. Both processes read the same clock
 * (`performance.timeOrigin + performance.now()`). Checks that every job started once.
 *
 * Run: `FIBERPOOL_TEST_PG_URL=postgres://... node packages/durable/benchmark/latency.ts [--quick] [--rounds 3]`
 */
import { PgClient } from "@effect/sql-pg"
import { DurableQueue, JobType, SqliteClient } from "@fiberpool/durable"
import { Effect, Exit, Layer, Redacted, Schema, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { PgBoss } from "pg-boss"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const roundsAt = args.indexOf("--rounds")
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : quick ? 1 : 3
const JOBS = quick ? 20 : 60
const pgUrl = process.env.FIBERPOOL_TEST_PG_URL ?? process.env.DATABASE_URL
const workerFile = new URL("./latency-worker.ts", import.meta.url).pathname
const now = () => performance.timeOrigin + performance.now()

interface Cell {
  readonly name: string
  readonly system: "fiberpool" | "pg-boss"
  readonly store: "sqlite" | "postgres"
  readonly mode: "notify" | "poll"
}
const allCells: ReadonlyArray<Cell> = [
  ...(pgUrl
    ? [
      { name: "fiberpool, PostgreSQL, LISTEN/NOTIFY", system: "fiberpool", store: "postgres", mode: "notify" },
      { name: "pg-boss, PostgreSQL, LISTEN/NOTIFY", system: "pg-boss", store: "postgres", mode: "notify" },
      { name: "fiberpool, PostgreSQL, polling 500 ms", system: "fiberpool", store: "postgres", mode: "poll" },
      { name: "pg-boss, PostgreSQL, polling 500 ms", system: "pg-boss", store: "postgres", mode: "poll" }
    ] as const
    : []),
  { name: "fiberpool, SQLite, polling 500 ms", system: "fiberpool", store: "sqlite", mode: "poll" }
]
const only = process.env.BENCH_ONLY
const cells = only ? allCells.filter((c) => c.name.includes(only)) : allCells
if (!pgUrl) console.warn("FIBERPOOL_TEST_PG_URL is not set: PostgreSQL cells skipped")

const Ping = JobType.define({ name: "ping", payload: Schema.String })
let serial = 0

interface Producer {
  readonly send: (id: string) => Promise<number>
  readonly close: () => Promise<void>
}

const fiberpoolProducer = async (cell: Cell, db: string, queue: string): Promise<Producer> => {
  const Sql = cell.store === "sqlite"
    ? SqliteClient.layer({ filename: db, busyTimeout: "20 seconds" })
    : PgClient.layer({ url: Redacted.make(db), maxConnections: 2 })
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(
    Layer.buildWithScope(
      DurableQueue.layerSql({ name: queue, notify: cell.mode === "notify" }).pipe(Layer.provide(Sql)),
      scope
    )
  )
  return {
    send: async (id) => {
      const sentAt = now()
      await Effect.runPromise(DurableQueue.enqueue(Ping, id, { id }).pipe(Effect.provideContext(context)))
      return sentAt
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const bossProducer = async (cell: Cell, queue: string): Promise<Producer> => {
  const boss = new PgBoss({ connectionString: pgUrl!, max: 2, supervise: false, schedule: false })
  boss.on("error", (error) => console.error(error))
  await boss.start()
  await boss.createQueue(queue, { notify: cell.mode === "notify" })
  return {
    send: async (id) => {
      const sentAt = now()
      await boss.send(queue, { id })
      return sentAt
    },
    close: () => boss.stop({ graceful: false })
  }
}

const runCell = async (cell: Cell): Promise<Array<number>> => {
  const queue = `latency_${process.pid}_${serial++}`
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-latency-"))
  const db = cell.store === "sqlite" ? Path.join(dir, "queue.db") : pgUrl!
  // the producer first: it creates the tables (and pg-boss's queue) the worker reads
  const producer = cell.system === "fiberpool"
    ? await fiberpoolProducer(cell, db, queue)
    : await bossProducer(cell, queue)
  const child = ChildProcess.spawn(process.execPath, [workerFile, cell.system, cell.store, db, queue, cell.mode], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const starts = new Map<string, number>()
  let ready = false
  let buffer = ""
  const waiters = new Map<string, () => void>()
  child.stdout.on("data", (data) => {
    buffer += String(data)
    const lines = buffer.split("\n")
    buffer = lines.pop()!
    for (const line of lines) {
      if (line === "ready") ready = true
      else if (line.startsWith("start ")) {
        const [, id, at] = line.split(" ")
        if (starts.has(id)) throw new Error(`${cell.name}: job ${id} started twice`)
        starts.set(id, Number(at))
        waiters.get(id)?.()
      }
    }
  })
  const deadline = Date.now() + 30_000
  while (!ready) {
    if (Date.now() > deadline) throw new Error(`${cell.name}: the worker did not start`)
    await new Promise((r) => setTimeout(r, 10))
  }
  const latencies: Array<number> = []
  for (let i = 0; i < JOBS; i++) {
    // a pause longer than a poll interval, random, so that a polling worker's phase is random at each job
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 600))
    const id = `${queue}-${i}`
    const started = new Promise<void>((resolve, reject) => {
      waiters.set(id, resolve)
      setTimeout(() => reject(new Error(`${cell.name}: job ${id} did not start within 10 s`)), 10_000).unref()
    })
    const sentAt = await producer.send(id)
    await started
    latencies.push(starts.get(id)! - sentAt)
  }
  await new Promise<void>((resolve) => {
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })
  await producer.close()
  if (starts.size !== JOBS) throw new Error(`${cell.name}: ${starts.size} of ${JOBS} jobs started`)
  Fs.rmSync(dir, { recursive: true, force: true })
  return latencies
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
const fmt = (ms: number) => ms < 10 ? ms.toFixed(2) : ms.toFixed(0)

const samples = new Map<string, Array<Array<number>>>(cells.map((c) => [c.name, []]))
console.log(`durable start latency: ${JOBS} jobs per cell, one at a time, ${rounds} round(s)`)
console.log(
  `node ${process.version}, ${Os.cpus().length} CPUs (${Os.cpus()[0]?.model ?? "?"}), load ${
    Os.loadavg()[0].toFixed(2)
  }`
)
for (let round = 0; round < rounds; round++) {
  const order = cells.map((_, i) => cells[(i + round) % cells.length])
  for (const cell of order) {
    const latencies = await runCell(cell)
    samples.get(cell.name)!.push(latencies)
    const sorted = [...latencies].sort((a, b) => a - b)
    console.log(
      `  round ${round + 1}: ${cell.name}: p50 ${fmt(percentile(sorted, 0.5))} ms, p95 ${
        fmt(percentile(sorted, 0.95))
      } ms`
    )
  }
}

console.log("")
console.log("")
const summary = (name: string) => {
  const perRound = samples.get(name)?.map((l) => [...l].sort((a, b) => a - b)) ?? []
  if (perRound.length === 0) return undefined
  const p50s = perRound.map((s) => percentile(s, 0.5)).sort((a, b) => a - b)
  const p95s = perRound.map((s) => percentile(s, 0.95)).sort((a, b) => a - b)
  return { p50: percentile(p50s, 0.5), p50s, p95: percentile(p95s, 0.5), p95s }
}
const show = (s: ReturnType<typeof summary>, key: "p50" | "p95") => {
  if (s === undefined) return "–"
  const values = key === "p50" ? s.p50s : s.p95s
  return `${fmt(s[key])} (${fmt(values[0])}–${fmt(values[values.length - 1])})`
}
console.log(
  "| store, wake-up | fiberpool p50 ms | fiberpool p95 ms | pg-boss p50 ms | pg-boss p95 ms | p50 fiberpool ÷ pg-boss |"
)
console.log("| --- | --- | --- | --- | --- | --- |")
const rows = [
  ["PostgreSQL, LISTEN/NOTIFY", "fiberpool, PostgreSQL, LISTEN/NOTIFY", "pg-boss, PostgreSQL, LISTEN/NOTIFY"],
  ["PostgreSQL, polling 500 ms", "fiberpool, PostgreSQL, polling 500 ms", "pg-boss, PostgreSQL, polling 500 ms"],
  ["SQLite, polling 500 ms", "fiberpool, SQLite, polling 500 ms", undefined]
] as const
for (const [label, mine, theirs] of rows) {
  const a = summary(mine)
  const b = theirs === undefined ? undefined : summary(theirs)
  if (a === undefined && b === undefined) continue
  const ratio = a !== undefined && b !== undefined ? (a.p50 / b.p50).toFixed(2) : "–"
  console.log(`| ${label} | ${show(a, "p50")} | ${show(a, "p95")} | ${show(b, "p50")} | ${show(b, "p95")} | ${ratio} |`)
}
