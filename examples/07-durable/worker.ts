/**
 * One worker process of 07-durable (started by main.ts): a durable worker on the shared queue, 3 jobs at a
 * time. SIGTERM shuts it down gracefully; SIGKILL is what main.ts uses to simulate a crash.
 */
import { DurableWorker } from "@fiberpool/durable"
import { Effect, Fiber } from "effect"
import { connect, SendInvoice } from "./jobs.ts"

const [file, queue] = process.argv.slice(2)

const main = Effect.gen(function*() {
  yield* DurableWorker.make({ types: [SendInvoice], concurrency: 3, shutdown: { gracePeriod: "5 seconds" } })
  console.log("ready")
  return yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(connect(file, queue)))

const fiber = Effect.runFork(main)
process.once("SIGTERM", () => Effect.runFork(Fiber.interrupt(fiber)))
fiber.addObserver((exit) => {
  const crashed = exit._tag === "Failure" && exit.cause.reasons.some((reason) => reason._tag !== "Interrupt")
  if (crashed) console.error(exit.cause)
  process.exit(crashed ? 1 : 0)
})
