// A consumer's @fiberpool/durable round trip on the embedded SQLite store: enqueue, a worker runs it, the
// producer reads the kept result; a flow (a parent reading its children's results) and a recurring schedule (its
// first tick's job) and a batch type (three jobs through one handler that takes them in batches) on the same queue.
import { DurableFlow, DurableQueue, DurableSchedule, DurableWorker, JobType } from "@fiberpool/durable"
import { Effect, Schema } from "effect"

const SendInvoice = JobType.make({
  name: "send-invoice",
  payload: Schema.Struct({ customer: Schema.String, cents: Schema.Int }),
  result: Schema.Struct({ messageId: Schema.String }),
  handler: ({ customer }, { id }) => Effect.succeed({ messageId: `${id}@${customer}` })
})

const Count = JobType.make({
  name: "count",
  payload: Schema.String,
  result: Schema.Int,
  handler: (text) => Effect.succeed(text.length)
})

const Total = JobType.make({
  name: "total",
  payload: Schema.Null,
  result: Schema.Int,
  handler: (_, context) =>
    Effect.map(DurableFlow.results(context, Count), (counted) => counted.reduce((sum, one) => sum + one.result, 0))
})

const Tick = JobType.make({
  name: "tick",
  payload: Schema.String,
  result: Schema.String,
  handler: (label, { id }) => Effect.succeed(`${label} at ${DurableSchedule.tickOf(id) === undefined ? "?" : "a tick"}`)
})

let bulked = 0
const Bulk = JobType.makeBatch({
  name: "bulk",
  payload: Schema.Int,
  maxSize: 10,
  handler: (jobs) => Effect.sync(() => jobs.forEach((job) => (bulked += job.payload)))
})

const program = Effect.gen(function*() {
  yield* DurableQueue.enqueue(SendInvoice, { customer: "acme", cents: 1200 }, { id: "invoice-42" })
  yield* DurableFlow.enqueue(Total, null, {
    id: "total-1",
    children: [DurableFlow.child(Count, "four"), DurableFlow.child(Count, "seven..")]
  })
  const schedule = yield* DurableSchedule.set(Tick, { name: "heartbeat", every: "1 second", payload: "beat" })
  for (const n of [1, 2, 3]) yield* DurableQueue.enqueue(Bulk, n)
  yield* DurableWorker.make({ types: [SendInvoice, Count, Total, Tick, Bulk], concurrency: 2 })
  const invoice = yield* DurableQueue.result(SendInvoice, "invoice-42")
  const total = yield* DurableQueue.result(Total, "total-1")
  const tick = yield* DurableQueue.result(Tick, DurableSchedule.jobId("heartbeat", schedule.nextRunAt))
  while (bulked < 6) yield* Effect.sleep("10 millis")
  console.log(JSON.stringify({ ...invoice, total, tick, bulked }))
}).pipe(
  Effect.scoped,
  Effect.provide(DurableQueue.layerSqlite({ filename: process.argv[2] ?? "jobs.db", name: "invoices" }))
)

Effect.runPromise(program)
