// A consumer's @fiberpool/durable round trip on the embedded SQLite store: enqueue, a worker runs it, the
// producer reads the kept result.
import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
import { Effect, Schema } from "effect"

const SendInvoice = JobType.make({
  name: "send-invoice",
  payload: Schema.Struct({ customer: Schema.String, cents: Schema.Int }),
  result: Schema.Struct({ messageId: Schema.String }),
  handler: ({ customer }, { id }) => Effect.succeed({ messageId: `${id}@${customer}` })
})

const program = Effect.gen(function*() {
  yield* DurableQueue.enqueue(SendInvoice, { customer: "acme", cents: 1200 }, { id: "invoice-42" })
  yield* DurableWorker.make({ types: [SendInvoice], concurrency: 2 })
  const result = yield* DurableQueue.result(SendInvoice, "invoice-42")
  console.log(JSON.stringify(result))
}).pipe(
  Effect.scoped,
  Effect.provide(DurableQueue.layerSqlite({ filename: process.argv[2] ?? "jobs.db", name: "invoices" }))
)

Effect.runPromise(program)
