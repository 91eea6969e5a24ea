/**
 * @title Live dashboard: a pool with mixed outcomes and a durable queue with dead letters
 *
 * Runs a pool whose jobs succeed, fail, retry and time out, and a durable queue on SQLite whose mail server is
 * down for the first invoices, so they end as dead letters; the mail server comes back, and the dead letters
 * can be requeued from the page. Serves `NodeDashboard` on 127.0.0.1 and prints its URL; write actions need the
 * printed token (or `DASHBOARD_TOKEN`). An export that never ends and reminders scheduled an hour ahead can be
 * cancelled from the page. Exits 0 by itself after a few seconds; with `--serve` it keeps a trickle
 * of jobs going and serves until SIGINT/SIGTERM.
 *
 * Run: npm run example:08    (keep it open: `npm run example:08 -- --serve`, fixed port: `--port 9465`)
 */
import { WorkerPool } from "@fiberpool/core"
import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
import { NodeDashboard, NodeShutdown } from "@fiberpool/node"
import { Clock, Data, Duration, Effect, Layer, Schedule, Schema } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

class PaymentDeclined extends Data.TaggedError("PaymentDeclined")<{ readonly order: number }> {}
class Flaky extends Data.TaggedError("Flaky")<{ readonly order: number }> {}
class MailServerDown extends Data.TaggedError("MailServerDown")<{ readonly message: string }> {}

const serve = process.argv.includes("--serve")
const portFlag = process.argv.indexOf("--port")
const port = portFlag >= 0 ? Number(process.argv[portFlag + 1]) : 0
const token = process.env.DASHBOARD_TOKEN ?? Crypto.randomBytes(12).toString("base64url")
const log = (line: string) => Effect.sync(() => console.log(line))

// The mail server is down at first: invoices sent then fail twice and become dead letters.
let mailServerUp = false
const SendInvoice = JobType.make({
  name: "send-invoice",
  payload: Schema.Struct({ customer: Schema.String, cents: Schema.Int }),
  handler: ({ customer }, { id }) =>
    Effect.sleep("150 millis").pipe(
      Effect.andThen(
        mailServerUp
          ? log(`sent ${id} to ${customer}`)
          : Effect.fail(new MailServerDown({ message: `SMTP 421: mail server unavailable for ${customer}` }))
      )
    ),
  retry: Schedule.spaced("100 millis"),
  maxAttempts: 2
})

// One order: its duration and outcome follow from its number, so every run looks alike.
const order = (n: number): Effect.Effect<number, PaymentDeclined | Flaky> => {
  const work = Effect.sleep(`${100 + (n * 137) % 700} millis`)
  if (n % 11 === 0) return Effect.andThen(Effect.sleep("3 seconds"), Effect.succeed(n)) // past its timeout
  if (n % 7 === 0) return Effect.andThen(work, Effect.fail(new PaymentDeclined({ order: n })))
  if (n % 5 === 0) {
    let tries = 0
    return Effect.andThen(
      work,
      Effect.suspend(() => ++tries === 1 ? Effect.fail(new Flaky({ order: n })) : Effect.succeed(n))
    )
  }
  return Effect.as(work, n)
}

// Reminders are scheduled an hour ahead: they wait, delayed, and can be cancelled from the page.
const reminderDelay = Duration.hours(1)
const SendReminder = JobType.make({
  name: "send-reminder",
  payload: Schema.Struct({ customer: Schema.String }),
  handler: ({ customer }) => log(`reminded ${customer}`)
})

const program = Effect.gen(function*() {
  // Made before the pools, the dashboard closes after them: it shows their shutdown while they drain.
  const dashboard = yield* NodeDashboard.make({ port, title: "fiberpool · 08-dashboard", guard: { token } })
  const pool = yield* WorkerPool.make({ name: "orders", concurrency: 3, capacity: 20, timeout: "1 second" })
  // One export at a time, and the first one never ends by itself: cancel it (or the one queued behind it).
  const exports = yield* WorkerPool.make({ name: "exports", concurrency: 1 })
  const worker = yield* DurableWorker.make({ name: "invoices", types: [SendInvoice, SendReminder], concurrency: 2 })
  const queue = yield* DurableQueue.Service
  const provideQueue = Effect.provideService(DurableQueue.Service, queue)
  // DurableQueue has no listing of waiting jobs: the page lists the reminders this process scheduled.
  const reminders = new Map<string, number>() // id → when it becomes claimable (epoch ms)
  const invoices: NodeDashboard.QueueSource = {
    name: queue.name,
    deadLetters: provideQueue(DurableQueue.deadLetters()),
    requeue: (id) => provideQueue(DurableQueue.requeue(id)),
    counts: Effect.map(provideQueue(DurableQueue.stats), (stats) => {
      const sum = (key: "pending" | "delayed" | "claimed" | "deadLetters" | "cancelled") =>
        stats.types.reduce((total, type) => total + type[key], 0)
      return {
        pending: sum("pending"),
        delayed: sum("delayed"),
        claimed: sum("claimed"),
        "dead letters": sum("deadLetters"),
        cancelled: sum("cancelled"),
        completed: stats.completed
      }
    }),
    jobs: Effect.sync(() =>
      [...reminders].map(([id, runAt]) => ({ id, type: SendReminder.name, state: "delayed" as const, runAt }))
    ),
    cancel: (id) =>
      Effect.tap(
        provideQueue(DurableQueue.cancel(id)),
        (outcome) => Effect.sync(() => outcome !== "running" && reminders.delete(id))
      )
  }
  // The handles of the exports, so that the page can cancel them by id.
  const exportJobs = NodeDashboard.makeJobRegistry()
  yield* dashboard.register(pool)
  yield* dashboard.register({ pool: exports, cancel: exportJobs.cancel })
  yield* dashboard.register(worker.pool)
  yield* dashboard.registerQueue(invoices)
  yield* log(`dashboard: ${dashboard.url}/`)
  yield* log(`token for actions: ${process.env.DASHBOARD_TOKEN ? "(from DASHBOARD_TOKEN)" : token}`)

  for (const [id, ms] of [["export-1", Infinity], ["export-2", 200]] as const) {
    const work = ms === Infinity ? Effect.never : Effect.sleep(`${ms} millis`)
    yield* WorkerPool.submit(exports, work, { id }).pipe(Effect.tap(exportJobs.add))
  }
  for (let i = 1; i <= 3; i++) {
    const id = `reminder-${i}`
    yield* DurableQueue.enqueue(SendReminder, { customer: `customer-${i}` }, { id, delay: reminderDelay })
    reminders.set(id, (yield* Clock.currentTimeMillis) + Duration.toMillis(reminderDelay))
  }
  yield* log("export-1 runs until cancelled, export-2 waits for it; reminder-1 … reminder-3 wait an hour")

  for (let i = 1; i <= 3; i++) {
    yield* DurableQueue.enqueue(SendInvoice, { customer: `customer-${i}`, cents: 1000 * i }, { id: `invoice-${i}` })
  }
  yield* log("enqueued invoice-1 … invoice-3 while the mail server is down")
  let dead = 0
  while (dead < 3) {
    yield* Effect.sleep("100 millis")
    dead = (yield* provideQueue(DurableQueue.deadLetters())).length
  }
  yield* log(`${dead} dead letters: ${(yield* provideQueue(DurableQueue.deadLetters())).map((d) => d.id).join(", ")}`)
  mailServerUp = true
  yield* log("mail server back up: requeue the dead letters from the page")

  const submit = (n: number) =>
    WorkerPool.submit(pool, order(n), { id: `order-${n}`, retry: { times: 1, while: (e) => e._tag === "Flaky" } })
  let n = 0
  for (; n < 24; n++) yield* submit(n + 1)
  yield* log(`submitted order-1 … order-${n}`)
  if (serve) {
    yield* log("serving until SIGINT/SIGTERM (--serve)")
    // A steady trickle, so the charts move: one order every 400 ms, waiting for room when the queue is full.
    return yield* Effect.forever(Effect.andThen(Effect.sleep("400 millis"), Effect.suspend(() => submit(++n))))
  }
  yield* WorkerPool.awaitIdle(pool)
  // What the page's cancel buttons do: the running export is interrupted, a reminder will never be sent.
  yield* log(`cancel export-1: ${yield* exportJobs.cancel("export-1")}`)
  yield* log(`cancel reminder-2: ${yield* invoices.cancel!("reminder-2")}`)
  yield* WorkerPool.awaitIdle(exports)
  const stats = yield* WorkerPool.stats(pool)
  yield* log(
    `orders: ${stats.succeeded} succeeded, ${stats.failed} failed, ${stats.timedOut} timed out, ${stats.retries} retried`
  )
  const snapshot = yield* dashboard.snapshot
  yield* log(
    `dashboard shows ${snapshot.pools.length} pools and ${snapshot.queues[0]?.deadLetters.length} dead letters`
  )
  yield* log("done, exiting 0")
})

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-08-"))
const Queue = DurableQueue.layerSqlite({
  filename: Path.join(dir, "jobs.db"),
  name: "invoices",
  pollInterval: "100 millis"
})

NodeShutdown.runMain(
  log(`08-dashboard: a pool with mixed outcomes and a durable queue on SQLite, on a live dashboard`).pipe(
    Effect.andThen(Effect.scoped(program)),
    Effect.provide(Layer.orDie(Queue)),
    Effect.ensuring(Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
  )
)
