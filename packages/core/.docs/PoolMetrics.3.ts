import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.rejected.id) // => fiberpool_jobs_rejected_total
