import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.retries.id) // => fiberpool_job_retries_total
