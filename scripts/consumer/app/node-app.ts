// A consumer's @fiberpool/node service: a task on a worker thread, then jobs in flight until SIGTERM, which
// drains them, logs the pool's report and exits 0.
import { WorkerPool } from "@fiberpool/core"
import { NodeShutdown, NodeWorkerPool } from "@fiberpool/node"
import { Effect } from "effect"
import { Sum } from "./sum.js"

const program = Effect.gen(function*() {
  const threads = yield* NodeWorkerPool.make({ worker: new URL("./sum.worker.js", import.meta.url), threads: 1 })
  const total: number = yield* NodeWorkerPool.run(threads, Sum, [1, 2, 3, 4])
  console.log(`thread sum ${total}`)
  const pool = yield* WorkerPool.make({ name: "consumer-node", concurrency: 1, shutdown: { gracePeriod: "5 seconds" } })
  for (const id of ["first", "second", "third"]) {
    yield* WorkerPool.submit(pool, Effect.sleep("200 millis"), { id })
  }
  console.log("ready")
  return yield* Effect.never
}).pipe(Effect.scoped)

NodeShutdown.runMain(program)
