/**
 * A consumer process of the Redis benchmark. argv: url, prefix, queue, concurrency. Connects, prints "ready",
 * starts consuming on "go" (stdin), counts the no-op jobs it ran and prints the count every 50 ms ("count N"),
 * stops on SIGTERM.
 */
import { DurableWorker, JobType } from "@fiberpool/durable"
import * as DurableRedis from "@fiberpool/durable/DurableRedis"
import { Effect, Exit, Layer, Schema, Scope } from "effect"

const [url, prefix, queue, concurrencyText] = process.argv.slice(2)
let count = 0
const go = new Promise<void>((resolve) => process.stdin.once("data", () => resolve()))
const report = setInterval(() => console.log(`count ${count}`), 50)
const Noop = JobType.make({ name: "noop", payload: Schema.Int, handler: () => Effect.sync(() => void count++) })
const scope = Effect.runSync(Scope.make())
process.once("SIGTERM", async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  clearInterval(report)
  console.log(`count ${count}`)
  process.exit(0)
})
const context = await Effect.runPromise(
  Layer.buildWithScope(DurableRedis.layer({ url, prefix, name: queue, pollInterval: "100 millis" }), scope)
)
console.log("ready")
await go
await Effect.runPromise(
  DurableWorker.make({ types: [Noop], concurrency: Number(concurrencyText) }).pipe(
    Effect.provideContext(context),
    Scope.provide(scope)
  )
)
