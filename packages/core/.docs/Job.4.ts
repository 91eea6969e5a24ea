import type { Job } from "@fiberpool/core"
import { Schedule } from "effect"

type HttpError = { readonly status: number }
const policy: Job.Retry<HttpError> = {
  schedule: Schedule.exponential("100 millis"),
  times: 3,
  while: (error) => error.status >= 500
}
console.log(policy.times) // => 3
