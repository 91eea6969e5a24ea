import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.succeeded.id) // => fiberpool_jobs_succeeded_total
