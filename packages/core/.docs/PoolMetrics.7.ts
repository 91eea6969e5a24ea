import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.cancelled.id) // => fiberpool_jobs_cancelled_total
