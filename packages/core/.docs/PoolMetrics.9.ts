import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.abandoned.id) // => fiberpool_jobs_abandoned_total
