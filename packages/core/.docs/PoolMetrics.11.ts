import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.queued.id) // => fiberpool_jobs_queued
