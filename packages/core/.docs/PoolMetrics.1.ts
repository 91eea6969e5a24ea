import { PoolMetrics } from "@fiberpool/core"

console.log(PoolMetrics.durationBoundaries[0]) // => 0.001
