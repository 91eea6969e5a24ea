import type { Shutdown } from "@fiberpool/core"

const fates: Shutdown.JobFates = {
  succeeded: ["a"],
  failed: [],
  timedOut: [],
  interrupted: ["b"],
  cancelled: ["c"],
  abandoned: []
}
console.log(fates.interrupted) // => [ 'b' ]
