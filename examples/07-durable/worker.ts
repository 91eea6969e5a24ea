/**
 * One worker process of 07-durable (started by main.ts): a durable worker on the shared queue, 3 jobs at a
 * time. SIGTERM shuts it down gracefully (exit 0); SIGKILL is what main.ts uses to simulate a crash.
 */
import { DurableWorker } from "@fiberpool/durable"
import { NodeShutdown } from "@fiberpool/node"
import { Effect } from "effect"
import { connect, SendInvoice } from "./jobs.ts"

const [file, queue] = process.argv.slice(2)

const program = Effect.gen(function*() {
  yield* DurableWorker.make({ types: [SendInvoice], concurrency: 3, shutdown: { gracePeriod: "5 seconds" } })
  console.log("ready")
  return yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(connect(file, queue)))

NodeShutdown.runMain(program)
