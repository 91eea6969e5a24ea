import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.failed.id) // => fiberpool_jobs_failed_total
