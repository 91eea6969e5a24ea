import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.runSeconds.id) // => fiberpool_job_run_seconds
