import type { Shutdown } from "@fiberpool/core"

const finished = (t: Shutdown.Totals) => t.succeeded + t.failed + t.timedOut + t.interrupted + t.cancelled + t.abandoned
console.log(finished({
  submitted: 3,
  rejected: 0,
  succeeded: 2,
  failed: 1,
  timedOut: 0,
  interrupted: 0,
  cancelled: 0,
  abandoned: 0,
  retries: 0
})) // => 3
