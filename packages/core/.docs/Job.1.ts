import type { Job } from "@fiberpool/core"

const label = (status: Job.Status): string => status === "timedOut" ? "too slow" : status
console.log(label("timedOut")) // => too slow
