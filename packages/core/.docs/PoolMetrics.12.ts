import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.running.id) // => fiberpool_jobs_running
