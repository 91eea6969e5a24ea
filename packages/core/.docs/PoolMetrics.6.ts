import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.timedOut.id) // => fiberpool_jobs_timed_out_total
