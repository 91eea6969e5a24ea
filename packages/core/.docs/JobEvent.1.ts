import type { JobEvent } from "@fiberpool/core"

const kind: JobEvent.Kind = "TimedOut"
console.log(kind) // => TimedOut
