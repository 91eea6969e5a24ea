import type { WorkerPool } from "@fiberpool/core"

const options: WorkerPool.Options = {
  name: "thumbnails",
  concurrency: 8,
  capacity: 100,
  backpressure: "fail",
  timeout: "30 seconds",
  shutdown: { mode: "drain", gracePeriod: "20 seconds", interruptTimeout: "2 seconds" }
}
console.log(options.concurrency) // => 8
