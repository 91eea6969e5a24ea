import type { WorkerPool } from "@fiberpool/core"

const strategy: WorkerPool.Backpressure = "sliding"
console.log(strategy) // => sliding
