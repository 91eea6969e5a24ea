import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.waitSeconds.id) // => fiberpool_job_wait_seconds
