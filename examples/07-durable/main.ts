/**
 * @title Durable jobs: a producer, three worker processes, one of them killed
 *
 * The producer enqueues 90 invoices into a queue kept in a SQLite file (or PostgreSQL when DATABASE_URL is
 * set); three worker processes share it. Mid-run, worker-2 is killed with SIGKILL: the jobs it held come back
 * once their lease expires and the other workers run them. The handler sends each invoice once, keyed by the
 * job id, so every invoice is sent exactly once although a few jobs ran twice. Prints who ran what.
 *
 * Run: `npm run example:07`    (PostgreSQL: `DATABASE_URL=postgres://... npm run example:07`)
 */
import { DurableQueue } from "@fiberpool/durable"
import { NodeShutdown } from "@fiberpool/node"
import { Console, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { connect, databaseUrl, JOBS, LEASE, SendInvoice, storeLabel, WORKERS } from "./jobs.ts"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-07-"))
const file = Path.join(dir, "jobs.db")
const queue = `invoices-${Date.now().toString(36)}`

const spawnWorker = (name: string) => {
  const child = ChildProcess.spawn(process.execPath, [new URL("./worker.ts", import.meta.url).pathname, file, queue], {
    env: { ...process.env, WORKER_NAME: name },
    stdio: ["ignore", "pipe", "inherit"]
  })
  const ready = new Promise<void>((resolve) =>
    child.stdout.on("data", (data) => String(data).includes("ready") && resolve())
  )
  const exited = new Promise<string>((resolve) =>
    child.once("exit", (code, signal) => resolve(signal ?? `exit ${code}`))
  )
  return { name, child, ready, exited }
}

const program = Effect.gen(function*() {
  yield* Console.log(`07-durable: 1 producer, ${WORKERS} worker processes, ${JOBS} jobs on ${storeLabel(file)}`)
  const sql = yield* SqlClient.SqlClient
  if (databaseUrl) { // a previous run's tables
    yield* sql`DROP TABLE IF EXISTS example_runs`
    yield* sql`DROP TABLE IF EXISTS example_sent`
  }
  yield* sql`CREATE TABLE example_runs (job_id VARCHAR(64) NOT NULL, worker VARCHAR(16) NOT NULL, attempt INTEGER NOT NULL)`
  yield* sql`CREATE TABLE example_sent (job_id VARCHAR(64) PRIMARY KEY, worker VARCHAR(16) NOT NULL)`

  const workers = Array.from({ length: WORKERS }, (_, i) => spawnWorker(`worker-${i + 1}`))
  yield* Effect.addFinalizer(() => Effect.sync(() => workers.forEach((w) => w.child.kill("SIGKILL"))))
  yield* Effect.promise(() => Promise.all(workers.map((w) => w.ready)))
  yield* Console.log(`started ${workers.map((w) => `${w.name} (pid ${w.child.pid})`).join(", ")}`)

  for (let i = 1; i <= JOBS; i++) {
    yield* DurableQueue.enqueue(SendInvoice, { customer: `customer-${i % 7}`, cents: 1000 + i }, { id: `invoice-${i}` })
  }
  yield* Console.log(`enqueued invoice-1 … invoice-${JOBS}`)

  const count = (query: Effect.Effect<ReadonlyArray<{ readonly c: unknown }>, unknown>) =>
    Effect.map(Effect.orDie(query), (rows) => Number(rows[0].c))
  const victim = workers[1]
  while ((yield* count(sql`SELECT COUNT(*) AS c FROM example_runs WHERE worker = ${victim.name}`)) < 6) {
    yield* Effect.sleep("20 millis")
  }
  victim.child.kill("SIGKILL")
  const held = yield* sql<{ job_id: string }>`SELECT job_id FROM example_runs r WHERE worker = ${victim.name}
    AND NOT EXISTS (SELECT 1 FROM example_sent s WHERE s.job_id = r.job_id)`
  yield* Console.log(
    `SIGKILL ${victim.name} while it runs ${held.map((r) => r.job_id).join(", ")} (back after the ${LEASE} lease)`
  )

  const started = Date.now()
  while ((yield* count(sql`SELECT COUNT(*) AS c FROM example_sent`)) < JOBS) {
    if (Date.now() - started > 20_000) return yield* Effect.die(new Error("jobs did not complete"))
    yield* Effect.sleep("50 millis")
  }
  for (const w of workers) if (w !== victim) w.child.kill("SIGTERM")
  const exits = yield* Effect.promise(() => Promise.all(workers.map((w) => w.exited)))
  yield* Console.log(`workers exited: ${workers.map((w, i) => `${w.name} ${exits[i]}`).join(", ")}`)

  yield* Console.log("who ran what:")
  for (const w of workers) {
    const ran = yield* sql<{ job_id: string }>`SELECT job_id FROM example_sent WHERE worker = ${w.name} ORDER BY job_id`
    yield* Console.log(`  ${w.name.padEnd(8)} sent ${String(ran.length).padStart(2)} invoices`)
  }
  const twice = yield* sql<{ job_id: string; workers: string }>`
    SELECT job_id, COUNT(*) AS runs FROM example_runs GROUP BY job_id HAVING COUNT(*) > 1 ORDER BY job_id`
  for (const { job_id } of twice) {
    const runs = yield* sql<{ worker: string; attempt: number }>`
      SELECT worker, attempt FROM example_runs WHERE job_id = ${job_id} ORDER BY attempt`
    yield* Console.log(`  ${job_id}: ${runs.map((r) => `${r.worker} (attempt ${r.attempt})`).join(" → ")}`)
  }
  const sent = yield* count(sql`SELECT COUNT(*) AS c FROM example_sent`)
  const distinct = yield* count(sql`SELECT COUNT(DISTINCT job_id) AS c FROM example_runs`)
  const open = yield* count(sql`SELECT COUNT(*) AS c FROM effect_queue WHERE queue_name = ${queue}
    AND (state <> 'completed' OR acquired_by IS NOT NULL)`)
  yield* Console.log(
    `every job completed once: ${sent}/${JOBS} invoices sent once, ${distinct} jobs ran, ${twice.length} of them twice, ` +
      `${open} left claimed`
  )
  if (sent !== JOBS || open !== 0) return yield* Effect.die(new Error("a job was lost"))
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.orDie(connect(file, queue))),
  Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
)

NodeShutdown.runMain(program)
