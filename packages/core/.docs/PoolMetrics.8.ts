import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.interrupted.id) // => fiberpool_jobs_interrupted_total
